//! A software-key backend for tests only (feature `softkey`): the key id is the path of a
//! PKCS#8 PEM private key; its chain is `<key id>.chain.pem` when that file exists. It proves the
//! shared pipeline end to end without any real backend; no plugin ships it.

use std::path::Path;

use rsa::pkcs8::DecodePrivateKey;

use crate::backend::Backend;
use crate::config::Context;
use crate::error::{PluginError, Result};
use crate::plugin_info::{ConfigKey, PluginInfo};
use crate::signature::BackendSignature;
use crate::{KeySpec, PublicKey};

/// Test hook `ecdsa_encoding`.
pub const ECDSA_ENCODING: ConfigKey = ConfigKey::new(
    "ecdsa_encoding",
    &[],
    "der or fixed: which ECDSA encoding the backend returns (both are normalised)",
);

/// Test hook `pss_salt`.
pub const PSS_SALT: ConfigKey = ConfigKey::new(
    "pss_salt",
    &[],
    "PSS salt length the backend uses (default: the hash length), to test the self-check",
);

/// Test hook `sign_with`.
pub const SIGN_WITH: ConfigKey = ConfigKey::new(
    "sign_with",
    &[],
    "the path of another PKCS#8 key that signs instead (a backend signing with the wrong key), to test the self-checks",
);

/// Test hook `token`.
pub const TOKEN: ConfigKey = ConfigKey::new_secret(
    "token",
    &["SOFTKEY_TOKEN"],
    "a pretend credential, to prove secrets never reach output or logs",
);

/// Test hook `interrupt_marker`.
pub const INTERRUPT_MARKER: ConfigKey = ConfigKey::new(
    "interrupt_marker",
    &[],
    "with key id test:hang, a file the interrupt cleanup writes (a backend session closed)",
);

/// The softkey plugin's description; its config keys are test hooks that make the backend
/// misbehave the ways real ones do (DER ECDSA, a wrong PSS salt, the wrong key).
pub static INFO: PluginInfo = PluginInfo {
    name: "softkey",
    description: "Test-only plugin signing with a PKCS#8 key file",
    version: env!("CARGO_PKG_VERSION"),
    url: "https://github.com/notation-plugins/notation-plugins",
    config_keys: &[ECDSA_ENCODING, PSS_SALT, SIGN_WITH, TOKEN, INTERRUPT_MARKER],
    chain_sources_help: "the file <key path>.chain.pem",
};

/// A private key held in memory (test-only, so size differences between variants do not matter).
#[allow(clippy::large_enum_variant)]
pub enum SoftKey {
    /// An RSA key (any size, so tests can make the ones notation refuses).
    Rsa(rsa::RsaPrivateKey),
    /// A P-256 key.
    P256(p256::SecretKey),
    /// A P-384 key.
    P384(p384::SecretKey),
    /// A P-521 key.
    P521(p521::SecretKey),
}

impl SoftKey {
    /// Reads a PKCS#8 PEM private key (RSA, P-256, P-384 or P-521); anything else is a
    /// VALIDATION_ERROR.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let bad = |_| PluginError::validation("not a PKCS#8 RSA or P-256/384/521 private key");
        if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            return Ok(Self::Rsa(k));
        }
        if let Ok(k) = p256::SecretKey::from_pkcs8_pem(pem) {
            return Ok(Self::P256(k));
        }
        if let Ok(k) = p384::SecretKey::from_pkcs8_pem(pem) {
            return Ok(Self::P384(k));
        }
        p521::SecretKey::from_pkcs8_pem(pem)
            .map(Self::P521)
            .map_err(bad)
    }

    /// The key's public half, through [`PublicKey::from_spki_der`] so that a size notation
    /// refuses is refused here too.
    pub fn public_key(&self) -> Result<PublicKey> {
        use rsa::pkcs8::EncodePublicKey;
        let der = match self {
            Self::Rsa(k) => k.to_public_key().to_public_key_der(),
            Self::P256(k) => k.public_key().to_public_key_der(),
            Self::P384(k) => k.public_key().to_public_key_der(),
            Self::P521(k) => k.public_key().to_public_key_der(),
        }
        .map_err(|e| PluginError::generic(e.to_string()))?;
        PublicKey::from_spki_der(der.as_bytes())
    }

    /// Signs a digest as a backend would: PSS with salt = `salt` bytes, ECDSA in DER or r‖s.
    pub fn sign(
        &self,
        digest: &[u8],
        spec: KeySpec,
        salt: usize,
        der: bool,
    ) -> Result<BackendSignature> {
        use ecdsa::signature::hazmat::PrehashSigner;
        let mut rng = rand::thread_rng();
        let ec = |fixed: Vec<u8>| {
            if der {
                crate::signature::ecdsa_fixed_to_der(spec, &fixed)
                    .map(BackendSignature::EcdsaDer)
                    .ok_or_else(|| PluginError::generic("cannot DER-encode"))
            } else {
                Ok(BackendSignature::EcdsaFixed(fixed))
            }
        };
        let fail = |e: ecdsa::Error| PluginError::generic(e.to_string());
        match self {
            Self::Rsa(k) => {
                let scheme = match spec.hash_algorithm() {
                    crate::HashAlgorithm::Sha256 => rsa::Pss::new_with_salt::<sha2::Sha256>(salt),
                    crate::HashAlgorithm::Sha384 => rsa::Pss::new_with_salt::<sha2::Sha384>(salt),
                    crate::HashAlgorithm::Sha512 => rsa::Pss::new_with_salt::<sha2::Sha512>(salt),
                };
                k.sign_with_rng(&mut rng, scheme, digest)
                    .map(BackendSignature::RsaPss)
                    .map_err(|e| PluginError::generic(e.to_string()))
            }
            Self::P256(k) => {
                let s: p256::ecdsa::Signature = p256::ecdsa::SigningKey::from(k)
                    .sign_prehash(digest)
                    .map_err(fail)?;
                ec(s.to_bytes().to_vec())
            }
            Self::P384(k) => {
                let s: p384::ecdsa::Signature = p384::ecdsa::SigningKey::from(k)
                    .sign_prehash(digest)
                    .map_err(fail)?;
                ec(s.to_bytes().to_vec())
            }
            Self::P521(k) => {
                let sk = p521::ecdsa::SigningKey::from_bytes(&k.to_bytes()).map_err(fail)?;
                let s: p521::ecdsa::Signature = sk.sign_prehash(digest).map_err(fail)?;
                ec(s.to_bytes().to_vec())
            }
        }
    }
}

/// The [`Backend`] of the softkey test plugin (`examples/notation-softkey.rs`); key ids
/// `test:panic`, `test:print`, `test:hang` and `test:backtrace` exercise the runner's panic,
/// stdio, signal and backtrace handling.
pub struct SoftKeyBackend;

impl Backend for SoftKeyBackend {
    type KeyRef = crate::PlainKeyId;
    type Key = SoftKey;

    fn connect(ctx: &Context, _key: crate::PlainKeyId) -> Result<Self> {
        // A pretend credential: read and dropped (zeroized), like a backend's token.
        let _token = ctx.config.get_secret(&TOKEN);
        match ctx.key_id.as_str() {
            // Test hooks for the runner: a panic, and a library that prints to stdio.
            "test:panic" => panic!("deliberate test panic"),
            "test:print" => {
                println!("stray text a library printed on stdout");
                eprintln!("stray text a library printed on stderr");
            }
            // What a library's error type gets from std::backtrace::Backtrace::capture.
            "test:backtrace" => {
                let status = std::backtrace::Backtrace::capture().status();
                return Err(PluginError::generic(format!(
                    "a library backtrace is {status:?}"
                )));
            }
            // A backend call that never ends, after opening something a signal must close.
            "test:hang" => {
                if let Some(marker) = ctx.config.get(&INTERRUPT_MARKER) {
                    crate::on_interrupt(move || {
                        let _ = std::fs::write(&marker, "closed");
                    });
                }
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
            _ => {}
        }
        tracing::debug!(config = ?ctx.config, "softkey connected");
        Ok(Self)
    }

    fn resolve_key(&mut self, ctx: &Context) -> Result<(SoftKey, PublicKey)> {
        let pem = std::fs::read_to_string(&ctx.key_id).map_err(|e| {
            PluginError::validation(format!("key '{}' not found: {e}", ctx.key_name()))
        })?;
        let key = SoftKey::from_pkcs8_pem(&pem)?;
        let public = key.public_key()?;
        Ok((key, public))
    }

    fn sign(
        &mut self,
        ctx: &Context,
        key: &SoftKey,
        payload: &crate::Payload,
    ) -> Result<BackendSignature> {
        let (spec, digest) = (payload.spec, payload.digest);
        let der = ctx
            .config
            .choice(&ECDSA_ENCODING, &["der", "fixed"])?
            .is_some_and(|(v, _)| v == "der");
        let salt = match ctx.config.number(&PSS_SALT, 0..=1024)? {
            Some((salt, _)) => salt,
            None => spec.hash_algorithm().output_len(),
        };
        if let Some(path) = ctx.config.get(&SIGN_WITH) {
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| PluginError::validation(format!("sign_with '{path}': {e}")))?;
            return SoftKey::from_pkcs8_pem(&pem)?.sign(digest, spec, salt, der);
        }
        key.sign(digest, spec, salt, der)
    }

    fn certificate_chain(&mut self, ctx: &Context, _key: &SoftKey) -> Result<Vec<Vec<u8>>> {
        let path = format!("{}.chain.pem", ctx.key_id);
        if !Path::new(&path).exists() {
            return Ok(Vec::new());
        }
        Ok(crate::chain::load_file(Path::new(&path))?
            .into_iter()
            .map(|c| c.der().to_vec())
            .collect())
    }
}
