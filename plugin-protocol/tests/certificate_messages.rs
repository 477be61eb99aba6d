//! What the certificate commands say when their input is wrong: each message names the mistake
//! in the user's terms, through the softkey plugin binary.

mod common;

use plugin_protocol::testca::generate_key;
use plugin_protocol::KeySpec;

fn run(args: &[&str]) -> (i32, String) {
    let (code, _, stderr) = common::run_softkey(args);
    (code, stderr)
}

fn key(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        generate_key(KeySpec::Ec256).to_pkcs8_pem().as_bytes(),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_subject_that_is_not_a_dn_says_what_is_wrong_and_shows_the_form() {
    let dir = tempfile::tempdir().unwrap();
    let k = key(dir.path(), "k.pem");
    for (subject, why) in [
        ("release signer", "'release signer' has no '='"),
        ("CN=a,,O=b", "an empty part"),
        ("CN=a,O=b,", "an empty part"),
        ("CN=a,FOO=b", "'FOO' is not an attribute type"),
        ("CN=a+=b", "'' is not an attribute type"),
        ("", "it is empty"),
    ] {
        let (code, stderr) = run(&["certificate", "csr", "--key-id", &k, "--subject", subject]);
        assert_eq!(code, 1, "{subject:?}");
        assert!(stderr.contains(why), "{subject:?}: {stderr}");
        assert!(
            stderr.contains("\"CN=release signer,O=Example,ST=Washington,C=US\""),
            "{stderr}"
        );
        assert!(!stderr.contains("operation failed"), "{stderr}");
    }
    // An escaped comma is part of the value, not a separator.
    let (code, stderr) = run(&[
        "certificate",
        "csr",
        "--key-id",
        &k,
        "--subject",
        r"CN=a\,b,O=Example,ST=WA,C=US",
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn ca_issue_with_a_leaf_as_ca_cert_says_it_is_not_a_ca_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = key(d, "ca.pem");
    let other = key(d, "other.pem");
    let leaf_cert = d.join("leaf-cert.pem");
    let (code, stderr) = run(&[
        "certificate",
        "self-signed",
        "--key-id",
        &ca,
        "--subject",
        "CN=not a CA,O=Example,ST=WA,C=US",
        "--out",
        leaf_cert.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run(&[
        "ca",
        "issue",
        "--ca-key-id",
        &ca,
        "--ca-cert",
        leaf_cert.to_str().unwrap(),
        "--public-key-of",
        &other,
        "--subject",
        "CN=x,O=Example,ST=WA,C=US",
        "--out",
        d.join("chain.pem").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("('CN=not a CA,O=Example,ST=WA,C=US') is not a CA certificate"),
        "{stderr}"
    );
    assert!(stderr.contains("cA=false"), "{stderr}");
    assert!(stderr.contains("lacks keyCertSign"), "{stderr}");
    assert!(!stderr.contains("is not part of the chain"), "{stderr}");
    assert!(!d.join("chain.pem").exists());
}
