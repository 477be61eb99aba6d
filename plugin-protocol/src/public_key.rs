//! Public keys: what key a backend holds, which Notary key spec it is, and whether two keys are
//! the same. Every key notation cannot use is refused with a message naming what it is.

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use rsa::traits::PublicKeyParts;
use spki::{DecodePublicKey, SubjectPublicKeyInfoOwned};

use crate::error::{PluginError, Result};
use crate::KeySpec;

pub(crate) mod oid {
    use const_oid::ObjectIdentifier as O;
    pub const RSA_ENCRYPTION: O = O::new_unwrap("1.2.840.113549.1.1.1");
    pub const RSASSA_PSS: O = O::new_unwrap("1.2.840.113549.1.1.10");
    pub const EC_PUBLIC_KEY: O = O::new_unwrap("1.2.840.10045.2.1");
    pub const P256: O = O::new_unwrap("1.2.840.10045.3.1.7");
    pub const P384: O = O::new_unwrap("1.3.132.0.34");
    pub const P521: O = O::new_unwrap("1.3.132.0.35");
    pub const SECP256K1: O = O::new_unwrap("1.3.132.0.10");
    pub const SECP224R1: O = O::new_unwrap("1.3.132.0.33");
    pub const P192: O = O::new_unwrap("1.2.840.10045.3.1.1");
    pub const ED25519: O = O::new_unwrap("1.3.101.112");
    pub const ED448: O = O::new_unwrap("1.3.101.113");
    pub const X25519: O = O::new_unwrap("1.3.101.110");
    pub const X448: O = O::new_unwrap("1.3.101.111");
    pub const DSA: O = O::new_unwrap("1.2.840.10040.4.1");
    pub const SM2: O = O::new_unwrap("1.2.156.10197.1.301");
    pub const BRAINPOOL_P256R1: O = O::new_unwrap("1.3.36.3.3.2.8.1.1.7");
    pub const BRAINPOOL_P384R1: O = O::new_unwrap("1.3.36.3.3.2.8.1.1.11");
    pub const BRAINPOOL_P512R1: O = O::new_unwrap("1.3.36.3.3.2.8.1.1.13");
}

/// A public key of one of the six Notary key specs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// An RSA key of 2048, 3072 or 4096 bits (the constructors refuse any other size).
    Rsa(rsa::RsaPublicKey),
    /// An EC key on P-256.
    P256(p256::PublicKey),
    /// An EC key on P-384.
    P384(p384::PublicKey),
    /// An EC key on P-521.
    P521(p521::PublicKey),
}

/// The DER-encoded named-curve OID of an EC key spec (PKCS#11 CKA_EC_PARAMS, for key
/// generation); `None` for RSA specs.
pub fn named_curve_der(spec: KeySpec) -> Option<Vec<u8>> {
    let curve = match spec {
        KeySpec::Ec256 => oid::P256,
        KeySpec::Ec384 => oid::P384,
        KeySpec::Ec521 => oid::P521,
        _ => return None,
    };
    curve.to_der().ok()
}

/// Human name of an elliptic curve OID, for messages about keys we cannot use.
pub(crate) fn curve_name(curve: &ObjectIdentifier) -> String {
    let name = match *curve {
        oid::P256 => "P-256",
        oid::P384 => "P-384",
        oid::P521 => "P-521",
        oid::SECP256K1 => "secp256k1",
        oid::SECP224R1 => "P-224",
        oid::P192 => "P-192",
        oid::BRAINPOOL_P256R1 => "brainpoolP256r1",
        oid::BRAINPOOL_P384R1 => "brainpoolP384r1",
        oid::BRAINPOOL_P512R1 => "brainpoolP512r1",
        oid::SM2 => "SM2",
        _ => return format!("curve {curve}"),
    };
    name.to_owned()
}

/// The VALIDATION_ERROR for a key notation cannot sign with, naming what it is (`what`:
/// "an EC secp256k1 key", "an HMAC key (KMS key spec HMAC_256)"), worded like every refusal of
/// [`PublicKey::from_spki_der`]; for backends that know a key's type before its public key.
pub fn unsupported_key(what: impl std::fmt::Display) -> PluginError {
    unsupported(what)
}

fn unsupported(what: impl std::fmt::Display) -> PluginError {
    PluginError::validation(format!(
        "the key is {what}, which notation cannot sign with; use an RSA-2048, RSA-3072, RSA-4096, \
         EC P-256, P-384 or P-521 signing key"
    ))
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo. Keys outside the six key specs are a
    /// VALIDATION_ERROR that names the key (e.g. "an RSA-1024 key", "an EC secp256k1 key").
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let spki = SubjectPublicKeyInfoOwned::from_der(der).map_err(|e| {
            PluginError::generic(format!(
                "the backend returned a public key that is not a valid SubjectPublicKeyInfo: {e}"
            ))
        })?;
        let alg = spki.algorithm.oid;
        match alg {
            oid::RSA_ENCRYPTION | oid::RSASSA_PSS => {
                let key = rsa::pkcs1::DecodeRsaPublicKey::from_pkcs1_der(
                    spki.subject_public_key.raw_bytes(),
                )
                .map_err(|e| PluginError::generic(format!("invalid RSA public key: {e}")))?;
                let key: rsa::RsaPublicKey = key;
                match key.n().bits() {
                    2048 | 3072 | 4096 => Ok(Self::Rsa(key)),
                    bits => Err(unsupported(format_args!("an RSA-{bits} key"))),
                }
            }
            oid::EC_PUBLIC_KEY => {
                let curve: ObjectIdentifier = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as().ok())
                    .ok_or_else(|| {
                        PluginError::generic("EC public key without a named curve parameter")
                    })?;
                let point = spki.subject_public_key.raw_bytes();
                let bad = |e: &dyn std::fmt::Display| {
                    PluginError::generic(format!(
                        "invalid {} public key point: {e}",
                        curve_name(&curve)
                    ))
                };
                match curve {
                    oid::P256 => p256::PublicKey::from_sec1_bytes(point)
                        .map(Self::P256)
                        .map_err(|e| bad(&e)),
                    oid::P384 => p384::PublicKey::from_sec1_bytes(point)
                        .map(Self::P384)
                        .map_err(|e| bad(&e)),
                    oid::P521 => p521::PublicKey::from_sec1_bytes(point)
                        .map(Self::P521)
                        .map_err(|e| bad(&e)),
                    other => Err(unsupported(format_args!(
                        "an EC {} key",
                        curve_name(&other)
                    ))),
                }
            }
            oid::ED25519 => Err(unsupported("an Ed25519 key")),
            oid::ED448 => Err(unsupported("an Ed448 key")),
            oid::X25519 | oid::X448 => Err(unsupported("a key-agreement (X25519/X448) key")),
            oid::DSA => Err(unsupported("a DSA key")),
            oid::SM2 => Err(unsupported("an SM2 key")),
            other => Err(unsupported(format_args!("a key of algorithm {other}"))),
        }
    }

    /// Parses a PEM `PUBLIC KEY` block.
    pub fn from_spki_pem(pem: &str) -> Result<Self> {
        let doc = spki::Document::from_public_key_pem(pem)
            .map_err(|e| PluginError::generic(format!("invalid PEM public key: {e}")))?;
        Self::from_spki_der(doc.as_bytes())
    }

    /// Builds the key from RSA components (big-endian modulus and exponent), as PKCS#11 and
    /// JWK backends report them.
    pub fn from_rsa_components(modulus: &[u8], exponent: &[u8]) -> Result<Self> {
        let key = rsa::RsaPublicKey::new(
            rsa::BigUint::from_bytes_be(modulus),
            rsa::BigUint::from_bytes_be(exponent),
        )
        .map_err(|e| PluginError::generic(format!("invalid RSA public key: {e}")))?;
        let der = rsa::pkcs8::EncodePublicKey::to_public_key_der(&key)
            .map_err(|e| PluginError::generic(format!("cannot encode RSA public key: {e}")))?;
        // Going through SPKI applies the one size rule (and its message) to every source.
        Self::from_spki_der(der.as_bytes())
    }

    /// Builds the key from a named curve and an uncompressed SEC1 point, as PKCS#11
    /// (CKA_EC_PARAMS/CKA_EC_POINT) and JWK backends report them. `curve_oid_der` is the DER
    /// encoding of the curve OID; any curve is accepted here so that refusals name it.
    pub fn from_ec_point(curve_oid_der: &[u8], point: &[u8]) -> Result<Self> {
        let curve = ObjectIdentifier::from_der(curve_oid_der)
            .map_err(|e| PluginError::generic(format!("invalid EC curve parameters: {e}")))?;
        let spki = spki::SubjectPublicKeyInfoOwned {
            algorithm: spki::AlgorithmIdentifierOwned {
                oid: oid::EC_PUBLIC_KEY,
                parameters: Some(der::Any::from(&curve)),
            },
            subject_public_key: der::asn1::BitString::from_bytes(point)
                .map_err(|e| PluginError::generic(format!("invalid EC point: {e}")))?,
        };
        let der = spki
            .to_der()
            .map_err(|e| PluginError::generic(format!("cannot encode EC public key: {e}")))?;
        Self::from_spki_der(&der)
    }

    /// The key spec describe-key answers for this key.
    pub fn key_spec(&self) -> KeySpec {
        match self {
            Self::Rsa(k) => match k.n().bits() {
                2048 => KeySpec::Rsa2048,
                3072 => KeySpec::Rsa3072,
                _ => KeySpec::Rsa4096, // constructors admit only 2048/3072/4096
            },
            Self::P256(_) => KeySpec::Ec256,
            Self::P384(_) => KeySpec::Ec384,
            Self::P521(_) => KeySpec::Ec521,
        }
    }

    /// DER SubjectPublicKeyInfo.
    pub fn to_spki_der(&self) -> Vec<u8> {
        use spki::EncodePublicKey;
        let doc = match self {
            Self::Rsa(k) => k.to_public_key_der(),
            Self::P256(k) => k.to_public_key_der(),
            Self::P384(k) => k.to_public_key_der(),
            Self::P521(k) => k.to_public_key_der(),
        };
        doc.map(|d| d.into_vec())
            .expect("encoding a valid public key cannot fail")
    }

    /// PEM `PUBLIC KEY`.
    pub fn to_spki_pem(&self) -> String {
        der::pem::encode_string("PUBLIC KEY", der::pem::LineEnding::LF, &self.to_spki_der())
            .expect("PEM encoding of DER cannot fail")
    }

    /// A short fingerprint for messages: `EC-384 key (SPKI sha256 ab12cd34…)`.
    pub fn describe(&self) -> String {
        let digest = crate::HashAlgorithm::Sha256.digest(&self.to_spki_der());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{} key (SPKI sha256 {hex}…)", self.key_spec())
    }
}

impl TryFrom<&spki::SubjectPublicKeyInfoOwned> for PublicKey {
    type Error = PluginError;
    fn try_from(spki: &spki::SubjectPublicKeyInfoOwned) -> Result<Self> {
        let der = spki
            .to_der()
            .map_err(|e| PluginError::generic(format!("cannot encode public key: {e}")))?;
        Self::from_spki_der(&der)
    }
}
