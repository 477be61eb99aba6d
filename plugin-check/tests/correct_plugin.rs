//! A correct plugin (the softkey example) passes every check for all six key specs, and the
//! envelopes the checker writes verify; a changed blob or another root does not.

mod common;

use common::*;
use plugin_protocol::KeySpec;

#[test]
fn softkey_passes_for_all_six_key_specs_and_its_envelopes_verify() {
    for spec in KeySpec::ALL {
        let key = KeyOnDisk::new(spec);
        let out = key.dir.path().join("out");
        let run = check(softkey(), &key, &out, &[], &[]);
        run.assert_code(0);
        assert!(run.stdout.contains("PASSED"), "{}", run.stdout);
        assert!(!run.stdout.contains("FAIL "), "{}", run.stdout);
        // The report names the algorithm and shows wall times.
        assert!(
            run.stdout.contains(spec.signing_algorithm().as_str()),
            "{spec}: {}",
            run.stdout
        );
        assert!(
            run.stdout.contains("ms  exit 0   generate-signature (jws)"),
            "{}",
            run.stdout
        );

        let root = key.root_pem();
        let blob = key.blob();
        for ext in ["jws", "cose"] {
            let envelope = out.join(format!("artifact.bin.{ext}.sig"));
            assert!(envelope.exists(), "{spec}: no {}", envelope.display());
            let v = verify(&envelope, &blob, &root);
            v.assert_code(0);
            assert!(
                v.stdout
                    .contains("PASS  signature verifies with the leaf key"),
                "{}",
                v.stdout
            );
        }
        let chain = std::fs::read_to_string(out.join("chain.pem")).unwrap();
        assert_eq!(
            chain.matches("BEGIN CERTIFICATE").count(),
            2,
            "leaf and root"
        );
    }
}

#[test]
fn verify_rejects_a_changed_blob_and_another_root() {
    let key = KeyOnDisk::new(KeySpec::Ec384);
    let out = key.dir.path().join("out");
    check(softkey(), &key, &out, &[], &[]).assert_code(0);
    let root = key.root_pem();

    let changed = key.dir.path().join("changed.bin");
    std::fs::write(&changed, b"release artifact!\n").unwrap();
    for ext in ["jws", "cose"] {
        let envelope = out.join(format!("artifact.bin.{ext}.sig"));
        let v = verify(&envelope, &changed, &root);
        v.assert_code(1);
        let line = v.check_text("payload digest matches the blob");
        assert!(
            line.contains("FAIL") && line.contains("sha384:"),
            "{}",
            v.stdout
        );
        assert!(line.contains("was changed"), "{line}");
    }

    let other = KeyOnDisk::new(KeySpec::Ec256);
    let v = verify(
        &out.join("artifact.bin.jws.sig"),
        &key.blob(),
        &other.root_pem(),
    );
    v.assert_code(1);
    let line = v.check_text("chain ends at the trust anchor");
    assert!(
        line.contains("FAIL") && line.contains("is a trust anchor"),
        "{}",
        v.stdout
    );

    // A flipped signature byte breaks the signature check, not the format check.
    let envelope = out.join("artifact.bin.cose.sig");
    let mut bytes = std::fs::read(&envelope).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = key.dir.path().join("tampered.cose.sig");
    std::fs::write(&tampered, bytes).unwrap();
    let v = verify(&tampered, &key.blob(), &root);
    v.assert_code(1);
    assert!(
        v.check_text("envelope format").contains("PASS"),
        "{}",
        v.stdout
    );
    assert!(
        v.check_text("signature verifies with the leaf key")
            .contains("does not verify"),
        "{}",
        v.stdout
    );
}

#[test]
fn json_report_and_usage_errors() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let run = run(
        &[
            softkey().to_str().unwrap(),
            "--key-id",
            &key.key_id(),
            "--envelope",
            "cose",
            "--json",
        ],
        &[],
    );
    run.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(json["summary"]["failed"], 0);
    let names: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in [
        "metadata name equals the executable's <name>",
        "keyId echoed byte for byte",
        "signature encoding",
        "envelope assembled and verified",
        "unknown keyId (describe-key)",
    ] {
        assert!(
            names.iter().any(|n| n.contains(expected)),
            "{expected} not in {names:?}"
        );
    }
    assert!(json["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["wallTimeMs"].as_f64().unwrap() > 0.0));
    assert_eq!(json["signConversations"][0]["envelope"], "cose");

    // Usage errors exit 2 with a message; --help exits 0 and shows both shapes.
    let r = common::run(&["/no/such/notation-x", "--key-id", "k"], &[]);
    r.assert_code(2);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    let r = common::run(&[softkey().to_str().unwrap()], &[]);
    r.assert_code(2);
    assert!(r.stderr.contains("--key-id"), "{}", r.stderr);
    let r = common::run(&["--help"], &[]);
    r.assert_code(0);
    assert!(
        r.stdout
            .contains("notation-plugin-check verify <ENVELOPE_FILE>"),
        "{}",
        r.stdout
    );
    let r = common::run(
        &[
            "verify",
            "/no/such.jws.sig",
            "--blob",
            "/no/blob",
            "--trust-anchor",
            "/no/root.pem",
        ],
        &[],
    );
    r.assert_code(2);
    assert!(
        r.stderr.contains("cannot read envelope /no/such.jws.sig"),
        "{}",
        r.stderr
    );
    // What would block or never end is refused at once, for each file read.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in.fifo");
    plugin_protocol::client::make_fifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let empty = dir.path().join("empty.sig");
    std::fs::write(&empty, b"").unwrap();
    let empty = empty.to_str().unwrap();
    for (args, says) in [
        (
            vec![
                "verify",
                fifo,
                "--blob",
                empty,
                "--trust-anchor",
                "/no/root.pem",
            ],
            format!("envelope {fifo} is a FIFO, not a regular file"),
        ),
        (
            vec![
                "verify",
                empty,
                "--blob",
                "/dev/zero",
                "--trust-anchor",
                "/no/root.pem",
            ],
            "blob /dev/zero is a device".to_owned(),
        ),
        (
            vec![softkey().to_str().unwrap(), "--key-id", "k", "--blob", fifo],
            format!("--blob {fifo} is a FIFO, not a regular file"),
        ),
    ] {
        let r = common::run(&args, &[]);
        r.assert_code(2);
        assert!(
            r.stderr.contains(&says),
            "{args:?}: no '{says}' in {}",
            r.stderr
        );
    }
    let r = common::run(&["verify", "--help"], &[]);
    r.assert_code(0);
    assert!(r.stdout.contains("--trust-anchor"), "{}", r.stdout);
}

#[test]
fn without_blob_the_signed_sample_is_written_beside_its_envelopes_and_verifies() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let out = key.dir.path().join("out");
    let key_id = key.key_id();
    let run = run(
        &[
            softkey().to_str().unwrap(),
            "--key-id",
            &key_id,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    run.assert_code(0);
    let sample = out.join("sample-artifact.txt");
    assert_eq!(
        std::fs::read(&sample).unwrap(),
        b"notation-plugin-check sample artifact\n"
    );
    assert!(run.stdout.contains("sample-artifact.txt"), "{}", run.stdout);
    for ext in ["jws", "cose"] {
        let envelope = out.join(format!("sample-artifact.txt.{ext}.sig"));
        verify(&envelope, &sample, &key.root_pem()).assert_code(0);
    }
}
