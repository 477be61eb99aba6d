//! The `Backend` adapter: GetPublicKey (one round trip: key spec, usage and SPKI), Sign on the
//! digest, and the certificate chain from Secrets Manager.

use aws_sdk_kms::types::{KeySpec as KmsKeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};
use plugin_protocol::public_key::unsupported_key;
use plugin_protocol::{
    Backend, BackendSignature, Context, KeySpec, Payload, PluginError, PublicKey, Result,
};

use crate::aws::{self, Call, Session};
use crate::keyref::KeyRef;
use crate::CERTIFICATE_CHAIN_SECRET;

pub struct AwsKms {
    session: Session,
    key_ref: KeyRef,
}

/// A resolved KMS key: its ARN (aliases resolved by KMS) and Notary key spec.
pub struct KmsKey {
    arn: String,
}

impl AwsKms {
    fn call(&self, operation: &'static str, action: &'static str, target: String) -> Call {
        aws::call("KMS", operation, target, &self.session.kms_endpoint, action)
    }
}

/// The Notary key spec of a KMS key spec, or the refusal naming what the key is.
pub fn notary_spec(spec: &KmsKeySpec) -> std::result::Result<KeySpec, String> {
    Ok(match spec {
        KmsKeySpec::Rsa2048 => KeySpec::Rsa2048,
        KmsKeySpec::Rsa3072 => KeySpec::Rsa3072,
        KmsKeySpec::Rsa4096 => KeySpec::Rsa4096,
        KmsKeySpec::EccNistP256 => KeySpec::Ec256,
        KmsKeySpec::EccNistP384 => KeySpec::Ec384,
        KmsKeySpec::EccNistP521 => KeySpec::Ec521,
        KmsKeySpec::EccSecgP256K1 => return Err("an EC secp256k1 key".into()),
        KmsKeySpec::Sm2 => return Err("an SM2 key".into()),
        KmsKeySpec::SymmetricDefault => return Err("a symmetric (AES) key".into()),
        other if other.as_str().starts_with("HMAC") => return Err("an HMAC key".into()),
        other => return Err(format!("a key of KMS key spec {}", other.as_str())),
    })
}

/// The KMS signing algorithm notation's key spec requires (PSS salt = hash length).
pub fn signing_algorithm(spec: KeySpec) -> SigningAlgorithmSpec {
    match spec {
        KeySpec::Rsa2048 => SigningAlgorithmSpec::RsassaPssSha256,
        KeySpec::Rsa3072 => SigningAlgorithmSpec::RsassaPssSha384,
        KeySpec::Rsa4096 => SigningAlgorithmSpec::RsassaPssSha512,
        KeySpec::Ec256 => SigningAlgorithmSpec::EcdsaSha256,
        KeySpec::Ec384 => SigningAlgorithmSpec::EcdsaSha384,
        KeySpec::Ec521 => SigningAlgorithmSpec::EcdsaSha512,
    }
}

impl Backend for AwsKms {
    type KeyRef = KeyRef;
    type Key = KmsKey;

    fn connect(ctx: &Context, key_ref: KeyRef) -> Result<Self> {
        let session = Session::open(ctx, Some(&key_ref))?;
        Ok(Self { session, key_ref })
    }

    fn resolve_key(&mut self, ctx: &Context) -> Result<(KmsKey, PublicKey)> {
        let kms = self.session.kms();
        let id = self.key_ref.kms_key_id.clone();
        let target = format!("key '{}'", ctx.key_name());
        let call = self.call("GetPublicKey", "kms:GetPublicKey", target.clone());
        let out = self.session.call(ctx, &call, || {
            kms.get_public_key().key_id(id.clone()).send()
        })?;
        let kms_spec = out
            .key_spec()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        let named = |e: PluginError| {
            e.context(format_args!("{target}"))
                .with_metadata("kmsKeySpec", kms_spec.clone())
        };
        match out.key_usage() {
            Some(KeyUsageType::SignVerify) => {}
            Some(usage) => {
                return Err(PluginError::validation(format!(
                    "{target} has key usage {} (KMS key spec {kms_spec}), so it cannot sign; \
                     notation needs a SIGN_VERIFY key: create one with `notation-aws-kms \
                     create-key --spec ECC_NIST_P384` or `aws kms create-key --key-usage \
                     SIGN_VERIFY`",
                    usage.as_str()
                ))
                .with_metadata("keyUsage", usage.as_str())
                .with_metadata("kmsKeySpec", kms_spec))
            }
            None => {}
        }
        let spec = match out.key_spec() {
            Some(s) => notary_spec(s).map_err(|what| {
                named(unsupported_key(format_args!(
                    "{what} (KMS key spec {kms_spec})"
                )))
            })?,
            None => {
                return Err(PluginError::generic(format!(
                    "KMS GetPublicKey for {target} returned no key spec"
                )))
            }
        };
        let der = out.public_key().map(|b| b.as_ref()).ok_or_else(|| {
            PluginError::generic(format!(
                "KMS GetPublicKey for {target} returned no public key"
            ))
        })?;
        let public = PublicKey::from_spki_der(der).map_err(named)?;
        if public.key_spec() != spec {
            return Err(PluginError::generic(format!(
                "KMS reports {target} as {kms_spec} but its public key is an {}",
                public.key_spec()
            )));
        }
        let wanted = signing_algorithm(spec);
        let algorithms = out.signing_algorithms();
        if !algorithms.is_empty() && !algorithms.contains(&wanted) {
            return Err(PluginError::validation(format!(
                "{target} ({kms_spec}) does not offer {}, the algorithm notation requires for \
                 {spec}; it offers {}",
                wanted.as_str(),
                algorithms
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let arn = out.key_id().unwrap_or(&self.key_ref.kms_key_id).to_owned();
        tracing::debug!(%arn, %spec, "resolved KMS key");
        Ok((KmsKey { arn }, public))
    }

    fn sign(&mut self, ctx: &Context, key: &KmsKey, payload: &Payload) -> Result<BackendSignature> {
        self.kms_sign(ctx, &key.arn, payload.spec, payload.digest)
    }

    fn chain_by_reference(&self, ctx: &Context) -> Result<Vec<Vec<u8>>> {
        self.stored_chain(ctx)
    }

    const SIGNS_UNRESOLVED: bool = true;

    /// One Sign call with the key id as given (KMS resolves aliases).
    fn sign_by_reference(&self, ctx: &Context, payload: &Payload) -> Result<BackendSignature> {
        self.kms_sign(ctx, &self.key_ref.kms_key_id, payload.spec, payload.digest)
    }
}

impl AwsKms {
    /// KMS Sign on the digest with `key_id` (a key id, ARN or alias).
    fn kms_sign(
        &self,
        ctx: &Context,
        key_id: &str,
        spec: KeySpec,
        digest: &[u8],
    ) -> Result<BackendSignature> {
        let kms = self.session.kms();
        let algorithm = signing_algorithm(spec);
        let call = self.call("Sign", "kms:Sign", format!("key '{}'", ctx.key_name()));
        let out = self.session.call(ctx, &call, || {
            kms.sign()
                .key_id(key_id)
                .message(aws_sdk_kms::primitives::Blob::new(digest.to_vec()))
                .message_type(MessageType::Digest)
                .signing_algorithm(algorithm.clone())
                .send()
        })?;
        let signature = out
            .signature()
            .map(|b| b.as_ref().to_vec())
            .ok_or_else(|| {
                PluginError::generic(format!(
                    "KMS Sign for key '{}' returned no signature",
                    ctx.key_name()
                ))
            })?;
        Ok(BackendSignature::pss_or_der_ecdsa(spec, signature))
    }

    /// The chain in the configured Secrets Manager secret (`certificate_chain_secret`), if any.
    fn stored_chain(&self, ctx: &Context) -> Result<Vec<Vec<u8>>> {
        let Some((secret, source)) = ctx.config.get_with_source(&CERTIFICATE_CHAIN_SECRET) else {
            return Ok(Vec::new());
        };
        let (client, endpoint) = self.session.secrets_manager(ctx)?;
        let call = aws::call(
            "Secrets Manager",
            "GetSecretValue",
            format!("secret '{secret}' ({source})"),
            &endpoint,
            "secretsmanager:GetSecretValue",
        );
        let out = self.session.call(ctx, &call, || {
            client.get_secret_value().secret_id(secret.clone()).send()
        })?;
        let bytes: Vec<u8> = match (out.secret_string(), out.secret_binary()) {
            (Some(s), _) => s.as_bytes().to_vec(),
            (None, Some(b)) => b.as_ref().to_vec(),
            (None, None) => {
                return Err(PluginError::validation(format!(
                    "secret '{secret}' ({source}) is empty; store the PEM certificate chain \
                     (leaf first, root last) in it"
                )))
            }
        };
        let certs = plugin_protocol::chain::parse_pem_or_der(
            &bytes,
            &format!("Secrets Manager secret '{secret}'"),
        )?;
        Ok(certs.into_iter().map(|c| c.der().to_vec()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kms_key_specs_map_to_notary_specs_and_algorithms_with_pss() {
        let table = [
            (
                KmsKeySpec::Rsa2048,
                KeySpec::Rsa2048,
                SigningAlgorithmSpec::RsassaPssSha256,
            ),
            (
                KmsKeySpec::Rsa3072,
                KeySpec::Rsa3072,
                SigningAlgorithmSpec::RsassaPssSha384,
            ),
            (
                KmsKeySpec::Rsa4096,
                KeySpec::Rsa4096,
                SigningAlgorithmSpec::RsassaPssSha512,
            ),
            (
                KmsKeySpec::EccNistP256,
                KeySpec::Ec256,
                SigningAlgorithmSpec::EcdsaSha256,
            ),
            (
                KmsKeySpec::EccNistP384,
                KeySpec::Ec384,
                SigningAlgorithmSpec::EcdsaSha384,
            ),
            (
                KmsKeySpec::EccNistP521,
                KeySpec::Ec521,
                SigningAlgorithmSpec::EcdsaSha512,
            ),
        ];
        for (kms, spec, alg) in table {
            assert_eq!(notary_spec(&kms), Ok(spec));
            assert_eq!(signing_algorithm(spec), alg, "{spec}");
        }
        for (kms, what) in [
            (KmsKeySpec::EccSecgP256K1, "an EC secp256k1 key"),
            (KmsKeySpec::Sm2, "an SM2 key"),
            (KmsKeySpec::SymmetricDefault, "a symmetric (AES) key"),
            (KmsKeySpec::Hmac256, "an HMAC key"),
            (
                KmsKeySpec::from("ML_DSA_65"),
                "a key of KMS key spec ML_DSA_65",
            ),
        ] {
            assert_eq!(notary_spec(&kms), Err(what.to_owned()));
        }
    }
}
