//! One Google Cloud session per invocation: the tokio runtime, Application Default Credentials
//! (read bounded; the metadata server tried once), the Cloud KMS and Secret Manager clients with
//! Google's own retry loop configured for the contract (bounded by the invocation's deadline, at
//! most [`MAX_ATTEMPTS`] tries, exponential back-off with jitter, retrying RESOURCE_EXHAUSTED,
//! UNAVAILABLE, 5xx, connection failures and attempt time-outs), and the translation of Google's
//! errors into the contract's codes with Google's status, reason and missing permission.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{
    CERTIFICATE_CHAIN_SECRET, CREDENTIALS_FILE, ENDPOINT, QUOTA_PROJECT, SECRET_MANAGER_ENDPOINT,
};
use google_cloud_auth::credentials::{
    external_account, impersonated, mds, service_account, user_account, CacheableResource,
    Credentials, CredentialsProvider,
};
use google_cloud_auth::errors::CredentialsError;
use google_cloud_gax::error::rpc::{Code, StatusDetails};
use google_cloud_gax::error::Error as GaxError;
use google_cloud_gax::exponential_backoff::ExponentialBackoffBuilder;
use google_cloud_gax::retry_policy::RetryPolicy;
use google_cloud_gax::retry_result::RetryResult;
use google_cloud_gax::retry_state::RetryState;
use google_cloud_gax::retry_throttler::RetryThrottler;
use google_cloud_kms_v1::client::KeyManagementService;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use plugin_protocol::blocking::announce_waits;
use plugin_protocol::config::{PlainHttp, MAX_ATTEMPTS};
use plugin_protocol::error::error_chain;
pub use plugin_protocol::remote::Call;
use plugin_protocol::remote::{map_failure, Class, RemoteFailure, Transport};
use plugin_protocol::{ConfigKey, Context, Deadline, PluginError, Result, Retry};
use serde_json::Value;

/// What to tell a user without credentials.
pub const CREDENTIALS_HELP: &str = "set GOOGLE_APPLICATION_CREDENTIALS (or pluginConfig \
     credentials_file) to a service-account key or a workload identity federation \
     (external_account) file, or run `gcloud auth application-default login`, or run on Google \
     Cloud with an attached service account (metadata server)";

/// Longest one attempt may take (a sign answers in well under a second).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a token may take from the metadata server (it answers in milliseconds on Google
/// Cloud; off-cloud it may be black-holed) and from a token endpoint.
const METADATA_TOKEN_TIMEOUT: Duration = Duration::from_secs(3);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest credentials file read (a service-account key is about 2 KiB).
const MAX_CREDENTIALS_FILE: u64 = 64 << 10;

/// Retry decisions for Google's retry loop: the contract's bounded retry. Records how many
/// attempts the last call made, for messages.
#[derive(Debug)]
struct ContractRetry {
    deadline: Deadline,
    attempts: Arc<AtomicU32>,
}

/// Whether a failed attempt may succeed if made again (throttling, unavailability, a lost
/// connection, an attempt that ran out of time). Signing twice is harmless, so non-idempotent
/// calls are retried as well. Credentials errors are not retried here.
fn retryable(error: &GaxError) -> bool {
    !error.is_authentication() && failure_of(error).retry() != Retry::Never
}

impl RetryPolicy for ContractRetry {
    fn on_error(&self, state: &RetryState, error: GaxError) -> RetryResult {
        self.attempts.store(state.attempt_count, Ordering::Relaxed);
        if !retryable(&error) {
            return RetryResult::Permanent(error);
        }
        if state.attempt_count >= MAX_ATTEMPTS {
            return RetryResult::Exhausted(error);
        }
        RetryResult::Continue(error)
    }

    fn remaining_time(&self, _state: &RetryState) -> Option<Duration> {
        Some(self.deadline.remaining())
    }
}

/// No client-side throttling of retries: one process makes a handful of calls, and the adaptive
/// throttler would skip retries at random on a fresh process.
#[derive(Debug)]
struct NoThrottle;

impl RetryThrottler for NoThrottle {
    fn throttle_retry_attempt(&self) -> bool {
        false
    }
    fn on_retry_failure(&mut self, _flow: &RetryResult) {}
    fn on_success(&mut self) {}
}

/// A connected session for one invocation.
pub struct Session {
    pub kms: KeyManagementService,
    /// The KMS endpoint as users see it in messages.
    pub endpoint: String,
    credentials: Credentials,
    /// Where the credentials came from, for messages.
    credential_source: String,
    attempts: Arc<AtomicU32>,
    deadline: Deadline,
    /// Declared last: dropped after the clients whose connections live on it.
    rt: tokio::runtime::Runtime,
}

/// A call to the Google `service` at `endpoint` that needs the IAM `permission`, for messages.
pub fn call(
    service: &'static str,
    method: &str,
    target: String,
    endpoint: &str,
    permission: &str,
) -> Call {
    Call {
        service,
        operation: method.to_owned(),
        target,
        endpoint: endpoint.to_owned(),
        permission: Some(permission.to_owned()),
        code_key: "googleStatus",
    }
}

/// Applies the contract's retry configuration to a Google client builder (KMS and Secret
/// Manager builders share these methods but no trait).
macro_rules! configure {
    ($builder:expr, $session_parts:expr) => {{
        let (deadline, attempts, credentials, endpoint): (
            &Deadline,
            &Arc<AtomicU32>,
            &Credentials,
            Option<&String>,
        ) = $session_parts;
        let backoff = ExponentialBackoffBuilder::new()
            .with_initial_delay(Duration::from_millis(200))
            .with_maximum_delay(Duration::from_secs(5))
            .with_scaling(2.0)
            .build()
            .map_err(|e| PluginError::generic(format!("cannot configure back-off: {e}")))?;
        let mut b = $builder
            .with_credentials(credentials.clone())
            .with_retry_policy(ContractRetry {
                deadline: *deadline,
                attempts: attempts.clone(),
            })
            .with_backoff_policy(backoff)
            .with_retry_throttler(NoThrottle)
            .with_attempt_timeout(ATTEMPT_TIMEOUT.min(deadline.remaining()));
        if let Some(e) = endpoint {
            b = b.with_endpoint(e.clone());
        }
        b
    }};
}

impl Session {
    /// Creates the runtime, the credentials and the KMS client. No network call is made.
    pub fn open(ctx: &Context) -> Result<Self> {
        let (credentials_file, credential_source) = find_credentials(ctx)?;
        let endpoint_override = endpoint(ctx, &ENDPOINT)?;
        // Google's clients read the system trust store even for a plain-HTTP endpoint: where
        // no TLS connection can follow, they read a store of one certificate instead.
        if makes_no_tls_connection(ctx, endpoint_override.as_deref(), &credentials_file)? {
            plugin_protocol::tls::trust_nothing_for_plain_http();
        }
        plugin_protocol::bounded::check_trust_store_env()?;
        // No worker thread: Google's token cache refreshes on a task of its own, which runs on
        // this thread while a call waits for its token, and the deadline's timer fires here
        // too while that task waits on an unresponsive metadata server. A worker would make a
        // service-account token beside the client's set-up, but starting it cost more than
        // the overlap saved: without it, describe-key reaches its first request 0.3-0.8 ms
        // sooner and generate-signature 0.2 ms sooner (50 interleaved runs each).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PluginError::generic(format!("cannot start the async runtime: {e}")))?;
        // Google's clients get rustls without a crypto provider: use ring, like the other
        // plugins (installing twice is harmless).
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The credentials' token cache spawns on the runtime: keep it entered while building.
        let guard = rt.enter();
        let credentials = credentials(ctx, credentials_file, &credential_source)?;
        let endpoint = endpoint_override
            .clone()
            .unwrap_or_else(|| "https://cloudkms.googleapis.com".to_owned());
        let attempts = Arc::new(AtomicU32::new(0));
        let builder = configure!(
            KeyManagementService::builder(),
            (
                &ctx.deadline,
                &attempts,
                &credentials,
                endpoint_override.as_ref()
            )
        );
        let kms = build(&rt, &ctx.deadline, "Cloud KMS", &endpoint, builder.build())?;
        drop(guard);
        tracing::debug!(%endpoint, "gcp session");
        Ok(Self {
            kms,
            endpoint,
            credentials,
            credential_source,
            attempts,
            deadline: ctx.deadline,
            rt,
        })
    }

    /// A Secret Manager client sharing the credentials and the retry configuration.
    pub fn secret_manager(&self, ctx: &Context) -> Result<(SecretManagerService, String)> {
        let endpoint_override = endpoint(ctx, &SECRET_MANAGER_ENDPOINT)?;
        let endpoint = endpoint_override
            .clone()
            .unwrap_or_else(|| "https://secretmanager.googleapis.com".to_owned());
        let _guard = self.rt.enter();
        let builder = configure!(
            SecretManagerService::builder(),
            (
                &self.deadline,
                &self.attempts,
                &self.credentials,
                endpoint_override.as_ref()
            )
        );
        let client = build(
            &self.rt,
            &self.deadline,
            "Secret Manager",
            &endpoint,
            builder.build(),
        )?;
        Ok((client, endpoint))
    }

    /// Runs one call (Google's retry loop inside) under the invocation's deadline and
    /// translates its failure.
    pub fn call<T, F>(&self, what: &Call, fut: F) -> Result<T>
    where
        F: std::future::Future<Output = std::result::Result<T, GaxError>>,
    {
        let doing = format!(
            "calling {} {} at {}",
            what.service, what.operation, what.endpoint
        );
        self.deadline.check(&doing)?;
        self.attempts.store(0, Ordering::Relaxed);
        let outcome = self.rt.block_on(async {
            tokio::time::timeout(self.deadline.remaining(), async {
                // The token first, announcing no wait: for a service-account key it is made
                // here, on this thread (an RSA signature), and local work that waits for the
                // backend's answer would otherwise run before it, delaying the request. The
                // cache keeps the token, or its failure, for the call; the call would fail
                // the same way (credentials errors are not retried).
                if let Err(e) = self.credentials.headers(http::Extensions::new()).await {
                    return Err(GaxError::authentication(e));
                }
                announce_waits(fut).await
            })
            .await
        });
        match outcome {
            Err(_) => Err(self.deadline.exceeded(&doing)),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let attempts = self.attempts.load(Ordering::Relaxed).max(1);
                Err(map_error(
                    e,
                    what,
                    attempts,
                    &self.deadline,
                    &self.credential_source,
                ))
            }
        }
    }
}

/// A client built by `fut`, within the deadline (building a client may look up the
/// credentials' universe).
fn build<T, E: std::error::Error + 'static>(
    rt: &tokio::runtime::Runtime,
    deadline: &Deadline,
    service: &str,
    endpoint: &str,
    fut: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    rt.block_on(async { tokio::time::timeout(deadline.remaining(), fut).await })
        .map_err(|_| deadline.exceeded(&format!("setting up the {service} client")))?
        .map_err(|e| {
            PluginError::validation(format!(
                "cannot set up the {service} client for {endpoint}: {}",
                error_chain(&e)
            ))
        })
}

/// Credentials whose token fetch is bounded: Google's clients apply the attempt time-out to the
/// request but not to getting its token, and an unreachable metadata server would otherwise cost
/// the whole deadline.
#[derive(Debug)]
struct BoundedToken {
    inner: Credentials,
    limit: Duration,
    from: &'static str,
}

impl CredentialsProvider for BoundedToken {
    async fn headers(
        &self,
        extensions: http::Extensions,
    ) -> std::result::Result<CacheableResource<http::HeaderMap>, CredentialsError> {
        match tokio::time::timeout(self.limit, self.inner.headers(extensions)).await {
            Ok(answer) => answer,
            Err(_) => Err(CredentialsError::from_msg(
                false,
                format!(
                    "{} did not answer within {}s",
                    self.from,
                    self.limit.as_secs_f64()
                ),
            )),
        }
    }

    async fn universe_domain(&self) -> Option<String> {
        self.inner.universe_domain().await
    }
}

/// An endpoint setting: an https:// URL, or http:// to a loopback address (a local emulator;
/// a token is never sent in the clear over the network).
fn endpoint(ctx: &Context, key: &ConfigKey) -> Result<Option<String>> {
    let url = ctx.config.url(
        key,
        PlainHttp::Loopback,
        "https://cloudkms.googleapis.com or https://cloudkms.europe-west1.rep.googleapis.com",
    )?;
    Ok(url.map(|(url, _)| url))
}

/// Where Application Default Credentials come from, as Google's libraries find them (AIP-4110):
/// the file named by pluginConfig credentials_file or GOOGLE_APPLICATION_CREDENTIALS, else
/// gcloud's application-default file (read here, bounded, so a wrong path is named), else the
/// metadata server (`None`); and the source, named for messages.
fn find_credentials(ctx: &Context) -> Result<(Option<Value>, String)> {
    Ok(match ctx.config.path(&CREDENTIALS_FILE) {
        Some((path, source)) => {
            let json = read_credentials(&path, &format!("the credentials file {source}"))?;
            (Some(json), format!("{source} ({})", path.display()))
        }
        None => match well_known_file() {
            Some(path) if path.exists() => {
                let json =
                    read_credentials(&path, "gcloud's application-default credentials file")?;
                (
                    Some(json),
                    format!(
                        "gcloud's application-default credentials {}",
                        path.display()
                    ),
                )
            }
            _ => (
                None,
                "the metadata server (no GOOGLE_APPLICATION_CREDENTIALS, no gcloud \
                 application-default credentials file)"
                    .to_owned(),
            ),
        },
    })
}

/// Whether this invocation can make no TLS connection: Cloud KMS at a plain-HTTP (loopback)
/// endpoint, Secret Manager unused or at one too, and credentials that fetch no token over HTTPS:
/// a service account's key (a self-signed JWT, made here) or the metadata server (plain HTTP).
/// Other credentials exchange tokens at an HTTPS endpoint of their file's choosing.
fn makes_no_tls_connection(
    ctx: &Context,
    kms_endpoint: Option<&str>,
    credentials_file: &Option<Value>,
) -> Result<bool> {
    let plain = |url: Option<&str>| {
        url.and_then(|u| u.get(..7))
            .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
    };
    if !plain(kms_endpoint) {
        return Ok(false);
    }
    if ctx.config.get(&CERTIFICATE_CHAIN_SECRET).is_some()
        && !plain(endpoint(ctx, &SECRET_MANAGER_ENDPOINT)?.as_deref())
    {
        return Ok(false);
    }
    Ok(match credentials_file {
        None => true,
        Some(json) => json.get("type").and_then(Value::as_str) == Some("service_account"),
    })
}

/// The credentials of [`find_credentials`]'s file (`None`: the metadata server, tried once per
/// token, Google's default, within the attempt time-out), from `source`.
fn credentials(ctx: &Context, json: Option<Value>, source: &str) -> Result<Credentials> {
    let quota = ctx.config.get(&QUOTA_PROJECT);
    let metadata = json.is_none();
    let built = match json {
        None => {
            // The universe is named so that building a client does not ask the metadata server
            // (an unbounded call off-cloud); only the token fetch does, within an attempt.
            let b = mds::Builder::default().with_universe_domain("googleapis.com");
            match quota {
                Some(q) => b.with_quota_project_id(q).build(),
                None => b.build(),
            }
        }
        Some(json) => {
            let kind = json
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_owned();
            macro_rules! with_quota {
                ($b:expr) => {
                    match quota {
                        Some(q) => $b.with_quota_project_id(q).build(),
                        None => $b.build(),
                    }
                };
            }
            match kind.as_str() {
                "service_account" => with_quota!(service_account::Builder::new(json)),
                "authorized_user" => with_quota!(user_account::Builder::new(json)),
                "external_account" => {
                    check_token_file(&json, source)?;
                    with_quota!(external_account::Builder::new(json))
                }
                "impersonated_service_account" => with_quota!(impersonated::Builder::new(json)),
                other => {
                    return Err(PluginError::validation(format!(
                        "{source} holds credentials of type '{other}'; supported are \
                         service_account, authorized_user (gcloud), external_account (workload \
                         identity federation) and impersonated_service_account"
                    )))
                }
            }
        }
    };
    let built = built.map_err(|e| {
        PluginError::validation(format!(
            "cannot use the Google credentials from {source}: {}; {CREDENTIALS_HELP}",
            error_chain(&e)
        ))
    })?;
    let bounded = if metadata {
        BoundedToken {
            inner: built,
            limit: METADATA_TOKEN_TIMEOUT,
            from: "the metadata server",
        }
    } else {
        BoundedToken {
            inner: built,
            limit: TOKEN_TIMEOUT,
            from: "the token endpoint",
        }
    };
    Ok(Credentials::from(bounded))
}

/// A workload identity federation file names the file its OIDC token is in (written by the CI
/// system's auth step): a missing one is named here, before any token exchange.
fn check_token_file(json: &Value, source: &str) -> Result<()> {
    let Some(file) = json
        .pointer("/credential_source/file")
        .and_then(|f| f.as_str())
    else {
        return Ok(());
    };
    if std::path::Path::new(file).is_file() {
        return Ok(());
    }
    Err(PluginError::validation(format!(
        "the OIDC token file {file} named by credential_source.file in {source} does not exist; \
         the CI system's auth step writes it (GitHub Actions: google-github-actions/auth with \
         `permissions: id-token: write`; GitLab CI: an id_tokens entry)"
    )))
}

fn read_credentials(path: &std::path::Path, what: &str) -> Result<serde_json::Value> {
    // A credentials file is often written by the platform (CI auth actions) with its own mode:
    // the secret-file policy's platform exception.
    let bytes = plugin_protocol::secret::read_file(
        path,
        what,
        plugin_protocol::secret::FileOwner::Platform,
    )?;
    if bytes.len() as u64 > MAX_CREDENTIALS_FILE {
        return Err(PluginError::validation(format!(
            "{what} {} is too large",
            path.display()
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        // serde_json's message names a position, never the file's content.
        PluginError::validation(format!(
            "{what} {} is not a Google credentials JSON file: {e}",
            path.display()
        ))
    })
}

/// gcloud's application-default credentials file (`gcloud auth application-default login`).
fn well_known_file() -> Option<std::path::PathBuf> {
    let config = match std::env::var_os("CLOUDSDK_CONFIG") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".config/gcloud"),
    };
    Some(config.join("application_default_credentials.json"))
}

/// The innermost Google error of a retry loop that gave up.
fn innermost(err: &GaxError) -> Option<&GaxError> {
    let mut source = std::error::Error::source(err);
    let mut found = None;
    while let Some(s) = source {
        if let Some(g) = s.downcast_ref::<GaxError>() {
            found = Some(g);
        }
        source = s.source();
    }
    found
}

/// What went wrong getting a token, without the boilerplate Google's credential errors repeat
/// at every level: the innermost credential message (an STS answer's body, say) and the
/// innermost cause (an I/O or HTTP error).
fn credential_cause(e: &GaxError) -> String {
    const NOISE: [&str; 7] = [
        "cannot create the authentication headers",
        "cannot create auth headers",
        "Request to fetch the token failed.",
        "Subsequent calls with this credential will also fail.",
        "Subsequent calls with this credential might succeed.",
        "and future attempts will not succeed",
        "but future attempts may succeed",
    ];
    let clean = |text: String| {
        let mut t = text;
        for n in NOISE {
            t = t.replace(n, "");
        }
        t.trim().trim_matches(':').trim().to_owned()
    };
    let mut message = String::new();
    let mut innermost = String::new();
    let mut level: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = level {
        let own = err.to_string();
        // The text of this level alone: what it says before its source's text.
        let own = match err.source().map(|s| s.to_string()) {
            Some(src) if !src.is_empty() => own.replace(&src, ""),
            _ => own,
        };
        let own = clean(own);
        if !own.is_empty() {
            if err.source().is_none() {
                innermost = own;
            } else {
                message = own;
            }
        }
        level = err.source();
    }
    match (message.is_empty(), innermost.is_empty()) {
        (false, false) if !message.contains(&innermost) => format!("{message}: {innermost}"),
        (false, _) => message,
        (true, _) => innermost,
    }
}

/// The reason and the missing permission Google names in a status's ErrorInfo, if any.
fn error_info(err: &GaxError) -> (Option<String>, Option<String>) {
    let Some(status) = err.status() else {
        return (None, None);
    };
    for d in &status.details {
        if let StatusDetails::ErrorInfo(info) = d {
            let reason = (!info.reason.is_empty()).then(|| info.reason.clone());
            return (reason, info.metadata.get("permission").cloned());
        }
    }
    (None, None)
}

/// Translates a failed call into the contract's codes, with Google's status and message.
pub fn map_error(
    err: GaxError,
    call: &Call,
    attempts: u32,
    deadline: &Deadline,
    credential_source: &str,
) -> PluginError {
    let gave_up = err.is_exhausted();
    let e = if gave_up {
        innermost(&err).unwrap_or(&err)
    } else {
        &err
    };
    // An attempt that timed out with the deadline all but used up: the deadline it is.
    if e.is_timeout() && deadline.remaining() < Duration::from_millis(500) {
        let doing = format!(
            "calling {} {} at {}",
            call.service, call.operation, call.endpoint
        );
        return deadline.exceeded(&doing);
    }
    let mut pe = translate(e, call, credential_source);
    if attempts > 1 || gave_up {
        let why = if attempts >= MAX_ATTEMPTS {
            format!("after {attempts} attempts")
        } else {
            format!(
                "tried {attempts} times; another try would pass the {}s deadline set by \
                 timeout_seconds",
                deadline.total().as_secs_f64()
            )
        };
        pe.message = format!("{} ({why})", pe.message);
    }
    // Google's retry loop has already retried what could be: nothing is retried again.
    pe.retry = Retry::Never;
    pe.with_metadata("attempts", attempts.to_string())
}

/// The class of a Google status code: Google's own, not the HTTP status's (INTERNAL is not
/// retried, as Google's guidance says).
fn class_of(code: Code) -> Class {
    match code {
        Code::PermissionDenied => Class::Denied,
        Code::Unauthenticated => Class::Unauthenticated,
        Code::NotFound => Class::NotFound,
        Code::FailedPrecondition | Code::InvalidArgument | Code::OutOfRange => Class::Invalid,
        Code::ResourceExhausted => Class::Throttled,
        Code::DeadlineExceeded => Class::Timeout,
        Code::Unavailable => Class::Unavailable,
        _ => Class::Failed,
    }
}

/// The typed failure of a Google error: its status (code name and message) and HTTP status,
/// or the transport failure.
fn failure_of(e: &GaxError) -> RemoteFailure {
    let detail = error_chain(e);
    if let Some(status) = e.status() {
        let mut f = RemoteFailure::answered(
            e.http_status_code().unwrap_or(0),
            Some(status.code.name().to_owned()),
            status.message.clone(),
        )
        .with_class(class_of(status.code));
        if e.http_status_code().is_none() {
            f.status = None;
        }
        return f;
    }
    if let Some(code) = e.http_status_code() {
        return RemoteFailure::answered(code, None, detail);
    }
    let kind = if e.is_timeout() {
        Transport::Timeout
    } else if e.is_connect() || e.is_io() {
        Transport::from_detail(&detail)
    } else if e.is_transient_and_before_rpc() {
        Transport::Other
    } else if e.is_deserialization() {
        Transport::Unreadable
    } else {
        Transport::Request
    };
    RemoteFailure::transport(kind, detail)
}

fn translate(e: &GaxError, call: &Call, credential_source: &str) -> PluginError {
    if e.is_authentication() {
        let cause = credential_cause(e);
        return PluginError::access_denied(format!(
            "cannot get a Google access token from {credential_source} for {} {}: {cause}; \
             {CREDENTIALS_HELP}",
            call.service, call.operation
        ))
        .with_metadata("credentials", credential_source.to_owned());
    }
    let failure = failure_of(e);
    let (reason, missing) = error_info(e);
    let mut call = call.clone();
    if let Some(p) = &missing {
        call.permission = Some(p.clone());
    }
    let hint = match (failure.transport, failure.class()) {
        (Some(Transport::Tls | Transport::Request | Transport::BodyTooLarge), _) => String::new(),
        (Some(_), _) => "check pluginConfig endpoint, proxy and network settings".to_owned(),
        (None, Some(Class::Denied)) => {
            "see the least-privilege role in the plugin's README".to_owned()
        }
        (None, Some(Class::Unauthenticated)) => CREDENTIALS_HELP.to_owned(),
        (None, Some(Class::NotFound)) => {
            "check the project, location, key ring, key and version in the keyId".to_owned()
        }
        (None, Some(Class::Invalid)) if failure.code.as_deref() == Some("FAILED_PRECONDITION") => {
            format!(
                "{} cannot be used for {} in its current state",
                call.target, call.operation
            )
        }
        (None, Some(Class::Throttled)) => {
            "throttled by a quota or rate limit: sign again later or raise the quota".to_owned()
        }
        _ => String::new(),
    };
    let mut pe = map_failure(&call, &failure, &hint);
    if failure.class() == Some(Class::Denied) {
        if let Some(p) = call.permission {
            pe = pe.with_metadata("permission", p);
        }
    }
    if let Some(r) = reason {
        pe = pe.with_metadata("reason", r);
    }
    pe
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_gax::error::rpc::Status;
    use plugin_protocol::ErrorCode;

    fn call() -> Call {
        super::call(
            "Cloud KMS",
            "AsymmetricSign",
            "key version 'v'".into(),
            "https://cloudkms.googleapis.com",
            "cloudkms.cryptoKeyVersions.useToSign",
        )
    }

    fn status(code: Code, message: &str) -> GaxError {
        GaxError::service(Status::default().set_code(code).set_message(message))
    }

    fn mapped(e: GaxError, attempts: u32) -> PluginError {
        let deadline = Deadline::after(Duration::from_secs(30));
        map_error(e, &call(), attempts, &deadline, "a test credential")
    }

    #[test]
    fn google_statuses_map_to_contract_codes() {
        for (code, want, words) in [
            (
                Code::PermissionDenied,
                ErrorCode::AccessDenied,
                "cloudkms.cryptoKeyVersions.useToSign",
            ),
            (
                Code::Unauthenticated,
                ErrorCode::AccessDenied,
                "GOOGLE_APPLICATION_CREDENTIALS",
            ),
            (Code::NotFound, ErrorCode::Validation, "not found"),
            (
                Code::FailedPrecondition,
                ErrorCode::Validation,
                "cannot be used",
            ),
            (Code::InvalidArgument, ErrorCode::Validation, "refused"),
            (Code::ResourceExhausted, ErrorCode::Throttled, "throttled"),
            (Code::Unavailable, ErrorCode::Generic, "unavailable"),
            (
                Code::DeadlineExceeded,
                ErrorCode::Timeout,
                "ran out of time",
            ),
            (
                Code::Internal,
                ErrorCode::Generic,
                "answered AsymmetricSign",
            ),
        ] {
            let e = mapped(status(code, "Google says so"), 1);
            assert_eq!(e.code, want, "{code:?}: {}", e.message);
            assert!(e.message.contains(words), "{code:?}: {}", e.message);
            assert!(e.message.contains("Google says so"), "{}", e.message);
            assert_eq!(e.metadata["googleStatus"], code.name());
            assert_eq!(e.retry, Retry::Never, "Google's loop has retried already");
        }
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(retryable(&status(Code::ResourceExhausted, "")));
        assert!(retryable(&status(Code::Unavailable, "")));
        for code in [
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::NotFound,
            Code::FailedPrecondition,
            Code::InvalidArgument,
            Code::Internal,
        ] {
            assert!(!retryable(&status(code, "")), "{code:?}");
        }
        assert!(retryable(&GaxError::io("connection reset")));
        assert!(retryable(&GaxError::timeout("attempt timed out")));
        let creds = GaxError::authentication(CredentialsError::from_msg(true, "mds down"));
        assert!(!retryable(&creds), "credential failures are not retried");
    }

    #[test]
    fn retry_policy_stops_at_the_attempt_limit() {
        let policy = ContractRetry {
            deadline: Deadline::after(Duration::from_secs(30)),
            attempts: Arc::new(AtomicU32::new(0)),
        };
        let state = |n: u32| RetryState::new(false).set_attempt_count(n);
        let e = || status(Code::Unavailable, "");
        assert!(policy.on_error(&state(1), e()).is_continue());
        assert!(policy.on_error(&state(MAX_ATTEMPTS), e()).is_exhausted());
        assert!(policy
            .on_error(&state(1), status(Code::NotFound, ""))
            .is_permanent());
        assert_eq!(policy.attempts.load(Ordering::Relaxed), 1);
        assert!(policy.remaining_time(&state(1)).unwrap() <= Duration::from_secs(30));
    }

    #[test]
    fn messages_say_how_often_it_was_tried() {
        let e = mapped(status(Code::ResourceExhausted, "quota"), MAX_ATTEMPTS);
        assert!(e.message.ends_with("(after 5 attempts)"), "{}", e.message);
        assert_eq!(e.metadata["attempts"], "5");
        let e = mapped(status(Code::Unavailable, "down"), 2);
        assert!(e.message.contains("tried 2 times"), "{}", e.message);
        let e = mapped(status(Code::NotFound, "absent"), 1);
        assert!(!e.message.contains("tried"), "{}", e.message);
    }

    #[test]
    fn credential_errors_keep_the_cause_not_the_boilerplate() {
        let inner =
            CredentialsError::from_msg(false, "failed to exchange token, body=<invalid_grant>");
        let e = mapped(GaxError::authentication(inner), 1);
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert!(e.message.contains("a test credential"), "{}", e.message);
        assert!(e.message.contains("body=<invalid_grant>"), "{}", e.message);
        assert!(!e.message.contains("future attempts"), "{}", e.message);
    }
}
