//! Where the user PIN comes from, in order: the URI's `pin-value` (discouraged), the URI's
//! `pin-source`, pluginConfig/env `pin_file`, pluginConfig/env `pin`. The PIN lives only in
//! zeroizing buffers and is never part of any message.

use std::path::Path;

use plugin_protocol::secret::{FileOwner, Secret};
use plugin_protocol::{Config, PluginError, Result};
use zeroize::Zeroizing;

use crate::plugin::{PIN, PIN_FILE};
use crate::uri::Pkcs11Uri;

/// A PIN and a description of where it came from (for messages: never the PIN itself).
pub type Pin = Secret;

/// What a PIN file is called in messages.
const PIN_FILE_WHAT: &str = "the PIN file";

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
    if let Some(pin) = Secret::from_file_setting(config, &PIN_FILE, PIN_FILE_WHAT, FileOwner::User)?
    {
        return Ok(Some(pin));
    }
    Ok(Secret::from_setting(config, &PIN))
}

/// `pin-source`: `file:/path`, `file:///path`, a plain absolute path, or `env:NAME`.
fn from_source(source: &str) -> Result<Pin> {
    if let Some(var) = source.strip_prefix("env:") {
        let pin = Secret::from_env(var).ok_or_else(|| {
            PluginError::validation(format!(
                "the key URI's pin-source names the environment variable {var}, which is not set"
            ))
        })?;
        return Ok(Pin {
            source: format!("{} (pin-source)", pin.source),
            ..pin
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
    let pin = Secret::from_file(Path::new(path), PIN_FILE_WHAT, FileOwner::User)
        .map_err(|e| e.context("the key URI's pin-source"))?;
    Ok(Pin {
        source: format!("{} (pin-source)", pin.source),
        ..pin
    })
}
