//! The static description of a plugin: its name, version, key id syntax and configuration
//! keys. get-plugin-metadata and `--help` answer from it alone, so it depends on no other module.

/// A configuration key a plugin understands, as `pluginConfig` key and environment variables.
#[derive(Clone, Copy, Debug)]
pub struct ConfigKey {
    /// The pluginConfig key (`notation key add --plugin-config name=value`).
    pub name: &'static str,
    /// Well-known environment variables read when neither pluginConfig nor
    /// `NOTATION_<PLUGIN>_<NAME>` is set (e.g. `VAULT_ADDR`), in order.
    pub env: &'static [&'static str],
    /// One line of help: what the value is.
    pub help: &'static str,
    /// A secret (PIN, token): never logged, zeroized after use.
    pub secret: bool,
}

impl ConfigKey {
    /// A key that is not secret: `name`, its well-known environment variables `env` (in
    /// order) and its one line of `help`.
    pub const fn new(name: &'static str, env: &'static [&'static str], help: &'static str) -> Self {
        Self {
            name,
            env,
            help,
            secret: false,
        }
    }

    /// Like [`ConfigKey::new`] for a secret (PIN, token): never logged, zeroized after use.
    pub const fn new_secret(
        name: &'static str,
        env: &'static [&'static str],
        help: &'static str,
    ) -> Self {
        Self {
            secret: true,
            ..Self::new(name, env, help)
        }
    }
}

/// The static facts about a plugin: answered by get-plugin-metadata without touching the backend,
/// and printed by `--help`.
#[derive(Debug)]
pub struct PluginInfo {
    /// Plugin name (`pkcs11`): the binary is `notation-<name>`, installed under `plugins/<name>/`.
    pub name: &'static str,
    /// One line for `notation plugin list` and `--help`.
    pub description: &'static str,
    /// Strict SemVer without a leading `v` (use `env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// Where a user reads how to use the plugin (get-plugin-metadata's `url`).
    pub url: &'static str,
    /// How to write a key id for this backend, shown in help and in "unknown key" messages.
    pub key_id_help: &'static str,
    /// Backend-specific configuration keys; the shared ones (`certificate_chain`, `ca_certs`,
    /// `timeout_seconds`) are added by the shared crate and must not be repeated here.
    pub config_keys: &'static [ConfigKey],
    /// Where this backend finds a certificate chain when `certificate_chain` is not set, for the
    /// "no certificate chain" message (e.g. "the certificate object on the token with the key's
    /// CKA_ID").
    pub chain_sources_help: &'static str,
}
