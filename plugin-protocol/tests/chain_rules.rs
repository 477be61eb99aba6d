//! Every certificate-chain rule of the contract has a failing case here, and each failure names
//! the certificate and the rule.

use std::time::SystemTime;

use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::testca::{generate_key, CaProfile, LeafProfile, TestCa};
use plugin_protocol::{KeySpec, PublicKey};

fn key() -> PublicKey {
    generate_key(KeySpec::Ec256).public_key().unwrap()
}

/// Builds a chain for a fresh key and returns what `chain::build` says about it.
fn verdict(ca: &TestCa, profile: &LeafProfile) -> Result<Vec<Certificate>, String> {
    let k = key();
    let certs = ca.issue_leaf_with(&k, "CN=leaf", profile);
    chain::build(certs, Some(("key-1", &k)), SystemTime::now()).map_err(|e| e.message)
}

fn assert_broken(result: Result<Vec<Certificate>, String>, needles: &[&str]) {
    let msg = result.expect_err("chain should be refused");
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} should contain {n:?}");
    }
}

#[test]
fn a_correct_chain_passes_and_is_ordered_leaf_first() {
    let ca = TestCa::new("CN=Root").with_intermediate("CN=Intermediate", &CaProfile::default());
    let k = key();
    let mut certs = ca.issue_leaf(&k, "CN=leaf");
    certs.reverse(); // root, intermediate, leaf: the order must be repaired
    let chain = chain::build(certs, Some(("key-1", &k)), SystemTime::now()).unwrap();
    let subjects: Vec<_> = chain.iter().map(|c| c.subject().to_owned()).collect();
    assert_eq!(subjects, ["CN=leaf", "CN=Intermediate", "CN=Root"]);
}

#[test]
fn missing_root_names_the_missing_issuer() {
    let ca = TestCa::new("CN=Root");
    let p = LeafProfile {
        omit_root: true,
        ..Default::default()
    };
    assert_broken(
        verdict(&ca, &p),
        &["incomplete", "CN=Root", "issuer of 'CN=leaf'"],
    );
}

#[test]
fn missing_intermediate_names_the_link() {
    let ca = TestCa::new("CN=Root").with_intermediate("CN=Mid", &CaProfile::default());
    let k = key();
    let certs: Vec<_> = ca
        .issue_leaf(&k, "CN=leaf")
        .into_iter()
        .filter(|c| c.subject() != "CN=Mid")
        .collect();
    assert_broken(
        chain::build(certs, Some(("k", &k)), SystemTime::now()).map_err(|e| e.message),
        &["no certificate for 'CN=Mid'"],
    );
}

#[test]
fn an_unrelated_certificate_is_named() {
    let ca = TestCa::new("CN=Root");
    let stranger = TestCa::new("CN=Stranger Root");
    let k = key();
    let mut certs = ca.issue_leaf(&k, "CN=leaf");
    certs.push(stranger.root().clone());
    assert_broken(
        chain::build(certs, Some(("k", &k)), SystemTime::now()).map_err(|e| e.message),
        &["'CN=Stranger Root' is not part of the chain"],
    );
}

#[test]
fn leaf_key_usage_rules() {
    let ca = TestCa::new("CN=Root");
    let no_ku = LeafProfile {
        key_usage: false,
        ..Default::default()
    };
    assert_broken(verdict(&ca, &no_ku), &["'CN=leaf'", "no keyUsage"]);
    let not_critical = LeafProfile {
        key_usage_critical: false,
        ..Default::default()
    };
    assert_broken(
        verdict(&ca, &not_critical),
        &["keyUsage must be marked critical"],
    );
    let enc = LeafProfile {
        key_encipherment: true,
        ..Default::default()
    };
    assert_broken(verdict(&ca, &enc), &["'CN=leaf'", "keyEncipherment"]);
}

#[test]
fn leaf_eku_and_basic_constraints_rules() {
    let ca = TestCa::new("CN=Root");
    let server = LeafProfile {
        server_auth: true,
        ..Default::default()
    };
    assert_broken(verdict(&ca, &server), &["serverAuth", "codeSigning only"]);
    let ca_leaf = LeafProfile {
        ca: true,
        ..Default::default()
    };
    assert_broken(verdict(&ca, &ca_leaf), &["cA=true"]);
}

#[test]
fn expired_leaf_is_refused() {
    let ca = TestCa::new("CN=Root");
    let p = LeafProfile {
        expired: true,
        ..Default::default()
    };
    assert_broken(verdict(&ca, &p), &["'CN=leaf'", "expired on"]);
}

#[test]
fn ca_rules() {
    let no_cert_sign = CaProfile {
        key_cert_sign: false,
        ..Default::default()
    };
    let ca = TestCa::new("CN=Root").with_intermediate("CN=Mid", &no_cert_sign);
    assert_broken(
        verdict(&ca, &LeafProfile::default()),
        &["'CN=Mid'", "lacks keyCertSign"],
    );

    let bc_not_critical = CaProfile {
        basic_constraints_critical: false,
        ..Default::default()
    };
    let ca = TestCa::new("CN=Root").with_intermediate("CN=Mid", &bc_not_critical);
    assert_broken(
        verdict(&ca, &LeafProfile::default()),
        &["'CN=Mid'", "basicConstraints must be marked critical"],
    );

    // pathLen 0 on the root forbids the intermediate below it.
    let root_len0 = CaProfile {
        path_len: Some(0),
        ..Default::default()
    };
    let ca = TestCa::with_root_profile("CN=Root", &root_len0)
        .with_intermediate("CN=Mid", &CaProfile::default());
    assert_broken(
        verdict(&ca, &LeafProfile::default()),
        &["'CN=Root'", "pathLenConstraint 0"],
    );
    // ... but allows leaves directly.
    let ca = TestCa::with_root_profile("CN=Root", &root_len0);
    verdict(&ca, &LeafProfile::default()).unwrap();
}

#[test]
fn a_forged_signature_is_detected() {
    // Same subject names, different keys: the names link but the signature does not verify.
    let real = TestCa::new("CN=Root");
    let impostor = TestCa::new("CN=Root");
    let k = key();
    let mut certs = real.issue_leaf(&k, "CN=leaf");
    certs[1] = impostor.root().clone();
    assert_broken(
        chain::build(certs, Some(("k", &k)), SystemTime::now()).map_err(|e| e.message),
        &[
            "'CN=leaf'",
            "signature does not verify with the key of 'CN=Root'",
        ],
    );
}

#[test]
fn certificate_for_another_key() {
    let ca = TestCa::new("CN=Root");
    let certs = ca.issue_leaf(&key(), "CN=someone else");
    let mine = generate_key(KeySpec::Ec384).public_key().unwrap();
    let msg = chain::build(certs, Some(("arn:key/1", &mine)), SystemTime::now())
        .unwrap_err()
        .message;
    assert!(
        msg.contains("arn:key/1") && msg.contains("CN=someone else") && msg.contains("EC-256"),
        "{msg}"
    );
}

fn openssl(args: &[&str], dir: &std::path::Path) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sha1_weak_rsa_and_non_root_self_signed_are_refused() {
    // openssl makes the certificates our own CA deliberately cannot: SHA-1 and RSA-1024.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ext = "-addext=keyUsage=critical,digitalSignature";
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "a.key",
            "-subj",
            "/CN=sha1 leaf",
            "-sha1",
            ext,
            "-days",
            "2",
            "-out",
            "sha1.pem",
        ],
        d,
    );
    let certs = chain::load_file(&d.join("sha1.pem")).unwrap();
    let problems = chain::validate(&certs, SystemTime::now());
    assert!(
        problems
            .iter()
            .any(|p| p.subject == "CN=sha1 leaf" && p.rule.contains("SHA-1")),
        "{problems:?}"
    );

    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-keyout",
            "b.key",
            "-subj",
            "/CN=small",
            ext,
            "-days",
            "2",
            "-out",
            "small.pem",
        ],
        d,
    );
    let certs = chain::load_file(&d.join("small.pem")).unwrap();
    let problems = chain::validate(&certs, SystemTime::now());
    assert!(
        problems.iter().any(|p| p.rule.contains("RSA-1024")),
        "{problems:?}"
    );

    // A self-signed certificate in the middle of a chain.
    let ca = TestCa::new("CN=Root");
    let mut chain_certs = ca.issue_leaf(&key(), "CN=leaf");
    chain_certs.insert(1, chain::load_file(&d.join("sha1.pem")).unwrap().remove(0));
    let problems = chain::validate(&chain_certs, SystemTime::now());
    assert!(
        problems
            .iter()
            .any(|p| p.subject == "CN=sha1 leaf" && p.rule.contains("not the last certificate")),
        "{problems:?}"
    );
}

#[test]
fn single_self_signed_leaf_is_accepted_and_a_non_self_signed_single_cert_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "k.pem",
            "-subj",
            "/CN=solo",
            "-addext",
            "keyUsage=critical,digitalSignature",
            "-addext",
            "extendedKeyUsage=codeSigning",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-days",
            "2",
            "-out",
            "solo.pem",
        ],
        d,
    );
    let certs = chain::load_file(&d.join("solo.pem")).unwrap();
    assert_eq!(chain::validate(&certs, SystemTime::now()), vec![]);

    let ca = TestCa::new("CN=Root");
    let leaf_only = vec![ca.issue_leaf(&key(), "CN=leaf").remove(0)];
    let problems = chain::validate(&leaf_only, SystemTime::now());
    assert!(
        problems.iter().any(|p| p.rule.contains("self-signed root")),
        "{problems:?}"
    );
}

#[test]
fn pem_loading_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("empty.pem");
    std::fs::write(
        &f,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let msg = chain::load_file(&f).unwrap_err().message;
    assert!(
        msg.contains("empty.pem") && msg.contains("no PEM CERTIFICATE"),
        "{msg}"
    );
    let msg = chain::load_file(&dir.path().join("absent.pem"))
        .unwrap_err()
        .message;
    assert!(
        msg.contains("cannot read certificate file") && msg.contains("absent.pem"),
        "{msg}"
    );
}
