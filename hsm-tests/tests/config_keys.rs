//! Every configuration lookup in a plugin goes through a declared key constant: no plugin looks a
//! setting up by string literal, every `ConfigKey` constant a plugin declares is listed in its
//! `PluginInfo::config_keys` (else pluginConfig would refuse it as unknown while the environment
//! still set it), and every constant a lookup names is one of those or a shared key. Plugins are
//! discovered from `plugins/`, so a new plugin is covered without editing this test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The keys the shared crate declares for every plugin (`plugin_protocol::config`).
const SHARED: &[&str] = &["CERTIFICATE_CHAIN", "CA_CERTS", "TIMEOUT_SECONDS"];

/// The `Config` methods that take a key.
const ACCESSORS: &[&str] = &[
    "get",
    "get_with_source",
    "get_secret",
    "path",
    "flag",
    "number",
    "choice",
    "url",
];

fn plugin_sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let mut plugins = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let src: PathBuf = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        let mut text = String::new();
        for file in std::fs::read_dir(&src).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(&file).unwrap());
                text.push('\n');
            }
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        plugins.push((name, text));
    }
    assert!(plugins.len() >= 6, "found only {plugins:?}");
    plugins
}

fn is_const_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

#[test]
fn every_lookup_goes_through_a_declared_and_listed_key() {
    for (plugin, text) in plugin_sources() {
        let declared: BTreeSet<&str> = text
            .match_indices("const ")
            .map(|(i, _)| &text[i + "const ".len()..])
            .filter(|rest| {
                rest.starts_with(ident(rest))
                    && rest[ident(rest).len()..].starts_with(": ConfigKey")
            })
            .map(ident)
            .collect();
        assert!(
            !declared.is_empty(),
            "{plugin} declares no ConfigKey constant"
        );

        // plugin_info!("name", "description", [KEY, ...], "chain sources").
        let info = text
            .find("plugin_info!(")
            .unwrap_or_else(|| panic!("{plugin} has no plugin_info!"));
        let list_start = info
            + text[info..]
                .find('[')
                .unwrap_or_else(|| panic!("{plugin}'s plugin_info! lists no config keys"))
            + 1;
        let list_end = list_start + text[list_start..].find(']').unwrap();
        let listed: BTreeSet<&str> = text[list_start..list_end]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(
            declared, listed,
            "{plugin}: every ConfigKey constant must be listed in PluginInfo::config_keys, and \
             only those"
        );

        // Lookups, with whitespace removed so a call split over lines is seen whole.
        let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let mut lookups = 0;
        for receiver in ["config.", "cfg."] {
            for accessor in ACCESSORS {
                let call = format!("{receiver}{accessor}(");
                for (i, _) in flat.match_indices(&call) {
                    let arg = &flat[i + call.len()..];
                    assert!(
                        !arg.starts_with('"'),
                        "{plugin} looks a setting up by string literal: {}",
                        &flat[i..(i + 60).min(flat.len())]
                    );
                    if let Some(name) = arg
                        .strip_prefix('&')
                        .map(ident)
                        .filter(|n| is_const_name(n))
                    {
                        lookups += 1;
                        assert!(
                            declared.contains(name) || SHARED.contains(&name),
                            "{plugin} looks up {name}, which is neither its own declared key nor \
                             a shared one"
                        );
                    }
                }
            }
        }
        // The shared secret readers take the config and then the key.
        for call in ["Secret::from_setting(", "Secret::from_file_setting("] {
            for (i, _) in flat.match_indices(call) {
                let args = &flat[i + call.len()..];
                let args = &args[..args.find(')').unwrap_or(args.len())];
                // The second argument; a variable (a helper's parameter) holds one of the
                // plugin's constants, which the declared-equals-listed check above covers.
                let Some(name) = args
                    .split(',')
                    .nth(1)
                    .and_then(|a| a.strip_prefix('&'))
                    .map(ident)
                    .filter(|n| is_const_name(n))
                else {
                    continue;
                };
                lookups += 1;
                assert!(
                    declared.contains(name) || SHARED.contains(&name),
                    "{plugin} reads the secret {name:?}, which is neither its own declared key \
                     nor a shared one"
                );
            }
        }
        assert!(
            lookups > 0,
            "{plugin}: no lookup through a key constant found"
        );
    }
}
