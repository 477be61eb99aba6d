//! Answers tampered with on their way back from a real backend, one table for every remote
//! backend: the sign call throttled twice and then answered, answered slowly (within and past the
//! deadline), never answered, answered with a signature one bit off, or with an ECDSA signature
//! in the other encoding (DER where r‖s is declared, r‖s where DER is). Each backend's fixture of
//! the contract suite ([`crate::contract::Fixture::tampered`]) says how to arrange a tampering
//! ([`Arrange`]: a [`crate::fake::tampering_proxy`] in front of LocalStack or OpenBao, the
//! emulator's fault injection for Key Vault), and the suite calls [`run`].

use std::time::Duration;

use base64::Engine;
use plugin_protocol::client::{Invocation, PluginClient};
use plugin_protocol::contract::GenerateSignatureResponse;
use plugin_protocol::signature::{ecdsa_der_to_fixed, ecdsa_fixed_to_der, verify_digest};
use plugin_protocol::{chain::Certificate, KeySpec};

use crate::fake::{tampering_proxy, Fake, Tamper};

/// One way the answer to the sign call is tampered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tampering {
    /// 429 twice, then the backend's own answer.
    ThrottledTwice,
    /// The answer comes after [`SLOW`], well within the deadline.
    Slow,
    /// The answer comes after [`SLOW`], past a 1-second deadline.
    SlowPastDeadline,
    /// No answer at all.
    Hung,
    /// The signature with its last bit flipped.
    FlippedSignature,
    /// An ECDSA signature in the encoding the backend does not use.
    OtherEcdsaEncoding,
}

/// How long a slow backend takes to answer the sign call.
pub const SLOW: Duration = Duration::from_millis(1500);

impl Tampering {
    pub const ALL: [Tampering; 6] = [
        Tampering::ThrottledTwice,
        Tampering::Slow,
        Tampering::SlowPastDeadline,
        Tampering::Hung,
        Tampering::FlippedSignature,
        Tampering::OtherEcdsaEncoding,
    ];

    /// The deadline (pluginConfig `timeout_seconds`) of the signing run.
    fn timeout_seconds(self) -> &'static str {
        match self {
            Tampering::SlowPastDeadline | Tampering::Hung => "1",
            _ => "10",
        }
    }
}

/// An arranged tampering: the EC-256 key to sign with, its pluginConfig and the plugin's
/// environment (pointing at a proxy, or the backend whose emulator now tampers).
pub struct Arranged {
    pub key_id: String,
    pub pairs: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
    /// What must live until the run is over (a chain file's directory).
    pub hold: Option<Box<dyn std::any::Any>>,
}

/// Arranges one tampering of the sign call of an EC-256 key.
pub type Arrange<'a> = dyn Fn(Tampering) -> Arranged + Sync + 'a;

/// `sig` with its last bit flipped (still well-formed DER or r‖s, but wrong); an empty
/// signature stays empty.
pub fn flip_bit(mut sig: Vec<u8>) -> Vec<u8> {
    if let Some(b) = sig.last_mut() {
        *b ^= 0x01;
    }
    sig
}

/// An EC-256 signature in the other encoding: DER becomes r‖s, r‖s becomes DER.
pub fn other_ecdsa_encoding(sig: Vec<u8>) -> Vec<u8> {
    ecdsa_der_to_fixed(KeySpec::Ec256, &sig)
        .or_else(|| ecdsa_fixed_to_der(KeySpec::Ec256, &sig))
        .unwrap_or(sig)
}

/// `value` (base64 in `engine`'s alphabet) with its bytes changed by `f`; a value that is not
/// base64 is kept.
pub fn edit_base64(value: &str, engine: &impl Engine, f: fn(Vec<u8>) -> Vec<u8>) -> String {
    match engine.decode(value) {
        Ok(bytes) => engine.encode(f(bytes)),
        Err(_) => value.to_owned(),
    }
}

/// The proxy in front of `upstream` (OpenBao, LocalStack) that does `t` to the sign call (the
/// requests whose head contains `sign_call`): `throttled` is the backend's own 429 body;
/// `flip` and `other_encoding` edit its sign answer with [`flip_bit`] and
/// [`other_ecdsa_encoding`].
pub fn proxy(
    upstream: &str,
    sign_call: &'static str,
    t: Tampering,
    throttled: &'static str,
    flip: fn(&mut serde_json::Value),
    other_encoding: fn(&mut serde_json::Value),
) -> Fake {
    let tamper = match t {
        Tampering::ThrottledTwice => Tamper::Fail {
            count: 2,
            status: "429 Too Many Requests",
            body: throttled,
        },
        Tampering::Slow | Tampering::SlowPastDeadline => Tamper::Delay(SLOW),
        Tampering::Hung => Tamper::Hang,
        Tampering::FlippedSignature => Tamper::EditJson(flip),
        Tampering::OtherEcdsaEncoding => Tamper::EditJson(other_encoding),
    };
    tampering_proxy(upstream, sign_call, tamper)
}

/// Runs every tampering on `plugin` (in parallel) and asserts what each must give.
#[track_caller]
pub fn run(plugin: &str, arrange: &Arrange<'_>) {
    let wrong = crate::check_all(Tampering::ALL.to_vec(), |t| {
        check(plugin, t, arrange(t)).err()
    });
    assert!(wrong.is_empty(), "{plugin}:\n{}", wrong.join("\n"));
}

fn check(plugin: &str, t: Tampering, arranged: Arranged) -> Result<(), String> {
    let Arranged {
        key_id,
        mut pairs,
        env,
        hold: _hold,
    } = arranged;
    pairs.push(("timeout_seconds".into(), t.timeout_seconds().into()));
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut client = PluginClient::new(crate::plugin_binary(plugin)).with_envs(&env);
    client.timeout = Duration::from_secs(30);
    let inv = client
        .generate_signature(
            &key_id,
            KeySpec::Ec256,
            KeySpec::Ec256.hash_algorithm(),
            PAYLOAD,
            crate::config(&pairs),
        )
        .map_err(|e| format!("{t:?}: cannot run the plugin: {e}"))?;
    let outcome = match t {
        Tampering::ThrottledTwice => signed(&inv),
        Tampering::Slow => signed(&inv).and_then(|()| {
            (inv.elapsed >= SLOW)
                .then_some(())
                .ok_or(format!("answered in {:?}, before the backend", inv.elapsed))
        }),
        Tampering::SlowPastDeadline | Tampering::Hung => failed(&inv, "TIMEOUT", &["1s deadline"])
            .and_then(|()| {
                (inv.elapsed < Duration::from_secs(4))
                    .then_some(())
                    .ok_or(format!("took {:?} with a 1 s deadline", inv.elapsed))
            }),
        Tampering::FlippedSignature => failed(&inv, "ERROR", &["does not verify"]),
        Tampering::OtherEcdsaEncoding => failed(&inv, "ERROR", &["DER"]),
    };
    let outcome = match crate::contract::leaked(&env, &inv.stderr_text()).first() {
        Some(k) => Err(format!("the value of {k} leaked into stderr")),
        None => outcome,
    };
    outcome.map_err(|why| format!("{t:?}: {why}"))
}

const PAYLOAD: &[u8] = b"tampered payload";

/// The invocation succeeded alone on stdout, and its signature verifies with its leaf.
fn signed(inv: &Invocation) -> Result<(), String> {
    let r: GenerateSignatureResponse = inv
        .response()
        .map_err(|e| format!("no signature: {e}; stderr {}", inv.stderr_text()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let leaf = b64
        .decode(r.certificate_chain.first().ok_or("an empty chain")?)
        .map_err(|e| e.to_string())?;
    let key = Certificate::from_der(&leaf, "leaf")
        .and_then(|c| c.public_key())
        .map_err(|e| e.message)?;
    let sig = b64.decode(&r.signature).map_err(|e| e.to_string())?;
    let hash = KeySpec::Ec256.hash_algorithm();
    verify_digest(&key, hash, &hash.digest(PAYLOAD), &sig)
        .map_err(|p| format!("the returned signature does not verify: {p}"))
}

/// The invocation failed as the contract says, with `code` and a message holding `words`.
fn failed(inv: &Invocation, code: &str, words: &[&str]) -> Result<(), String> {
    if inv.exit_code != Some(1) || !inv.stdout.is_empty() {
        return Err(format!(
            "exit {:?}, stdout {:?}",
            inv.exit_code,
            String::from_utf8_lossy(&inv.stdout)
        ));
    }
    let e = inv
        .error()
        .ok_or_else(|| format!("not one JSON error: {:.300}", inv.stderr_text()))?;
    if e.error_code.to_string() != code {
        return Err(format!(
            "{} ({:.300}), expected {code}",
            e.error_code, e.error_message
        ));
    }
    match words.iter().find(|w| !e.error_message.contains(**w)) {
        Some(w) => Err(format!("{code} without '{w}': {}", e.error_message)),
        None => Ok(()),
    }
}
