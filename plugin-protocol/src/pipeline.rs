//! The protocol written once: request decoding and checks, the signing pipeline, and the
//! self-verification every signature passes before it is returned.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::backend::{Backend, Payload};
use crate::chain::{self, Certificate};
use crate::config::{Context, CA_CERTS, CERTIFICATE_CHAIN};
use crate::contract::*;
use crate::error::{ErrorCode, PluginError, Result};
use crate::plugin_info::PluginInfo;
use crate::signature::{normalise, verify_digest};
use crate::{KeySpec, PublicKey};

/// Largest request accepted on stdin (notation's payloads are a few KiB).
pub(crate) const MAX_REQUEST_BYTES: usize = 16 << 20;

/// Handles one protocol command: `input` is the raw stdin, the result the stdout JSON.
/// This is everything the runner does except the stdio and process plumbing.
pub fn handle<B: Backend>(
    info: &'static PluginInfo,
    command: Command,
    input: &[u8],
) -> Result<String> {
    if input.iter().all(u8::is_ascii_whitespace) {
        return Err(PluginError::validation(format!(
            "empty request on stdin: notation sends the {} request as JSON; run notation-{} --help \
             for how this plugin is used",
            command.as_str(),
            info.name
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(input).map_err(|e| {
        PluginError::validation(format!(
            "the {} request is not valid JSON: {e}",
            command.as_str()
        ))
    })?;
    if !value.is_object() {
        return Err(PluginError::validation(format!(
            "the {} request must be a JSON object",
            command.as_str()
        )));
    }
    if command != Command::GetPluginMetadata {
        check_contract_version(&value)?;
    }
    match command {
        Command::GetPluginMetadata => {
            let _: GetMetadataRequest = decode(command, value)?;
            to_json(&metadata(info))
        }
        Command::DescribeKey => {
            let req: DescribeKeyRequest = decode(command, value)?;
            let (ctx, key) = context::<B>(info, req.key_id, req.plugin_config)?;
            tracing::debug!(command = command.as_str(), key_id = %ctx.key_name(), config = ?ctx.config);
            to_json(&describe_key::<B>(&ctx, key)?)
        }
        Command::GenerateSignature => {
            let req: GenerateSignatureRequest = decode(command, value)?;
            let (ctx, key) = context::<B>(info, req.key_id.clone(), req.plugin_config.clone())?;
            tracing::debug!(command = command.as_str(), key_id = %ctx.key_name(), key_spec = %req.key_spec, config = ?ctx.config);
            to_json(&generate_signature::<B>(&ctx, key, &req)?)
        }
        Command::GenerateEnvelope | Command::VerifySignature => {
            Err(PluginError::validation(format!(
                "notation-{} signs raw signatures (capability {}); it does not implement {}",
                info.name,
                capability::SIGNATURE_GENERATOR_RAW,
                command.as_str()
            )))
        }
    }
}

/// The get-plugin-metadata response: static data, no backend.
pub(crate) fn metadata(info: &PluginInfo) -> GetMetadataResponse {
    GetMetadataResponse {
        name: info.name.to_owned(),
        description: info.description.to_owned(),
        version: info.version.to_owned(),
        url: info.url.to_owned(),
        supported_contract_versions: vec![CONTRACT_VERSION.to_owned()],
        capabilities: vec![capability::SIGNATURE_GENERATOR_RAW.to_owned()],
    }
}

fn check_contract_version(value: &serde_json::Value) -> Result<()> {
    let version = match value.get("contractVersion") {
        None => {
            return Err(PluginError::validation(
                "missing field `contractVersion` (this plugin implements contract 1.0)",
            ))
        }
        Some(serde_json::Value::String(v)) => v,
        Some(_) => {
            return Err(PluginError::validation(
                "field `contractVersion` must be a string",
            ))
        }
    };
    let major = version.split('.').next().unwrap_or_default();
    if major == "1" {
        Ok(())
    } else {
        Err(PluginError::unsupported_contract_version(format!(
            "contract version '{version}' is not supported: this plugin implements {CONTRACT_VERSION}; \
             use a notation release that speaks plugin contract 1.x"
        )))
    }
}

fn decode<T: DeserializeOwned>(command: Command, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value)
        .map_err(|e| PluginError::validation(format!("invalid {} request: {e}", command.as_str())))
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| PluginError::generic(format!("cannot encode the response: {e}")))
}

/// The invocation's context and the parsed key reference (see [`Context::for_key`]).
fn context<B: Backend>(
    info: &'static PluginInfo,
    key_id: String,
    config: Option<PluginConfig>,
) -> Result<(Context, B::KeyRef)> {
    if key_id.trim().is_empty() {
        return Err(PluginError::validation(format!(
            "field `keyId` is empty; expected {}",
            <B::KeyRef as crate::KeyReference>::HELP
        )));
    }
    let (ctx, key) = Context::for_key::<B::KeyRef>(info, key_id, config)?;
    crate::runner::end_by(ctx.deadline);
    Ok((ctx, key))
}

/// describe-key: one resolution of the key, its spec derived from its public key.
pub(crate) fn describe_key<B: Backend>(
    ctx: &Context,
    key: B::KeyRef,
) -> Result<DescribeKeyResponse> {
    let mut backend = B::connect(ctx, key)?;
    let (_, public_key) = backend.resolve_key(ctx)?;
    Ok(DescribeKeyResponse {
        key_id: ctx.key_id.clone(),
        key_spec: public_key.key_spec(),
    })
}

/// generate-signature for the key `key` (parsed from `req.key_id` by [`Context::for_key`]):
/// validate, assemble and check the chain, hash, sign, normalise, verify.
pub fn generate_signature<B: Backend>(
    ctx: &Context,
    key: B::KeyRef,
    req: &GenerateSignatureRequest,
) -> Result<GenerateSignatureResponse> {
    let spec = req.key_spec;
    let hash = spec.hash_algorithm();
    if req.hash_algorithm != hash {
        return Err(PluginError::validation(format!(
            "hashAlgorithm {} does not match keySpec {spec}: notation pairs {spec} with {hash}",
            req.hash_algorithm
        )));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(req.payload.as_bytes())
        .map_err(|e| {
            PluginError::validation(format!("field `payload` is not valid base64: {e}"))
        })?;

    let mut backend = B::connect(ctx, key)?;
    let digest = hash.digest(&payload);
    let payload = Payload {
        spec,
        message: &payload,
        digest: &digest,
    };
    let (signature, chain) = if B::SIGNS_UNRESOLVED {
        sign_unresolved(&mut backend, ctx, payload)?
    } else {
        sign_resolved(&mut backend, ctx, payload)?
    };

    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(GenerateSignatureResponse {
        key_id: ctx.key_id.clone(),
        signature: b64.encode(&signature),
        signing_algorithm: spec.signing_algorithm(),
        certificate_chain: chain.iter().map(|c| b64.encode(c.der())).collect(),
    })
}

/// The usual order: resolve the key, check its spec and its chain (a broken chain costs no
/// signing operation), sign, and verify the signature under the leaf's key.
fn sign_resolved<B: Backend>(
    backend: &mut B,
    ctx: &Context,
    payload: Payload,
) -> Result<(Vec<u8>, Vec<Certificate>)> {
    let (key, public_key) = backend.resolve_key(ctx)?;
    check_spec(ctx, payload.spec, &public_key)?;
    let chain = assemble_chain(backend, ctx, &key, &public_key)?;
    let leaf = format!("the leaf certificate '{}'", chain[0].subject());
    let signature = sign_checked(backend, ctx, &key, payload, &public_key, &leaf)?;
    Ok((signature, chain))
}

/// The fewest round trips ([`Backend::sign_unresolved`]): the backend signs without reading the
/// key (and fetches its own chain meanwhile, if there is no `certificate_chain` file), while a
/// chain file is read and checked within the sign call's first wait on the backend
/// ([`crate::blocking::while_waiting`]), so that no local work delays the first request; the
/// signature verifying under the leaf's key proves key and certificate match.
///
/// When anything does not check out (the backend says `VALIDATION_ERROR`, the chain cannot be
/// built without knowing the key, the leaf's key spec is not the request's, the signature does
/// not verify), the usual path runs instead ([`sign_resolved`]): it resolves the key first and
/// says what is wrong as it always has (a rotated key, a certificate of another key, an unusable
/// key type), and it still signs when only the guess was wrong (a pool of certificates whose
/// leaf is known only by its key).
fn sign_unresolved<B: Backend>(
    backend: &mut B,
    ctx: &Context,
    payload: Payload,
) -> Result<(Vec<u8>, Vec<Certificate>)> {
    let has_file = ctx.config.get(&CERTIFICATE_CHAIN).is_some();
    // Run within the sign call's wait, which outlives no borrow: on a copy of the context.
    let read_file = {
        let ctx = ctx.clone();
        move || {
            chain_file(&ctx)?
                .map(|certs| complete_chain(&ctx, certs, None))
                .transpose()
        }
    };
    let sign = crate::UnresolvedSign {
        payload,
        fetch_chain: !has_file,
    };
    let (file_chain, signed) = if has_file {
        crate::blocking::while_waiting(read_file, || backend.sign_unresolved(ctx, &sign))
    } else {
        (Ok(None), backend.sign_unresolved(ctx, &sign))
    };
    let (raw, stored) = match signed {
        Ok(signed) => signed,
        // The key id names no usable key, or the request does not fit it: said by the usual
        // path. Throttling, timeouts, access and transport failures are reported as they are.
        Err(e) if e.code == ErrorCode::Validation => {
            tracing::debug!(message = %e.message, "the backend refused; resolving the key");
            return sign_resolved(backend, ctx, payload);
        }
        Err(e) => return Err(e),
    };
    tracing::debug!(signature = ?raw, certificates = stored.len(), "signed without resolving");
    let checked = file_chain.and_then(|file_chain| {
        let chain = match file_chain {
            Some(chain) => chain,
            None => complete_chain(ctx, backend_certificates(&stored)?, None)?,
        };
        let leaf_key = chain[0].public_key()?;
        check_spec(ctx, payload.spec, &leaf_key)?;
        let leaf = format!("the leaf certificate '{}'", chain[0].subject());
        let signature = checked_signature(ctx, payload, raw, &leaf_key, &leaf)?;
        Ok((signature, chain))
    });
    checked.or_else(|e: PluginError| {
        tracing::debug!(code = %e.code, message = %e.message, "the chain or the signature did not check out; resolving the key");
        sign_resolved(backend, ctx, payload)
    })
}

/// The one signing core, for generate-signature and the certificate commands alike: the
/// backend signs `payload` with `key`, and the signature is normalised (ECDSA to its fixed
/// r||s form, which [`crate::signature::ecdsa_fixed_to_der`] turns back into DER for X.509) and
/// verified under `public_key`, described by `holder` ("the leaf certificate 'CN=...'").
pub(crate) fn sign_checked<B: Backend>(
    backend: &mut B,
    ctx: &Context,
    key: &B::Key,
    payload: Payload,
    public_key: &PublicKey,
    holder: &str,
) -> Result<Vec<u8>> {
    let raw = backend.sign(ctx, key, &payload)?;
    checked_signature(ctx, payload, raw, public_key, holder)
}

/// `raw` normalised to what notation accepts and verified under `public_key` (described by
/// `holder`) over the payload's digest.
fn checked_signature(
    ctx: &Context,
    payload: Payload,
    raw: crate::BackendSignature,
    public_key: &PublicKey,
    holder: &str,
) -> Result<Vec<u8>> {
    let spec = payload.spec;
    let signature = normalise(spec, raw).map_err(|p| {
        PluginError::generic(format!(
            "the backend returned an unusable signature for key '{}': {p}",
            ctx.key_name()
        ))
    })?;
    verify_digest(
        public_key,
        spec.hash_algorithm(),
        payload.digest,
        &signature,
    )
    .map_err(|p| {
        PluginError::generic(format!(
            "self-check failed for key '{}': the signature does not verify with {holder}: {p}",
            ctx.key_name(),
        ))
    })?;
    Ok(signature)
}

fn check_spec(ctx: &Context, requested: KeySpec, key: &PublicKey) -> Result<()> {
    if key.key_spec() == requested {
        return Ok(());
    }
    Err(PluginError::validation(format!(
        "key '{}' is an {} key but the request asks for {requested}; describe the key again \
         (notation key add) so that notation uses its real key spec",
        ctx.key_name(),
        key.key_spec()
    )))
}

/// The chain for `key`: `certificate_chain` if configured, else the backend's own, plus
/// `ca_certs`; then ordered and checked against every Notary rule at the current time.
pub(crate) fn assemble_chain<B: Backend>(
    backend: &mut B,
    ctx: &Context,
    key: &B::Key,
    public_key: &PublicKey,
) -> Result<Vec<Certificate>> {
    let certs = match chain_file(ctx)? {
        Some(certs) => certs,
        None => backend_certificates(&backend.certificate_chain(ctx, key)?)?,
    };
    complete_chain(ctx, certs, Some(public_key))
}

/// The certificates of the configured `certificate_chain` file, if one is configured.
fn chain_file(ctx: &Context) -> Result<Option<Vec<Certificate>>> {
    ctx.config
        .path(&CERTIFICATE_CHAIN)
        .map(|(path, source)| {
            chain::load_file(&path).map_err(|e| e.context(format_args!("{source}")))
        })
        .transpose()
}

/// The certificates a backend returned, parsed.
fn backend_certificates(ders: &[Vec<u8>]) -> Result<Vec<Certificate>> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| Certificate::from_der(der, &format!("backend certificate #{}", i + 1)))
        .collect()
}

/// `certs` plus `ca_certs`, built into the path leaf -> root and checked against every Notary
/// rule at the current time (with `key`: the leaf must hold it).
fn complete_chain(
    ctx: &Context,
    mut certs: Vec<Certificate>,
    key: Option<&PublicKey>,
) -> Result<Vec<Certificate>> {
    if let Some((path, source)) = ctx.config.path(&CA_CERTS) {
        let extra = chain::load_file(&path).map_err(|e| e.context(format_args!("{source}")))?;
        certs.extend(extra);
    }
    if certs.is_empty() {
        let info = ctx.config.info();
        return Err(PluginError::validation(format!(
            "no certificate chain for key '{}': {} holds none; set pluginConfig certificate_chain \
             to a PEM file with the chain (leaf first, root last), or {}",
            ctx.key_name(),
            info.chain_sources_help,
            crate::config::Config::env_name(info, CERTIFICATE_CHAIN.name)
        )));
    }
    chain::build(
        certs,
        key.map(|k| (ctx.key_name(), k)),
        std::time::SystemTime::now(),
    )
}
