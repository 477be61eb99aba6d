//! notation-yubikey against the virtual PIV cards of `hsm-tests/piv-card/` in a real pcscd
//! (two YubiKey 5 look-alikes on firmware 5.7.1): every key spec in several slots through the
//! conformance checker (JWS and COSE), the PIN from a file, the environment and the terminal,
//! wrong and blocked PINs against the card's own counter, a PIN-never slot, touch with and
//! without a touch, two cards, unusable keys, a card pulled out, generate-key, attestation, and
//! the offline root on the card certifying a cloud KMS key. Cards are set up with Yubico's ykman
//! unless the plugin's own command is what is tested.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hsm_tests::piv_card::{PivCard, DEFAULT_MGMT_KEY, DEFAULT_PIN, DEFAULT_PUK};
use hsm_tests::{assert_error, check_and_verify, env_refs, plugin_binary};
use plugin_protocol::client::{Invocation, PluginClient};
use plugin_protocol::contract::DescribeKeyResponse;
use plugin_protocol::testca::TestCa;
use plugin_protocol::KeySpec;

/// Card 1 of the stack with the yubikey plugin as the plugin under test.
fn card() -> PivCard {
    let mut card = PivCard::acquire();
    card.plugin = plugin_binary("yubikey");
    card
}

/// The key id of `slot` on card 1.
fn key_id(card: &PivCard, slot: u8) -> String {
    format!("yubikey:serial={};slot={slot:02x}", card.serial)
}

/// A key of `spec` in `slot` (ykman) with `pin_policy`, and its certificate from a test CA in
/// the slot; returns the CA.
fn key_with_certificate(card: &PivCard, slot: u8, spec: KeySpec, pin_policy: &str) -> TestCa {
    let public = card.generate(slot, spec, pin_policy);
    let ca = TestCa::new("CN=YubiKey Plugin Test Root,O=Notation Plugins,ST=Washington,C=US");
    let chain = ca.issue_leaf(
        &public,
        &format!("CN=yubikey {slot:02x},O=Notation Plugins,ST=Washington,C=US"),
    );
    card.import_certificate(slot, &chain[0]);
    ca
}

fn sign(card: &PivCard, key_id: &str, spec: KeySpec, pairs: &[(&str, &str)]) -> Invocation {
    sign_env(card, key_id, spec, pairs, &[])
}

fn sign_env(
    card: &PivCard,
    key_id: &str,
    spec: KeySpec,
    pairs: &[(&str, &str)],
    extra_env: &[(&str, &str)],
) -> Invocation {
    let mut env = card.env();
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    PluginClient::new(&card.plugin)
        .with_envs(&env)
        .generate_signature(
            key_id,
            spec,
            spec.hash_algorithm(),
            b"payload",
            hsm_tests::config(pairs),
        )
        .expect("run the plugin")
}

fn describe(card: &PivCard, key_id: &str) -> Invocation {
    PluginClient::new(&card.plugin)
        .with_envs(&card.env())
        .describe_key(key_id, None)
        .expect("run the plugin")
}

/// The plugin's operator command `args` with the card's environment (and `env`), in a session
/// of its own (`setsid`): with no controlling terminal, as in CI, it never prompts for a PIN,
/// also when the tests run from a terminal.
fn command(card: &PivCard, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new("setsid")
        .arg("--wait")
        .arg(&card.plugin)
        .args(args)
        .envs(card.env())
        .envs(env.iter().copied())
        .current_dir(card.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run notation-yubikey")
}

#[track_caller]
fn command_ok(card: &PivCard, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = command(card, args, env);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "notation-yubikey {args:?}:\n{text}");
    text
}

/// generate-signature run by `hsm-tests/piv-card/with_terminal.py`: with a terminal of its own
/// on which `answer` is typed at the PIN prompt, or with no terminal at all (`answer` None and
/// `terminal` false). Returns the invocation's exit code, stdout, stderr and what the terminal
/// showed.
fn sign_at_terminal(
    card: &PivCard,
    key_id: &str,
    spec: KeySpec,
    pairs: &[(&str, &str)],
    terminal: bool,
    answer: Option<&str>,
) -> (Option<i32>, String, String, String) {
    use base64::Engine;
    let config: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let request = serde_json::json!({
        "contractVersion": "1.0", "keyId": key_id, "keySpec": spec.as_str(),
        "hashAlgorithm": spec.hash_algorithm().as_str(),
        "payload": base64::engine::general_purpose::STANDARD.encode(b"payload"),
        "pluginConfig": config,
    });
    let transcript = card.dir.path().join("terminal.txt");
    let script = hsm_tests::repo().join("hsm-tests/piv-card/with_terminal.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script).arg("--transcript").arg(&transcript);
    if !terminal {
        cmd.arg("--no-terminal");
    }
    if let Some(a) = answer {
        cmd.args(["--answer", a]);
    }
    cmd.arg("--")
        .arg(&card.plugin)
        .arg("generate-signature")
        .envs(card.env())
        .env_remove("YUBIKEY_PIN")
        .env_remove("YUBIKEY_PIN_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("python3 with_terminal.py");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(request.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        std::fs::read_to_string(&transcript).unwrap_or_default(),
    )
}

/// The PIN from the environment, from a file and typed at the terminal; a wrong PIN costs
/// exactly one try each time and says how many are left; a blocked PIN says how to unblock it;
/// a PIN in pluginConfig or of the wrong length never reaches the card; without any source and
/// without a terminal the plugin says what to configure.
#[test]
fn pin_sources_wrong_and_blocked_pins() {
    let card = card();
    let ca = key_with_certificate(&card, 0x9c, KeySpec::Ec256, "DEFAULT");
    let bundle = card.write("ca.pem", &ca.root_pem()).display().to_string();
    let id = key_id(&card, 0x9c);
    let spec = KeySpec::Ec256;
    let ca_certs = ("ca_certs", bundle.as_str());

    let inv = sign_env(
        &card,
        &id,
        spec,
        &[ca_certs],
        &[("YUBIKEY_PIN", DEFAULT_PIN)],
    );
    assert!(
        inv.succeeded(),
        "PIN from YUBIKEY_PIN: {}",
        inv.stderr_text()
    );

    let refused = assert_error(
        &sign(&card, &id, spec, &[ca_certs, ("pin", DEFAULT_PIN)]),
        "VALIDATION_ERROR",
        &["pluginConfig 'pin'", "pin_file", "YUBIKEY_PIN"],
    );
    assert!(!refused.error_message.contains(DEFAULT_PIN));
    let short = card.write("short-pin", "1234").display().to_string();
    assert_error(
        &sign(&card, &id, spec, &[ca_certs, ("pin_file", &short)]),
        "VALIDATION_ERROR",
        &["4 characters", "6 to 8", "not sent"],
    );
    assert_eq!(card.pin_retries(), 3, "neither reached the card");

    let wrong = card.write("wrong-pin", "654321").display().to_string();
    for (left, says) in [(2, "2 tries left"), (1, "1 try left")] {
        let err = assert_error(
            &sign(&card, &id, spec, &[ca_certs, ("pin_file", &wrong)]),
            "ACCESS_DENIED",
            &["wrong PIN", says, "does not retry", "wrong-pin"],
        );
        assert!(!err.error_message.contains("654321"), "no PIN in messages");
        assert_eq!(card.pin_retries(), left, "one try per invocation");
    }
    assert_error(
        &sign(&card, &id, spec, &[ca_certs, ("pin_file", &wrong)]),
        "ACCESS_DENIED",
        &["blocked", "unblock-pin"],
    );
    assert_eq!(card.pin_retries(), 0);
    let right = card.write("pin", DEFAULT_PIN).display().to_string();
    let err = assert_error(
        &sign(&card, &id, spec, &[ca_certs, ("pin_file", &right)]),
        "ACCESS_DENIED",
        &["blocked", "PUK", &format!("--device {}", card.serial)],
    );
    assert!(!err.error_message.contains(DEFAULT_PIN));
    card.ykman(&[
        "piv",
        "access",
        "unblock-pin",
        "--puk",
        DEFAULT_PUK,
        "--new-pin",
        DEFAULT_PIN,
    ]);

    // Typed at the terminal: the prompt is on the terminal, never on stdout or stderr.
    let (code, stdout, stderr, terminal) =
        sign_at_terminal(&card, &id, spec, &[ca_certs], true, Some(DEFAULT_PIN));
    assert_eq!(code, Some(0), "stderr: {stderr}; terminal: {terminal}");
    assert!(
        terminal.contains(&format!("PIN for YubiKey {}", card.serial)),
        "{terminal}"
    );
    assert!(!terminal.contains(DEFAULT_PIN), "echo was off: {terminal}");
    // Stdout is the response and nothing else (its base64 may hold "PIN" by chance: a run
    // once did, in a certificate), stderr is empty.
    let response: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!("stdout is not one JSON response ({e}): {stdout}");
    });
    assert!(response["signature"].is_string(), "{stdout}");
    assert!(
        !stdout.contains("PIN for") && stderr.is_empty(),
        "{stdout} {stderr}"
    );
    assert_eq!(card.pin_retries(), 3);

    // No source and no terminal (CI).
    let (code, stdout, stderr, _) = sign_at_terminal(&card, &id, spec, &[ca_certs], false, None);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("ACCESS_DENIED")
            && stderr.contains("needs the PIN")
            && stderr.contains("PIN policy: always")
            && stderr.contains("pin_file"),
        "{stderr}"
    );
    assert_eq!(card.pin_retries(), 3);
}

/// A slot whose PIN policy is "never" signs with no PIN configured at all (and no terminal).
#[test]
fn a_pin_never_slot_signs_without_a_pin() {
    let card = card();
    let ca = key_with_certificate(&card, 0x9a, KeySpec::Ec384, "NEVER");
    let bundle = card.write("ca.pem", &ca.root_pem()).display().to_string();
    let (code, stdout, stderr, _) = sign_at_terminal(
        &card,
        &key_id(&card, 0x9a),
        KeySpec::Ec384,
        &[("ca_certs", &bundle)],
        false,
        None,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"signature\""), "{stdout}");
    let out = card.dir.path().join("check");
    std::fs::create_dir_all(&out).unwrap();
    check_and_verify(
        &card.plugin,
        &key_id(&card, 0x9a),
        &[("ca_certs", &bundle)],
        &env_refs(&card.env()),
        &ca.root_pem(),
        &out,
    );
    assert_eq!(card.pin_retries(), 3);
}

/// A touch-always key: touched, it signs (and the terminal said to touch it); untouched, the
/// card gives up and the answer is TIMEOUT saying a touch was expected; with a deadline shorter
/// than the card's wait, TIMEOUT at the deadline.
#[test]
fn touch_with_and_without_a_touch() {
    let card = card();
    let public = card.generate_with(0x9a, KeySpec::Ec256, "NEVER", "ALWAYS");
    let ca = TestCa::new("CN=Touch Root,O=Notation Plugins,ST=Washington,C=US");
    let chain = ca.issue_leaf(&public, "CN=touch,O=Notation Plugins,ST=Washington,C=US");
    card.import_certificate(0x9a, &chain[0]);
    let bundle = card.write("ca.pem", &ca.root_pem()).display().to_string();
    let id = key_id(&card, 0x9a);
    let config = [("ca_certs", bundle.as_str())];

    card.touch();
    let (code, stdout, stderr, terminal) =
        sign_at_terminal(&card, &id, KeySpec::Ec256, &config, true, None);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"signature\""));
    assert!(
        terminal.contains(&format!("Touch your YubiKey {}", card.serial)),
        "{terminal}"
    );

    card.set_touch_timeout(1.0);
    let err = assert_error(
        &sign(&card, &id, KeySpec::Ec256, &config),
        "TIMEOUT",
        &["needs a touch", "touch the key"],
    );
    assert!(
        err.error_message.contains("slot 9a"),
        "{}",
        err.error_message
    );

    card.set_touch_timeout(15.0);
    let started = Instant::now();
    assert_error(
        &sign(
            &card,
            &id,
            KeySpec::Ec256,
            &[config[0], ("timeout_seconds", "2")],
        ),
        "TIMEOUT",
        &["deadline", "needs a touch"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "ends by its deadline"
    );
    // Let the card finish waiting before the next test takes it.
    card.touch();
    card.wait_until_present();
}

/// Two YubiKeys: a key id without a serial is refused listing both; with a serial each card is
/// the one used; `list` shows both with their key ids.
#[test]
fn two_cards_need_a_serial_and_each_is_selected() {
    let card = card();
    let other = card.other_serial.to_string();
    card.other_card_with_p384_key();
    card.generate(0x9a, KeySpec::Ec256, "DEFAULT");

    let err = assert_error(&describe(&card, "9a"), "VALIDATION_ERROR", &["2 YubiKeys"]);
    for serial in [card.serial.to_string(), other.clone()] {
        assert!(err.error_message.contains(&serial), "{}", err.error_message);
    }
    for (serial, spec) in [
        (card.serial.to_string(), KeySpec::Ec256),
        (other.clone(), KeySpec::Ec384),
    ] {
        let id = format!("yubikey:serial={serial};slot=authentication");
        let described: DescribeKeyResponse = describe(&card, &id).response().unwrap();
        assert_eq!(described.key_spec, spec, "{id}");
    }
    assert_error(
        &describe(&card, "yubikey:serial=12345;slot=9a"),
        "ERROR",
        &["no YubiKey with serial 12345", &other],
    );
    let listed = command_ok(&card, &["list"], &[]);
    for want in [
        format!("YubiKey {} (firmware 5.7.1", card.serial),
        format!("YubiKey {other} (firmware 5.7.1"),
        format!("yubikey:serial={};slot=9a", card.serial),
        format!("yubikey:serial={other};slot=9a"),
        "key spec:      EC-384".to_owned(),
        "PIN policy:    once".to_owned(),
        "origin:        generated on the device".to_owned(),
    ] {
        assert!(listed.contains(&want), "list lacks {want:?}:\n{listed}");
    }
}

/// Keys notation cannot use, an empty slot and the attestation slot are refused naming what
/// they are, before anything is signed.
#[test]
fn unusable_keys_and_empty_slots_are_refused_naming_them() {
    let card = card();
    card.generate(0x9d, KeySpec::Rsa2048, "DEFAULT");
    let pem = card.dir.path().join("rsa1024.pem").display().to_string();
    card.ykman(&[
        "piv",
        "keys",
        "generate",
        "--management-key",
        DEFAULT_MGMT_KEY,
        "--algorithm",
        "RSA1024",
        "9d",
        &pem,
    ]);
    assert_error(
        &describe(&card, &key_id(&card, 0x9d)),
        "VALIDATION_ERROR",
        &["RSA-1024", "slot 9d"],
    );
    assert_error(
        &describe(&card, &key_id(&card, 0x9e)),
        "VALIDATION_ERROR",
        &["holds no key", "generate-key"],
    );
    assert_error(
        &describe(&card, "yubikey:slot=f9"),
        "VALIDATION_ERROR",
        &["attestation"],
    );
    let err = assert_error(
        &describe(&card, "yubikey:slot=9c;pin=975310"),
        "VALIDATION_ERROR",
        &[
            "a PIN does not belong in a key id",
            "pin_file",
            "YUBIKEY_PIN",
        ],
    );
    assert!(
        !err.error_message.contains("975310"),
        "{}",
        err.error_message
    );
}

/// A card pulled out in the middle of the signature is an ERROR saying so, quickly and with the
/// PIN counter untouched; back in, it signs. (A card slower than timeout_seconds: the contract
/// suite.)
#[test]
fn a_removed_card() {
    let card = card();
    let ca = key_with_certificate(&card, 0x9a, KeySpec::Ec256, "DEFAULT");
    let pin = card.write("pin", DEFAULT_PIN).display().to_string();
    let bundle = card.write("ca.pem", &ca.root_pem()).display().to_string();
    let id = key_id(&card, 0x9a);
    let config = [("ca_certs", bundle.as_str()), ("pin_file", pin.as_str())];
    assert!(sign(&card, &id, KeySpec::Ec256, &config).succeeded());

    card.inject_fault("remove 1.5 87");
    let started = Instant::now();
    let err = assert_error(
        &sign(&card, &id, KeySpec::Ec256, &config),
        "ERROR",
        &["removed"],
    );
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    assert!(!err.error_message.contains(DEFAULT_PIN));
    assert_eq!(card.pin_retries(), 3);
    std::thread::sleep(Duration::from_millis(1500));
    card.wait_until_present();
    let inv = sign(&card, &id, KeySpec::Ec256, &config);
    assert!(inv.succeeded(), "back in: {}", inv.stderr_text());
}

/// The plugin's own commands: generate-key (refusing an occupied slot without --force),
/// import-certificate (refusing a certificate of another key), attest against the card's
/// attestation root, verify-attestation offline, and Yubico's roots refusing the test root.
#[test]
fn generate_key_import_certificate_and_attestation() {
    let card = card();
    let pin = card.write("pin", DEFAULT_PIN).display().to_string();
    let mgmt = card.write("mgmt", DEFAULT_MGMT_KEY).display().to_string();
    let env = [("YUBIKEY_PIN_FILE", pin.as_str())];
    let serial = card.serial.to_string();
    let generate = [
        "generate-key",
        "--serial",
        &serial,
        "--slot",
        "signature",
        "--algorithm",
        "EC-384",
        "--pin-policy",
        "once",
        "--touch-policy",
        "never",
        "--management-key-file",
        &mgmt,
        "--out",
        "9c.pub.pem",
    ];
    let text = command_ok(&card, &generate, &env);
    assert!(text.contains(&key_id(&card, 0x9c)), "{text}");
    assert!(text.contains("factory-default management key"), "{text}");
    let info = card.ykman(&["piv", "keys", "info", "9c"]);
    assert!(info.contains("ECCP384") && info.contains("ONCE"), "{info}");
    let mut p521 = generate.to_vec();
    p521[6] = "EC-521";
    let refused = command(&card, &p521, &env);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot hold EC-521"));
    let again = command(&card, &generate, &env);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a key"));
    let mut no_key_args = generate[..generate.len() - 4].to_vec();
    no_key_args.push("--force");
    let no_key = command(&card, &no_key_args, &[]);
    assert_eq!(no_key.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&no_key.stderr).contains("--management-key-file"),
        "{}",
        String::from_utf8_lossy(&no_key.stderr)
    );

    let public = plugin_protocol::PublicKey::from_spki_pem(
        &std::fs::read_to_string(card.dir.path().join("9c.pub.pem")).unwrap(),
    )
    .unwrap();
    let ca = TestCa::new("CN=Attest Root,O=Notation Plugins,ST=Washington,C=US");
    let leaf = ca.issue_leaf(&public, "CN=attested,O=Notation Plugins,ST=Washington,C=US");
    let leaf_pem = card
        .write("leaf.pem", &leaf[0].to_pem())
        .display()
        .to_string();
    let stranger = ca.issue_leaf(
        &card.generate(0x9d, KeySpec::Ec256, "DEFAULT"),
        "CN=other,O=Notation Plugins,ST=Washington,C=US",
    );
    let stranger_pem = card
        .write("other.pem", &stranger[0].to_pem())
        .display()
        .to_string();
    let wrong = command(
        &card,
        &[
            "import-certificate",
            "--serial",
            &serial,
            "--slot",
            "9c",
            &stranger_pem,
            "--management-key-file",
            &mgmt,
        ],
        &env,
    );
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("is for the key in slot 9c"));
    command_ok(
        &card,
        &[
            "import-certificate",
            "--serial",
            &serial,
            "--slot",
            "9c",
            &leaf_pem,
            "--management-key-file",
            &mgmt,
        ],
        &env,
    );
    let described: DescribeKeyResponse = describe(&card, &key_id(&card, 0x9c)).response().unwrap();
    assert_eq!(described.key_spec, KeySpec::Ec384);

    let root = card
        .state_dir
        .join("attestation-root.pem")
        .display()
        .to_string();
    let attested = command_ok(
        &card,
        &[
            "attest",
            "--serial",
            &serial,
            "--slot",
            "9c",
            "--out-dir",
            "att",
            "--root",
            &root,
        ],
        &[],
    );
    for want in [
        "attestation verified",
        "generated on the YubiKey",
        &format!("serial:        {}", card.serial),
        "firmware:      5.7.1",
        "PIN policy:    once",
        "touch policy:  never",
    ] {
        assert!(
            attested.contains(want),
            "attest lacks {want:?}:\n{attested}"
        );
    }
    let att = card
        .dir
        .path()
        .join("att/attestation-9c.pem")
        .display()
        .to_string();
    let f9 = card
        .dir
        .path()
        .join(format!("att/f9-{serial}.pem"))
        .display()
        .to_string();
    let offline = command_ok(
        &card,
        &[
            "verify-attestation",
            "--attestation",
            &att,
            "--f9",
            &f9,
            "--root",
            &root,
            "--certificate",
            &leaf_pem,
        ],
        &[],
    );
    assert!(offline.contains("is for the attested key"), "{offline}");
    // openssl agrees that the f9 certificate issued the attestation.
    card.run_ok(
        "openssl",
        &["verify", "-partial_chain", "-CAfile", &f9, &att],
    );
    let not_yubico = command(
        &card,
        &["verify-attestation", "--attestation", &att, "--f9", &f9],
        &[],
    );
    assert_eq!(not_yubico.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&not_yubico.stderr).contains("does not chain to a trusted root")
    );
    let not_this_key = command(
        &card,
        &[
            "verify-attestation",
            "--attestation",
            &att,
            "--f9",
            &f9,
            "--root",
            &root,
            "--certificate",
            &stranger_pem,
        ],
        &[],
    );
    assert_eq!(not_this_key.status.code(), Some(1));
}

/// The main README's offline-root workflow with the root on the YubiKey: `ca init` on a key in
/// 9c (PIN always), a LocalStack KMS key's CSR certified by it with `ca issue`, and the KMS
/// plugin signing with that chain through the checker, verified against the card's root.
#[test]
fn an_offline_root_on_the_yubikey_certifies_a_kms_key() {
    hsm_tests::localstack::start();
    let card = card();
    card.generate(0x9c, KeySpec::Ec384, "DEFAULT");
    let pin = card.write("pin", DEFAULT_PIN).display().to_string();
    let env = [("YUBIKEY_PIN_FILE", pin.as_str())];
    let p = |name: &str| card.dir.path().join(name).display().to_string();
    let root_id = key_id(&card, 0x9c);
    command_ok(
        &card,
        &[
            "ca",
            "init",
            "--key-id",
            &root_id,
            "--subject",
            "CN=YubiKey Offline Root,O=Example,ST=Washington,C=US",
            "--days",
            "30",
            "--out",
            &p("root.pem"),
        ],
        &env,
    );
    let aws_plugin = plugin_binary("aws-kms");
    let aws = hsm_tests::localstack::env();
    let run_aws = |args: &[&str]| {
        let out = Command::new(&aws_plugin)
            .args(args)
            .envs(aws.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let kms_key = run_aws(&["create-key", "--spec", "ECC_NIST_P256"])
        .trim()
        .to_owned();
    run_aws(&[
        "certificate",
        "csr",
        "--key-id",
        &kms_key,
        "--subject",
        "CN=ci kms,O=Example,ST=Washington,C=US",
        "--out",
        &p("kms.csr"),
    ]);
    command_ok(
        &card,
        &[
            "ca",
            "issue",
            "--ca-key-id",
            &root_id,
            "--ca-cert",
            &p("root.pem"),
            "--csr",
            &p("kms.csr"),
            "--days",
            "7",
            "--out",
            &p("kms-chain.pem"),
        ],
        &env,
    );
    card.run_ok(
        "openssl",
        &["verify", "-CAfile", &p("root.pem"), &p("kms-chain.pem")],
    );
    let root = std::fs::read_to_string(p("root.pem")).unwrap();
    let out = PathBuf::from(p("check"));
    std::fs::create_dir_all(&out).unwrap();
    check_and_verify(
        &aws_plugin,
        &kms_key,
        &[("certificate_chain", &p("kms-chain.pem"))],
        &env_refs(&aws),
        &root,
        &out,
    );
    assert_eq!(card.pin_retries(), 3);
    let _ = Path::new(&root);
}

/// A YubiKey held exclusively by another program (as gpg's scdaemon holds one) is refused with
/// that cause named, and the key signs again once the program lets go.
#[test]
fn a_card_held_by_another_program_is_named() {
    let card = card();
    let ca = key_with_certificate(&card, 0x9a, KeySpec::Ec256, "NEVER");
    let bundle = card.write("ca.pem", &ca.root_pem()).display().to_string();
    let id = key_id(&card, 0x9a);
    // pyscard (ykman's PC/SC layer) takes the card in exclusive mode until stdin closes.
    let python = std::path::Path::new(&card.vars["PIV_CARD_YKMAN"]).with_file_name("python");
    let hold = r#"
import sys
from smartcard.System import readers
from smartcard.scard import SCARD_SHARE_EXCLUSIVE
reader = [r for r in readers() if str(r) == sys.argv[1]][0]
conn = reader.createConnection()
conn.connect(mode=SCARD_SHARE_EXCLUSIVE)
print("held", flush=True)
sys.stdin.read()
"#;
    let mut holder = Command::new(python)
        .args(["-c", hold, card.reader])
        .envs(card.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the card holder");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held");
    let err = assert_error(
        &sign(&card, &id, KeySpec::Ec256, &[("ca_certs", &bundle)]),
        "ERROR",
        &["held by another program", "scdaemon"],
    );
    assert!(
        !err.error_message.contains("PC/SC error"),
        "{}",
        err.error_message
    );
    drop(holder.stdin.take());
    holder.wait().unwrap();
    let inv = sign(&card, &id, KeySpec::Ec256, &[("ca_certs", &bundle)]);
    assert!(inv.succeeded(), "let go: {}", inv.stderr_text());
}

/// A YubiKey whose management key is PIN-protected (ykman `--protect`): generate-key and
/// import-certificate use it after the PIN, with no management key given, and do not warn about
/// a factory-default key.
#[test]
fn generate_key_with_the_pin_protected_management_key() {
    let card = card();
    card.ykman(&[
        "piv",
        "access",
        "change-management-key",
        "--management-key",
        DEFAULT_MGMT_KEY,
        "--pin",
        DEFAULT_PIN,
        "--generate",
        "--protect",
        "--force",
    ]);
    let pin = card.write("pin", DEFAULT_PIN).display().to_string();
    let env = [("YUBIKEY_PIN_FILE", pin.as_str())];
    let serial = card.serial.to_string();
    let text = command_ok(
        &card,
        &[
            "generate-key",
            "--serial",
            &serial,
            "--slot",
            "9d",
            "--algorithm",
            "RSA-2048",
            "--out",
            "9d.pub.pem",
        ],
        &env,
    );
    assert!(text.contains(&key_id(&card, 0x9d)), "{text}");
    assert!(!text.contains("factory-default"), "{text}");
    let info = card.ykman(&["piv", "keys", "info", "9d"]);
    assert!(info.contains("RSA2048"), "{info}");
    // Without the PIN the protected key cannot be read, and the message says what to give.
    let out = command(
        &card,
        &[
            "generate-key",
            "--serial",
            &serial,
            "--slot",
            "9a",
            "--algorithm",
            "EC-256",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("YUBIKEY_PIN") && stderr.contains("--management-key-file"),
        "{stderr}"
    );
    assert_eq!(card.pin_retries(), 3);
}

/// libpcsclite is loaded on the first PC/SC call, not by the dynamic loader at every start:
/// the binary does not list it, get-plugin-metadata answers without it, and a libpcsclite that
/// cannot be loaded (here an empty file first on `LD_LIBRARY_PATH`) is named in the JSON error
/// of the command that needed it, where the dynamic loader used to stop the plugin with a line
/// notation cannot parse. No card is needed.
#[test]
fn libpcsclite_is_loaded_at_first_use_and_named_when_it_cannot_be() {
    let exe = plugin_binary("yubikey");
    let needed = plugin_protocol::client::needed_libraries(&exe);
    assert!(
        !needed.iter().any(|l| l.contains("pcsclite")),
        "{} still needs libpcsclite at start: {needed:?}",
        exe.display()
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("libpcsclite.so.1"), b"").unwrap();
    let plugin = PluginClient::new(&exe)
        .with_env("LD_LIBRARY_PATH", dir.path().to_string_lossy().into_owned());
    let metadata = plugin.get_metadata(None).expect("run the plugin");
    assert!(metadata.succeeded(), "{}", metadata.stderr_text());
    let inv = plugin
        .describe_key("yubikey:slot=9c", None)
        .expect("run the plugin");
    let err = assert_error(
        &inv,
        "ERROR",
        &[
            "cannot load libpcsclite.so.1, the PC/SC client library",
            "apt install",
        ],
    );
    assert!(
        err.error_message
            .contains(&dir.path().to_string_lossy().into_owned())
            || err.error_message.contains("file too short"),
        "the loader's reason should be given: {}",
        err.error_message
    );
}
