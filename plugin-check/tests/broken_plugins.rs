//! Deliberately broken plugins (examples/notation-broken.rs, one mode each) are caught, each
//! with a message naming the problem; the same binary unbroken passes, so every failure below
//! comes from the breakage and not from the harness.

mod common;

use common::*;
use plugin_protocol::testca::LeafProfile;
use plugin_protocol::KeySpec;

fn check_broken(mode: &str, extra_env: &[(&str, &str)], key: &KeyOnDisk) -> Run {
    let out = key.dir.path().join(format!("out-{mode}"));
    let mut env = vec![("NOTATION_BROKEN_MODE", mode)];
    env.extend_from_slice(extra_env);
    check(broken(), key, &out, &["--json"], &env)
}

#[test]
fn the_unbroken_test_plugin_passes() {
    for spec in [KeySpec::Ec256, KeySpec::Rsa2048] {
        let key = KeyOnDisk::new(spec);
        let run = check_broken("", &[], &key);
        run.assert_code(0);
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(json["summary"]["failed"], 0, "{}", run.stdout);
    }
}

#[test]
fn der_ecdsa_is_caught() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    check_broken("der-ecdsa", &[], &key).assert_failed_with(&[
        "signature encoding",
        "ASN.1 DER",
        "fixed-width r‖s (64 bytes)",
    ]);
}

#[test]
fn wrong_pss_salt_is_caught() {
    let key = KeyOnDisk::new(KeySpec::Rsa2048);
    check_broken("pss-salt", &[], &key).assert_failed_with(&[
        "signature encoding",
        "20-byte salt",
        "(32 bytes)",
    ]);
}

#[test]
fn a_payload_hashed_twice_is_caught() {
    for spec in [KeySpec::Ec384, KeySpec::Rsa3072] {
        let key = KeyOnDisk::new(spec);
        check_broken("double-hash", &[], &key).assert_failed_with(&[
            "signature verifies with the leaf certificate's key",
            "hashed twice",
        ]);
    }
}

#[test]
fn changed_key_id_is_caught() {
    let key = KeyOnDisk::new(KeySpec::Ec384);
    let run = check_broken("changed-key-id", &[], &key);
    run.assert_failed_with(&["describe-key", "keyId echoed", "#canonical", "unchanged"]);
    run.assert_failed_with(&["generate-signature (JWS)", "keyId echoed", "#canonical"]);
}

#[test]
fn chain_without_its_root_is_caught() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let chain = key.broken_chain(&LeafProfile {
        omit_root: true,
        ..LeafProfile::default()
    });
    let run = check_broken(
        "chain-file",
        &[("NOTATION_BROKEN_CHAIN", chain.to_str().unwrap())],
        &key,
    );
    run.assert_failed_with(&[
        "certificate chain",
        "does not end in a self-signed root",
        "include the root",
    ]);
}

#[test]
fn leaf_with_key_encipherment_is_caught() {
    let key = KeyOnDisk::new(KeySpec::Ec521);
    let chain = key.broken_chain(&LeafProfile {
        key_encipherment: true,
        ..LeafProfile::default()
    });
    let run = check_broken(
        "chain-file",
        &[("NOTATION_BROKEN_CHAIN", chain.to_str().unwrap())],
        &key,
    );
    run.assert_failed_with(&[
        "certificate chain",
        "CN=checker test signer",
        "keyEncipherment",
    ]);
}

#[test]
fn plain_text_stderr_is_caught() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let run = check_broken("plain-stderr", &[], &key);
    run.assert_failed_with(&[
        "negative probes",
        "unknown keyId",
        "plain-text stderr",
        "Error: key",
    ]);
    run.assert_failed_with(&["negative probes", "empty stdin", "plain-text stderr"]);
}

#[test]
fn wrong_signing_algorithm_is_caught() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    check_broken("wrong-signing-algorithm", &[], &key).assert_failed_with(&[
        "signingAlgorithm matches the keySpec",
        "'ECDSA-SHA-384'",
        "requires ECDSA-SHA-256",
    ]);
}

#[test]
fn stray_text_on_stdout_is_caught() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let run = check_broken("stray-stdout", &[], &key);
    run.assert_failed_with(&[
        "get-plugin-metadata answers",
        "stray text on stdout",
        "connecting to the backend",
    ]);
    run.assert_failed_with(&["generate-signature", "stray text on stdout"]);
}

#[test]
fn a_symlinked_or_misnamed_plugin_breaks_installation_rules() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let link = key.dir.path().join("notation-softkey");
    std::os::unix::fs::symlink(softkey(), &link).unwrap();
    let out = key.dir.path().join("out");
    check(&link, &key, &out, &["--json"], &[])
        .assert_failed_with(&["regular executable file", "symbolic link"]);

    let renamed = key.dir.path().join("softkey-plugin");
    std::fs::copy(softkey(), &renamed).unwrap();
    check(&renamed, &key, &out, &["--json"], &[])
        .assert_failed_with(&["named notation-<name>", "'softkey-plugin'"]);

    let not_exec_dir = key.dir.path().join("not-executable");
    std::fs::create_dir(&not_exec_dir).unwrap();
    let not_exec = not_exec_dir.join("notation-softkey");
    std::fs::copy(softkey(), &not_exec).unwrap();
    std::fs::set_permissions(
        &not_exec,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    check(&not_exec, &key, &out, &["--json"], &[]).assert_failed_with(&[
        "regular executable file",
        "not executable",
        "chmod +x",
    ]);

    let other_name = key.dir.path().join("notation-other");
    std::fs::copy(softkey(), &other_name).unwrap();
    check(&other_name, &key, &out, &["--json"], &[]).assert_failed_with(&[
        "metadata name equals",
        "'softkey'",
        "notation-other",
    ]);
}

#[test]
fn a_reversed_chain_and_a_certificate_for_another_key_are_caught() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let mut chain =
        plugin_protocol::chain::load_file(&key.broken_chain(&LeafProfile::default())).unwrap();
    chain.reverse();
    let reversed = key.dir.path().join("reversed.pem");
    std::fs::write(&reversed, plugin_protocol::chain::to_pem_bundle(&chain)).unwrap();
    let env = [("NOTATION_BROKEN_CHAIN", reversed.to_str().unwrap())];
    check_broken("chain-file", &env, &key).assert_failed_with(&[
        "certificate chain",
        "not ordered leaf first, root last",
        "'CN=checker test signer' -> 'CN=Checker Test Root",
    ]);

    // A chain issued for another EC-384 key: wrong algorithm and a signature that fails.
    let other = KeyOnDisk::new(KeySpec::Ec384);
    let other_chain = format!("{}.chain.pem", other.key_id());
    let env = [("NOTATION_BROKEN_CHAIN", other_chain.as_str())];
    let run = check_broken("chain-file", &env, &key);
    run.assert_failed_with(&[
        "leaf certificate's algorithm equals the keySpec",
        "EC-384",
        "describe-key said EC-256",
    ]);

    // A chain for another key of the same spec: only the signature check can tell.
    let same_spec = KeyOnDisk::new(KeySpec::Ec256);
    let same_spec_chain = format!("{}.chain.pem", same_spec.key_id());
    let env = [("NOTATION_BROKEN_CHAIN", same_spec_chain.as_str())];
    check_broken("chain-file", &env, &key).assert_failed_with(&[
        "signature verifies with the leaf certificate's key",
        "does not certify the key that signed",
    ]);
}
