//! The Transit secrets engine calls: read a key (type, versions, public keys, stored chains),
//! sign a digest with one key version, make a CSR, store a certificate chain on a key version.

use std::collections::BTreeMap;

use base64::Engine as _;
use plugin_protocol::{BackendSignature, KeySpec, PluginError, PublicKey, Result};
use serde_json::{json, Value};

use crate::http::{Method, Vault, STATUS_KEY};

/// The Transit key types notation can sign with, and their key specs.
pub const SIGNING_TYPES: &[(&str, KeySpec)] = &[
    ("rsa-2048", KeySpec::Rsa2048),
    ("rsa-3072", KeySpec::Rsa3072),
    ("rsa-4096", KeySpec::Rsa4096),
    ("ecdsa-p256", KeySpec::Ec256),
    ("ecdsa-p384", KeySpec::Ec384),
    ("ecdsa-p521", KeySpec::Ec521),
];

/// Checks a mount path from configuration (it becomes part of request URLs).
pub fn check_mount(mount: &str, key: &str) -> Result<()> {
    let ok = !mount.is_empty()
        && !mount
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
        && mount
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '/'));
    if ok {
        Ok(())
    } else {
        Err(PluginError::validation(format!(
            "pluginConfig {key} '{mount}' is not a Vault mount path (letters, digits, _ - . @ and /)"
        )))
    }
}

/// One version of a Transit key.
#[derive(Clone, Debug, Default)]
pub struct KeyVersion {
    /// PEM public key (empty for key types without one).
    pub public_key: String,
    /// PEM certificate chain stored with `set-certificate` (empty if none).
    pub certificate_chain: String,
}

/// A Transit key as `GET <mount>/keys/<name>` describes it.
#[derive(Clone, Debug)]
pub struct TransitKey {
    pub name: String,
    pub mount: String,
    pub key_type: String,
    pub supports_signing: bool,
    pub latest_version: u64,
    pub versions: BTreeMap<u64, KeyVersion>,
}

impl TransitKey {
    /// Where the key lives, for messages: `'name' on mount 'transit'`.
    pub fn place(&self) -> String {
        format!("Transit key '{}' on mount '{}'", self.name, self.mount)
    }

    /// The key spec of a signing key notation can use, or a VALIDATION_ERROR naming the type.
    pub fn key_spec(&self) -> Result<KeySpec> {
        if let Some((_, spec)) = SIGNING_TYPES.iter().find(|(t, _)| *t == self.key_type) {
            return Ok(*spec);
        }
        let what = if self.supports_signing {
            "a signing key type notation does not support"
        } else {
            "a key type that cannot sign at all"
        };
        Err(PluginError::validation(format!(
            "{} is of type {} ({what}); notation signs with rsa-2048, rsa-3072, rsa-4096, \
             ecdsa-p256, ecdsa-p384 or ecdsa-p521 keys: create one with \
             `vault write -f {}/keys/<name> type=ecdsa-p384`",
            self.place(),
            self.key_type,
            self.mount
        ))
        .with_metadata("keyType", self.key_type.clone()))
    }

    /// The public key of `version`, checked against the key's type.
    pub fn public_key(&self, version: u64) -> Result<PublicKey> {
        let v = self.versions.get(&version).ok_or_else(|| {
            let have: Vec<String> = self.versions.keys().map(u64::to_string).collect();
            PluginError::validation(format!(
                "{} has no version {version}; available versions: {} (latest {})",
                self.place(),
                if have.is_empty() {
                    "none".to_owned()
                } else {
                    have.join(", ")
                },
                self.latest_version
            ))
        })?;
        let key = PublicKey::from_spki_pem(&v.public_key).map_err(|e| {
            e.context(format_args!(
                "the public key of version {version} of {}",
                self.place()
            ))
        })?;
        let spec = self.key_spec()?;
        if key.key_spec() != spec {
            return Err(PluginError::generic(format!(
                "version {version} of {} is of type {} but its public key is an {} key",
                self.place(),
                self.key_type,
                key.key_spec()
            )));
        }
        Ok(key)
    }
}

fn hash_name(spec: KeySpec) -> &'static str {
    match spec.hash_algorithm() {
        plugin_protocol::HashAlgorithm::Sha256 => "sha2-256",
        plugin_protocol::HashAlgorithm::Sha384 => "sha2-384",
        plugin_protocol::HashAlgorithm::Sha512 => "sha2-512",
    }
}

/// Reads a Transit key. An unknown key or mount is a VALIDATION_ERROR naming both.
pub fn read_key(vault: &Vault, mount: &str, name: &str) -> Result<TransitKey> {
    let path = format!("{mount}/keys/{name}");
    let doing = format!("reading Transit key '{name}' (GET {path})");
    let resp = vault
        .call(Method::Get, &path, None, &doing)
        .map_err(|e| not_found(vault, e, mount, name))
        .map_err(|e| vault.explain_denied(e, &path, "read", true))?;
    parse_key(mount, name, &resp).map_err(|why| {
        PluginError::generic(format!(
            "Vault at {} answered {doing} with a malformed answer ({why}); is it a Vault or \
             OpenBao server, and is pluginConfig transit_mount a Transit mount?",
            vault.addr
        ))
    })
}

fn not_found(vault: &Vault, e: PluginError, mount: &str, name: &str) -> PluginError {
    if e.metadata.get(STATUS_KEY).map(String::as_str) != Some("404") {
        return e;
    }
    let ns = vault
        .namespace
        .as_deref()
        .map(|n| format!(" in namespace '{n}'"))
        .unwrap_or_default();
    let msg = if e.message.contains("no handler for route") {
        format!(
            "no Transit secrets engine is mounted at '{mount}/' on Vault at {}{ns}, so Transit key \
             '{name}' cannot be found; set pluginConfig transit_mount to the Transit mount path",
            vault.addr
        )
    } else {
        format!(
            "Transit key '{name}' does not exist on mount '{mount}' at {}{ns}; check the key id \
             (`vault list {mount}/keys`) or set pluginConfig transit_mount",
            vault.addr
        )
    };
    let mut out = PluginError::validation(msg);
    out.metadata = e.metadata;
    out
}

/// The key as Transit describes it; `Err` says what is malformed about the answer (the
/// server's fault, not the user's key).
fn parse_key(
    mount: &str,
    name: &str,
    resp: &Value,
) -> std::result::Result<TransitKey, &'static str> {
    let data = resp
        .get("data")
        .filter(|d| d.is_object())
        .ok_or("no `data` object")?;
    let key_type = data
        .get("type")
        .and_then(Value::as_str)
        .ok_or("no string `data.type`")?
        .to_owned();
    let supports_signing = match data.get("supports_signing") {
        None => false,
        Some(v) => v
            .as_bool()
            .ok_or("`data.supports_signing` is not a boolean")?,
    };
    let latest_version = data
        .get("latest_version")
        .and_then(Value::as_u64)
        .ok_or("no number `data.latest_version`")?;
    if data.get("keys").is_some_and(|k| !k.is_object()) {
        return Err("`data.keys` is not an object");
    }
    let mut versions = BTreeMap::new();
    if let Some(keys) = data.get("keys").and_then(Value::as_object) {
        for (v, entry) in keys {
            let Ok(n) = v.parse::<u64>() else { continue };
            let field = |f: &str| {
                entry
                    .get(f)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            versions.insert(
                n,
                KeyVersion {
                    public_key: field("public_key"),
                    certificate_chain: field("certificate_chain"),
                },
            );
        }
    }
    Ok(TransitKey {
        name: name.to_owned(),
        mount: mount.to_owned(),
        key_type,
        supports_signing,
        latest_version,
        versions,
    })
}

/// Signs `digest` with exactly `version` of the key: prehashed, RSASSA-PSS with salt = hash
/// length for RSA, JWS marshaling (fixed-width r‖s) for ECDSA.
pub fn sign(
    vault: &Vault,
    key: &TransitKey,
    version: u64,
    spec: KeySpec,
    digest: &[u8],
) -> Result<BackendSignature> {
    sign_by_name(vault, &key.mount, &key.name, Some(version), spec, digest).map(|(_, sig)| sig)
}

/// Signs `digest` with Transit key `name` on `mount` without reading the key first: `version`
/// if given, else the latest. Returns the version that signed (Transit's `vault:vN:` prefix)
/// and the signature.
pub fn sign_by_name(
    vault: &Vault,
    mount: &str,
    name: &str,
    version: Option<u64>,
    spec: KeySpec,
    digest: &[u8],
) -> Result<(u64, BackendSignature)> {
    let body = sign_request(version, spec, digest);
    let path = format!("{mount}/sign/{name}");
    let which = match version {
        Some(v) => format!("version {v} of Transit key '{name}' on mount '{mount}'"),
        None => format!("Transit key '{name}' on mount '{mount}'"),
    };
    let doing = format!("signing with {which} (POST {path})");
    let resp = vault
        .call(Method::Post, &path, Some(&body), &doing)
        .map_err(|e| not_found(vault, e, mount, name))
        .map_err(|e| vault.explain_denied(e, &path, "update", false))?;
    let sig = resp
        .get("data")
        .and_then(|d| d.get("signature"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            PluginError::generic(format!("Vault answered {doing} without a signature"))
        })?;
    let (signed_with, bytes) = parse_signature(sig, version, spec)
        .map_err(|why| PluginError::generic(format!("Vault answered {doing} with {why}")))?;
    Ok((
        signed_with,
        BackendSignature::pss_or_fixed_ecdsa(spec, bytes),
    ))
}

/// The body of `POST <mount>/sign/<name>`. Transit's defaults are not what notation accepts: its
/// RSA salt is not the hash length and its ECDSA marshaling is DER, so both are set here.
fn sign_request(version: Option<u64>, spec: KeySpec, digest: &[u8]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut body = json!({
        "input": b64.encode(digest),
        "prehashed": true,
        "hash_algorithm": hash_name(spec),
    });
    if let Some(v) = version {
        body["key_version"] = json!(v);
    }
    if spec.is_rsa() {
        body["signature_algorithm"] = json!("pss");
        body["salt_length"] = json!("hash");
    } else {
        body["marshaling_algorithm"] = json!("jws");
    }
    body
}

/// `vault:v<N>:<base64>` -> the version that signed and the signature bytes; the version must
/// be `version` when one was asked for.
fn parse_signature(
    sig: &str,
    version: Option<u64>,
    spec: KeySpec,
) -> std::result::Result<(u64, Vec<u8>), String> {
    let mut parts = sig.splitn(3, ':');
    let (Some(prefix), Some(v), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("a signature not of the form vault:v<N>:<base64>".into());
    };
    if prefix != "vault" {
        return Err(format!("a signature with the unknown prefix '{prefix}'"));
    }
    let signed_with = v
        .strip_prefix('v')
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("a signature with the key version '{v}', not v<N>"))?;
    if let Some(asked) = version.filter(|asked| *asked != signed_with) {
        return Err(format!(
            "a signature made with key version '{v}' instead of v{asked}"
        ));
    }
    let decoded = if spec.is_rsa() {
        base64::engine::general_purpose::STANDARD.decode(data)
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(data.trim_end_matches('='))
    };
    decoded
        .map(|bytes| (signed_with, bytes))
        .map_err(|e| format!("a signature that is not valid base64 ({e})"))
}

/// `POST <mount>/keys/<name>/csr`: a PKCS#10 request signed by `version` of the key, with the
/// subject (and attributes) of `template_pem`.
pub fn csr(vault: &Vault, key: &TransitKey, version: u64, template_pem: &str) -> Result<String> {
    let path = format!("{}/keys/{}/csr", key.mount, key.name);
    let doing = format!(
        "having version {version} of {} sign a CSR (POST {path})",
        key.place()
    );
    let body = json!({ "version": version, "csr": template_pem });
    let resp = vault
        .call(Method::Post, &path, Some(&body), &doing)
        .map_err(|e| vault.explain_denied(e, &path, "update", false))?;
    resp.get("data")
        .and_then(|d| d.get("csr"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| PluginError::generic(format!("Vault answered {doing} without a csr")))
}

/// `POST <mount>/keys/<name>/set-certificate`: stores `chain_pem` (PEM blocks separated by
/// newlines, leaf first) on `version` of the key.
pub fn set_certificate(
    vault: &Vault,
    key: &TransitKey,
    version: u64,
    chain_pem: &str,
) -> Result<()> {
    let path = format!("{}/keys/{}/set-certificate", key.mount, key.name);
    let doing = format!(
        "storing the certificate chain on version {version} of {} (POST {path})",
        key.place()
    );
    let body = json!({ "version": version, "certificate_chain": chain_pem });
    vault
        .call(Method::Post, &path, Some(&body), &doing)
        .map_err(|e| vault.explain_denied(e, &path, "update", false))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_unwrapped_and_version_checked() {
        assert_eq!(
            parse_signature("vault:v2:AQID", Some(2), KeySpec::Rsa2048).unwrap(),
            (2, vec![1, 2, 3])
        );
        assert_eq!(
            parse_signature("vault:v1:_-8", Some(1), KeySpec::Ec256).unwrap(),
            (1, vec![0xff, 0xef])
        );
        assert_eq!(
            parse_signature("vault:v7:AQID", None, KeySpec::Rsa2048).unwrap(),
            (7, vec![1, 2, 3])
        );
        assert!(parse_signature("vault:v1:AQID", Some(2), KeySpec::Rsa2048)
            .unwrap_err()
            .contains("instead of v2"));
        assert!(parse_signature("vault:vx:AQID", None, KeySpec::Rsa2048)
            .unwrap_err()
            .contains("not v<N>"));
        assert!(parse_signature("AQID", Some(1), KeySpec::Rsa2048).is_err());
    }

    #[test]
    fn sign_requests_ask_for_what_notation_accepts() {
        let digest = KeySpec::Rsa3072.hash_algorithm().digest(b"x");
        assert_eq!(
            sign_request(Some(3), KeySpec::Rsa3072, &digest),
            json!({
                "input": base64::engine::general_purpose::STANDARD.encode(&digest),
                "prehashed": true,
                "hash_algorithm": "sha2-384",
                "key_version": 3,
                "signature_algorithm": "pss",
                "salt_length": "hash",
            })
        );
        assert_eq!(
            sign_request(None, KeySpec::Ec521, &[1, 2]),
            json!({
                "input": "AQI=",
                "prehashed": true,
                "hash_algorithm": "sha2-512",
                "marshaling_algorithm": "jws",
            })
        );
        for (spec, hash) in [
            (KeySpec::Rsa2048, "sha2-256"),
            (KeySpec::Rsa4096, "sha2-512"),
            (KeySpec::Ec256, "sha2-256"),
            (KeySpec::Ec384, "sha2-384"),
        ] {
            let body = sign_request(Some(1), spec, &[0]);
            assert_eq!(body["hash_algorithm"], hash, "{spec}");
            assert_eq!(body["salt_length"].is_string(), spec.is_rsa(), "{spec}");
        }
    }

    #[test]
    fn signing_key_types_map_to_their_specs_and_others_are_named() {
        let key = |key_type: &str, supports_signing: bool| TransitKey {
            name: "k".into(),
            mount: "transit".into(),
            key_type: key_type.into(),
            supports_signing,
            latest_version: 1,
            versions: BTreeMap::new(),
        };
        for (t, spec) in SIGNING_TYPES {
            assert_eq!(key(t, true).key_spec().unwrap(), *spec);
        }
        let err = key("ed25519", true).key_spec().unwrap_err();
        assert!(
            err.message.starts_with("Transit key 'k' on mount 'transit' is of type ed25519 (a signing key type notation does not support)"),
            "{}",
            err.message
        );
        let err = key("aes256-gcm96", false).key_spec().unwrap_err();
        assert!(
            err.message.contains("(a key type that cannot sign at all)"),
            "{}",
            err.message
        );
        assert_eq!(err.metadata["keyType"], "aes256-gcm96");
    }

    #[test]
    fn mounts_are_checked() {
        assert!(check_mount("transit", "m").is_ok());
        assert!(check_mount("team-a/transit", "m").is_ok());
        for bad in ["", "a//b", "../x", "a b", "x?y"] {
            assert!(check_mount(bad, "m").is_err(), "{bad}");
        }
    }
}
