//! The one error type of the suite. Its `message` is exactly what a user reads: notation shows
//! only `errorMessage`, so every message says what went wrong and what to do about it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The error codes of contract 1.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// `VALIDATION_ERROR`: bad or missing input, unknown key, unsupported key type.
    #[serde(rename = "VALIDATION_ERROR")]
    Validation,
    /// `UNSUPPORTED_CONTRACT_VERSION`: a request of another contract major version.
    #[serde(rename = "UNSUPPORTED_CONTRACT_VERSION")]
    UnsupportedContractVersion,
    /// `ACCESS_DENIED`: authentication or authorisation failed (a wrong PIN, a missing grant).
    #[serde(rename = "ACCESS_DENIED")]
    AccessDenied,
    /// `TIMEOUT`: the invocation's deadline passed.
    #[serde(rename = "TIMEOUT")]
    Timeout,
    /// `THROTTLED`: the backend kept rate-limiting after the retries.
    #[serde(rename = "THROTTLED")]
    Throttled,
    /// `ERROR`: anything else.
    #[serde(rename = "ERROR")]
    Generic,
}

impl ErrorCode {
    /// The name on the wire, e.g. `ACCESS_DENIED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validation => "VALIDATION_ERROR",
            Self::UnsupportedContractVersion => "UNSUPPORTED_CONTRACT_VERSION",
            Self::AccessDenied => "ACCESS_DENIED",
            Self::Timeout => "TIMEOUT",
            Self::Throttled => "THROTTLED",
            Self::Generic => "ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a failed backend call may succeed if made again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Retry {
    /// Do not retry (the default: a wrong PIN retried locks a token).
    #[default]
    Never,
    /// A transient failure (5xx, connection reset): retry, then report as is.
    Transient,
    /// The backend asked us to slow down; retry, then report THROTTLED. The optional delay is
    /// what the backend asked for (Retry-After).
    Throttled(Option<std::time::Duration>),
}

/// An error as the contract carries it: code, message, metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    /// `errorCode`.
    pub code: ErrorCode,
    /// `errorMessage`: the only text notation shows, so it says what is wrong and what to do.
    pub message: String,
    /// `errorMetadata`, omitted when empty: request ids, backend error codes, key states.
    pub metadata: BTreeMap<String, String>,
    /// Not serialised: whether the retry helper may try the failed call again.
    pub retry: Retry,
}

/// A result whose error is a [`PluginError`], as every fallible call of the suite returns.
pub type Result<T, E = PluginError> = std::result::Result<T, E>;

impl PluginError {
    /// An error with `code` and `message`, no metadata, never retried.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            metadata: BTreeMap::new(),
            retry: Retry::Never,
        }
    }
    /// VALIDATION_ERROR: bad or missing input, unknown key, unsupported key type.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Validation, message)
    }
    /// ACCESS_DENIED: authentication or authorisation failed.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AccessDenied, message)
    }
    /// TIMEOUT: the invocation's deadline passed.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Timeout, message)
    }
    /// THROTTLED: the backend rate-limited us beyond what retries could absorb.
    pub fn throttled(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Throttled, message).with_retry(Retry::Throttled(None))
    }
    /// ERROR: anything else.
    pub fn generic(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Generic, message)
    }
    /// UNSUPPORTED_CONTRACT_VERSION: the request's contract major version is not 1.
    pub fn unsupported_contract_version(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedContractVersion, message)
    }
    /// Adds a key/value to `errorMetadata` (request ids, backend error codes, key states).
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
    /// Marks the error as worth retrying (or not) for [`crate::retry`] and `remote::retry`
    /// (feature `remote`); the default is [`Retry::Never`].
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }
    /// Prefixes the message with context, keeping code and metadata.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
    /// The JSON object notation reads from stderr.
    pub fn to_json(&self) -> String {
        let wire = ErrorResponse {
            error_code: self.code,
            error_message: self.message.clone(),
            error_metadata: if self.metadata.is_empty() {
                None
            } else {
                Some(self.metadata.clone())
            },
        };
        serde_json::to_string(&wire).unwrap_or_else(|_| {
            // Serialising a struct of strings cannot fail; keep a valid JSON fallback anyway.
            r#"{"errorCode":"ERROR","errorMessage":"internal error while reporting an error"}"#
                .to_owned()
        })
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for PluginError {}

/// The error object on the wire (stderr, exit code 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorResponse {
    /// What kind of failure; notation does not show it.
    pub error_code: ErrorCode,
    /// What notation shows the user.
    pub error_message: String,
    /// Extra facts for logs and tools; absent when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_metadata: Option<BTreeMap<String, String>>,
}

/// An error and its sources as one line, for messages: each source's text is appended unless the
/// text so far already contains it (SDK errors often repeat their cause in their own message).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_contract_field_names_and_omits_empty_metadata() {
        let e = PluginError::validation("key 'x' not found");
        assert_eq!(
            e.to_json(),
            r#"{"errorCode":"VALIDATION_ERROR","errorMessage":"key 'x' not found"}"#
        );
        let e = PluginError::access_denied("no").with_metadata("requestId", "r-1");
        let back: ErrorResponse = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(back.error_code, ErrorCode::AccessDenied);
        assert_eq!(back.error_metadata.unwrap()["requestId"], "r-1");
    }

    #[test]
    fn error_chain_joins_sources_once() {
        let inner = std::io::Error::other("connection refused");
        let outer = std::io::Error::other(OuterError(inner));
        assert_eq!(error_chain(&outer), "cannot connect: connection refused");
    }

    #[test]
    fn error_chain_leaves_out_a_source_the_text_already_holds_and_an_empty_one() {
        let chain = Layer(
            "cannot sign: dispatch failure: connection refused",
            Some(Box::new(Layer(
                "dispatch failure",
                Some(Box::new(Layer(
                    "",
                    Some(Box::new(Layer("connection refused (os error 111)", None))),
                ))),
            ))),
        );
        assert_eq!(
            error_chain(&chain),
            "cannot sign: dispatch failure: connection refused: connection refused (os error 111)"
        );
    }

    #[test]
    fn codes_show_as_on_the_wire() {
        for code in [
            ErrorCode::Validation,
            ErrorCode::UnsupportedContractVersion,
            ErrorCode::AccessDenied,
            ErrorCode::Timeout,
            ErrorCode::Throttled,
            ErrorCode::Generic,
        ] {
            // The debug log names a failure's code by its Display.
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{code}\""),
                "{code:?}"
            );
        }
        assert_eq!(
            PluginError::timeout("gave up").to_string(),
            "TIMEOUT: gave up"
        );
    }

    /// An error with a text and an optional source.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);
    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[derive(Debug)]
    struct OuterError(std::io::Error);
    impl fmt::Display for OuterError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cannot connect")
        }
    }
    impl std::error::Error for OuterError {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
}
