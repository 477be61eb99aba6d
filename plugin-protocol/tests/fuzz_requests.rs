//! Property-based fuzzing of request parsing and the runner boundary, on stable Rust.
//!
//! In process: `pipeline::handle` gets arbitrary bytes and structured mutations of valid
//! requests; it must never panic and every error must be a contract error with a message. At the
//! process boundary: the softkey plugin binary gets the same kinds of input; it must end within
//! a time bound with exit 0 and one JSON document on stdout, or exit 1, empty stdout and one
//! JSON error on stderr.
//!
//! CI runs a bounded number of cases (the defaults below). For a long run:
//! `scripts/fuzz.sh [CASES]` (sets `FUZZ_CASES`, and `FUZZ_PROCESS_CASES` to a tenth of it).

mod common;

use std::time::Duration;

use common::*;
use plugin_protocol::contract::Command;
use plugin_protocol::pipeline::handle;
use plugin_protocol::softkey::{SoftKeyBackend, INFO};
use plugin_protocol::KeySpec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("1.0"),
            Just("2.0"),
            Just("EC-256"),
            Just("RSA-2048"),
            Just("SHA-256"),
            Just("SHA-512"),
            Just("aGVsbG8="),
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid request of `command` with fields removed, replaced by any value, or added.
fn mutated_request(key_id: String) -> impl Strategy<Value = (Command, Vec<u8>)> {
    let commands = prop_oneof![
        Just(Command::GetPluginMetadata),
        Just(Command::DescribeKey),
        Just(Command::GenerateSignature),
        Just(Command::GenerateEnvelope),
        Just(Command::VerifySignature),
    ];
    let fields = prop::sample::select(vec![
        "contractVersion",
        "keyId",
        "keySpec",
        "hashAlgorithm",
        "payload",
        "pluginConfig",
        "unknownField",
    ]);
    let edit = (fields, prop::option::of(any_json()));
    (commands, prop::collection::vec(edit, 0..4), any::<u8>()).prop_map(
        move |(command, edits, cut)| {
            let mut req = json!({
                "contractVersion": "1.0", "keyId": key_id, "keySpec": KeySpec::Ec256.as_str(),
                "hashAlgorithm": "SHA-256", "payload": "aGVsbG8=", "pluginConfig": {}
            });
            for (field, value) in edits {
                match value {
                    Some(v) => req[field] = v,
                    None => {
                        req.as_object_mut().unwrap().remove(field);
                    }
                }
            }
            let mut bytes = serde_json::to_vec(&req).unwrap();
            // One request in eight is cut short.
            if cut % 8 == 0 && !bytes.is_empty() {
                let at = usize::from(cut) % bytes.len();
                bytes.truncate(at);
            }
            (command, bytes)
        },
    )
}

/// Raw bytes: anything, or JSON-looking noise.
fn raw_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        "[\\[\\]{}\":,0-9a-zA-Z .\\\\-]{0,256}".prop_map(String::into_bytes),
    ]
}

fn assert_contract_error(e: &plugin_protocol::PluginError) -> Result<(), TestCaseError> {
    prop_assert!(!e.message.trim().is_empty(), "empty message");
    let back: plugin_protocol::error::ErrorResponse =
        serde_json::from_str(&e.to_json()).map_err(|x| TestCaseError::fail(x.to_string()))?;
    prop_assert_eq!(back.error_code, e.code);
    Ok(())
}

#[test]
fn request_parsing_never_panics_and_errors_are_contract_shaped() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let n = cases("FUZZ_CASES", 10_000);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = prop_oneof![
        mutated_request(key.key_id()),
        (Just(Command::DescribeKey), raw_input()),
        (Just(Command::GenerateSignature), raw_input()),
    ];
    runner
        .run(&strategy, |(command, bytes)| {
            let outcome =
                std::panic::catch_unwind(|| handle::<SoftKeyBackend>(&INFO, command, &bytes));
            match outcome {
                Err(_) => prop_assert!(false, "panicked on {:?}", String::from_utf8_lossy(&bytes)),
                Ok(Ok(json)) => {
                    prop_assert!(
                        serde_json::from_str::<Value>(&json).is_ok(),
                        "not JSON: {json}"
                    );
                }
                Ok(Err(e)) => assert_contract_error(&e)?,
            }
            Ok(())
        })
        .unwrap();
    println!("fuzz: {n} in-process cases");
}

#[test]
fn the_runner_boundary_always_answers_by_the_contract() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let n = cases("FUZZ_PROCESS_CASES", 200);
    let mut plugin = softkey_plugin();
    plugin.timeout = Duration::from_secs(15);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = prop_oneof![
        mutated_request(key.key_id()),
        (Just(Command::DescribeKey), raw_input()),
    ];
    runner
        .run(&strategy, |(command, bytes)| {
            let inv = plugin
                .invoke_raw(command.as_str(), &bytes)
                .map_err(|e| TestCaseError::fail(format!("no answer (hang?): {e}")))?;
            prop_assert!(
                inv.elapsed < Duration::from_secs(10),
                "took {:?}",
                inv.elapsed
            );
            match inv.exit_code {
                Some(0) => {
                    prop_assert!(serde_json::from_slice::<Value>(&inv.stdout).is_ok());
                }
                Some(1) => {
                    prop_assert!(inv.stdout.is_empty(), "stdout on failure");
                    let err = inv.error();
                    prop_assert!(
                        err.is_some(),
                        "stderr is not one JSON error: {}",
                        inv.stderr_text()
                    );
                    prop_assert!(!err.unwrap().error_message.trim().is_empty());
                }
                other => prop_assert!(false, "exit code {other:?}: {}", inv.stderr_text()),
            }
            Ok(())
        })
        .unwrap();
    println!("fuzz: {n} process cases");
}
