//! One Azure session per invocation: the tokio runtime, the Entra credential chosen by
//! `credential_type`, the Key Vault clients (their own retries off: ours are bounded by the
//! invocation's deadline and honour Retry-After), and the translation of Azure errors into the
//! contract's codes with Azure's error code and request id in errorMetadata.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use plugin_protocol::remote::{
    self, map_failure, retry_after, Class, RemoteFailure, Transport as TransportKind,
};
use plugin_protocol::{Config, Context, PluginError, Result};

use crate::keyref::KeyRef;
use crate::{CLIENT_ID, CREDENTIAL_TYPE, TENANT_ID};

/// What to tell a user without a credential.
pub const CREDENTIALS_HELP: &str = "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET \
     for a service principal, or run where workload identity (AZURE_FEDERATED_TOKEN_FILE) or a \
     managed identity is available, or sign in with `az login`; pluginConfig credential_type \
     picks one of default, environment, workloadid, managedid, azurecli";

/// The credential types of the official notation-azure-kv plugin (plus azurecli).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialType {
    Default,
    Environment,
    WorkloadId,
    ManagedId,
    AzureCli,
}

impl CredentialType {
    /// credential_type's values, as notation-azure-kv names them.
    const NAMES: [&'static str; 5] = [
        "default",
        "environment",
        "workloadid",
        "managedid",
        "azurecli",
    ];

    /// The credential type from credential_type (a VALIDATION_ERROR listing the types).
    fn from_config(config: &Config) -> Result<Self> {
        Ok(match config.choice(&CREDENTIAL_TYPE, &Self::NAMES)? {
            None | Some(("default", _)) => Self::Default,
            Some(("environment", _)) => Self::Environment,
            Some(("workloadid", _)) => Self::WorkloadId,
            Some(("managedid", _)) => Self::ManagedId,
            Some((_, _)) => Self::AzureCli,
        })
    }
}

/// The SDK's HTTP client with every response body bounded by
/// [`plugin_protocol::bounded::MAX_RESPONSE_BYTES`]: a Key Vault answer is a few KiB, and
/// something posing as Key Vault that sends 100 MB is refused at the bound, not buffered.
#[derive(Debug)]
struct BoundedBodies(Arc<dyn azure_core::http::HttpClient>);

#[async_trait::async_trait]
impl azure_core::http::HttpClient for BoundedBodies {
    async fn execute_request(
        &self,
        request: &azure_core::http::Request,
    ) -> azure_core::Result<azure_core::http::AsyncRawResponse> {
        use futures::StreamExt as _;
        let limit = plugin_protocol::bounded::MAX_RESPONSE_BYTES;
        let (status, headers, body) = self.0.execute_request(request).await?.deconstruct();
        let mut seen = 0usize;
        let bounded = body.map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len();
            if seen > limit {
                return Err(azure_core::Error::with_message(
                    ErrorKind::DataConversion,
                    format!(
                        "the response body is larger than {} MiB; is this really Key Vault?",
                        limit >> 20
                    ),
                ));
            }
            Ok(chunk)
        });
        Ok(azure_core::http::AsyncRawResponse::new(
            status,
            headers,
            Box::pin(bounded),
        ))
    }
}

/// A connected session for one invocation.
pub struct Session {
    credential: Arc<dyn TokenCredential>,
    /// "client secret of application <id>", "workload identity ...", for messages.
    pub credential_name: String,
    pub vault_url: String,
    pub host: String,
    /// One HTTP client (and connection pool) for the credential and every Key Vault client.
    transport: Transport,
    keys: std::sync::OnceLock<KeyClient>,
    /// Declared last: dropped after the clients whose connections live on it.
    rt: tokio::runtime::Runtime,
}

/// The HTTP client the SDK's default would be (reqwest, its time-outs, no redirects), trusting
/// the system's roots as `plugin_protocol::tls` reads them (once, while the first request waits
/// for the server), not as the SDK's platform verifier would (the CA bundle and
/// every file of the directory beside it, before anything else).
fn http_client(tls: rustls::ClientConfig) -> Result<Arc<dyn azure_core::http::HttpClient>> {
    let client = reqwest_azure::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(20))
        .read_timeout(std::time::Duration::from_secs(60))
        .redirect(reqwest_azure::redirect::Policy::none())
        .use_preconfigured_tls(tls)
        .dns_resolver(HostLookup)
        .build()
        .map_err(|e| PluginError::generic(format!("cannot build the HTTPS client: {e}")))?;
    Ok(Arc::new(client))
}

/// Host names looked up as reqwest's default resolver does, by
/// [`plugin_protocol::remote::look_up_host`]: the trust store and a chain file are read once the
/// connection is being made, not while the vault's name is looked up.
struct HostLookup;

impl reqwest_azure::dns::Resolve for HostLookup {
    fn resolve(&self, name: reqwest_azure::dns::Name) -> reqwest_azure::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = plugin_protocol::remote::look_up_host(host).await?;
            Ok(Box::new(addrs) as reqwest_azure::dns::Addrs)
        })
    }
}

/// Client options with the SDK's own retries off (ours are bounded by the deadline) and the
/// session's shared transport.
fn client_options(transport: &Transport) -> ClientOptions {
    ClientOptions {
        retry: RetryOptions::none(),
        transport: Some(transport.clone()),
        ..Default::default()
    }
}

impl Session {
    /// Creates the runtime and the credential. No network call is made.
    pub fn open(ctx: &Context, key: &KeyRef) -> Result<Self> {
        // The SDK's reqwest has rustls without a crypto provider: use ring, like the other
        // plugins. The trust store is read once the first request is out, within its wait.
        let tls = plugin_protocol::tls::client_config_with_system_roots(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PluginError::generic(format!("cannot start the async runtime: {e}")))?;
        let (transport, (credential, credential_name)) = {
            // Keep the runtime entered while clients are built, for any that spawn.
            let _guard = rt.enter();
            // The SDK's reqwest has rustls without a crypto provider: use ring, like the other
            // plugins (installing twice is harmless).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let transport = Transport::new(Arc::new(BoundedBodies(http_client(tls)?)));
            let credential = credential(ctx, &transport)?;
            (transport, credential)
        };
        tracing::debug!(credential = %credential_name, vault = %key.vault_url, "azure session");
        Ok(Self {
            rt,
            credential,
            credential_name,
            vault_url: key.vault_url.clone(),
            host: key.host.clone(),
            transport,
            keys: std::sync::OnceLock::new(),
        })
    }

    /// The key client, made once: get key and sign share its authentication challenge.
    pub fn keys(&self) -> Result<&KeyClient> {
        if let Some(c) = self.keys.get() {
            return Ok(c);
        }
        let client = KeyClient::new(
            &self.vault_url,
            self.credential.clone(),
            Some(KeyClientOptions {
                client_options: client_options(&self.transport),
                ..Default::default()
            }),
        )
        .map_err(|e| self.client_error(e))?;
        Ok(self.keys.get_or_init(|| client))
    }

    pub fn certificates(&self) -> Result<CertificateClient> {
        CertificateClient::new(
            &self.vault_url,
            self.credential.clone(),
            Some(CertificateClientOptions {
                client_options: client_options(&self.transport),
                ..Default::default()
            }),
        )
        .map_err(|e| self.client_error(e))
    }

    pub fn secrets(&self) -> Result<SecretClient> {
        SecretClient::new(
            &self.vault_url,
            self.credential.clone(),
            Some(SecretClientOptions {
                client_options: client_options(&self.transport),
                ..Default::default()
            }),
        )
        .map_err(|e| self.client_error(e))
    }

    fn client_error(&self, e: azure_core::Error) -> PluginError {
        PluginError::validation(format!("cannot use vault URL {}: {e}", self.vault_url))
    }

    /// Runs one Key Vault call (made anew by `f` for each attempt) within the invocation's
    /// deadline, retrying throttling (honouring Retry-After) and transient failures with the
    /// shared bounded, jittered backoff.
    pub fn call<T, F, Fut>(&self, ctx: &Context, what: &Call, mut f: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = azure_core::Result<T>>,
    {
        let doing = format!(
            "calling Key Vault ({}) at {}",
            what.operation, self.vault_url
        );
        self.rt.block_on(plugin_protocol::remote::retry(
            &ctx.deadline,
            &doing,
            || {
                let attempt = f();
                async { attempt.await.map_err(|e| map_error(e, what, self)) }
            },
        ))
    }
}

/// The credential `credential_type` asks for, and its description for messages.
fn credential(ctx: &Context, transport: &Transport) -> Result<(Arc<dyn TokenCredential>, String)> {
    let client_options = || client_options(transport);
    let config = &ctx.config;
    let kind = CredentialType::from_config(config)?;
    let client_id = config.get(&CLIENT_ID);
    let tenant_id = config.get(&TENANT_ID);
    let options = || ClientSecretCredentialOptions {
        client_options: client_options(),
    };
    // Read through the shared secret type: zeroized, and never shown (only its source).
    let env_secret = || plugin_protocol::secret::Secret::from_env("AZURE_CLIENT_SECRET");
    let env_set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let invalid = |e: azure_core::Error, what: &str| {
        PluginError::validation(format!(
            "cannot set up the {what} credential: {e}; {CREDENTIALS_HELP}"
        ))
    };

    let client_secret =
        |secret: plugin_protocol::secret::Secret| -> Result<(Arc<dyn TokenCredential>, String)> {
            let tenant = tenant_id.clone().ok_or_else(|| {
                PluginError::validation(format!(
                "AZURE_CLIENT_SECRET is set but no tenant: set AZURE_TENANT_ID (or pluginConfig \
                 tenant_id); {CREDENTIALS_HELP}"
            ))
            })?;
            let client = client_id.clone().ok_or_else(|| {
                PluginError::validation(format!(
                "AZURE_CLIENT_SECRET is set but no application (client) id: set AZURE_CLIENT_ID \
                 (or pluginConfig client_id); {CREDENTIALS_HELP}"
            ))
            })?;
            let name = format!("client secret of application {client} in tenant {tenant}");
            let cred = ClientSecretCredential::new(
                &tenant,
                client,
                Secret::new(secret.text()?.to_string()),
                Some(options()),
            )
            .map_err(|e| invalid(e, "client secret"))?;
            Ok((cred, name))
        };
    let workload = || -> Result<(Arc<dyn TokenCredential>, String)> {
        let name = format!(
            "workload identity (application {}, token file {})",
            client_id
                .clone()
                .unwrap_or_else(|| "from AZURE_CLIENT_ID".into()),
            std::env::var("AZURE_FEDERATED_TOKEN_FILE").unwrap_or_default()
        );
        let cred = WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
            credential_options: azure_identity::ClientAssertionCredentialOptions {
                client_options: client_options(),
            },
            client_id: client_id.clone(),
            tenant_id: tenant_id.clone(),
            token_file_path: None,
        }))
        .map_err(|e| invalid(e, "workload identity"))?;
        Ok((cred, name))
    };
    let managed = || -> Result<(Arc<dyn TokenCredential>, String)> {
        let name = match &client_id {
            Some(id) => format!("user-assigned managed identity {id}"),
            None => "system-assigned managed identity".to_owned(),
        };
        let cred = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
            client_options: client_options(),
        }))
        .map_err(|e| invalid(e, "managed identity"))?;
        Ok((cred, name))
    };
    let cli = || -> Result<(Arc<dyn TokenCredential>, String)> {
        let cred = AzureCliCredential::new(Some(azure_identity::AzureCliCredentialOptions {
            tenant_id: tenant_id.clone(),
            ..Default::default()
        }))
        .map_err(|e| invalid(e, "Azure CLI"))?;
        Ok((cred, "Azure CLI sign-in (az login)".to_owned()))
    };

    match kind {
        CredentialType::Environment => match env_secret() {
            Some(s) => client_secret(s),
            None if env_set("AZURE_CLIENT_CERTIFICATE_PATH") => Err(PluginError::validation(
                "credential_type environment: AZURE_CLIENT_CERTIFICATE_PATH (certificate \
                 credentials) is not supported by this plugin; use AZURE_CLIENT_SECRET or \
                 credential_type workloadid",
            )),
            None => Err(PluginError::validation(format!(
                "credential_type environment needs AZURE_TENANT_ID, AZURE_CLIENT_ID and \
                 AZURE_CLIENT_SECRET; {CREDENTIALS_HELP}"
            ))),
        },
        CredentialType::WorkloadId => workload(),
        CredentialType::ManagedId => managed(),
        CredentialType::AzureCli => cli(),
        // Like DefaultAzureCredential, but chosen once from what is configured, so that an
        // off-Azure machine never waits for the instance metadata endpoint it does not have:
        // environment secret, workload identity, App Service / Functions managed identity,
        // the Azure CLI if installed, else the VM's managed identity.
        CredentialType::Default => {
            if let Some(s) = env_secret() {
                client_secret(s)
            } else if env_set("AZURE_FEDERATED_TOKEN_FILE") {
                workload()
            } else if env_set("IDENTITY_ENDPOINT") || env_set("MSI_ENDPOINT") {
                managed()
            } else if on_path("az") {
                cli()
            } else {
                managed()
            }
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file())
    })
}

/// What is being called, for messages.
pub struct Call {
    /// "get key", "sign", "get certificate", "get secret".
    pub operation: &'static str,
    /// "key 'name' in vault host".
    pub target: String,
    /// The access-policy permission the call needs ("keys/sign").
    pub permission: &'static str,
    /// The least-privileged built-in RBAC role that grants it.
    pub role: &'static str,
    /// What to do instead when this permission is missing (e.g. use `ca_certs`).
    pub hint: &'static str,
}

/// The parts of a Key Vault error body `{"error": {"code", "message", "innererror": {"code"}}}`.
struct AzureBody {
    code: Option<String>,
    message: Option<String>,
    inner: Option<String>,
}

fn parse_body(bytes: &[u8]) -> AzureBody {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let e = &v["error"];
    let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    AzureBody {
        code: s(&e["code"]).or_else(|| s(&v["error"])),
        message: s(&e["message"]).or_else(|| s(&v["error_description"])),
        inner: s(&e["innererror"]["code"]),
    }
}

/// The typed failure of an Azure SDK error: the status, Azure's error code (the inner one
/// kept apart), message, request id and Retry-After, or the transport failure.
fn failure_of(err: &azure_core::Error) -> (RemoteFailure, Option<String>) {
    match err.kind() {
        ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let body = raw_response
                .as_ref()
                .map(|r| parse_body(r.body().as_ref()))
                .unwrap_or(AzureBody {
                    code: None,
                    message: None,
                    inner: None,
                });
            let header = |name: &'static str| {
                raw_response.as_ref().and_then(|r| {
                    r.headers()
                        .get_optional_str(&azure_core::http::headers::HeaderName::from_static(name))
                        .map(str::to_owned)
                })
            };
            let failure = RemoteFailure::answered(
                u16::from(*status),
                body.code.or_else(|| error_code.clone()),
                body.message.unwrap_or_else(|| err.to_string()),
            )
            .with_request_id(header("x-ms-request-id"))
            .with_retry_after(header("retry-after").as_deref().and_then(retry_after));
            (failure, body.inner.filter(|i| !i.is_empty()))
        }
        ErrorKind::Connection | ErrorKind::Io => {
            let detail = error_chain(err);
            (
                RemoteFailure::transport(TransportKind::from_detail(&detail), detail),
                None,
            )
        }
        ErrorKind::DataConversion => {
            let detail = error_chain(err);
            let kind = if detail.contains("larger than") {
                TransportKind::BodyTooLarge
            } else {
                TransportKind::Unreadable
            };
            (RemoteFailure::transport(kind, detail), None)
        }
        _ => (
            RemoteFailure::transport(TransportKind::Request, error_chain(err)),
            None,
        ),
    }
}

/// Translates an Azure SDK error into the contract's codes ([`map_failure`]) with Key Vault's
/// own advice: the access-policy permission or RBAC role a 403 lacks, a disabled object, how to
/// list names. Azure's own error code, inner error code, HTTP status and request id go to
/// errorMetadata; the errorCode is always the contract's.
pub fn map_error(err: azure_core::Error, call: &Call, session: &Session) -> PluginError {
    if matches!(err.kind(), ErrorKind::Credential) {
        return credential_error(&err, session);
    }
    let (mut failure, inner) = failure_of(&err);
    let object = if call.permission.starts_with("secrets") {
        "secret"
    } else if call.permission.starts_with("certificates") {
        "certificate"
    } else {
        "key"
    };
    let disabled =
        failure.status == Some(403) && inner.as_deref().is_some_and(|i| i.ends_with("Disabled"));
    if disabled {
        failure = failure.with_class(Class::Invalid);
    }
    let hint = match (failure.transport, failure.class()) {
        _ if disabled => format!(
            "{} is disabled; enable it (az keyvault {object} set-attributes --enabled true) or \
             use an enabled version",
            call.target
        ),
        (None, Some(Class::Unauthenticated)) => format!(
            "Key Vault refused the token of the {}",
            session.credential_name
        ),
        (None, Some(Class::Denied)) => format!(
            "grant it to the {} by an access policy or a role that grants it such as {} (Azure \
             RBAC){}",
            session.credential_name, call.role, call.hint
        ),
        (None, Some(Class::NotFound)) => {
            format!("check the name and version (az keyvault {object} list --vault-name <vault>)")
        }
        _ => String::new(),
    };
    let shared = remote::Call {
        service: "Key Vault",
        operation: call.operation.to_owned(),
        target: call.target.clone(),
        endpoint: session.host.clone(),
        permission: Some(call.permission.to_owned()),
        code_key: "azureErrorCode",
    };
    let mut pe = map_failure(&shared, &failure, &hint);
    if failure.transport.is_none() {
        pe = pe.with_metadata("operation", call.operation.to_string());
    }
    if let Some(inner) = inner {
        pe = pe.with_metadata("azureInnerErrorCode", inner);
    }
    pe
}

fn credential_error(err: &azure_core::Error, session: &Session) -> PluginError {
    let detail = error_chain(err);
    // An Entra error answered over HTTP (AADSTS...) is a refusal; anything else (no route to
    // the authority, no CLI) may be passing, but is reported as a credential problem.
    let mut pe = PluginError::access_denied(format!(
        "cannot get a Key Vault token with the {}: {detail}; {CREDENTIALS_HELP}",
        session.credential_name
    ));
    if let Some(code) = detail
        .split(|c: char| !c.is_ascii_alphanumeric())
        .find(|w| w.starts_with("AADSTS"))
    {
        pe = pe.with_metadata("entraErrorCode", code);
    }
    pe
}

/// [`plugin_protocol::error::error_chain`] on one line (SDK messages carry newlines).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    plugin_protocol::error::error_chain(e)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod bounded_bodies_tests {
    use super::*;
    use azure_core::http::headers::Headers;
    use azure_core::http::{AsyncRawResponse, HttpClient, Method, Request, StatusCode, Url};

    /// An HTTP client answering every request with a body of `len` bytes.
    #[derive(Debug)]
    struct Answers(usize);

    #[async_trait::async_trait]
    impl HttpClient for Answers {
        async fn execute_request(&self, _: &Request) -> azure_core::Result<AsyncRawResponse> {
            Ok(AsyncRawResponse::from_bytes(
                StatusCode::Ok,
                Headers::new(),
                vec![b' '; self.0],
            ))
        }
    }

    fn body_of(len: usize) -> azure_core::Result<usize> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = BoundedBodies(Arc::new(Answers(len)));
        let request = Request::new(
            Url::parse("https://v.vault.azure.net/keys/k").unwrap(),
            Method::Get,
        );
        rt.block_on(async {
            let resp = client.execute_request(&request).await?;
            Ok(resp.into_body().collect().await?.len())
        })
    }

    #[test]
    fn response_bodies_are_bounded() {
        assert_eq!(body_of(1000).unwrap(), 1000);
        let e = body_of(plugin_protocol::bounded::MAX_RESPONSE_BYTES + 1).unwrap_err();
        assert!(e.to_string().contains("larger than 4 MiB"), "{e}");
        assert_eq!(*e.kind(), ErrorKind::DataConversion);
    }
}
