//! Helpers shared by the plugin-protocol tests: software keys with chains on disk, and the
//! softkey example binary.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plugin_protocol::chain::to_pem_bundle;
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
