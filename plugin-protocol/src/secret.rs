//! Secrets: files that hold them (read bounded, refused when group or others may read them) and
//! redaction of secrets that ride inside key ids and URLs, so none reaches a message or a log.

use std::path::Path;

use zeroize::Zeroizing;

use crate::bounded::{self, MAX_SECRET_FILE_BYTES};
use crate::error::{PluginError, Result};

/// The contents of a secret file (PIN, token, JWT): a regular file of at most
/// 64 KiB, readable by its owner only (checked on the opened file, so it
/// cannot change in between), with trailing newlines removed. Empty is an error. `what` names
/// it in messages ("the PIN file").
pub fn read_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    read(path, what, true)
}

/// Like [`read_file`] for a secret file the platform writes and whose mode the user cannot
/// choose (a Kubernetes service-account token, a CI system's OIDC token file): bounded and
/// non-blocking, any mode.
pub fn read_platform_file(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    read(path, what, false)
}

fn read(path: &Path, what: &str, owner_only: bool) -> Result<Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::PermissionsExt;
    let file = bounded::open(path, MAX_SECRET_FILE_BYTES, what)?;
    let shown = path.display();
    let mode = file.meta.permissions().mode();
    if owner_only && mode & 0o077 != 0 {
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
/// `http://user:[redacted]@host`), for messages and logs. Anything that is not such a URL is
/// returned as it is.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    // A user name alone may itself be a token (`https://s.abc@vault`): only a user name
    // followed by a password is shown.
    let shown = match userinfo.find(':') {
        Some(colon) => format!("{}:[redacted]", &userinfo[..colon]),
        None => "[redacted]".to_owned(),
    };
    format!("{}{shown}@{}", &url[..scheme_end + 3], &rest[at + 1..])
}

/// `key_id` (`name=value` attributes separated by `;`, `&` or `?`, such as a PKCS#11 URI) with
/// the value of every attribute whose name `is_secret` accepts replaced by `[redacted]`, in any
/// part of it. Names are compared lower-cased, percent-decoded and without a scheme prefix
/// (`pkcs11:Pin%2DValue` is `pin-value`), so a mistyped attribute is redacted as well; an
/// attribute without `=` whose name `is_secret` accepts is replaced whole.
pub fn redact_attributes(key_id: &str, is_secret: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(key_id.len());
    let mut rest = key_id;
    loop {
        let end = rest.find([';', '&', '?']).unwrap_or(rest.len());
        let (part, tail) = rest.split_at(end);
        match part.split_once('=') {
            Some((name, _)) if is_secret(&attribute_name(name)) => {
                out.push_str(name);
                out.push_str("=[redacted]");
            }
            None if !part.is_empty() && is_secret(&attribute_name(part)) => {
                out.push_str("[redacted]")
            }
            _ => out.push_str(part),
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
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                decoded.push(b);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded)
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
        ] {
            let got = redact_attributes(id, pin);
            assert_eq!(got, want);
            assert!(!got.contains("1234"));
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
        assert_eq!(redact_url("http://h/p@q"), "http://h/p@q");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn secret_files_must_be_private_and_not_empty() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pin");
        std::fs::write(&f, "1234\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_file(&f, "the PIN file").unwrap_err();
        assert!(e.message.contains("mode 0644") && e.message.contains("chmod 600"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(&read_file(&f, "the PIN file").unwrap()[..], b"1234");
        std::fs::write(&f, "\n").unwrap();
        assert!(read_file(&f, "the PIN file")
            .unwrap_err()
            .message
            .contains("empty"));
    }
}
