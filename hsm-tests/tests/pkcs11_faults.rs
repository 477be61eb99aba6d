//! notation-pkcs11 against a token that misbehaves: a module that hangs in any blocking call
//! ends in TIMEOUT by the deadline, a login whose outcome is unknown is never made again (counted
//! by OpenSC's pkcs11-spy in front of a fault-injecting pass-through to SoftHSM2), and the
//! module and SoftHSM configuration mistakes users make get a message that says what to do.

use std::time::Duration;

use hsm_tests::softhsm::{fault_module, pkcs11_spy, SoftToken, SOFTHSM_MODULE};
use hsm_tests::{assert_error, config};
use plugin_protocol::client::{Invocation, PluginClient};
use plugin_protocol::testca::TestCa;
use plugin_protocol::KeySpec;

/// A token with an EC-256 key `k` and its chain on the token.
fn token_with_key(label: &str) -> SoftToken {
    let token = SoftToken::new(label);
    let uri = token.generate("k", KeySpec::Ec256);
    let ca = TestCa::new("CN=Root");
    token.import_chain(&uri, &ca.issue_leaf(&token.public_key(&uri), "CN=leaf"));
    token
}

/// The key URI of `k` through `module`.
fn uri_via(token: &SoftToken, module: &str) -> String {
    format!(
        "pkcs11:token={};object=k?module-path={module}&pin-source=file:{}",
        token.label,
        token.pin_file().display()
    )
}

/// The plugin with the fault module behind pkcs11-spy; the spy log is `spy.log`.
fn faulty_client(token: &SoftToken, fault: &[(&str, &str)]) -> PluginClient {
    let mut c = token
        .client()
        .with_env("PKCS11SPY", fault_module().display().to_string())
        .with_env(
            "PKCS11SPY_OUTPUT",
            token.dir.path().join("spy.log").display().to_string(),
        )
        .with_env("FAULT_PKCS11_MODULE", SOFTHSM_MODULE);
    for (k, v) in fault {
        c = c.with_env(*k, *v);
    }
    c.timeout = Duration::from_secs(15);
    c
}

fn spy_log(token: &SoftToken) -> String {
    std::fs::read_to_string(token.dir.path().join("spy.log")).unwrap_or_default()
}

fn sign(client: &PluginClient, uri: &str, timeout: &str) -> Invocation {
    client
        .generate_signature(
            uri,
            KeySpec::Ec256,
            KeySpec::Ec256.hash_algorithm(),
            b"payload",
            config(&[("timeout_seconds", timeout)]),
        )
        .expect("the plugin ends by itself, before the test's 15 s")
}

#[test]
fn a_module_that_hangs_in_any_blocking_call_ends_in_timeout_by_the_deadline() {
    let token = token_with_key("hang");
    let uri = uri_via(&token, pkcs11_spy());
    // Without a fault, the same stack signs.
    let ok = sign(&faulty_client(&token, &[]), &uri, "10");
    assert!(ok.succeeded(), "{}", ok.stderr_text());
    for call in [
        "C_GetFunctionList",
        "C_Initialize",
        "C_OpenSession",
        "C_Login",
        "C_FindObjectsInit",
        "C_FindObjects",
        "C_GetAttributeValue",
        "C_SignInit",
        "C_Sign",
    ] {
        let client = faulty_client(&token, &[("FAULT_PKCS11_HANG", call)]);
        let inv = sign(&client, &uri, "0.5");
        let err = assert_error(&inv, "TIMEOUT", &["0.5s deadline"]);
        assert!(
            inv.elapsed < Duration::from_secs(6),
            "{call}: answered after {:?}",
            inv.elapsed
        );
        assert!(!err.error_message.contains(&token.pin()), "the PIN leaked");
        // describe-key goes through the same calls, up to finding the key.
        if !call.starts_with("C_Sign") {
            let inv = client
                .describe_key(&uri, config(&[("timeout_seconds", "0.5")]))
                .unwrap();
            assert_error(&inv, "TIMEOUT", &["deadline"]);
        }
    }
}

#[test]
fn the_timeout_names_the_pkcs11_call_that_hung() {
    let token = token_with_key("named");
    let uri = uri_via(&token, pkcs11_spy());
    for (call, needle) in [
        ("C_Login", "did not return from C_Login"),
        ("C_OpenSession", "did not return from C_OpenSession"),
        ("C_Sign", "C_Sign"),
    ] {
        let inv = sign(
            &faulty_client(&token, &[("FAULT_PKCS11_HANG", call)]),
            &uri,
            "1",
        );
        assert_error(&inv, "TIMEOUT", &[needle]);
    }
}

#[test]
fn a_deadline_of_one_microsecond_never_signs() {
    let token = token_with_key("micro");
    let inv = sign(&token.client(), &token.uri("k"), "0.000001");
    assert_error(&inv, "TIMEOUT", &["deadline"]);
}

#[test]
fn a_login_whose_outcome_is_unknown_is_made_exactly_once() {
    let token = token_with_key("pinsafe");
    let uri = uri_via(&token, pkcs11_spy());
    for (rv, code, needle) in [
        ("0x5", "ERROR", "(GeneralError)"),
        ("0x30", "ERROR", "(DeviceError)"),
        ("0x102", "VALIDATION_ERROR", "CKR_USER_PIN_NOT_INITIALIZED"),
    ] {
        let _ = std::fs::remove_file(token.dir.path().join("spy.log"));
        let inv = sign(
            &faulty_client(&token, &[("FAULT_PKCS11_LOGIN_RV", rv)]),
            &uri,
            "10",
        );
        assert_error(&inv, code, &[needle, "does not log in again"]);
        let calls = spy_log(&token);
        assert_eq!(
            calls.matches("C_Login").count(),
            1,
            "C_Login answered {rv}: the plugin must not log in again:\n{calls}"
        );
        // The token opening itself was not repeated either once the login had been tried.
        assert_eq!(calls.matches("C_Initialize").count(), 1, "{calls}");
    }
}

#[test]
fn a_module_path_that_is_a_directory_is_named_as_such() {
    let token = token_with_key("dir");
    let dir = token.dir.path().display().to_string();
    let inv = token
        .client()
        .describe_key(&uri_via(&token, &dir), None)
        .unwrap();
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["is a directory", "not a shared library"],
    );
}

#[test]
fn a_missing_softhsm_configuration_says_what_to_set() {
    let token = token_with_key("conf");
    let uri = token.uri("k");
    let mut c =
        PluginClient::new(&token.plugin).with_env("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf");
    c.timeout = Duration::from_secs(15);
    let inv = c.describe_key(&uri, None).unwrap();
    assert_error(
        &inv,
        "ERROR",
        &[
            "SOFTHSM2_CONF is /nonexistent/softhsm2.conf",
            "softhsm2.conf",
        ],
    );
}

/// Sends `signal` to the plugin once it is stuck in C_Sign, and returns what it answered.
fn interrupted(token: &SoftToken, signal: &str) -> (Option<i32>, String, Duration) {
    let uri = uri_via(token, pkcs11_spy());
    let req = serde_json::json!({
        "contractVersion": "1.0", "keyId": uri, "keySpec": "EC-256", "hashAlgorithm": "SHA-256",
        "payload": "aGVsbG8=", "pluginConfig": {"timeout_seconds": "60"}
    });
    let client = faulty_client(token, &[("FAULT_PKCS11_HANG", "C_Sign")]);
    let child = hsm_tests::spawn_plugin(
        &client.path,
        "generate-signature",
        &client.env,
        &req.to_string(),
    );
    // Wait until the spy saw C_Sign: the plugin is inside the backend call.
    let start = std::time::Instant::now();
    while !spy_log(token).contains("C_Sign") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "never reached C_Sign"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = std::time::Instant::now();
    let ok = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the plugin ends promptly after the signal")
        .unwrap();
    assert!(out.stdout.is_empty());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        sent.elapsed(),
    )
}

#[test]
fn sigterm_and_sigint_during_c_sign_end_promptly_and_release_the_token() {
    let token = token_with_key("signals");
    for signal in ["TERM", "INT"] {
        let _ = std::fs::remove_file(token.dir.path().join("spy.log"));
        let (code, stderr, after) = interrupted(&token, signal);
        assert_eq!(code, Some(1), "{signal}: {stderr}");
        let err: plugin_protocol::error::ErrorResponse =
            serde_json::from_str(&stderr).unwrap_or_else(|e| panic!("{e}: {stderr}"));
        assert!(
            err.error_message
                .contains(&format!("interrupted by SIG{signal}")),
            "{}",
            err.error_message
        );
        assert!(
            after < Duration::from_secs(5),
            "{signal}: ended {after:?} after the signal"
        );
        let calls = spy_log(&token);
        assert!(
            calls.contains("C_Finalize"),
            "{signal}: the sessions were not released:\n{calls}"
        );
    }
}
