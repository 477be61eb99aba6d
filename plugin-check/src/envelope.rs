//! What the two Notary envelope formats have in common once parsed, and the header names they
//! share.

use std::fmt;
use std::time::SystemTime;

use plugin_protocol::SigningAlgorithm;

pub const SIGNING_SCHEME: &str = "io.cncf.notary.signingScheme";
pub const SIGNING_TIME: &str = "io.cncf.notary.signingTime";
pub const AUTHENTIC_SIGNING_TIME: &str = "io.cncf.notary.authenticSigningTime";
pub const EXPIRY: &str = "io.cncf.notary.expiry";
pub const SIGNING_AGENT: &str = "io.cncf.notary.signingAgent";
/// The signing scheme of a signature without a timestamp authority.
pub const SCHEME_X509: &str = "notary.x509";
pub const SCHEME_X509_SIGNING_AUTHORITY: &str = "notary.x509.signingAuthority";

/// What this tool writes as `io.cncf.notary.signingAgent`.
pub fn signing_agent() -> String {
    format!("notation-plugin-check/{}", env!("CARGO_PKG_VERSION"))
}

/// The two envelope formats of `notation sign --signature-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jws,
    Cose,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Self::Jws => "jws",
            Self::Cose => "cose",
        }
    }
    /// The media type notation stores the envelope under.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jws => "application/jose+json",
            Self::Cose => "application/cose",
        }
    }
    /// Guesses the format of an envelope file: JWS is a JSON object, COSE a CBOR tag.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Some(Self::Jws),
            // CBOR major type 6 (tag), 18 = COSE_Sign1; or an untagged array, reported later.
            Some(0xd2) | Some(0x84) => Some(Self::Cose),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Jws => "JWS",
            Self::Cose => "COSE",
        })
    }
}

/// A parsed envelope whose headers passed notation-core-go's format checks; the signature,
/// chain and payload are not yet verified.
#[derive(Clone, Debug)]
pub struct SignedEnvelope {
    pub format: Format,
    pub algorithm: SigningAlgorithm,
    pub signing_time: SystemTime,
    pub expiry: Option<SystemTime>,
    /// The payload bytes (the Notary payload JSON).
    pub payload: Vec<u8>,
    /// Exactly the bytes the signature covers.
    pub signing_input: Vec<u8>,
    pub signature: Vec<u8>,
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
    pub signing_agent: Option<String>,
}

/// The signing algorithm named by a JWS `alg` or a COSE algorithm id.
pub fn algorithm_from_jws(alg: &str) -> Option<SigningAlgorithm> {
    plugin_protocol::KeySpec::ALL
        .map(|s| s.signing_algorithm())
        .into_iter()
        .find(|a| a.jws_name() == alg)
}

pub fn algorithm_from_cose(id: i64) -> Option<SigningAlgorithm> {
    plugin_protocol::KeySpec::ALL
        .map(|s| s.signing_algorithm())
        .into_iter()
        .find(|a| a.cose_id() == id)
}
