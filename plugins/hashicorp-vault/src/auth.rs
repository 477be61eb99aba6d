//! Authentication: a token as the Vault CLI finds it, or a login (AppRole, Kubernetes, JWT/OIDC)
//! whose token lives only in this process's memory and is zeroized when dropped.

use std::path::{Path, PathBuf};

use plugin_protocol::config::Config;
use plugin_protocol::secret::{FileOwner, Secret};
use plugin_protocol::{ConfigKey, ErrorCode, PluginError, Result};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::http::{Method, Vault, STATUS_KEY};
use crate::{
    AUTH_METHOD, AUTH_MOUNT, JWT, JWT_FILE, ROLE, ROLE_ID, ROLE_ID_FILE, SECRET_ID, SECRET_ID_FILE,
    TOKEN, TOKEN_FILE,
};

/// Where a Kubernetes pod finds its service-account token.
pub const K8S_SA_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Token,
    AppRole,
    Kubernetes,
    Jwt,
}

impl AuthMethod {
    fn parse(config: &Config) -> Result<Self> {
        let names = ["token", "approle", "kubernetes", "k8s", "jwt", "oidc"];
        Ok(match config.choice(&AUTH_METHOD, &names)? {
            None | Some(("token", _)) => Self::Token,
            Some(("approle", _)) => Self::AppRole,
            Some(("kubernetes" | "k8s", _)) => Self::Kubernetes,
            Some((_, _)) => Self::Jwt,
        })
    }

    fn default_mount(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::AppRole => "approle",
            Self::Kubernetes => "kubernetes",
            Self::Jwt => "jwt",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::AppRole => "AppRole",
            Self::Kubernetes => "Kubernetes",
            Self::Jwt => "JWT/OIDC",
        }
    }
}

/// Finds or obtains the token and installs it on `vault`. Returns whether the token came from a
/// login (and is this process's to revoke).
pub fn authenticate(vault: &mut Vault, config: &Config) -> Result<bool> {
    let method = AuthMethod::parse(config)?;
    let (token, logged_in) = match method {
        AuthMethod::Token => (static_token(config)?, false),
        _ => (login(vault, config, method)?, true),
    };
    vault.set_token(token);
    Ok(logged_in)
}

fn static_token(config: &Config) -> Result<Zeroizing<String>> {
    // A blank value counts as unset.
    if let Some(t) = Secret::from_setting(config, &TOKEN).and_then(|t| t.text().ok()) {
        return Ok(t);
    }
    if let Some((path, source)) = config.path(&TOKEN_FILE) {
        return read_secret_file(&path, &source, "token", FileOwner::User);
    }
    // The Vault (and OpenBao) CLI token helper's file, written by `vault login` / `bao login`.
    if let Some(home) = std::env::var_os("HOME") {
        let helper = PathBuf::from(home).join(".vault-token");
        if helper.is_file() {
            return read_secret_file(&helper, "the token helper file", "token", FileOwner::User);
        }
    }
    Err(PluginError::validation(
        "no Vault token: set VAULT_TOKEN (or BAO_TOKEN), pluginConfig token_file, run `vault login` \
         / `bao login` (token helper file ~/.vault-token), or choose auth_method approle, \
         kubernetes or jwt",
    ))
}

/// A token, role id, secret id or JWT file, under the shared secret-file policy
/// (`plugin_protocol::secret`): bounded, never blocking on a FIFO, and refused when group or
/// others may read a file the user writes. A JWT file is written by the platform (a Kubernetes
/// projected service-account token is mode 0644, a CI system's ID token file its own), so its
/// mode is not checked.
fn read_secret_file(
    path: &Path,
    source: &str,
    what: &str,
    owner: FileOwner,
) -> Result<Zeroizing<String>> {
    Secret::from_file(path, &format!("the {what} file"), owner)
        .and_then(|secret| secret.text())
        .map_err(|e| e.context(source))
}

/// A secret from its value key (environment) or its file key.
fn secret_input(
    config: &Config,
    key: &ConfigKey,
    file_key: &ConfigKey,
    default_file: Option<&str>,
    what: &str,
    owner: FileOwner,
) -> Result<Option<Zeroizing<String>>> {
    // A blank value counts as unset.
    if let Some(v) = Secret::from_setting(config, key).and_then(|v| v.text().ok()) {
        return Ok(Some(v));
    }
    if let Some((path, source)) = config.path(file_key) {
        return read_secret_file(&path, &source, what, owner).map(Some);
    }
    match default_file {
        Some(path) if Path::new(path).is_file() => {
            read_secret_file(Path::new(path), "the default location", what, owner).map(Some)
        }
        _ => Ok(None),
    }
}

fn login(vault: &Vault, config: &Config, method: AuthMethod) -> Result<Zeroizing<String>> {
    let mount = config
        .get(&AUTH_MOUNT)
        .map(|m| m.trim().trim_matches('/').to_owned())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| method.default_mount().to_owned());
    crate::transit::check_mount(&mount, AUTH_MOUNT.name)?;
    let missing = |what: &str, keys: &str| {
        PluginError::validation(format!(
            "{} login needs {what}: set {keys}",
            method.describe()
        ))
    };
    let role = config.get(&ROLE).filter(|r| !r.trim().is_empty());
    let body: Value = match method {
        AuthMethod::AppRole => {
            let role_id = secret_input(
                config,
                &ROLE_ID,
                &ROLE_ID_FILE,
                None,
                "role id",
                FileOwner::User,
            )?
            .ok_or_else(|| {
                missing(
                    "a role id",
                    "pluginConfig role_id_file or NOTATION_HASHICORP_VAULT_ROLE_ID",
                )
            })?;
            let secret_id = secret_input(
                config,
                &SECRET_ID,
                &SECRET_ID_FILE,
                None,
                "secret id",
                FileOwner::User,
            )?;
            let mut body = json!({ "role_id": role_id.as_str() });
            if let Some(s) = &secret_id {
                body["secret_id"] = Value::String(s.as_str().to_owned());
            }
            body
        }
        AuthMethod::Kubernetes => {
            let role = role.ok_or_else(|| {
                missing(
                    "the Vault role bound to the service account",
                    "pluginConfig role",
                )
            })?;
            let jwt = secret_input(
                config,
                &JWT,
                &JWT_FILE,
                Some(K8S_SA_TOKEN),
                "JWT",
                FileOwner::Platform,
            )?
            .ok_or_else(|| {
                missing(
                    "the service-account token",
                    &format!("pluginConfig jwt_file (default {K8S_SA_TOKEN})"),
                )
            })?;
            json!({ "role": role, "jwt": jwt.as_str() })
        }
        AuthMethod::Jwt => {
            let jwt = secret_input(config, &JWT, &JWT_FILE, None, "JWT", FileOwner::Platform)?
                .ok_or_else(|| {
                    missing(
                    "the CI-provided ID token",
                    "pluginConfig jwt_file (a file with the JWT) or NOTATION_HASHICORP_VAULT_JWT",
                )
                })?;
            let mut body = json!({ "jwt": jwt.as_str() });
            if let Some(role) = role {
                body["role"] = Value::String(role);
            }
            body
        }
        AuthMethod::Token => {
            return Err(PluginError::generic(
                "internal error: the token method has no login",
            ))
        }
    };
    let doing = format!("the {} login (auth mount '{mount}')", method.describe());
    let resp = vault
        .call(Method::Post, &format!("auth/{mount}/login"), Some(&body), &doing)
        .map_err(|e| {
            // A refused login is an authentication failure whatever status Vault chose (400
            // "invalid role or secret ID", 403 "permission denied", ...).
            match (e.code, e.metadata.get(STATUS_KEY).map(String::as_str)) {
                (ErrorCode::Validation, Some("400" | "401" | "403")) | (ErrorCode::AccessDenied, _) => {
                    let mut denied = PluginError::access_denied(e.message.replace(
                        "The token is invalid, expired or revoked, or its policies do not allow this path",
                        "Check the login credentials and the role's bindings",
                    ));
                    denied.metadata = e.metadata;
                    denied
                }
                _ => e,
            }
        })?;
    let token = resp
        .get("auth")
        .and_then(|a| a.get("client_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            PluginError::generic(format!(
                "Vault at {} answered {doing} without a client token",
                vault.addr
            ))
        })?;
    let token = Zeroizing::new(token.to_owned());
    // The response (which holds a copy of the token) is dropped here; serde_json's strings are
    // not zeroized, but they live no longer than this call.
    drop(resp);
    tracing::debug!(mount = %mount, "logged in");
    Ok(token)
}
