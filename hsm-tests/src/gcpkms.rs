//! The local Cloud KMS emulator (hsm-tests/gcpkms-emulator/emulator.py, started by
//! `scripts/gcpkms-emulator.sh start` if needed; idempotent) on http://127.0.0.1:8490, and a tiny
//! client of its REST API with a token from its test helper, shared by the Cloud KMS tests and
//! the contract suite.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use plugin_protocol::{KeySpec, PublicKey};
use serde_json::{json, Value};

use crate::unique;

/// The Cloud KMS algorithm of each key spec the emulator (and these tests) cover.
pub const SPECS: [(KeySpec, &str); 4] = [
    (KeySpec::Ec256, "EC_SIGN_P256_SHA256"),
    (KeySpec::Ec384, "EC_SIGN_P384_SHA384"),
    (KeySpec::Rsa2048, "RSA_SIGN_PSS_2048_SHA256"),
    (KeySpec::Rsa4096, "RSA_SIGN_PSS_4096_SHA512"),
];

pub fn state() -> &'static BTreeMap<String, String> {
    static STATE: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    STATE.get_or_init(|| crate::backend_state("gcpkms-emulator"))
}

pub fn st(key: &str) -> String {
    state()
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from state.env"))
        .clone()
}

pub fn url() -> String {
    st("GCPKMS_EMULATOR_URL")
}

pub fn host() -> String {
    url().trim_start_matches("http://").to_owned()
}

pub fn request(method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
    let host = host();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\n{auth}"
    );
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, text) = crate::http(&host, &head, &body);
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn token() -> String {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN
        .get_or_init(|| {
            let (status, v) = request("GET", "/_admin/token", None, None);
            assert_eq!(status, 200, "{v}");
            v["access_token"].as_str().unwrap().to_owned()
        })
        .clone()
}

/// One authenticated API call that must succeed.
#[track_caller]
pub fn api(method: &str, path: &str, body: Value) -> Value {
    let (status, v) = request(method, path, Some(body), Some(&token()));
    assert!(
        (200..300).contains(&status),
        "{method} {path} answered {status}: {v}"
    );
    v
}

#[track_caller]
pub fn admin(path: &str, body: Value) {
    let (status, v) = request("POST", path, Some(body), None);
    assert_eq!(status, 200, "{path}: {v}");
}

/// A fresh key ring: `projects/<p>/locations/<l>/keyRings/<r>`.
pub fn key_ring() -> String {
    let parent = format!(
        "projects/{}/locations/europe-west1",
        st("GCPKMS_EMULATOR_PROJECT")
    );
    let id = unique("ring");
    api(
        "POST",
        &format!("/v1/{parent}/keyRings?keyRingId={id}"),
        json!({}),
    );
    format!("{parent}/keyRings/{id}")
}

/// A new key of `algorithm` (purpose from the algorithm): its name.
pub fn create_key(algorithm: &str) -> String {
    let purpose = match algorithm {
        "GOOGLE_SYMMETRIC_ENCRYPTION" => "ENCRYPT_DECRYPT",
        a if a.starts_with("HMAC") => "MAC",
        _ => "ASYMMETRIC_SIGN",
    };
    let ring = key_ring();
    let id = unique("key");
    let v = api(
        "POST",
        &format!("/v1/{ring}/cryptoKeys?cryptoKeyId={id}"),
        json!({"purpose": purpose, "versionTemplate": {"algorithm": algorithm}}),
    );
    v["name"].as_str().unwrap().to_owned()
}

pub fn add_version(key: &str) -> String {
    let v = api("POST", &format!("/v1/{key}/cryptoKeyVersions"), json!({}));
    v["name"].as_str().unwrap().to_owned()
}

pub fn public_key(version: &str) -> PublicKey {
    let (status, v) = request(
        "GET",
        &format!("/v1/{version}/publicKey"),
        None,
        Some(&token()),
    );
    assert_eq!(status, 200, "{v}");
    PublicKey::from_spki_pem(v["pem"].as_str().unwrap()).unwrap()
}

pub fn set_state(version: &str, state: &str) {
    admin("/_admin/state", json!({"name": version, "state": state}));
}

pub fn fault(body: Value) {
    admin("/_admin/fault", body);
}

/// A secret holding `data` with one version: the version's name.
pub fn create_secret(data: &str) -> String {
    let parent = format!("projects/{}", st("GCPKMS_EMULATOR_PROJECT"));
    let id = unique("chain");
    api(
        "POST",
        &format!("/v1/{parent}/secrets?secretId={id}"),
        json!({"replication": {"automatic": {}}}),
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let v = api(
        "POST",
        &format!("/v1/{parent}/secrets/{id}:addVersion"),
        json!({"payload": {"data": b64.encode(data)}}),
    );
    v["name"].as_str().unwrap().to_owned()
}

/// The emulator's service-account key as Application Default Credentials and the emulator as
/// both endpoints; every other Google variable explicitly blank, and HOME empty (no gcloud
/// files), so the tests do not depend on the caller's shell.
pub fn base_env() -> Vec<(String, String)> {
    let home = std::env::temp_dir().join("gcp-kms-tests-empty-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut env: Vec<(String, String)> = vec![
        (
            "GOOGLE_APPLICATION_CREDENTIALS".into(),
            st("GCPKMS_EMULATOR_SERVICE_ACCOUNT"),
        ),
        ("NOTATION_GCP_KMS_ENDPOINT".into(), url()),
        ("NOTATION_GCP_KMS_SECRET_MANAGER_ENDPOINT".into(), url()),
        ("HOME".into(), home.display().to_string()),
    ];
    for k in [
        "CLOUDSDK_CONFIG",
        "GCE_METADATA_HOST",
        "GOOGLE_CLOUD_QUOTA_PROJECT",
        "NOTATION_GCP_KMS_CERTIFICATE_CHAIN",
        "NOTATION_GCP_KMS_CA_CERTS",
        "NOTATION_GCP_KMS_CREDENTIALS_FILE",
        "NOTATION_GCP_KMS_CERTIFICATE_CHAIN_SECRET",
        "NOTATION_GCP_KMS_TIMEOUT_SECONDS",
    ] {
        env.push((k.to_owned(), String::new()));
    }
    env
}

pub fn env_with(changes: &[(&str, &str)]) -> Vec<(String, String)> {
    crate::env_with(base_env(), changes)
}

/// The environment of a gcloud user: the emulator's authorized-user file as gcloud's
/// application-default credentials in `dir/gcloud` (a refresh-token grant at the token endpoint
/// the file names), no service account.
pub fn gcloud_user_env(dir: &std::path::Path) -> Vec<(String, String)> {
    let gcloud = dir.join("gcloud");
    std::fs::create_dir_all(&gcloud).unwrap();
    std::fs::copy(
        st("GCPKMS_EMULATOR_AUTHORIZED_USER"),
        gcloud.join("application_default_credentials.json"),
    )
    .unwrap();
    env_with(&[
        ("GOOGLE_APPLICATION_CREDENTIALS", ""),
        ("CLOUDSDK_CONFIG", gcloud.to_str().unwrap()),
    ])
}
