//! notation-hashicorp-vault against answers a real Vault never gives (a small fake endpoint):
//! passwords in VAULT_ADDR, huge key names, malformed and huge answers, a Retry-After past the
//! deadline, and secret files that are FIFOs or readable by others. No OpenBao needed.

use std::time::Duration;

use hsm_tests::fake::{self, closed_port, Answer};
use hsm_tests::{assert_error, config, plugin_binary};
use plugin_protocol::client::{Invocation, PluginClient};

fn client(addr: &str) -> PluginClient {
    let mut c = PluginClient::new(plugin_binary("hashicorp-vault"))
        .with_env("VAULT_ADDR", addr)
        .with_env("VAULT_TOKEN", "s.faketoken")
        .with_env("HOME", "/nonexistent");
    c.timeout = Duration::from_secs(15);
    c
}

fn describe(c: &PluginClient, key: &str, pairs: &[(&str, &str)]) -> Invocation {
    c.describe_key(key, config(pairs)).unwrap()
}

#[test]
fn a_password_in_vault_addr_is_never_echoed() {
    let secret = "pw-9f3e1c";
    let down = format!("http://127.0.0.1:{}", closed_port());
    let with_pw = down.replace("http://", &format!("http://release:{secret}@"));
    let inv = describe(&client(&with_pw), "k", &[]);
    let err = assert_error(
        &inv,
        "ERROR",
        &["connection refused", "release:[redacted]@"],
    );
    assert!(!err.error_message.contains(secret), "{}", err.error_message);

    let failing = fake::serve(fake::json(
        "500 Internal Server Error",
        r#"{"errors":["boom"]}"#,
    ));
    let with_pw = failing
        .addr
        .replace("http://", &format!("http://u:{secret}@"));
    let inv = describe(&client(&with_pw), "k", &[("timeout_seconds", "3")]);
    assert!(!inv.stderr_text().contains(secret), "{}", inv.stderr_text());

    let inv = describe(&client(&format!("ftp://u:{secret}@host")), "k", &[]);
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["environment variable VAULT_ADDR must be an http(s):// URL"],
    );
    assert!(!inv.stderr_text().contains(secret), "{}", inv.stderr_text());
}

#[test]
fn a_huge_key_name_is_refused_at_once_and_shortened() {
    let server = fake::serve(fake::json("500 Internal Server Error", "{}"));
    let name = "k".repeat(1 << 20);
    let inv = describe(&client(&server.addr), &name, &[]);
    let err = assert_error(&inv, "VALIDATION_ERROR", &["characters long"]);
    assert!(
        err.error_message.len() < 2000,
        "{} bytes",
        err.error_message.len()
    );
    assert_eq!(
        server.requests(),
        0,
        "no request for a name that cannot be valid"
    );
    assert!(inv.elapsed < Duration::from_secs(5), "{:?}", inv.elapsed);
}

#[test]
fn a_wrong_shape_answer_is_the_servers_fault() {
    for body in [
        r#"{"data":{"foo":1}}"#,
        r#"{"data":[]}"#,
        r#"{"nothing":true}"#,
        r#"{"data":{"type":7,"latest_version":1}}"#,
    ] {
        let server = fake::serve(fake::json("200 OK", body));
        let inv = describe(&client(&server.addr), "k", &[]);
        let err = assert_error(&inv, "ERROR", &["malformed answer"]);
        assert!(
            !err.error_message.contains("notation cannot sign"),
            "{}",
            err.error_message
        );
    }
}

#[test]
fn a_retry_after_past_the_deadline_is_throttled_and_says_so() {
    let server = fake::serve(Answer::Http(
        "429 Too Many Requests",
        vec![
            "Retry-After: 120".into(),
            "Content-Type: application/json".into(),
        ],
        br#"{"errors":["slow down"]}"#.to_vec(),
    ));
    let inv = describe(&client(&server.addr), "k", &[("timeout_seconds", "5")]);
    let err = assert_error(&inv, "THROTTLED", &["Retry-After", "120s", "slow down"]);
    assert!(
        !err.error_message.contains("after the"),
        "{}",
        err.error_message
    );
    assert!(
        inv.elapsed < Duration::from_secs(4),
        "answered at once: {:?}",
        inv.elapsed
    );
}

#[test]
fn a_token_file_that_is_a_fifo_or_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("token.fifo");
    plugin_protocol::client::make_fifo(&fifo);
    let c = PluginClient::new(plugin_binary("hashicorp-vault"))
        .with_env("VAULT_ADDR", format!("http://127.0.0.1:{}", closed_port()))
        .with_env("HOME", "/nonexistent");
    let mut c = c;
    c.timeout = Duration::from_secs(15);
    for (key, path) in [
        ("token_file", fifo.to_str().unwrap()),
        ("token_file", "/dev/zero"),
    ] {
        let inv = describe(&c, "k", &[(key, path)]);
        assert_error(&inv, "VALIDATION_ERROR", &["not a regular file", key]);
    }
    let open = dir.path().join("token");
    std::fs::write(&open, "s.secret-token-value\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let inv = describe(&c, "k", &[("token_file", open.to_str().unwrap())]);
    assert_error(&inv, "VALIDATION_ERROR", &["mode 0644", "chmod 600"]);
    assert!(!inv.stderr_text().contains("secret-token-value"));
}
