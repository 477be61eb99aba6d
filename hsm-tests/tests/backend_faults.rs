//! The backend faults of the contract suite, one table applied to every plugin whose backend
//! speaks plain HTTP to a test endpoint (hashicorp-vault, aws-kms): down, hung, slow, 401, 403,
//! 429 then (still) 429, 5xx, garbage, truncated, wrong-shape JSON, huge body (refused at the
//! 4 MiB bound, not read whole). Each answer:
//! exit 1, empty stdout, one JSON error with the expected code and a message, by the deadline,
//! and no secret anywhere. (pkcs11's faults are in pkcs11_faults.rs, through a fault-injecting
//! module; Key Vault is reached over https only and has its faults in azure_keyvault.rs.) The
//! faults that need a real backend's answer (429 then OK, slow, a bad signature, the wrong ECDSA
//! encoding) are `hsm_tests::tamper`'s table, run by vault.rs, aws_kms.rs and azure_keyvault.rs.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hsm_tests::fake::{self, Answer};
use hsm_tests::{config, plugin_binary};
use plugin_protocol::client::PluginClient;
use plugin_protocol::ErrorCode;

const SECRET: &str = "fault-secret-7373";

struct Fault {
    name: &'static str,
    answer: Option<Answer>,
    /// Expected code for (hashicorp-vault, aws-kms).
    codes: (ErrorCode, ErrorCode),
    /// Words the message must hold (for every plugin).
    says: &'static [&'static str],
}

fn faults() -> Vec<Fault> {
    use ErrorCode::*;
    let json = |status: &'static str, body: &str| Some(fake::json(status, body));
    vec![
        Fault {
            name: "down",
            answer: None,
            codes: (Generic, Generic),
            says: &[],
        },
        Fault {
            name: "hung",
            answer: Some(Answer::Hang),
            codes: (Timeout, Timeout),
            says: &[],
        },
        Fault {
            name: "401",
            answer: json(
                "401 Unauthorized",
                r#"{"errors":["unauthorized"],"__type":"UnrecognizedClientException","message":"bad"}"#,
            ),
            codes: (AccessDenied, AccessDenied),
            says: &[],
        },
        Fault {
            name: "403",
            answer: json(
                "403 Forbidden",
                r#"{"errors":["permission denied"],"__type":"AccessDeniedException","message":"denied"}"#,
            ),
            codes: (AccessDenied, AccessDenied),
            says: &[],
        },
        Fault {
            name: "429 forever",
            answer: json(
                "429 Too Many Requests",
                r#"{"errors":["slow down"],"__type":"ThrottlingException","message":"slow down"}"#,
            ),
            codes: (Throttled, Throttled),
            says: &[],
        },
        Fault {
            name: "500",
            answer: json(
                "500 Internal Server Error",
                r#"{"errors":["boom"],"__type":"KMSInternalException","message":"boom"}"#,
            ),
            codes: (Generic, Generic),
            says: &[],
        },
        Fault {
            name: "garbage",
            answer: Some(Answer::Garbage),
            codes: (Generic, Generic),
            says: &[],
        },
        Fault {
            name: "truncated",
            answer: Some(Answer::Truncated),
            codes: (Generic, Generic),
            says: &[],
        },
        Fault {
            name: "wrong-shape JSON",
            answer: json("200 OK", r#"{"data":{"foo":1},"KeyMetadata":7}"#),
            codes: (Generic, Generic),
            says: &[],
        },
        Fault {
            name: "not JSON",
            answer: Some(Answer::Http(
                "200 OK",
                vec!["Content-Type: application/json".into()],
                b"<html>proxy login</html>".to_vec(),
            )),
            codes: (Generic, Generic),
            says: &[],
        },
        Fault {
            name: "huge body",
            answer: Some(Answer::Huge(100 << 20)),
            codes: (Generic, Generic),
            says: &["larger than 4 MiB"],
        },
    ]
}

fn client(plugin: &str, addr: &str) -> PluginClient {
    let mut c = PluginClient::new(plugin_binary(plugin))
        .with_env("HOME", "/nonexistent")
        .with_env("VAULT_ADDR", addr)
        .with_env("VAULT_TOKEN", SECRET)
        .with_env("AWS_ACCESS_KEY_ID", "AKIAFAULTS")
        .with_env("AWS_SECRET_ACCESS_KEY", SECRET)
        .with_env("AWS_REGION", "us-east-1")
        .with_env("AWS_ENDPOINT_URL", addr)
        .with_env("AWS_EC2_METADATA_DISABLED", "true")
        .with_env("AWS_CONFIG_FILE", "/nonexistent")
        .with_env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    c.timeout = Duration::from_secs(20);
    c
}

fn run(plugin: &str, key_id: &str, pick: fn(&Fault) -> ErrorCode) {
    let wrong = hsm_tests::check_all(faults(), |fault| check(plugin, key_id, pick, fault));
    assert!(wrong.is_empty(), "{plugin}:\n{}", wrong.join("\n"));
}

fn check(
    plugin: &str,
    key_id: &str,
    pick: fn(&Fault) -> ErrorCode,
    fault: Fault,
) -> Option<String> {
    {
        let fake = fault.answer.clone().map(fake::serve);
        let addr = match &fake {
            Some(f) => f.addr.clone(),
            None => format!(
                "http://127.0.0.1:{}",
                std::net::TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port()
            ),
        };
        let inv = client(plugin, &addr)
            .describe_key(key_id, config(&[("timeout_seconds", "2")]))
            .unwrap();
        let text = inv.stderr_text();
        let mut bad = Vec::new();
        if inv.exit_code != Some(1) || !inv.stdout.is_empty() {
            bad.push(format!(
                "exit {:?}, stdout {:?}",
                inv.exit_code,
                String::from_utf8_lossy(&inv.stdout)
            ));
        }
        match inv.error() {
            None => bad.push(format!("not one JSON error: {text:.200}")),
            Some(e) if e.error_code != pick(&fault) => bad.push(format!(
                "{} ({:.300}), expected {}",
                e.error_code,
                e.error_message,
                pick(&fault)
            )),
            Some(e) if e.error_message.trim().is_empty() => bad.push("empty message".into()),
            Some(e) => {
                for w in fault.says.iter().filter(|w| !e.error_message.contains(**w)) {
                    bad.push(format!("no '{w}' in: {:.300}", e.error_message));
                }
            }
        }
        // A huge body is refused at the bound, not read whole (a few MiB may sit in socket
        // buffers on the way).
        let sent = fake.map_or(0, |f| f.body_bytes_sent.load(Ordering::SeqCst));
        if sent > 32 << 20 {
            bad.push(format!("{} MiB of the body were read", sent >> 20));
        }
        if inv.elapsed > Duration::from_secs(8) {
            bad.push(format!("took {:?} with a 2 s deadline", inv.elapsed));
        }
        if text.contains(SECRET) {
            bad.push("the secret leaked".into());
        }
        (!bad.is_empty()).then(|| format!("{}: {}", fault.name, bad.join("; ")))
    }
}

#[test]
fn hashicorp_vault_reports_every_backend_fault() {
    run("hashicorp-vault", "fault-key", |f| f.codes.0);
}

#[test]
fn aws_kms_reports_every_backend_fault() {
    run("aws-kms", "alias/fault-key", |f| f.codes.1);
}
