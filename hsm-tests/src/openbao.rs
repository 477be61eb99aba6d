//! The local OpenBao dev server of `scripts/openbao.sh` (started here if needed; idempotent).

use std::path::PathBuf;
use std::sync::OnceLock;

use plugin_protocol::PublicKey;
use serde_json::{json, Value};

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

/// A client of the Vault API with one token (and namespace).
#[derive(Clone)]
pub struct Api {
    pub addr: String,
    pub token: String,
    pub namespace: Option<String>,
}

impl Api {
    pub fn root() -> Self {
        let s = server();
        Api {
            addr: s.addr.clone(),
            token: s.root_token.clone(),
            namespace: None,
        }
    }

    pub fn in_namespace(&self, ns: &str) -> Self {
        Api {
            namespace: Some(ns.to_owned()),
            ..self.clone()
        }
    }

    /// One HTTP/1.0 request (no chunked answers to decode); (status, JSON body or Null).
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let host = self.addr.trim_start_matches("http://");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} /v1/{path} HTTP/1.0\r\nHost: {host}\r\nX-Vault-Token: {}\r\nContent-Type: application/json\r\n",
            self.token
        );
        if let Some(ns) = &self.namespace {
            head.push_str(&format!("X-Vault-Namespace: {ns}\r\n"));
        }
        let (status, body) = crate::http(host, &head, &body);
        let value = if body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or(Value::String(body))
        };
        (status, value)
    }

    #[track_caller]
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.request(method, path, body.as_ref());
        assert!(
            (200..300).contains(&status),
            "{method} {path} answered {status}: {value}"
        );
        value
    }

    pub fn create_key(&self, name: &str, key_type: &str) {
        self.call(
            "POST",
            &format!("transit/keys/{name}"),
            Some(json!({ "type": key_type })),
        );
    }

    /// The public key of `version` (latest when None) of a Transit key.
    pub fn public_key(&self, name: &str, version: Option<u64>) -> PublicKey {
        let v = self.call("GET", &format!("transit/keys/{name}"), None);
        let version = version.unwrap_or_else(|| v["data"]["latest_version"].as_u64().unwrap());
        let pem = v["data"]["keys"][version.to_string()]["public_key"]
            .as_str()
            .unwrap()
            .to_owned();
        PublicKey::from_spki_pem(&pem).unwrap()
    }

    pub fn put_policy(&self, name: &str, hcl: &str) {
        self.call(
            "PUT",
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        );
    }

    pub fn create_token(&self, policies: &[&str]) -> String {
        let v = self.call(
            "POST",
            "auth/token/create",
            Some(json!({ "policies": policies, "ttl": "10m", "no_default_policy": false })),
        );
        v["auth"]["client_token"].as_str().unwrap().to_owned()
    }
}

/// The environment a user has after `export VAULT_ADDR=... VAULT_TOKEN=...`; every other
/// Vault variable is explicitly empty so the tests do not depend on the caller's shell.
pub fn env_with(token: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![("VAULT_ADDR".to_owned(), server().addr.clone())];
    env.push(("VAULT_TOKEN".into(), token.unwrap_or_default().to_owned()));
    for k in [
        "BAO_ADDR",
        "BAO_TOKEN",
        "VAULT_NAMESPACE",
        "BAO_NAMESPACE",
        "VAULT_CACERT",
        "VAULT_CAPATH",
        "VAULT_CLIENT_CERT",
        "VAULT_CLIENT_KEY",
    ] {
        env.push((k.to_owned(), String::new()));
    }
    env
}

pub fn root_env() -> Vec<(String, String)> {
    env_with(Some(&server().root_token))
}
