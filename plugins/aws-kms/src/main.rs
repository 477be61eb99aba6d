//! `notation-aws-kms`: the Notation signing plugin `aws-kms` for AWS KMS keys.
//!
//! The key never leaves KMS: describe-key is one GetPublicKey, generate-signature one
//! GetPublicKey and one Sign of the locally computed digest (plus GetSecretValue when the
//! certificate chain lives in Secrets Manager). Everything else is the shared crate's job.
#![forbid(unsafe_code)]

mod aws;
mod backend;
mod create_key;
mod keyref;

use plugin_protocol::{ConfigKey, PluginInfo};

pub const REGION: ConfigKey = ConfigKey {
    name: "region",
    env: &["AWS_REGION", "AWS_DEFAULT_REGION"],
    help: "AWS Region of the key (a key or alias ARN names its own Region and wins); \
           default: the profile's region",
    secret: false,
};

pub const PROFILE: ConfigKey = ConfigKey {
    name: "profile",
    env: &["AWS_PROFILE"],
    help: "named profile in ~/.aws/config and ~/.aws/credentials (SSO, assume-role, \
           credential_process, static keys)",
    secret: false,
};

pub const ENDPOINT_URL: ConfigKey = ConfigKey {
    name: "endpoint_url",
    env: &["AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL"],
    help: "KMS endpoint URL (VPC endpoint, FIPS endpoint, LocalStack); \
           awskms://host:port/... in the keyId takes precedence",
    secret: false,
};

pub const CERTIFICATE_CHAIN_SECRET: ConfigKey = ConfigKey {
    name: "certificate_chain_secret",
    env: &[],
    help: "name or ARN of an AWS Secrets Manager secret holding the PEM certificate \
           chain (leaf first, root last); used when certificate_chain is not set",
    secret: false,
};

pub const SECRETS_ENDPOINT_URL: ConfigKey = ConfigKey {
    name: "secrets_endpoint_url",
    env: &["AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"],
    help: "Secrets Manager endpoint URL (VPC endpoint, LocalStack)",
    secret: false,
};

pub static INFO: PluginInfo = PluginInfo {
    name: "aws-kms",
    description: "Sign artifacts with AWS KMS keys",
    version: env!("CARGO_PKG_VERSION"),
    url: "https://github.com/notation-plugins/notation-plugins/tree/main/plugins/aws-kms",
    key_id_help: keyref::KEY_ID_HELP,
    config_keys: &[
        REGION,
        PROFILE,
        ENDPOINT_URL,
        CERTIFICATE_CHAIN_SECRET,
        SECRETS_ENDPOINT_URL,
    ],
    chain_sources_help: "AWS KMS (which stores no certificates) or the Secrets Manager secret \
                         named by pluginConfig certificate_chain_secret",
};

fn main() {
    plugin_protocol::run_with::<backend::AwsKms, create_key::Cmd>(&INFO)
}
