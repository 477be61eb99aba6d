//! `notation-hashicorp-vault`: a Notation signing plugin for HashiCorp Vault and OpenBao Transit
//! keys. The shared `plugin-protocol` crate does the protocol; this crate only talks to Vault.
// Denied, not forbidden: plugin_protocol::main! allows it for the `#[no_mangle]` C `main`.
#![deny(unsafe_code)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

mod auth;
mod backend;
mod http;
mod keyref;
mod pki;
mod transit;

use plugin_protocol::{ConfigKey, PluginInfo};

pub const ADDRESS: ConfigKey = ConfigKey::new(
    "address",
    &["VAULT_ADDR", "BAO_ADDR"],
    "URL of the Vault or OpenBao server, e.g. https://vault.example.com:8200 (required)",
);

pub const NAMESPACE: ConfigKey = ConfigKey::new(
    "namespace",
    &["VAULT_NAMESPACE", "BAO_NAMESPACE"],
    "Vault Enterprise / OpenBao namespace of the Transit mount and the auth method",
);

pub const CA_CERT: ConfigKey = ConfigKey::new(
    "ca_cert",
    &["VAULT_CACERT", "BAO_CACERT"],
    "PEM file of CA certificates that verify the server, in addition to the system roots",
);

pub const CA_PATH: ConfigKey = ConfigKey::new(
    "ca_path",
    &["VAULT_CAPATH", "BAO_CAPATH"],
    "directory of PEM CA certificate files that verify the server",
);

pub const CLIENT_CERT: ConfigKey = ConfigKey::new(
    "client_cert",
    &["VAULT_CLIENT_CERT", "BAO_CLIENT_CERT"],
    "PEM client certificate for TLS client authentication (with client_key)",
);

pub const CLIENT_KEY: ConfigKey = ConfigKey::new(
    "client_key",
    &["VAULT_CLIENT_KEY", "BAO_CLIENT_KEY"],
    "PEM private key file of client_cert (readable by its owner only)",
);

pub const TRANSIT_MOUNT: ConfigKey = ConfigKey::new(
    "transit_mount",
    &[],
    "mount path of the Transit secrets engine (default transit)",
);

pub const AUTH_METHOD: ConfigKey = ConfigKey::new(
    "auth_method",
    &[],
    "token (default), approle, kubernetes or jwt (alias oidc)",
);

pub const AUTH_MOUNT: ConfigKey = ConfigKey::new(
    "auth_mount",
    &[],
    "mount path of the auth method (default approle, kubernetes or jwt)",
);

pub const TOKEN: ConfigKey = ConfigKey::new_secret(
    "token",
    &["VAULT_TOKEN", "BAO_TOKEN"],
    "token for auth_method token; else token_file, else ~/.vault-token",
);

pub const TOKEN_FILE: ConfigKey = ConfigKey::new(
    "token_file",
    &[],
    "file holding the token for auth_method token",
);

pub const ROLE_ID: ConfigKey =
    ConfigKey::new_secret("role_id", &[], "AppRole role id (or role_id_file)");

pub const ROLE_ID_FILE: ConfigKey =
    ConfigKey::new("role_id_file", &[], "file holding the AppRole role id");

pub const SECRET_ID: ConfigKey = ConfigKey::new_secret(
    "secret_id",
    &[],
    "AppRole secret id (or secret_id_file; omit for roles without bind_secret_id)",
);

pub const SECRET_ID_FILE: ConfigKey =
    ConfigKey::new("secret_id_file", &[], "file holding the AppRole secret id");

pub const ROLE: ConfigKey = ConfigKey::new(
    "role",
    &[],
    "role to log in as: required for kubernetes, optional for jwt (the mount's default role)",
);

pub const JWT: ConfigKey = ConfigKey::new_secret(
    "jwt",
    &[],
    "the JWT for kubernetes or jwt login (or jwt_file)",
);

pub const JWT_FILE: ConfigKey = ConfigKey::new(
    "jwt_file",
    &[],
    "file holding the JWT: a CI-provided ID token, or the Kubernetes service-account token \
     (default /var/run/secrets/kubernetes.io/serviceaccount/token)",
);

pub const CHAIN_SOURCE: ConfigKey = ConfigKey::new(
    "chain_source",
    &[],
    "where the chain is when certificate_chain is not set: transit (default; the chain \
     stored on the key version) or kv (a KV v2 secret)",
);

pub const KV_MOUNT: ConfigKey = ConfigKey::new(
    "kv_mount",
    &[],
    "KV v2 mount holding the chain (default secret; setting any kv_* key selects kv)",
);

pub const KV_PATH: ConfigKey = ConfigKey::new(
    "kv_path",
    &[],
    "path of the KV v2 secret holding the chain (default: the key name)",
);

pub const KV_FIELD: ConfigKey = ConfigKey::new(
    "kv_field",
    &[],
    "field of the KV v2 secret holding the PEM chain (default certificate)",
);

pub static INFO: PluginInfo = plugin_protocol::plugin_info!(
    "hashicorp-vault",
    "Sign with HashiCorp Vault or OpenBao Transit keys (RSA and ECDSA)",
    [
        ADDRESS,
        NAMESPACE,
        CA_CERT,
        CA_PATH,
        CLIENT_CERT,
        CLIENT_KEY,
        TRANSIT_MOUNT,
        AUTH_METHOD,
        AUTH_MOUNT,
        TOKEN,
        TOKEN_FILE,
        ROLE_ID,
        ROLE_ID_FILE,
        SECRET_ID,
        SECRET_ID_FILE,
        ROLE,
        JWT,
        JWT_FILE,
        CHAIN_SOURCE,
        KV_MOUNT,
        KV_PATH,
        KV_FIELD
    ],
    "the Transit key version (set-certificate, or `notation-hashicorp-vault \
     issue-certificate`) or, with chain_source=kv, the KV v2 secret",
);

plugin_protocol::main! {
    plugin_protocol::run_with::<backend::VaultBackend, pki::Cmd>(&INFO)
}
