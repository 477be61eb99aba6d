//! `trust export`: from a signing key to what a verifier needs, the same on every plugin. The key
//! and its chain are resolved exactly as generate-signature resolves them; the chain's root goes
//! to a trust-store folder and a trust policy pins the leaf's subject in the form notation
//! compares.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::backend::Backend;
use crate::chain::Certificate;
use crate::command_key::{write_file_atomic, BackendKey, KeyArgs};
use crate::error::{PluginError, Result};
use crate::identity;
use crate::plugin_info::PluginInfo;
use crate::HashAlgorithm;

/// `trust` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum TrustCommand {
    /// Write the chain's root (for `notation cert add`) and a trust policy pinning the signing
    /// certificate's subject (for `notation policy import`), from the chain generate-signature
    /// would return for the key
    Export(ExportArgs),
}

#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    key: KeyArgs,
    /// Folder to write into: <DIR>/<STORE>/<root>.pem and <DIR>/trustpolicy.json (or
    /// trustpolicy.blob.json with --blob)
    #[arg(long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Trust store name for `notation cert add --store` (default: from the root's common name)
    #[arg(long)]
    store: Option<String>,
    /// Repository the OCI policy applies to, REGISTRY/REPOSITORY (repeatable; default: "*",
    /// every repository)
    #[arg(long = "scope", value_name = "REGISTRY/REPOSITORY")]
    scopes: Vec<String>,
    /// Write the blob trust policy (trustpolicy.blob.json, `notation blob verify`) instead of
    /// the OCI one
    #[arg(long, conflicts_with = "scopes")]
    blob: bool,
    /// Trust every identity the root certifies (trustedIdentities ["*"]) instead of pinning
    /// the signing certificate's subject
    #[arg(long)]
    any_identity: bool,
    /// Replace files that exist
    #[arg(long)]
    force: bool,
}

pub(crate) fn execute<B: Backend>(info: &'static PluginInfo, command: TrustCommand) -> Result<()> {
    match command {
        TrustCommand::Export(args) => export::<B>(info, args),
    }
}

/// What `trust export` writes, before it is written.
#[derive(Debug, PartialEq, Eq)]
struct TrustExport {
    /// The trust store name (`notation cert add --store`).
    pub store: String,
    /// File name of the root under `<out>/<store>/`.
    pub root_file: String,
    /// The root certificate, PEM.
    pub root_pem: String,
    /// `trustpolicy.json` or `trustpolicy.blob.json`.
    pub policy_file: &'static str,
    /// The policy document, pretty JSON with a final newline.
    pub policy: String,
    /// The `trustedIdentities` entry.
    pub identity: String,
}

/// Notation's trust policy document, version 1.0, fields in the order its documentation shows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyDocument {
    version: &'static str,
    trust_policies: Vec<PolicyStatement>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyStatement {
    name: String,
    /// OCI policies only.
    #[serde(skip_serializing_if = "Option::is_none")]
    registry_scopes: Option<Vec<String>>,
    signature_verification: Verification,
    trust_stores: Vec<String>,
    trusted_identities: Vec<String>,
    /// Blob policies only.
    #[serde(skip_serializing_if = "Option::is_none")]
    global_policy: Option<bool>,
}

#[derive(Serialize)]
struct Verification {
    level: &'static str,
}

/// What the policy applies to: OCI artifacts in some repositories, or blobs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PolicyKind {
    /// `trustpolicy.json` with these (checked) `registryScopes` (`["*"]` for every repository).
    Oci(Vec<String>),
    /// `trustpolicy.blob.json`, the one global blob policy.
    Blob,
}

/// Builds the export for a checked chain (leaf first, self-signed root last), with a store
/// name and scopes already checked.
fn build_export(
    chain: &[Certificate],
    store: Option<String>,
    kind: &PolicyKind,
    any_identity: bool,
) -> Result<TrustExport> {
    let (leaf, root) = match chain {
        [leaf, .., root] => (leaf, root),
        [only] => (only, only),
        [] => return Err(PluginError::validation("the certificate chain is empty")),
    };
    let slug = slug(common_name(root).as_deref().unwrap_or("root"));
    let store = store.unwrap_or_else(|| slug.clone());
    let identity = if any_identity {
        "*".to_owned()
    } else {
        identity::pinnable(&leaf.x509().tbs_certificate.subject)
            .map_err(|problem| {
                PluginError::validation(format!(
                    "the signing certificate's subject '{}' cannot be pinned in a trust policy: \
                     {problem}. Issue the leaf again with a subject that has C, ST and O (for \
                     example \"CN=release signer,O=Example,ST=Washington,C=US\"), or pass \
                     --any-identity to trust every identity the root '{}' certifies \
                     (trustedIdentities [\"*\"])",
                    leaf.subject(),
                    root.subject()
                ))
            })?
            .trusted_identity()
    };
    let document = PolicyDocument {
        version: "1.0",
        trust_policies: vec![PolicyStatement {
            name: store.clone(),
            registry_scopes: match kind {
                PolicyKind::Oci(scopes) => Some(scopes.clone()),
                PolicyKind::Blob => None,
            },
            signature_verification: Verification { level: "strict" },
            trust_stores: vec![format!("ca:{store}")],
            trusted_identities: vec![identity.clone()],
            // The one policy `notation blob verify` uses without --policy-name.
            global_policy: (*kind == PolicyKind::Blob).then_some(true),
        }],
    };
    let mut policy = serde_json::to_string_pretty(&document)
        .map_err(|e| PluginError::generic(format!("cannot encode the trust policy: {e}")))?;
    policy.push('\n');
    Ok(TrustExport {
        root_file: format!("{slug}.pem"),
        store,
        root_pem: root.to_pem(),
        policy_file: match kind {
            PolicyKind::Oci(_) => "trustpolicy.json",
            PolicyKind::Blob => "trustpolicy.blob.json",
        },
        policy,
        identity,
    })
}

fn export<B: Backend>(info: &'static PluginInfo, args: ExportArgs) -> Result<()> {
    let kind = if args.blob {
        PolicyKind::Blob
    } else {
        if args.scopes.is_empty() {
            eprintln!(
                "note: no --scope given: the policy applies to every repository (\"*\"); pass \
                 --scope REGISTRY/REPOSITORY to narrow it"
            );
        }
        // Checked before the backend is touched: a typo costs no round trip.
        PolicyKind::Oci(check_scopes(&args.scopes)?)
    };
    let store = args.store.as_deref().map(check_store_name).transpose()?;
    let mut key = BackendKey::<B>::open(info, &args.key.key_id, &args.key.plugin_config)?;
    let chain = key.chain().map_err(|e| e.context("trust export"))?;
    let export = build_export(&chain, store, &kind, args.any_identity)?;
    if args.any_identity {
        eprintln!(
            "note: trustedIdentities [\"*\"]: notation will accept a signature by any \
             certificate the root '{}' issues",
            chain.last().map(Certificate::subject).unwrap_or_default()
        );
    }
    let store_dir = args.out.join(&export.store);
    let root_path = store_dir.join(&export.root_file);
    let policy_path = args.out.join(export.policy_file);
    let existing: Vec<String> = [&root_path, &policy_path]
        .iter()
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(PluginError::validation(format!(
            "{} exist{}; pass --force to replace {}",
            existing.join(" and "),
            if existing.len() == 1 { "s" } else { "" },
            if existing.len() == 1 { "it" } else { "them" }
        )));
    }
    std::fs::create_dir_all(&store_dir)
        .map_err(|e| PluginError::generic(format!("cannot create {}: {e}", store_dir.display())))?;
    write_file_atomic(&root_path, &export.root_pem, true)?;
    write_file_atomic(&policy_path, &export.policy, true)?;
    let root = chain.last().expect("a checked chain has a root");
    print!(
        "{}",
        summary(&export, root, &root_path, &policy_path, &kind)
    );
    Ok(())
}

/// What the command prints: what it wrote and the notation commands that install it.
fn summary(
    export: &TrustExport,
    root: &Certificate,
    root_path: &Path,
    policy_path: &Path,
    kind: &PolicyKind,
) -> String {
    let fingerprint = HashAlgorithm::Sha256
        .digest(root.der())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let (import, verify) = match kind {
        PolicyKind::Oci(_) => (
            format!("notation policy import {}", policy_path.display()),
            "notation verify <registry>/<repository>@<digest>",
        ),
        PolicyKind::Blob => (
            format!("notation blob policy import {}", policy_path.display()),
            "notation blob verify --signature <file>.<jws|cose>.sig <file>",
        ),
    };
    format!(
        "wrote {} (root '{}', SHA-256 {fingerprint})\n\
         wrote {} (trustStores ca:{}, trustedIdentities {})\n\
         \n\
         On each machine that verifies:\n  \
         notation cert add --type ca --store {} {}\n  \
         {import}\n\
         Then: {verify}\n",
        root_path.display(),
        root.subject(),
        policy_path.display(),
        export.store,
        export.identity,
        export.store,
        root_path.display(),
    )
}

fn common_name(cert: &Certificate) -> Option<String> {
    const CN: const_oid::ObjectIdentifier = const_oid::ObjectIdentifier::new_unwrap("2.5.4.3");
    cert.x509()
        .tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .rfind(|atv| atv.oid == CN)
        .and_then(|atv| {
            std::str::from_utf8(atv.value.value())
                .ok()
                .map(str::to_owned)
        })
}

/// A file and store name from a common name: lower-case ASCII letters and digits, `-` between.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.chars().take(64).collect();
    match out.trim_end_matches('-') {
        "" => "root".to_owned(),
        s => s.to_owned(),
    }
}

/// Notation's rule for trust store names: letters, digits, `_`, `.` and `-`.
fn check_store_name(name: &str) -> Result<String> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        Ok(name.to_owned())
    } else {
        Err(PluginError::validation(format!(
            "--store '{name}' is not a trust store name notation accepts: use letters, digits, \
             '_', '.' and '-' only"
        )))
    }
}

/// Notation's rules for `registryScopes`: `*` alone, or repositories without scheme, tag or
/// digest (`registry.example.com/team/app`, `localhost:5000/app`).
fn check_scopes(scopes: &[String]) -> Result<Vec<String>> {
    if scopes.is_empty() {
        return Ok(vec!["*".to_owned()]);
    }
    if scopes.iter().any(|s| s == "*") {
        if scopes.len() > 1 {
            return Err(PluginError::validation(
                "--scope '*' (every repository) cannot be combined with other scopes",
            ));
        }
        return Ok(scopes.to_vec());
    }
    let mut out: Vec<String> = Vec::new();
    for scope in scopes {
        let bad = |why: &str| {
            PluginError::validation(format!(
                "--scope '{scope}' is not a repository notation accepts ({why}); write \
                 REGISTRY/REPOSITORY, e.g. registry.example.com/team/app"
            ))
        };
        if scope.contains("://") {
            return Err(bad("no scheme"));
        }
        let Some((registry, repository)) = scope.split_once('/') else {
            return Err(bad("it needs a registry and a repository"));
        };
        if registry.is_empty() || repository.is_empty() || repository.ends_with('/') {
            return Err(bad("it needs a registry and a repository"));
        }
        if repository.contains(['@', ':']) {
            return Err(bad("no tag or digest"));
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        };
        if !repository.split('/').all(component_ok) {
            return Err(bad(
                "repository names are lower-case letters, digits and '.', '_', '-' separators",
            ));
        }
        if registry.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(bad("no spaces"));
        }
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_store_names() {
        assert_eq!(slug("Example Signing Root"), "example-signing-root");
        assert_eq!(slug("  Ünïcode -- Root!! "), "n-code-root");
        assert_eq!(slug("***"), "root");
        assert!(check_store_name(&slug("Example Signing Root")).is_ok());
    }

    #[test]
    fn store_names_and_scopes_follow_notations_rules() {
        assert!(check_store_name("my-store_1.0").is_ok());
        for bad in ["", "my store", "a/b", "ça"] {
            assert!(check_store_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_scopes(&[]).unwrap(), vec!["*"]);
        assert_eq!(
            check_scopes(&[
                "localhost:5000/app".into(),
                "registry.example.com/team/app".into(),
                "localhost:5000/app".into()
            ])
            .unwrap(),
            vec!["localhost:5000/app", "registry.example.com/team/app"]
        );
        assert_eq!(check_scopes(&["*".into()]).unwrap(), vec!["*"]);
        assert_eq!(
            check_scopes(&["r.example/team-1/app_2.x".into()]).unwrap(),
            vec!["r.example/team-1/app_2.x"]
        );
        let combined = check_scopes(&["*".into(), "x/y".into()]).unwrap_err();
        assert!(
            combined.message.contains("cannot be combined"),
            "{combined:?}"
        );
        for (bad, why) in [
            ("https://registry.example.com/app", "(no scheme)"),
            (
                "registry.example.com",
                "(it needs a registry and a repository)",
            ),
            ("/app", "(it needs a registry and a repository)"),
            (
                "registry.example.com/",
                "(it needs a registry and a repository)",
            ),
            (
                "registry.example.com/app/",
                "(it needs a registry and a repository)",
            ),
            ("registry.example.com/app:v1", "(no tag or digest)"),
            ("registry.example.com/app@sha256:00", "(no tag or digest)"),
            (
                "registry.example.com/App",
                "(repository names are lower-case",
            ),
            (
                "registry.example.com/-app",
                "(repository names are lower-case",
            ),
            (
                "registry.example.com/app-",
                "(repository names are lower-case",
            ),
            (
                "registry.example.com/a//b",
                "(repository names are lower-case",
            ),
            (
                "registry.example.com/a+b",
                "(repository names are lower-case",
            ),
            ("registry example.com/app", "(no spaces)"),
        ] {
            let e = check_scopes(&[bad.into()]).unwrap_err();
            assert!(
                e.message
                    .starts_with(&format!("--scope '{bad}' is not a repository")),
                "{e:?}"
            );
            assert!(e.message.contains(why), "{bad:?}: {e:?}");
        }
    }
}
