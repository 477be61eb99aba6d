//! The installation rules notation applies (`notation plugin install`, `notation plugin list`,
//! and every sign): the executable's name, its file type, and get-plugin-metadata.

use std::path::Path;

use plugin_protocol::client::PluginClient;
use plugin_protocol::contract::{capability, GetMetadataResponse, PluginConfig, CONTRACT_VERSION};

use crate::report::Report;
use crate::response::{json_document, typed};

const GROUP: &str = "installation";

/// Checks the file itself. Returns the plugin name the file name implies, if it has one.
pub fn check_file(report: &mut Report, path: &Path) -> Option<String> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = file_name
        .strip_prefix("notation-")
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    match &name {
        Some(n) => report.pass(
            GROUP,
            "executable is named notation-<name>",
            format!("plugin name '{n}'; notation installs it as plugins/{n}/{file_name}"),
        ),
        None => report.fail(
            GROUP,
            "executable is named notation-<name>",
            format!(
                "the file is named '{file_name}'; notation only runs a plugin named notation-<name> inside plugins/<name>/"
            ),
        ),
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => report.fail(
            GROUP,
            "regular executable file",
            "the plugin is a symbolic link; notation refuses symlinks in its plugin directory: install the file itself",
        ),
        Ok(m) if !m.is_file() => report.fail(
            GROUP,
            "regular executable file",
            "the plugin path is not a regular file",
        ),
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt as _;
            if m.permissions().mode() & 0o111 == 0 {
                report.fail(
                    GROUP,
                    "regular executable file",
                    format!(
                        "the file is not executable (mode {:o}); chmod +x it",
                        m.permissions().mode() & 0o7777
                    ),
                )
            } else {
                report.pass(GROUP, "regular executable file", "")
            }
        }
        Err(e) => report.fail(GROUP, "regular executable file", format!("cannot stat: {e}")),
    };
    name
}

/// Strict SemVer 2.0 without a leading `v`: MAJOR.MINOR.PATCH[-pre][+build], no leading zeros.
pub fn strict_semver(v: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("version '{v}' is not strict SemVer ({why})"));
    if v.starts_with('v') || v.starts_with('V') {
        return bad("no leading 'v' allowed; notation compares versions on install");
    }
    let (rest, build) = match v.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 {
        return bad("expected MAJOR.MINOR.PATCH");
    }
    for p in &parts {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return bad("MAJOR, MINOR and PATCH must be numbers");
        }
        if p.len() > 1 && p.starts_with('0') {
            return bad("numbers must not have leading zeros");
        }
    }
    let ident_ok = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    if let Some(p) = pre {
        if !ident_ok(p) {
            return bad("invalid pre-release identifiers");
        }
        for i in p.split('.') {
            if i.len() > 1 && i.starts_with('0') && i.bytes().all(|b| b.is_ascii_digit()) {
                return bad("numeric pre-release identifiers must not have leading zeros");
            }
        }
    }
    if let Some(b) = build {
        if !ident_ok(b) {
            return bad("invalid build metadata");
        }
    }
    Ok(())
}

/// What get-plugin-metadata gave.
pub enum Metadata {
    /// The metadata and the wall time of the first call (part of every sign).
    Answered(GetMetadataResponse, std::time::Duration),
    /// The plugin ran but its answer is unusable (reported).
    Unusable,
    /// The executable could not be started at all (reported): nothing else can be checked.
    CannotRun,
}

/// get-plugin-metadata as notation calls it (absent, empty and the user's pluginConfig).
pub fn check_metadata(
    report: &mut Report,
    client: &PluginClient,
    expected_name: Option<&str>,
    config: &PluginConfig,
) -> Metadata {
    let inv = match client.get_metadata(None) {
        Ok(inv) => inv,
        Err(e) => {
            report.fail(
                GROUP,
                "get-plugin-metadata answers",
                format!("cannot run the plugin: {e}"),
            );
            return Metadata::CannotRun;
        }
    };
    report.timing(
        "get-plugin-metadata",
        &inv.command,
        inv.exit_code,
        inv.elapsed,
    );
    let meta = json_document(&inv).and_then(|v| typed::<GetMetadataResponse>(&inv, &v));
    let meta = match meta {
        Ok(m) => {
            report
                .pass(
                    GROUP,
                    "get-plugin-metadata answers",
                    format!("{} {}", m.name, m.version),
                )
                .timed(inv.elapsed);
            m
        }
        Err(why) => {
            report
                .fail(GROUP, "get-plugin-metadata answers", why)
                .timed(inv.elapsed);
            return Metadata::Unusable;
        }
    };
    let elapsed = inv.elapsed;

    let empty: Vec<&str> = [
        ("name", meta.name.trim().is_empty()),
        ("description", meta.description.trim().is_empty()),
        ("version", meta.version.trim().is_empty()),
        ("url", meta.url.trim().is_empty()),
        (
            "supportedContractVersions",
            meta.supported_contract_versions.is_empty(),
        ),
        ("capabilities", meta.capabilities.is_empty()),
    ]
    .into_iter()
    .filter(|(_, e)| *e)
    .map(|(n, _)| n)
    .collect();
    report.outcome(
        GROUP,
        "metadata fields are all present and non-empty",
        if empty.is_empty() {
            Ok(String::new())
        } else {
            Err(format!(
                "empty: {}; notation requires every metadata field",
                empty.join(", ")
            ))
        },
    );
    if let Some(expected) = expected_name {
        report.outcome(
            GROUP,
            "metadata name equals the executable's <name>",
            if meta.name == expected {
                Ok(format!("'{expected}'"))
            } else {
                Err(format!(
                    "metadata name is '{}' but the executable is notation-{expected}; notation refuses a plugin whose name differs from its directory",
                    meta.name
                ))
            },
        );
    }
    report.outcome(
        GROUP,
        "version is strict SemVer",
        strict_semver(&meta.version)
            .map(|()| meta.version.clone())
            .map_err(|why| {
                format!(
                    "{why}: `notation plugin install` compares the installed and the new version \
                     as SemVer, so with this version it refuses every reinstall or upgrade of \
                     the plugin (\"failed to compare plugin versions\")"
                )
            }),
    );
    report.outcome(
        GROUP,
        "supportedContractVersions contains 1.0",
        if meta
            .supported_contract_versions
            .iter()
            .any(|v| v == CONTRACT_VERSION)
        {
            Ok(format!("{:?}", meta.supported_contract_versions))
        } else {
            Err(format!(
                "supportedContractVersions is {:?}; notation speaks contract {CONTRACT_VERSION}",
                meta.supported_contract_versions
            ))
        },
    );
    let unknown: Vec<&String> = meta
        .capabilities
        .iter()
        .filter(|c| !capability::ALL.contains(&c.as_str()))
        .collect();
    let caps = if !unknown.is_empty() {
        Err(format!(
            "unknown capabilities {unknown:?}; valid values are {}",
            capability::ALL.join(", ")
        ))
    } else if !meta
        .capabilities
        .iter()
        .any(|c| c == capability::SIGNATURE_GENERATOR_RAW)
    {
        Err(format!(
            "capabilities {:?} lack {}: this checker drives raw-signature plugins (describe-key, generate-signature)",
            meta.capabilities,
            capability::SIGNATURE_GENERATOR_RAW
        ))
    } else {
        Ok(format!("{:?}", meta.capabilities))
    };
    report.outcome(GROUP, "capabilities are valid", caps);

    // notation plugin list/install send an empty pluginConfig; sign sends the key's config.
    let mut variants = vec![("an empty pluginConfig", PluginConfig::new())];
    if !config.is_empty() {
        variants.push(("the key's pluginConfig", config.clone()));
    }
    for (what, cfg) in variants {
        let name = format!("same metadata for {what}");
        match client.get_metadata(Some(cfg)) {
            Ok(inv) => {
                report.timing(
                    format!("get-plugin-metadata ({what})"),
                    &inv.command,
                    inv.exit_code,
                    inv.elapsed,
                );
                let again =
                    json_document(&inv).and_then(|v| typed::<GetMetadataResponse>(&inv, &v));
                let result = match again {
                    Ok(m) if m == meta => Ok(String::new()),
                    Ok(m) => Err(format!(
                        "the metadata differs: {m:?}; get-plugin-metadata must return static data"
                    )),
                    Err(why) => Err(why),
                };
                report.outcome(GROUP, &name, result).timed(inv.elapsed);
            }
            Err(e) => {
                report.fail(GROUP, &name, format!("cannot run the plugin: {e}"));
            }
        }
    }
    Metadata::Answered(meta, elapsed)
}

#[cfg(test)]
mod tests {
    use super::strict_semver;

    #[test]
    fn semver_is_strict() {
        for ok in ["0.1.0", "1.0.0-rc.1", "1.2.3+build.5", "10.20.30-alpha-1+x"] {
            assert!(strict_semver(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("v1.0.0", "leading 'v'"),
            ("1.0", "MAJOR.MINOR.PATCH"),
            ("01.0.0", "leading zeros"),
            ("1.0.0-", "pre-release"),
            ("1.0.0-01", "leading zeros"),
            ("1.x.0", "numbers"),
        ] {
            let err = strict_semver(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
