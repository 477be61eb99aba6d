//! LocalStack (AWS KMS and Secrets Manager) on 127.0.0.1:4566, from `scripts/localstack.sh`.

use std::sync::OnceLock;

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
