//! The fault corpus: one table of malformed requests, built from each command's fields, sent
//! through the real binary of every plugin. Each answer must be exit 1, nothing on stdout, one
//! JSON error with the expected code and a non-empty, bounded message, within a time bound, and
//! no secret of the environment anywhere (stdout, stderr, debug log).
//!
//! No backend is needed: every request is refused before the backend is asked, or reaches a
//! backend address where nothing listens.

use std::time::Duration;

use hsm_tests::fake::closed_port;
use hsm_tests::plugin_binary;
use plugin_protocol::client::PluginClient;
use plugin_protocol::ErrorCode;
use serde_json::{json, Map, Value};

/// Marks every secret the plugins are given; it must appear in no output.
const SECRET: &str = "corpus-secret-4242";

/// One malformed request and the codes it may be answered with.
struct Case {
    name: String,
    command: &'static str,
    body: Vec<u8>,
    codes: &'static [ErrorCode],
}

const VALIDATION: &[ErrorCode] = &[ErrorCode::Validation];
const VERSION: &[ErrorCode] = &[ErrorCode::UnsupportedContractVersion];
/// A well-formed request with a value the backend adapter refuses, or that reaches the
/// (absent) backend.
const BACKEND: &[ErrorCode] = &[
    ErrorCode::Validation,
    ErrorCode::Generic,
    ErrorCode::Timeout,
];

/// The valid request of `command` for `key_id`, as notation sends it.
fn valid(command: &str, key_id: &str) -> Map<String, Value> {
    let v = match command {
        "describe-key" => json!({"contractVersion": "1.0", "keyId": key_id, "pluginConfig": {}}),
        _ => json!({
            "contractVersion": "1.0", "keyId": key_id, "keySpec": "EC-256",
            "hashAlgorithm": "SHA-256", "payload": "aGVsbG8=", "pluginConfig": {}
        }),
    };
    v.as_object().unwrap().clone()
}

fn required(command: &str) -> &'static [&'static str] {
    match command {
        "describe-key" => &["contractVersion", "keyId"],
        _ => &[
            "contractVersion",
            "keyId",
            "keySpec",
            "hashAlgorithm",
            "payload",
        ],
    }
}

/// The corpus for one command: structural garbage, each field missing, each field of each
/// wrong type, odd contract versions, odd values, huge and deeply nested input.
fn corpus(command: &'static str, key_id: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut add = |name: String, body: Vec<u8>, codes: &'static [ErrorCode]| {
        cases.push(Case {
            name,
            command,
            body,
            codes,
        })
    };
    let base = valid(command, key_id);
    let text = serde_json::to_vec(&Value::Object(base.clone())).unwrap();

    for (name, body) in [
        ("empty", b"".to_vec()),
        ("whitespace", b" \n\t ".to_vec()),
        ("null", b"null".to_vec()),
        ("array", b"[]".to_vec()),
        ("number", b"42".to_vec()),
        ("string", b"\"describe\"".to_vec()),
        ("true", b"true".to_vec()),
        ("unclosed brace", b"{".to_vec()),
        ("trailing garbage", [text.clone(), b"x".to_vec()].concat()),
        ("two documents", [text.clone(), text.clone()].concat()),
        ("invalid UTF-8 raw", b"\xff\xfe{}".to_vec()),
        ("NUL bytes", b"\0\0\0".to_vec()),
        ("deeply nested arrays", "[".repeat(200_000).into_bytes()),
        (
            "deeply nested field",
            format!(
                "{{\"contractVersion\":\"1.0\",\"keyId\":{}1{}}}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            )
            .into_bytes(),
        ),
        ("larger than 16 MiB", vec![b' '; 17 << 20]),
    ] {
        add(name.into(), body, VALIDATION);
    }
    // Invalid UTF-8 inside a string value.
    let mut bad_utf8 = text.clone();
    let at = bad_utf8.windows(3).position(|w| w == b"1.0").unwrap();
    bad_utf8[at] = 0xff;
    add(
        "invalid UTF-8 in contractVersion".into(),
        bad_utf8,
        VALIDATION,
    );
    // Truncated at several points.
    for cut in [1, text.len() / 4, text.len() / 2, text.len() - 1] {
        add(
            format!("truncated at byte {cut}"),
            text[..cut].to_vec(),
            VALIDATION,
        );
    }
    // Each required field missing.
    for field in required(command) {
        let mut m = base.clone();
        m.remove(*field);
        add(
            format!("missing {field}"),
            serde_json::to_vec(&m).unwrap(),
            VALIDATION,
        );
    }
    // Each field of each wrong type.
    let fields: Vec<String> = base.keys().cloned().collect();
    for field in &fields {
        for (ty, value) in [
            ("number", json!(7)),
            ("boolean", json!(true)),
            ("null", Value::Null),
            ("array", json!(["x"])),
            ("object", json!({"a": "b"})),
            ("string", json!("x")),
        ] {
            let is_string_field = field != "pluginConfig";
            // A string where a string belongs is not a type error; an object for pluginConfig
            // neither; null for the optional pluginConfig means "absent".
            if (is_string_field && ty == "string")
                || (!is_string_field && (ty == "object" || ty == "null"))
            {
                continue;
            }
            let mut m = base.clone();
            m.insert(field.clone(), value);
            add(
                format!("{field} as a {ty}"),
                serde_json::to_vec(&m).unwrap(),
                VALIDATION,
            );
        }
    }
    // Odd contract versions.
    for v in ["2.0", "0.9", "", "abc", "10.0", "２.0"] {
        let mut m = base.clone();
        m.insert("contractVersion".into(), json!(v));
        add(
            format!("contractVersion {v:?}"),
            serde_json::to_vec(&m).unwrap(),
            VERSION,
        );
    }
    // Odd values.
    let mut odd: Vec<(&str, &str, Value)> = vec![
        ("keyId", "empty", json!("")),
        ("keyId", "blank", json!("   ")),
        (
            "pluginConfig",
            "unknown key",
            json!({"no_such_setting": "x"}),
        ),
        (
            "pluginConfig",
            "non-string value",
            json!({"timeout_seconds": 5}),
        ),
        (
            "pluginConfig",
            "negative timeout",
            json!({"timeout_seconds": "-1"}),
        ),
        (
            "pluginConfig",
            "timeout not a number",
            json!({"timeout_seconds": "soon"}),
        ),
    ];
    if command == "generate-signature" {
        odd.extend([
            ("keySpec", "RSA-1024", json!("RSA-1024")),
            ("keySpec", "lower case", json!("ec-256")),
            ("keySpec", "empty", json!("")),
            ("hashAlgorithm", "SHA-1", json!("SHA-1")),
            ("hashAlgorithm", "lower case", json!("sha-256")),
            (
                "hashAlgorithm",
                "contradicting the keySpec",
                json!("SHA-512"),
            ),
            ("payload", "not base64", json!("*** not base64 ***")),
            ("payload", "base64url alphabet", json!("a-_b")),
            ("payload", "bad padding", json!("aGVsbG8")),
        ]);
    }
    for (field, what, value) in odd {
        let mut m = base.clone();
        m.insert(field.into(), value);
        add(
            format!("{field} {what}"),
            serde_json::to_vec(&m).unwrap(),
            VALIDATION,
        );
    }
    // Huge and strange key ids: well-formed requests the backend adapter must refuse quickly,
    // naming the key by its start only.
    for (what, id) in [
        ("of 1 MiB", "k".repeat(1 << 20)),
        ("with NUL bytes", "key\0id".to_owned()),
        (
            "with control characters",
            "key\u{1b}[31mred\u{7}".to_owned(),
        ),
    ] {
        let mut m = base.clone();
        m.insert("keyId".into(), json!(id));
        add(
            format!("keyId {what}"),
            serde_json::to_vec(&m).unwrap(),
            BACKEND,
        );
    }
    cases
}

/// The plugin with a secret in every variable its backend reads, backends pointed at a port
/// where nothing listens, and a debug log.
fn client(plugin: &str, log: &std::path::Path) -> PluginClient {
    let nothing = format!("http://127.0.0.1:{}", closed_port());
    let upper = plugin.to_ascii_uppercase().replace('-', "_");
    let mut c = PluginClient::new(plugin_binary(plugin))
        .with_env("NOTATION_PLUGIN_LOG", log.display().to_string())
        .with_env(format!("NOTATION_{upper}_TIMEOUT_SECONDS"), "3")
        .with_env("HOME", "/nonexistent")
        .with_env("VAULT_ADDR", &nothing)
        .with_env("VAULT_TOKEN", SECRET)
        .with_env("AWS_ACCESS_KEY_ID", "AKIACORPUS")
        .with_env("AWS_SECRET_ACCESS_KEY", SECRET)
        .with_env("AWS_REGION", "us-east-1")
        .with_env("AWS_ENDPOINT_URL", &nothing)
        .with_env("AWS_EC2_METADATA_DISABLED", "true")
        .with_env("AWS_CONFIG_FILE", "/nonexistent")
        .with_env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .with_env("AZURE_TENANT_ID", "72f988bf-0000-4000-8000-00000000abcd")
        .with_env("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001")
        .with_env("AZURE_CLIENT_SECRET", SECRET)
        .with_env("AZURE_AUTHORITY_HOST", &nothing)
        .with_env("NOTATION_GCP_KMS_ENDPOINT", &nothing)
        .with_env("GCE_METADATA_HOST", nothing.trim_start_matches("http://"))
        .with_env("GOOGLE_APPLICATION_CREDENTIALS", "")
        .with_env("NOTATION_PKCS11_PIN", SECRET)
        .with_env("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf");
    c.timeout = Duration::from_secs(20);
    c
}

/// Runs the whole corpus against `plugin`; returns the number of cases.
fn run_corpus(plugin: &str, key_id: &str) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("plugin.log");
    let client = client(plugin, &log);
    let cases: Vec<Case> = ["describe-key", "generate-signature"]
        .into_iter()
        .flat_map(|c| corpus(c, key_id))
        .collect();
    for command in ["describe-key", "generate-signature"] {
        let n = cases.iter().filter(|c| c.command == command).count();
        assert!(n >= 40, "{command}: only {n} cases");
    }
    // Two requests at a time: the machines running the tests have two cores.
    let chunks: Vec<&[Case]> = cases.chunks(cases.len().div_ceil(2)).collect();
    let problems: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                let client = client.clone();
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|c| check(&client, c))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !logged.contains(SECRET),
        "{plugin}: the secret reached the debug log"
    );
    assert!(
        problems.is_empty(),
        "{plugin}: {} of {} cases misbehaved:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
    println!(
        "{plugin}: {} malformed requests ({} describe-key, {} generate-signature)",
        cases.len(),
        cases.iter().filter(|c| c.command == "describe-key").count(),
        cases
            .iter()
            .filter(|c| c.command == "generate-signature")
            .count()
    );
    cases.len()
}

/// What is wrong with the answer to `case`, if anything.
fn check(client: &PluginClient, case: &Case) -> Option<String> {
    let what = format!("{} / {}", case.command, case.name);
    let inv = match client.invoke_raw(case.command, &case.body) {
        Ok(inv) => inv,
        Err(e) => return Some(format!("{what}: {e}")),
    };
    let stderr = inv.stderr_text();
    let mut wrong = Vec::new();
    if inv.exit_code != Some(1) {
        wrong.push(format!("exit code {:?}", inv.exit_code));
    }
    if !inv.stdout.is_empty() {
        wrong.push(format!("stdout {:?}", String::from_utf8_lossy(&inv.stdout)));
    }
    match inv.error() {
        None => wrong.push(format!("stderr is not one JSON error: {stderr:.300}")),
        Some(err) => {
            if !case.codes.contains(&err.error_code) {
                wrong.push(format!(
                    "code {} ({:.300})",
                    err.error_code, err.error_message
                ));
            }
            if err.error_message.trim().is_empty() {
                wrong.push("empty errorMessage".into());
            }
            if err.error_message.len() > 4096 {
                wrong.push(format!("a {}-byte errorMessage", err.error_message.len()));
            }
        }
    }
    if inv.elapsed > Duration::from_secs(1) {
        eprintln!("slow: {what}: {:?}", inv.elapsed);
    }
    if inv.elapsed > Duration::from_secs(10) {
        wrong.push(format!("took {:?}", inv.elapsed));
    }
    if stderr.contains(SECRET) || String::from_utf8_lossy(&inv.stdout).contains(SECRET) {
        wrong.push("the secret leaked".into());
    }
    (!wrong.is_empty()).then(|| format!("{what}: {}", wrong.join("; ")))
}

#[test]
fn pkcs11_answers_every_malformed_request() {
    run_corpus(
        "pkcs11",
        "pkcs11:token=corpus;object=k?module-path=/usr/lib/softhsm/libsofthsm2.so",
    );
}

#[test]
fn aws_kms_answers_every_malformed_request() {
    run_corpus("aws-kms", "alias/corpus-key");
}

#[test]
fn hashicorp_vault_answers_every_malformed_request() {
    run_corpus("hashicorp-vault", "corpus-key");
}

#[test]
fn azure_keyvault_answers_every_malformed_request() {
    run_corpus(
        "azure-keyvault",
        "https://corpus.vault.azure.net/keys/corpus-key",
    );
}

#[test]
fn yubikey_answers_every_malformed_request() {
    run_corpus("yubikey", "yubikey:serial=18000001;slot=9c");
}

#[test]
fn gcp_kms_answers_every_malformed_request() {
    run_corpus(
        "gcp-kms",
        "projects/corpus/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
    );
}
