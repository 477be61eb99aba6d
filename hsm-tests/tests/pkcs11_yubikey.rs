//! notation-pkcs11 on a YubiKey through Yubico's YKCS11, against the virtual PIV card of
//! `hsm-tests/piv-card/` in a real pcscd: keys in every slot kind (9c with its PIN-always
//! policy, which needs a context-specific login before each signature) through the conformance
//! checker, the chain from the slot's certificate plus ca_certs, the PIN counter, and the
//! certificate commands with the root key on the card. The card is set up with ykman.

use hsm_tests::piv_card::{PivCard, DEFAULT_PIN, DEFAULT_PUK};
use hsm_tests::{assert_error, check_and_verify, env_refs};
use plugin_protocol::client::PluginClient;
use plugin_protocol::testca::TestCa;
use plugin_protocol::KeySpec;

/// A key of `spec` in `slot` with a certificate from a test CA in the slot; returns the CA.
fn key_with_certificate(card: &PivCard, slot: u8, spec: KeySpec) -> TestCa {
    let public = card.generate(slot, spec, "DEFAULT");
    let ca = TestCa::new("CN=YubiKey Test Root,O=Notation Plugins,ST=Washington,C=US");
    let chain = ca.issue_leaf(
        &public,
        &format!("CN=release {slot:02x},O=Notation Plugins,ST=Washington,C=US"),
    );
    card.import_certificate(slot, &chain[0]);
    ca
}

/// Every (slot, spec) pair: a key in each slot, its certificate in the slot, the root from
/// ca_certs, through the checker (JWS and COSE) and verified.
fn slots_pass_the_checker(keys: &[(u8, KeySpec)]) {
    let card = PivCard::acquire();
    let pin = card.write("pin", DEFAULT_PIN);
    let cas: Vec<_> = keys
        .iter()
        .map(|&(slot, spec)| (slot, spec, key_with_certificate(&card, slot, spec)))
        .collect();
    // 9c keys are PIN-always by default, as on a real YubiKey: the test means it.
    if keys.iter().any(|k| k.0 == 0x9c) {
        let info = card.ykman(&["piv", "keys", "info", "9c"]);
        assert!(info.contains("PIN required for use:   ALWAYS"), "{info}");
    }
    let env = card.env();
    for (slot, spec, ca) in &cas {
        let uri = card.uri(*slot, &pin);
        let described = PluginClient::new(&card.plugin)
            .with_envs(&env)
            .describe_key(&uri, None)
            .unwrap();
        let described: plugin_protocol::contract::DescribeKeyResponse = described
            .response()
            .unwrap_or_else(|e| panic!("slot {slot:02x}: {e:?}"));
        assert_eq!(described.key_spec, *spec, "slot {slot:02x}");
        let bundle = card.write(&format!("ca-{slot:02x}.pem"), &ca.root_pem());
        let out = card.dir.path().join(format!("check-{slot:02x}"));
        std::fs::create_dir_all(&out).unwrap();
        check_and_verify(
            &card.plugin,
            &uri,
            &[("ca_certs", &bundle.display().to_string())],
            &env_refs(&env),
            &ca.root_pem(),
            &out,
        );
    }
    assert_eq!(card.pin_retries(), 3, "no wrong PIN on the way");
}

#[test]
fn ec256_ec384_rsa2048_in_every_slot_kind_pass_the_checker_1() {
    slots_pass_the_checker(&[
        (0x9a, KeySpec::Ec256),
        (0x9c, KeySpec::Ec384),
        (0x9d, KeySpec::Rsa2048),
        (0x9e, KeySpec::Ec256),
        (0x82, KeySpec::Ec384),
    ]);
}

#[test]
fn ec256_ec384_rsa2048_in_every_slot_kind_pass_the_checker_2() {
    slots_pass_the_checker(&[
        (0x9a, KeySpec::Ec384),
        (0x9c, KeySpec::Rsa2048),
        (0x9d, KeySpec::Ec256),
        (0x9e, KeySpec::Rsa2048),
        (0x95, KeySpec::Ec256),
    ]);
}

#[test]
fn ec256_ec384_rsa2048_in_every_slot_kind_pass_the_checker_3() {
    slots_pass_the_checker(&[
        (0x9a, KeySpec::Rsa2048),
        (0x9c, KeySpec::Ec256),
        (0x9d, KeySpec::Ec384),
        (0x9e, KeySpec::Ec384),
        (0x8c, KeySpec::Rsa2048),
    ]);
}

/// A wrong PIN from the PIN file is tried once (the card's counter goes down by exactly one,
/// also for the PIN-always key of 9c); a blocked PIN is reported as such, even with the right
/// PIN; after unblocking with the PUK the key signs again.
#[test]
fn wrong_pin_counts_once_and_a_blocked_pin_is_reported() {
    let card = PivCard::acquire();
    let ca = key_with_certificate(&card, 0x9c, KeySpec::Ec256);
    let bundle = card.write("ca.pem", &ca.root_pem()).display().to_string();
    let wrong = card.write("wrong-pin", "654321");
    let right = card.write("pin", DEFAULT_PIN);
    let env = card.env();
    let client = PluginClient::new(&card.plugin).with_envs(&env);
    let spec = KeySpec::Ec256;
    let sign = |uri: &str| {
        client
            .generate_signature(
                uri,
                spec,
                spec.hash_algorithm(),
                b"payload",
                hsm_tests::config(&[("ca_certs", &bundle)]),
            )
            .unwrap()
    };
    let config_pin = card.uri(0x9c, &wrong);
    for remaining in [2, 1, 0] {
        assert_error(
            &sign(&config_pin),
            "ACCESS_DENIED",
            &["wrong PIN", "does not retry"],
        );
        assert_eq!(card.pin_retries(), remaining, "one attempt per invocation");
    }
    let err = assert_error(
        &sign(&card.uri(0x9c, &right)),
        "ACCESS_DENIED",
        &["blocked"],
    );
    assert!(
        !err.error_message.contains(DEFAULT_PIN),
        "no PIN in messages"
    );
    assert_eq!(card.pin_retries(), 0);

    card.ykman(&[
        "piv",
        "access",
        "unblock-pin",
        "--puk",
        DEFAULT_PUK,
        "--new-pin",
        DEFAULT_PIN,
    ]);
    let inv = sign(&card.uri(0x9c, &right));
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    assert_eq!(card.pin_retries(), 3);
}

/// `ca init` with the root key in 9c (PIN always) and `ca issue` for a key in 9a; the leaf goes
/// back into 9a and signs, verified against the root the card made.
#[test]
fn ca_init_and_issue_with_the_root_key_on_the_card() {
    let card = PivCard::acquire();
    let pin = card.write("pin", DEFAULT_PIN);
    card.generate(0x9c, KeySpec::Ec384, "DEFAULT");
    card.generate(0x9a, KeySpec::Ec256, "DEFAULT");
    let (root_uri, leaf_uri) = (card.uri(0x9c, &pin), card.uri(0x9a, &pin));
    let p = |name: &str| card.dir.path().join(name).display().to_string();
    let plugin = card.plugin.display().to_string();
    card.run_ok(
        &plugin,
        &[
            "ca",
            "init",
            "--key-id",
            &root_uri,
            "--subject",
            "CN=YubiKey Offline Root,O=Example,ST=Washington,C=US",
            "--days",
            "30",
            "--out",
            &p("root.pem"),
        ],
    );
    card.run_ok(
        &plugin,
        &[
            "ca",
            "issue",
            "--ca-key-id",
            &root_uri,
            "--ca-cert",
            &p("root.pem"),
            "--public-key-of",
            &leaf_uri,
            "--subject",
            "CN=release,O=Example,ST=Washington,C=US",
            "--out",
            &p("chain.pem"),
        ],
    );
    let verified = card.run_ok(
        "openssl",
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            &p("root.pem"),
            &p("chain.pem"),
        ],
    );
    assert!(verified.contains("OK"), "{verified}");
    let chain = plugin_protocol::chain::load_file(std::path::Path::new(&p("chain.pem"))).unwrap();
    card.import_certificate(0x9a, &chain[0]);
    let root = std::fs::read_to_string(p("root.pem")).unwrap();
    let out = card.dir.path().join("check");
    std::fs::create_dir_all(&out).unwrap();
    check_and_verify(
        &card.plugin,
        &leaf_uri,
        &[("ca_certs", &p("root.pem"))],
        &env_refs(&card.env()),
        &root,
        &out,
    );
}

/// The card misbehaving under the plugin: pulled out in the middle of the signature (GENERAL
/// AUTHENTICATE), it fails that invocation with a JSON error and the PIN counter untouched, and
/// signs again once back; a card slower than timeout_seconds ends in TIMEOUT; a touch-always key
/// signs when touched and fails like a YubiKey when nobody touches it.
#[test]
fn a_card_pulled_out_a_slow_card_and_touch() {
    let card = PivCard::acquire();
    let ca = key_with_certificate(&card, 0x9a, KeySpec::Ec256);
    let pin = card.write("pin", DEFAULT_PIN);
    let bundle = card.write("ca.pem", &ca.root_pem()).display().to_string();
    let env = card.env();
    let client = PluginClient::new(&card.plugin).with_envs(&env);
    let sign = |uri: &str, timeout: &str| {
        let spec = KeySpec::Ec256;
        client
            .generate_signature(
                uri,
                spec,
                spec.hash_algorithm(),
                b"payload",
                hsm_tests::config(&[("ca_certs", &bundle), ("timeout_seconds", timeout)]),
            )
            .unwrap()
    };
    let uri = card.uri(0x9a, &pin);
    assert!(sign(&uri, "30").succeeded());

    card.inject_fault("remove 1.5 87");
    let err = assert_error(&sign(&uri, "30"), "ERROR", &["refused to sign", "C_Sign"]);
    assert!(!err.error_message.contains(DEFAULT_PIN));
    assert_eq!(card.pin_retries(), 3, "the PIN was right: nothing counted");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    card.wait_until_present();
    let inv = sign(&uri, "30");
    assert!(inv.succeeded(), "back in: {}", inv.stderr_text());

    card.inject_fault("slow 0.5");
    let started = std::time::Instant::now();
    assert_error(&sign(&uri, "2"), "TIMEOUT", &["deadline", "C_"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "ends by its deadline"
    );
    card.clear_fault();
    std::thread::sleep(std::time::Duration::from_secs(1));

    let public = card.generate_with(0x83, KeySpec::Ec256, "ONCE", "ALWAYS");
    let leaf = ca.issue_leaf(&public, "CN=touch,O=Notation Plugins,ST=Washington,C=US");
    card.import_certificate(0x83, &leaf[0]);
    let touch_uri = card.uri(0x83, &pin);
    card.set_touch_timeout(1.0);
    assert_error(
        &sign(&touch_uri, "30"),
        "ERROR",
        &["refused to sign", "not touched in time", "touch it"],
    );
    card.touch();
    let inv = sign(&touch_uri, "30");
    assert!(inv.succeeded(), "touched: {}", inv.stderr_text());
}

/// The second card of the stack, chosen by its serial in the URI.
#[test]
fn the_serial_selects_the_card() {
    let card = PivCard::acquire();
    let other = card.other_serial.to_string();
    card.other_card_with_p384_key();
    card.generate(0x9a, KeySpec::Ec256, "DEFAULT");
    let pin = card.write("pin", DEFAULT_PIN);
    let uri = card.uri(0x9a, &pin);
    let other_uri = uri.replace(
        &format!("serial={}", card.serial),
        &format!("serial={other}"),
    );
    for (uri, spec) in [(&uri, KeySpec::Ec256), (&other_uri, KeySpec::Ec384)] {
        let described = PluginClient::new(&card.plugin)
            .with_envs(&card.env())
            .describe_key(uri, None)
            .unwrap();
        let described: plugin_protocol::contract::DescribeKeyResponse =
            described.response().unwrap();
        assert_eq!(described.key_spec, spec, "{uri}");
    }
}
