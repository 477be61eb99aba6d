//! The six Notary key specs and the hash and signing algorithm each one implies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A key spec notation accepts. Every other key is refused (see [`crate::PublicKey`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeySpec {
    /// `RSA-2048`: RSASSA-PSS with SHA-256.
    #[serde(rename = "RSA-2048")]
    Rsa2048,
    /// `RSA-3072`: RSASSA-PSS with SHA-384.
    #[serde(rename = "RSA-3072")]
    Rsa3072,
    /// `RSA-4096`: RSASSA-PSS with SHA-512.
    #[serde(rename = "RSA-4096")]
    Rsa4096,
    /// `EC-256`: ECDSA on P-256 with SHA-256.
    #[serde(rename = "EC-256")]
    Ec256,
    /// `EC-384`: ECDSA on P-384 with SHA-384.
    #[serde(rename = "EC-384")]
    Ec384,
    /// `EC-521`: ECDSA on P-521 with SHA-512.
    #[serde(rename = "EC-521")]
    Ec521,
}

/// A hash algorithm of contract 1.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HashAlgorithm {
    /// `SHA-256`, 32 bytes.
    #[serde(rename = "SHA-256")]
    Sha256,
    /// `SHA-384`, 48 bytes.
    #[serde(rename = "SHA-384")]
    Sha384,
    /// `SHA-512`, 64 bytes.
    #[serde(rename = "SHA-512")]
    Sha512,
}

/// A signing algorithm of contract 1.0 (RSASSA-PKCS1-v1_5 is deliberately absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// `RSASSA-PSS-SHA-256`: MGF1 with SHA-256, 32-byte salt.
    #[serde(rename = "RSASSA-PSS-SHA-256")]
    RsassaPssSha256,
    /// `RSASSA-PSS-SHA-384`: MGF1 with SHA-384, 48-byte salt.
    #[serde(rename = "RSASSA-PSS-SHA-384")]
    RsassaPssSha384,
    /// `RSASSA-PSS-SHA-512`: MGF1 with SHA-512, 64-byte salt.
    #[serde(rename = "RSASSA-PSS-SHA-512")]
    RsassaPssSha512,
    /// `ECDSA-SHA-256`: fixed-width r‖s, 64 bytes.
    #[serde(rename = "ECDSA-SHA-256")]
    EcdsaSha256,
    /// `ECDSA-SHA-384`: fixed-width r‖s, 96 bytes.
    #[serde(rename = "ECDSA-SHA-384")]
    EcdsaSha384,
    /// `ECDSA-SHA-512` (on P-521): fixed-width r‖s, 132 bytes.
    #[serde(rename = "ECDSA-SHA-512")]
    EcdsaSha512,
}

impl KeySpec {
    /// The six specs, RSA first, for tests and messages that go through them all.
    pub const ALL: [KeySpec; 6] = [
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::Ec256,
        Self::Ec384,
        Self::Ec521,
    ];

    /// The name on the wire, e.g. `EC-384`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSA-2048",
            Self::Rsa3072 => "RSA-3072",
            Self::Rsa4096 => "RSA-4096",
            Self::Ec256 => "EC-256",
            Self::Ec384 => "EC-384",
            Self::Ec521 => "EC-521",
        }
    }
    /// Whether this is an RSA spec (otherwise it is an EC one).
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }
    /// RSA modulus bits or EC curve size.
    pub fn bits(self) -> usize {
        match self {
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
            Self::Ec256 => 256,
            Self::Ec384 => 384,
            Self::Ec521 => 521,
        }
    }
    /// The only hash algorithm notation pairs with this key spec.
    pub fn hash_algorithm(self) -> HashAlgorithm {
        match self {
            Self::Rsa2048 | Self::Ec256 => HashAlgorithm::Sha256,
            Self::Rsa3072 | Self::Ec384 => HashAlgorithm::Sha384,
            Self::Rsa4096 | Self::Ec521 => HashAlgorithm::Sha512,
        }
    }
    /// The signing algorithm notation expects for this key spec in generate-signature.
    pub fn signing_algorithm(self) -> SigningAlgorithm {
        match self {
            Self::Rsa2048 => SigningAlgorithm::RsassaPssSha256,
            Self::Rsa3072 => SigningAlgorithm::RsassaPssSha384,
            Self::Rsa4096 => SigningAlgorithm::RsassaPssSha512,
            Self::Ec256 => SigningAlgorithm::EcdsaSha256,
            Self::Ec384 => SigningAlgorithm::EcdsaSha384,
            Self::Ec521 => SigningAlgorithm::EcdsaSha512,
        }
    }
    /// Width of one ECDSA scalar (r or s) in bytes; `None` for RSA.
    pub fn ecdsa_scalar_len(self) -> Option<usize> {
        match self {
            Self::Ec256 => Some(32),
            Self::Ec384 => Some(48),
            Self::Ec521 => Some(66),
            _ => None,
        }
    }
}

impl HashAlgorithm {
    /// The name on the wire, e.g. `SHA-384`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }
    /// Digest length in bytes; also the PSS salt length notation requires.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
    /// The hash of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
    /// The OCI digest algorithm name (`sha256`, ...).
    pub fn oci_name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }
}

impl SigningAlgorithm {
    /// The name on the wire, e.g. `RSASSA-PSS-SHA-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RsassaPssSha256 => "RSASSA-PSS-SHA-256",
            Self::RsassaPssSha384 => "RSASSA-PSS-SHA-384",
            Self::RsassaPssSha512 => "RSASSA-PSS-SHA-512",
            Self::EcdsaSha256 => "ECDSA-SHA-256",
            Self::EcdsaSha384 => "ECDSA-SHA-384",
            Self::EcdsaSha512 => "ECDSA-SHA-512",
        }
    }
    /// The JWS `alg` name (`PS256`, `ES384`, ...).
    pub fn jws_name(self) -> &'static str {
        match self {
            Self::RsassaPssSha256 => "PS256",
            Self::RsassaPssSha384 => "PS384",
            Self::RsassaPssSha512 => "PS512",
            Self::EcdsaSha256 => "ES256",
            Self::EcdsaSha384 => "ES384",
            Self::EcdsaSha512 => "ES512",
        }
    }
    /// The COSE algorithm identifier (RFC 9053).
    pub fn cose_id(self) -> i64 {
        match self {
            Self::RsassaPssSha256 => -37,
            Self::RsassaPssSha384 => -38,
            Self::RsassaPssSha512 => -39,
            Self::EcdsaSha256 => -7,
            Self::EcdsaSha384 => -35,
            Self::EcdsaSha512 => -36,
        }
    }
}

macro_rules! wire_name {
    ($t:ty, $what:literal, $all:expr) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $all.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<_> = $all.iter().map(|v| v.as_str()).collect();
                    format!(
                        "unsupported {} '{}' (expected one of {})",
                        $what,
                        s,
                        names.join(", ")
                    )
                })
            }
        }
    };
}
wire_name!(KeySpec, "key spec", KeySpec::ALL);
wire_name!(
    HashAlgorithm,
    "hash algorithm",
    [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512
    ]
);
wire_name!(
    SigningAlgorithm,
    "signing algorithm",
    KeySpec::ALL.map(KeySpec::signing_algorithm)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_contract() {
        let rows = [
            ("RSA-2048", "SHA-256", "RSASSA-PSS-SHA-256"),
            ("RSA-3072", "SHA-384", "RSASSA-PSS-SHA-384"),
            ("RSA-4096", "SHA-512", "RSASSA-PSS-SHA-512"),
            ("EC-256", "SHA-256", "ECDSA-SHA-256"),
            ("EC-384", "SHA-384", "ECDSA-SHA-384"),
            ("EC-521", "SHA-512", "ECDSA-SHA-512"),
        ];
        for (spec, hash, alg) in rows {
            let s: KeySpec = spec.parse().unwrap();
            assert_eq!(s.hash_algorithm().as_str(), hash);
            assert_eq!(s.signing_algorithm().as_str(), alg);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{spec}\""));
        }
        let err = "RSA-1024".parse::<KeySpec>().unwrap_err();
        assert!(err.contains("RSA-1024") && err.contains("EC-521"), "{err}");
    }
}
