//! The certificate commands every plugin has, driven through the softkey plugin binary and
//! checked by openssl as an independent verifier.

mod common;

use std::path::Path;

use common::*;
use plugin_protocol::chain;
use plugin_protocol::testca::generate_key;
use plugin_protocol::KeySpec;

fn key_file(dir: &Path, name: &str, spec: KeySpec) -> String {
    let path = dir.join(name);
    std::fs::write(&path, generate_key(spec).to_pkcs8_pem().as_bytes()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A root CA of `spec` in `dir`, its files named after `name`: its key id and the path of its
/// certificate (`ca init`, CN=Root).
fn root_ca(dir: &Path, name: &str, spec: KeySpec) -> (String, String) {
    let key = key_file(dir, &format!("{name}.key"), spec);
    let pem = dir.join(format!("{name}.pem")).to_str().unwrap().to_owned();
    ok(&[
        "ca",
        "init",
        "--key-id",
        &key,
        "--subject",
        "CN=Root",
        "--out",
        &pem,
    ]);
    (key, pem)
}

/// `ca issue` by `ca_key` with the CA certificate `ca_cert` and `rest` fails: exit 1, nothing
/// on stdout, and `says` on stderr.
fn refused_issue(ca_key: &str, ca_cert: &str, rest: &[&str], says: &str) {
    let mut args = vec!["ca", "issue", "--ca-key-id", ca_key, "--ca-cert", ca_cert];
    args.extend_from_slice(rest);
    let (code, out, err) = run_softkey(&args);
    assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
    assert!(err.contains(says), "{args:?}: no '{says}' in {err}");
}

fn ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = run_softkey(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    stdout
}

#[test]
fn a_root_of_every_key_spec_issues_chains_that_openssl_and_notation_rules_accept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_owned();
    for (i, root_spec) in KeySpec::ALL.into_iter().enumerate() {
        // The leaf spec rotates so every spec is also certified once.
        let leaf_spec = KeySpec::ALL[(i + 1) % 6];
        let root = key_file(d, &format!("root{i}.key"), root_spec);
        let mid = key_file(d, &format!("mid{i}.key"), KeySpec::Ec384);
        let leaf = key_file(d, &format!("leaf{i}.key"), leaf_spec);
        let (root_pem, mid_pem, csr, chain_pem) = (
            p(&format!("root{i}.pem")),
            p(&format!("mid{i}.pem")),
            p(&format!("leaf{i}.csr")),
            p(&format!("chain{i}.pem")),
        );

        ok(&[
            "ca",
            "init",
            "--key-id",
            &root,
            "--subject",
            "CN=Offline Root,O=Example",
            "--path-len",
            "1",
            "--out",
            &root_pem,
        ]);
        ok(&[
            "ca",
            "issue",
            "--ca-key-id",
            &root,
            "--ca-cert",
            &root_pem,
            "--public-key-of",
            &mid,
            "--subject",
            "CN=Signing CA",
            "--intermediate",
            "--out",
            &mid_pem,
        ]);
        ok(&[
            "certificate",
            "csr",
            "--key-id",
            &leaf,
            "--subject",
            "CN=release signer,O=Example",
            "--out",
            &csr,
        ]);
        openssl(&["req", "-verify", "-noout", "-in", &csr], d);
        ok(&[
            "ca",
            "issue",
            "--ca-key-id",
            &mid,
            "--ca-cert",
            &mid_pem,
            "--csr",
            &csr,
            "--out",
            &chain_pem,
        ]);
        openssl(
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                &root_pem,
                "-untrusted",
                &mid_pem,
                &chain_pem,
            ],
            d,
        );

        let certs = chain::load_file(Path::new(&chain_pem)).unwrap();
        let subjects: Vec<_> = certs.iter().map(|c| c.subject().to_owned()).collect();
        assert_eq!(
            subjects,
            [
                "CN=release signer,O=Example",
                "CN=Signing CA",
                "CN=Offline Root,O=Example"
            ],
            "{root_spec}"
        );

        // The plugin signs with that chain, and notation's rules hold for it.
        let inv = softkey_plugin()
            .generate_signature(
                &leaf,
                leaf_spec,
                leaf_spec.hash_algorithm(),
                b"payload",
                config(&[("certificate_chain", &chain_pem)]),
            )
            .unwrap();
        assert!(
            inv.succeeded(),
            "{root_spec} root, {leaf_spec} leaf: {}",
            inv.stderr_text()
        );
    }
}

#[test]
fn self_signed_certificates_are_single_cert_chains_notation_accepts() {
    let dir = tempfile::tempdir().unwrap();
    for spec in KeySpec::ALL {
        let key = key_file(dir.path(), "k.pem", spec);
        let out = dir.path().join(format!("{spec}.pem"));
        ok(&[
            "certificate",
            "self-signed",
            "--key-id",
            &key,
            "--subject",
            "CN=solo",
            "--days",
            "30",
            "--out",
            out.to_str().unwrap(),
        ]);
        openssl(
            &[
                "verify",
                "-x509_strict",
                "-CAfile",
                out.to_str().unwrap(),
                out.to_str().unwrap(),
            ],
            dir.path(),
        );
        let inv = softkey_plugin()
            .generate_signature(
                &key,
                spec,
                spec.hash_algorithm(),
                b"x",
                config(&[("certificate_chain", out.to_str().unwrap())]),
            )
            .unwrap();
        assert!(inv.succeeded(), "{spec}: {}", inv.stderr_text());
    }
}

#[test]
fn certificate_command_errors_are_actionable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (root, root_pem) = root_ca(d, "root", KeySpec::Ec256);
    let root_pem_s = root_pem.as_str();
    let other = key_file(d, "other.key", KeySpec::Ec256);

    let (code, _, err) = run_softkey(&[
        "ca",
        "init",
        "--key-id",
        &root,
        "--subject",
        "CN=Root",
        "--out",
        root_pem_s,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("exists; pass --force"), "{err}");
    ok(&[
        "ca",
        "init",
        "--key-id",
        &root,
        "--subject",
        "CN=Root",
        "--out",
        root_pem_s,
        "--force",
    ]);

    refused_issue(
        &other,
        root_pem_s,
        &["--public-key-of", &root, "--subject", "CN=x"],
        "does not certify the key",
    );
    refused_issue(
        &root,
        root_pem_s,
        &["--public-key-of", &other],
        "--subject is required",
    );

    let (code, _, err) = run_softkey(&[
        "certificate",
        "self-signed",
        "--key-id",
        &root,
        "--subject",
        "no equals sign",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is not a distinguished name"), "{err}");

    let (code, _, err) = run_softkey(&["ca", "issue", "--no-such-flag"]);
    assert_eq!(code, 2, "usage errors exit 2: {err}");

    // A PEM file of something else is named for what it holds.
    refused_issue(
        &root,
        root_pem_s,
        &["--csr", root_pem_s],
        "holds a PEM 'CERTIFICATE', not a CERTIFICATE REQUEST",
    );

    // A CSR whose signature was altered is refused.
    let csr = ok(&[
        "certificate",
        "csr",
        "--key-id",
        &other,
        "--subject",
        "CN=x",
    ]);
    let (_, mut der) = der::pem::decode_vec(csr.as_bytes()).unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let tampered = d.join("tampered.csr");
    std::fs::write(
        &tampered,
        der::pem::encode_string("CERTIFICATE REQUEST", der::pem::LineEnding::LF, &der).unwrap(),
    )
    .unwrap();
    refused_issue(
        &root,
        root_pem_s,
        &["--csr", tampered.to_str().unwrap()],
        "does not verify with its own key",
    );
}

#[test]
fn a_csr_or_public_key_file_is_read_bounded_and_never_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (root, root_pem) = root_ca(d, "root", KeySpec::Ec256);
    let root_pem = root_pem.as_str();
    let fifo = d.join("request.fifo");
    plugin_protocol::client::make_fifo(&fifo);
    let huge = d.join("huge.pem");
    std::fs::write(&huge, vec![b'A'; (1 << 20) + 1]).unwrap();
    let binary = d.join("binary.pem");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    let fifo = fifo.to_str().unwrap();
    let huge = huge.to_str().unwrap();
    let binary = binary.to_str().unwrap();
    for option in ["--csr", "--public-key"] {
        let mut cases = vec![
            (
                fifo,
                format!("{option} {fifo} is a FIFO, not a regular file"),
            ),
            ("/dev/zero", format!("{option} /dev/zero is a device")),
            ("/no/such.pem", format!("cannot read {option} /no/such.pem")),
            (huge, format!("{option} {huge} is larger than 1024 KiB")),
        ];
        if option == "--public-key" {
            cases.push((binary, format!("--public-key {binary} is not a PEM file")));
        }
        for (path, says) in cases {
            refused_issue(&root, root_pem, &[option, path, "--subject", "CN=x"], &says);
        }
    }
}

#[test]
fn validity_is_what_days_asks_within_the_cas_own_and_serials_are_random_and_positive() {
    use std::time::UNIX_EPOCH;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_owned();
    let (ca, ca_pem) = (key_file(d, "ca.key", KeySpec::Ec256), p("ca.pem"));
    ok(&[
        "ca",
        "init",
        "--key-id",
        &ca,
        "--subject",
        "CN=Root",
        "--days",
        "10",
        "--out",
        &ca_pem,
    ]);
    let leaf = key_file(d, "leaf.key", KeySpec::Ec256);
    let validity = |path: &str| {
        let certs = chain::load_file(Path::new(path)).unwrap();
        let v = &certs[0].x509().tbs_certificate.validity;
        let secs = |t: &x509_cert::time::Time| {
            t.to_system_time()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        (secs(&v.not_before), secs(&v.not_after))
    };
    let (ca_start, ca_end) = validity(&ca_pem);
    // Valid from five minutes ago (clock skew), for the days asked.
    assert_eq!(ca_end - ca_start, 10 * 86400 + 300);
    let issue = |days: &str, out: &str| {
        let (code, _, err) = run_softkey(&[
            "ca",
            "issue",
            "--ca-key-id",
            &ca,
            "--ca-cert",
            &ca_pem,
            "--public-key-of",
            &leaf,
            "--subject",
            "CN=leaf,O=Example,ST=WA,C=US",
            "--days",
            days,
            "--out",
            out,
        ]);
        assert_eq!(code, 0, "{err}");
        err
    };
    let err = issue("3", &p("short.pem"));
    let (start, end) = validity(&p("short.pem"));
    assert_eq!(end - start, 3 * 86400 + 300);
    assert!(!err.contains("validity shortened"), "{err}");
    // Never past the CA's own expiry: cut there, and said.
    let err = issue("30", &p("long.pem"));
    assert_eq!(validity(&p("long.pem")).1, ca_end);
    assert!(
        err.contains("note: validity shortened to the CA certificate's expiry"),
        "{err}"
    );

    let serials: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            let out = p(&format!("self{i}.pem"));
            ok(&[
                "certificate",
                "self-signed",
                "--key-id",
                &leaf,
                "--subject",
                "CN=s,O=E,ST=WA,C=US",
                "--out",
                &out,
            ]);
            let certs = chain::load_file(Path::new(&out)).unwrap();
            certs[0]
                .x509()
                .tbs_certificate
                .serial_number
                .as_bytes()
                .to_vec()
        })
        .collect();
    for s in &serials {
        assert!(s.len() == 16 && (1..=0x7f).contains(&s[0]), "{s:02x?}");
    }
    let mut distinct = serials.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), serials.len(), "{serials:02x?}");
}

#[test]
fn public_key_matches_what_describe_key_reports() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k.pem", KeySpec::Rsa2048);
    let pem = ok(&["public-key", "--key-id", &key]);
    let public = plugin_protocol::PublicKey::from_spki_pem(&pem).unwrap();
    assert_eq!(public.key_spec(), KeySpec::Rsa2048);
}

#[test]
fn a_backend_signature_that_fails_the_self_check_makes_no_certificate_or_csr() {
    // Each command signs through the backend; a signature by another key (any spec) or with the
    // wrong PSS salt must stop it before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_owned();
    for spec in [KeySpec::Ec384, KeySpec::Rsa2048] {
        let (key, root_pem) = root_ca(d, &spec.to_string(), spec);
        let other = key_file(d, &format!("{spec}-other.key"), spec);
        let mut knobs = vec![format!("sign_with={other}")];
        if spec.is_rsa() {
            knobs.push("pss_salt=20".to_owned());
        }
        for knob in &knobs {
            let out = p("out.pem");
            let commands: [Vec<&str>; 4] = [
                vec![
                    "certificate",
                    "self-signed",
                    "--key-id",
                    &key,
                    "--subject",
                    "CN=x",
                ],
                vec!["certificate", "csr", "--key-id", &key, "--subject", "CN=x"],
                vec!["ca", "init", "--key-id", &key, "--subject", "CN=x"],
                vec![
                    "ca",
                    "issue",
                    "--ca-key-id",
                    &key,
                    "--ca-cert",
                    &root_pem,
                    "--public-key-of",
                    &other,
                    "--subject",
                    "CN=x",
                ],
            ];
            for mut args in commands {
                args.extend_from_slice(&["--plugin-config", knob, "--out", &out]);
                let (code, stdout, stderr) = run_softkey(&args);
                assert_eq!(code, 1, "{args:?}: {stderr}");
                assert!(stdout.is_empty(), "{args:?}: {stdout}");
                assert!(
                    stderr.contains(&format!("self-check failed for key '{key}'")),
                    "{args:?}: {stderr}"
                );
                if knob.starts_with("pss_salt") {
                    assert!(stderr.contains("20-byte salt"), "{args:?}: {stderr}");
                }
                assert!(!Path::new(&out).exists(), "{args:?} wrote {out}");
            }
        }
    }
}

#[test]
fn certificate_commands_refuse_an_unknown_plugin_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "k.pem", KeySpec::Ec256);
    let out = dir.path().join("out.pem");
    let (code, stdout, stderr) = run_softkey(&[
        "certificate",
        "self-signed",
        "--key-id",
        &key,
        "--subject",
        "CN=x",
        "--plugin-config",
        "ecdsa_encodng=der",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!((code, stdout.as_str()), (1, ""), "{stderr}");
    assert!(
        stderr.contains("unknown pluginConfig key 'ecdsa_encodng'")
            && stderr.contains("ecdsa_encoding, pss_salt, sign_with, token"),
        "{stderr}"
    );
    assert!(!out.exists());
}
