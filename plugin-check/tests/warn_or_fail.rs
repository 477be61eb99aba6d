//! A FAIL means the real notation breaks (or a MUST of the specification is violated); a
//! request notation never sends, answered differently than the contract suggests, is a WARN
//! with the reason. Warnings never fail the run; the summary counts passed, warned and failed.

mod common;

use common::*;
use plugin_protocol::KeySpec;

fn check_mode(mode: &str, key: &KeyOnDisk) -> Run {
    let out = key.dir.path().join(format!("out-{mode}"));
    check(
        broken(),
        key,
        &out,
        &["--json"],
        &[("NOTATION_BROKEN_MODE", mode)],
    )
}

fn checks_with(json: &serde_json::Value, status: &str) -> Vec<(String, String)> {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| {
            (
                c["name"].as_str().unwrap_or("").to_owned(),
                c["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn probes_notation_never_sends_are_warnings_with_a_reason() {
    // The Notary Project's Go Vault plugin's answers to those probes (its version aside): RSA
    // keys, as that plugin signs with.
    let key = KeyOnDisk::new(KeySpec::Rsa2048);
    let run = check_mode("lax-probes", &key);
    run.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let warned = checks_with(&json, "warn");
    for (probe, reason) in [
        ("{} for describe-key", "errorCode is ERROR"),
        ("unknown command", "errorCode is ERROR"),
        ("unknown keyId", "errorCode is ERROR"),
        (
            "contractVersion 2.0",
            "notation sends contractVersion 1.0 only",
        ),
        (
            "hashAlgorithm that contradicts the keySpec",
            "derives hashAlgorithm from the keySpec",
        ),
    ] {
        assert!(
            warned
                .iter()
                .any(|(name, detail)| name.contains(probe) && detail.contains(reason)),
            "no WARN for {probe:?} saying {reason:?}; warnings: {warned:#?}"
        );
    }
    assert_eq!(json["summary"]["failed"], 0, "{}", run.stdout);
    assert_eq!(json["summary"]["warned"], warned.len());
    assert!(warned.len() >= 5);
    for (_, detail) in &warned {
        assert!(
            detail.contains("breaks nothing"),
            "a warning says why: {detail}"
        );
    }
}

#[test]
fn the_text_summary_counts_passed_failed_and_warned() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let out = key.dir.path().join("out-text");
    let run = check(
        broken(),
        &key,
        &out,
        &[],
        &[("NOTATION_BROKEN_MODE", "lax-probes")],
    );
    run.assert_code(0);
    assert!(run.stdout.contains("  WARN  "), "{}", run.stdout);
    let last = run.stdout.lines().rev().find(|l| !l.is_empty()).unwrap();
    assert!(
        last.starts_with("PASSED: ") && last.contains(" passed, 0 failed, 5 warned, 0 skipped"),
        "{last}"
    );
}

#[test]
fn unsupported_contract_version_for_a_request_without_one_is_a_warning() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let run = check_mode("missing-version-unsupported", &key);
    run.assert_code(0);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let warned = checks_with(&json, "warn");
    assert!(
        warned.iter().any(|(n, d)| n.contains("{} for describe-key")
            && d.contains("UNSUPPORTED_CONTRACT_VERSION")
            && d.contains("VALIDATION_ERROR")),
        "{warned:#?}"
    );
}

#[test]
fn the_go_vault_plugins_one_real_finding_stays_a_fail_and_says_why() {
    let key = KeyOnDisk::new(KeySpec::Rsa2048);
    let run = check_mode("go-vault", &key);
    run.assert_failed_with(&[
        "v0.1.0+unreleased",
        "not strict SemVer",
        "refuses every reinstall or upgrade",
        "failed to compare plugin versions",
    ]);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        json["summary"]["failed"], 1,
        "only the version fails: {}",
        run.stdout
    );
    assert_eq!(
        json["summary"]["warned"],
        5,
        "{:#?}",
        checks_with(&json, "warn")
    );
}

#[test]
fn breaking_answers_to_probes_stay_failures() {
    // Plain-text stderr breaks notation on every error: still a FAIL, on the probes too.
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let run = check_mode("plain-stderr", &key);
    run.assert_failed_with(&["plain-text stderr"]);
    // Stray stdout breaks the response notation parses: still a FAIL.
    let run = check_mode("stray-stdout", &key);
    run.assert_code(1);
}
