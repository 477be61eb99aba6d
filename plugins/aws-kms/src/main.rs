//! `notation-aws-kms`: the Notation signing plugin `aws-kms` for AWS KMS keys.
//!
//! The key never leaves KMS: describe-key is one GetPublicKey, generate-signature one
//! GetPublicKey and one Sign of the locally computed digest (plus GetSecretValue when the
//! certificate chain lives in Secrets Manager). Everything else is the shared crate's job.
// Denied, not forbidden: plugin_protocol::main! allows it for the `#[no_mangle]` C `main`.
#![deny(unsafe_code)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

mod aws;
mod backend;
mod create_key;
mod https;
mod keyref;

use plugin_protocol::{ConfigKey, PluginInfo};

pub const REGION: ConfigKey = ConfigKey::new(
    "region",
    &["AWS_REGION", "AWS_DEFAULT_REGION"],
    "AWS Region of the key (a key or alias ARN names its own Region and wins); \
     default: the profile's region",
);

pub const PROFILE: ConfigKey = ConfigKey::new(
    "profile",
    &["AWS_PROFILE"],
    "named profile in ~/.aws/config and ~/.aws/credentials (SSO, assume-role, \
     credential_process, static keys)",
);

pub const ENDPOINT_URL: ConfigKey = ConfigKey::new(
    "endpoint_url",
    &["AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL"],
    "KMS endpoint URL (VPC endpoint, FIPS endpoint, LocalStack); \
     awskms://host:port/... in the keyId takes precedence",
);

pub const CERTIFICATE_CHAIN_SECRET: ConfigKey = ConfigKey::new(
    "certificate_chain_secret",
    &[],
    "name or ARN of an AWS Secrets Manager secret holding the PEM certificate \
     chain (leaf first, root last); used when certificate_chain is not set",
);

pub const SECRETS_ENDPOINT_URL: ConfigKey = ConfigKey::new(
    "secrets_endpoint_url",
    &["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"],
    "Secrets Manager endpoint URL (VPC endpoint, LocalStack)",
);

pub static INFO: PluginInfo = plugin_protocol::plugin_info!(
    "aws-kms",
    "Sign artifacts with AWS KMS keys",
    [
        REGION,
        PROFILE,
        ENDPOINT_URL,
        CERTIFICATE_CHAIN_SECRET,
        SECRETS_ENDPOINT_URL
    ],
    "AWS KMS (which stores no certificates) or the Secrets Manager secret \
     named by pluginConfig certificate_chain_secret",
);

/// The static (musl) build's allocator (see Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

plugin_protocol::main! {
    plugin_protocol::run_with::<backend::AwsKms, create_key::Cmd>(&INFO)
}
