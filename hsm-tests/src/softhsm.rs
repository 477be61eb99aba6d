//! A throwaway SoftHSM2 token per test (created by `softhsm/create-token.sh` in a temporary
//! directory, never the system token store), driven through the real `notation-pkcs11` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::client::PluginClient;
use plugin_protocol::{KeySpec, PublicKey};

/// Where Debian's softhsm2 package puts the module.
pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("hsm-tests sits in the workspace")
        .to_path_buf()
}

pub struct SoftToken {
    pub dir: tempfile::TempDir,
    pub label: String,
    pub plugin: PathBuf,
}

impl SoftToken {
    /// A fresh token labelled `label` in its own directory.
    pub fn new(label: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = Command::new(repo().join("softhsm/create-token.sh"))
            .arg(dir.path())
            .arg(label)
            .output()
            .expect("run softhsm/create-token.sh");
        assert!(
            out.status.success(),
            "create-token.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SoftToken {
            dir,
            label: label.to_owned(),
            plugin: crate::plugin_binary("pkcs11"),
        }
    }

    /// Adds a second token with another label to the same SoftHSM configuration.
    pub fn add_token(&self, label: &str) {
        let out = Command::new(repo().join("softhsm/create-token.sh"))
            .arg(self.dir.path())
            .arg(label)
            .output()
            .expect("run softhsm/create-token.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    pub fn pin_file(&self) -> PathBuf {
        self.dir.path().join("user.pin")
    }

    pub fn pin(&self) -> String {
        std::fs::read_to_string(self.pin_file()).expect("user.pin")
    }

    /// Environment the plugin needs (SoftHSM's configuration file).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("SOFTHSM2_CONF".into(), self.conf().display().to_string())]
    }

    /// The key URI of `object` on this token, with module path and PIN file.
    pub fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={object}?module-path={SOFTHSM_MODULE}&pin-source=file:{}",
            self.label,
            self.pin_file().display()
        )
    }

    /// The plugin as notation runs it, with this token's environment.
    pub fn client(&self) -> PluginClient {
        let mut c = PluginClient::new(&self.plugin);
        for (k, v) in self.env() {
            c = c.with_env(k, v);
        }
        c
    }

    /// Runs `notation-pkcs11 <args>` with this token's environment.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.plugin)
            .args(args)
            .envs(self.env())
            .output()
            .expect("run notation-pkcs11")
    }

    /// Runs a command and returns its stdout, panicking with stderr on failure.
    #[track_caller]
    pub fn run_ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "notation-pkcs11 {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// `generate-key` on this token; returns the URI of `object`.
    pub fn generate(&self, object: &str, spec: KeySpec) -> String {
        let uri = self.uri(object);
        self.run_ok(&["generate-key", "--key-id", &uri, "--spec", spec.as_str()]);
        uri
    }

    /// The key's public key, read through the plugin (`public-key`).
    pub fn public_key(&self, uri: &str) -> PublicKey {
        PublicKey::from_spki_pem(&self.run_ok(&["public-key", "--key-id", uri]))
            .expect("public-key prints an SPKI PEM")
    }

    /// Writes `chain` to a PEM file in the token directory and returns its path.
    pub fn write_chain(&self, name: &str, chain: &[Certificate]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, chain::to_pem_bundle(chain)).expect("write chain");
        path
    }

    /// Stores `chain` on the token next to the key (`import-certificate`).
    pub fn import_chain(&self, uri: &str, chain: &[Certificate]) {
        let file = self.write_chain("import.pem", chain);
        self.run_ok(&[
            "import-certificate",
            "--key-id",
            uri,
            "--chain",
            &file.display().to_string(),
        ]);
    }

    /// Runs OpenSC's pkcs11-tool against this token, logged in.
    #[track_caller]
    pub fn pkcs11_tool(&self, args: &[&str]) -> String {
        let out = Command::new("pkcs11-tool")
            .args(["--module", SOFTHSM_MODULE, "--token-label", &self.label])
            .args(["--login", "--pin", &self.pin()])
            .args(args)
            .envs(self.env())
            .output()
            .expect("run pkcs11-tool (apt install opensc)");
        assert!(
            out.status.success(),
            "pkcs11-tool {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// OpenSC's pkcs11-spy: a pass-through module that logs every call (PKCS11SPY names the module
/// behind it, PKCS11SPY_OUTPUT the log). The C_Login lines it writes are what a token counts.
pub fn pkcs11_spy() -> &'static str {
    [
        "/usr/lib/x86_64-linux-gnu/pkcs11-spy.so",
        "/usr/lib/aarch64-linux-gnu/pkcs11-spy.so",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("pkcs11-spy.so (apt install opensc-pkcs11)")
}

/// `hsm-tests/fault-pkcs11/fault-pkcs11.c` built once per source text and flags (one file in the
/// temp directory, named by a hash of them, shared by the test processes and runs): a pass-through
/// module to SoftHSM2 (FAULT_PKCS11_MODULE) that hangs in the call named by FAULT_PKCS11_HANG or
/// answers C_Login with FAULT_PKCS11_LOGIN_RV. Needs gcc and p11-kit's pkcs11.h
/// (scripts/install-deps.sh).
pub fn fault_module() -> &'static Path {
    use std::hash::{Hash, Hasher};
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let src = repo().join("hsm-tests/fault-pkcs11/fault-pkcs11.c");
        let text = std::fs::read(&src).expect("read fault-pkcs11.c");
        let (flags, libs) = (
            ["-shared", "-fPIC", "-O1", "-I/usr/include/p11-kit-1"],
            "-ldl",
        );
        let mut hasher = std::hash::DefaultHasher::new();
        (&text, flags, libs).hash(&mut hasher);
        let out = std::env::temp_dir().join(format!("fault-pkcs11-{:016x}.so", hasher.finish()));
        if out.exists() {
            return out;
        }
        // Built under a name of this process's own, then renamed: another test process never
        // loads a half-written module.
        let partial = out.with_extension(format!("{}.partial", std::process::id()));
        let status = Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(&partial)
            .arg(&src)
            .arg(libs)
            .status()
            .expect("run gcc (scripts/install-deps.sh installs it)");
        assert!(status.success(), "building {} failed", src.display());
        std::fs::rename(&partial, &out).expect("rename the built fault module");
        out
    })
}
