//! `notation-hashicorp-vault`: a Notation signing plugin for HashiCorp Vault and OpenBao Transit
//! keys. The shared `plugin-protocol` crate does the protocol; this crate only talks to Vault.
#![forbid(unsafe_code)]

mod auth;
mod backend;
mod http;
mod keyref;
mod pki;
mod transit;

use plugin_protocol::{ConfigKey, PluginInfo};

const fn key(
    name: &'static str,
    env: &'static [&'static str],
    help: &'static str,
    secret: bool,
) -> ConfigKey {
    ConfigKey {
        name,
        env,
        help,
        secret,
    }
}

pub const ADDRESS: ConfigKey = key(
    "address",
    &["VAULT_ADDR", "BAO_ADDR"],
    "URL of the Vault or OpenBao server, e.g. https://vault.example.com:8200 (required)",
    false,
);

pub const NAMESPACE: ConfigKey = key(
    "namespace",
    &["VAULT_NAMESPACE", "BAO_NAMESPACE"],
    "Vault Enterprise / OpenBao namespace of the Transit mount and the auth method",
    false,
);

pub const CA_CERT: ConfigKey = key(
    "ca_cert",
    &["VAULT_CACERT", "BAO_CACERT"],
    "PEM file of CA certificates that verify the server, in addition to the system roots",
    false,
);

pub const CA_PATH: ConfigKey = key(
    "ca_path",
    &["VAULT_CAPATH", "BAO_CAPATH"],
    "directory of PEM CA certificate files that verify the server",
    false,
);

pub const CLIENT_CERT: ConfigKey = key(
    "client_cert",
    &["VAULT_CLIENT_CERT", "BAO_CLIENT_CERT"],
    "PEM client certificate for TLS client authentication (with client_key)",
    false,
);

pub const CLIENT_KEY: ConfigKey = key(
    "client_key",
    &["VAULT_CLIENT_KEY", "BAO_CLIENT_KEY"],
    "PEM private key file of client_cert",
    false,
);

pub const TRANSIT_MOUNT: ConfigKey = key(
    "transit_mount",
    &[],
    "mount path of the Transit secrets engine (default transit)",
    false,
);

pub const AUTH_METHOD: ConfigKey = key(
    "auth_method",
    &[],
    "token (default), approle, kubernetes or jwt (alias oidc)",
    false,
);

pub const AUTH_MOUNT: ConfigKey = key(
    "auth_mount",
    &[],
    "mount path of the auth method (default approle, kubernetes or jwt)",
    false,
);

pub const TOKEN: ConfigKey = key(
    "token",
    &["VAULT_TOKEN", "BAO_TOKEN"],
    "token for auth_method token; else token_file, else ~/.vault-token",
    true,
);

pub const TOKEN_FILE: ConfigKey = key(
    "token_file",
    &[],
    "file holding the token for auth_method token",
    false,
);

pub const ROLE_ID: ConfigKey = key("role_id", &[], "AppRole role id (or role_id_file)", true);

pub const ROLE_ID_FILE: ConfigKey = key(
    "role_id_file",
    &[],
    "file holding the AppRole role id",
    false,
);

pub const SECRET_ID: ConfigKey = key(
    "secret_id",
    &[],
    "AppRole secret id (or secret_id_file; omit for roles without bind_secret_id)",
    true,
);

pub const SECRET_ID_FILE: ConfigKey = key(
    "secret_id_file",
    &[],
    "file holding the AppRole secret id",
    false,
);

pub const ROLE: ConfigKey = key(
    "role",
    &[],
    "role to log in as: required for kubernetes, optional for jwt (the mount's default role)",
    false,
);

pub const JWT: ConfigKey = key(
    "jwt",
    &[],
    "the JWT for kubernetes or jwt login (or jwt_file)",
    true,
);

pub const JWT_FILE: ConfigKey = key(
    "jwt_file",
    &[],
    "file holding the JWT: a CI-provided ID token, or the Kubernetes service-account token \
         (default /var/run/secrets/kubernetes.io/serviceaccount/token)",
    false,
);

pub const CHAIN_SOURCE: ConfigKey = key(
    "chain_source",
    &[],
    "where the chain is when certificate_chain is not set: transit (default; the chain \
         stored on the key version) or kv (a KV v2 secret)",
    false,
);

pub const KV_MOUNT: ConfigKey = key(
    "kv_mount",
    &[],
    "KV v2 mount holding the chain (default secret; setting any kv_* key selects kv)",
    false,
);

pub const KV_PATH: ConfigKey = key(
    "kv_path",
    &[],
    "path of the KV v2 secret holding the chain (default: the key name)",
    false,
);

pub const KV_FIELD: ConfigKey = key(
    "kv_field",
    &[],
    "field of the KV v2 secret holding the PEM chain (default certificate)",
    false,
);

pub static INFO: PluginInfo = PluginInfo {
    name: "hashicorp-vault",
    description: "Sign with HashiCorp Vault or OpenBao Transit keys (RSA and ECDSA)",
    version: env!("CARGO_PKG_VERSION"),
    url: "https://github.com/notation-plugins/notation-plugins/tree/main/plugins/hashicorp-vault",
    key_id_help: keyref::KEY_ID_HELP,
    config_keys: &[
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
        KV_FIELD,
    ],
    chain_sources_help: "the Transit key version (set-certificate, or `notation-hashicorp-vault \
                         issue-certificate`) or, with chain_source=kv, the KV v2 secret",
};

fn main() {
    plugin_protocol::run_with::<backend::VaultBackend, pki::Cmd>(&INFO)
}
