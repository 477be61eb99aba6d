//! The adapter: Vault Transit behind the shared [`Backend`] trait.

use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::{
    Backend, BackendSignature, Context, Payload, PluginError, PublicKey, Result, Signed,
    UnresolvedSign,
};
use serde_json::Value;

use crate::http::{Method, Vault, STATUS_KEY};
use crate::keyref::KeyRef;
use crate::transit::{self, TransitKey};
use crate::{CHAIN_SOURCE, KV_FIELD, KV_MOUNT, KV_PATH, TRANSIT_MOUNT};
use plugin_protocol::config::{CA_CERTS, CERTIFICATE_CHAIN};

/// Default mounts and field of the chain sources.
pub const DEFAULT_TRANSIT_MOUNT: &str = "transit";
pub const DEFAULT_KV_MOUNT: &str = "secret";
pub const DEFAULT_KV_FIELD: &str = "certificate";

pub struct VaultBackend {
    pub vault: Vault,
    pub mount: String,
    /// Whether resolve_key compares a configured `certificate_chain` file with the key's other
    /// versions (off for `issue-certificate`, which replaces a stale certificate).
    pub check_chain_file: bool,
    /// The token came from a login: revoked when the invocation is done.
    logged_in: bool,
    /// The key id, parsed once before any request.
    key_ref: KeyRef,
}

impl Drop for VaultBackend {
    fn drop(&mut self) {
        if self.logged_in {
            self.vault.revoke_token();
        }
    }
}

/// A resolved key: the Transit key and the one version that describes, signs and is certified.
#[derive(Debug)]
pub struct VaultKey {
    pub key: TransitKey,
    pub version: u64,
    pub public: PublicKey,
}

/// Where the certificate chain comes from when `certificate_chain` (a file) is not set.
#[derive(Clone, Debug, PartialEq, Eq)]
enum ChainSource {
    /// The chain stored on the signing key version (`set-certificate`).
    Transit,
    /// A KV v2 secret: mount, path, field.
    Kv {
        mount: String,
        path: String,
        field: String,
    },
}

fn chain_source(ctx: &Context, key_name: &str) -> Result<ChainSource> {
    let cfg = &ctx.config;
    let kv_configured = [KV_MOUNT, KV_PATH, KV_FIELD]
        .iter()
        .any(|k| cfg.get(k).is_some());
    let source = match cfg.choice(&CHAIN_SOURCE, &["transit", "kv"])? {
        Some((v, _)) => v,
        None if kv_configured => "kv",
        None => "transit",
    };
    if source == "transit" {
        return Ok(ChainSource::Transit);
    }
    let mount = cfg
        .get(&KV_MOUNT)
        .map(|m| m.trim().trim_matches('/').to_owned())
        .unwrap_or_else(|| DEFAULT_KV_MOUNT.to_owned());
    transit::check_mount(&mount, KV_MOUNT.name)?;
    let path = cfg
        .get(&KV_PATH)
        .map(|p| p.trim().trim_matches('/').to_owned())
        .unwrap_or_else(|| key_name.to_owned());
    transit::check_mount(&path, KV_PATH.name)?;
    let field = cfg
        .get(&KV_FIELD)
        .unwrap_or_else(|| DEFAULT_KV_FIELD.to_owned());
    Ok(ChainSource::Kv { mount, path, field })
}

impl Backend for VaultBackend {
    type KeyRef = KeyRef;
    type Key = VaultKey;

    fn connect(ctx: &Context, key_ref: KeyRef) -> Result<Self> {
        let mount = ctx
            .config
            .get(&TRANSIT_MOUNT)
            .map(|m| m.trim().trim_matches('/').to_owned())
            .unwrap_or_else(|| DEFAULT_TRANSIT_MOUNT.to_owned());
        transit::check_mount(&mount, TRANSIT_MOUNT.name)?;
        let mut vault = Vault::new(&ctx.config, ctx.deadline)?;
        let logged_in = crate::auth::authenticate(&mut vault, &ctx.config)?;
        if logged_in {
            // A signal during a later call revokes the login token: it must not outlive the
            // cancelled invocation.
            if let Some(revoke) = vault.revoker() {
                plugin_protocol::on_interrupt(revoke);
            }
        }
        Ok(Self {
            vault,
            mount,
            check_chain_file: true,
            logged_in,
            key_ref,
        })
    }

    fn resolve_key(&mut self, ctx: &Context) -> Result<(VaultKey, PublicKey)> {
        let key_ref = &self.key_ref;
        let key = transit::read_key(&self.vault, &self.mount, &key_ref.name)?;
        key.key_spec()?;
        let version = key_ref.version.unwrap_or(key.latest_version);
        let public = key.public_key(version)?;
        // A configured chain file certifying another version of this key (the key was rotated
        // after its certificate was issued) gets a message naming both versions.
        if let Some((path, _)) = ctx
            .config
            .path(&CERTIFICATE_CHAIN)
            .filter(|_| self.check_chain_file)
        {
            if let Ok(certs) = chain::load_file(&path) {
                check_version(&key, version, &public, &certs, CERTIFICATE_CHAIN.name)?;
            }
        }
        let resolved = VaultKey {
            key,
            version,
            public: public.clone(),
        };
        tracing::debug!(key = %resolved.key.name, version, spec = %public.key_spec(), "resolved");
        Ok((resolved, public))
    }

    fn sign(
        &mut self,
        _ctx: &Context,
        key: &VaultKey,
        payload: &Payload,
    ) -> Result<BackendSignature> {
        let (spec, digest) = (payload.spec, payload.digest);
        transit::sign(&self.vault, &key.key, key.version, spec, digest)
    }

    fn certificate_chain(&mut self, ctx: &Context, key: &VaultKey) -> Result<Vec<Vec<u8>>> {
        let ders = match chain_source(ctx, &key.key.name)? {
            ChainSource::Transit => transit_chain(key)?,
            ChainSource::Kv { mount, path, field } => {
                let pem = read_kv_chain(&self.vault, &mount, &path, &field)?;
                let source = format!("KV secret '{mount}/{path}' field '{field}'");
                let certs = chain::parse_pem_or_der(pem.as_bytes(), &source)?;
                check_version(&key.key, key.version, &key.public, &certs, &source)?;
                certs.iter().map(|c| c.der().to_vec()).collect()
            }
        };
        Ok(without_ca_certs(ctx, ders))
    }

    const SIGNS_UNRESOLVED: bool = true;

    /// One sign request, plus the chain's own read at the same time when there is no chain
    /// file: the Transit key (whose version that signed holds the chain) or the KV secret.
    fn sign_unresolved(&mut self, ctx: &Context, sign: &UnresolvedSign) -> Result<Signed> {
        let (spec, digest) = (sign.payload.spec, sign.payload.digest);
        let key_ref = &self.key_ref;
        let (vault, mount, name) = (&self.vault, self.mount.as_str(), key_ref.name.as_str());
        let transit_sign =
            || transit::sign_by_name(vault, mount, name, key_ref.version, spec, digest);
        if !sign.fetch_chain {
            return Ok((transit_sign()?.1, Vec::new()));
        }
        let source = chain_source(ctx, name)?;
        let (stored, signed) = plugin_protocol::blocking::concurrently(
            || match &source {
                ChainSource::Transit => {
                    transit::read_key(vault, mount, name).map(StoredChain::OnKey)
                }
                ChainSource::Kv { mount, path, field } => read_kv_chain(vault, mount, path, field)
                    .map(|pem| {
                        let source = format!("KV secret '{mount}/{path}' field '{field}'");
                        StoredChain::Pem(pem, source)
                    }),
            },
            transit_sign,
        );
        let (version, signature) = signed?;
        let ders = match stored? {
            StoredChain::OnKey(key) => {
                let public = key.public_key(version)?;
                transit_chain(&VaultKey {
                    key,
                    version,
                    public,
                })?
            }
            StoredChain::Pem(pem, source) => chain::parse_pem_or_der(pem.as_bytes(), &source)?
                .iter()
                .map(|c| c.der().to_vec())
                .collect(),
        };
        tracing::debug!(key = name, version, "signed without reading the key first");
        Ok((signature, without_ca_certs(ctx, ders)))
    }
}

/// A chain read at the same time as the sign call: the Transit key (its versions' chains), or a
/// PEM chain from KV (and where it came from, for messages).
enum StoredChain {
    OnKey(TransitKey),
    Pem(String, String),
}

/// `ders` without the CA certificates of `ca_certs`: a stored chain that already holds them
/// (issue-certificate stores complete chains) must not get them twice when the shared code
/// appends them.
fn without_ca_certs(ctx: &Context, mut ders: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if let Some((path, _)) = ctx.config.path(&CA_CERTS) {
        if let Ok(extra) = chain::load_file(&path) {
            ders.retain(|d| !extra.iter().any(|c| c.der() == d.as_slice()));
        }
    }
    ders
}

/// The chain stored on the signing version; when it has none but another version has, the key
/// was rotated after the certificate was issued: say so.
fn transit_chain(key: &VaultKey) -> Result<Vec<Vec<u8>>> {
    let version = key.version;
    let stored = key
        .key
        .versions
        .get(&version)
        .map(|v| v.certificate_chain.trim())
        .unwrap_or_default();
    if stored.is_empty() {
        let certified: Vec<String> = key
            .key
            .versions
            .iter()
            .filter(|(_, v)| !v.certificate_chain.trim().is_empty())
            .map(|(n, _)| n.to_string())
            .collect();
        if let Some(last) = certified.last() {
            return Err(PluginError::validation(format!(
                "version {version} of {} (the version that signs) has no certificate chain, but \
                 version(s) {} have one: the key was rotated after its certificate was issued. \
                 Issue a certificate for version {version} (`notation-hashicorp-vault \
                 issue-certificate --key-id {}`), or pin the key id to {}:{last}",
                key.key.place(),
                certified.join(", "),
                key.key.name,
                key.key.name
            )));
        }
        return Ok(Vec::new());
    }
    let source = format!(
        "the certificate chain on version {version} of {}",
        key.key.place()
    );
    let certs = chain::parse_pem_or_der(stored.as_bytes(), &source)?;
    Ok(certs.iter().map(|c| c.der().to_vec()).collect())
}

/// If no certificate holds `public` (the signing version's key) but one holds another version's
/// key, names both versions.
fn check_version(
    key: &TransitKey,
    version: u64,
    public: &PublicKey,
    certs: &[Certificate],
    source: &str,
) -> Result<()> {
    let keys: Vec<PublicKey> = certs.iter().filter_map(|c| c.public_key().ok()).collect();
    if keys.iter().any(|k| k == public) {
        return Ok(());
    }
    for (n, v) in &key.versions {
        if *n == version {
            continue;
        }
        let Ok(other) = PublicKey::from_spki_pem(&v.public_key) else {
            continue;
        };
        if keys.contains(&other) {
            return Err(PluginError::validation(format!(
                "the certificate chain from {source} certifies version {n} of {}, but version \
                 {version} is the one that signs (the key was rotated, or the key id pins another \
                 version). Issue a certificate for version {version} (`notation-hashicorp-vault \
                 issue-certificate --key-id {}:{version}`), or pin the key id to {}:{n}",
                key.place(),
                key.name,
                key.name
            )));
        }
    }
    Ok(())
}

/// The PEM chain in a KV v2 secret, laid out as the experimental notation-hashicorp-vault
/// plugin writes it: mount `secret`, path = key name, field `certificate`.
fn read_kv_chain(vault: &Vault, mount: &str, path: &str, field: &str) -> Result<String> {
    let api = format!("{mount}/data/{path}");
    let doing =
        format!("reading the certificate chain from KV v2 secret '{mount}/{path}' (GET {api})");
    let resp = vault
        .call(Method::Get, &api, None, &doing)
        .map_err(|e| vault.explain_denied(e, &api, "read", false))
        .map_err(|e| {
            if e.metadata.get(STATUS_KEY).map(String::as_str) == Some("404") {
                let mut out = PluginError::validation(format!(
                    "there is no KV v2 secret '{path}' on mount '{mount}' at {} to read the \
                 certificate chain from; store it (`vault kv put -mount={mount} {path} \
                 {field}=@chain.pem`) or set kv_mount / kv_path",
                    vault.addr
                ));
                out.metadata = e.metadata;
                out
            } else {
                e
            }
        })?;
    let data = resp.get("data").and_then(|d| d.get("data"));
    match data.and_then(|d| d.get(field)) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => {
            let fields: Vec<String> = data
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            Err(PluginError::validation(format!(
                "KV v2 secret '{mount}/{path}' has no field '{field}' with a PEM certificate \
                 chain (its fields: {}); set kv_field",
                if fields.is_empty() {
                    "none".to_owned()
                } else {
                    fields.join(", ")
                }
            )))
        }
    }
}
