//! `notation-azure-keyvault`: the Notation signing plugin `azure-keyvault` for Azure Key Vault
//! keys and certificates, on the official Azure SDK for Rust.
//!
//! The key never leaves Key Vault: describe-key is one get (key or certificate),
//! generate-signature one get, one get for the chain (the certificate's backing secret, or the
//! certificate) and one sign of the locally computed digest. Everything else is the shared
//! crate's job. get-plugin-metadata never touches the SDK.
// Denied, not forbidden: plugin_protocol::main! allows it for the `#[no_mangle]` C `main`.
#![deny(unsafe_code)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

mod azure;
mod backend;
mod keyref;
mod secret;

use plugin_protocol::{ConfigKey, PluginInfo};

pub const SELF_SIGNED: ConfigKey = ConfigKey::new(
    "self_signed",
    &[],
    "true: the Key Vault certificate is self-signed and is the whole chain \
     (needs only certificates/get, not secrets/get); as in notation-azure-kv",
);

pub const CREDENTIAL_TYPE: ConfigKey = ConfigKey::new(
    "credential_type",
    &["AZURE_CREDENTIAL_TYPE"],
    "default, environment (AZURE_CLIENT_SECRET), workloadid, managedid or \
     azurecli; as in notation-azure-kv (default: default)",
);

pub const CLIENT_ID: ConfigKey = ConfigKey::new(
    "client_id",
    &["AZURE_CLIENT_ID"],
    "application (client) id: of the service principal, the workload identity, \
     or the user-assigned managed identity",
);

pub const TENANT_ID: ConfigKey = ConfigKey::new(
    "tenant_id",
    &["AZURE_TENANT_ID"],
    "Microsoft Entra tenant id (service principal and workload identity)",
);

pub static INFO: PluginInfo = plugin_protocol::plugin_info!(
    "azure-keyvault",
    "Sign artifacts with Azure Key Vault keys and certificates",
    [SELF_SIGNED, CREDENTIAL_TYPE, CLIENT_ID, TENANT_ID],
    "the Key Vault certificate's backing secret (PKCS#12 or PEM), or the \
     certificate with pluginConfig ca_certs or self_signed=true,",
);

/// The static (musl) build's allocator (see Cargo.toml).
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

plugin_protocol::main! {
    plugin_protocol::run::<backend::AzureKeyVault>(&INFO)
}
