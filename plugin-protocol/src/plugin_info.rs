//! The static description of a plugin: its name, version and configuration keys
//! ([`plugin_info!`](crate::plugin_info) writes one). get-plugin-metadata and `--help` answer
//! from it alone, so it depends on no other module.

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
/// and printed by `--help` (with the key id forms, [`crate::KeyReference::HELP`]). Written with
/// [`plugin_info!`](crate::plugin_info), which fills in the version and the documentation URL.
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
    /// Backend-specific configuration keys; the shared ones (`certificate_chain`, `ca_certs`,
    /// `timeout_seconds`) are added by the shared crate and must not be repeated here.
    pub config_keys: &'static [ConfigKey],
    /// Where this backend finds a certificate chain when `certificate_chain` is not set, for the
    /// "no certificate chain" message (e.g. "the certificate object on the token with the key's
    /// CKA_ID").
    pub chain_sources_help: &'static str,
}

/// A plugin's [`PluginInfo`]: its name, one line of description, its own configuration keys and
/// where its backend keeps certificate chains; the version is the calling crate's
/// (`CARGO_PKG_VERSION`) and the URL its README's in the project's repository
/// (`.../tree/main/plugins/<name>`).
///
/// ```
/// # use plugin_protocol::{plugin_info, ConfigKey, PluginInfo};
/// const REGION: ConfigKey = ConfigKey::new("region", &["AWS_REGION"], "the key's Region");
/// static INFO: PluginInfo = plugin_info!("aws-kms", "Sign with AWS KMS keys", [REGION], "nowhere");
/// assert!(INFO.url.ends_with("/plugins/aws-kms"));
/// ```
#[macro_export]
macro_rules! plugin_info {
    ($name:literal, $description:expr, [$($key:expr),* $(,)?], $chain_sources:expr $(,)?) => {
        $crate::PluginInfo {
            name: $name,
            description: $description,
            version: env!("CARGO_PKG_VERSION"),
            url: concat!(
                "https://github.com/notation-plugins/notation-plugins/tree/main/plugins/",
                $name
            ),
            config_keys: &[$($key),*],
            chain_sources_help: $chain_sources,
        }
    };
}
