//! Key references: a backend's key id, parsed once before any I/O, and the form of it that
//! messages and logs may show.

use crate::error::Result;

/// What a backend's key id means to it (a PKCS#11 URI, a KMS key or alias ARN, a Transit key
/// name and version, a PIV slot). [`crate::Context::for_key`] parses the keyId with it once,
/// before any I/O, and names the key in every message and log line by [`KeyReference::redacted`]
/// alone ([`crate::Context::key_name`]); the parsed reference goes to [`crate::Backend::connect`].
pub trait KeyReference: Sized {
    /// Parses a key id. A key id that is not one is a `VALIDATION_ERROR` saying what is wrong,
    /// which shows the key id only in its [`KeyReference::redacted`] form.
    fn parse(key_id: &str) -> Result<Self>;

    /// `key_id` as messages and logs may show it. The default shows it as it is; a backend whose
    /// key ids can carry a secret (a PKCS#11 URI's `pin-value`, a password in a URL) replaces it
    /// here, whatever its case or position.
    fn redacted(key_id: &str) -> String {
        key_id.to_owned()
    }
}

/// A key id used as it is: for a backend whose key ids need no parsing and hold no secret (the
/// test backends' key files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlainKeyId(pub String);

impl KeyReference for PlainKeyId {
    fn parse(key_id: &str) -> Result<Self> {
        Ok(Self(key_id.to_owned()))
    }
}
