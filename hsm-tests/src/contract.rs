//! The contract suite: the behaviours every backend shares, written once and run against each
//! backend through a [`Fixture`] (hsm-tests/tests/contract.rs instantiates it per backend with
//! [`contract_suite!`](crate::contract_suite)). Each behaviour is its own `#[test]` per backend:
//!
//! * every key spec the backend supports, with each of its chain sources, through the conformance
//!   checker (describe-key, generate-signature, JWS and COSE envelopes verified);
//! * an unknown key; the backend down; a hung backend ending in `TIMEOUT` by the deadline; 429
//!   and 5xx answers retried, then reported;
//! * secrets never in stdout, stderr or the debug log (`NOTATION_PLUGIN_LOG`);
//! * get-plugin-metadata without touching the backend;
//! * the backend calls each command makes (round trips);
//! * the sign call's answer tampered with on its way back ([`crate::tamper`]).
//!
//! Where a behaviour does not apply to a backend (no HTTP server to answer 429 in front of a
//! PKCS#11 module), the fixture says why and the suite prints it, instead of passing silently.

use std::any::Any;
use std::path::Path;
use std::time::Duration;

use plugin_protocol::client::{Invocation, PluginClient};
use plugin_protocol::contract::{DescribeKeyResponse, GetMetadataResponse};
use plugin_protocol::KeySpec;

use crate::tamper::{Arranged, Tampering};

/// `key=value` pairs: a pluginConfig or an environment.
pub type Pairs = Vec<(String, String)>;

/// Why a behaviour does not apply to a backend (printed by the suite).
pub type NotApplicable = &'static str;

/// Whatever a fixture must keep alive while the suite uses what it arranged (a token
/// directory, the card lock, a fake server).
pub type Hold = Option<Box<dyn Any>>;

/// Every key spec notation knows.
pub const ALL_SPECS: [KeySpec; 6] = [
    KeySpec::Rsa2048,
    KeySpec::Rsa3072,
    KeySpec::Rsa4096,
    KeySpec::Ec256,
    KeySpec::Ec384,
    KeySpec::Ec521,
];

/// `(&str, &str)` pairs as owned [`Pairs`].
pub fn pairs(p: &[(&str, &str)]) -> Pairs {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The plugin command a [`Run`] invokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    DescribeKey,
    GenerateSignature,
}

/// One plugin invocation, as notation makes it.
#[derive(Clone, Debug)]
pub struct Run {
    pub command: Command,
    pub key_id: String,
    /// The key spec generate-signature asks for.
    pub spec: KeySpec,
    pub pairs: Pairs,
    pub env: Pairs,
}

impl Run {
    pub fn describe(key_id: impl Into<String>, pairs: Pairs, env: Pairs) -> Self {
        Run {
            command: Command::DescribeKey,
            key_id: key_id.into(),
            spec: KeySpec::Ec256,
            pairs,
            env,
        }
    }

    pub fn sign(key_id: impl Into<String>, spec: KeySpec, pairs: Pairs, env: Pairs) -> Self {
        Run {
            command: Command::GenerateSignature,
            spec,
            ..Run::describe(key_id, pairs, env)
        }
    }

    /// This run with the pluginConfig `key` set to `value`.
    pub fn with_pair(mut self, key: &str, value: &str) -> Self {
        self.pairs.retain(|(k, _)| k != key);
        self.pairs.push((key.into(), value.into()));
        self
    }

    /// This run with the environment variable `key` set to `value`.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env = crate::env_with(std::mem::take(&mut self.env), &[(key, value)]);
        self
    }

    /// Runs the plugin (which must end by itself within 60 s).
    pub fn invoke(&self, plugin: &Path) -> Invocation {
        let mut client = PluginClient::new(plugin).with_envs(&self.env);
        client.timeout = Duration::from_secs(60);
        let pairs: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let config = crate::config(&pairs);
        match self.command {
            Command::DescribeKey => client.describe_key(&self.key_id, config),
            Command::GenerateSignature => client.generate_signature(
                &self.key_id,
                self.spec,
                self.spec.hash_algorithm(),
                b"contract payload",
                config,
            ),
        }
        .expect("run the plugin")
    }
}

/// A key of one spec with its chain from one source, ready to sign.
pub struct Key {
    pub key_id: String,
    pub pairs: Pairs,
    pub env: Pairs,
    /// The root the chain ends in (the only trust anchor the envelopes are verified against).
    pub root_pem: String,
    /// Checked after the key has signed (e.g. the card's PIN counter is untouched).
    pub after: Option<Box<dyn Fn()>>,
    pub hold: Hold,
}

/// A fault of the backend the suite provokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing listens where the backend should be: `ERROR`, naming where it looked.
    Down,
    /// The backend accepts the request and never answers: `TIMEOUT` at the deadline.
    Hung,
    /// Every answer is a 429: retried, then `THROTTLED`.
    Throttled,
    /// Every answer is a 5xx: retried, then `ERROR`.
    ServerError,
}

impl Fault {
    /// The error code the contract asks for.
    pub fn code(self) -> &'static str {
        match self {
            Fault::Down | Fault::ServerError => "ERROR",
            Fault::Hung => "TIMEOUT",
            Fault::Throttled => "THROTTLED",
        }
    }

    /// The pluginConfig `timeout_seconds` of the faulty run.
    fn deadline(self) -> u64 {
        match self {
            Fault::Hung => 2,
            _ => 10,
        }
    }
}

/// A run against a faulty backend (its `timeout_seconds` is the suite's) and the fragments its
/// message must hold.
pub struct Faulty {
    pub run: Run,
    pub fragments: Vec<String>,
    /// errorMetadata entries the error must carry (see [`assert_metadata`]).
    pub metadata: Vec<(String, String)>,
    /// How many requests the backend got; `None` where nothing can count them.
    pub attempts: Option<Box<dyn Fn() -> usize>>,
    /// Undoes the fault (e.g. a slow card made fast again).
    pub after: Option<Box<dyn Fn()>>,
    pub hold: Hold,
}

/// A key that does not exist: describe-key and generate-signature are `VALIDATION_ERROR`s whose
/// message holds `fragments` and whose errorMetadata holds `metadata`.
pub struct Unknown {
    pub key_id: String,
    pub pairs: Pairs,
    pub env: Pairs,
    pub fragments: Vec<String>,
    pub metadata: Vec<(String, String)>,
    pub hold: Hold,
}

/// Runs that handle secrets (each succeeding or failing as `must_succeed` says), and the secret
/// values that must not be in any output or the debug log.
pub struct Secrets {
    pub runs: Vec<(Run, bool)>,
    pub values: Vec<String>,
    pub hold: Hold,
}

/// An environment in which the backend cannot be reached (and, where `requests` counts them,
/// requests to it are counted).
pub struct Unreachable {
    pub env: Pairs,
    pub requests: Option<Box<dyn Fn() -> usize>>,
    pub hold: Hold,
}

/// What a round-trip case shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TripKind {
    /// describe-key: exactly one backend call.
    DescribeKey,
    /// generate-signature with the chain from a file or pluginConfig: exactly one call, the
    /// signing call.
    SignLocalChain,
    /// Any other case (a chain kept in the backend, a key name to resolve).
    Other,
}

/// One round-trip case: the run, through a counter of the backend's calls.
pub struct Trip {
    pub what: String,
    pub kind: TripKind,
    pub run: Run,
    /// The calls it must make (prefixes, in any order).
    pub expected: Vec<String>,
    /// The calls the backend got through this case's counter.
    pub calls: Box<dyn Fn() -> Vec<String>>,
    /// The most calls that must be in flight at once, and how many were.
    pub in_flight: Option<(usize, Box<dyn Fn() -> usize>)>,
    pub hold: Hold,
}

/// How the contract suite drives one backend.
pub trait Fixture: Sync {
    /// The plugin's name (`notation-<name>`), as get-plugin-metadata answers it.
    fn name(&self) -> &'static str;

    /// Whether the backend holds keys of `spec`.
    fn supports(&self, spec: KeySpec) -> Result<(), NotApplicable>;

    /// The chain sources [`Fixture::key`] knows (each spec is checked with each).
    fn chain_sources(&self) -> &'static [&'static str];

    /// A new key of `spec` with its chain from `source`.
    fn key(&self, spec: KeySpec, source: &str) -> Key;

    /// A key that does not exist.
    fn unknown_key(&self) -> Unknown;

    /// A run against the backend with `fault`.
    fn faulty(&self, fault: Fault) -> Result<Faulty, NotApplicable>;

    /// Runs with secrets in the environment or pluginConfig.
    fn secrets(&self) -> Secrets;

    /// An environment in which the backend cannot be reached.
    fn unreachable(&self) -> Unreachable;

    /// The round-trip cases, each with its own counter.
    fn round_trips(&self) -> Result<Vec<Trip>, NotApplicable>;

    /// What the signing call's name holds ("TrentService.Sign", "C_SignInit").
    fn signing_call(&self) -> &'static str;

    /// Whether the backend is a remote service (every call a round trip), not a module or card
    /// in the plugin's process.
    fn remote(&self) -> bool {
        true
    }

    /// Arranges one tampering of the sign call's answer of an EC-256 key.
    fn tampered(&self, t: Tampering) -> Result<Arranged, NotApplicable>;

    /// A describe-key run whose backend is the plain-HTTP endpoint `url` (a fake answering
    /// what no real backend can be made to answer), with a secret in its environment.
    fn at_endpoint(&self, url: &str) -> Result<Run, NotApplicable>;

    /// The cases of [`malformed_answers`] the plugin is known to fail today, with why: the
    /// suite prints them and checks that they still fail (a fixed plugin must come off the
    /// list).
    fn known_failures(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

/// Prints that `behaviour` does not apply to the fixture's backend, and why.
fn not_applicable(f: &dyn Fixture, behaviour: &str, why: NotApplicable) {
    assert!(!why.trim().is_empty(), "a not-applicable needs a reason");
    eprintln!("contract: {}: {behaviour}: not applicable: {why}", f.name());
}

fn plugin(f: &dyn Fixture) -> std::path::PathBuf {
    crate::plugin_binary(f.name())
}

fn refs(p: &Pairs) -> Vec<(&str, &str)> {
    p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `spec` with each chain source through the conformance checker (JWS and COSE, envelopes
/// verified against the root); describe-key answers the spec and echoes the key id.
pub fn key_spec(f: &dyn Fixture, spec: KeySpec) {
    if let Err(why) = f.supports(spec) {
        return not_applicable(f, spec.as_str(), why);
    }
    let exe = plugin(f);
    let dir = tempfile::tempdir().unwrap();
    for source in f.chain_sources() {
        let key = f.key(spec, source);
        let what = format!("{} {spec} chain from {source}", f.name());
        let inv = Run::describe(&key.key_id, key.pairs.clone(), key.env.clone()).invoke(&exe);
        let described: DescribeKeyResponse = inv
            .response()
            .unwrap_or_else(|e| panic!("{what}: describe-key: {e}: {}", inv.stderr_text()));
        assert_eq!(
            (described.key_id.as_str(), described.key_spec),
            (key.key_id.as_str(), spec),
            "{what}"
        );
        let out = dir
            .path()
            .join(source.replace(|c: char| !c.is_alphanumeric(), "-"));
        std::fs::create_dir_all(&out).unwrap();
        crate::check_and_verify(
            &exe,
            &key.key_id,
            &refs(&key.pairs),
            &refs(&key.env),
            &key.root_pem,
            &out,
        );
        if let Some(after) = &key.after {
            after();
        }
    }
}

/// The error's errorMetadata holds each `(key, value)`; a value `*` asks only for a non-empty
/// entry (a request id).
#[track_caller]
pub fn assert_metadata(err: &plugin_protocol::error::ErrorResponse, expected: &[(String, String)]) {
    let meta = err.error_metadata.clone().unwrap_or_default();
    for (k, v) in expected {
        match meta.get(k) {
            Some(got) if v == "*" && !got.is_empty() => {}
            got => assert_eq!(got, Some(v), "errorMetadata {k}: {meta:?}"),
        }
    }
}

/// The names of the variables of `env` that look like secrets (named *TOKEN*, *SECRET* or
/// *PASSWORD*, but not an endpoint such as the Secret Manager's, with a value of 8 characters
/// or more) whose value is in `text`.
pub fn leaked(env: &[(String, String)], text: &str) -> Vec<String> {
    env.iter()
        .filter(|(k, v)| {
            ["TOKEN", "SECRET", "PASSWORD"]
                .iter()
                .any(|s| k.contains(s))
                && !k.ends_with("ENDPOINT")
                && !k.ends_with("_URL")
                && v.len() >= 8
                && text.contains(v.as_str())
        })
        .map(|(k, _)| k.clone())
        .collect()
}

/// An unknown key: `VALIDATION_ERROR` from describe-key and generate-signature.
pub fn unknown_key(f: &dyn Fixture) {
    let exe = plugin(f);
    let u = f.unknown_key();
    let fragments: Vec<&str> = u.fragments.iter().map(String::as_str).collect();
    let inv = Run::describe(&u.key_id, u.pairs.clone(), u.env.clone()).invoke(&exe);
    let err = crate::assert_error(&inv, "VALIDATION_ERROR", &fragments);
    assert_metadata(&err, &u.metadata);
    let inv = Run::sign(&u.key_id, KeySpec::Ec256, u.pairs, u.env).invoke(&exe);
    crate::assert_error(&inv, "VALIDATION_ERROR", &[]);
}

/// A backend `fault`: the contract's code, the fixture's fragments, within the deadline; a 429
/// or 5xx retried (more than one request, at most five).
pub fn fault(f: &dyn Fixture, fault: Fault) {
    let faulty = match f.faulty(fault) {
        Ok(faulty) => faulty,
        Err(why) => return not_applicable(f, &format!("{fault:?}"), why),
    };
    let exe = plugin(f);
    let deadline = fault.deadline();
    let run = faulty
        .run
        .clone()
        .with_pair("timeout_seconds", &deadline.to_string());
    let inv = run.invoke(&exe);
    let mut fragments: Vec<&str> = faulty.fragments.iter().map(String::as_str).collect();
    let at_deadline = format!("{deadline}s deadline");
    if fault == Fault::Hung {
        fragments.push(&at_deadline);
    }
    let err = crate::assert_error(&inv, fault.code(), &fragments);
    assert_metadata(&err, &faulty.metadata);
    let leaks = leaked(&run.env, &inv.stderr_text());
    assert!(leaks.is_empty(), "{} {fault:?}: {leaks:?} leaked", f.name());
    let limit = Duration::from_secs(deadline) + Duration::from_millis(2500);
    assert!(
        inv.elapsed < limit,
        "{} {fault:?}: answered after {:?} with a {deadline} s deadline",
        f.name(),
        inv.elapsed
    );
    if fault == Fault::Hung {
        assert!(
            inv.elapsed >= Duration::from_secs(deadline) - Duration::from_millis(300),
            "{} hung: TIMEOUT after {:?}, before the {deadline} s deadline",
            f.name(),
            inv.elapsed
        );
    }
    if let Some(attempts) = &faulty.attempts {
        let n = attempts();
        match fault {
            Fault::Throttled | Fault::ServerError => {
                assert!((2..=5).contains(&n), "{} {fault:?}: {n} attempts", f.name())
            }
            Fault::Hung => assert!(n >= 1, "{} hung: the backend got no request", f.name()),
            Fault::Down => {}
        }
    } else {
        assert!(
            matches!(fault, Fault::Down | Fault::Hung),
            "{} {fault:?}: the attempts must be counted",
            f.name()
        );
    }
    eprintln!(
        "contract: {} {fault:?}: {} after {:?}",
        f.name(),
        fault.code(),
        inv.elapsed
    );
    if let Some(after) = &faulty.after {
        after();
    }
}

/// No secret in stdout, stderr or the debug log, on success and on failure; the log is written.
pub fn secrets(f: &dyn Fixture) {
    let exe = plugin(f);
    let s = f.secrets();
    assert!(!s.values.is_empty() && !s.runs.is_empty());
    for v in &s.values {
        assert!(v.len() >= 3, "a secret too short to look for: {v:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, (run, must_succeed)) in s.runs.iter().enumerate() {
        let log = dir.path().join(format!("plugin-{i}.log"));
        let run = run
            .clone()
            .with_env("NOTATION_PLUGIN_LOG", log.to_str().unwrap());
        let inv = run.invoke(&exe);
        if *must_succeed {
            assert!(inv.succeeded(), "run {i}: {}", inv.stderr_text());
        } else {
            assert_eq!(inv.exit_code, Some(1), "run {i} fails");
            assert!(inv.error().is_some(), "run {i}: {}", inv.stderr_text());
        }
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            logged.contains("describe-key") || logged.contains("generate-signature"),
            "run {i}: the debug log is written: {logged:.300}"
        );
        let out = String::from_utf8_lossy(&inv.stdout);
        let err = inv.stderr_text();
        for v in &s.values {
            for (what, text) in [
                ("stdout", &*out),
                ("stderr", &err),
                ("the debug log", &logged),
            ] {
                if let Some(at) = text.find(v.as_str()) {
                    let around = &text[text.floor_char_boundary(at.saturating_sub(80))..at];
                    panic!(
                        "run {i}: a secret ({:.3}...) is in {what}, after {around:?}",
                        v
                    );
                }
            }
        }
    }
}

/// get-plugin-metadata answers at once, with the backend unreachable and not asked.
pub fn metadata(f: &dyn Fixture) {
    let u = f.unreachable();
    let inv = PluginClient::new(plugin(f))
        .with_envs(&u.env)
        .get_metadata(None)
        .unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let meta: GetMetadataResponse = inv.response().unwrap();
    assert_eq!(meta.name, f.name());
    assert_eq!(meta.capabilities, ["SIGNATURE_GENERATOR.RAW"]);
    assert!(inv.elapsed < Duration::from_secs(2), "{:?}", inv.elapsed);
    match &u.requests {
        Some(requests) => assert_eq!(requests(), 0, "get-plugin-metadata asked the backend"),
        None => eprintln!(
            "contract: {}: get-plugin-metadata: no counter of backend requests (the environment \
             names no reachable backend)",
            f.name()
        ),
    }
}

/// The calls each command makes; describe-key one, generate-signature with a local chain one.
pub fn round_trips(f: &dyn Fixture) {
    let trips = match f.round_trips() {
        Ok(trips) => trips,
        Err(why) => return not_applicable(f, "round trips", why),
    };
    // A remote backend: describe-key one call; generate-signature with the chain from a file or
    // pluginConfig one call, the signing call. Every backend: that generate-signature signs once
    // and describe-key never signs.
    let signing = |calls: &[String]| {
        calls
            .iter()
            .filter(|c| c.contains(f.signing_call()))
            .count()
    };
    for kind in [TripKind::DescribeKey, TripKind::SignLocalChain] {
        let trip = trips
            .iter()
            .find(|t| t.kind == kind)
            .unwrap_or_else(|| panic!("{}: no {kind:?} round-trip case", f.name()));
        let signs = usize::from(kind == TripKind::SignLocalChain);
        assert_eq!(
            signing(&trip.expected),
            signs,
            "{}: {}",
            f.name(),
            trip.what
        );
        if f.remote() {
            assert_eq!(trip.expected.len(), 1, "{}: {}", f.name(), trip.what);
        }
    }
    let exe = plugin(f);
    for trip in &trips {
        let inv = trip.run.invoke(&exe);
        assert!(inv.succeeded(), "{}: {}", trip.what, inv.stderr_text());
        let mut made = (trip.calls)();
        made.sort();
        let mut expected = trip.expected.clone();
        expected.sort();
        let matched = made.len() == expected.len()
            && made.iter().zip(&expected).all(|(m, e)| m.starts_with(e));
        assert!(
            matched,
            "{} {}: made {made:?}, expected {expected:?}",
            f.name(),
            trip.what
        );
        if let Some((most, peak)) = &trip.in_flight {
            assert_eq!(peak(), *most, "{} {}: calls in flight", f.name(), trip.what);
        }
        eprintln!(
            "contract: {} {}: {} call(s): {made:?}",
            f.name(),
            trip.what,
            made.len()
        );
    }
}

/// The sign call's answer tampered with (the shared table of [`crate::tamper`]).
pub fn tampered(f: &dyn Fixture) {
    if let Err(why) = f.tampered(Tampering::Slow) {
        return not_applicable(f, "tampered sign answers", why);
    }
    crate::tamper::run(f.name(), &|t| {
        f.tampered(t)
            .unwrap_or_else(|why| panic!("{t:?}: not applicable: {why}"))
    });
}

/// Answers no real backend can be made to give, from a fake endpoint: 401, 403, garbage, a
/// truncated body, wrong-shape JSON, HTML, a huge body (refused at the 4 MiB bound, not read
/// whole). Each: exit 1, empty stdout, one JSON error with the code, by the deadline, no secret.
pub fn malformed_answers(f: &dyn Fixture) {
    use crate::fake::{self, Answer};
    let json = |status: &'static str, body: &str| fake::json(status, body);
    let cases: Vec<(&str, Answer, &str, &[&str])> = vec![
        (
            "401",
            json(
                "401 Unauthorized",
                r#"{"errors":["unauthorized"],"__type":"UnrecognizedClientException","message":"bad","error":{"code":401,"message":"bad","status":"UNAUTHENTICATED"}}"#,
            ),
            "ACCESS_DENIED",
            &[],
        ),
        (
            "403",
            json(
                "403 Forbidden",
                r#"{"errors":["permission denied"],"__type":"AccessDeniedException","message":"denied","error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#,
            ),
            "ACCESS_DENIED",
            &[],
        ),
        ("garbage", Answer::Garbage, "ERROR", &[]),
        ("truncated", Answer::Truncated, "ERROR", &[]),
        (
            "wrong-shape JSON",
            json("200 OK", r#"{"data":{"foo":1},"KeyMetadata":7,"pem":7}"#),
            "ERROR",
            &[],
        ),
        (
            "not JSON",
            Answer::Http(
                "200 OK",
                vec!["Content-Type: application/json".into()],
                b"<html>proxy login</html>".to_vec(),
            ),
            "ERROR",
            &[],
        ),
        (
            "huge body",
            Answer::Huge(100 << 20),
            "ERROR",
            &["larger than 4 MiB"],
        ),
    ];
    if let Err(why) = f.at_endpoint("http://127.0.0.1:9") {
        return not_applicable(f, "malformed answers", why);
    }
    let exe = plugin(f);
    let wrong = crate::check_all(cases, |(name, answer, code, says)| {
        let fake = fake::serve(answer);
        let run = f
            .at_endpoint(&fake.addr)
            .unwrap()
            .with_pair("timeout_seconds", "10");
        let inv = run.invoke(&exe);
        let mut bad = Vec::new();
        if inv.exit_code != Some(1) || !inv.stdout.is_empty() {
            bad.push(format!(
                "exit {:?}, stdout {:.200}",
                inv.exit_code,
                String::from_utf8_lossy(&inv.stdout)
            ));
        }
        match inv.error() {
            None => bad.push(format!("not one JSON error: {:.200}", inv.stderr_text())),
            Some(e) if e.error_code.as_str() != code => bad.push(format!(
                "{} ({:.300}), expected {code}",
                e.error_code, e.error_message
            )),
            Some(e) => bad.extend(
                says.iter()
                    .filter(|w| !e.error_message.contains(**w))
                    .map(|w| format!("no '{w}' in: {:.300}", e.error_message)),
            ),
        }
        // A huge body is refused at the bound (a few MiB may sit in socket buffers).
        let sent = fake
            .body_bytes_sent
            .load(std::sync::atomic::Ordering::SeqCst);
        if sent > 32 << 20 {
            bad.push(format!("{} MiB of the body were read", sent >> 20));
        }
        // Transport failures are retried (a bounded number of attempts, well within the
        // deadline, so the answer is the failure and not TIMEOUT).
        if inv.elapsed > Duration::from_secs(12) {
            bad.push(format!("took {:?} with a 10 s deadline", inv.elapsed));
        }
        for k in leaked(&run.env, &inv.stderr_text()) {
            bad.push(format!("the value of {k} leaked"));
        }
        let known = f.known_failures().iter().find(|(case, _)| *case == name);
        match (known, bad.is_empty()) {
            (None, true) => None,
            (None, false) => Some(format!("{name}: {}", bad.join("; "))),
            (Some((_, why)), false) => {
                eprintln!(
                    "contract: {}: {name}: KNOWN FAILURE ({why}): {}",
                    f.name(),
                    bad.join("; ")
                );
                None
            }
            (Some(_), true) => Some(format!(
                "{name}: passes now: take it off the fixture's known_failures"
            )),
        }
    });
    assert!(wrong.is_empty(), "{}:\n{}", f.name(), wrong.join("\n"));
}

/// Prints how long a test took when it ends (the project's rule: no test over 20 s).
pub struct Timer(&'static str, std::time::Instant);

impl Timer {
    pub fn start(test: &'static str) -> Self {
        Timer(test, std::time::Instant::now())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        eprintln!("contract: {} took {:.1?}", self.0, self.1.elapsed());
    }
}

/// The contract suite for one backend: `contract_suite!(module, fixture expression)` makes a
/// module of `#[test]`s, one per key spec and behaviour.
#[macro_export]
macro_rules! contract_suite {
    ($module:ident, $fixture:expr) => {
        mod $module {
            use super::*;
            use plugin_protocol::KeySpec;
            use $crate::contract::{self, Fault};

            #[test]
            fn rsa_2048_through_the_checker() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "rsa_2048_through_the_checker"
                ));
                contract::key_spec(&$fixture, KeySpec::Rsa2048);
            }
            #[test]
            fn rsa_3072_through_the_checker() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "rsa_3072_through_the_checker"
                ));
                contract::key_spec(&$fixture, KeySpec::Rsa3072);
            }
            #[test]
            fn rsa_4096_through_the_checker() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "rsa_4096_through_the_checker"
                ));
                contract::key_spec(&$fixture, KeySpec::Rsa4096);
            }
            #[test]
            fn ec_256_through_the_checker() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "ec_256_through_the_checker"
                ));
                contract::key_spec(&$fixture, KeySpec::Ec256);
            }
            #[test]
            fn ec_384_through_the_checker() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "ec_384_through_the_checker"
                ));
                contract::key_spec(&$fixture, KeySpec::Ec384);
            }
            #[test]
            fn ec_521_through_the_checker() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "ec_521_through_the_checker"
                ));
                contract::key_spec(&$fixture, KeySpec::Ec521);
            }
            #[test]
            fn unknown_key() {
                let _t = contract::Timer::start(concat!(stringify!($module), "::", "unknown_key"));
                contract::unknown_key(&$fixture);
            }
            #[test]
            fn backend_down() {
                let _t = contract::Timer::start(concat!(stringify!($module), "::", "backend_down"));
                contract::fault(&$fixture, Fault::Down);
            }
            #[test]
            fn hung_backend_ends_in_timeout_at_the_deadline() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "hung_backend_ends_in_timeout_at_the_deadline"
                ));
                contract::fault(&$fixture, Fault::Hung);
            }
            #[test]
            fn throttled_is_retried_then_reported() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "throttled_is_retried_then_reported"
                ));
                contract::fault(&$fixture, Fault::Throttled);
            }
            #[test]
            fn server_errors_are_retried_then_reported() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "server_errors_are_retried_then_reported"
                ));
                contract::fault(&$fixture, Fault::ServerError);
            }
            #[test]
            fn secrets_never_in_output_or_the_debug_log() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "secrets_never_in_output_or_the_debug_log"
                ));
                contract::secrets(&$fixture);
            }
            #[test]
            fn metadata_without_the_backend() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "metadata_without_the_backend"
                ));
                contract::metadata(&$fixture);
            }
            #[test]
            fn round_trips_per_command() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "round_trips_per_command"
                ));
                contract::round_trips(&$fixture);
            }
            #[test]
            fn malformed_backend_answers() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "malformed_backend_answers"
                ));
                contract::malformed_answers(&$fixture);
            }
            #[test]
            fn sign_answers_tampered_on_the_way_back() {
                let _t = contract::Timer::start(concat!(
                    stringify!($module),
                    "::",
                    "sign_answers_tampered_on_the_way_back"
                ));
                contract::tampered(&$fixture);
            }
        }
    };
}
