//! The `Backend` adapter: getPublicKey (one round trip: algorithm and PEM, both CRC32C-checked),
//! asymmetricSign of the digest with the CRC32C integrity fields sent and checked both ways, and
//! the certificate chain from a Secret Manager secret version. A key name without a version is
//! resolved by listing its versions (its only enabled one).

use google_cloud_kms_v1::model::crypto_key_version::{
    CryptoKeyVersionAlgorithm as Algorithm, CryptoKeyVersionState as State,
};
use google_cloud_kms_v1::model::{CryptoKeyVersion, Digest};
use plugin_protocol::{
    Backend, BackendSignature, Context, KeySpec, Payload, PluginError, PublicKey, Result, Retry,
};

use crate::gcp::{self, Session};
use crate::keyref::KeyRef;
use crate::CERTIFICATE_CHAIN_SECRET;

/// The algorithms notation can use, for messages.
const SUPPORTED: &str = "EC_SIGN_P256_SHA256 (EC-256), EC_SIGN_P384_SHA384 (EC-384), \
     RSA_SIGN_PSS_2048_SHA256 (RSA-2048) or RSA_SIGN_PSS_4096_SHA512 (RSA-4096)";

/// Most versions listed when resolving a key name without a version.
const MAX_LISTED_VERSIONS: usize = 1000;

pub struct GcpKms {
    session: Session,
    key_ref: KeyRef,
}

/// A resolved key version: its full resource name.
pub struct KmsKey {
    version: String,
}

/// The Notary key spec of a Cloud KMS algorithm, or why notation cannot sign with it.
pub fn notary_spec(algorithm: &Algorithm) -> std::result::Result<KeySpec, String> {
    use Algorithm as A;
    Ok(match algorithm {
        A::EcSignP256Sha256 => KeySpec::Ec256,
        A::EcSignP384Sha384 => KeySpec::Ec384,
        A::RsaSignPss2048Sha256 => KeySpec::Rsa2048,
        A::RsaSignPss4096Sha512 => KeySpec::Rsa4096,
        A::RsaSignPss3072Sha256 => {
            return Err(
                "notation pairs RSA-3072 with SHA-384 (RSASSA-PSS-SHA-384) and this key \
                        version signs only SHA-256 digests"
                    .into(),
            )
        }
        A::RsaSignPss4096Sha256 => {
            return Err(
                "notation pairs RSA-4096 with SHA-512 (RSASSA-PSS-SHA-512) and this key \
                        version signs only SHA-256 digests"
                    .into(),
            )
        }
        A::RsaSignPkcs12048Sha256
        | A::RsaSignPkcs13072Sha256
        | A::RsaSignPkcs14096Sha256
        | A::RsaSignPkcs14096Sha512 => {
            return Err(
                "it signs with RSASSA-PKCS1-v1_5, which notation does not accept for \
                        artifact signatures (it requires RSASSA-PSS)"
                    .into(),
            )
        }
        A::RsaSignRawPkcs12048 | A::RsaSignRawPkcs13072 | A::RsaSignRawPkcs14096 => {
            return Err(
                "it makes raw PKCS#1 v1.5 signatures, which notation does not accept \
                        (it requires RSASSA-PSS)"
                    .into(),
            )
        }
        A::EcSignSecp256K1Sha256 => {
            return Err("it is an EC secp256k1 key, a curve notation does not support".into())
        }
        A::EcSignEd25519 => {
            return Err("it is an Ed25519 key, which notation does not support".into())
        }
        A::RsaDecryptOaep2048Sha256
        | A::RsaDecryptOaep3072Sha256
        | A::RsaDecryptOaep4096Sha256
        | A::RsaDecryptOaep4096Sha512
        | A::RsaDecryptOaep2048Sha1
        | A::RsaDecryptOaep3072Sha1
        | A::RsaDecryptOaep4096Sha1
        | A::MlKem768
        | A::MlKem1024
        | A::KemXwing => {
            return Err(
                "it is an asymmetric decryption (or key encapsulation) key, which cannot \
                        sign"
                    .into(),
            )
        }
        A::GoogleSymmetricEncryption
        | A::Aes128Gcm
        | A::Aes256Gcm
        | A::Aes128Cbc
        | A::Aes256Cbc
        | A::Aes128Ctr
        | A::Aes256Ctr
        | A::Aes256Kwp
        | A::ExternalSymmetricEncryption => {
            return Err("it is a symmetric encryption key, which cannot make signatures".into())
        }
        A::HmacSha256 | A::HmacSha1 | A::HmacSha384 | A::HmacSha512 | A::HmacSha224 => {
            return Err("it is a symmetric HMAC key, which cannot make signatures".into())
        }
        other if algorithm_name(other).starts_with("PQ_SIGN") => {
            return Err("it is a post-quantum signing key, which notation does not support".into())
        }
        _ => return Err("notation does not know this algorithm".into()),
    })
}

pub fn algorithm_name(a: &Algorithm) -> String {
    a.name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("algorithm {}", a.value().unwrap_or(-1)))
}

fn state_name(s: &State) -> String {
    s.name()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("state {}", s.value().unwrap_or(-1)))
}

/// Why a key version in `state` cannot sign, and what to do; `None` when it is enabled.
fn state_problem(state: &State) -> Option<&'static str> {
    Some(match state {
        State::Enabled => return None,
        State::Disabled => {
            "it is disabled; enable it (gcloud kms keys versions enable) or use another version"
        }
        State::Destroyed => "it is destroyed; its key material is gone, use another version",
        State::DestroyScheduled => {
            "it is scheduled for destruction; restore it (gcloud kms keys versions restore) and \
             enable it, or use another version"
        }
        State::PendingGeneration => "it is still being generated; try again in a moment",
        State::PendingImport => "its key material is still being imported; try again later",
        State::ImportFailed => "its import failed; import the key material again",
        State::GenerationFailed => "its generation failed; create a new version",
        State::PendingExternalDestruction => "it is being destroyed in the external key manager",
        _ => "it is not enabled",
    })
}

fn refuse_algorithm(target: &str, algorithm: &Algorithm, why: &str) -> PluginError {
    let name = algorithm_name(algorithm);
    PluginError::validation(format!(
        "{target} has algorithm {name}, which notation cannot sign with: {why}; use a key \
         version with {SUPPORTED}"
    ))
    .with_metadata("algorithm", name)
}

fn refuse_state(target: &str, state: &State, problem: &str) -> PluginError {
    let name = state_name(state);
    PluginError::validation(format!(
        "{target} is in state {name} and cannot sign: {problem}"
    ))
    .with_metadata("state", name)
}

/// CRC32C (Castagnoli) of `data`, as Cloud KMS computes it.
pub fn crc32c(data: &[u8]) -> i64 {
    i64::from(crc32c::crc32c(data))
}

/// Google's documented integrity check: a response whose checksum does not match its data was
/// corrupted in transit, and is retried.
fn integrity(what: &str, target: &str) -> PluginError {
    PluginError::generic(format!(
        "the {what} for {target} failed its CRC32C integrity check (corrupted in transit)"
    ))
    .with_retry(Retry::Transient)
}

impl GcpKms {
    /// Runs one Cloud KMS call on `target`, which needs IAM `permission`.
    fn kms<T>(
        &self,
        method: &'static str,
        permission: &'static str,
        target: &str,
        fut: impl std::future::Future<Output = std::result::Result<T, google_cloud_gax::error::Error>>,
    ) -> Result<T> {
        let call = gcp::call(
            "Cloud KMS",
            method,
            target.to_owned(),
            &self.session.endpoint,
            permission,
        );
        self.session.call(&call, fut)
    }

    /// The key's only enabled version (asymmetric keys have no primary version).
    fn only_enabled_version(&self) -> Result<String> {
        let key = &self.key_ref.crypto_key;
        let target = format!("key '{key}'");
        let mut versions: Vec<CryptoKeyVersion> = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.kms(
                "ListCryptoKeyVersions",
                "cloudkms.cryptoKeyVersions.list",
                &target,
                self.session
                    .kms
                    .list_crypto_key_versions()
                    .set_parent(key.clone())
                    .set_page_size(100)
                    .set_page_token(token.clone())
                    .send(),
            )?;
            versions.extend(page.crypto_key_versions);
            if page.next_page_token.is_empty() || versions.len() >= MAX_LISTED_VERSIONS {
                break;
            }
            token = page.next_page_token;
        }
        let enabled: Vec<&CryptoKeyVersion> = versions
            .iter()
            .filter(|v| v.state == State::Enabled)
            .collect();
        let list = |vs: &mut dyn Iterator<Item = &CryptoKeyVersion>| {
            vs.map(|v| {
                format!(
                    "{} ({}, {})",
                    v.name,
                    state_name(&v.state),
                    algorithm_name(&v.algorithm)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
        };
        match enabled[..] {
            [one] => {
                tracing::debug!(version = %one.name, "the key's only enabled version");
                Ok(one.name.clone())
            }
            [] if versions.is_empty() => Err(PluginError::validation(format!(
                "{target} has no key versions; create one (gcloud kms keys versions create) or \
                 name a key version in the keyId: {key}/cryptoKeyVersions/<n>"
            ))),
            [] => Err(PluginError::validation(format!(
                "{target} has no enabled key version ({}); enable one or name it in the keyId \
                 ({key}/cryptoKeyVersions/<n>)",
                list(&mut versions.iter())
            ))),
            _ => Err(PluginError::validation(format!(
                "{target} has {} enabled key versions and asymmetric keys have no primary \
                 version: name one in the keyId ({key}/cryptoKeyVersions/<n>); enabled: {}",
                enabled.len(),
                list(&mut enabled.iter().copied())
            ))),
        }
    }

    /// After getPublicKey failed with FAILED_PRECONDITION: the version's state or algorithm,
    /// which the refusal names.
    fn explain_unusable(&self, version: &str, original: PluginError) -> PluginError {
        let target = format!("key version '{version}'");
        let got = self.kms(
            "GetCryptoKeyVersion",
            "cloudkms.cryptoKeyVersions.get",
            &target,
            self.session
                .kms
                .get_crypto_key_version()
                .set_name(version.to_owned())
                .send(),
        );
        match got {
            Ok(v) => {
                if let Some(problem) = state_problem(&v.state) {
                    refuse_state(&target, &v.state, problem)
                } else if let Err(why) = notary_spec(&v.algorithm) {
                    refuse_algorithm(&target, &v.algorithm, &why)
                } else {
                    original
                }
            }
            Err(_) => original,
        }
    }
}

impl Backend for GcpKms {
    type KeyRef = KeyRef;
    type Key = KmsKey;

    fn connect(ctx: &Context, key_ref: KeyRef) -> Result<Self> {
        let session = Session::open(ctx)?;
        Ok(Self { session, key_ref })
    }

    fn resolve_key(&mut self, ctx: &Context) -> Result<(KmsKey, PublicKey)> {
        let version = match &self.key_ref.version {
            Some(v) => v.clone(),
            None => self.only_enabled_version()?,
        };
        let target = format!("key version '{version}'");
        let public =
            plugin_protocol::config::retry(&ctx.deadline, "reading the public key", || {
                let got = self.kms(
                    "GetPublicKey",
                    "cloudkms.cryptoKeyVersions.viewPublicKey",
                    &target,
                    self.session
                        .kms
                        .get_public_key()
                        .set_name(version.clone())
                        .send(),
                );
                let pk = match got {
                    Ok(pk) => pk,
                    // The version's state, or an algorithm without a PEM public key
                    // (post-quantum): named by a look at the version.
                    Err(e)
                        if matches!(
                            e.metadata.get("googleStatus").map(String::as_str),
                            Some("FAILED_PRECONDITION" | "INVALID_ARGUMENT")
                        ) =>
                    {
                        return Err(self.explain_unusable(&version, e))
                    }
                    Err(e) => return Err(e),
                };
                if let Some(sum) = &pk.pem_crc32c {
                    if *sum != crc32c(pk.pem.as_bytes()) {
                        return Err(integrity("public key", &target));
                    }
                }
                Ok(pk)
            })?;
        if !public.name.is_empty() && public.name != version {
            return Err(integrity("public key (for another key version)", &target));
        }
        let spec = notary_spec(&public.algorithm)
            .map_err(|why| refuse_algorithm(&target, &public.algorithm, &why))?;
        let key = PublicKey::from_spki_pem(&public.pem).map_err(|e| e.context(&target))?;
        if key.key_spec() != spec {
            return Err(PluginError::generic(format!(
                "Cloud KMS reports {target} as {} but its public key is an {}",
                algorithm_name(&public.algorithm),
                key.key_spec()
            )));
        }
        tracing::debug!(%version, %spec, "resolved Cloud KMS key version");
        Ok((KmsKey { version }, key))
    }

    fn sign(&mut self, ctx: &Context, key: &KmsKey, payload: &Payload) -> Result<BackendSignature> {
        self.asymmetric_sign(ctx, key, payload.spec, payload.digest)
    }

    fn chain_by_reference(&self, ctx: &Context) -> Result<Vec<Vec<u8>>> {
        self.stored_chain(ctx)
    }

    const SIGNS_UNRESOLVED: bool = true;

    /// One AsymmetricSign on the named key version (no getPublicKey first; a key name without
    /// a version lists its versions first, asymmetric keys having no primary).
    fn sign_by_reference(&self, ctx: &Context, payload: &Payload) -> Result<BackendSignature> {
        let version = match &self.key_ref.version {
            Some(v) => v.clone(),
            None => self.only_enabled_version()?,
        };
        self.asymmetric_sign(ctx, &KmsKey { version }, payload.spec, payload.digest)
    }
}

impl GcpKms {
    /// AsymmetricSign on the digest with `key`'s version, with CRC32C both ways.
    fn asymmetric_sign(
        &self,
        ctx: &Context,
        key: &KmsKey,
        spec: KeySpec,
        digest: &[u8],
    ) -> Result<BackendSignature> {
        let target = format!("key version '{}'", key.version);
        let d = match spec.hash_algorithm() {
            plugin_protocol::HashAlgorithm::Sha256 => Digest::new().set_sha256(digest.to_vec()),
            plugin_protocol::HashAlgorithm::Sha384 => Digest::new().set_sha384(digest.to_vec()),
            plugin_protocol::HashAlgorithm::Sha512 => Digest::new().set_sha512(digest.to_vec()),
        };
        let digest_crc = crc32c(digest);
        let signature = plugin_protocol::config::retry(&ctx.deadline, "signing", || {
            let out = self.kms(
                "AsymmetricSign",
                "cloudkms.cryptoKeyVersions.useToSign",
                &target,
                self.session
                    .kms
                    .asymmetric_sign()
                    .set_name(key.version.clone())
                    .set_digest(d.clone())
                    .set_digest_crc32c(digest_crc)
                    .send(),
            )?;
            if !out.verified_digest_crc32c {
                return Err(integrity("digest sent", &target));
            }
            if !out.name.is_empty() && out.name != key.version {
                return Err(integrity(
                    "signature (made by another key version)",
                    &target,
                ));
            }
            match &out.signature_crc32c {
                Some(sum) if *sum == crc32c(&out.signature) => {}
                Some(_) => return Err(integrity("signature", &target)),
                None => {
                    return Err(PluginError::generic(format!(
                        "Cloud KMS AsymmetricSign for {target} returned no signature checksum"
                    )))
                }
            }
            Ok(out.signature.to_vec())
        })?;
        Ok(BackendSignature::pss_or_der_ecdsa(spec, signature))
    }

    /// The chain in the Secret Manager secret version of `certificate_chain_secret`, if any.
    fn stored_chain(&self, ctx: &Context) -> Result<Vec<Vec<u8>>> {
        let Some((secret, source)) = ctx.config.get_with_source(&CERTIFICATE_CHAIN_SECRET) else {
            return Ok(Vec::new());
        };
        let parts: Vec<&str> = secret.split('/').collect();
        let shaped = matches!(
            parts[..],
            ["projects", p, "secrets", s, "versions", v] if !p.is_empty() && !s.is_empty() && !v.is_empty()
        ) || matches!(
            parts[..],
            ["projects", p, "locations", l, "secrets", s, "versions", v]
                if !p.is_empty() && !l.is_empty() && !s.is_empty() && !v.is_empty()
        );
        if !shaped {
            return Err(PluginError::validation(format!(
                "{source} is '{secret}'; expected a Secret Manager secret version name \
                 projects/<project>/secrets/<secret>/versions/<n|latest>"
            )));
        }
        let (client, endpoint) = self.session.secret_manager(ctx)?;
        let target = format!("secret version '{secret}' ({source})");
        let data =
            plugin_protocol::config::retry(&ctx.deadline, "reading the chain secret", || {
                let call = gcp::call(
                    "Secret Manager",
                    "AccessSecretVersion",
                    target.clone(),
                    &endpoint,
                    "secretmanager.versions.access",
                );
                let out = self.session.call(
                    &call,
                    client
                        .access_secret_version()
                        .set_name(secret.clone())
                        .send(),
                )?;
                let payload = out.payload.unwrap_or_default();
                if let Some(sum) = payload.data_crc32c {
                    if sum != crc32c(&payload.data) {
                        return Err(integrity("secret payload", &target));
                    }
                }
                Ok(payload.data)
            })?;
        if data.is_empty() {
            return Err(PluginError::validation(format!(
                "{target} is empty; store the PEM certificate chain (leaf first, root last) in it"
            )));
        }
        plugin_protocol::chain::parse_to_der(
            &data,
            &format!("Secret Manager secret version '{secret}'"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_algorithms_map_to_notary_specs() {
        for (a, spec) in [
            (Algorithm::EcSignP256Sha256, KeySpec::Ec256),
            (Algorithm::EcSignP384Sha384, KeySpec::Ec384),
            (Algorithm::RsaSignPss2048Sha256, KeySpec::Rsa2048),
            (Algorithm::RsaSignPss4096Sha512, KeySpec::Rsa4096),
        ] {
            assert_eq!(notary_spec(&a), Ok(spec));
        }
    }

    #[test]
    fn every_other_algorithm_is_refused_saying_why() {
        for (a, why) in [
            (Algorithm::RsaSignPss3072Sha256, "RSA-3072 with SHA-384"),
            (Algorithm::RsaSignPss4096Sha256, "RSA-4096 with SHA-512"),
            (Algorithm::RsaSignPkcs12048Sha256, "RSASSA-PKCS1-v1_5"),
            (Algorithm::RsaSignPkcs14096Sha512, "RSASSA-PKCS1-v1_5"),
            (Algorithm::RsaSignRawPkcs13072, "raw PKCS#1"),
            (Algorithm::EcSignSecp256K1Sha256, "secp256k1"),
            (Algorithm::EcSignEd25519, "Ed25519"),
            (Algorithm::PqSignMlDsa65, "post-quantum"),
            (Algorithm::PqSignSlhDsaSha2128S, "post-quantum"),
            (Algorithm::GoogleSymmetricEncryption, "symmetric"),
            (Algorithm::HmacSha256, "HMAC"),
            (Algorithm::RsaDecryptOaep2048Sha256, "decryption"),
        ] {
            let got = notary_spec(&a).unwrap_err();
            assert!(got.contains(why), "{}: {got}", algorithm_name(&a));
            let e = refuse_algorithm("key version 'v'", &a, &got);
            assert!(e.message.contains(&algorithm_name(&a)), "{}", e.message);
            assert!(
                e.message.contains("RSA_SIGN_PSS_4096_SHA512"),
                "{}",
                e.message
            );
        }
        assert_eq!(
            algorithm_name(&Algorithm::RsaSignPss3072Sha256),
            "RSA_SIGN_PSS_3072_SHA256"
        );
        // An algorithm this plugin does not know is not called post-quantum.
        let got = notary_spec(&Algorithm::Unspecified).unwrap_err();
        assert!(got.contains("does not know"), "{got}");
    }

    #[test]
    fn states_other_than_enabled_are_named() {
        assert_eq!(state_problem(&State::Enabled), None);
        for (s, name) in [
            (State::Disabled, "DISABLED"),
            (State::Destroyed, "DESTROYED"),
            (State::DestroyScheduled, "DESTROY_SCHEDULED"),
            (State::PendingGeneration, "PENDING_GENERATION"),
            (State::PendingImport, "PENDING_IMPORT"),
        ] {
            let e = refuse_state("key version 'v'", &s, state_problem(&s).unwrap());
            assert!(e.message.contains(name), "{}", e.message);
            assert_eq!(e.metadata["state"], name);
            assert!(e.message.contains("key version 'v'"), "{}", e.message);
        }
        // Each state says what to do about it.
        for (s, says) in [
            (State::Disabled, "enable it"),
            (State::Destroyed, "key material is gone"),
            (State::DestroyScheduled, "restore it"),
            (State::PendingGeneration, "still being generated"),
            (State::PendingImport, "still being imported"),
            (State::ImportFailed, "import failed"),
            (State::GenerationFailed, "generation failed"),
            (State::PendingExternalDestruction, "external key manager"),
            (State::Unspecified, "not enabled"),
        ] {
            let problem = state_problem(&s).unwrap();
            assert!(problem.contains(says), "{s:?}: {problem}");
        }
    }

    #[test]
    fn crc32c_is_castagnoli() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }
}
