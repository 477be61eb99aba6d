//! Key references: a backend's key id, parsed once before any I/O, and the form of it that
//! messages and logs may show.

use crate::error::{PluginError, Result};

/// How many characters of a refused key id a message shows.
const SHOWN_CHARS: usize = 120;

/// What a backend's key id means to it (a PKCS#11 URI, a KMS key or alias ARN, a Transit key
/// name and version, a PIV slot). [`crate::Context::for_key`] parses the keyId with it once
/// ([`parse_key_id`]), before any I/O, and names the key in every message and log line by
/// [`KeyReference::redacted`] alone ([`crate::Context::key_name`]); the parsed reference goes
/// to [`crate::Backend::connect`].
pub trait KeyReference: Sized {
    /// What a key id of this backend is, as a message says it: "keyId '…' is not
    /// *an AWS KMS key reference*".
    const KIND: &'static str;

    /// The forms a key id may take, shown in `--help` and after "expected" whenever a key id is
    /// refused.
    const HELP: &'static str;

    /// Longest key id parsed; a longer one is refused, saying its length, before
    /// [`KeyReference::parse`] sees it.
    const MAX_LEN: usize = 1024;

    /// Parses a key id of at most [`KeyReference::MAX_LEN`] bytes. `Err` says in a few words
    /// what is wrong with it ("awskms:// needs a key after the host"); [`parse_key_id`] makes
    /// the message, which shows the key id only in its [`KeyReference::redacted`] form.
    fn parse(key_id: &str) -> std::result::Result<Self, String>;

    /// `key_id` as messages and logs may show it. The default shows it without the password
    /// or token of a URL someone pasted (`https://user:password@host/...`,
    /// [`crate::secret::redact_url`]), which is all it hides; a backend whose key ids can carry
    /// another secret (a PKCS#11 URI's `pin-value`) replaces it here, whatever its case or
    /// position.
    fn redacted(key_id: &str) -> String {
        crate::secret::redact_url(key_id)
    }
}

/// Parses `key_id` as an `R`. A key id that is not one is a `VALIDATION_ERROR`: "keyId '<key
/// id, redacted and shortened>' is not <KIND> (<why>); expected <HELP>".
pub fn parse_key_id<R: KeyReference>(key_id: &str) -> Result<R> {
    let why = if key_id.len() > R::MAX_LEN {
        format!(
            "it is {} characters long, more than {}",
            key_id.chars().count(),
            R::MAX_LEN
        )
    } else {
        match R::parse(key_id) {
            Ok(key) => return Ok(key),
            Err(why) => why,
        }
    };
    let shown = crate::bounded::shorten(&R::redacted(key_id), SHOWN_CHARS);
    Err(PluginError::validation(format!(
        "keyId '{shown}' is not {} ({why}); expected {}",
        R::KIND,
        R::HELP
    )))
}

/// A key id used as it is: for a backend whose key ids need no parsing and hold no secret (the
/// test backends' key files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainKeyId(pub String);

impl KeyReference for PlainKeyId {
    const KIND: &'static str = "a key file path";
    const HELP: &'static str = "the path of a PKCS#8 PEM private key file";
    const MAX_LEN: usize = 4096;

    fn parse(key_id: &str) -> std::result::Result<Self, String> {
        Ok(Self(key_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upper-case letters only; a "secret-" prefix is redacted.
    #[derive(Debug)]
    struct Letters(String);

    impl KeyReference for Letters {
        const KIND: &'static str = "a name in letters";
        const HELP: &'static str = "A to Z";
        const MAX_LEN: usize = 200;

        fn parse(key_id: &str) -> std::result::Result<Self, String> {
            match key_id.chars().find(|c| !c.is_ascii_uppercase()) {
                None => Ok(Self(key_id.to_owned())),
                Some(c) => Err(format!("'{c}' is not a capital letter")),
            }
        }

        fn redacted(key_id: &str) -> String {
            key_id.replace("secret", "[redacted]")
        }
    }

    #[test]
    fn a_refused_key_id_says_why_what_was_expected_and_shows_only_the_redacted_form() {
        assert_eq!(parse_key_id::<Letters>("ABC").unwrap().0, "ABC");
        let e = parse_key_id::<Letters>("AB-secret").unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::Validation);
        assert_eq!(
            e.message,
            "keyId 'AB-[redacted]' is not a name in letters ('-' is not a capital letter); \
             expected A to Z"
        );
        // Too long: refused before parsing, saying how long, and shown shortened.
        let long = format!("secret{}", "A".repeat(200));
        let e = parse_key_id::<Letters>(&long).unwrap_err();
        assert!(
            e.message.contains("206 characters long, more than 200"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("secret"), "{}", e.message);
        assert!(e.message.len() < 300, "shortened: {}", e.message);
        // Exactly MAX_LEN is parsed.
        assert!(parse_key_id::<Letters>(&"A".repeat(200)).is_ok());
    }
}
