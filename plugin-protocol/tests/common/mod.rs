//! Helpers shared by the plugin-protocol tests: software keys with chains on disk, and the
//! softkey example binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plugin_protocol::chain::{self, to_pem_bundle, Certificate};
use plugin_protocol::client::PluginClient;
use plugin_protocol::testca::{generate_key, LeafProfile, TestCa};
use plugin_protocol::KeySpec;

/// A key file with `<key>.chain.pem` beside it, in a temp dir.
pub struct KeyOnDisk {
    pub dir: tempfile::TempDir,
    pub key_path: PathBuf,
    pub ca: TestCa,
}

impl KeyOnDisk {
    pub fn new(spec: KeySpec) -> Self {
        Self::with_profile(spec, &LeafProfile::default())
    }
    pub fn with_profile(spec: KeySpec, profile: &LeafProfile) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_key(spec);
        let key_path = dir.path().join("key.pem");
        std::fs::write(&key_path, key.to_pkcs8_pem().as_bytes()).unwrap();
        let ca = TestCa::new("CN=Test Root,O=notation-plugins tests");
        let chain = ca.issue_leaf_with(&key.public_key().unwrap(), "CN=release signer", profile);
        std::fs::write(chain_path(&key_path), to_pem_bundle(&chain)).unwrap();
        Self { dir, key_path, ca }
    }
    pub fn key_id(&self) -> String {
        self.key_path.to_str().unwrap().to_owned()
    }
}

pub fn chain_path(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.chain.pem", key.display()))
}

pub fn config(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The softkey example plugin, (re)built once per test process.
pub fn softkey_plugin() -> PluginClient {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let path = PATH.get_or_init(|| {
        plugin_protocol::client::cargo_binary("plugin-protocol", "notation-softkey", true)
    });
    PluginClient::new(path)
}

/// Runs openssl in `dir`; a failure fails the test with openssl's own message.
pub fn openssl(args: &[&str], dir: &Path) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `-newkey` arguments for the keys of the openssl-made chains.
pub const P256: &[&str] = &["ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
/// The extensions of a correct Notary root and leaf (openssl extension-file lines).
pub const ROOT_EXT: &str =
    "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
pub const LEAF_EXT: &str = "keyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n";

/// A root and the leaf it issues, both made by openssl alone (an independent CA), each with
/// exactly the extensions given; `sign` holds the digest and `-sigopt` arguments of both
/// signatures. The leaf certifies `leaf_key` (a PEM private key file) when given, else a fresh
/// P-256 key. Returns the chain leaf first, as a backend would hand it over.
pub fn openssl_chain(
    root_key: &[&str],
    root_ext: &str,
    leaf_ext: &str,
    sign: &[&str],
    leaf_key: Option<&Path>,
) -> Vec<Certificate> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("root.ext"), root_ext).unwrap();
    std::fs::write(d.join("leaf.ext"), leaf_ext).unwrap();
    openssl(
        &[
            &["req", "-new", "-nodes", "-newkey"],
            root_key,
            &[
                "-keyout",
                "root.key",
                "-subj",
                "/CN=openssl root",
                "-out",
                "root.csr",
            ],
        ]
        .concat(),
        d,
    );
    match leaf_key {
        Some(key) => openssl(
            &[
                "req",
                "-new",
                "-key",
                key.to_str().unwrap(),
                "-subj",
                "/CN=openssl leaf",
                "-out",
                "leaf.csr",
            ],
            d,
        ),
        None => openssl(
            &[
                &["req", "-new", "-nodes", "-newkey"],
                P256,
                &[
                    "-keyout",
                    "leaf.key",
                    "-subj",
                    "/CN=openssl leaf",
                    "-out",
                    "leaf.csr",
                ],
            ]
            .concat(),
            d,
        ),
    }
    let x509 = |args: &[&str]| openssl(&[&["x509", "-req", "-days", "2"], args, sign].concat(), d);
    x509(&[
        "-in", "root.csr", "-signkey", "root.key", "-extfile", "root.ext", "-out", "root.pem",
    ]);
    x509(&[
        "-in",
        "leaf.csr",
        "-CA",
        "root.pem",
        "-CAkey",
        "root.key",
        "-set_serial",
        "2",
        "-extfile",
        "leaf.ext",
        "-out",
        "leaf.pem",
    ]);
    let mut certs = chain::load_file(&d.join("leaf.pem")).unwrap();
    certs.extend(chain::load_file(&d.join("root.pem")).unwrap());
    certs
}

/// Runs the softkey plugin binary with `args` (an operator or certificate command): exit code,
/// stdout, stderr.
pub fn run_softkey(args: &[&str]) -> (i32, String, String) {
    let mut plugin = softkey_plugin();
    // No operator command waits on anything here: one that hangs is a failure, not a wait.
    plugin.timeout = std::time::Duration::from_secs(30);
    let out = plugin.run(args, b"").unwrap();
    (
        out.exit_code.unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
