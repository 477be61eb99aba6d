//! Key ids: the Key Vault object URL `https://<vault host>/{keys|certificates}/<name>[/<version>]`
//! (as the official notation-azure-kv plugin and `az keyvault` print them) and the sigstore form
//! `azurekms://<vault host>/<name>[/<version>]`.

pub const KEY_ID_HELP: &str = "a Key Vault key or certificate URL, \
     https://<vault>.vault.azure.net/keys/<name>[/<version>] or \
     https://<vault>.vault.azure.net/certificates/<name>[/<version>] (versionless = current \
     version; sovereign-cloud and Managed HSM hosts work too), or the sigstore form \
     azurekms://<vault>.vault.azure.net/<name>[/<version>]";

/// Which kind of Key Vault object the key id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Key,
    Certificate,
}

/// A parsed key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRef {
    /// `https://<host>[:port]`, no trailing slash.
    pub vault_url: String,
    /// The vault host (with the port, if any), for messages.
    pub host: String,
    pub kind: Kind,
    pub name: String,
    pub version: Option<String>,
}

impl plugin_protocol::KeyReference for KeyRef {
    const KIND: &'static str = "a Key Vault key id";
    const HELP: &'static str = KEY_ID_HELP;
    /// A vault host, /keys/, a 127-character name and a version fit well in 1024.
    const MAX_LEN: usize = 1024;

    fn parse(key_id: &str) -> std::result::Result<Self, String> {
        let bad = |why: &str| why.to_owned();
        let (sigstore, rest) = if let Some(rest) = key_id.strip_prefix("azurekms://") {
            (true, rest)
        } else if let Some(rest) = key_id.strip_prefix("https://") {
            (false, rest)
        } else if key_id.starts_with("http://") {
            return Err(bad("Key Vault is reached over https only"));
        } else {
            return Err(bad("it does not start with https:// or azurekms://"));
        };
        if rest.contains(['?', '#', '@', ' ']) {
            return Err(bad("it has a query, fragment, user name or space"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut parts = rest.split('/');
        let host = parts.next().unwrap_or_default().to_ascii_lowercase();
        let hostname = host.split(':').next().unwrap_or_default();
        let port_ok = host
            .split_once(':')
            .is_none_or(|(_, p)| !p.is_empty() && p.parse::<u16>().is_ok());
        if hostname.is_empty()
            || !hostname.contains('.')
            || !port_ok
            || !hostname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(bad("no vault host such as myvault.vault.azure.net"));
        }
        let parts: Vec<&str> = parts.collect();
        let (kind, tail) = if sigstore {
            (Kind::Key, &parts[..])
        } else {
            match parts.first().copied() {
                Some("keys") => (Kind::Key, &parts[1..]),
                Some("certificates") => (Kind::Certificate, &parts[1..]),
                Some("secrets") => {
                    return Err(bad(
                        "a secret cannot sign: use the certificate's or key's URL, \
                         .../certificates/<name> or .../keys/<name>",
                    ))
                }
                _ => return Err(bad("the path must start with /keys/ or /certificates/")),
            }
        };
        let (name, version) = match tail {
            [name] => (*name, None),
            [name, version] => (*name, Some(*version)),
            [] => return Err(bad("no key name")),
            _ => return Err(bad("too many path segments")),
        };
        if name.is_empty()
            || name.len() > 127
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(bad(
                "a Key Vault name has 1 to 127 letters, digits and dashes",
            ));
        }
        if let Some(v) = version {
            if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad("a version is letters and digits (32 hex digits)"));
            }
        }
        Ok(Self {
            vault_url: format!("https://{host}"),
            host,
            kind,
            name: name.to_owned(),
            version: version.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_protocol::slips::Example;

    #[test]
    fn key_ids_a_slip_away_are_refused_or_parsed_and_never_show_a_password() {
        let checked = plugin_protocol::slips::check::<KeyRef>(
            &crate::INFO,
            &[
                Example::plain(
                    "https://release.vault.azure.net/keys/signer/0123456789abcdef0123456789abcdef",
                ),
                Example::plain("https://release.vault.azure.net/certificates/signer"),
                Example::plain("https://hsm.managedhsm.azure.net/keys/signer"),
                Example::plain(
                    "azurekms://release.vault.azure.net/signer/0123456789abcdef0123456789abcdef",
                ),
                // A URL pasted with credentials in it is refused without them.
                Example::holding(
                    "https://admin:S3cretPw@release.vault.azure.net/keys/signer",
                    "S3cretPw",
                ),
            ],
        );
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn parses_every_form() {
        let k = plugin_protocol::parse_key_id::<KeyRef>(
            "https://myvault.vault.azure.net/keys/sign-key/0123abcd",
        )
        .unwrap();
        assert_eq!(k.vault_url, "https://myvault.vault.azure.net");
        assert_eq!(k.kind, Kind::Key);
        assert_eq!(k.name, "sign-key");
        assert_eq!(k.version.as_deref(), Some("0123abcd"));

        let k = plugin_protocol::parse_key_id::<KeyRef>(
            "https://MyVault.vault.azure.cn/certificates/c1/",
        )
        .unwrap();
        assert_eq!(k.host, "myvault.vault.azure.cn");
        assert_eq!(k.kind, Kind::Certificate);
        assert_eq!(k.version, None);

        let k = plugin_protocol::parse_key_id::<KeyRef>(
            "https://my-vault.managedhsm.azure.net/keys/release-2",
        )
        .unwrap();
        assert_eq!(k.host, "my-vault.managedhsm.azure.net");
        assert_eq!(k.name, "release-2");

        let k =
            plugin_protocol::parse_key_id::<KeyRef>("azurekms://local.vault.azure.net:8443/k/v1")
                .unwrap();
        assert_eq!(k.vault_url, "https://local.vault.azure.net:8443");
        assert_eq!(k.kind, Kind::Key);
        assert_eq!((k.name.as_str(), k.version.as_deref()), ("k", Some("v1")));
    }

    #[test]
    fn refuses_what_is_not_a_key_id() {
        for bad in [
            "sign-key",
            "http://v.vault.azure.net/keys/k",
            "https://v.vault.azure.net/secrets/k",
            "https://v.vault.azure.net/keys/",
            "https://v.vault.azure.net/keys/k/v/sign",
            "https://v.vault.azure.net/keys/k_1",
            "https://v.vault.azure.net:x/keys/k",
            "https://localhost/keys/k",
            "https://v.vault.azure.net/keys/k?api-version=7.4",
            "azurekms://",
            "https://v.vault.azure.net:/keys/k",
            "https://v.vault.azure.net:70000/keys/k",
            "https://v_1.vault.azure.net/keys/k",
            "https://v.vault.azure.net/keys/k-$",
            "https://v.vault.azure.net/keys/k/v-1",
            "https://v.vault.azure.net/other/k",
        ] {
            let e = plugin_protocol::parse_key_id::<KeyRef>(bad).unwrap_err();
            assert_eq!(e.code, plugin_protocol::ErrorCode::Validation, "{bad}");
            assert!(e.message.contains(bad), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn each_refusal_says_why() {
        for (bad, why) in [
            (
                "https://v.vault.azure.net/secrets/k",
                "a secret cannot sign",
            ),
            ("https://v.vault.azure.net/keys/", "no key name"),
            (
                "https://v.vault.azure.net/keys/k/v/sign",
                "too many path segments",
            ),
            (
                "https://v.vault.azure.net/other/k",
                "must start with /keys/",
            ),
            ("http://v.vault.azure.net/keys/k", "over https only"),
            ("https://localhost/keys/k", "no vault host"),
        ] {
            let e = plugin_protocol::parse_key_id::<KeyRef>(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn names_versions_and_the_whole_id_have_their_bounds() {
        let vault = "https://v.vault.azure.net/keys";
        let name = "n".repeat(127);
        assert_eq!(
            plugin_protocol::parse_key_id::<KeyRef>(&format!("{vault}/{name}"))
                .unwrap()
                .name,
            name
        );
        let e = plugin_protocol::parse_key_id::<KeyRef>(&format!("{vault}/{name}n")).unwrap_err();
        assert!(e.message.contains("1 to 127 letters"), "{}", e.message);

        let version = "a".repeat(64);
        let k = plugin_protocol::parse_key_id::<KeyRef>(&format!("{vault}/k/{version}")).unwrap();
        assert_eq!(k.version.as_deref(), Some(version.as_str()));
        let e =
            plugin_protocol::parse_key_id::<KeyRef>(&format!("{vault}/k/{version}a")).unwrap_err();
        assert!(e.message.contains("a version is letters"), "{}", e.message);
        let e = plugin_protocol::parse_key_id::<KeyRef>(&format!("{vault}/k//")).unwrap_err();
        assert!(e.message.contains("a version is letters"), "{}", e.message);

        // 1024 characters is refused for what it holds, 1025 for its length alone.
        let id = format!("{vault}/k/{}", "a".repeat(1024 - vault.len() - 3));
        assert_eq!(id.len(), 1024);
        let e = plugin_protocol::parse_key_id::<KeyRef>(&id).unwrap_err();
        assert!(!e.message.contains("characters long"), "{}", e.message);
        let e = plugin_protocol::parse_key_id::<KeyRef>(&format!("{id}a")).unwrap_err();
        assert!(
            e.message.contains("it is 1025 characters long"),
            "{}",
            e.message
        );
    }
}
