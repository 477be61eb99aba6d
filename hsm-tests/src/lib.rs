//! Shared helpers for the backend integration tests: build the workspace binaries and drive the
//! conformance checker (`notation-plugin-check`) against a plugin exactly as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use plugin_protocol::client::cargo_binary;

pub mod contract;
pub mod fake;
pub mod gcpkms;
pub mod keyvault;
pub mod piv_card;
pub mod sockets;
pub mod softhsm;
pub mod tamper;
pub mod tls_proxy;

/// The built plugin `notation-<name>` (package `notation-<name>`).
pub fn plugin_binary(name: &str) -> PathBuf {
    let bin = format!("notation-{name}");
    cargo_binary(&bin, &bin, false)
}

/// The built conformance checker.
pub fn checker_binary() -> PathBuf {
    cargo_binary("notation-plugin-check", "notation-plugin-check", false)
}

/// What one checker run printed.
#[derive(Debug)]
pub struct CheckRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CheckRun {
    fn from(out: Output) -> Self {
        CheckRun {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with the whole report unless the checker exited 0.
    #[track_caller]
    pub fn assert_passed(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "conformance check failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// `notation-plugin-check <plugin> --key-id <id> [--plugin-config k=v]... --envelope both
/// --blob <blob> --out <out>`, with extra environment for the plugin.
pub fn check(
    plugin: &Path,
    key_id: &str,
    config: &[(&str, &str)],
    env: &[(&str, &str)],
    blob: &Path,
    out: &Path,
) -> CheckRun {
    let mut cmd = Command::new(checker_binary());
    cmd.arg(plugin).args(["--key-id", key_id]);
    for (k, v) in config {
        cmd.args(["--plugin-config", &format!("{k}={v}")]);
    }
    cmd.args(["--envelope", "both", "--blob"])
        .arg(blob)
        .arg("--out")
        .arg(out);
    for (k, v) in env {
        cmd.env(k, v);
    }
    CheckRun::from(cmd.output().expect("run notation-plugin-check"))
}

/// `notation-plugin-check verify <envelope> --blob <blob> --trust-anchor <root>`.
pub fn verify(envelope: &Path, blob: &Path, trust_anchor: &Path) -> CheckRun {
    let out = Command::new(checker_binary())
        .arg("verify")
        .arg(envelope)
        .arg("--blob")
        .arg(blob)
        .arg("--trust-anchor")
        .arg(trust_anchor)
        .output()
        .expect("run notation-plugin-check verify");
    CheckRun::from(out)
}

/// Runs the checker on `key_id` with both envelopes, then verifies both envelopes it wrote
/// against `root_pem`. Panics with the reports on any failure.
#[track_caller]
pub fn check_and_verify(
    plugin: &Path,
    key_id: &str,
    config: &[(&str, &str)],
    env: &[(&str, &str)],
    root_pem: &str,
    dir: &Path,
) {
    let blob = dir.join("artifact.txt");
    std::fs::write(&blob, b"release artifact\n").unwrap();
    let out = dir.join("out");
    check(plugin, key_id, config, env, &blob, &out).assert_passed();
    let root = dir.join("root.pem");
    std::fs::write(&root, root_pem).unwrap();
    for ext in ["jws", "cose"] {
        let envelope = out.join(format!("artifact.txt.{ext}.sig"));
        assert!(envelope.exists(), "checker wrote no {}", envelope.display());
        verify(&envelope, &blob, &root).assert_passed();
    }
}

pub mod localstack;
pub mod openbao;

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("hsm-tests sits in the workspace")
        .to_path_buf()
}

/// Runs `scripts/<script> start` (idempotent: a running backend is left as it is).
#[track_caller]
pub fn start_backend(script: &str) {
    let status = Command::new(repo().join("scripts").join(script))
        .arg("start")
        .status()
        .unwrap_or_else(|e| panic!("run scripts/{script}: {e}"));
    assert!(status.success(), "scripts/{script} start failed");
}

/// Starts a local backend with `scripts/<name>.sh start` (idempotent) and reads the
/// `KEY=VALUE` lines of the state file it writes, `~/.cache/notation-plugins/<name>/state.env`.
pub fn backend_state(name: &str) -> std::collections::BTreeMap<String, String> {
    start_backend(&format!("{name}.sh"));
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
    let path = cache.join("notation-plugins").join(name).join("state.env");
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A name no other test (or earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!(
        "{prefix}-{}-{:x}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `[(String, String)]` as the `(&str, &str)` pairs [`check`] takes.
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The JSON error of a failed invocation, checked as notation sees it: exit 1, nothing on
/// stdout, one JSON error on stderr with `code` and every fragment in its message.
#[track_caller]
pub fn assert_error(
    inv: &plugin_protocol::client::Invocation,
    code: &str,
    fragments: &[&str],
) -> plugin_protocol::error::ErrorResponse {
    assert_eq!(
        inv.exit_code,
        Some(1),
        "expected a failure; stdout {:?}, stderr {:?}",
        String::from_utf8_lossy(&inv.stdout),
        inv.stderr_text()
    );
    assert!(inv.stdout.is_empty(), "nothing on stdout on failure");
    let err = inv
        .error()
        .unwrap_or_else(|| panic!("stderr is not one JSON error: {}", inv.stderr_text()));
    assert_eq!(
        err.error_code.as_str(),
        code,
        "error code; message: {}",
        err.error_message
    );
    for f in fragments {
        assert!(
            err.error_message.contains(f),
            "message lacks {f:?}: {}",
            err.error_message
        );
    }
    err
}

/// A pluginConfig from `key=value` pairs.
pub fn config(pairs: &[(&str, &str)]) -> Option<plugin_protocol::contract::PluginConfig> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// `base` with the variables of `changes` replaced (an empty value blanks a variable).
pub fn env_with(
    mut base: Vec<(String, String)>,
    changes: &[(&str, &str)],
) -> Vec<(String, String)> {
    for (k, v) in changes {
        base.retain(|(ek, _)| ek != k);
        base.push((k.to_string(), v.to_string()));
    }
    base
}

/// describe-key through `plugin`, as notation runs it.
pub fn describe(
    plugin: &Path,
    key_id: &str,
    pairs: &[(&str, &str)],
    env: &[(String, String)],
) -> plugin_protocol::client::Invocation {
    plugin_protocol::client::PluginClient::new(plugin)
        .with_envs(env)
        .describe_key(key_id, config(pairs))
        .expect("run the plugin")
}

/// generate-signature through `plugin` for a small payload with `spec`'s hash.
pub fn sign(
    plugin: &Path,
    key_id: &str,
    spec: plugin_protocol::KeySpec,
    pairs: &[(&str, &str)],
    env: &[(String, String)],
) -> plugin_protocol::client::Invocation {
    plugin_protocol::client::PluginClient::new(plugin)
        .with_envs(env)
        .generate_signature(
            key_id,
            spec,
            spec.hash_algorithm(),
            b"payload",
            config(pairs),
        )
        .expect("run the plugin")
}

/// One plain-HTTP request to a local test server (LocalStack, OpenBao, the Key Vault emulator's
/// admin port), for setting it up: `head` is the request line and headers without
/// `Content-Length` and without the blank line. Returns the status and the body (a chunked body
/// is decoded).
#[track_caller]
pub fn http(host: &str, head: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(host).unwrap_or_else(|e| panic!("connect to {host}: {e}"));
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .expect("set a read timeout");
    let request = format!("{head}Content-Length: {}\r\n\r\n{body}", body.len());
    stream
        .write_all(request.as_bytes())
        .unwrap_or_else(|e| panic!("send to {host}: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("read from {host}: {e}"));
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    )
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Starts `exe generate-signature` (or another command) with `env`, writes `request` on its
/// stdin and closes it, and returns the running process, for tests that act on a plugin while it
/// is inside a backend call (signals).
pub fn spawn_plugin(
    exe: &Path,
    command: &str,
    env: &[(String, String)],
    request: &str,
) -> std::process::Child {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(exe)
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()));
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(request.as_bytes())
        .expect("write the request");
    child
}

/// Runs `check` on every case at the same time (each case is a plugin run, most of the time
/// waiting); returns the failures it reports, in case order.
pub fn check_all<T: Send>(
    cases: Vec<T>,
    check: impl Fn(T) -> Option<String> + Sync,
) -> Vec<String> {
    std::thread::scope(|s| {
        let check = &check;
        let handles: Vec<_> = cases
            .into_iter()
            .map(|case| s.spawn(move || check(case)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    })
}
