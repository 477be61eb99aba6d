//! The `Backend` adapter: the key (or certificate) in one round trip, Sign on the digest with the
//! exact key version, and the chain from the certificate's backing secret, the certificate plus
//! `ca_certs`, or the self-signed certificate alone.

use azure_security_keyvault_certificates::models::{
    Certificate as KvCertificate, CertificateClientGetCertificateOptions,
};
use azure_security_keyvault_keys::models::{
    CurveName, JsonWebKey, KeyClientGetKeyOptions, KeyClientSignOptions, KeyType, SignParameters,
    SignatureAlgorithm,
};
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use plugin_protocol::public_key::{named_curve_der, unsupported_key};
use plugin_protocol::{
    Backend, BackendSignature, Certificate, Context, KeySpec, Payload, PluginError, PublicKey,
    Result,
};

use crate::azure::{Call, Session};
use crate::keyref::{KeyRef, Kind};
use crate::secret;
use crate::SELF_SIGNED;
use plugin_protocol::config::CA_CERTS;

pub struct AzureKeyVault {
    session: Session,
    key_ref: KeyRef,
    /// The certificate fetched by resolve_key for a certificates/ key id (reused for the chain).
    certificate: Option<Vec<u8>>,
}

/// A key: its name and exact version (from the key's `kid` once resolved; `None` before, when
/// signing without resolving the key: the current version).
pub struct VaultKey {
    name: String,
    version: Option<String>,
}

impl VaultKey {
    /// "version <v>" or "the current version", for messages.
    fn which(&self) -> String {
        match &self.version {
            Some(v) => format!("version {v}"),
            None => "the current version".to_owned(),
        }
    }
}

/// The Key Vault signing algorithm notation's key spec requires (PSS salt = hash length).
pub fn signing_algorithm(spec: KeySpec) -> SignatureAlgorithm {
    match spec {
        KeySpec::Rsa2048 => SignatureAlgorithm::Ps256,
        KeySpec::Rsa3072 => SignatureAlgorithm::Ps384,
        KeySpec::Rsa4096 => SignatureAlgorithm::Ps512,
        KeySpec::Ec256 => SignatureAlgorithm::Es256,
        KeySpec::Ec384 => SignatureAlgorithm::Es384,
        KeySpec::Ec521 => SignatureAlgorithm::Es512,
    }
}

/// The public key of a JSON Web Key, or the refusal naming what the key is.
pub fn jwk_public_key(jwk: &JsonWebKey) -> Result<PublicKey> {
    let missing =
        |what: &str| PluginError::generic(format!("Key Vault returned a key without {what}"));
    match &jwk.kty {
        Some(KeyType::Rsa | KeyType::RsaHsm) => {
            let n = jwk.n.as_deref().ok_or_else(|| missing("a modulus (n)"))?;
            let e = jwk.e.as_deref().ok_or_else(|| missing("an exponent (e)"))?;
            PublicKey::from_rsa_components(n, e)
        }
        Some(KeyType::Ec | KeyType::EcHsm) => {
            let spec = match &jwk.crv {
                Some(CurveName::P256) => KeySpec::Ec256,
                Some(CurveName::P384) => KeySpec::Ec384,
                Some(CurveName::P521) => KeySpec::Ec521,
                Some(CurveName::P256K) => {
                    return Err(unsupported_key("an EC P-256K (secp256k1) key"))
                }
                Some(other) => {
                    return Err(unsupported_key(format_args!(
                        "an EC key on curve {other:?}"
                    )))
                }
                None => return Err(missing("a curve (crv)")),
            };
            let x = jwk.x.as_deref().ok_or_else(|| missing("x"))?;
            let y = jwk.y.as_deref().ok_or_else(|| missing("y"))?;
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(4);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            let curve = named_curve_der(spec).ok_or_else(|| missing("a known curve"))?;
            PublicKey::from_ec_point(&curve, &point)
        }
        Some(KeyType::Oct | KeyType::OctHsm) => Err(unsupported_key("a symmetric (oct) key")),
        Some(other) => Err(unsupported_key(format_args!("a key of type {other:?}"))),
        None => Err(missing("a key type (kty)")),
    }
}

/// The version at the end of a Key Vault object id (`.../keys/<name>/<version>`).
fn version_of(id: Option<&str>) -> Option<String> {
    let id = id?.split('?').next()?;
    let mut parts = id.trim_end_matches('/').rsplit('/');
    let version = parts.next()?;
    let _name = parts.next()?;
    let kind = parts.next()?;
    (matches!(kind, "keys" | "certificates" | "secrets") && !version.is_empty())
        .then(|| version.to_owned())
}

fn not_found(e: &PluginError) -> bool {
    e.metadata.get("httpStatus").map(String::as_str) == Some("404")
}

/// The key has no Key Vault certificate (a plain key): say where else a chain can come from.
fn no_certificate(e: PluginError, key: &VaultKey, host: &str, what: &str) -> PluginError {
    let mut pe = PluginError::validation(format!(
        "no certificate chain for key '{}' {} in vault {host}: the vault has no \
         certificate of that name and version (its {what} was not found), so the key is a plain \
         key; create or import the certificate in Key Vault (az keyvault certificate create / \
         import) and use its id, or set pluginConfig certificate_chain to a PEM file with the \
         chain (leaf first, root last)",
        key.name,
        key.which()
    ));
    pe.metadata = e.metadata;
    pe
}

impl AzureKeyVault {
    fn target(&self, kind: &str) -> String {
        let version = self
            .key_ref
            .version
            .as_deref()
            .map(|v| format!(" version {v}"))
            .unwrap_or_default();
        format!(
            "{kind} '{}'{version} in vault {}",
            self.key_ref.name, self.key_ref.host
        )
    }

    fn get_certificate(
        &self,
        ctx: &Context,
        version: Option<String>,
        hint: &'static str,
    ) -> Result<KvCertificate> {
        let client = self.session.certificates()?;
        let name = self.key_ref.name.clone();
        let call = Call {
            operation: "get certificate",
            target: match &version {
                Some(v) => format!(
                    "certificate '{name}' version {v} in vault {}",
                    self.key_ref.host
                ),
                None => self.target("certificate"),
            },
            permission: "certificates/get",
            role: "Key Vault Certificate User",
            hint,
        };
        self.session.call(ctx, &call, || {
            let client = &client;
            let name = &name;
            let version = version.clone();
            async move {
                client
                    .get_certificate(
                        name,
                        Some(CertificateClientGetCertificateOptions {
                            certificate_version: version,
                            ..Default::default()
                        }),
                    )
                    .await?
                    .into_model()
            }
        })
    }

    /// The leaf certificate (DER) of `key`: the one fetched by resolve_key, or the certificate of
    /// the same name and version as the key.
    fn leaf_certificate(&self, ctx: &Context, key: &VaultKey) -> Result<Vec<u8>> {
        if let Some(cer) = &self.certificate {
            return Ok(cer.clone());
        }
        let cert = self
            .get_certificate(
                ctx,
                key.version.clone(),
                "; or set pluginConfig certificate_chain to a PEM file with the chain",
            )
            .map_err(|e| {
                if not_found(&e) {
                    no_certificate(e, key, &self.key_ref.host, "certificate")
                } else {
                    e
                }
            })?;
        cert.cer.ok_or_else(|| {
            PluginError::generic(format!(
                "Key Vault returned certificate '{}' without its X.509 content (cer)",
                key.name
            ))
        })
    }
}

impl Backend for AzureKeyVault {
    type KeyRef = KeyRef;
    type Key = VaultKey;

    fn connect(ctx: &Context, key_ref: KeyRef) -> Result<Self> {
        if ctx.config.flag(&SELF_SIGNED)? && ctx.config.get(&CA_CERTS).is_some() {
            return Err(PluginError::validation(
                "pluginConfig self_signed=true and ca_certs are set together: a self-signed \
                 certificate is the whole chain; remove ca_certs, or remove self_signed if the \
                 certificate is issued by a CA",
            ));
        }
        let session = Session::open(ctx, &key_ref)?;
        Ok(Self {
            session,
            key_ref,
            certificate: None,
        })
    }

    fn resolve_key(&mut self, ctx: &Context) -> Result<(VaultKey, PublicKey)> {
        match self.key_ref.kind {
            Kind::Certificate => {
                let cert = self.get_certificate(ctx, self.key_ref.version.clone(), "")?;
                let target = self.target("certificate");
                let cer = cert.cer.ok_or_else(|| {
                    PluginError::generic(format!(
                        "Key Vault returned {target} without its X.509 content (cer)"
                    ))
                })?;
                let version = version_of(cert.kid.as_deref())
                    .or_else(|| version_of(cert.id.as_deref()))
                    .ok_or_else(|| {
                        PluginError::generic(format!(
                            "Key Vault returned {target} without the id of its key (kid)"
                        ))
                    })?;
                let leaf = Certificate::from_der(&cer, &target)?;
                let public = leaf.public_key().map_err(|e| e.context(&target))?;
                tracing::debug!(%version, spec = %public.key_spec(), "resolved certificate");
                self.certificate = Some(cer);
                Ok((
                    VaultKey {
                        name: self.key_ref.name.clone(),
                        version: Some(version),
                    },
                    public,
                ))
            }
            Kind::Key => {
                let client = self.session.keys()?;
                let name = self.key_ref.name.clone();
                let version = self.key_ref.version.clone();
                let target = self.target("key");
                let call = Call {
                    operation: "get key",
                    target: target.clone(),
                    permission: "keys/get",
                    role: "Key Vault Crypto User",
                    hint: "",
                };
                let key = self.session.call(ctx, &call, || {
                    let client = &client;
                    let name = &name;
                    let version = version.clone();
                    async move {
                        client
                            .get_key(
                                name,
                                Some(KeyClientGetKeyOptions {
                                    key_version: version,
                                    ..Default::default()
                                }),
                            )
                            .await?
                            .into_model()
                    }
                })?;
                let jwk = key.key.ok_or_else(|| {
                    PluginError::generic(format!("Key Vault returned {target} without its key"))
                })?;
                if let Some(ops) = &jwk.key_ops {
                    if !ops.is_empty() && !ops.iter().any(|o| o == "sign") {
                        return Err(PluginError::validation(format!(
                            "{target} does not allow the sign operation (its key_ops are {}); \
                             allow it with az keyvault key set-attributes --ops sign verify",
                            ops.join(", ")
                        ))
                        .with_metadata("keyOps", ops.join(",")));
                    }
                }
                let public = jwk_public_key(&jwk).map_err(|e| e.context(&target))?;
                let version = version_of(jwk.kid.as_deref())
                    .or(self.key_ref.version.clone())
                    .ok_or_else(|| {
                        PluginError::generic(format!(
                            "Key Vault returned {target} without its id (kid)"
                        ))
                    })?;
                tracing::debug!(%version, spec = %public.key_spec(), "resolved key");
                Ok((
                    VaultKey {
                        name,
                        version: Some(version),
                    },
                    public,
                ))
            }
        }
    }

    fn sign(
        &mut self,
        ctx: &Context,
        key: &VaultKey,
        payload: &Payload,
    ) -> Result<BackendSignature> {
        self.sign_key(ctx, key, payload.spec, payload.digest)
    }

    fn certificate_chain(&mut self, ctx: &Context, key: &VaultKey) -> Result<Vec<Vec<u8>>> {
        self.stored_chain(ctx, key)
    }

    /// The chain Key Vault holds for the key (or certificate) the key id names, its version or
    /// the current one.
    fn chain_by_reference(&self, ctx: &Context) -> Result<Vec<Vec<u8>>> {
        self.stored_chain(ctx, &self.named_key())
    }

    const SIGNS_UNRESOLVED: bool = true;

    /// One sign call on the key (or certificate) the key id names, its version or the current
    /// one.
    fn sign_by_reference(&self, ctx: &Context, payload: &Payload) -> Result<BackendSignature> {
        self.sign_key(ctx, &self.named_key(), payload.spec, payload.digest)
    }
}

impl AzureKeyVault {
    /// The key as the key id names it (no version: the current one).
    fn named_key(&self) -> VaultKey {
        VaultKey {
            name: self.key_ref.name.clone(),
            version: self.key_ref.version.clone(),
        }
    }

    /// Key Vault sign on the digest with `key` (its current version when none is known).
    fn sign_key(
        &self,
        ctx: &Context,
        key: &VaultKey,
        spec: KeySpec,
        digest: &[u8],
    ) -> Result<BackendSignature> {
        let client = self.session.keys()?;
        let call = Call {
            operation: "sign",
            target: format!(
                "key '{}' {} in vault {}",
                key.name,
                key.which(),
                self.key_ref.host
            ),
            permission: "keys/sign",
            role: "Key Vault Crypto User",
            hint: "",
        };
        let algorithm = signing_algorithm(spec);
        let out = self.session.call(ctx, &call, || {
            let client = &client;
            let parameters = SignParameters {
                algorithm: Some(algorithm.clone()),
                value: Some(digest.to_vec()),
            };
            async move {
                client
                    .sign(
                        &key.name,
                        parameters.try_into()?,
                        Some(KeyClientSignOptions {
                            key_version: key.version.clone(),
                            ..Default::default()
                        }),
                    )
                    .await?
                    .into_model()
            }
        })?;
        let signature = out.result.ok_or_else(|| {
            PluginError::generic(format!(
                "Key Vault Sign for key '{}' returned no signature",
                ctx.key_name()
            ))
        })?;
        // Key Vault returns ECDSA signatures as fixed-width r‖s (JWS style).
        Ok(BackendSignature::pss_or_fixed_ecdsa(spec, signature))
    }

    /// The chain Key Vault holds for `key`: the certificate alone (self_signed, or with
    /// ca_certs), else the certificate's backing secret.
    fn stored_chain(&self, ctx: &Context, key: &VaultKey) -> Result<Vec<Vec<u8>>> {
        let self_signed = ctx.config.flag(&SELF_SIGNED)?;
        if self_signed {
            let leaf = self.leaf_certificate(ctx, key)?;
            let cert = Certificate::from_der(&leaf, "the Key Vault certificate")?;
            let x = cert.x509();
            if x.tbs_certificate.subject != x.tbs_certificate.issuer {
                return Err(PluginError::validation(format!(
                    "pluginConfig self_signed=true but certificate '{}' ({}) is issued by '{}', \
                     not by itself; remove self_signed to use the chain stored with the \
                     certificate, or set ca_certs to a PEM bundle of its CA certificates",
                    key.name,
                    cert.subject(),
                    cert.issuer()
                )));
            }
            return Ok(vec![leaf]);
        }
        if ctx.config.get(&CA_CERTS).is_some() {
            // The leaf alone; the shared code appends ca_certs.
            return Ok(vec![self.leaf_certificate(ctx, key)?]);
        }
        // Default: the certificate's backing secret (PKCS#12 or PEM), which holds the chain
        // merged or imported with the certificate.
        let client = self.session.secrets()?;
        let call = Call {
            operation: "get secret",
            target: format!(
                "secret '{}' {} (the certificate's backing secret, holding its chain) in vault {}",
                key.name,
                key.which(),
                self.key_ref.host
            ),
            permission: "secrets/get",
            role: "Key Vault Secrets User",
            hint: "; or, without secrets/get, set pluginConfig ca_certs to a PEM bundle of the \
                   CA certificates (needs only certificates/get), or self_signed=true for a \
                   self-signed certificate",
        };
        let name = key.name.clone();
        let version = key.version.clone();
        let secret = self
            .session
            .call(ctx, &call, || {
                let client = &client;
                let name = &name;
                let version = version.clone();
                async move {
                    client
                        .get_secret(
                            name,
                            Some(SecretClientGetSecretOptions {
                                secret_version: version,
                                ..Default::default()
                            }),
                        )
                        .await?
                        .into_model()
                }
            })
            .map_err(|e| {
                if not_found(&e) {
                    no_certificate(e, key, &self.key_ref.host, "backing secret")
                } else {
                    e
                }
            })?;
        secret::certificates(
            secret.value.map(zeroize::Zeroizing::new),
            secret.content_type.as_deref(),
            &format!("secret '{}' {}", key.name, key.which()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An openssl-made public key as SPKI DER, and its `openssl pkey -text` dump.
    fn openssl_key(args: &[&str]) -> (Vec<u8>, String) {
        let dir =
            std::env::temp_dir().join(format!("akv-jwk-{}-{}", std::process::id(), args.join("")));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k.pem");
        let run = |a: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(a)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        };
        let k = key.to_str().unwrap();
        run(&[&["genpkey"][..], args, &["-out", k]].concat());
        let der = run(&["pkey", "-in", k, "-pubout", "-outform", "DER"]);
        let text =
            String::from_utf8(run(&["pkey", "-in", k, "-pubout", "-text", "-noout"])).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        (der, text)
    }

    /// The hex bytes after `label` in an openssl text dump (`00:ab:...` over several lines).
    fn dumped(text: &str, label: &str) -> Vec<u8> {
        let start = text.find(label).unwrap() + label.len();
        text[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .flat_map(|l| l.trim().split(':'))
            .filter(|h| !h.is_empty())
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect()
    }

    #[test]
    fn jwks_become_the_same_public_keys_openssl_made() {
        let (der, text) = openssl_key(&["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]);
        let jwk = JsonWebKey {
            kty: Some(KeyType::RsaHsm),
            n: Some(dumped(&text, "Modulus:")),
            e: Some(vec![1, 0, 1]),
            ..Default::default()
        };
        assert_eq!(
            jwk_public_key(&jwk).unwrap(),
            PublicKey::from_spki_der(&der).unwrap()
        );

        for (curve, crv, spec) in [
            ("P-256", CurveName::P256, KeySpec::Ec256),
            ("P-384", CurveName::P384, KeySpec::Ec384),
            ("P-521", CurveName::P521, KeySpec::Ec521),
        ] {
            let (der, text) = openssl_key(&[
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
            ]);
            let point = dumped(&text, "pub:");
            let n = (point.len() - 1) / 2;
            let jwk = JsonWebKey {
                kty: Some(KeyType::Ec),
                crv: Some(crv),
                x: Some(point[1..1 + n].to_vec()),
                y: Some(point[1 + n..].to_vec()),
                ..Default::default()
            };
            let key = jwk_public_key(&jwk).unwrap();
            assert_eq!(key, PublicKey::from_spki_der(&der).unwrap());
            assert_eq!(key.key_spec(), spec);
        }
    }

    #[test]
    fn other_jwks_are_refused_by_name() {
        let cases = [
            (
                JsonWebKey {
                    kty: Some(KeyType::Ec),
                    crv: Some(CurveName::P256K),
                    ..Default::default()
                },
                "an EC P-256K (secp256k1) key",
            ),
            (
                JsonWebKey {
                    kty: Some(KeyType::Oct),
                    ..Default::default()
                },
                "a symmetric (oct) key",
            ),
            (
                JsonWebKey {
                    kty: Some(KeyType::Ec),
                    ..Default::default()
                },
                "without a curve (crv)",
            ),
            (
                JsonWebKey {
                    kty: Some(KeyType::Rsa),
                    ..Default::default()
                },
                "without a modulus (n)",
            ),
            (JsonWebKey::default(), "without a key type (kty)"),
        ];
        for (jwk, needle) in cases {
            let err = jwk_public_key(&jwk).unwrap_err();
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }
    }

    #[test]
    fn key_specs_sign_with_pss_or_ecdsa_of_their_hash() {
        let table = [
            (KeySpec::Rsa2048, SignatureAlgorithm::Ps256),
            (KeySpec::Rsa3072, SignatureAlgorithm::Ps384),
            (KeySpec::Rsa4096, SignatureAlgorithm::Ps512),
            (KeySpec::Ec256, SignatureAlgorithm::Es256),
            (KeySpec::Ec384, SignatureAlgorithm::Es384),
            (KeySpec::Ec521, SignatureAlgorithm::Es512),
        ];
        for (spec, alg) in table {
            assert_eq!(signing_algorithm(spec), alg, "{spec}");
        }
    }

    #[test]
    fn versions_are_read_from_object_ids() {
        let base = "https://v.vault.azure.net";
        assert_eq!(
            version_of(Some(&format!("{base}/keys/k/abc123"))).as_deref(),
            Some("abc123")
        );
        assert_eq!(
            version_of(Some(&format!("{base}/certificates/c/v9/?x=1"))).as_deref(),
            Some("v9")
        );
        assert_eq!(version_of(Some(&format!("{base}/other/k/abc"))), None);
        assert_eq!(version_of(Some("k/abc")), None);
        assert_eq!(version_of(None), None);
    }
}
