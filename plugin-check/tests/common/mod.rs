//! Helpers for the checker's tests: keys with chains on disk, the plugins under test, and runs
//! of the real checker binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plugin_protocol::chain::{to_pem_bundle, Certificate};
use plugin_protocol::client::cargo_binary;
use plugin_protocol::testca::{generate_key, LeafProfile, TestCa};
use plugin_protocol::KeySpec;

/// A PKCS#8 key file with a correct `<key>.chain.pem` beside it, in a temp dir.
pub struct KeyOnDisk {
    pub dir: tempfile::TempDir,
    pub key_path: PathBuf,
    pub ca: TestCa,
    pub public: plugin_protocol::PublicKey,
}

impl KeyOnDisk {
    pub fn new(spec: KeySpec) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_key(spec);
        let key_path = dir.path().join("key.pem");
        std::fs::write(&key_path, key.to_pkcs8_pem().as_bytes()).unwrap();
        let ca = TestCa::new("CN=Checker Test Root,O=notation-plugins tests");
        let public = key.public_key().unwrap();
        let chain = ca.issue_leaf(&public, "CN=checker test signer");
        std::fs::write(
            format!("{}.chain.pem", key_path.display()),
            to_pem_bundle(&chain),
        )
        .unwrap();
        Self {
            dir,
            key_path,
            ca,
            public,
        }
    }

    pub fn key_id(&self) -> String {
        self.key_path.to_str().unwrap().to_owned()
    }

    pub fn root_pem(&self) -> PathBuf {
        let p = self.dir.path().join("root.pem");
        std::fs::write(&p, self.ca.root_pem()).unwrap();
        p
    }

    /// Writes a chain for this key issued with `profile` to a file; returns its path.
    pub fn broken_chain(&self, profile: &LeafProfile) -> PathBuf {
        let chain: Vec<Certificate> =
            self.ca
                .issue_leaf_with(&self.public, "CN=checker test signer", profile);
        let p = self.dir.path().join("broken-chain.pem");
        std::fs::write(&p, to_pem_bundle(&chain)).unwrap();
        p
    }

    pub fn blob(&self) -> PathBuf {
        let p = self.dir.path().join("artifact.bin");
        std::fs::write(&p, b"release artifact\n").unwrap();
        p
    }
}

/// The softkey example plugin of plugin-protocol: a correct plugin.
pub fn softkey() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| cargo_binary("plugin-protocol", "notation-softkey", true))
}

/// The deliberately broken test plugin of this crate (`examples/notation-broken.rs`).
pub fn broken() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| cargo_binary("notation-plugin-check", "notation-broken", true))
}

pub fn checker() -> &'static str {
    env!("CARGO_BIN_EXE_notation-plugin-check")
}

/// What one checker run printed.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The report line of a check and the reason lines under it.
    pub fn check_text(&self, name: &str) -> String {
        let mut lines = self.stdout.lines().skip_while(|l| !l.contains(name));
        let Some(first) = lines.next() else {
            return String::new();
        };
        let mut text = first.to_owned();
        for l in lines.take_while(|l| l.starts_with("        ")) {
            text.push('\n');
            text.push_str(l);
        }
        text
    }

    /// Asserts that some check failed with a reason containing every needle.
    #[track_caller]
    pub fn assert_failed_with(&self, needles: &[&str]) {
        self.assert_code(1);
        let json: serde_json::Value = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("--json output is not JSON: {e}\n{}", self.stdout));
        let failed: Vec<String> = json["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| {
                format!(
                    "{} / {}: {}",
                    c["group"],
                    c["name"],
                    c["detail"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert!(
            failed.iter().any(|f| needles.iter().all(|n| f.contains(n))),
            "no failed check mentions {needles:?}; failures:\n{}",
            failed.join("\n")
        );
    }
}

pub fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    // Killed, and the test failed, if it hangs (a read that blocks, a plugin that never answers).
    let mut checker = plugin_protocol::client::PluginClient::new(checker());
    checker.timeout = std::time::Duration::from_secs(300);
    for (k, v) in env {
        checker = checker.with_env(*k, *v);
    }
    let out = checker.run(args, b"").expect("run notation-plugin-check");
    Run {
        code: out.exit_code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `notation-plugin-check <plugin> --key-id <key> --envelope both --blob <blob> --out <out> [extra]`.
pub fn check(
    plugin: &Path,
    key: &KeyOnDisk,
    out: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let blob = key.blob();
    let key_id = key.key_id();
    let mut args = vec![
        plugin.to_str().unwrap(),
        "--key-id",
        &key_id,
        "--envelope",
        "both",
        "--blob",
        blob.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args, env)
}

pub fn verify(envelope: &Path, blob: &Path, anchor: &Path) -> Run {
    run(
        &[
            "verify",
            envelope.to_str().unwrap(),
            "--blob",
            blob.to_str().unwrap(),
            "--trust-anchor",
            anchor.to_str().unwrap(),
        ],
        &[],
    )
}
