//! Negative probes: requests notation (or a broken caller) can send, each of which must end with
//! exit code 1, nothing on stdout, and a JSON error on stderr with the right code.

use plugin_protocol::client::PluginClient;
use plugin_protocol::contract::{PluginConfig, CONTRACT_VERSION};
use plugin_protocol::{ErrorCode, HashAlgorithm, KeySpec};
use serde_json::json;

use crate::report::Report;
use crate::response::truncate;

const GROUP: &str = "negative probes";

struct Probe {
    name: &'static str,
    command: &'static str,
    body: Vec<u8>,
    /// The accepted codes, the first being what notation's contract calls for.
    expect: &'static [ErrorCode],
    /// `Some(why)` for a request the real notation never sends: accepting it is a WARN with
    /// this reason, not a FAIL. `None`: notation (or a user's typo through it) does send it, and
    /// accepting it would sign or answer something wrong.
    never_sent: Option<&'static str>,
}

/// Why a wrong error code is only a WARN: notation does not branch on it.
const CODE_ONLY_SHOWN: &str = "notation shows the user only errorMessage and does not act on \
    errorCode, so another code breaks nothing";

fn probes(key_id: &str, config: &PluginConfig, spec: Option<KeySpec>) -> Vec<Probe> {
    let spec = spec.unwrap_or(KeySpec::Ec256);
    let wrong_hash = match spec.hash_algorithm() {
        HashAlgorithm::Sha256 => HashAlgorithm::Sha512,
        _ => HashAlgorithm::Sha256,
    };
    let unknown_key = format!("notation-plugin-check-no-such-key-{}", std::process::id());
    let body = |v: serde_json::Value| v.to_string().into_bytes();
    let sign = |hash: HashAlgorithm, payload: &str| {
        body(json!({
            "contractVersion": CONTRACT_VERSION, "keyId": key_id, "keySpec": spec.as_str(),
            "hashAlgorithm": hash.as_str(), "payload": payload, "pluginConfig": config,
        }))
    };
    vec![
        Probe {
            name: "empty stdin",
            command: "describe-key",
            body: Vec::new(),
            expect: &[ErrorCode::Validation],
            never_sent: None,
        },
        Probe {
            name: "invalid JSON",
            command: "describe-key",
            body: b"{\"contractVersion\": \"1.0\", ".to_vec(),
            expect: &[ErrorCode::Validation],
            never_sent: None,
        },
        Probe {
            name: "{} for describe-key",
            command: "describe-key",
            body: b"{}".to_vec(),
            expect: &[ErrorCode::Validation],
            never_sent: Some("notation always sends contractVersion and keyId"),
        },
        Probe {
            name: "contractVersion 2.0",
            command: "describe-key",
            body: body(json!({"contractVersion": "2.0", "keyId": key_id, "pluginConfig": config})),
            expect: &[ErrorCode::UnsupportedContractVersion],
            never_sent: Some("notation sends contractVersion 1.0 only"),
        },
        Probe {
            name: "unknown command",
            command: "sign-everything",
            body: body(json!({"contractVersion": CONTRACT_VERSION, "keyId": key_id})),
            expect: &[ErrorCode::Validation],
            never_sent: Some("notation runs only the commands the plugin's capabilities name"),
        },
        Probe {
            name: "payload that is not base64",
            command: "generate-signature",
            body: sign(spec.hash_algorithm(), "*** not base64 ***"),
            expect: &[ErrorCode::Validation],
            never_sent: None,
        },
        Probe {
            name: "hashAlgorithm that contradicts the keySpec",
            command: "generate-signature",
            body: sign(wrong_hash, "aGVsbG8="),
            expect: &[ErrorCode::Validation],
            never_sent: Some("notation derives hashAlgorithm from the keySpec describe-key returned, so the two always agree"),
        },
        Probe {
            name: "unknown keyId",
            command: "describe-key",
            body: body(
                json!({"contractVersion": CONTRACT_VERSION, "keyId": unknown_key, "pluginConfig": config}),
            ),
            // A backend that does not reveal which keys exist to a least-privilege credential
            // (Vault answers 403 for keys outside the token's policy) rightly says ACCESS_DENIED.
            expect: &[ErrorCode::Validation, ErrorCode::AccessDenied],
            never_sent: None,
        },
    ]
}

pub fn run(
    report: &mut Report,
    client: &PluginClient,
    key_id: &str,
    config: &PluginConfig,
    spec: Option<KeySpec>,
) {
    for probe in probes(key_id, config, spec) {
        let name = format!("{} ({})", probe.name, probe.command);
        let inv = match client.invoke_raw(probe.command, &probe.body) {
            Ok(inv) => inv,
            Err(e) => {
                report.fail(GROUP, &name, format!("cannot run the plugin: {e}"));
                continue;
            }
        };
        report.timing(
            format!("probe: {}", probe.name),
            &inv.command,
            inv.exit_code,
            inv.elapsed,
        );
        // FAILs break notation (or answer a request notation sends wrongly); warnings are
        // deviations from the contract that notation never meets.
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        match inv.exit_code {
            Some(1) => {}
            Some(0) => match probe.never_sent {
                Some(why) => warnings.push(format!(
                    "exited 0: the plugin accepted a request the contract says to refuse; {why}, \
                     so this breaks nothing"
                )),
                None => problems.push(
                    "exited 0: the plugin accepted a request it must refuse".to_owned(),
                ),
            },
            Some(c) => problems.push(format!(
                "exit code {c}; notation expects 1 with a JSON error (any other code is an opaque failure)"
            )),
            None => problems.push("killed by a signal (crashed?)".to_owned()),
        }
        if inv.exit_code != Some(0) && !inv.stdout.is_empty() {
            problems.push(format!(
                "stdout must be empty on failure, holds {:?}",
                truncate(&String::from_utf8_lossy(&inv.stdout))
            ));
        }
        match inv.error() {
            _ if inv.exit_code == Some(0) => {}
            Some(err) => {
                if !probe.expect.contains(&err.error_code) {
                    warnings.push(format!(
                        "errorCode is {} ({}), the contract calls for {}; {CODE_ONLY_SHOWN}",
                        err.error_code,
                        truncate(&err.error_message),
                        expected(probe.expect)
                    ));
                }
                if err.error_message.trim().is_empty() {
                    problems.push("errorMessage is empty; notation shows the user only errorMessage".into());
                }
            }
            None if inv.stderr.is_empty() => problems.push(
                "stderr is empty; notation expects a JSON error {\"errorCode\": ..., \"errorMessage\": ...}".into(),
            ),
            None => problems.push(format!(
                "plain-text stderr: stderr is not a JSON error, so notation shows the user a JSON parse error instead of the message: {:?}",
                truncate(&inv.stderr_text())
            )),
        }
        let check = if !problems.is_empty() {
            report.fail(GROUP, &name, problems.join("\n"))
        } else if !warnings.is_empty() {
            report.warn(GROUP, &name, warnings.join("\n"))
        } else {
            let msg = inv.error().map(|e| e.error_message).unwrap_or_default();
            let code = inv
                .error()
                .map(|e| e.error_code.to_string())
                .unwrap_or_default();
            report.pass(GROUP, &name, format!("{code}: {}", truncate(&msg)))
        };
        check.timed(inv.elapsed);
    }
}

fn expected(codes: &[ErrorCode]) -> String {
    codes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}
