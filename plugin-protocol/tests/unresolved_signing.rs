//! generate-signature in the fewest round trips (`Backend::sign_unresolved`), through the
//! shared pipeline with a remote-like backend that records every call it gets: the key is not
//! resolved on the success path, the chain is fetched only without a chain file, and every
//! failure goes through the usual path, which says what is wrong.

mod common;

use std::sync::Mutex;

use base64::Engine as _;
use common::{chain_path, config, KeyOnDisk};
use plugin_protocol::contract::GenerateSignatureRequest;
use plugin_protocol::pipeline::generate_signature;
use plugin_protocol::signature::verify_digest;
use plugin_protocol::softkey::SoftKey;
use plugin_protocol::{
    Backend, BackendSignature, Certificate, ConfigKey, Context, ErrorCode, KeySpec, Payload,
    PlainKeyId, PluginError, PluginInfo, PublicKey, Result, Signed, UnresolvedSign,
};

/// The calls the backend got, in order, in this test process (the tests take [`LOCK`]).
static CALLS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static LOCK: Mutex<()> = Mutex::new(());

fn record(call: impl Into<String>) {
    CALLS.lock().unwrap().push(call.into());
}

const REFUSE: ConfigKey = ConfigKey::new(
    "refuse",
    &[],
    "validation or throttled: how the sign call fails",
);
const FLIP: ConfigKey = ConfigKey::new(
    "flip",
    &[],
    "true: the signature comes back with a bit flipped",
);
const CHAIN_WHEN_WAITING: ConfigKey = ConfigKey::new(
    "chain_when_waiting",
    &[],
    "a PEM file that the sign call copies to certificate_chain before it waits on the backend",
);

static INFO: PluginInfo = PluginInfo {
    name: "remote",
    description: "a remote-like test backend",
    version: "1.0.0",
    url: "https://example.com",
    config_keys: &[REFUSE, FLIP, CHAIN_WHEN_WAITING],
    chain_sources_help: "<key>.chain.pem",
};

/// A backend that signs from the key id alone (like KMS or Transit) with a key file.
struct Remote;

impl Remote {
    fn sign_digest(ctx: &Context, spec: KeySpec, digest: &[u8]) -> Result<BackendSignature> {
        match ctx.config.get(&REFUSE).as_deref() {
            Some("validation") => return Err(PluginError::validation("no such key")),
            Some("throttled") => return Err(PluginError::throttled("slow down")),
            _ => {}
        }
        let pem = std::fs::read_to_string(&ctx.key_id).unwrap();
        let sig = SoftKey::from_pkcs8_pem(&pem)?.sign(
            digest,
            spec,
            spec.hash_algorithm().output_len(),
            false,
        )?;
        Ok(match (sig, ctx.config.get(&FLIP).is_some()) {
            (BackendSignature::EcdsaFixed(mut s), true) => {
                *s.last_mut().unwrap() ^= 1;
                BackendSignature::EcdsaFixed(s)
            }
            (sig, _) => sig,
        })
    }

    fn stored(ctx: &Context) -> Vec<Vec<u8>> {
        let path = format!("{}.chain.pem", ctx.key_id);
        plugin_protocol::chain::load_file(std::path::Path::new(&path))
            .map(|certs| certs.iter().map(|c| c.der().to_vec()).collect())
            .unwrap_or_default()
    }
}

impl Backend for Remote {
    type KeyRef = PlainKeyId;
    type Key = ();

    fn connect(_ctx: &Context, _key: PlainKeyId) -> Result<Self> {
        Ok(Self)
    }

    fn resolve_key(&mut self, ctx: &Context) -> Result<((), PublicKey)> {
        record("resolve_key");
        let pem = std::fs::read_to_string(&ctx.key_id).unwrap();
        Ok(((), SoftKey::from_pkcs8_pem(&pem)?.public_key()?))
    }

    fn sign(&mut self, ctx: &Context, _key: &(), payload: &Payload) -> Result<BackendSignature> {
        record("sign");
        Self::sign_digest(ctx, payload.spec, payload.digest)
    }

    // As AWS KMS and Cloud KMS do: the chain is found from the key reference alone, and the
    // usual path's certificate_chain is the trait's default, which asks this.
    fn chain_by_reference(&self, ctx: &Context) -> Result<Vec<Vec<u8>>> {
        record("chain_by_reference");
        Ok(Self::stored(ctx))
    }

    const SIGNS_UNRESOLVED: bool = true;

    fn sign_unresolved(&mut self, ctx: &Context, sign: &UnresolvedSign) -> Result<Signed> {
        record(format!("sign_unresolved fetch_chain={}", sign.fetch_chain));
        if let Some(chain) = ctx.config.get(&CHAIN_WHEN_WAITING) {
            let file = ctx
                .config
                .get(&plugin_protocol::config::CERTIFICATE_CHAIN)
                .unwrap();
            // Preparing the request takes a while; then it goes out.
            std::thread::sleep(std::time::Duration::from_millis(200));
            std::fs::copy(&chain, &file).unwrap();
            // The request is out: from here on, the answer is awaited.
            plugin_protocol::blocking::waiting_on_backend();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        plugin_protocol::blocking::sign_and_fetch_chain(
            sign.fetch_chain,
            || Ok(Self::stored(ctx)),
            || Self::sign_digest(ctx, sign.payload.spec, sign.payload.digest),
        )
    }
}

const PAYLOAD: &[u8] = b"fewest round trips";

/// generate-signature for `key_id` with `pairs`; the calls the backend got.
fn sign(key_id: &str, spec: KeySpec, pairs: &[(&str, &str)]) -> (Result<Vec<u8>>, Vec<String>) {
    CALLS.lock().unwrap().clear();
    let (ctx, key) = Context::for_key(&INFO, key_id.to_owned(), config(pairs)).unwrap();
    let req = GenerateSignatureRequest {
        contract_version: "1.0".into(),
        key_id: key_id.into(),
        key_spec: spec,
        hash_algorithm: spec.hash_algorithm(),
        payload: base64::engine::general_purpose::STANDARD.encode(PAYLOAD),
        plugin_config: None,
    };
    let result = generate_signature::<Remote>(&ctx, key, &req).map(|r| {
        let b64 = base64::engine::general_purpose::STANDARD;
        let leaf =
            Certificate::from_der(&b64.decode(&r.certificate_chain[0]).unwrap(), "leaf").unwrap();
        let sig = b64.decode(&r.signature).unwrap();
        let hash = spec.hash_algorithm();
        verify_digest(
            &leaf.public_key().unwrap(),
            hash,
            &hash.digest(PAYLOAD),
            &sig,
        )
        .expect("the returned signature verifies under the returned leaf");
        sig
    });
    (result, CALLS.lock().unwrap().clone())
}

#[test]
fn a_chain_file_costs_one_sign_call_and_no_key_resolution() {
    let _lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let file = chain_path(&key.key_path);
    let (result, calls) = sign(
        &key.key_id(),
        KeySpec::Ec256,
        &[("certificate_chain", file.to_str().unwrap())],
    );
    result.unwrap();
    assert_eq!(calls, ["sign_unresolved fetch_chain=false"]);
}

#[test]
fn a_chain_file_is_read_only_once_the_sign_call_waits_on_the_backend() {
    let _lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let key = KeyOnDisk::new(KeySpec::Ec256);
    // Until the sign call is out, certificate_chain holds no certificate: read before, the
    // chain would be refused (and the key resolved to explain it).
    let file = key.key_path.with_extension("later.pem");
    std::fs::write(&file, "not yet a chain\n").unwrap();
    let (result, calls) = sign(
        &key.key_id(),
        KeySpec::Ec256,
        &[
            ("certificate_chain", file.to_str().unwrap()),
            (
                "chain_when_waiting",
                chain_path(&key.key_path).to_str().unwrap(),
            ),
        ],
    );
    result.unwrap();
    assert_eq!(calls, ["sign_unresolved fetch_chain=false"]);
}

#[test]
fn without_a_chain_file_the_backend_fetches_its_chain_with_the_sign_call() {
    let _lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let key = KeyOnDisk::new(KeySpec::Ec384);
    let (result, calls) = sign(&key.key_id(), KeySpec::Ec384, &[]);
    result.unwrap();
    assert_eq!(calls, ["sign_unresolved fetch_chain=true"]);
}

#[test]
fn a_chain_file_of_another_key_is_explained_by_the_usual_path() {
    let _lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let other = KeyOnDisk::new(KeySpec::Ec256);
    let file = chain_path(&other.key_path);
    let (result, calls) = sign(
        &key.key_id(),
        KeySpec::Ec256,
        &[("certificate_chain", file.to_str().unwrap())],
    );
    let e = result.unwrap_err();
    assert_eq!(e.code, ErrorCode::Validation, "{}", e.message);
    assert!(e.message.contains("release signer"), "{}", e.message);
    // Signed once without resolving, then resolved to explain; never signed again.
    assert_eq!(
        calls,
        ["sign_unresolved fetch_chain=false", "resolve_key"],
        "{}",
        e.message
    );
}

#[test]
fn a_request_of_another_key_spec_is_refused_by_the_usual_path() {
    let _lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let file = chain_path(&key.key_path);
    let (result, calls) = sign(
        &key.key_id(),
        KeySpec::Ec384,
        &[("certificate_chain", file.to_str().unwrap())],
    );
    let e = result.unwrap_err();
    assert!(
        e.message
            .contains("is an EC-256 key but the request asks for EC-384"),
        "{}",
        e.message
    );
    // The chain file is checked while the backend signs; the spec check comes after.
    assert_eq!(calls, ["sign_unresolved fetch_chain=false", "resolve_key"]);
}

#[test]
fn a_backend_refusal_is_explained_and_other_failures_are_reported_as_they_are() {
    let _lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let (result, calls) = sign(&key.key_id(), KeySpec::Ec256, &[("refuse", "validation")]);
    assert_eq!(result.unwrap_err().code, ErrorCode::Validation);
    assert_eq!(
        calls,
        [
            "sign_unresolved fetch_chain=true",
            "resolve_key",
            "chain_by_reference",
            "sign"
        ]
    );

    let (result, calls) = sign(&key.key_id(), KeySpec::Ec256, &[("refuse", "throttled")]);
    let e = result.unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::Throttled, "slow down")
    );
    assert_eq!(calls, ["sign_unresolved fetch_chain=true"]);
}

#[test]
fn a_signature_that_does_not_verify_is_never_returned() {
    let _lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let (result, calls) = sign(&key.key_id(), KeySpec::Ec256, &[("flip", "true")]);
    let e = result.unwrap_err();
    assert_eq!(e.code, ErrorCode::Generic);
    assert!(e.message.contains("self-check failed"), "{}", e.message);
    assert_eq!(
        calls,
        [
            "sign_unresolved fetch_chain=true",
            "resolve_key",
            "chain_by_reference",
            "sign"
        ]
    );
}

#[test]
fn a_chain_file_whose_leaf_is_known_only_by_its_key_still_signs() {
    let _lock = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let other = KeyOnDisk::new(KeySpec::Ec256);
    let mine = std::fs::read_to_string(chain_path(&key.key_path)).unwrap();
    let theirs = std::fs::read_to_string(chain_path(&other.key_path)).unwrap();
    let other_leaf = &theirs[..theirs.find("-----END CERTIFICATE-----").unwrap() + 26];
    // Another end-entity certificate first: alone (its issuer missing), or with its own root.
    for (what, pool) in [
        ("an orphan leaf", format!("{other_leaf}{mine}")),
        ("another whole chain", format!("{theirs}{mine}")),
    ] {
        let file = key.dir.path().join("pool.pem");
        std::fs::write(&file, pool).unwrap();
        let (result, calls) = sign(
            &key.key_id(),
            KeySpec::Ec256,
            &[("certificate_chain", file.to_str().unwrap())],
        );
        result.unwrap_or_else(|e| panic!("{what}: {}", e.message));
        assert_eq!(
            calls.last().map(String::as_str),
            Some("sign"),
            "{what}: {calls:?}"
        );
    }
}
