//! `trust export` and the subject warnings, driven through the softkey plugin binary. The pinned
//! identity is checked against openssl's own RFC 2253 rendering of the leaf, parsed with an
//! RFC 4514 reader that follows the rules notation applies (go-ldap's ParseDN, then notation's
//! mandatory-attribute and duplicate checks), and both policy files against notation's
//! documented trust-policy schema.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::run_softkey;
use plugin_protocol::chain::{self, to_pem_bundle};
use plugin_protocol::testca::{generate_key, CaProfile, LeafProfile, TestCa};
use plugin_protocol::KeySpec;

const LEAF_SUBJECT: &str = r#"CN=release \"signer\"\, EU,O=Exämple\, Inc.,L=Zürich,ST=Zürich,C=CH"#;
const PINNED: &str =
    r#"x509.subject: CN=release \"signer\"\, EU,O=Exämple\, Inc.,L=Zürich,ST=Zürich,C=CH"#;

/// A software key whose chain (leaf, signing CA, root) sits beside it.
struct Signer {
    dir: tempfile::TempDir,
    key_id: String,
    ca: TestCa,
}

impl Signer {
    fn new(subject: &str, profile: &LeafProfile) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_key(KeySpec::Ec256);
        let key_path = dir.path().join("key.pem");
        std::fs::write(&key_path, key.to_pkcs8_pem().as_bytes()).unwrap();
        let ca = TestCa::new("CN=Example Offline Root,O=Example,ST=Washington,C=US")
            .with_intermediate("CN=Example Signing CA,O=Example", &CaProfile::default());
        let chain = ca.issue_leaf_with(&key.public_key().unwrap(), subject, profile);
        std::fs::write(common::chain_path(&key_path), to_pem_bundle(&chain)).unwrap();
        Self {
            key_id: key_path.to_str().unwrap().to_owned(),
            dir,
            ca,
        }
    }
    fn out(&self) -> std::path::PathBuf {
        self.dir.path().join("trust")
    }
    fn export(&self, extra: &[&str]) -> (i32, String, String) {
        let out = self.out();
        let mut args = vec![
            "trust",
            "export",
            "--key-id",
            &self.key_id,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run_softkey(&args)
    }
}

#[test]
fn a_chain_with_an_intermediate_exports_only_its_root_and_a_pinned_oci_policy() {
    let signer = Signer::new(LEAF_SUBJECT, &LeafProfile::default());
    let (code, stdout, stderr) = signer.export(&[
        "--scope",
        "registry.example.com/team/app",
        "--scope",
        "localhost:5000/app",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let out = signer.out();

    // Only the root goes to the store, under the store named after it.
    let root_path = out.join("example-offline-root/example-offline-root.pem");
    let stored = chain::load_file(&root_path).unwrap();
    assert_eq!(stored, vec![signer.ca.root().clone()]);

    let policy = std::fs::read_to_string(out.join("trustpolicy.json")).unwrap();
    let golden = format!(
        r#"{{
  "version": "1.0",
  "trustPolicies": [
    {{
      "name": "example-offline-root",
      "registryScopes": [
        "registry.example.com/team/app",
        "localhost:5000/app"
      ],
      "signatureVerification": {{
        "level": "strict"
      }},
      "trustStores": [
        "ca:example-offline-root"
      ],
      "trustedIdentities": [
        {}
      ]
    }}
  ]
}}
"#,
        serde_json::to_string(PINNED).unwrap()
    );
    assert_eq!(policy, golden);
    check_policy(&policy, false);
    assert!(!out.join("trustpolicy.blob.json").exists());

    // The pin matches the leaf as an independent tool renders its subject.
    let leaf = signer.dir.path().join("leaf.pem");
    let chain = chain::load_file(&common::chain_path(Path::new(&signer.key_id))).unwrap();
    std::fs::write(&leaf, chain[0].to_pem()).unwrap();
    assert_pin_matches(PINNED, &openssl_subject(&leaf));

    let cert_add = format!(
        "notation cert add --type ca --store example-offline-root {}",
        root_path.display()
    );
    assert!(stdout.contains(&cert_add), "{stdout}");
    let import = format!(
        "notation policy import {}",
        out.join("trustpolicy.json").display()
    );
    assert!(stdout.contains(&import), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn the_blob_policy_is_global_has_no_scopes_and_uses_the_named_store() {
    let signer = Signer::new(LEAF_SUBJECT, &LeafProfile::default());
    let (code, stdout, stderr) = signer.export(&["--blob", "--store", "release-roots"]);
    assert_eq!(code, 0, "{stderr}");
    let out = signer.out();
    assert!(out.join("release-roots/example-offline-root.pem").is_file());
    let policy = std::fs::read_to_string(out.join("trustpolicy.blob.json")).unwrap();
    let golden = format!(
        r#"{{
  "version": "1.0",
  "trustPolicies": [
    {{
      "name": "release-roots",
      "signatureVerification": {{
        "level": "strict"
      }},
      "trustStores": [
        "ca:release-roots"
      ],
      "trustedIdentities": [
        {}
      ],
      "globalPolicy": true
    }}
  ]
}}
"#,
        serde_json::to_string(PINNED).unwrap()
    );
    assert_eq!(policy, golden);
    check_policy(&policy, true);
    assert!(!out.join("trustpolicy.json").exists());
    assert!(
        stdout.contains(&format!(
            "notation blob policy import {}",
            out.join("trustpolicy.blob.json").display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("notation blob verify"), "{stdout}");
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let signer = Signer::new(LEAF_SUBJECT, &LeafProfile::default());
    assert_eq!(signer.export(&[]).0, 0);
    let policy = signer.out().join("trustpolicy.json");
    std::fs::write(&policy, "mine").unwrap();
    let (code, stdout, stderr) = signer.export(&[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("pass --force"), "{stderr}");
    assert!(stderr.contains("trustpolicy.json"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), "mine");
    let (code, _, stderr) = signer.export(&["--force"]);
    assert_eq!(code, 0, "{stderr}");
    check_policy(&std::fs::read_to_string(&policy).unwrap(), false);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(signer.out())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
}

#[test]
fn a_leaf_notation_cannot_pin_is_refused_unless_any_identity_is_asked_for() {
    let signer = Signer::new("CN=release pipeline,O=Example", &LeafProfile::default());
    let (code, _, stderr) = signer.export(&[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("'CN=release pipeline,O=Example' cannot be pinned"),
        "{stderr}"
    );
    assert!(stderr.contains("no C and ST attributes"), "{stderr}");
    assert!(stderr.contains("--any-identity"), "{stderr}");
    assert!(!signer.out().join("trustpolicy.json").exists());

    let (code, _, stderr) = signer.export(&["--any-identity"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("any certificate the root"), "{stderr}");
    let policy = std::fs::read_to_string(signer.out().join("trustpolicy.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(
        doc["trustPolicies"][0]["trustedIdentities"],
        serde_json::json!(["*"])
    );
    check_policy(&policy, false);
}

#[test]
fn a_chain_without_its_root_names_the_root_it_needs() {
    let profile = LeafProfile {
        omit_root: true,
        ..LeafProfile::default()
    };
    let signer = Signer::new(LEAF_SUBJECT, &profile);
    let (code, _, stderr) = signer.export(&[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "no certificate for 'CN=Example Offline Root,O=Example,ST=Washington,C=US', the \
             issuer of 'CN=Example Signing CA,O=Example'"
        ),
        "{stderr}"
    );
    assert!(!signer.out().exists());
}

#[test]
fn bad_scopes_and_store_names_are_refused_before_the_key_is_used() {
    // The key id does not exist: the arguments are refused first.
    for args in [
        &["--scope", "https://registry.example.com/app"][..],
        &["--scope", "registry.example.com/app:v1"],
        &["--store", "my store"],
    ] {
        let mut all = vec!["trust", "export", "--key-id", "/nonexistent", "--out", "x"];
        all.extend_from_slice(args);
        let (code, _, stderr) = run_softkey(&all);
        assert_eq!(code, 1, "{args:?}");
        assert!(stderr.contains(args[1]), "{args:?}: {stderr}");
        assert!(!stderr.contains("nonexistent"), "{args:?}: {stderr}");
    }
    let (code, _, stderr) = run_softkey(&[
        "trust", "export", "--key-id", "k", "--out", "x", "--blob", "--scope", "r/a",
    ]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn certificate_commands_warn_before_writing_a_leaf_subject_notation_cannot_pin() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, generate_key(KeySpec::Ec256).to_pkcs8_pem().as_bytes()).unwrap();
    let key = key.to_str().unwrap();
    let short = "CN=release pipeline,O=Example";
    let full = "CN=release pipeline,O=Example,ST=Washington,C=US";
    for (command, subject, warns) in [
        (["certificate", "self-signed"], short, true),
        (["certificate", "csr"], short, true),
        (["certificate", "self-signed"], full, false),
        (["certificate", "csr"], full, false),
    ] {
        let (code, stdout, stderr) = run_softkey(&[
            command[0],
            command[1],
            "--key-id",
            key,
            "--subject",
            subject,
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains("-----BEGIN"), "{stdout}");
        assert_eq!(
            stderr.contains("cannot be pinned by a notation trust policy"),
            warns,
            "{command:?} {subject}: {stderr}"
        );
        if warns {
            assert!(stderr.contains("trustedIdentities [\"*\"]"), "{stderr}");
        }
    }

    // ca issue warns for a leaf, not for an intermediate CA.
    let root = dir.path().join("root.pem");
    let (code, _, stderr) = run_softkey(&[
        "ca",
        "init",
        "--key-id",
        key,
        "--subject",
        "CN=Root,O=Example",
        "--out",
        root.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("cannot be pinned"), "{stderr}");
    let other = dir.path().join("other.pem");
    std::fs::write(
        &other,
        generate_key(KeySpec::Ec384).to_pkcs8_pem().as_bytes(),
    )
    .unwrap();
    for (extra, warns) in [(&[][..], true), (&["--intermediate"][..], false)] {
        let mut args = vec![
            "ca",
            "issue",
            "--ca-key-id",
            key,
            "--ca-cert",
            root.to_str().unwrap(),
            "--public-key-of",
            other.to_str().unwrap(),
            "--subject",
            short,
        ];
        args.extend_from_slice(extra);
        let (code, _, stderr) = run_softkey(&args);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            stderr.contains("cannot be pinned"),
            warns,
            "{extra:?}: {stderr}"
        );
    }
}

#[test]
fn help_lists_the_trust_command() {
    let (code, stdout, _) = run_softkey(&["--help"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("trust "), "{stdout}");
    let (code, stdout, _) = run_softkey(&["trust", "export", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--key-id",
        "--out",
        "--store",
        "--scope",
        "--blob",
        "--any-identity",
        "--force",
    ] {
        assert!(stdout.contains(flag), "{flag}: {stdout}");
    }
}

// ---- an independent reader of what notation reads ----

/// The subject of a PEM certificate as openssl renders it in RFC 2253 form (UTF-8 kept).
fn openssl_subject(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253,-esc_msb",
            "-in",
        ])
        .arg(cert)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim()
        .strip_prefix("subject=")
        .unwrap()
        .trim()
        .to_owned()
}

/// RFC 4514 text to RDNs of (type, value): escapes `\c` and `\XX` decoded, white space around
/// separators trimmed, as go-ldap's ParseDN does.
fn parse_dn(text: &str) -> Vec<Vec<(String, String)>> {
    let mut rdns = vec![Vec::new()];
    let (mut buf, mut ty): (Vec<u8>, Option<String>) = (Vec::new(), None);
    let bytes = text.as_bytes();
    let mut i = 0;
    let take = |buf: &mut Vec<u8>| {
        String::from_utf8(std::mem::take(buf))
            .unwrap()
            .trim()
            .to_owned()
    };
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\\' => {
                let next = bytes[i + 1];
                if next.is_ascii_hexdigit() && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
                    buf.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    buf.push(next);
                    i += 2;
                }
                continue;
            }
            b'=' if ty.is_none() => ty = Some(take(&mut buf)),
            b',' | b'+' => {
                let t = ty.take().expect("attribute type before value");
                rdns.last_mut().unwrap().push((t, take(&mut buf)));
                if c == b',' {
                    rdns.push(Vec::new());
                }
            }
            _ => buf.push(c),
        }
        i += 1;
    }
    let t = ty.take().expect("attribute type before value");
    rdns.last_mut().unwrap().push((t, take(&mut buf)));
    rdns
}

/// Notation's checks on a pinned DN: single-valued RDNs, no duplicates, C, ST and O present.
fn notation_dn(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for rdn in parse_dn(text) {
        assert_eq!(rdn.len(), 1, "multi-valued RDN in {text}");
        let (t, v) = rdn.into_iter().next().unwrap();
        assert!(
            map.insert(t.clone(), v).is_none(),
            "duplicate {t} in {text}"
        );
    }
    for m in ["C", "ST", "O"] {
        assert!(
            map.get(m).is_some_and(|v| !v.is_empty()),
            "no {m} in {text}"
        );
    }
    map
}

fn assert_pin_matches(identity: &str, leaf_subject: &str) {
    let pinned = notation_dn(identity.strip_prefix("x509.subject:").unwrap());
    // The leaf side: every attribute of the subject, multi-valued RDNs flattened.
    let leaf: BTreeMap<String, String> = parse_dn(leaf_subject).into_iter().flatten().collect();
    for (t, v) in &pinned {
        assert_eq!(
            leaf.get(t),
            Some(v),
            "{t} of {identity} not in {leaf_subject}"
        );
    }
    assert_eq!(pinned.len(), leaf.len(), "{identity} vs {leaf_subject}");
}

/// Notation's documented trust-policy schema (version 1.0), OCI or blob.
fn check_policy(text: &str, blob: bool) {
    let doc: serde_json::Value = serde_json::from_str(text).unwrap();
    let obj = doc.as_object().unwrap();
    assert_eq!(obj["version"], "1.0");
    assert!(obj.keys().all(|k| k == "version" || k == "trustPolicies"));
    let policies = obj["trustPolicies"].as_array().unwrap();
    assert!(!policies.is_empty());
    for p in policies {
        let p = p.as_object().unwrap();
        let allowed: &[&str] = if blob {
            &[
                "name",
                "signatureVerification",
                "trustStores",
                "trustedIdentities",
                "globalPolicy",
            ]
        } else {
            &[
                "name",
                "registryScopes",
                "signatureVerification",
                "trustStores",
                "trustedIdentities",
            ]
        };
        assert!(p.keys().all(|k| allowed.contains(&k.as_str())), "{p:?}");
        assert!(!p["name"].as_str().unwrap().is_empty());
        if blob {
            assert!(p
                .get("globalPolicy")
                .is_none_or(serde_json::Value::is_boolean));
        } else {
            let scopes = p["registryScopes"].as_array().unwrap();
            assert!(!scopes.is_empty());
            let wildcard = scopes.iter().any(|s| s == "*");
            assert!(!wildcard || scopes.len() == 1);
        }
        let level = p["signatureVerification"]["level"].as_str().unwrap();
        assert!(["strict", "permissive", "audit", "skip"].contains(&level));
        for store in p["trustStores"].as_array().unwrap() {
            let (kind, name) = store.as_str().unwrap().split_once(':').unwrap();
            assert!(["ca", "signingAuthority", "tsa"].contains(&kind));
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
        }
        let ids = p["trustedIdentities"].as_array().unwrap();
        assert!(!ids.is_empty());
        if ids.iter().any(|i| i == "*") {
            assert_eq!(ids.len(), 1, "'*' cannot be combined with other identities");
        } else {
            for id in ids {
                let value = id.as_str().unwrap().strip_prefix("x509.subject:").unwrap();
                notation_dn(value);
            }
        }
    }
}
