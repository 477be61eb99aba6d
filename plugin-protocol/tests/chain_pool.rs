//! Chains built from a pool of certificates, as a path builder does: after a CA key rollover a
//! store holds an old and a new CA certificate with one subject, and the chain must take the one
//! whose key signed the certificate below it.

mod common;

use std::path::Path;
use std::time::SystemTime;

use base64::Engine as _;
use common::softkey_plugin;
use plugin_protocol::chain::{self, to_pem_bundle, Certificate};
use plugin_protocol::contract::GenerateSignatureResponse;
use plugin_protocol::testca::{generate_key, TestCa};
use plugin_protocol::KeySpec;

const ROOT: &str = "CN=Rollover Root,O=Example,ST=Washington,C=US";

#[test]
fn the_root_whose_key_signed_is_taken_whatever_the_order_and_copies_are_dropped() {
    let key = generate_key(KeySpec::Ec256);
    let public = key.public_key().unwrap();
    let old = TestCa::new(ROOT);
    let new = TestCa::new(ROOT);
    let chain = new.issue_leaf(&public, "CN=signer,O=Example,ST=Washington,C=US");
    let leaf = chain[0].clone();
    for pool in [
        vec![leaf.clone(), old.root().clone(), new.root().clone()],
        vec![old.root().clone(), new.root().clone(), leaf.clone()],
        vec![
            new.root().clone(),
            leaf.clone(),
            old.root().clone(),
            new.root().clone(),
            leaf.clone(),
        ],
    ] {
        let built = chain::build(pool, Some(("k", &public)), SystemTime::now()).unwrap();
        assert_eq!(built, vec![leaf.clone(), new.root().clone()]);
    }
    // With only the old root, the chain is refused: its key did not sign the leaf.
    let err = chain::build(
        vec![leaf.clone(), old.root().clone()],
        Some(("k", &public)),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        err.message.contains("signature does not verify"),
        "{}",
        err.message
    );
    // A certificate with another name is still unrelated, and named.
    let other = TestCa::new("CN=Other Root,O=Example");
    let err = chain::build(
        vec![leaf, new.root().clone(), other.root().clone()],
        Some(("k", &public)),
        SystemTime::now(),
    )
    .unwrap_err();
    assert!(
        err.message
            .contains("'CN=Other Root,O=Example' is not part of the chain"),
        "{}",
        err.message
    );
}

fn run(args: &[&str]) {
    let (code, _, stderr) = common::run_softkey(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
}

fn key_file(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        generate_key(KeySpec::Ec384).to_pkcs8_pem().as_bytes(),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// Two intermediates with one subject under one root, made by the certificate commands (which
/// set subject and authority key identifiers); the leaf was issued by the new one. The plugin
/// signs with the chain through the new intermediate, from a pool that lists the old one first.
#[test]
fn generate_signature_picks_the_new_intermediate_of_a_rollover_by_key_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_owned();
    let root = key_file(d, "root.key");
    let (old_ca, new_ca) = (key_file(d, "old-ca.key"), key_file(d, "new-ca.key"));
    let signer = key_file(d, "signer.key");
    run(&[
        "ca",
        "init",
        "--key-id",
        &root,
        "--subject",
        ROOT,
        "--out",
        &p("root.pem"),
    ]);
    for (ca, out) in [(&old_ca, "old-ca.pem"), (&new_ca, "new-ca.pem")] {
        run(&[
            "ca",
            "issue",
            "--ca-key-id",
            &root,
            "--ca-cert",
            &p("root.pem"),
            "--public-key-of",
            ca,
            "--subject",
            "CN=Signing CA,O=Example,ST=Washington,C=US",
            "--intermediate",
            "--out",
            &p(out),
        ]);
    }
    run(&[
        "ca",
        "issue",
        "--ca-key-id",
        &new_ca,
        "--ca-cert",
        &p("new-ca.pem"),
        "--public-key-of",
        &signer,
        "--subject",
        "CN=signer,O=Example,ST=Washington,C=US",
        "--out",
        &p("issued.pem"),
    ]);
    let load = |n: &str| chain::load_file(Path::new(&p(n))).unwrap();
    let (issued, old_mid) = (load("issued.pem"), load("old-ca.pem"));
    // The pool: leaf, the old intermediate (and its root), then the new one and the root again.
    let mut pool: Vec<Certificate> = vec![issued[0].clone()];
    pool.extend(old_mid.iter().cloned());
    pool.extend(issued[1..].iter().cloned());
    std::fs::write(d.join("pool.pem"), to_pem_bundle(&pool)).unwrap();

    let config = common::config(&[("certificate_chain", &p("pool.pem"))]);
    let inv = softkey_plugin()
        .generate_signature(
            &signer,
            KeySpec::Ec384,
            KeySpec::Ec384.hash_algorithm(),
            b"x",
            config,
        )
        .unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let response: GenerateSignatureResponse = inv.response().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let returned: Vec<Vec<u8>> = response
        .certificate_chain
        .iter()
        .map(|c| b64.decode(c).unwrap())
        .collect();
    let expected: Vec<Vec<u8>> = issued.iter().map(|c| c.der().to_vec()).collect();
    assert_eq!(returned, expected, "leaf, the new intermediate, the root");
    assert_ne!(old_mid[0].der(), issued[1].der());
}
