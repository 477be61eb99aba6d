//! Notation's side of the contract: run a plugin executable with one command, send the request
//! on stdin, capture stdout, stderr, exit status and wall time. Used by the conformance checker
//! and the tests; plugins do not build it (feature `client`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::contract::*;
use crate::error::ErrorResponse;
use crate::{HashAlgorithm, KeySpec};

/// What one plugin invocation produced.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// argv\[1\] as given, e.g. `describe-key`.
    pub command: String,
    /// `None` when a signal ended the plugin.
    pub exit_code: Option<i32>,
    /// Everything the plugin wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the plugin wrote to stderr.
    pub stderr: Vec<u8>,
    /// Wall time from spawn to exit, for start-up and deadline checks.
    pub elapsed: Duration,
}

impl Invocation {
    /// Exit code 0, as notation counts success.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }
    /// The JSON error on stderr, if stderr is exactly one.
    pub fn error(&self) -> Option<ErrorResponse> {
        serde_json::from_slice(&self.stderr).ok()
    }
    /// Decodes stdout as `T` (exactly one JSON document, nothing else).
    pub fn response<T: DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.stdout).map_err(|e| {
            format!(
                "stdout of {} is not one {} JSON document: {e}; stdout was {:?}",
                self.command,
                std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("response"),
                String::from_utf8_lossy(&self.stdout)
            )
        })
    }
    /// stderr as text (lossy), for assertion messages.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A plugin executable as notation sees it.
#[derive(Clone, Debug)]
pub struct PluginClient {
    /// The plugin executable.
    pub path: PathBuf,
    /// Variables added to the inherited environment, in order (a later one wins).
    pub env: Vec<(String, String)>,
    /// Kill a hung plugin after this long (notation itself never would).
    pub timeout: Duration,
}

impl PluginClient {
    /// The plugin at `path`, with the inherited environment and a 120 s kill timeout.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            env: Vec::new(),
            timeout: Duration::from_secs(120),
        }
    }

    /// Adds `key=value` to the plugin's environment.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds every variable of `vars` to the plugin's environment.
    pub fn with_envs(mut self, vars: &[(String, String)]) -> Self {
        self.env.extend(vars.iter().cloned());
        self
    }

    /// Runs `<plugin> <command>` with `stdin` as the whole request (no trailing newline).
    pub fn invoke_raw(&self, command: &str, stdin: &[u8]) -> std::io::Result<Invocation> {
        self.run(&[command], stdin)
    }

    /// Runs `<plugin> <args>...` (an operator command: `ca issue --csr ...`) with `stdin`, killed
    /// after [`PluginClient::timeout`] like a protocol command.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> std::io::Result<Invocation> {
        let command = args.join(" ");
        let start = Instant::now();
        let mut child = Process::new(&self.path)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin_pipe = child.stdin.take().expect("stdin is piped");
        let input = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin_pipe.write_all(&input);
            // Dropping the pipe closes it: the plugin reads to EOF.
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let pid = child.id();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let output = match rx.recv_timeout(self.timeout) {
            Ok(out) => out?,
            Err(_) => {
                let _ = Process::new("kill").arg("-9").arg(pid.to_string()).status();
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "{} {command} did not answer within {}s",
                        self.path.display(),
                        self.timeout.as_secs()
                    ),
                ));
            }
        };
        let _ = writer.join();
        Ok(Invocation {
            command,
            exit_code: output.status.code(),
            stdout: output.stdout,
            stderr: output.stderr,
            elapsed: start.elapsed(),
        })
    }

    /// Runs a command with a typed request.
    pub fn invoke<R: Serialize>(
        &self,
        command: Command,
        request: &R,
    ) -> std::io::Result<Invocation> {
        let body = serde_json::to_vec(request).expect("requests always serialise");
        self.invoke_raw(command.as_str(), &body)
    }

    /// get-plugin-metadata with `config` as its pluginConfig.
    pub fn get_metadata(&self, config: Option<PluginConfig>) -> std::io::Result<Invocation> {
        self.invoke(
            Command::GetPluginMetadata,
            &GetMetadataRequest {
                plugin_config: config,
            },
        )
    }

    /// describe-key for `key_id` at contract version [`CONTRACT_VERSION`].
    pub fn describe_key(
        &self,
        key_id: &str,
        config: Option<PluginConfig>,
    ) -> std::io::Result<Invocation> {
        self.invoke(
            Command::DescribeKey,
            &DescribeKeyRequest {
                contract_version: CONTRACT_VERSION.into(),
                key_id: key_id.into(),
                plugin_config: config,
            },
        )
    }

    /// generate-signature for `payload` (raw bytes; base64-encoded here) with `spec`'s hash.
    pub fn generate_signature(
        &self,
        key_id: &str,
        spec: KeySpec,
        hash: HashAlgorithm,
        payload: &[u8],
        config: Option<PluginConfig>,
    ) -> std::io::Result<Invocation> {
        use base64::Engine as _;
        self.invoke(
            Command::GenerateSignature,
            &GenerateSignatureRequest {
                contract_version: CONTRACT_VERSION.into(),
                key_id: key_id.into(),
                key_spec: spec,
                hash_algorithm: hash,
                payload: base64::engine::general_purpose::STANDARD.encode(payload),
                plugin_config: config,
            },
        )
    }
}

/// Makes a FIFO at `path`, for a test that a read never waits on one: with no writer, a
/// blocking open of it never returns. Panics when `mkfifo` fails.
pub fn make_fifo(path: &Path) {
    let made = Process::new("mkfifo").arg(path).status();
    assert!(
        made.as_ref().is_ok_and(|s| s.success()),
        "mkfifo {}: {made:?}",
        path.display()
    );
}

/// The shared libraries an ELF program asks the dynamic loader for at start (its `NEEDED`
/// entries, read with binutils' `readelf`), e.g. `["libc.so.6"]`. Panics when `readelf` cannot
/// run or lists none (every dynamic program needs libc), so that a test cannot pass on an
/// empty list.
pub fn needed_libraries(exe: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("readelf")
        .arg("--dynamic")
        .arg(exe)
        .output()
        .expect("readelf (binutils) is installed");
    let needed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| Some(l.split_once('[')?.1.split_once(']')?.0.to_owned()))
        .collect();
    assert!(
        needed.iter().any(|l| l.starts_with("libc.so")),
        "readelf should list libc among what {} needs: {needed:?}",
        exe.display()
    );
    needed
}

/// Path of a binary (or example) of this workspace, built first with the same cargo, profile
/// and target directory as the running test. For tests that drive real plugin executables.
///
/// By default every binary and example of the workspace is built in one `cargo build
/// --workspace --bins --examples`, once per test process: one invocation resolves features
/// exactly as `cargo test --workspace` does (examples activate the dev-dependencies), so no
/// dependency is compiled a second time with another feature set, and an example's required
/// features (`softkey`) are on. With `NOTATION_PLUGINS_TEST_BUILD=single` only the binary asked
/// for is built (`-p <package>`): quicker where one crate's tests run over and over with its
/// source changing each time (`scripts/mutants.sh`), at the price of that crate's own feature
/// set.
pub fn cargo_binary(package: &str, name: &str, example: bool) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("current executable");
    // <target>/<profile>/deps/<test> -> <target>/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in <target>/<profile>/deps");
    let single = std::env::var("NOTATION_PLUGINS_TEST_BUILD").is_ok_and(|v| v == "single");
    let mut args: Vec<&str> = vec!["build", "--quiet"];
    if single {
        args.extend([
            "-p",
            package,
            if example { "--example" } else { "--bin" },
            name,
        ]);
        if example {
            // Examples need the package's optional features (softkey); without them cargo
            // skips the example without a word.
            args.push("--all-features");
        }
    } else {
        args.extend(["--workspace", "--bins", "--examples"]);
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        args.push("--release");
    }
    let key = args.join(" ");
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !built.contains(&key) {
        let mut cmd = Process::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(&args);
        // What cargo sets for the running test (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, ...) must
        // not reach the build: ring's build script reruns when CARGO_MANIFEST_DIR changes, so
        // each test package's value rebuilt ring, rustls and every TLS crate above them, and the
        // next `cargo test` rebuilt them again.
        for (var, _) in std::env::vars_os() {
            let Some(var) = var.to_str() else { continue };
            let set_by_cargo_for_tests = var == "OUT_DIR"
                || var.starts_with("CARGO_PKG_")
                || var.starts_with("CARGO_BIN_")
                || matches!(
                    var,
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                );
            if set_by_cargo_for_tests {
                cmd.env_remove(var);
            }
        }
        if let Some(target) = profile_dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        match cmd.status() {
            Ok(s) if s.success() => built.push(key),
            Ok(s) => panic!("cargo {key}: {s} (needed for {name} of {package})"),
            Err(e) => panic!("cannot run cargo: {e} (needed for {name} of {package})"),
        }
    }
    drop(built);
    let path = if example {
        profile_dir.join("examples").join(name)
    } else {
        profile_dir.join(name)
    };
    assert!(path.exists(), "{} was not built", path.display());
    path
}
