//! Signature encodings: what backends return, what notation accepts, and the checks that tell
//! one from the other.

use std::fmt;

use rsa::traits::PublicKeyParts;

use crate::{HashAlgorithm, KeySpec, PublicKey};

/// A signature as a backend produced it. Backends say which ECDSA encoding they return, so the
/// shared code never has to guess from the length.
#[derive(Clone, PartialEq, Eq)]
pub enum BackendSignature {
    /// RSASSA-PSS, salt length = hash length, MGF1 with the same hash.
    RsaPss(Vec<u8>),
    /// ECDSA as ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }` (AWS KMS, Vault's default, PIV).
    EcdsaDer(Vec<u8>),
    /// ECDSA as fixed-width r‖s (IEEE P1363; PKCS#11 CKM_ECDSA, JWS).
    EcdsaFixed(Vec<u8>),
}

impl BackendSignature {
    /// RSASSA-PSS for an RSA spec, ASN.1 DER ECDSA for an EC spec: what cloud KMSs that sign a
    /// digest return (AWS KMS, Google Cloud KMS).
    pub fn pss_or_der_ecdsa(spec: KeySpec, signature: Vec<u8>) -> Self {
        if spec.is_rsa() {
            Self::RsaPss(signature)
        } else {
            Self::EcdsaDer(signature)
        }
    }

    /// RSASSA-PSS for an RSA spec, fixed-width r‖s ECDSA for an EC spec: what JWS-minded
    /// services return (Azure Key Vault, Vault Transit with `marshaling_algorithm=jws`).
    pub fn pss_or_fixed_ecdsa(spec: KeySpec, signature: Vec<u8>) -> Self {
        if spec.is_rsa() {
            Self::RsaPss(signature)
        } else {
            Self::EcdsaFixed(signature)
        }
    }
}

impl fmt::Debug for BackendSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, len) = match self {
            Self::RsaPss(b) => ("RsaPss", b.len()),
            Self::EcdsaDer(b) => ("EcdsaDer", b.len()),
            Self::EcdsaFixed(b) => ("EcdsaFixed", b.len()),
        };
        write!(f, "{kind}({len} bytes)")
    }
}

/// Why a signature is not what notation accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureProblem {
    /// An ECDSA signature in ASN.1 DER where notation requires r‖s.
    EcdsaDer {
        /// Bytes the backend returned.
        len: usize,
        /// Bytes of r‖s for the key's curve.
        expected: usize,
    },
    /// An ECDSA signature of the wrong width.
    EcdsaLength {
        /// Bytes the backend returned.
        len: usize,
        /// Bytes of r‖s for the key's curve.
        expected: usize,
    },
    /// An ECDSA signature the backend declared ASN.1 DER that is not DER.
    EcdsaNotDer {
        /// Bytes the backend returned.
        len: usize,
        /// Bytes of r‖s for the key's curve (equal to `len`: the adapter names the wrong
        /// encoding).
        expected: usize,
    },
    /// An RSA-PSS signature whose salt is not the hash length.
    PssSaltLength {
        /// The salt length, in bytes, the signature verifies with.
        salt: usize,
        /// The hash length, in bytes, notation requires.
        expected: usize,
    },
    /// An RSA signature made with PKCS#1 v1.5 padding instead of PSS.
    RsaPkcs1v15,
    /// A signature whose length does not fit the RSA modulus.
    RsaLength {
        /// Bytes the backend returned.
        len: usize,
        /// The modulus length in bytes.
        expected: usize,
    },
    /// A signature that fits its encoding but does not verify with this key over this digest.
    DoesNotVerify,
    /// The signature and the key are of different kinds (an ECDSA signature for an RSA key...).
    KindMismatch {
        /// `ECDSA` or `RSA`: what the signature is.
        signature: &'static str,
        /// What the key is.
        key: KeySpec,
    },
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcdsaDer { len, expected } => write!(
                f,
                "the ECDSA signature is ASN.1 DER ({len} bytes); notation requires fixed-width r‖s ({expected} bytes)"
            ),
            Self::EcdsaNotDer { len, expected } if len == expected => write!(
                f,
                "the ECDSA signature was declared ASN.1 DER but is not DER; its {len} bytes have \
                 the size of fixed-width r‖s, so the backend adapter names the wrong encoding"
            ),
            Self::EcdsaNotDer { len, expected } => write!(
                f,
                "the ECDSA signature was declared ASN.1 DER but is not DER, nor fixed-width r‖s \
                 ({len} bytes; r‖s for this key is {expected} bytes)"
            ),
            Self::EcdsaLength { len, expected } => write!(
                f,
                "the ECDSA signature is {len} bytes; notation requires fixed-width r‖s of exactly {expected} bytes"
            ),
            Self::PssSaltLength { salt, expected } => write!(
                f,
                "the RSASSA-PSS signature uses a {salt}-byte salt; notation requires the salt length to equal the hash length ({expected} bytes) — it would pass JWS verification but fail COSE"
            ),
            Self::RsaPkcs1v15 => f.write_str(
                "the RSA signature uses PKCS#1 v1.5 padding; notation requires RSASSA-PSS",
            ),
            Self::RsaLength { len, expected } => write!(
                f,
                "the RSA signature is {len} bytes; an RSA signature for this key is exactly {expected} bytes"
            ),
            Self::DoesNotVerify => f.write_str("the signature does not verify with the public key over this payload"),
            Self::KindMismatch { signature, key } => {
                write!(f, "a {signature} signature cannot belong to a {key} key")
            }
        }
    }
}

/// Turns what the backend returned into the bytes notation expects for `spec`: ECDSA becomes
/// fixed-width r‖s; RSA-PSS passes through (its salt is checked by [`verify_digest`]).
pub fn normalise(spec: KeySpec, sig: BackendSignature) -> Result<Vec<u8>, SignatureProblem> {
    match (spec.ecdsa_scalar_len(), sig) {
        (None, BackendSignature::RsaPss(bytes)) => Ok(bytes),
        (Some(n), BackendSignature::EcdsaFixed(bytes)) => {
            if bytes.len() == 2 * n {
                Ok(bytes)
            } else if ecdsa_der_to_fixed(spec, &bytes).is_some() {
                // Name DER when it is DER: the classic mistake.
                Err(SignatureProblem::EcdsaDer {
                    len: bytes.len(),
                    expected: 2 * n,
                })
            } else {
                Err(SignatureProblem::EcdsaLength {
                    len: bytes.len(),
                    expected: 2 * n,
                })
            }
        }
        (Some(n), BackendSignature::EcdsaDer(bytes)) => {
            ecdsa_der_to_fixed(spec, &bytes).ok_or(SignatureProblem::EcdsaNotDer {
                len: bytes.len(),
                expected: 2 * n,
            })
        }
        (None, _) => Err(SignatureProblem::KindMismatch {
            signature: "ECDSA",
            key: spec,
        }),
        (Some(_), BackendSignature::RsaPss(_)) => Err(SignatureProblem::KindMismatch {
            signature: "RSA",
            key: spec,
        }),
    }
}

/// ASN.1 DER ECDSA signature to fixed-width r‖s for the curve of `spec`.
pub fn ecdsa_der_to_fixed(spec: KeySpec, der: &[u8]) -> Option<Vec<u8>> {
    match spec {
        KeySpec::Ec256 => p256::ecdsa::Signature::from_der(der)
            .ok()
            .map(|s| s.to_bytes().to_vec()),
        KeySpec::Ec384 => p384::ecdsa::Signature::from_der(der)
            .ok()
            .map(|s| s.to_bytes().to_vec()),
        KeySpec::Ec521 => p521::ecdsa::Signature::from_der(der)
            .ok()
            .map(|s| s.to_bytes().to_vec()),
        _ => None,
    }
}

/// Fixed-width r‖s to ASN.1 DER (for certificate and CSR signatures, which X.509 wants in DER).
pub fn ecdsa_fixed_to_der(spec: KeySpec, fixed: &[u8]) -> Option<Vec<u8>> {
    match spec {
        KeySpec::Ec256 => p256::ecdsa::Signature::from_slice(fixed)
            .ok()
            .map(|s| s.to_der().as_bytes().to_vec()),
        KeySpec::Ec384 => p384::ecdsa::Signature::from_slice(fixed)
            .ok()
            .map(|s| s.to_der().as_bytes().to_vec()),
        KeySpec::Ec521 => p521::ecdsa::Signature::from_slice(fixed)
            .ok()
            .map(|s| s.to_der().as_bytes().to_vec()),
        _ => None,
    }
}

/// Verifies a notation signature (PSS with salt = hash length, or fixed-width r‖s) over a
/// digest computed with `hash`. Failures say exactly what is wrong with the signature.
pub fn verify_digest(
    key: &PublicKey,
    hash: HashAlgorithm,
    digest: &[u8],
    sig: &[u8],
) -> Result<(), SignatureProblem> {
    match key {
        PublicKey::Rsa(k) => verify_rsa_pss(k, hash, digest, sig),
        PublicKey::P256(k) => {
            check_fixed_len(sig, 32)?;
            let vk = p256::ecdsa::VerifyingKey::from(k);
            let s = p256::ecdsa::Signature::from_slice(sig)
                .map_err(|_| SignatureProblem::DoesNotVerify)?;
            ecdsa::signature::hazmat::PrehashVerifier::verify_prehash(&vk, digest, &s)
                .map_err(|_| SignatureProblem::DoesNotVerify)
        }
        PublicKey::P384(k) => {
            check_fixed_len(sig, 48)?;
            let vk = p384::ecdsa::VerifyingKey::from(k);
            let s = p384::ecdsa::Signature::from_slice(sig)
                .map_err(|_| SignatureProblem::DoesNotVerify)?;
            ecdsa::signature::hazmat::PrehashVerifier::verify_prehash(&vk, digest, &s)
                .map_err(|_| SignatureProblem::DoesNotVerify)
        }
        PublicKey::P521(k) => {
            check_fixed_len(sig, 66)?;
            let vk = p521::ecdsa::VerifyingKey::from_affine(*k.as_affine())
                .map_err(|_| SignatureProblem::DoesNotVerify)?;
            let s = p521::ecdsa::Signature::from_slice(sig)
                .map_err(|_| SignatureProblem::DoesNotVerify)?;
            ecdsa::signature::hazmat::PrehashVerifier::verify_prehash(&vk, digest, &s)
                .map_err(|_| SignatureProblem::DoesNotVerify)
        }
    }
}

fn check_fixed_len(sig: &[u8], scalar: usize) -> Result<(), SignatureProblem> {
    if sig.len() == 2 * scalar {
        return Ok(());
    }
    // Name DER explicitly: it is the classic mistake.
    if sig.first() == Some(&0x30) && sig.len() > 8 && sig.len() <= 2 * scalar + 9 {
        return Err(SignatureProblem::EcdsaDer {
            len: sig.len(),
            expected: 2 * scalar,
        });
    }
    Err(SignatureProblem::EcdsaLength {
        len: sig.len(),
        expected: 2 * scalar,
    })
}

fn pss_verify(
    key: &rsa::RsaPublicKey,
    hash: HashAlgorithm,
    digest: &[u8],
    sig: &[u8],
    salt: usize,
) -> bool {
    let scheme = match hash {
        HashAlgorithm::Sha256 => rsa::Pss::new_with_salt::<sha2::Sha256>(salt),
        HashAlgorithm::Sha384 => rsa::Pss::new_with_salt::<sha2::Sha384>(salt),
        HashAlgorithm::Sha512 => rsa::Pss::new_with_salt::<sha2::Sha512>(salt),
    };
    key.verify(scheme, digest, sig).is_ok()
}

fn verify_rsa_pss(
    key: &rsa::RsaPublicKey,
    hash: HashAlgorithm,
    digest: &[u8],
    sig: &[u8],
) -> Result<(), SignatureProblem> {
    if sig.len() != key.size() {
        return Err(SignatureProblem::RsaLength {
            len: sig.len(),
            expected: key.size(),
        });
    }
    let expected = hash.output_len();
    if pss_verify(key, hash, digest, sig, expected) {
        return Ok(());
    }
    // Diagnose: the salt lengths backends are known to use (none, SHA-1's, the other hashes',
    // and the maximum, which Vault Transit and OpenSSL's "auto" pick).
    let max = key.size().saturating_sub(expected + 2);
    for salt in [0, 20, 32, 48, 64, max] {
        if salt != expected && salt <= max && pss_verify(key, hash, digest, sig, salt) {
            return Err(SignatureProblem::PssSaltLength { salt, expected });
        }
    }
    let pkcs1 = match hash {
        HashAlgorithm::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
        HashAlgorithm::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
        HashAlgorithm::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
    };
    if key.verify(pkcs1, digest, sig).is_ok() {
        return Err(SignatureProblem::RsaPkcs1v15);
    }
    Err(SignatureProblem::DoesNotVerify)
}
