//! The keyId forms users already know, parsed without any network call: the Cloud KMS resource
//! name of a key version (`projects/P/locations/L/keyRings/R/cryptoKeys/K/cryptoKeyVersions/V`)
//! or of a key (then its only enabled version is used), and the sigstore form
//! `gcpkms://projects/...` (which also accepts sigstore's `versions/V`). The keyId itself is
//! echoed unchanged.

/// What the forms accepted look like, for messages and `--help`.
pub const KEY_ID_HELP: &str = "a Cloud KMS key version name \
     projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>/cryptoKeyVersions/<n>, \
     a key name without /cryptoKeyVersions/<n> (its only enabled version), or the sigstore form \
     gcpkms://projects/... of either";

/// A parsed key reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRef {
    /// `projects/P/locations/L/keyRings/R/cryptoKeys/K`.
    pub crypto_key: String,
    /// The version's full resource name, when the key id names one.
    pub version: Option<String>,
}

impl plugin_protocol::KeyReference for KeyRef {
    const KIND: &'static str = "a Cloud KMS key reference";
    const HELP: &'static str = KEY_ID_HELP;
    /// Cloud KMS names are far shorter.
    const MAX_LEN: usize = 1024;

    fn parse(key_id: &str) -> std::result::Result<Self, String> {
        let bad = |why: &str| why.to_owned();
        let (sigstore, name) = match key_id.strip_prefix("gcpkms://") {
            Some(rest) => (true, rest),
            None => (false, key_id),
        };
        if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains white space"));
        }
        let parts: Vec<&str> = name.split('/').collect();
        let labels = ["projects", "locations", "keyRings", "cryptoKeys"];
        if parts.len() < 8 {
            return Err(bad(
                "it needs projects/<project>/locations/<location>/keyRings/<ring>/cryptoKeys/<key>",
            ));
        }
        for (i, label) in labels.iter().enumerate() {
            if parts[2 * i] != *label {
                return Err(bad(&format!(
                    "part {} is '{}' where '{label}' belongs",
                    2 * i + 1,
                    parts[2 * i]
                )));
            }
            if parts[2 * i + 1].is_empty() {
                return Err(bad(&format!("no name after '{label}/'")));
            }
        }
        let crypto_key = parts[..8].join("/");
        let version = match &parts[8..] {
            [] => None,
            [label, v]
                if !v.is_empty()
                    && (*label == "cryptoKeyVersions" || (sigstore && *label == "versions")) =>
            {
                if !v.chars().all(|c| c.is_ascii_digit()) {
                    return Err(bad(&format!("key version '{v}' is not a number")));
                }
                Some(format!("{crypto_key}/cryptoKeyVersions/{v}"))
            }
            _ => {
                return Err(bad(
                    "after cryptoKeys/<key> only /cryptoKeyVersions/<n> may follow",
                ))
            }
        };
        Ok(Self {
            crypto_key,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_protocol::slips::Example;

    const KEY: &str = "projects/p-1/locations/europe-west1/keyRings/release/cryptoKeys/signer";

    #[test]
    fn key_ids_a_slip_away_are_refused_or_parsed_and_never_show_a_password() {
        let checked = plugin_protocol::slips::check::<KeyRef>(
            &crate::INFO,
            &[
                Example::plain("projects/p-1/locations/europe-west1/keyRings/release/cryptoKeys/signer/cryptoKeyVersions/3"),
                Example::plain(KEY),
                Example::plain("gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k"),
                // A URL pasted with credentials in it is refused without them.
                Example::holding("https://user:S3cretPw@cloudkms.googleapis.com/v1/projects/p/locations/global/keyRings/r/cryptoKeys/k", "S3cretPw"),
            ],
        );
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn version_and_key_names_in_both_forms() {
        let v = format!("{KEY}/cryptoKeyVersions/3");
        for id in [
            v.clone(),
            format!("gcpkms://{v}"),
            format!("gcpkms://{KEY}/versions/3"),
        ] {
            let k = plugin_protocol::parse_key_id::<KeyRef>(&id)
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(
                (k.crypto_key.as_str(), k.version.as_deref()),
                (KEY, Some(v.as_str()))
            );
        }
        for id in [KEY.to_owned(), format!("gcpkms://{KEY}")] {
            let k = plugin_protocol::parse_key_id::<KeyRef>(&id).unwrap();
            assert_eq!((k.crypto_key.as_str(), k.version), (KEY, None));
        }
    }

    #[test]
    fn key_ids_up_to_1024_characters_are_read() {
        let tail = "/locations/l/keyRings/r/cryptoKeys/k";
        let name = |len: usize| {
            format!(
                "projects/{}{tail}",
                "p".repeat(len - "projects/".len() - tail.len())
            )
        };
        assert!(plugin_protocol::parse_key_id::<KeyRef>(&name(1024)).is_ok());
        let e = plugin_protocol::parse_key_id::<KeyRef>(&name(1025)).unwrap_err();
        assert!(e.message.contains("1025 characters"), "{}", e.message);
    }

    #[test]
    fn rejects_what_is_not_a_key_name() {
        for (bad, why) in [
            ("signer", "it needs projects/"),
            ("projects/p/locations/l/keyRings/r", "it needs projects/"),
            (
                "projects/p/locations/l/keyRings//cryptoKeys/k",
                "no name after 'keyRings/'",
            ),
            (
                "projects/p/regions/l/keyRings/r/cryptoKeys/k",
                "part 3 is 'regions' where 'locations'",
            ),
            (
                "projects/p/locations/l/rings/r/cryptoKeys/k",
                "part 5 is 'rings' where 'keyRings'",
            ),
            (
                "projects//locations/l/keyRings/r/cryptoKeys/k",
                "no name after 'projects/'",
            ),
            (
                &format!("{KEY}/cryptoKeyVersions/"),
                "only /cryptoKeyVersions/<n>",
            ),
            (&format!("{KEY}/cryptoKeyVersions/x"), "'x' is not a number"),
            (&format!("{KEY}/versions/1"), "only /cryptoKeyVersions/<n>"),
            (
                &format!("{KEY}/cryptoKeyVersions/1/publicKey"),
                "only /cryptoKeyVersions",
            ),
            (&format!("{KEY} "), "white space"),
            (&"p".repeat(2000), "2000 characters"),
            ("awskms:///alias/x", "it needs projects/"),
        ] {
            let e = plugin_protocol::parse_key_id::<KeyRef>(bad).unwrap_err();
            assert_eq!(e.code, plugin_protocol::ErrorCode::Validation);
            assert!(e.message.contains(why), "{bad}: {}", e.message);
            assert!(e.message.contains("cryptoKeyVersions/<n>"), "{}", e.message);
        }
    }
}
