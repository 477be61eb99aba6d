//! LocalStack (AWS KMS and Secrets Manager) on 127.0.0.1:4566, from `scripts/localstack.sh`.

use std::sync::OnceLock;

use base64::Engine as _;
use plugin_protocol::PublicKey;
use serde_json::{json, Value};

use crate::unique;

pub const ENDPOINT: &str = "http://127.0.0.1:4566";
pub const REGION: &str = "us-east-1";

/// Starts LocalStack if it is not running (once per test process).
pub fn start() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| crate::start_backend("localstack.sh"));
}

/// The environment of a user with `AWS_*` variables for LocalStack; every other AWS variable
/// is explicitly blank and the shared files absent, so the tests do not depend on the caller's
/// shell or ~/.aws, and instance metadata is never probed.
pub fn env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", REGION),
        ("AWS_ENDPOINT_URL", ENDPOINT),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (config, credentials) = empty_aws_files();
    env.push(("AWS_CONFIG_FILE".into(), config));
    env.push(("AWS_SHARED_CREDENTIALS_FILE".into(), credentials));
    for k in [
        "AWS_SESSION_TOKEN",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL_KMS",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "NOTATION_AWS_KMS_CERTIFICATE_CHAIN",
        "NOTATION_AWS_KMS_REGION",
        "NOTATION_AWS_KMS_ENDPOINT_URL",
        "NOTATION_AWS_KMS_CERTIFICATE_CHAIN_SECRET",
    ] {
        env.push((k.to_owned(), String::new()));
    }
    env
}

/// Empty shared config and credentials files (a machine without `aws configure`).
fn empty_aws_files() -> (String, String) {
    static FILES: OnceLock<(String, String)> = OnceLock::new();
    FILES
        .get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("notation-aws-kms-tests-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let config = dir.join("config");
            let credentials = dir.join("credentials");
            std::fs::write(&config, "").unwrap();
            std::fs::write(&credentials, "").unwrap();
            (
                config.to_str().unwrap().to_owned(),
                credentials.to_str().unwrap().to_owned(),
            )
        })
        .clone()
}

// ---------------------------------------------------------------------------------------------
// LocalStack and a tiny client of the AWS JSON protocol for setting it up

/// One AWS JSON-protocol call (`TrentService.CreateKey`, `secretsmanager.CreateSecret`) in
/// `region`; LocalStack takes the Region and account from the Authorization header and does not
/// check the signature.
pub fn aws_in(region: &str, target: &str, body: Value) -> (u16, Value) {
    start();
    let service = if target.starts_with("secretsmanager") {
        "secretsmanager"
    } else {
        "kms"
    };
    let host = ENDPOINT.trim_start_matches("http://");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nX-Amz-Target: {target}\r\n\
         Content-Type: application/x-amz-json-1.1\r\nX-Amz-Date: 20260101T000000Z\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/{region}/{service}/aws4_request, \
         SignedHeaders=host, Signature=00\r\n"
    );
    let (status, body) = crate::http(host, &head, &body.to_string());
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

#[track_caller]
pub fn aws(target: &str, body: Value) -> Value {
    let (status, value) = aws_in(REGION, target, body);
    assert!(
        (200..300).contains(&status),
        "{target} answered {status}: {value}"
    );
    value
}

/// A new KMS key; returns its KeyMetadata.
pub fn create_key(spec: &str, usage: &str, multi_region: bool) -> Value {
    let v = aws(
        "TrentService.CreateKey",
        json!({"KeySpec": spec, "KeyUsage": usage, "MultiRegion": multi_region,
               "Description": "notation-aws-kms test"}),
    );
    v["KeyMetadata"].clone()
}

/// A new SIGN_VERIFY key: (key id, key ARN).
pub fn signing_key(spec: &str) -> (String, String) {
    let m = create_key(spec, "SIGN_VERIFY", false);
    (
        m["KeyId"].as_str().unwrap().to_owned(),
        m["Arn"].as_str().unwrap().to_owned(),
    )
}

pub fn public_key(key_id: &str) -> PublicKey {
    let v = aws("TrentService.GetPublicKey", json!({"KeyId": key_id}));
    let der = base64::engine::general_purpose::STANDARD
        .decode(v["PublicKey"].as_str().unwrap())
        .unwrap();
    PublicKey::from_spki_der(&der).unwrap()
}

pub fn create_alias(name: &str, key_id: &str) {
    aws(
        "TrentService.CreateAlias",
        json!({"AliasName": name, "TargetKeyId": key_id}),
    );
}

pub fn create_secret(name: &str, value: &str) -> String {
    let v = aws(
        "secretsmanager.CreateSecret",
        json!({"Name": name, "SecretString": value, "ClientRequestToken": format!("{:0>40}", unique("t").replace('-', ""))}),
    );
    v["ARN"].as_str().unwrap().to_owned()
}
