//! A small HTTP client for the Vault / OpenBao API: one connection setup per invocation (TLS
//! roots, client certificate, namespace), every call bounded by the invocation's deadline and
//! retried by the shared retry policy, and every failure turned into the contract's error codes
//! with Vault's own reason.

use std::time::Duration;

use crate::{ADDRESS, CA_CERT, CA_PATH, CLIENT_CERT, CLIENT_KEY, NAMESPACE};
use plugin_protocol::blocking::announce_waits;
use plugin_protocol::config::{Config, PlainHttp};
use plugin_protocol::error::error_chain;
use plugin_protocol::remote::{self, map_failure, Call, Class, RemoteFailure, Transport};
use plugin_protocol::{retry, Deadline, ErrorCode, PluginError, Result};
use serde_json::Value;
use zeroize::Zeroizing;

/// How long revoking a login token may delay the answer at most.
const REVOKE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long establishing one TCP/TLS connection may take (the deadline bounds the total).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `errorMetadata` key holding the HTTP status of a failed Vault call.
pub const STATUS_KEY: &str = "httpStatus";
/// The `errorMetadata` key holding Vault's own reason for a failed call.
pub const REASON_KEY: &str = "vaultErrors";

/// A connection to one Vault or OpenBao server, for one plugin invocation.
pub struct Vault {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    /// The server address as messages and logs show it: without a trailing slash and with any
    /// password in it redacted, e.g. `https://vault.example.com:8200`.
    pub addr: String,
    /// The address requests go to (it may carry `user:password@`, which never reaches a
    /// message).
    base: String,
    pub namespace: Option<String>,
    token: Option<Zeroizing<String>>,
    pub deadline: Deadline,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("addr", &self.addr)
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Vault {
    /// Sets up the client from configuration: address, namespace, CA certificates and client
    /// certificate. Makes no network call.
    pub fn new(config: &Config, deadline: Deadline) -> Result<Self> {
        // https://, or http:// for a local dev server.
        let (addr, _) = config
            .url(
                &ADDRESS,
                PlainHttp::Allowed,
                "https://vault.example.com:8200",
            )?
            .ok_or_else(|| {
                PluginError::validation(
                    "no Vault address: set VAULT_ADDR (or BAO_ADDR), or pluginConfig address, to \
                     the server URL, e.g. https://vault.example.com:8200",
                )
            })?;
        let https = addr.starts_with("https://");
        let namespace = config
            .get(&NAMESPACE)
            .map(|n| n.trim().trim_matches('/').to_owned())
            .filter(|n| !n.is_empty());

        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!(
                "notation-hashicorp-vault/",
                env!("CARGO_PKG_VERSION")
            ))
            // With an https address, a redirect (a standby forwarding to the active node) can
            // never downgrade to plain HTTP; at most a few hops are followed.
            .https_only(https)
            .redirect(reqwest::redirect::Policy::limited(3))
            .dns_resolver(std::sync::Arc::new(HostLookup));
        use plugin_protocol::tls::{self, CaSetting};
        let mut extra = Vec::new();
        for (key, at) in [
            (&CA_CERT, CaSetting::File),
            (&CA_PATH, CaSetting::Directory),
        ] {
            if let Some((path, source)) = config.path(key) {
                extra.push(tls::configured_roots(&path, at, &source)?);
            }
        }
        let identity = tls::client_identity(config, &CLIENT_CERT, &CLIENT_KEY)?;
        // The system's roots, read once the first request is out (within its wait) and
        // parsed once, beside the configured CAs (a plain-HTTP dev address needs neither).
        if https {
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            builder = builder.use_preconfigured_tls(tls::client_config_with_system_roots_and(
                provider,
                extra,
                identity.as_ref(),
            )?);
        }
        let http = builder.build().map_err(|e| {
            PluginError::generic(format!(
                "cannot set up the HTTP client: {}",
                error_chain(&e)
            ))
        })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PluginError::generic(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Self {
            rt,
            http,
            addr: plugin_protocol::secret::redact_url(&addr),
            base: addr,
            namespace,
            token: None,
            deadline,
        })
    }

    pub fn set_token(&mut self, token: Zeroizing<String>) {
        self.token = Some(token);
    }

    /// A cleanup for [`plugin_protocol::on_interrupt`]: revokes the current token on a runtime
    /// of its own (one attempt, at most [`REVOKE_TIMEOUT`]), for a SIGTERM that arrives while a
    /// call is stuck and the invocation's own runtime is busy.
    pub fn revoker(&self) -> Option<impl FnOnce() + Send + 'static> {
        let token = self.token.clone()?;
        let http = self.http.clone();
        let url = format!("{}/v1/auth/token/revoke-self", self.base);
        let namespace = self.namespace.clone();
        Some(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let mut req = http
                .post(&url)
                .header("X-Vault-Token", token.as_str())
                .header("X-Vault-Request", "true");
            if let Some(ns) = &namespace {
                req = req.header("X-Vault-Namespace", ns.as_str());
            }
            let sent =
                rt.block_on(async { tokio::time::timeout(REVOKE_TIMEOUT, req.send()).await });
            tracing::debug!(
                revoked = matches!(sent, Ok(Ok(_))),
                "login token revoked on a signal"
            );
        })
    }

    /// Revokes the token (one attempt, at most [`REVOKE_TIMEOUT`], errors ignored): for tokens
    /// this process obtained by a login, so that three logins per signature do not pile up in
    /// Vault's token store until their TTL.
    pub fn revoke_token(&mut self) {
        if self.token.is_none() {
            return;
        }
        let budget = Deadline::after(self.deadline.remaining().min(REVOKE_TIMEOUT));
        let doing = "revoking the login token (POST auth/token/revoke-self)";
        match self.once(&budget, Method::Post, "auth/token/revoke-self", None, doing) {
            Ok(_) => tracing::debug!("login token revoked"),
            Err(e) => tracing::debug!(error = %e.message, "login token not revoked"),
        }
        self.token = None;
    }

    /// `method /v1/<path>` with an optional JSON body, retried on throttling and transient
    /// failures within the deadline. Returns the response's JSON (`Value::Null` for 204).
    pub fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        doing: &str,
    ) -> Result<Value> {
        let body = match body {
            Some(b) => Some(Zeroizing::new(serde_json::to_vec(b).map_err(|e| {
                PluginError::generic(format!("cannot encode the request: {e}"))
            })?)),
            None => None,
        };
        retry(&self.deadline, doing, || {
            self.once(
                &self.deadline,
                method,
                path,
                body.as_deref().map(|b| b.as_slice()),
                doing,
            )
        })
    }

    fn once(
        &self,
        deadline: &Deadline,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        doing: &str,
    ) -> Result<Value> {
        let url = format!("{}/v1/{}", self.base, path.trim_start_matches('/'));
        let mut req = match method {
            Method::Get => self.http.get(&url),
            Method::Post => self.http.post(&url),
        };
        if let Some(token) = &self.token {
            req = req.header("X-Vault-Token", token.as_str());
        }
        if let Some(ns) = &self.namespace {
            req = req.header("X-Vault-Namespace", ns.as_str());
        }
        req = req.header("X-Vault-Request", "true");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_vec());
        }
        let remaining = deadline.remaining();
        if remaining.is_zero() {
            return Err(deadline.exceeded(doing));
        }
        tracing::debug!(?method, path, "vault request");
        let outcome = self.rt.block_on(async {
            tokio::time::timeout(
                remaining,
                announce_waits(async {
                    let resp = req.send().await?;
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(remote::retry_after);
                    // The body is read chunk by chunk up to a bound: a server (or something posing
                    // as one) sending 100 MB is refused, not buffered.
                    let mut resp = resp;
                    let mut body = plugin_protocol::bounded::BodyLimit::default();
                    while let Some(chunk) = resp.chunk().await? {
                        if body.push(&chunk).is_err() {
                            return Ok(Err(status));
                        }
                    }
                    Ok::<_, reqwest::Error>(Ok((status, retry_after, Zeroizing::new(body.bytes))))
                }),
            )
            .await
        });
        let (status, retry_after, bytes) = match outcome {
            Err(_elapsed) => return Err(deadline.exceeded(doing)),
            Ok(Err(e)) => return Err(self.transport_error(&e, doing)),
            Ok(Ok(Err(status))) => {
                let failure =
                    RemoteFailure::transport(Transport::BodyTooLarge, format!("HTTP {status}"));
                return Err(map_failure(
                    &self.remote_call(doing),
                    &failure,
                    "or an OpenBao server?",
                ));
            }
            Ok(Ok(Ok(r))) => r,
        };
        tracing::debug!(status, path, "vault response");
        if (200..300).contains(&status) {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                PluginError::generic(format!(
                    "{} answered {doing} with something that is not JSON ({e}); is {} really a \
                     Vault or OpenBao server?",
                    self.addr, self.addr
                ))
            });
        }
        Err(self.status_error(status, retry_after, &bytes, doing))
    }

    /// What is being done, for [`map_failure`]: Vault at its (redacted) address.
    fn remote_call(&self, doing: &str) -> Call {
        Call {
            service: "Vault",
            operation: doing.to_owned(),
            endpoint: self.addr.clone(),
            ..Call::default()
        }
    }

    /// The namespace as messages name it: " in namespace 'n'", or nothing.
    fn in_namespace(&self) -> String {
        self.namespace
            .as_deref()
            .map(|n| format!(" in namespace '{n}'"))
            .unwrap_or_default()
    }

    /// Maps a non-2xx answer through [`map_failure`], keeping Vault's own reason; Vault's hints:
    /// a sealed server, a token or policy that does not allow the path.
    fn status_error(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        body: &[u8],
        doing: &str,
    ) -> PluginError {
        let reasons = vault_reasons(body);
        let reason = if reasons.is_empty() {
            format!("HTTP {status}")
        } else {
            reasons.join("; ")
        };
        let sealed = status == 503 && reasons.iter().any(|r| r.contains("sealed"));
        let mut failure =
            RemoteFailure::answered(status, None, reasons.join("; ")).with_retry_after(retry_after);
        if sealed {
            // Retrying a sealed Vault only burns the deadline.
            failure = failure.with_class(Class::Failed);
        } else if status == 412 {
            // A performance standby that has not caught up yet: worth another try.
            failure = failure.with_class(Class::Unavailable);
        }
        let hint = match failure.class() {
            _ if sealed => "Vault is sealed: unseal it (`vault operator unseal` / `bao operator \
                            unseal`) and sign again"
                .to_owned(),
            Some(Class::Unauthenticated | Class::Denied) => format!(
                "the token is invalid, expired or revoked, or its policies do not allow this \
                 path{}",
                self.in_namespace()
            ),
            _ => String::new(),
        };
        map_failure(&self.remote_call(doing), &failure, &hint).with_metadata(REASON_KEY, reason)
    }

    /// Turns a 403 on `path` into what it means: a token Vault no longer accepts, or a valid
    /// token whose policies lack `capability` on `path` (asks Vault which, with
    /// `auth/token/lookup-self`, which every token may call). `unknown_too`: Vault answers the
    /// same for a path outside the policies that does not exist (a mistyped key name).
    pub fn explain_denied(
        &self,
        e: PluginError,
        path: &str,
        capability: &str,
        unknown_too: bool,
    ) -> PluginError {
        if e.code != ErrorCode::AccessDenied
            || e.metadata.get(STATUS_KEY).map(String::as_str) != Some("403")
            || self.token.is_none()
        {
            return e;
        }
        let reason = e
            .metadata
            .get(REASON_KEY)
            .cloned()
            .unwrap_or_else(|| "permission denied".into());
        let at = &self.addr;
        let ns = self
            .namespace
            .as_deref()
            .map(|n| format!(" in namespace '{n}'"))
            .unwrap_or_default();
        let lookup = self.call(
            Method::Get,
            "auth/token/lookup-self",
            None,
            "looking up the token (GET auth/token/lookup-self)",
        );
        let message = match lookup {
            Ok(v) => {
                let policies: Vec<&str> = v
                    .get("data")
                    .and_then(|d| d.get("policies"))
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                format!(
                    "Vault at {at} denied {capability} on {path}{ns} ({reason}): the token is \
                     valid (policies: {}) but none of its policies grants it{}; add \
                     `path \"{path}\" {{ capabilities = [\"{capability}\"] }}` to one of them",
                    policies.join(", "),
                    if unknown_too {
                        ". Vault answers the same for a key that does not exist, so check the \
                         key id and transit_mount too"
                    } else {
                        ""
                    }
                )
            }
            Err(l) if l.code == ErrorCode::AccessDenied => format!(
                "Vault at {at} rejected the token for {capability} on {path}{ns} ({reason}): it \
                 is invalid, expired or revoked. Get a new one (`vault login` / `bao login`, VAULT_TOKEN) or use a \
                 login auth_method"
            ),
            Err(_) => return e,
        };
        let mut out = PluginError::access_denied(message);
        out.metadata = e.metadata;
        out
    }

    fn transport_error(&self, e: &reqwest::Error, doing: &str) -> PluginError {
        let mut e = self.transport_error_unscrubbed(e, doing);
        // reqwest's errors carry the request URL, with any password in the address.
        e.message = e.message.replace(&self.base, &self.addr);
        e
    }

    fn transport_error_unscrubbed(&self, e: &reqwest::Error, doing: &str) -> PluginError {
        let detail = error_chain(e);
        let kind = if e.is_timeout() {
            Transport::Timeout
        } else {
            Transport::from_detail(&detail)
        };
        let hint = match kind {
            Transport::ClientCertificateRequired => "set client_cert and client_key \
                 (VAULT_CLIENT_CERT, VAULT_CLIENT_KEY) to the PEM certificate and key it trusts"
                .to_owned(),
            Transport::Tls => {
                let skip = std::env::var("VAULT_SKIP_VERIFY")
                    .or_else(|_| std::env::var("BAO_SKIP_VERIFY"))
                    .is_ok_and(|v| !v.is_empty());
                format!(
                    "or set ca_cert (VAULT_CACERT) to the PEM of the CA that issued the server \
                     certificate{}",
                    if skip {
                        "; VAULT_SKIP_VERIFY is ignored: this plugin never disables TLS \
                         verification"
                    } else {
                        ""
                    }
                )
            }
            _ => {
                "is the server running, and is VAULT_ADDR (pluginConfig address) right?".to_owned()
            }
        };
        let shown = match kind {
            Transport::Tls | Transport::Refused | Transport::Dns => root_cause(e),
            _ => detail,
        };
        map_failure(
            &self.remote_call(doing),
            &RemoteFailure::transport(kind, shown),
            &hint,
        )
    }
}

/// The `errors` strings of a Vault error body, de-noised ("1 error occurred:\n\t* x" -> "x").
pub fn vault_reasons(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        return if text.is_empty() || text.len() > 300 {
            Vec::new()
        } else {
            vec![text]
        };
    };
    let mut out = Vec::new();
    for e in v
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(s) = e.as_str() else { continue };
        let items: Vec<&str> = s
            .lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("* "))
            .collect();
        if items.is_empty() {
            let s = s.trim();
            if !s.is_empty() {
                out.push(s.to_owned());
            }
        } else {
            out.extend(items.iter().map(|s| s.to_string()));
        }
    }
    out
}

/// The innermost source of an error ("Connection refused (os error 111)").
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

/// Host names looked up as reqwest's default resolver does, by
/// [`plugin_protocol::remote::look_up_host`]: the trust store and a chain file are read once the
/// connection is being made, not while Vault's name is looked up.
struct HostLookup;

impl reqwest::dns::Resolve for HostLookup {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = plugin_protocol::remote::look_up_host(host).await?;
            Ok(Box::new(addrs) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_denoised() {
        let body = br#"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#;
        assert_eq!(vault_reasons(body), vec!["permission denied"]);
        assert_eq!(
            vault_reasons(br#"{"errors":["Vault is sealed"]}"#),
            vec!["Vault is sealed"]
        );
        assert!(vault_reasons(br#"{"errors":[]}"#).is_empty());
        assert_eq!(vault_reasons(b"bad gateway"), vec!["bad gateway"]);
    }
}
