//! Every certificate-chain rule of the contract has a failing case here, and each failure names
//! the certificate and the rule.

mod common;

use std::time::SystemTime;

use der::asn1::{Any, BitString, ObjectIdentifier};

use common::{openssl, openssl_chain, LEAF_EXT, P256, ROOT_EXT};
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

/// What `chain::build` (the path every plugin's chain takes) says about an openssl-made chain
/// whose leaf holds the signing key.
fn openssl_verdict(root_ext: &str, leaf_ext: &str) -> Result<Vec<Certificate>, String> {
    build_own(openssl_chain(P256, root_ext, leaf_ext, &[], None))
}

fn build_own(certs: Vec<Certificate>) -> Result<Vec<Certificate>, String> {
    let leaf_key = certs[0].public_key().unwrap();
    chain::build(certs, Some(("key-1", &leaf_key)), SystemTime::now()).map_err(|e| e.message)
}

#[test]
fn an_openssl_chain_with_the_notary_profile_passes() {
    // The control for every openssl case below: only the extension under test differs.
    let chain = openssl_verdict(ROOT_EXT, LEAF_EXT).unwrap();
    assert_eq!(chain[0].subject(), "CN=openssl leaf");
    // extendedKeyUsage and basicConstraints are optional on a leaf.
    openssl_verdict(ROOT_EXT, "keyUsage=critical,digitalSignature\n").unwrap();
}

#[test]
fn a_leaf_without_digital_signature_is_refused() {
    assert_broken(
        openssl_verdict(ROOT_EXT, "keyUsage=critical,nonRepudiation\n"),
        &["'CN=openssl leaf'", "leaf keyUsage lacks digitalSignature"],
    );
}

#[test]
fn every_forbidden_leaf_key_usage_is_named() {
    let msg = openssl_verdict(
        ROOT_EXT,
        "keyUsage=critical,digitalSignature,keyEncipherment,dataEncipherment,keyAgreement,\
         keyCertSign,cRLSign,encipherOnly,decipherOnly\n",
    )
    .unwrap_err();
    assert!(
        msg.contains(
            "'CN=openssl leaf': leaf keyUsage must not include keyEncipherment, \
             dataEncipherment, keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly"
        ),
        "{msg}"
    );
    for usage in ["dataEncipherment", "keyAgreement", "decipherOnly"] {
        assert_broken(
            openssl_verdict(
                ROOT_EXT,
                &format!("keyUsage=critical,digitalSignature,{usage}\n"),
            ),
            &[&format!("must not include {usage} (")],
        );
    }
}

#[test]
fn every_forbidden_leaf_extended_key_usage_is_named() {
    let msg = openssl_verdict(
        ROOT_EXT,
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning,serverAuth,clientAuth,\
         emailProtection,timeStamping,OCSPSigning,anyExtendedKeyUsage\n",
    )
    .unwrap_err();
    assert!(
        msg.contains(
            "'CN=openssl leaf': leaf extendedKeyUsage must not include serverAuth, clientAuth, \
             emailProtection, timeStamping, OCSPSigning, anyExtendedKeyUsage; use codeSigning only"
        ),
        "{msg}"
    );
}

#[test]
fn unparsable_leaf_extensions_are_named() {
    // An ASN.1 NULL where the extension's structure belongs: openssl writes what it is told.
    for (ext, rule) in [
        (
            "2.5.29.15=critical,DER:0500",
            "leaf keyUsage cannot be parsed",
        ),
        (
            "2.5.29.19=critical,DER:0500",
            "basicConstraints cannot be parsed",
        ),
        ("2.5.29.37=DER:0500", "extendedKeyUsage cannot be parsed"),
    ] {
        let leaf_ext = if ext.starts_with("2.5.29.15") {
            format!("{ext}\n")
        } else {
            format!("{LEAF_EXT}{ext}\n").replace("extendedKeyUsage=codeSigning\n", "")
        };
        assert_broken(
            openssl_verdict(ROOT_EXT, &leaf_ext),
            &["'CN=openssl leaf'", rule],
        );
    }
    // basicConstraints cA=false is allowed on a leaf.
    openssl_verdict(
        ROOT_EXT,
        &format!("{LEAF_EXT}basicConstraints=critical,CA:FALSE\n"),
    )
    .unwrap();
}

#[test]
fn ca_basic_constraints_and_key_usage_rules() {
    let cases = [
        (
            "keyUsage=critical,keyCertSign\n",
            "CA certificate has no basicConstraints",
        ),
        (
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign\n",
            "its basicConstraints say cA=false",
        ),
        (
            "basicConstraints=critical,CA:TRUE\n",
            "CA certificate has no keyUsage",
        ),
        (
            "basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign\n",
            "CA keyUsage must be marked critical",
        ),
        (
            "basicConstraints=critical,CA:TRUE\n2.5.29.15=critical,DER:0500\n",
            "keyUsage cannot be parsed",
        ),
        (
            "2.5.29.19=critical,DER:0500\nkeyUsage=critical,keyCertSign\n",
            "basicConstraints cannot be parsed",
        ),
    ];
    for (root_ext, rule) in cases {
        assert_broken(
            openssl_verdict(root_ext, LEAF_EXT),
            &["'CN=openssl root'", rule],
        );
    }
    // pathLen 0 allows the leaf directly below the root.
    openssl_verdict(
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\n",
        LEAF_EXT,
    )
    .unwrap();
}

#[test]
fn every_accepted_signature_algorithm_verifies_and_the_others_are_refused() {
    // Certificates signed by openssl with each hash notation accepts, RSA PKCS#1 v1.5, RSASSA-PSS
    // and ECDSA: each signature is verified, not just its algorithm named.
    let rsa: &[&str] = &["rsa:2048"];
    // MGF1 on the signature's own hash, the only PSS form Go's crypto/x509 (notation) verifies.
    let pss = |hash: &'static str, mgf1: &'static str| -> Vec<&'static str> {
        vec![
            hash,
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
            "-sigopt",
            mgf1,
        ]
    };
    for (root_key, sign) in [
        (P256, vec!["-sha256"]),
        (P256, vec!["-sha384"]),
        (P256, vec!["-sha512"]),
        (rsa, vec!["-sha256"]),
        (rsa, vec!["-sha384"]),
        (rsa, vec!["-sha512"]),
        (rsa, pss("-sha256", "rsa_mgf1_md:sha256")),
        (rsa, pss("-sha384", "rsa_mgf1_md:sha384")),
        (rsa, pss("-sha512", "rsa_mgf1_md:sha512")),
    ] {
        let certs = openssl_chain(root_key, ROOT_EXT, LEAF_EXT, &sign, None);
        build_own(certs.clone()).unwrap_or_else(|e| panic!("{root_key:?} {sign:?}: {e}"));
        // The same certificate with one signature bit flipped no longer verifies.
        let forged = vec![with_last_signature_bit_flipped(&certs[0]), certs[1].clone()];
        assert_broken(
            build_own(forged),
            &[
                "'CN=openssl leaf'",
                "signature does not verify with the key of 'CN=openssl root'",
            ],
        );
    }

    // RSASSA-PSS over SHA-1 is refused by name (openssl still makes it).
    let certs = openssl_chain(
        rsa,
        ROOT_EXT,
        LEAF_EXT,
        &pss("-sha1", "rsa_mgf1_md:sha1"),
        None,
    );
    assert_broken(
        build_own(certs),
        &[
            "'CN=openssl leaf'",
            "RSASSA-PSS with hash 1.3.14.3.2.26 is not supported",
        ],
    );
    // ECDSA over SHA-224: a usable key, an algorithm notation does not accept.
    let certs = openssl_chain(P256, ROOT_EXT, LEAF_EXT, &["-sha224"], None);
    assert_broken(
        build_own(certs),
        &["'CN=openssl leaf': uses signature algorithm 1.2.840.10045.4.3.1, which notation does not accept"],
    );
    // An Ed25519 root: a key notation cannot use, named on the root and on what it signed.
    let certs = openssl_chain(&["ed25519"], ROOT_EXT, LEAF_EXT, &[], None);
    assert_broken(
        build_own(certs),
        &[
            "'CN=openssl root': has an unusable public key",
            "an Ed25519 key",
            "'CN=openssl leaf': issuer 'CN=openssl root' has an unusable public key",
        ],
    );
    // A secp256k1 CA: an issuer key notation cannot use, named on the certificate it signed.
    let certs = openssl_chain(
        &["ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
        ROOT_EXT,
        LEAF_EXT,
        &[],
        None,
    );
    assert_broken(
        build_own(certs),
        &[
            "'CN=openssl root': has an unusable public key",
            "secp256k1",
            "'CN=openssl leaf': issuer 'CN=openssl root' has an unusable public key",
        ],
    );
}

#[test]
fn validity_is_checked_at_the_signing_time_inclusively() {
    let ca = TestCa::new("CN=Root");
    let k = key();
    let certs = ca.issue_leaf(&k, "CN=leaf");
    let v = &certs[0].x509().tbs_certificate.validity;
    let (from, to) = (v.not_before.to_system_time(), v.not_after.to_system_time());
    // Both ends of the validity period are inside it (RFC 5280 4.1.2.5).
    chain::build(certs.clone(), Some(("k", &k)), from).unwrap();
    chain::build(certs.clone(), Some(("k", &k)), to).unwrap();
    let second = std::time::Duration::from_secs(1);
    assert_broken(
        chain::build(certs.clone(), Some(("k", &k)), from - second).map_err(|e| e.message),
        &["'CN=leaf'", "is not valid before"],
    );
    assert_broken(
        chain::build(certs, Some(("k", &k)), to + second).map_err(|e| e.message),
        &["'CN=leaf'", "expired on"],
    );
}

#[test]
fn an_empty_chain_is_a_problem_not_a_pass() {
    assert_eq!(
        chain::validate(&[], SystemTime::now()),
        vec![chain::ChainProblem {
            subject: "(chain)".into(),
            rule: "the certificate chain is empty".into(),
        }]
    );
}

#[test]
fn without_a_key_the_leaf_is_the_certificate_that_issued_no_other() {
    // The certificate commands and the checker order bundles without a backend key.
    let ca = TestCa::new("CN=Root").with_intermediate("CN=Intermediate", &CaProfile::default());
    let issued = ca.issue_leaf(&key(), "CN=leaf");
    for shuffle in [[2, 1, 0], [1, 2, 0], [2, 0, 1]] {
        let certs: Vec<_> = shuffle.iter().map(|&i| issued[i].clone()).collect();
        let ordered = chain::order(certs, None).unwrap();
        assert_eq!(ordered, issued, "{shuffle:?}");
    }
    assert_eq!(format!("{:?}", issued[0]), "Certificate(CN=leaf)");
}

#[test]
fn a_key_mismatch_names_the_leaf_of_an_unordered_bundle() {
    let ca = TestCa::new("CN=Root").with_intermediate("CN=Intermediate", &CaProfile::default());
    let mut certs = ca.issue_leaf(&key(), "CN=someone else");
    certs.reverse();
    let mine = key();
    let msg = chain::build(certs, Some(("k", &mine)), SystemTime::now())
        .unwrap_err()
        .message;
    assert!(
        msg.contains("its leaf 'CN=someone else' certifies a different EC-256 key"),
        "{msg}"
    );
}

#[test]
fn a_pem_bundle_with_windows_line_endings_and_other_blocks_loads_every_certificate() {
    let ca = TestCa::new("CN=Root").with_intermediate("CN=Intermediate", &CaProfile::default());
    let k = key();
    let issued = ca.issue_leaf(&k, "CN=leaf");
    // A bundle as Windows tools write it, with a key block and text between the certificates.
    let mut text = String::from("Bag Attributes: friendlyName leaf\n");
    text += &issued[0].to_pem();
    text += &k.to_spki_pem();
    text += "subject=CN=Intermediate\n";
    text += &chain::to_pem_bundle(&issued[1..]);
    let crlf = text.replace('\n', "\r\n");
    for bundle in [text, crlf] {
        let certs = chain::parse_pem_or_der(bundle.as_bytes(), "bundle.pem").unwrap();
        assert_eq!(certs, issued);
    }
    // DER is one certificate.
    assert_eq!(
        chain::parse_pem_or_der(issued[2].der(), "root.der").unwrap(),
        issued[2..]
    );
}

#[test]
fn a_broken_pem_bundle_names_the_file_and_the_block() {
    let ca = TestCa::new("CN=Root");
    let k = key();
    let issued = ca.issue_leaf(&k, "CN=leaf");
    let (leaf, root) = (issued[0].to_pem(), issued[1].to_pem());
    let parse = |text: &str| {
        chain::parse_pem_or_der(text.as_bytes(), "bundle.pem")
            .unwrap_err()
            .message
    };
    // The control: both blocks, whole, load.
    assert_eq!(
        chain::parse_pem_or_der(format!("{leaf}{root}").as_bytes(), "bundle.pem").unwrap(),
        issued
    );
    let cut = &root[..root.find("-----END").unwrap()];
    assert_eq!(
        parse(&format!("{leaf}{cut}")),
        "bundle.pem: a PEM block has no END line"
    );
    // The damaged block is the third, counting the key block before it.
    let damaged = root.replacen("\nMII", "\n*II", 1);
    assert_ne!(damaged, root);
    let msg = parse(&format!("{leaf}{}{damaged}", k.to_spki_pem()));
    assert!(
        msg.starts_with("bundle.pem: invalid PEM block #3: "),
        "{msg}"
    );
    // A CERTIFICATE block holding something else, named by its place among the certificates.
    let mislabelled = k.to_spki_pem().replace("PUBLIC KEY", "CERTIFICATE");
    let msg = parse(&format!("{leaf}{mislabelled}"));
    assert!(
        msg.starts_with("bundle.pem (certificate #2) is not a valid X.509 certificate: "),
        "{msg}"
    );
    // Bytes that are not PEM are read as one DER certificate.
    let msg = chain::parse_pem_or_der(&[0x30, 0x03, 0x02, 0x01, 0x01], "root.der")
        .unwrap_err()
        .message;
    assert!(
        msg.starts_with("root.der is not a valid X.509 certificate: "),
        "{msg}"
    );
}

#[test]
fn a_chain_whose_leaf_holds_a_key_notation_cannot_use_says_so() {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        &["genpkey", "-algorithm", "ed25519", "-out", "ed.key"],
        dir.path(),
    );
    let certs = openssl_chain(
        P256,
        ROOT_EXT,
        LEAF_EXT,
        &[],
        Some(&dir.path().join("ed.key")),
    );
    let mine = key();
    let msg = chain::build(certs, Some(("key-1", &mine)), SystemTime::now())
        .unwrap_err()
        .message;
    for part in [
        "the certificate chain does not belong to key 'key-1', an EC-256 key (SPKI sha256 ",
        "its leaf 'CN=openssl leaf' certifies an unusable key (",
        "the key is an Ed25519 key, which notation cannot sign with",
    ] {
        assert!(msg.contains(part), "{msg:?} should contain {part:?}");
    }
}

/// `cert` re-encoded after `edit`: certificates no CA makes, for the rules on their encoding.
fn edited(cert: &Certificate, edit: impl FnOnce(&mut x509_cert::Certificate)) -> Certificate {
    let mut x = cert.x509().clone();
    edit(&mut x);
    Certificate::from_der(&der::Encode::to_der(&x).unwrap(), "edited").unwrap()
}

/// Sets the signature algorithm's parameters inside and outside the signed part alike, so
/// that only the rule under test is broken.
fn with_parameters(cert: &Certificate, parameters: Option<Any>) -> Certificate {
    edited(cert, |c| {
        c.signature_algorithm.parameters = parameters.clone();
        c.tbs_certificate.signature.parameters = parameters;
    })
}

/// The problems of a two-certificate chain whose leaf is `leaf`.
fn leaf_problems(leaf: Certificate, root: &Certificate) -> Vec<String> {
    problems_at(&[leaf, root.clone()], SystemTime::now())
}

/// What `chain::validate` says about `chain` at `at`, as a user reads it.
fn problems_at(chain: &[Certificate], at: SystemTime) -> Vec<String> {
    chain::validate(chain, at)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// `cert` with the last bit of its DER, in its signature, flipped: a forgery to be caught.
fn with_last_signature_bit_flipped(cert: &Certificate) -> Certificate {
    let mut der = cert.der().to_vec();
    *der.last_mut().unwrap() ^= 1;
    Certificate::from_der(&der, "forged").unwrap()
}

#[test]
fn signature_algorithm_encodings_notation_refuses_are_named() {
    let ec = openssl_chain(P256, ROOT_EXT, LEAF_EXT, &[], None);
    let rsa = openssl_chain(&["rsa:2048"], ROOT_EXT, LEAF_EXT, &["-sha256"], None);
    let pss = openssl_chain(
        &["rsa:2048"],
        ROOT_EXT,
        LEAF_EXT,
        &[
            "-sha256",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:digest",
            "-sigopt",
            "rsa_mgf1_md:sha256",
        ],
        None,
    );
    // The controls: re-encoding alone changes nothing.
    for certs in [&ec, &rsa, &pss] {
        assert_eq!(
            leaf_problems(edited(&certs[0], |_| {}), &certs[1]),
            Vec::<String>::new()
        );
    }
    let leaf = "certificate 'CN=openssl leaf': ";

    assert_eq!(
        leaf_problems(with_parameters(&pss[0], None), &pss[1]),
        [format!("{leaf}RSASSA-PSS signature without parameters")]
    );
    let problems = leaf_problems(with_parameters(&pss[0], Some(Any::null())), &pss[1]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!("{leaf}invalid RSASSA-PSS parameters: ")),
        "{problems:?}"
    );

    // A mask generation function other than MGF1 is named by its OID.
    let original = pss[0]
        .x509()
        .signature_algorithm
        .parameters
        .clone()
        .unwrap();
    let mut params: rsa::pkcs1::RsaPssParams = original.decode_as().unwrap();
    params.mask_gen.oid = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.99");
    let other_mgf = Any::encode_from(&params).unwrap();
    assert_eq!(
        leaf_problems(with_parameters(&pss[0], Some(other_mgf)), &pss[1]),
        [format!(
            "{leaf}uses RSASSA-PSS with SHA-256 and mask generation function \
             1.2.840.113549.1.1.99, which notation cannot verify: it requires MGF1 over the \
             same hash; reissue it"
        )]
    );

    // Every SHA-1 and MD5 algorithm is refused by name, whatever key signed.
    for weak in [
        "1.2.840.113549.1.1.5", // sha1WithRSAEncryption
        "1.2.840.113549.1.1.4", // md5WithRSAEncryption
        "1.2.840.10045.4.1",    // ecdsa-with-SHA1
        "1.2.840.10040.4.3",    // dsa-with-sha1
    ] {
        let oid = ObjectIdentifier::new_unwrap(weak);
        let weakened = edited(&ec[0], |c| {
            c.signature_algorithm.oid = oid;
            c.tbs_certificate.signature.oid = oid;
        });
        assert_eq!(
            leaf_problems(weakened, &ec[1]),
            [format!(
                "{leaf}is signed with SHA-1 or MD5, which notation refuses; reissue it with \
                 SHA-256 or stronger"
            )],
            "{weak}"
        );
    }

    let ragged = edited(&ec[0], |c| {
        let bytes = c.signature.raw_bytes().to_vec();
        c.signature = BitString::new(1, bytes).unwrap();
    });
    assert_eq!(
        leaf_problems(ragged, &ec[1]),
        [format!("{leaf}signature is not a whole number of bytes")]
    );
}

#[test]
fn a_signature_algorithm_outside_the_signed_part_must_be_the_one_inside() {
    let rsa = openssl_chain(&["rsa:2048"], ROOT_EXT, LEAF_EXT, &["-sha256"], None);
    // openssl writes sha256WithRSAEncryption with NULL parameters; without them outside the
    // signed part, the signature still verifies, and Go's parser still refuses the certificate.
    let bare_outside = edited(&rsa[0], |c| c.signature_algorithm.parameters = None);
    assert_eq!(
        leaf_problems(bare_outside, &rsa[1]),
        [
            "certificate 'CN=openssl leaf': its signatureAlgorithm differs from the signature \
          algorithm its tbsCertificate names (both 1.2.840.113549.1.1.11 but with different \
          parameters); notation refuses to read such a certificate; reissue it"
        ]
    );
    // On the root, the same rule names the root.
    let root = edited(&rsa[1], |c| c.signature_algorithm.parameters = None);
    let problems = leaf_problems(rsa[0].clone(), &root);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("certificate 'CN=openssl root': its signatureAlgorithm differs"),
        "{problems:?}"
    );

    let ec = openssl_chain(P256, ROOT_EXT, LEAF_EXT, &[], None);
    let sha384 = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    let relabelled = edited(&ec[0], |c| c.signature_algorithm.oid = sha384);
    let problems = leaf_problems(relabelled, &ec[1]);
    assert!(
        problems.contains(
            &"certificate 'CN=openssl leaf': its signatureAlgorithm differs from the signature \
              algorithm its tbsCertificate names (1.2.840.10045.4.3.3 outside it, \
              1.2.840.10045.4.3.2 inside); notation refuses to read such a certificate; \
              reissue it"
                .to_owned()
        ),
        "{problems:?}"
    );
}

/// A P-256 leaf issued by an RSA-8192 root, both valid for 20 years from 2026-12-03, made by
/// openssl (keys discarded): `req -new -nodes -newkey rsa:8192 -subj "/CN=RSA-8192 root"`,
/// `x509 -req -days 7300 -sha256 -signkey` with [`ROOT_EXT`], then the leaf's CSR signed by
/// it with `-CA` and [`LEAF_EXT`]. Made once: an 8192-bit key takes openssl 15 s or more.
const RSA8192_CHAIN: &str = include_str!("data/rsa8192-chain.pem");

#[test]
fn a_root_with_a_key_larger_than_a_signing_key_verifies_up_to_the_bound() {
    let certs = chain::parse_pem_or_der(RSA8192_CHAIN.as_bytes(), "rsa8192-chain.pem").unwrap();
    let at = certs[0]
        .x509()
        .tbs_certificate
        .validity
        .not_before
        .to_system_time();
    let leaf_key = certs[0].public_key().unwrap();
    let chain = chain::build(certs.clone(), Some(("key-1", &leaf_key)), at).unwrap();
    assert_eq!(chain, certs);
    // The root's key is used, not merely accepted: a flipped signature bit is caught.
    let forged = with_last_signature_bit_flipped(&certs[0]);
    assert_eq!(
        problems_at(&[forged, certs[1].clone()], at),
        [
            "certificate 'CN=leaf of an RSA-8192 root': signature does not verify with the key \
          of 'CN=RSA-8192 root'"
        ]
    );
    // A modulus of `bytes` bytes, all ones, in place of the root's key.
    let root_with_modulus = |bytes: usize| {
        let modulus = vec![0xff; bytes];
        let key = rsa::pkcs1::RsaPublicKey {
            modulus: der::asn1::UintRef::new(&modulus).unwrap(),
            public_exponent: der::asn1::UintRef::new(&[1, 0, 1]).unwrap(),
        };
        let spki = der::Encode::to_der(&key).unwrap();
        edited(&certs[1], |c| {
            c.tbs_certificate.subject_public_key_info.subject_public_key =
                BitString::from_bytes(&spki).unwrap();
        })
    };
    let problems = |root: Certificate| problems_at(&[certs[0].clone(), root], at);
    let too_large = problems(root_with_modulus(2049));
    assert!(
        too_large.contains(
            &"certificate 'CN=RSA-8192 root': has an RSA-16392 key, larger than the 16384 bits \
              a certificate's key may have"
                .to_owned()
        ),
        "{too_large:?}"
    );
    // At the bound the key is read: its signatures fail to verify, its size is no problem.
    let at_bound = problems(root_with_modulus(2048));
    assert!(
        at_bound.iter().all(|p| !p.contains("RSA-16384")) && !at_bound.is_empty(),
        "{at_bound:?}"
    );
    assert!(
        at_bound.contains(
            &"certificate 'CN=leaf of an RSA-8192 root': signature does not verify with the \
              key of 'CN=RSA-8192 root'"
                .to_owned()
        ),
        "{at_bound:?}"
    );
}

#[test]
fn an_rsa_key_is_read_only_as_rsa_encryption_with_null_parameters() {
    // A leaf whose key openssl marks RSASSA-PSS only: the key signs, the certificate is
    // unusable to notation, whose parser knows RSA keys only as rsaEncryption.
    let dir = tempfile::tempdir().unwrap();
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA-PSS",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "pss.key",
        ],
        dir.path(),
    );
    let certs = openssl_chain(
        P256,
        ROOT_EXT,
        LEAF_EXT,
        &[],
        Some(&dir.path().join("pss.key")),
    );
    assert_eq!(
        leaf_problems(certs[0].clone(), &certs[1]),
        [
            "certificate 'CN=openssl leaf': has an RSA key marked RSASSA-PSS only \
          (id-RSASSA-PSS), which notation cannot use; reissue the certificate with the key as \
          rsaEncryption (the key itself can stay)"
        ]
    );

    // rsaEncryption without its NULL parameters, on the leaf and on a root.
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.key",
        ],
        dir.path(),
    );
    let rsa = openssl_chain(
        &["rsa:2048"],
        ROOT_EXT,
        LEAF_EXT,
        &["-sha256"],
        Some(&dir.path().join("rsa.key")),
    );
    // The control: both RSA keys as openssl writes them.
    assert_eq!(leaf_problems(rsa[0].clone(), &rsa[1]), Vec::<String>::new());
    let bare = |cert: &Certificate| {
        edited(cert, |c| {
            c.tbs_certificate
                .subject_public_key_info
                .algorithm
                .parameters = None;
        })
    };
    let rule = "has an RSA key without the NULL parameters RFC 3279 requires of rsaEncryption, \
                and notation refuses to read such a certificate; reissue it";
    let root_problems = leaf_problems(rsa[0].clone(), &bare(&rsa[1]));
    assert!(
        root_problems.contains(&format!("certificate 'CN=openssl root': {rule}")),
        "{root_problems:?}"
    );
    let problems = leaf_problems(bare(&rsa[0]), &rsa[1]);
    assert!(
        problems.contains(&format!("certificate 'CN=openssl leaf': {rule}")),
        "{problems:?}"
    );

    // An rsaEncryption key that is not a PKCS#1 key: named on the root, and on what it signed.
    let garbled = edited(&rsa[1], |c| {
        c.tbs_certificate.subject_public_key_info.subject_public_key =
            BitString::from_bytes(&[0x05, 0x00]).unwrap();
    });
    let problems = leaf_problems(rsa[0].clone(), &garbled);
    for needle in [
        "certificate 'CN=openssl root': has an invalid RSA public key: ",
        "certificate 'CN=openssl leaf': issuer 'CN=openssl root' has an invalid RSA public key: ",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(needle)),
            "{problems:?} should hold {needle:?}"
        );
    }
}

#[test]
fn a_negative_serial_number_is_named() {
    let ec = openssl_chain(P256, ROOT_EXT, LEAF_EXT, &[], None);
    let with_serial = |der: &[u8]| {
        edited(&ec[0], |c| {
            c.tbs_certificate.serial_number = der::Decode::from_der(der).unwrap();
        })
    };
    let rule = "certificate 'CN=openssl leaf': has a negative serial number, which notation \
                refuses to read (RFC 5280 requires a positive one); reissue it";
    for negative in [&[0x02, 0x01, 0xff][..], &[0x02, 0x02, 0x80, 0x00]] {
        let problems = leaf_problems(with_serial(negative), &ec[1]);
        assert!(
            problems.contains(&rule.to_owned()),
            "{negative:?}: {problems:?}"
        );
    }
    // 0x80 with its sign byte is positive, as is one byte below 0x80.
    for positive in [&[0x02, 0x02, 0x00, 0x80][..], &[0x02, 0x01, 0x7f]] {
        let problems = leaf_problems(with_serial(positive), &ec[1]);
        assert!(
            !problems.contains(&rule.to_owned()),
            "{positive:?}: {problems:?}"
        );
        assert!(!problems.is_empty(), "the edited leaf no longer verifies");
    }
}

#[test]
fn a_repeated_extension_is_named_once() {
    let ec = openssl_chain(P256, ROOT_EXT, LEAF_EXT, &[], None);
    let repeated = edited(&ec[0], |c| {
        let exts = c.tbs_certificate.extensions.as_mut().unwrap();
        let first = exts[0].clone();
        exts.push(first.clone());
        exts.push(first);
        let second = exts[1].clone();
        exts.push(second);
    });
    let ids: Vec<String> = ec[0].x509().tbs_certificate.extensions.as_ref().unwrap()[..2]
        .iter()
        .map(|e| e.extn_id.to_string())
        .collect();
    let problems = leaf_problems(repeated, &ec[1]);
    assert!(
        problems.contains(&format!(
            "certificate 'CN=openssl leaf': repeats the extension {}, {}, which notation \
             refuses to read (RFC 5280 allows each extension once); reissue it",
            ids[0], ids[1]
        )),
        "{problems:?}"
    );
}

#[test]
fn rsassa_pss_is_accepted_only_in_the_form_notation_verifies() {
    // MGF1 over the message's hash and a salt as long as the hash, as Go's crypto/x509 reads
    // RSASSA-PSS; openssl makes the other forms, whose signatures are themselves good.
    let pss = |hash: &'static str, salt: &'static str, mgf1: &'static str| {
        openssl_chain(
            &["rsa:2048"],
            ROOT_EXT,
            LEAF_EXT,
            &[
                hash,
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                salt,
                "-sigopt",
                mgf1,
            ],
            None,
        )
    };
    // Both certificates are signed alike: each is named.
    let named =
        |rule: &str| ["leaf", "root"].map(|c| format!("certificate 'CN=openssl {c}': {rule}"));
    let chain = pss("-sha384", "rsa_pss_saltlen:48", "rsa_mgf1_md:sha384");
    assert_eq!(
        leaf_problems(chain[0].clone(), &chain[1]),
        Vec::<String>::new()
    );
    let chain = pss("-sha256", "rsa_pss_saltlen:20", "rsa_mgf1_md:sha256");
    assert_eq!(
        leaf_problems(chain[0].clone(), &chain[1]),
        named(
            "uses RSASSA-PSS with SHA-256 and a 20-byte salt, which notation cannot verify: \
             it requires a salt as long as the hash (32 bytes); reissue it"
        )
    );
    let chain = pss("-sha512", "rsa_pss_saltlen:digest", "rsa_mgf1_md:sha1");
    assert_eq!(
        leaf_problems(chain[0].clone(), &chain[1]),
        named(
            "uses RSASSA-PSS with SHA-512 and MGF1 over SHA-1, which notation cannot verify: \
             it requires MGF1 over the same hash; reissue it"
        )
    );
    // Every hash is named as what it is, the signature's and MGF1's.
    for (hash, mgf1, named) in [
        (
            "-sha256",
            "rsa_mgf1_md:sha384",
            "SHA-256 and MGF1 over SHA-384",
        ),
        (
            "-sha384",
            "rsa_mgf1_md:sha256",
            "SHA-384 and MGF1 over SHA-256",
        ),
        (
            "-sha256",
            "rsa_mgf1_md:sha512",
            "SHA-256 and MGF1 over SHA-512",
        ),
    ] {
        let chain = pss(hash, "rsa_pss_saltlen:digest", mgf1);
        let problems = leaf_problems(chain[0].clone(), &chain[1]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let expected = format!("uses RSASSA-PSS with {named}, which notation cannot verify");
        assert!(
            problems.iter().all(|p| p.contains(&expected)),
            "{problems:?} should say {expected:?}"
        );
    }
}

#[test]
fn an_ec_ca_verifies_with_every_accepted_hash_whatever_its_curve() {
    // SHA-256 under a P-521 CA is a digest shorter than half the curve's field, which the
    // ecdsa crate refuses on its own and Go and OpenSSL verify.
    for curve in ["P-256", "P-384", "P-521"] {
        let curve_opt = format!("ec_paramgen_curve:{curve}");
        for hash in ["-sha256", "-sha384", "-sha512"] {
            let certs = openssl_chain(
                &["ec", "-pkeyopt", &curve_opt],
                ROOT_EXT,
                LEAF_EXT,
                &[hash],
                None,
            );
            assert_eq!(
                leaf_problems(certs[0].clone(), &certs[1]),
                Vec::<String>::new(),
                "{curve} {hash}"
            );
            // The signature is checked, not waved through: one flipped bit is caught.
            let forged = with_last_signature_bit_flipped(&certs[0]);
            assert_eq!(
                leaf_problems(forged, &certs[1]),
                [
                    "certificate 'CN=openssl leaf': signature does not verify with the key of \
                  'CN=openssl root'"
                ],
                "{curve} {hash}"
            );
        }
    }
}

#[test]
fn an_ec_key_is_read_only_with_its_point_uncompressed() {
    // openssl writes a key's point compressed when asked; Go's parser reads only the
    // uncompressed form, so notation cannot read the certificate.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "k.pem",
        ],
        d,
    );
    openssl(
        &[
            "ec",
            "-in",
            "k.pem",
            "-conv_form",
            "compressed",
            "-out",
            "compressed.pem",
        ],
        d,
    );
    let uncompressed = openssl_chain(P256, ROOT_EXT, LEAF_EXT, &[], Some(&d.join("k.pem")));
    assert_eq!(
        leaf_problems(uncompressed[0].clone(), &uncompressed[1]),
        Vec::<String>::new()
    );
    let certs = openssl_chain(
        P256,
        ROOT_EXT,
        LEAF_EXT,
        &[],
        Some(&d.join("compressed.pem")),
    );
    // The same key either way: the point's encoding is the certificate's fault alone.
    assert_eq!(
        certs[0].public_key().unwrap(),
        uncompressed[0].public_key().unwrap()
    );
    assert_eq!(
        leaf_problems(certs[0].clone(), &certs[1]),
        [
            "certificate 'CN=openssl leaf': has an EC key whose point is compressed, which \
          notation refuses to read; reissue the certificate with the point uncompressed (the \
          key itself can stay)"
        ]
    );
}
