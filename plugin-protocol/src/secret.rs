//! Secrets (PIN, token, JWT, key): from a value, an environment variable or a file, held in
//! zeroizing buffers, and redaction of secrets that ride inside key ids and URLs, so none
//! reaches a message or a log.
//!
//! # The secret-file policy (every plugin)
//!
//! Every secret file a plugin reads goes through [`read_file`]:
//! - it must be a regular file: a FIFO, socket, device or directory is refused at once (the
//!   file is opened non-blocking), never waited on;
//! - it is at most 64 KiB;
//! - a file the user provides ([`FileOwner::User`]: a PIN, token, AppRole role or secret id,
//!   management key, TLS client key) must be readable by its owner only: one that group or
//!   others may read or write is refused with the `chmod 600` to run (checked on the opened
//!   file, so it cannot change in between);
//! - the one exception is a file the platform writes, whose mode the user cannot choose
//!   ([`FileOwner::Platform`]: a Kubernetes service-account token, a CI system's OIDC token or
//!   credentials file): any mode, bounded and non-blocking all the same;
//! - trailing newlines are removed, an empty file is an error, and the bytes are zeroized when
//!   dropped.

use std::path::Path;

use zeroize::Zeroizing;

use crate::bounded::{self, MAX_SECRET_FILE_BYTES};
use crate::config::Config;
use crate::error::{PluginError, Result};
use crate::plugin_info::ConfigKey;

/// Who writes a secret file, and so which modes [`read_file`] accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOwner {
    /// The user: readable by its owner only (mode 0600 or stricter).
    User,
    /// The platform, which chooses the mode (a Kubernetes projected service-account token is
    /// 0644): any mode.
    Platform,
}

/// A secret and where it came from (for messages: never the secret itself). The bytes are
/// zeroized when dropped; `Debug` shows the source only.
pub struct Secret {
    /// The secret.
    pub bytes: Zeroizing<Vec<u8>>,
    /// Where it came from, e.g. `environment variable VAULT_TOKEN` or `PIN file /run/pin`.
    pub source: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Secret {
    /// A secret given as a value.
    pub fn from_value(value: Zeroizing<String>, source: impl Into<String>) -> Self {
        Self {
            bytes: Zeroizing::new(value.as_bytes().to_vec()),
            source: source.into(),
        }
    }

    /// The secret in the environment variable `var`, or `None` when it is unset or empty.
    pub fn from_env(var: &str) -> Option<Self> {
        let value = Zeroizing::new(std::env::var(var).ok()?);
        (!value.is_empty()).then(|| Self::from_value(value, format!("environment variable {var}")))
    }

    /// The secret setting `key` itself holds (pluginConfig or the environment, see
    /// [`Config::get_with_source`]), or `None` when it is not set.
    pub fn from_setting(config: &Config, key: &ConfigKey) -> Option<Self> {
        let (value, source) = config.get_with_source(key)?;
        Some(Self::from_value(Zeroizing::new(value), source))
    }

    /// The contents of the secret file at `path` under the policy (see [`read_file`]); `what`
    /// names it ("the PIN file"), and its source is `<what> <path>`.
    pub fn from_file(path: &Path, what: &str, owner: FileOwner) -> Result<Self> {
        let bytes = read_file(path, what, owner)?;
        Ok(Self {
            bytes,
            source: format!("{what} {}", path.display()),
        })
    }

    /// The contents of the secret file setting `key` names (`~/` expanded), or `None` when it
    /// is not set; an error is prefixed with the setting's source. The secret's source is
    /// `<what> <path> (<setting's source>)`.
    pub fn from_file_setting(
        config: &Config,
        key: &ConfigKey,
        what: &str,
        owner: FileOwner,
    ) -> Result<Option<Self>> {
        let Some((path, source)) = config.path(key) else {
            return Ok(None);
        };
        let secret =
            Self::from_file(&path, what, owner).map_err(|e| e.context(format_args!("{source}")))?;
        Ok(Some(Self {
            source: format!("{} ({source})", secret.source),
            ..secret
        }))
    }

    /// The secret as text, surrounding white space removed: a VALIDATION_ERROR naming the
    /// source when it is not UTF-8 or is only white space.
    pub fn text(&self) -> Result<Zeroizing<String>> {
        let text = std::str::from_utf8(&self.bytes)
            .map_err(|_| PluginError::validation(format!("{} is not text", self.source)))?;
        let text = Zeroizing::new(text.trim().to_owned());
        if text.is_empty() {
            return Err(PluginError::validation(format!("{} is empty", self.source)));
        }
        Ok(text)
    }
}

/// The contents of a secret file (PIN, token, JWT) under the policy of this module: a regular
/// file of at most 64 KiB, readable by its owner only unless `owner` is
/// [`FileOwner::Platform`], with trailing newlines removed. Empty is an error. `what` names it
/// in messages ("the PIN file").
pub fn read_file(path: &Path, what: &str, owner: FileOwner) -> Result<Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::PermissionsExt;
    let file = bounded::open(path, MAX_SECRET_FILE_BYTES, what)?;
    let shown = path.display();
    let mode = file.meta.permissions().mode();
    if owner == FileOwner::User && mode & 0o077 != 0 {
        return Err(PluginError::validation(format!(
            "refusing {what} {shown}: it is readable or writable by group or others (mode \
             {:04o}); run chmod 600 {shown}",
            mode & 0o7777
        )));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.read(path, MAX_SECRET_FILE_BYTES, what, &mut bytes)?;
    while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(PluginError::validation(format!("{what} {shown} is empty")));
    }
    Ok(bytes)
}

/// `url` with any password in its userinfo replaced (`http://user:pw@host` ->
/// `http://user:[redacted]@host`), for messages and logs; and a user name alone after a `/`
/// (`https://token@host`), which may itself be a token. Each `@` is taken for the end of a
/// userinfo that starts after the last `/` before it, whether or not the text is a well-formed
/// URL, so that one mistyped character (`https//user:pw@host`, `https:/user:pw@host`,
/// `https://us/er:pw@host`) does not show the password: an `@` in a path is redacted alike.
/// Text without `@` is returned as it is.
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut shown_to = 0;
    for (at, _) in url.match_indices('@') {
        let start = url[..at].rfind('/').map_or(0, |i| i + 1).max(shown_to);
        let userinfo = &url[start..at];
        out.push_str(&url[shown_to..start]);
        match userinfo.find(':') {
            Some(colon) => {
                out.push_str(&userinfo[..colon]);
                out.push_str(":[redacted]");
            }
            None if url[..start].ends_with('/') => out.push_str("[redacted]"),
            None => out.push_str(userinfo),
        }
        out.push('@');
        shown_to = at + 1;
    }
    out.push_str(&url[shown_to..]);
    out
}

/// `key_id` (`name=value` attributes separated by `;`, `&` or `?`, such as a PKCS#11 URI) with
/// the value of every attribute whose name `is_secret` accepts replaced by `[redacted]`, in any
/// part of it. Names are compared lower-cased, percent-decoded and without a scheme prefix
/// (`pkcs11:Pin%2DValue` is `pin-value`), so a mistyped attribute is redacted as well; an
/// attribute without `=` whose name `is_secret` accepts is replaced whole. An attribute glued
/// onto another's value where a separator is missing (`slot=9cpin=1234`, a key id pasted twice)
/// counts too: each `=` in a value ends a name that starts after the `=` before it.
pub fn redact_attributes(key_id: &str, is_secret: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(key_id.len());
    let mut rest = key_id;
    loop {
        let end = rest.find([';', '&', '?']).unwrap_or(rest.len());
        let (part, tail) = rest.split_at(end);
        let mut name_start = 0;
        let secret_from = part.match_indices('=').find_map(|(eq, _)| {
            let name = &part[name_start..eq];
            name_start = eq + 1;
            is_secret(&attribute_name(name)).then_some(eq + 1)
        });
        match secret_from {
            Some(value) => {
                out.push_str(&part[..value]);
                out.push_str("[redacted]");
            }
            None if !part.is_empty() && !part.contains('=') && is_secret(&attribute_name(part)) => {
                out.push_str("[redacted]")
            }
            None => out.push_str(part),
        }
        let mut chars = tail.chars();
        match chars.next() {
            Some(sep) => {
                out.push(sep);
                rest = chars.as_str();
            }
            None => return out,
        }
    }
}

/// An attribute name as [`redact_attributes`] compares it.
fn attribute_name(raw: &str) -> String {
    let raw = raw.rsplit(':').next().unwrap_or(raw);
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_attributes_are_redacted_in_any_part_and_any_case() {
        let pin = |n: &str| n.starts_with("pin") && !n.starts_with("pin-source");
        for (id, want) in [
            (
                "pkcs11:token=t;object=k?pin-value=1234&module-path=/m.so",
                "pkcs11:token=t;object=k?pin-value=[redacted]&module-path=/m.so",
            ),
            (
                "pkcs11:token=t;pin-value=1234;object=k",
                "pkcs11:token=t;pin-value=[redacted];object=k",
            ),
            ("pkcs11:pin-value=1234", "pkcs11:pin-value=[redacted]"),
            (
                "pkcs11:token=t?Pin-Value=1234",
                "pkcs11:token=t?Pin-Value=[redacted]",
            ),
            (
                "pkcs11:token=t?PIN%2DVALUE=1234",
                "pkcs11:token=t?PIN%2DVALUE=[redacted]",
            ),
            ("pkcs11:token=t?pin-value1234", "pkcs11:token=t?[redacted]"),
            (
                "pkcs11:token=t?pin-source=file:/p",
                "pkcs11:token=t?pin-source=file:/p",
            ),
            // Glued onto the value before it, where a separator is missing: each '=' ends a
            // name that starts after the '=' before it.
            (
                "yubikey:slot=9cyubikey:pin=1234;slot=9c",
                "yubikey:slot=9cyubikey:pin=[redacted];slot=9c",
            ),
            ("pkcs11:object=a=pin=1234", "pkcs11:object=a=pin=[redacted]"),
            // A name's text inside a value, without '=' after it, is the value's own.
            ("pkcs11:object=pin", "pkcs11:object=pin"),
        ] {
            let got = redact_attributes(id, pin);
            assert_eq!(got, want);
            assert!(!got.contains("1234"));
        }
        // Names are percent-decoded before they are compared, wherever the escape is.
        let exact = |n: &str| n == "pin-value";
        for (id, want) in [
            (
                "pkcs11:token=t?pin%2Dvalue=1234",
                "pkcs11:token=t?pin%2Dvalue=[redacted]",
            ),
            (
                "pkcs11:token=t?%70in-value=1234",
                "pkcs11:token=t?%70in-value=[redacted]",
            ),
            (
                "pkcs11:token=t?pin-valu%65=1234",
                "pkcs11:token=t?pin-valu%65=[redacted]",
            ),
            (
                "pkcs11:token=t?pin-values=1234",
                "pkcs11:token=t?pin-values=1234",
            ),
        ] {
            assert_eq!(redact_attributes(id, exact), want);
        }
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            redact_url("http://user:pw@127.0.0.1:8200/v1"),
            "http://user:[redacted]@127.0.0.1:8200/v1"
        );
        assert_eq!(
            redact_url("https://tok@vault.example"),
            "https://[redacted]@vault.example"
        );
        assert_eq!(redact_url("http://127.0.0.1:8200"), "http://127.0.0.1:8200");
        assert_eq!(redact_url("http://h/p@q"), "http://h/[redacted]@q");
        assert_eq!(redact_url("not a url"), "not a url");
        // One character mistyped or missing.
        for (url, want) in [
            ("https//user:pw@h/v1", "https//user:[redacted]@h/v1"),
            ("https:/user:pw@h", "https:/user:[redacted]@h"),
            ("https://us/er:pw@h", "https://us/er:[redacted]@h"),
            ("https://userpw@h", "https://[redacted]@h"),
            ("https:user:pw@h", "https:[redacted]@h"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
        // Every @ ends a userinfo; an @ with nothing before it but a name is a name.
        assert_eq!(
            redact_url("a://u:p@h/x@y:1@z"),
            "a://u:[redacted]@h/[redacted]@y:[redacted]@z"
        );
        assert_eq!(redact_url("release@prod:3"), "release@prod:3");
    }

    #[test]
    fn secret_files_must_be_private_and_not_empty() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pin");
        std::fs::write(&f, "1234\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_file(&f, "the PIN file", FileOwner::User).unwrap_err();
        assert!(e.message.contains("mode 0644") && e.message.contains("chmod 600"));
        assert_eq!(
            &read_file(&f, "the PIN file", FileOwner::Platform).unwrap()[..],
            b"1234"
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            &read_file(&f, "the PIN file", FileOwner::User).unwrap()[..],
            b"1234"
        );
        std::fs::write(&f, "\n").unwrap();
        assert!(read_file(&f, "the PIN file", FileOwner::Platform)
            .unwrap_err()
            .message
            .contains("empty"));
    }

    #[test]
    fn a_fifo_or_device_is_refused_at_once_whoever_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        crate::client::make_fifo(&fifo);
        for owner in [FileOwner::User, FileOwner::Platform] {
            let path = fifo.clone();
            let e = crate::bounded::within_ten_seconds(move || {
                read_file(&path, "the token file", owner)
            })
            .unwrap_err();
            assert!(e.message.contains("is a FIFO"), "{}", e.message);
            let e = read_file(Path::new("/dev/zero"), "the token file", owner).unwrap_err();
            assert!(e.message.contains("is a device"), "{}", e.message);
        }
    }

    /// A plugin with a secret setting and a secret file setting, for the tests below.
    static SECRETS: crate::PluginInfo = crate::PluginInfo {
        name: "secret-tests",
        description: "test",
        version: "0",
        url: "https://example.invalid",
        config_keys: &[TOKEN, TOKEN_FILE],
        chain_sources_help: "none",
    };
    const TOKEN: ConfigKey = ConfigKey::new("token", &[], "a token");
    const TOKEN_FILE: ConfigKey = ConfigKey::new("token_file", &[], "a token file");

    fn config(pairs: &[(&str, &str)]) -> Config {
        let pairs = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::new(&SECRETS, Some(pairs.collect())).unwrap()
    }

    #[test]
    fn a_secret_setting_or_file_setting_is_read_with_where_it_came_from() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s.fr0m-file\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = config(&[("token", "s.v4lue"), ("token_file", file.to_str().unwrap())]);

        let value = Secret::from_setting(&config, &TOKEN).expect("token is set");
        assert_eq!(&value.bytes[..], b"s.v4lue");
        assert_eq!(value.source, "pluginConfig 'token'");
        assert_eq!(
            format!("{value:?}"),
            "Secret { source: \"pluginConfig 'token'\", .. }"
        );

        let from_file =
            Secret::from_file_setting(&config, &TOKEN_FILE, "the token file", FileOwner::User)
                .unwrap()
                .expect("token_file is set");
        assert_eq!(&from_file.bytes[..], b"s.fr0m-file");
        assert_eq!(
            from_file.source,
            format!(
                "the token file {} (pluginConfig 'token_file')",
                file.display()
            )
        );

        let unset = self::config(&[]);
        assert!(Secret::from_setting(&unset, &TOKEN).is_none());
        assert!(
            Secret::from_file_setting(&unset, &TOKEN_FILE, "the token file", FileOwner::User)
                .unwrap()
                .is_none()
        );
        // A refused file names the setting that named it.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Secret::from_file_setting(&config, &TOKEN_FILE, "the token file", FileOwner::User)
            .unwrap_err();
        assert!(
            e.message.contains("pluginConfig 'token_file'") && e.message.contains("mode 0644"),
            "{}",
            e.message
        );
    }

    #[test]
    fn secret_text_is_trimmed_and_never_shown() {
        let s = Secret::from_value(Zeroizing::new(" s.tok3n \n".into()), "pluginConfig 'token'");
        assert_eq!(s.text().unwrap().as_str(), "s.tok3n");
        assert!(!format!("{s:?}").contains("tok3n"));
        let blank = Secret::from_value(Zeroizing::new(" \t".into()), "environment variable T");
        assert_eq!(
            blank.text().unwrap_err().message,
            "environment variable T is empty"
        );
        let binary = Secret {
            bytes: Zeroizing::new(vec![0xff, 0xfe]),
            source: "the token file /t".into(),
        };
        assert_eq!(
            binary.text().unwrap_err().message,
            "the token file /t is not text"
        );
    }
}
