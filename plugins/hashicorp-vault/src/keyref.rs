//! Key references: a Transit key name, optionally pinned to a key version.
//!
//! ```text
//! release-signing              the latest version of Transit key `release-signing`
//! release-signing:3            version 3 of it (always, even after rotation)
//! hashivault://release-signing the sigstore form (cosign, sigstore tooling); `:N` works too
//! openbao://release-signing    the OpenBao spelling of the same
//! ```
//!
//! Vault key names are letters, digits, `_`, `-`, `.` and `@` (a `:` can never be part of a
//! name, so `name:N` is unambiguous). The Transit mount comes from configuration
//! (`transit_mount`, default `transit`), not from the key reference.

use plugin_protocol::secret::redact_url;

/// The syntax, for help text and error messages.
pub const KEY_ID_HELP: &str = "a Transit key name, optionally pinned to a key version: \
     `<name>` (latest version) or `<name>:<version>`; the sigstore forms `hashivault://<name>` and \
     `openbao://<name>` work too. The Transit mount is pluginConfig transit_mount (default `transit`)";

/// A parsed key reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRef {
    pub name: String,
    /// `None`: the key's latest version at the time of the call.
    pub version: Option<u64>,
}

/// Longest key name accepted: a longer one is a mistake (Vault would reject the request line),
/// refused before any request.
const MAX_NAME_LEN: usize = 512;

impl plugin_protocol::KeyReference for KeyRef {
    const KIND: &'static str = "a Vault Transit key reference";
    const HELP: &'static str = KEY_ID_HELP;

    fn parse(key_id: &str) -> std::result::Result<Self, String> {
        let bad = |why: &str| why.to_owned();
        let trimmed = key_id.trim();
        let rest = ["hashivault://", "openbao://"]
            .iter()
            .find_map(|scheme| {
                trimmed
                    .get(..scheme.len())
                    .filter(|p| p.eq_ignore_ascii_case(scheme))
                    .map(|_| &trimmed[scheme.len()..])
            })
            .unwrap_or(trimmed);
        if rest.contains("://") {
            return Err(bad(
                "only the hashivault:// and openbao:// schemes are known",
            ));
        }
        let (name, version) = match rest.split_once(':') {
            None => (rest, None),
            Some((name, v)) => {
                let version = match v.parse::<u64>() {
                    Ok(n) if n >= 1 && v.bytes().all(|b| b.is_ascii_digit()) => n,
                    // The part after ':' of a pasted `user:password@` is not repeated.
                    _ if redact_url(key_id) != key_id => {
                        return Err(bad("the version after ':' must be a number from 1 up"))
                    }
                    _ => {
                        return Err(bad(&format!(
                            "the version after ':' must be a number from 1 up, not '{v}'"
                        )))
                    }
                };
                (name, Some(version))
            }
        };
        if name.is_empty() {
            return Err(bad("the key name is empty"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(bad(&format!(
                "the key name is {} characters long; Transit key names used in a URL path are \
                 at most {MAX_NAME_LEN}",
                name.len()
            )));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')))
        {
            return Err(bad(&format!(
                "'{c}' cannot appear in a Transit key name (letters, digits, _ - . @)"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            version,
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
                Example::holding(
                    "https://user:S3cretPw@vault.example:8200/transit/keys/k",
                    "S3cretPw",
                ),
                Example::holding("HTTPS://user:S3cretPw@vault.example/k", "S3cretPw"),
                Example::holding("hashivault://user:S3cretPw@k", "S3cretPw"),
                Example::holding(
                    "http://:S3cretPw@127.0.0.1:8200/v1/transit/sign/k",
                    "S3cretPw",
                ),
                Example::plain("release:3"),
                Example::plain("openbao://re.lease-1@x_y:12"),
            ],
        );
        assert!(checked > 5000, "{checked}");
    }

    fn ok(s: &str) -> (String, Option<u64>) {
        let k = plugin_protocol::parse_key_id::<KeyRef>(s).unwrap();
        (k.name, k.version)
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(ok("release"), ("release".into(), None));
        assert_eq!(ok("release:3"), ("release".into(), Some(3)));
        assert_eq!(ok("hashivault://release"), ("release".into(), None));
        assert_eq!(
            ok("openbao://re.lease-1@x_y:12"),
            ("re.lease-1@x_y".into(), Some(12))
        );
        assert_eq!(ok("HashiVault://k"), ("k".into(), None));
    }

    #[test]
    fn refused_forms_say_why() {
        for (id, why) in [
            ("", "empty"),
            ("hashivault://", "empty"),
            ("k:0", "from 1 up"),
            ("k:latest", "from 1 up"),
            ("k:+3", "from 1 up"),
            ("transit/keys/k", "'/'"),
            ("awskms:///k", "schemes"),
            ("k:1:2", "from 1 up"),
        ] {
            let e = plugin_protocol::parse_key_id::<KeyRef>(id).unwrap_err();
            assert_eq!(e.code, plugin_protocol::ErrorCode::Validation);
            assert!(e.message.contains(why), "{id}: {}", e.message);
        }
    }

    #[test]
    fn names_up_to_the_bound_are_accepted() {
        let longest = "k".repeat(MAX_NAME_LEN);
        assert_eq!(ok(&longest), (longest.clone(), None));
        let e = plugin_protocol::parse_key_id::<KeyRef>(&format!("{longest}k:2")).unwrap_err();
        assert!(
            e.message
                .contains(&format!("is {} characters long", MAX_NAME_LEN + 1)),
            "{}",
            e.message
        );
    }
}
