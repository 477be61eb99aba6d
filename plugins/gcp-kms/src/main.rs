//! `notation-gcp-kms`: the Notation signing plugin `gcp-kms` for Google Cloud KMS keys, on
//! Google's Cloud Client Libraries for Rust.
//!
//! The key never leaves Cloud KMS: describe-key is one getPublicKey (plus one list when the keyId
//! names a key without a version), generate-signature one getPublicKey and one asymmetricSign of
//! the locally computed digest, with CRC32C integrity checks both ways (plus one Secret Manager
//! access when the certificate chain lives there). Everything else is the shared crate's job.
//! get-plugin-metadata never touches Google's libraries.
// Denied, not forbidden: plugin_protocol::main! allows it for the `#[no_mangle]` C `main`.
#![deny(unsafe_code)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

mod backend;
mod gcp;
mod keyref;

use plugin_protocol::{ConfigKey, PluginInfo};

pub const ENDPOINT: ConfigKey = ConfigKey::new(
    "endpoint",
    &[],
    "Cloud KMS endpoint URL (regional or private endpoint such as \
     https://cloudkms.europe-west1.rep.googleapis.com; http:// only to a loopback \
     emulator); default https://cloudkms.googleapis.com",
);

pub const CREDENTIALS_FILE: ConfigKey = ConfigKey::new(
    "credentials_file",
    &["GOOGLE_APPLICATION_CREDENTIALS"],
    "Google credentials JSON file: service-account key, workload identity \
     federation (external_account), gcloud user or impersonation credentials; \
     default: gcloud's application-default file, then the metadata server",
);

pub const QUOTA_PROJECT: ConfigKey = ConfigKey::new(
    "quota_project",
    &["GOOGLE_CLOUD_QUOTA_PROJECT"],
    "project billed for quota (x-goog-user-project), e.g. with user credentials",
);

pub const CERTIFICATE_CHAIN_SECRET: ConfigKey = ConfigKey::new(
    "certificate_chain_secret",
    &[],
    "Secret Manager secret version projects/<p>/secrets/<s>/versions/<n|latest> \
     holding the PEM certificate chain (leaf first, root last); used when \
     certificate_chain is not set",
);

pub const SECRET_MANAGER_ENDPOINT: ConfigKey = ConfigKey::new(
    "secret_manager_endpoint",
    &[],
    "Secret Manager endpoint URL; default https://secretmanager.googleapis.com",
);

pub static INFO: PluginInfo = plugin_protocol::plugin_info!(
    "gcp-kms",
    "Sign artifacts with Google Cloud KMS keys",
    [
        ENDPOINT,
        CREDENTIALS_FILE,
        QUOTA_PROJECT,
        CERTIFICATE_CHAIN_SECRET,
        SECRET_MANAGER_ENDPOINT
    ],
    "Cloud KMS (which stores no certificates) or the Secret Manager secret \
     version named by pluginConfig certificate_chain_secret",
);

/// The static (musl) build's allocator (see Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

plugin_protocol::main! {
    // Before any thread: Google's TLS stack then reads the one CA bundle, not the whole
    // certificate directory too.
    plugin_protocol::tls::name_the_system_bundle();
    plugin_protocol::run::<backend::GcpKms>(&INFO)
}
