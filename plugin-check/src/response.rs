//! Reading what a plugin answered the way notation does, with messages that name the problem:
//! exit code, exactly one JSON document on stdout, a JSON error on stderr.

use plugin_protocol::client::Invocation;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// How a failed invocation reads to a user: notation shows only `errorMessage`.
pub fn failure_text(inv: &Invocation) -> String {
    let code = inv
        .exit_code
        .map(|c| format!("exit code {c}"))
        .unwrap_or_else(|| "killed by a signal".into());
    match inv.error() {
        Some(e) => format!(
            "{} failed ({code}): {}: {}",
            inv.command, e.error_code, e.error_message
        ),
        None if inv.stderr.is_empty() => {
            format!("{} failed ({code}) with nothing on stderr", inv.command)
        }
        None => format!(
            "{} failed ({code}) and stderr is not a JSON error, so notation shows a JSON parse error instead: {:?}",
            inv.command,
            truncate(&inv.stderr_text())
        ),
    }
}

pub fn truncate(s: &str) -> String {
    const MAX: usize = 300;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// The one JSON document on stdout of a successful invocation.
pub fn json_document(inv: &Invocation) -> Result<Value, String> {
    if !inv.succeeded() {
        return Err(failure_text(inv));
    }
    let text = String::from_utf8_lossy(&inv.stdout);
    let mut docs = serde_json::Deserializer::from_slice(&inv.stdout).into_iter::<Value>();
    let first = match docs.next() {
        Some(Ok(v)) => v,
        Some(Err(_)) if text.trim_start().starts_with('{') => {
            return Err(format!(
                "stdout of {} is not valid JSON: {:?}",
                inv.command,
                truncate(&text)
            ))
        }
        Some(Err(_)) => {
            return Err(format!(
                "stray text on stdout: stdout of {} must be exactly one JSON document, but it starts with other text (notation cannot parse it): {:?}",
                inv.command,
                truncate(&text)
            ))
        }
        None => return Err(format!("{} exited 0 with nothing on stdout", inv.command)),
    };
    let consumed = docs.byte_offset();
    let rest = &inv.stdout[consumed..];
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(format!(
            "stray text on stdout: stdout of {} holds text after the JSON response (notation cannot parse it): {:?}",
            inv.command,
            truncate(&String::from_utf8_lossy(rest))
        ));
    }
    Ok(first)
}

/// A JSON object somewhere in the stdout of a successful invocation whose stdout also holds
/// stray text: lets the run go on (the failure is already reported) so later steps are checked.
pub fn salvage(inv: &Invocation) -> Option<Value> {
    if !inv.succeeded() {
        return None;
    }
    let start = inv.stdout.iter().position(|b| *b == b'{')?;
    serde_json::Deserializer::from_slice(&inv.stdout[start..])
        .into_iter::<Value>()
        .next()?
        .ok()
}

/// The typed response, naming a missing or ill-typed field.
pub fn typed<T: DeserializeOwned>(inv: &Invocation, value: &Value) -> Result<T, String> {
    serde_json::from_value(value.clone()).map_err(|e| {
        format!(
            "the {} response is incomplete or ill-typed: {e}",
            inv.command
        )
    })
}

/// A string field of a response object.
pub fn string_field<'a>(value: &'a Value, name: &str) -> Result<&'a str, String> {
    match value.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("field `{name}` must be a string, is {other}")),
        None => Err(format!("the response has no field `{name}`")),
    }
}
