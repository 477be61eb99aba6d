//! The local OpenBao dev server of `scripts/openbao.sh` (started here if needed; idempotent).

use std::path::PathBuf;
use std::sync::OnceLock;

pub struct Server {
    /// `http://127.0.0.1:8200`
    pub addr: String,
    pub root_token: String,
    /// The `bao` executable of the script's venv.
    pub bao_bin: PathBuf,
}

impl Server {
    /// `VAULT_ADDR` and `VAULT_TOKEN` (the root token) for a plugin or the `bao` CLI.
    pub fn root_env(&self) -> Vec<(String, String)> {
        vec![
            ("VAULT_ADDR".into(), self.addr.clone()),
            ("VAULT_TOKEN".into(), self.root_token.clone()),
        ]
    }
}

/// Starts the server if it is not running and reads the state file the script writes.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        crate::start_backend("openbao.sh");
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"));
        let state = std::fs::read_to_string(cache.join("notation-plugins/openbao/state.env"))
            .expect("openbao state file");
        let get = |k: &str| {
            state
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .unwrap_or_else(|| panic!("{k} missing from the openbao state file"))
                .to_owned()
        };
        let server = Server {
            addr: get("VAULT_ADDR"),
            root_token: get("VAULT_TOKEN"),
            bao_bin: PathBuf::from(get("BAO_BIN")),
        };
        server.enable_transit();
        server
    })
}

impl Server {
    /// Mounts the Transit engine at `transit/` (the plugin's default mount), unless a dev
    /// server that lives on across test runs already has it.
    fn enable_transit(&self) {
        let out = std::process::Command::new(&self.bao_bin)
            .args(["secrets", "enable", "transit"])
            .envs(self.root_env())
            .output()
            .expect("run bao secrets enable transit");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || text.contains("path is already in use"),
            "bao secrets enable transit: {text}"
        );
    }
}
