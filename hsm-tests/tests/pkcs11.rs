//! notation-pkcs11 on real SoftHSM2 tokens: every key spec through the conformance checker
//! (JWS and COSE, envelopes verified), the chain sources, the failure cases a user meets, and
//! concurrent signing on one token.

use std::os::unix::fs::PermissionsExt;

use hsm_tests::softhsm::{SoftToken, SOFTHSM_MODULE};
use hsm_tests::{assert_error, check_and_verify, env_refs, verify};
use plugin_protocol::client::Invocation;
use plugin_protocol::testca::{LeafProfile, TestCa};
use plugin_protocol::{ErrorCode, KeySpec};

/// describe-key, as notation runs it, for a key id that must fail.
fn describe_error(token: &SoftToken, key_id: &str) -> Invocation {
    token.client().describe_key(key_id, None).unwrap()
}

/// A key with CKA_ALWAYS_AUTHENTICATE (a PIN entry before every signature, which SoftHSM2
/// enforces like a smart card): the plugin logs in context-specifically after C_SignInit, and
/// the RSA key, signed through SoftHSM2's multi-part SHA256-RSA-PKCS-PSS, passes the checker.
/// SoftHSM2's only EC mechanism is the raw single-part CKM_ECDSA, whose data it refuses in parts:
/// the EC key fails with a message that says why and what to do. (The YubiKey slot 9c tests in
/// pkcs11_yubikey.rs sign EC and RSA keys that need the login, through YKCS11.)
#[test]
fn always_authenticate_keys_log_in_before_each_signature() {
    let token = SoftToken::new("always-auth");
    let ca = TestCa::new("CN=Always Root,O=Notation Plugins");
    let generate = |label: &str, id: &str, key_type: &str| {
        token.pkcs11_tool(&[
            "--keypairgen",
            "--key-type",
            key_type,
            "--label",
            label,
            "--id",
            id,
            "--always-auth",
            "--usage-sign",
        ]);
        let uri = token.uri(label);
        let chain = ca.issue_leaf(&token.public_key(&uri), "CN=always,O=Notation Plugins");
        token.import_chain(&uri, &chain);
        uri
    };
    let rsa = generate("rsa", "0b", "rsa:2048");
    let env = token.env();
    let dir = tempfile::tempdir().unwrap();
    check_and_verify(
        &token.plugin,
        &rsa,
        &[],
        &env_refs(&env),
        &ca.root_pem(),
        dir.path(),
    );

    let ec = generate("p256", "0a", "EC:prime256v1");
    assert_error(
        &sign_error(&token, &ec, KeySpec::Ec256),
        "ERROR",
        &[
            "a CKM_ECDSA signature",
            "in parts",
            "CKA_ALWAYS_AUTHENTICATE",
            "CKM_ECDSA_SHA256",
        ],
    );
}

/// The chain from a PEM file (pluginConfig certificate_chain), and the token's leaf completed
/// by a CA bundle (ca_certs).
#[test]
fn chain_from_a_file_and_token_leaf_plus_ca_bundle() {
    let token = SoftToken::new("files");
    let uri = token.generate("k", KeySpec::Ec256);
    let ca = TestCa::new("CN=File Root");
    let chain = ca.issue_leaf(&token.public_key(&uri), "CN=file leaf");
    let file = token.write_chain("chain.pem", &chain);
    let env = token.env();
    let dir = tempfile::tempdir().unwrap();
    check_and_verify(
        &token.plugin,
        &uri,
        &[("certificate_chain", &file.display().to_string())],
        &env_refs(&env),
        &ca.root_pem(),
        dir.path(),
    );

    // Only the leaf on the token; the root comes from ca_certs.
    token.import_chain(&uri, &chain[..1]);
    let bundle = token.write_chain("ca.pem", &chain[1..]);
    let dir = tempfile::tempdir().unwrap();
    check_and_verify(
        &token.plugin,
        &uri,
        &[("ca_certs", &bundle.display().to_string())],
        &env_refs(&env),
        &ca.root_pem(),
        dir.path(),
    );
    // And without ca_certs the missing root is named.
    assert_error(
        &sign_error(&token, &uri, KeySpec::Ec256),
        "VALIDATION_ERROR",
        &["incomplete", "CN=File Root"],
    );
}

/// A CA key rollover leaves two root certificates with one subject on the token (the old one
/// first): the chain is built with the one whose key issued the leaf.
#[test]
fn of_two_ca_certificates_with_one_subject_the_issuing_one_is_chosen() {
    let token = SoftToken::new("rollover");
    let uri = token.generate("k", KeySpec::Ec256);
    let old = TestCa::new("CN=Rollover Root,O=Notation Plugins");
    let new = TestCa::new("CN=Rollover Root,O=Notation Plugins");
    let der = token.dir.path().join("old-root.der");
    std::fs::write(&der, old.root().der()).unwrap();
    let der = der.display().to_string();
    token.pkcs11_tool(&[
        "--write-object",
        &der,
        "--type",
        "cert",
        "--id",
        "99",
        "--label",
        "old root",
    ]);
    let chain = new.issue_leaf(&token.public_key(&uri), "CN=release,O=Notation Plugins");
    token.import_chain(&uri, &chain);
    let env = token.env();
    check_and_verify(
        &token.plugin,
        &uri,
        &[],
        &env_refs(&env),
        &new.root_pem(),
        token.dir.path(),
    );
}

/// generate-signature, as notation runs it, for a key that must fail.
fn sign_error(token: &SoftToken, uri: &str, spec: KeySpec) -> Invocation {
    token
        .client()
        .generate_signature(uri, spec, spec.hash_algorithm(), b"payload", None)
        .unwrap()
}

#[test]
fn a_chain_missing_its_root_is_refused_naming_the_missing_link() {
    let token = SoftToken::new("noroot");
    let uri = token.generate("k", KeySpec::Ec384);
    let ca = TestCa::new("CN=Absent Root")
        .with_intermediate("CN=Present Intermediate", &Default::default());
    let chain = ca.issue_leaf_with(
        &token.public_key(&uri),
        "CN=leaf",
        &LeafProfile {
            omit_root: true,
            ..Default::default()
        },
    );
    token.import_chain(&uri, &chain);
    assert_error(
        &sign_error(&token, &uri, KeySpec::Ec384),
        "VALIDATION_ERROR",
        &["incomplete", "CN=Absent Root", "CN=Present Intermediate"],
    );
}

#[test]
fn generate_key_takes_the_new_keys_id_from_id_or_the_uri() {
    let token = SoftToken::new("ids");
    let generate = |uri: &str, extra: &[&str]| {
        let mut args = vec!["generate-key", "--key-id", uri, "--spec", "EC-256"];
        args.extend_from_slice(extra);
        token.run(&args)
    };
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    ok(generate(&token.uri("from-hex"), &["--id", "0A1b"]));
    let with_id = |label: &str, id: &str| token.uri(label).replacen('?', &format!(";id={id}?"), 1);
    ok(generate(&with_id("from-uri", "%0c%0D"), &[]));
    // --id wins over the URI's id=.
    ok(generate(&with_id("both", "%0e"), &["--id", "0f"]));
    let listed = token.run_ok(&[
        "keys",
        &token.uri("from-hex").replace(";object=from-hex", ""),
    ]);
    for key in [
        "object=from-hex id=0a1b",
        "object=from-uri id=0c0d",
        "object=both id=0f",
    ] {
        assert!(listed.contains(key), "{key}: {listed}");
    }
    let refused = |out: std::process::Output, want: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(want), "{want}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };
    refused(
        generate(&token.uri("bad-hex"), &["--id", "a\u{e9}b"]),
        "error: --id 'a\u{e9}b' has '\u{e9}', which is not a hex digit; give the object id as hex",
    );
    refused(
        generate(&token.uri("same-id"), &["--id", "0F"]),
        "error: token 'ids' already has a private key with id 0f (labelled 'both'); choose \
         another --id",
    );
    refused(
        generate(&with_id("empty-id", ""), &[]),
        "error: the --key-id URI has an empty id=; give the new key's id percent-encoded",
    );
    let listed = token.run_ok(&["keys", &token.uri("bad-hex").replace(";object=bad-hex", "")]);
    for label in ["bad-hex", "same-id", "empty-id"] {
        assert!(!listed.contains(label), "{label}: {listed}");
    }
}

#[test]
fn a_certificate_of_another_key_is_refused() {
    let token = SoftToken::new("mixup");
    let uri = token.generate("mine", KeySpec::Ec256);
    let other = token.generate("other", KeySpec::Ec256);
    let ca = TestCa::new("CN=Root");
    let others_chain = ca.issue_leaf(&token.public_key(&other), "CN=other leaf");
    // Store the other key's certificate under this key's CKA_ID, as a careless import would.
    let out = token.run_ok(&["keys", &uri]);
    let id = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("id="))
        .expect("keys prints id=")
        .to_owned();
    let der = token.dir.path().join("other.der");
    std::fs::write(&der, others_chain[0].der()).unwrap();
    token.pkcs11_tool(&[
        "--write-object",
        &der.display().to_string(),
        "--type",
        "cert",
        "--id",
        &id,
        "--label",
        "mine",
    ]);
    assert_error(
        &sign_error(&token, &uri, KeySpec::Ec256),
        "VALIDATION_ERROR",
        &["does not belong to key", "CN=other leaf"],
    );
    // import-certificate refuses the same mistake up front.
    let file = token.write_chain("others.pem", &others_chain);
    let out = token.run(&[
        "import-certificate",
        "--key-id",
        &uri,
        "--chain",
        &file.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("carries the public key of 'mine'"));
}

#[test]
fn wrong_pin_is_access_denied_and_tried_exactly_once() {
    let token = SoftToken::new("pins");
    token.generate("k", KeySpec::Ec256);
    let wrong = token.dir.path().join("wrong.pin");
    std::fs::write(&wrong, "000000\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    // OpenSC's pkcs11-spy sits between the plugin and SoftHSM and logs every call the token
    // receives: the C_Login attempts it records are the token's failure counter.
    let spy = [
        "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so",
        "/usr/lib/aarch64-linux-gnu/pkcs11-spy.so",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("pkcs11-spy.so (apt install opensc-pkcs11)");
    let log = token.dir.path().join("spy.log");
    let uri = format!(
        "pkcs11:token=pins;object=k?module-path={spy}&pin-source=file:{}",
        wrong.display()
    );
    let before = token.run_ok(&["tokens", "--module", SOFTHSM_MODULE]);
    assert!(!before.contains("user-pin-count-low"), "{before}");
    let inv = token
        .client()
        .with_env("PKCS11SPY", SOFTHSM_MODULE)
        .with_env("PKCS11SPY_OUTPUT", log.display().to_string())
        .generate_signature(
            &uri,
            KeySpec::Ec256,
            KeySpec::Ec256.hash_algorithm(),
            b"x",
            None,
        )
        .unwrap();
    let err = inv.error().expect("JSON error");
    assert_eq!(
        err.error_code,
        ErrorCode::AccessDenied,
        "{}",
        err.error_message
    );
    assert!(
        err.error_message.contains("wrong PIN for token 'pins'"),
        "{}",
        err.error_message
    );
    assert!(err.error_message.contains(&wrong.display().to_string()));
    assert!(!err.error_message.contains("000000"), "the PIN leaked");
    assert!(!inv.stderr_text().contains("000000"), "the PIN leaked");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.matches("C_Login").count(),
        1,
        "the plugin must try the PIN exactly once:\n{calls}"
    );
    let after = token.run_ok(&["tokens", "--module", SOFTHSM_MODULE]);
    assert!(
        after.contains("user-pin-count-low"),
        "the token recorded no failure: {after}"
    );
}

#[test]
fn a_pin_file_others_can_read_is_refused() {
    let token = SoftToken::new("perm");
    let uri = token.generate("k", KeySpec::Ec256);
    std::fs::set_permissions(token.pin_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_error(
        &describe_error(&token, &uri),
        "VALIDATION_ERROR",
        &["refusing the PIN file", "mode 0644", "chmod 600"],
    );
}

#[test]
fn pin_from_the_environment_and_from_pin_value() {
    let token = SoftToken::new("envpin");
    token.generate("k", KeySpec::Ec256);
    let bare = format!("pkcs11:token=envpin;object=k?module-path={SOFTHSM_MODULE}");
    // No PIN at all: the message says how to give one.
    assert_error(
        &describe_error(&token, &bare),
        "VALIDATION_ERROR",
        &["needs a PIN", "pin-source", "PKCS11_PIN"],
    );
    let inv = token
        .client()
        .with_env("PKCS11_PIN", token.pin())
        .describe_key(&bare, None)
        .unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let with_value = format!("{bare}&pin-value={}", token.pin());
    let inv = token.client().describe_key(&with_value, None).unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());

    // Neither an error message nor the debug log shows a PIN given as pin-value (the key has
    // no certificate, so signing fails with a message naming the key).
    let log = token.dir.path().join("debug.log");
    let inv = token
        .client()
        .with_env("NOTATION_PLUGIN_LOG", log.display().to_string())
        .generate_signature(
            &with_value,
            KeySpec::Ec256,
            KeySpec::Ec256.hash_algorithm(),
            b"x",
            None,
        )
        .unwrap();
    let err = inv.error().expect("JSON error");
    assert!(
        err.error_message.contains("no certificate chain"),
        "{}",
        err.error_message
    );
    assert!(
        err.error_message.contains("pin-value=[redacted]"),
        "{}",
        err.error_message
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("pin-value=[redacted]"),
        "the log names the key: {logged}"
    );
    for text in [inv.stderr_text(), logged] {
        assert!(!text.contains(&token.pin()), "the PIN leaked: {text}");
    }
}

#[test]
fn unknown_token_object_and_module_are_named() {
    let token = SoftToken::new("known");
    token.generate("present", KeySpec::Ec256);
    let pin = token.pin_file().display().to_string();
    assert_error(
        &describe_error(
            &token,
            &format!("pkcs11:token=nope;object=present?module-path={SOFTHSM_MODULE}&pin-source=file:{pin}"),
        ),
        "VALIDATION_ERROR",
        &["no token matches 'pkcs11:token=nope'", "token=known"],
    );
    assert_error(
        &describe_error(&token, &token.uri("absent")),
        "VALIDATION_ERROR",
        &["no private key with object=absent", "object=present"],
    );
    assert_error(
        &describe_error(
            &token,
            &format!("pkcs11:token=known;object=present?module-path=/nonexistent/libpkcs11.so&pin-source=file:{pin}"),
        ),
        "VALIDATION_ERROR",
        &["/nonexistent/libpkcs11.so", "does not exist"],
    );
    assert_error(
        &describe_error(&token, "release-key"),
        "VALIDATION_ERROR",
        &["is not a PKCS#11 URI (RFC 7512)", "pkcs11:token="],
    );
}

#[test]
fn ambiguous_tokens_and_keys_list_ready_to_use_uris() {
    let token = SoftToken::new("twin");
    token.add_token("twin");
    let message = assert_error(
        &describe_error(&token, &token.uri("k")),
        "VALIDATION_ERROR",
        &[],
    )
    .error_message;
    assert!(message.contains("matches 2 tokens"), "{message}");
    assert_eq!(message.matches("pkcs11:serial=").count(), 2, "{message}");

    let token = SoftToken::new("dups");
    let pin = token.pin_file().display().to_string();
    let uri = token.generate("dup", KeySpec::Ec256);
    token.pkcs11_tool(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--label",
        "dup",
        "--id",
        "0202",
    ]);
    let message =
        assert_error(&describe_error(&token, &uri), "VALIDATION_ERROR", &[]).error_message;
    assert!(message.contains("matches 2 private keys"), "{message}");
    assert!(message.contains("object=dup;id=%02%02"), "{message}");
    // Each listed URI works as it is.
    let listed = message
        .split_whitespace()
        .find(|w| w.contains("id=%02%02"))
        .unwrap()
        .to_owned();
    let inv = token.client().describe_key(&listed, None).unwrap();
    assert!(inv.succeeded(), "{listed}: {}", inv.stderr_text());
    assert!(
        listed.contains(&pin),
        "the listed URI keeps the pin-source: {listed}"
    );
}

#[test]
fn keys_notation_cannot_use_are_named() {
    let token = SoftToken::new("odd");
    token.pkcs11_tool(&[
        "--keypairgen",
        "--key-type",
        "rsa:1024",
        "--label",
        "small",
        "--id",
        "01",
    ]);
    token.pkcs11_tool(&[
        "--keypairgen",
        "--key-type",
        "EC:secp256k1",
        "--label",
        "bitcoin",
        "--id",
        "02",
    ]);
    assert_error(
        &describe_error(&token, &token.uri("small")),
        "VALIDATION_ERROR",
        &["RSA-1024"],
    );
    assert_error(
        &describe_error(&token, &token.uri("bitcoin")),
        "VALIDATION_ERROR",
        &["secp256k1"],
    );
}

#[test]
fn tampered_blob_fails_verification() {
    // The envelopes the checker wrote for a token key verify only for the blob they sign.
    let token = SoftToken::new("tamper");
    let uri = token.generate("k", KeySpec::Ec256);
    let ca = TestCa::new("CN=Root");
    token.import_chain(&uri, &ca.issue_leaf(&token.public_key(&uri), "CN=t"));
    let env = token.env();
    let dir = tempfile::tempdir().unwrap();
    check_and_verify(
        &token.plugin,
        &uri,
        &[],
        &env_refs(&env),
        &ca.root_pem(),
        dir.path(),
    );
    let other = dir.path().join("other.txt");
    std::fs::write(&other, b"not the artifact\n").unwrap();
    let run = verify(
        &dir.path().join("out/artifact.txt.jws.sig"),
        &other,
        &dir.path().join("root.pem"),
    );
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
}

#[test]
fn keys_fails_when_it_cannot_log_in_and_tokens_names_its_module_option() {
    let token = SoftToken::new("keys-login");
    token.generate("k", KeySpec::Ec256);
    // No PIN at all, and a wrong PIN: listed, then exit 1 with the reason on stderr.
    let no_pin = format!("pkcs11:token=keys-login?module-path={SOFTHSM_MODULE}");
    let wrong = token.dir.path().join("wrong.pin");
    std::fs::write(&wrong, "000000").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrong_pin = format!(
        "pkcs11:token=keys-login?module-path={SOFTHSM_MODULE}&pin-source=file:{}",
        wrong.display()
    );
    for uri in [no_pin, wrong_pin] {
        let out = token.run(&["keys", &uri]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{uri}: {stdout}{stderr}");
        assert!(stdout.contains("cannot log in"), "{stdout}");
        assert!(
            stderr.contains("error: cannot log in to token 'keys-login'"),
            "{stderr}"
        );
    }
    // With the PIN it lists the key and succeeds.
    let out = token.run_ok(&["keys", &token.uri("k")]);
    assert!(out.contains("EC-256"), "{out}");
    // The URI it prints names the key by label and id, and works as a key id as printed.
    let printed = out
        .split_whitespace()
        .find(|w| w.starts_with("pkcs11:") && w.contains("object=k;"))
        .unwrap_or_else(|| panic!("no key URI in: {out}"));
    assert!(printed.contains(";id=%"), "{printed}");
    let inv = token.client().describe_key(printed, None).unwrap();
    assert!(inv.succeeded(), "{printed}: {}", inv.stderr_text());

    // Without a module, `tokens` points at its own --module option.
    let out = std::process::Command::new(hsm_tests::plugin_binary("pkcs11"))
        .arg("tokens")
        .env_remove("PKCS11_MODULE_PATH")
        .env_remove("NOTATION_PKCS11_MODULE_PATH")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pass --module /path/to/module.so to `tokens`"),
        "{stderr}"
    );
    assert!(!stderr.contains("key URI"), "{stderr}");
}

/// `ca issue --public-key-of` opens two keys of one token in one process: the SoftHSM store lock
/// is taken once for both (a second lock would wait for the first until the deadline).
#[test]
fn a_command_opening_two_keys_of_one_token_does_not_wait_for_itself() {
    let token = SoftToken::new("two-keys");
    let root = token.generate("root", KeySpec::Ec256);
    let leaf = token.generate("leaf", KeySpec::Ec256);
    let root_pem = token.dir.path().join("root.pem");
    let chain = token.dir.path().join("chain.pem");
    token.run_ok(&[
        "ca",
        "init",
        "--key-id",
        &root,
        "--subject",
        "CN=Two Keys Root,O=Example",
        "--out",
        root_pem.to_str().unwrap(),
    ]);
    let started = std::time::Instant::now();
    token.run_ok(&[
        "ca",
        "issue",
        "--ca-key-id",
        &root,
        "--ca-cert",
        root_pem.to_str().unwrap(),
        "--public-key-of",
        &leaf,
        "--subject",
        "CN=leaf,O=Example,ST=Washington,C=US",
        "--plugin-config",
        "timeout_seconds=10",
        "--out",
        chain.to_str().unwrap(),
    ]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        std::fs::read_to_string(&chain)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
}
