//! Where the user PIN comes from, in order: the URI's `pin-value` (discouraged), the URI's
//! `pin-source`, pluginConfig/env `pin_file`, pluginConfig/env `pin`. The PIN lives only in
//! zeroizing buffers and is never part of any message.

use std::path::Path;

use plugin_protocol::{Config, PluginError, Result};
use zeroize::Zeroizing;

use crate::plugin::{PIN, PIN_FILE};
use crate::uri::Pkcs11Uri;

/// A PIN and a description of where it came from (for messages: never the PIN itself).
pub struct Pin {
    pub bytes: Zeroizing<Vec<u8>>,
    pub source: String,
}

/// The PIN for `uri`, or `None` when no source is configured.
pub fn find(uri: &Pkcs11Uri, config: &Config) -> Result<Option<Pin>> {
    if let Some(value) = &uri.pin_value {
        return Ok(Some(Pin {
            bytes: Zeroizing::new(value.0.as_bytes().to_vec()),
            source: "the key URI's pin-value".into(),
        }));
    }
    if let Some(source) = &uri.pin_source {
        return from_source(source).map(Some);
    }
    if let Some((path, from)) = config.get_with_source(&PIN_FILE) {
        let path = plugin_protocol::config::expand_home(&path);
        return read_file(&path, &from).map(Some);
    }
    if let Some((_, from)) = config.get_with_source(&PIN) {
        let value = config.get_secret(&PIN).unwrap_or_default();
        return Ok(Some(Pin {
            bytes: Zeroizing::new(value.as_bytes().to_vec()),
            source: from,
        }));
    }
    Ok(None)
}

/// `pin-source`: `file:/path`, `file:///path`, a plain absolute path, or `env:NAME`.
fn from_source(source: &str) -> Result<Pin> {
    if let Some(var) = source.strip_prefix("env:") {
        let value = Zeroizing::new(std::env::var(var).map_err(|_| {
            PluginError::validation(format!(
                "the key URI's pin-source names the environment variable {var}, which is not set"
            ))
        })?);
        return Ok(Pin {
            bytes: Zeroizing::new(value.as_bytes().to_vec()),
            source: format!("environment variable {var} (pin-source)"),
        });
    }
    let path = source
        .strip_prefix("file://")
        .or_else(|| source.strip_prefix("file:"))
        .unwrap_or(source);
    if !path.starts_with('/') {
        return Err(PluginError::validation(format!(
            "pin-source '{source}' is not supported: use file:/absolute/path (a file holding the \
             PIN, mode 0600) or env:VARIABLE"
        )));
    }
    read_file(Path::new(path), "the key URI's pin-source")
}

fn read_file(path: &Path, from: &str) -> Result<Pin> {
    let bytes = plugin_protocol::secret::read_file(path, "the PIN file")
        .map_err(|e| e.context(format_args!("{from}")))?;
    Ok(Pin {
        bytes,
        source: format!("PIN file {}", path.display()),
    })
}
