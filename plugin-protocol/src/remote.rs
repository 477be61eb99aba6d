//! Remote backends: what is being called ([`Call`]), how a call failed ([`RemoteFailure`], the
//! HTTP status, the service's error code and message, the request id, Retry-After, or the
//! [`Transport`] failure), and the one mapping of a failure to the contract's codes, retry
//! classification and wording ([`map_failure`]); a backend adds only its service-specific hint
//! (e.g. "kms:Sign is missing from the key policy"). None of this needs an HTTP stack or an
//! async runtime, so any backend may use it.
//!
//! With the feature `remote`, [`retry`] runs one call of an async client (the AWS and Azure
//! SDKs) under the invocation's deadline, the way [`crate::config::retry`] does it for blocking
//! clients: each attempt is bounded by what is left of the deadline; throttling and transient
//! failures are retried with the shared bounded, jittered backoff (honouring Retry-After).

#[cfg(feature = "remote")]
use std::future::Future;
use std::time::Duration;

#[cfg(feature = "remote")]
use crate::config::after_failure;
#[cfg(feature = "remote")]
use crate::deadline::Deadline;
#[cfg(feature = "remote")]
use crate::error::Result;
use crate::error::{PluginError, Retry};

/// Runs `attempt` (made anew for each try) until it succeeds, fails for good, or the deadline
/// passes (TIMEOUT naming `doing`). Its waits are announced ([`crate::blocking::announce_waits`]).
#[cfg(feature = "remote")]
pub async fn retry<T, F, Fut>(deadline: &Deadline, doing: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        deadline.check(doing)?;
        tries += 1;
        let attempt = crate::blocking::announce_waits(attempt());
        let err = match tokio::time::timeout(deadline.remaining(), attempt).await {
            Err(_) => return Err(deadline.exceeded(doing)),
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e,
        };
        tracing::debug!(attempt = tries, code = %err.code, message = %err.message, doing, "call failed");
        let delay = after_failure(deadline, doing, tries, err)?;
        tokio::time::sleep(delay).await;
    }
}

/// The addresses of `host` for an HTTP client's resolver, looked up as hyper's and reqwest's
/// default resolver does it (the system's `getaddrinfo`, on tokio's blocking pool; port 0, which
/// the client replaces), as a [`crate::blocking::host_lookup`].
#[cfg(feature = "remote")]
pub async fn look_up_host(
    host: String,
) -> std::io::Result<std::vec::IntoIter<std::net::SocketAddr>> {
    use std::net::ToSocketAddrs as _;
    crate::blocking::host_lookup(async move {
        tokio::task::spawn_blocking(move || (host.as_str(), 0).to_socket_addrs())
            .await
            .map_err(std::io::Error::other)?
    })
    .await
}

/// How a request failed below HTTP: no answer, or an answer that could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Nothing listens at the endpoint (connection refused).
    Refused,
    /// The endpoint's host name does not resolve.
    Dns,
    /// The server's TLS certificate is not trusted (unknown issuer, expired, another name) or
    /// the TLS handshake failed.
    Tls,
    /// The server asks for a TLS client certificate that was not presented.
    ClientCertificateRequired,
    /// One attempt ran out of time, connecting or waiting for the answer.
    Timeout,
    /// The connection broke (reset, closed before the answer was complete).
    Reset,
    /// The answer's body passed [`crate::bounded::MAX_RESPONSE_BYTES`].
    BodyTooLarge,
    /// The answer arrived but could not be read.
    Unreadable,
    /// The request could not be made at all (a client-side problem, not worth retrying).
    Request,
    /// Any other failure to connect or to send the request.
    Other,
}

impl Transport {
    /// Classifies a transport error by its text (an [`crate::error::error_chain`] of an HTTP
    /// client's error): connection refused, DNS, TLS, time-out, reset, else [`Transport::Other`].
    pub fn from_detail(detail: &str) -> Self {
        let l = detail.to_ascii_lowercase();
        let any = |words: &[&str]| words.iter().any(|w| l.contains(w));
        if any(&["certificaterequired", "certificate required"]) {
            Self::ClientCertificateRequired
        } else if any(&["connection refused", "actively refused"]) {
            Self::Refused
        } else if any(&[
            "dns error",
            "failed to lookup address",
            "name or service not known",
            "no such host",
            "resolve",
        ]) {
            Self::Dns
        } else if any(&["certificate", "tls", "handshake"]) {
            Self::Tls
        } else if any(&["timed out", "timeout"]) {
            Self::Timeout
        } else if any(&[
            "reset",
            "broken pipe",
            "connection closed",
            "unexpected eof",
            "incomplete message",
        ]) {
            Self::Reset
        } else {
            Self::Other
        }
    }
}

/// What a service's answer means, whatever its status: a backend sets it from the service's own
/// error code when that says more than the status (AWS answers 400 for both a throttled and a
/// refused call), else [`Class::of_status`] decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The credentials were refused (401): ACCESS_DENIED.
    Unauthenticated,
    /// The identity lacks a permission (403): ACCESS_DENIED naming the permission.
    Denied,
    /// The target does not exist (404): VALIDATION_ERROR naming the target.
    NotFound,
    /// The request was refused as invalid (400, 405, 422) or the target cannot be used for it:
    /// VALIDATION_ERROR.
    Invalid,
    /// Rate-limited (429): THROTTLED, retried (honouring Retry-After).
    Throttled,
    /// The service failed or is unavailable (5xx): ERROR, retried.
    Unavailable,
    /// The service ran out of time on its side: TIMEOUT, not retried.
    Timeout,
    /// Anything else the service answered: ERROR, not retried.
    Failed,
}

impl Class {
    /// The class of an HTTP status.
    pub fn of_status(status: u16) -> Self {
        match status {
            401 => Self::Unauthenticated,
            403 => Self::Denied,
            404 => Self::NotFound,
            400 | 405 | 422 => Self::Invalid,
            429 => Self::Throttled,
            500..=599 => Self::Unavailable,
            _ => Self::Failed,
        }
    }
}

/// How one remote call failed: either the service answered (status, its error code and
/// message, request id, Retry-After) or the transport failed ([`RemoteFailure::transport`]).
/// A backend builds it from its SDK's error; [`map_failure`] turns it into the contract's error.
#[derive(Clone, Debug, Default)]
pub struct RemoteFailure {
    /// The HTTP status of the answer, if one came.
    pub status: Option<u16>,
    /// The service's own error code ("AccessDeniedException", "PERMISSION_DENIED").
    pub code: Option<String>,
    /// The service's message, or the transport error's text.
    pub message: String,
    /// The service's request id, for support cases.
    pub request_id: Option<String>,
    /// How long the service asked to wait before trying again (Retry-After).
    pub retry_after: Option<Duration>,
    /// Set when no usable answer came.
    pub transport: Option<Transport>,
    /// What the answer means when the service's code says more than the status.
    pub class: Option<Class>,
}

impl RemoteFailure {
    /// The service answered `status` with its error `code` (if any) and `message`.
    pub fn answered(status: u16, code: Option<String>, message: impl Into<String>) -> Self {
        Self {
            status: Some(status),
            code: code.filter(|c| !c.is_empty()),
            message: message.into(),
            ..Self::default()
        }
    }

    /// No usable answer: `kind`, with the transport error's text.
    pub fn transport(kind: Transport, detail: impl Into<String>) -> Self {
        Self {
            transport: Some(kind),
            message: detail.into(),
            ..Self::default()
        }
    }

    /// With the service's request id.
    pub fn with_request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id;
        self
    }

    /// With Retry-After.
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }

    /// With the meaning the service's own code gives the answer.
    pub fn with_class(mut self, class: Class) -> Self {
        self.class = Some(class);
        self
    }

    /// What the answer means: the backend's [`RemoteFailure::class`], else the status's; `None`
    /// for a transport failure.
    pub fn class(&self) -> Option<Class> {
        if self.transport.is_some() {
            return None;
        }
        self.class
            .or(self.status.map(Class::of_status))
            .or(Some(Class::Failed))
    }

    /// Whether another attempt may succeed: throttling (after Retry-After), a failing or
    /// unavailable service, and transport failures other than TLS trust, a missing client
    /// certificate, an oversized answer or a request that cannot be made.
    pub fn retry(&self) -> Retry {
        match (self.transport, self.class()) {
            (
                Some(
                    Transport::Tls
                    | Transport::ClientCertificateRequired
                    | Transport::BodyTooLarge
                    | Transport::Request,
                ),
                _,
            ) => Retry::Never,
            (Some(_), _) => Retry::Transient,
            (None, Some(Class::Throttled)) => Retry::Throttled(self.retry_after),
            (None, Some(Class::Unavailable)) => Retry::Transient,
            _ => Retry::Never,
        }
    }

    /// What the service said: "code: message", or "HTTP status: message" without a code.
    pub fn said(&self) -> String {
        match (&self.code, self.status) {
            (Some(code), _) => format!("{code}: {}", self.message),
            (None, Some(status)) if self.message.is_empty() => format!("HTTP {status}"),
            (None, Some(status)) => format!("HTTP {status}: {}", self.message),
            (None, None) => self.message.clone(),
        }
    }
}

/// A Retry-After header's value in seconds ("3", "0.5"), if it is one; the HTTP-date form is not
/// used by the services of the suite.
pub fn retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
        .map(Duration::from_secs_f64)
}

/// What is being called, for messages and errorMetadata.
#[derive(Clone, Debug, Default)]
pub struct Call {
    /// The service as users know it: "KMS", "Key Vault", "Cloud KMS", "Vault".
    pub service: &'static str,
    /// The operation: "Sign", "get certificate", or what is being done ("signing with key 'k'
    /// (POST transit/sign/k)").
    pub operation: String,
    /// What it is called on: "key 'alias/x'", "certificate 'c' in vault v"; empty when the
    /// operation names it already.
    pub target: String,
    /// Where: the endpoint URL or host as users configure it (no secret in it).
    pub endpoint: String,
    /// The permission or IAM action the call needs ("kms:Sign"), named in ACCESS_DENIED.
    pub permission: Option<String>,
    /// The errorMetadata key of the service's own error code ("awsErrorCode").
    pub code_key: &'static str,
}

impl Call {
    /// "operation on target", or the operation alone.
    fn what(&self) -> String {
        if self.target.is_empty() {
            self.operation.clone()
        } else {
            format!("{} on {}", self.operation, self.target)
        }
    }
}

/// The one mapping of a failed remote call to the contract: code, retry classification and
/// wording (ACCESS_DENIED naming the permission, VALIDATION_ERROR naming the target, THROTTLED
/// with Retry-After, ERROR retried for 5xx and connection failures, TLS trust naming
/// SSL_CERT_FILE), with the status, the service's code and the request id in errorMetadata.
/// `hint` is the backend's service-specific advice ("the key policy must allow kms:Sign"),
/// appended after a `; ` (empty for none).
pub fn map_failure(call: &Call, failure: &RemoteFailure, hint: &str) -> PluginError {
    let service = call.service;
    let endpoint = &call.endpoint;
    let at = format!("{service} at {endpoint}");
    let what = call.what();
    let said = failure.said();
    let rid = failure
        .request_id
        .as_deref()
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default();
    let tail = if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    };
    let detail = &failure.message;
    let otherwise = |default: &str| {
        if hint.is_empty() {
            format!("; {default}")
        } else {
            tail.clone()
        }
    };
    let e = match (failure.transport, failure.class()) {
        (Some(Transport::Refused), _) => PluginError::generic(format!(
            "cannot reach {at} for {what} (connection refused: {detail}){}",
            otherwise("is the server running, and is the endpoint right?")
        )),
        (Some(Transport::Dns), _) => PluginError::generic(format!(
            "cannot reach {at} for {what} (the host name does not resolve: {detail}){}",
            otherwise("check the endpoint, DNS and proxy settings")
        )),
        (Some(Transport::Tls), _) => PluginError::generic(format!(
            "cannot reach {service} for {what}: the TLS certificate of {endpoint} is not trusted \
             ({detail}); behind a TLS-inspecting proxy, add its CA certificate to the bundle \
             named by SSL_CERT_FILE{tail}"
        )),
        (Some(Transport::ClientCertificateRequired), _) => PluginError::generic(format!(
            "{at} requires a TLS client certificate ({what}){tail}"
        )),
        (Some(Transport::Timeout), _) => PluginError::generic(format!(
            "{at} did not answer {what} in time ({detail}){tail}"
        )),
        (Some(Transport::Reset), _) => PluginError::generic(format!(
            "the connection to {at} broke during {what} ({detail}){tail}"
        )),
        (Some(Transport::BodyTooLarge), _) => PluginError::generic(format!(
            "the answer of {at} to {what} is larger than {} MiB, far more than {service} \
             sends; is {endpoint} really {service}?{tail}",
            crate::bounded::MAX_RESPONSE_BYTES >> 20
        )),
        (Some(Transport::Unreadable), _) => PluginError::generic(format!(
            "unreadable answer from {at} to {what}: {detail}{tail}"
        )),
        (Some(Transport::Request), _) => PluginError::generic(format!(
            "the request for {what} to {at} could not be made: {detail}{tail}"
        )),
        (Some(Transport::Other), _) => PluginError::generic(format!(
            "cannot reach {at} for {what} ({detail}){}",
            otherwise("check the endpoint, proxy and network settings")
        )),
        (None, Some(Class::Unauthenticated)) => PluginError::access_denied(format!(
            "{at} rejected the credentials for {what}: {said}{rid}{tail}"
        )),
        (None, Some(Class::Denied)) => {
            let needs = call
                .permission
                .as_deref()
                .map(|p| format!("; the identity needs the {p} permission"))
                .unwrap_or_default();
            PluginError::access_denied(format!("{at} denied {what}: {said}{rid}{needs}{tail}"))
        }
        (None, Some(Class::NotFound)) if call.target.is_empty() => PluginError::validation(
            format!("{at} has nothing there for {what}: {said}{rid}{tail}"),
        ),
        (None, Some(Class::NotFound)) => PluginError::validation(format!(
            "{} not found ({service} {} at {endpoint}): {said}{rid}{tail}",
            call.target, call.operation
        )),
        (None, Some(Class::Invalid)) => {
            PluginError::validation(format!("{at} refused {what}: {said}{rid}{tail}"))
        }
        (None, Some(Class::Throttled)) => PluginError::throttled(format!(
            "{at} is throttling requests ({what}): {said}{rid}{tail}"
        )),
        (None, Some(Class::Unavailable)) if matches!(failure.status, None | Some(503)) => {
            PluginError::generic(format!("{at} is unavailable for {what}: {said}{rid}{tail}"))
        }
        (None, Some(Class::Unavailable)) => {
            PluginError::generic(format!("{at} failed {what}: {said}{rid}{tail}"))
        }
        (None, Some(Class::Timeout)) => PluginError::timeout(format!(
            "{at} ran out of time for {what}: {said}{rid}{tail}"
        )),
        (None, _) => PluginError::generic(format!("{at} answered {what} with {said}{rid}{tail}")),
    };
    let mut e = e.with_retry(failure.retry());
    if let Some(status) = failure.status {
        e = e.with_metadata("httpStatus", status.to_string());
    }
    if let Some(code) = &failure.code {
        let key = if call.code_key.is_empty() {
            "serviceErrorCode"
        } else {
            call.code_key
        };
        e = e.with_metadata(key, code.clone());
    }
    if let Some(id) = &failure.request_id {
        e = e.with_metadata("requestId", id.clone());
    }
    if failure.transport.is_some() {
        e = e.with_metadata("endpoint", endpoint.clone());
    }
    e
}

#[cfg(test)]
mod mapping_tests {
    use super::*;
    use crate::ErrorCode;

    fn call() -> Call {
        Call {
            service: "KMS",
            operation: "Sign".into(),
            target: "key 'alias/release'".into(),
            endpoint: "https://kms.example".into(),
            permission: Some("kms:Sign".into()),
            code_key: "awsErrorCode",
        }
    }

    fn answered(status: u16) -> PluginError {
        let f = RemoteFailure::answered(status, Some("SomeCode".into()), "the service says so")
            .with_request_id(Some("r-1".into()));
        map_failure(&call(), &f, "")
    }

    fn has(e: &PluginError, words: &[&str]) {
        for w in words {
            assert!(e.message.contains(w), "no '{w}' in: {}", e.message);
        }
    }

    #[test]
    fn each_status_class_has_its_code_retry_and_words() {
        let e = answered(401);
        assert_eq!((e.code, e.retry), (ErrorCode::AccessDenied, Retry::Never));
        has(&e, &["rejected the credentials", "Sign", "SomeCode"]);

        let e = answered(403);
        assert_eq!((e.code, e.retry), (ErrorCode::AccessDenied, Retry::Never));
        has(&e, &["denied Sign on key 'alias/release'", "kms:Sign"]);

        let e = answered(404);
        assert_eq!((e.code, e.retry), (ErrorCode::Validation, Retry::Never));
        has(
            &e,
            &["key 'alias/release' not found", "https://kms.example"],
        );

        for status in [400, 405, 422] {
            let e = answered(status);
            assert_eq!((e.code, e.retry), (ErrorCode::Validation, Retry::Never));
            has(&e, &["refused Sign", "the service says so"]);
        }

        let f = RemoteFailure::answered(429, None, "slow down")
            .with_retry_after(Some(Duration::from_secs(3)));
        let e = map_failure(&call(), &f, "");
        assert_eq!(e.code, ErrorCode::Throttled);
        assert_eq!(e.retry, Retry::Throttled(Some(Duration::from_secs(3))));
        has(&e, &["is throttling requests", "HTTP 429: slow down"]);

        let e = answered(500);
        assert_eq!((e.code, e.retry), (ErrorCode::Generic, Retry::Transient));
        has(&e, &["failed Sign", "SomeCode"]);
        let e = answered(503);
        assert_eq!((e.code, e.retry), (ErrorCode::Generic, Retry::Transient));
        has(&e, &["is unavailable"]);

        let e = answered(409);
        assert_eq!((e.code, e.retry), (ErrorCode::Generic, Retry::Never));
        has(&e, &["answered Sign", "SomeCode"]);
    }

    #[test]
    fn metadata_and_hint_are_kept() {
        let e = answered(403);
        assert_eq!(e.metadata["httpStatus"], "403");
        assert_eq!(e.metadata["awsErrorCode"], "SomeCode");
        assert_eq!(e.metadata["requestId"], "r-1");
        has(&e, &["(request id r-1)"]);
        let f = RemoteFailure::answered(403, None, "no");
        let e = map_failure(&call(), &f, "kms:Sign is missing from the key policy");
        assert!(
            e.message
                .ends_with("; kms:Sign is missing from the key policy"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_service_code_outranks_the_status() {
        let f = RemoteFailure::answered(400, Some("ThrottlingException".into()), "Rate exceeded")
            .with_class(Class::Throttled);
        let e = map_failure(&call(), &f, "");
        assert_eq!(
            (e.code, e.retry),
            (ErrorCode::Throttled, Retry::Throttled(None))
        );
        let f = RemoteFailure::answered(200, None, "deadline").with_class(Class::Timeout);
        let e = map_failure(&call(), &f, "");
        assert_eq!((e.code, e.retry), (ErrorCode::Timeout, Retry::Never));
        has(&e, &["ran out of time"]);
    }

    #[test]
    fn each_transport_kind_has_its_code_retry_and_words() {
        for (kind, retry, words) in [
            (
                Transport::Refused,
                Retry::Transient,
                &["cannot reach", "connection refused", "https://kms.example"][..],
            ),
            (
                Transport::Dns,
                Retry::Transient,
                &["does not resolve", "https://kms.example"],
            ),
            (
                Transport::Tls,
                Retry::Never,
                &["not trusted", "SSL_CERT_FILE", "https://kms.example"],
            ),
            (
                Transport::ClientCertificateRequired,
                Retry::Never,
                &["client certificate"],
            ),
            (Transport::Timeout, Retry::Transient, &["in time"]),
            (Transport::Reset, Retry::Transient, &["broke"]),
            (
                Transport::BodyTooLarge,
                Retry::Never,
                &["larger than 4 MiB"],
            ),
            (Transport::Unreadable, Retry::Transient, &["unreadable"]),
            (Transport::Request, Retry::Never, &["could not be made"]),
            (Transport::Other, Retry::Transient, &["cannot reach"]),
        ] {
            let f = RemoteFailure::transport(kind, "why");
            assert_eq!((f.said(), f.class()), ("why".into(), None), "{kind:?}");
            let e = map_failure(&call(), &f, "");
            assert_eq!((e.code, e.retry), (ErrorCode::Generic, retry), "{kind:?}");
            has(&e, words);
            assert_eq!(e.metadata["endpoint"], "https://kms.example");
        }
    }

    #[test]
    fn an_answer_without_code_or_message_is_said_as_its_status() {
        // An empty code is no code: the status speaks, and errorMetadata has no code key.
        let f = RemoteFailure::answered(500, Some(String::new()), "");
        assert_eq!((f.code.as_deref(), f.said()), (None, "HTTP 500".into()));
        let e = map_failure(&call(), &f, "");
        has(&e, &["failed Sign on key 'alias/release': HTTP 500"]);
        assert!(!e.metadata.contains_key("awsErrorCode"), "{:?}", e.metadata);
        // Without a status either, the message is all there is to say.
        let f = RemoteFailure::transport(Transport::Other, "no route");
        assert_eq!(f.said(), "no route");
    }

    #[test]
    fn nothing_found_where_the_operation_names_its_target() {
        let call = Call {
            operation: "get secret 'chain'".into(),
            target: String::new(),
            code_key: "",
            ..call()
        };
        assert_eq!(call.what(), "get secret 'chain'");
        let f = RemoteFailure::answered(404, Some("SecretNotFound".into()), "gone");
        let e = map_failure(&call, &f, "");
        assert_eq!((e.code, e.retry), (ErrorCode::Validation, Retry::Never));
        has(
            &e,
            &["KMS at https://kms.example has nothing there for get secret 'chain': SecretNotFound: gone"],
        );
        // A backend without a name for its service's codes gets the generic key.
        assert_eq!(e.metadata["serviceErrorCode"], "SecretNotFound");
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(retry_after("-1"), None);
    }

    #[test]
    fn transport_errors_are_classified_by_their_text() {
        for (text, kind) in [
            (
                "tcp connect error: Connection refused (os error 111)",
                Transport::Refused,
            ),
            (
                "dns error: failed to lookup address information",
                Transport::Dns,
            ),
            ("invalid peer certificate: UnknownIssuer", Transport::Tls),
            (
                "received fatal alert: CertificateRequired",
                Transport::ClientCertificateRequired,
            ),
            ("operation timed out", Transport::Timeout),
            ("connection reset by peer", Transport::Reset),
            ("something else", Transport::Other),
        ] {
            assert_eq!(Transport::from_detail(text), kind, "{text}");
        }
    }
}

// Two attributes, not cfg(all(..)): cargo-mutants leaves a module marked cfg(test) alone.
#[cfg(test)]
#[cfg(feature = "remote")]
mod retry_tests {
    use super::*;
    use crate::{ErrorCode, PluginError, Retry};
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn transient_failures_are_retried_and_final_ones_are_not() {
        let deadline = Deadline::after(Duration::from_secs(10));
        let tries = Cell::new(0);
        let out = run(retry(&deadline, "calling", || {
            tries.set(tries.get() + 1);
            let n = tries.get();
            async move {
                if n < 3 {
                    Err(PluginError::generic("flaky").with_retry(Retry::Transient))
                } else {
                    Ok(n)
                }
            }
        }));
        assert_eq!(out.unwrap(), 3);

        tries.set(0);
        let e = run(retry(&deadline, "calling", || {
            tries.set(tries.get() + 1);
            async { Err::<(), _>(PluginError::access_denied("no")) }
        }))
        .unwrap_err();
        assert_eq!((e.code, tries.get()), (ErrorCode::AccessDenied, 1));
    }

    #[test]
    fn a_backend_that_keeps_throttling_is_tried_a_bounded_number_of_times() {
        // Retry-After 0 keeps the test quick: only the count of attempts ends the loop.
        let deadline = Deadline::after(Duration::from_secs(10));
        let tries = Cell::new(0);
        let e = run(retry(&deadline, "signing", || {
            tries.set(tries.get() + 1);
            async {
                Err::<(), _>(
                    PluginError::generic("slow down")
                        .with_retry(Retry::Throttled(Some(Duration::ZERO))),
                )
            }
        }))
        .unwrap_err();
        assert_eq!(tries.get(), crate::config::MAX_ATTEMPTS);
        assert_eq!(e.code, ErrorCode::Throttled);
        assert!(
            e.message
                .ends_with(&format!("(after {} attempts)", crate::config::MAX_ATTEMPTS)),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_host_is_looked_up_by_the_system_resolver() {
        let addrs: Vec<_> = run(look_up_host("localhost".into())).unwrap().collect();
        assert!(
            addrs.iter().any(|a| a.ip().is_loopback() && a.port() == 0),
            "{addrs:?}"
        );
        // An empty name fails in the resolver itself, without asking a DNS server.
        assert!(run(look_up_host(String::new())).is_err());
    }

    #[test]
    fn an_attempt_that_hangs_ends_at_the_deadline() {
        let deadline = Deadline::after(Duration::from_millis(300));
        let start = Instant::now();
        let e = run(retry(&deadline, "signing", || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        }))
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Timeout);
        assert!(e.message.contains("signing"), "{}", e.message);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
