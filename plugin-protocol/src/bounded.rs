//! Reads with a size bound that never block: every file a plugin reads (a certificate chain, a
//! CA bundle, a PIN or token file) and every backend answer it buffers goes through here, so a
//! FIFO, `/dev/zero` or a 100 MB body is refused instead of hanging or filling memory.

use std::io::Read;
use std::path::Path;

use crate::error::{PluginError, Result};

/// Largest certificate file (chain, CA bundle) read: real chains are a few KiB.
pub(crate) const MAX_CERTIFICATE_FILE_BYTES: u64 = 1 << 20;
/// Largest secret file (PIN, token, JWT) read.
pub(crate) const MAX_SECRET_FILE_BYTES: u64 = 64 << 10;
/// Largest backend response body buffered (a Vault or Key Vault answer is a few KiB).
pub const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// An open regular file, checked before any byte is read.
pub(crate) struct CheckedFile {
    pub(crate) file: std::fs::File,
    pub(crate) meta: std::fs::Metadata,
}

/// Opens `path` without blocking (O_NONBLOCK: a FIFO with no writer opens at once) and insists
/// on a regular file of at most `limit` bytes. `what` names the file for messages ("the PIN
/// file", "certificate file").
pub(crate) fn open(path: &Path, limit: u64, what: &str) -> Result<CheckedFile> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(|e| PluginError::validation(format!("cannot read {what} {shown}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| PluginError::validation(format!("cannot read {what} {shown}: {e}")))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let is = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(PluginError::validation(format!(
            "{what} {shown} is {is}, not a regular file; give the path of a file"
        )));
    }
    if meta.len() > limit {
        return Err(too_large(what, path, limit));
    }
    Ok(CheckedFile { file, meta })
}

/// What a path is, for reading it without blocking (links followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// Nothing there (or not readable).
    Missing,
    /// `/dev/null`: ends at once; as a trust store, "no roots".
    Null,
    Regular,
    Directory,
    /// A FIFO, socket or device (named), which a reader without a bound would hang on.
    Blocking(&'static str),
}

/// What `path` is (see [`FileKind`]).
pub(crate) fn file_kind(path: &Path) -> FileKind {
    match std::fs::metadata(path) {
        Ok(meta) => kind_of(&meta),
        Err(_) => FileKind::Missing,
    }
}

/// What a file of `meta` (links followed) is (see [`FileKind`]).
pub(crate) fn kind_of(meta: &std::fs::Metadata) -> FileKind {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let kind = meta.file_type();
    if kind.is_file() {
        FileKind::Regular
    } else if kind.is_dir() {
        FileKind::Directory
    } else if kind.is_char_device()
        && std::fs::metadata("/dev/null").is_ok_and(|n| n.rdev() == meta.rdev())
    {
        FileKind::Null
    } else if kind.is_fifo() {
        FileKind::Blocking("a FIFO")
    } else if kind.is_socket() {
        FileKind::Blocking("a socket")
    } else {
        FileKind::Blocking("a device")
    }
}

/// The refusal of a trust store that `var` names and that is `is` (a FIFO, a device...).
pub(crate) fn refuse_trust_store(var: &str, path: &Path, is: &str) -> PluginError {
    PluginError::validation(format!(
        "{var} names {}, which is {is}: the TLS trust store must be regular PEM files; point \
         {var} at a CA bundle file (or unset it)",
        path.display()
    ))
}

/// Checks the trust store the TLS stacks read from the environment (OpenSSL's `SSL_CERT_FILE`
/// and `SSL_CERT_DIR`, which rustls-native-certs honours) before an HTTPS client reads it: those
/// libraries read it without a bound, so a FIFO or device there would hang the plugin past its
/// deadline. Call it before building an HTTPS client whose trust store a library reads itself
/// (the plugins that build their own read it with `tls`, which checks the same); what it
/// refuses is named.
pub fn check_trust_store_env() -> Result<()> {
    if let Some(file) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        let path = Path::new(&file);
        // A missing file is the TLS stack's to report; only what would block is refused here.
        match file_kind(path) {
            FileKind::Blocking(is) => return Err(refuse_trust_store("SSL_CERT_FILE", path, is)),
            FileKind::Directory => {
                return Err(refuse_trust_store("SSL_CERT_FILE", path, "a directory"))
            }
            _ => {}
        }
    }
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty()) {
        for dir in std::env::split_paths(&dirs) {
            if let FileKind::Blocking(is) = file_kind(&dir) {
                return Err(refuse_trust_store("SSL_CERT_DIR", &dir, is));
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten().take(10_000) {
                let path = entry.path();
                if let FileKind::Blocking(is) = file_kind(&path) {
                    return Err(refuse_trust_store("SSL_CERT_DIR", &path, is));
                }
            }
        }
    }
    Ok(())
}

impl CheckedFile {
    /// Reads the whole file, refusing it if it grew past `limit` meanwhile.
    pub(crate) fn read(
        self,
        path: &Path,
        limit: u64,
        what: &str,
        into: &mut Vec<u8>,
    ) -> Result<()> {
        // One read for a file that does not grow meanwhile (read_to_end starts small otherwise).
        into.reserve(self.meta.len().min(limit) as usize + 1);
        self.file.take(limit + 1).read_to_end(into).map_err(|e| {
            PluginError::validation(format!("cannot read {what} {}: {e}", path.display()))
        })?;
        if into.len() as u64 > limit {
            return Err(too_large(what, path, limit));
        }
        Ok(())
    }
}

fn too_large(what: &str, path: &Path, limit: u64) -> PluginError {
    PluginError::validation(format!(
        "{what} {} is larger than {} KiB; is it the right file?",
        path.display(),
        limit >> 10
    ))
}

/// The bytes of a regular file of at most `limit` bytes, opened without blocking: a FIFO, a
/// socket, a device or a directory is refused at once (VALIDATION_ERROR), and a file larger
/// than `limit` is refused without being read whole. `what` names it in messages ("the CA
/// file", "--csr").
pub fn read_file(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let file = open(path, limit, what)?;
    let mut bytes = Vec::new();
    file.read(path, limit, what, &mut bytes)?;
    Ok(bytes)
}

/// Collects a response body chunk by chunk, refusing it once it passes
/// [`MAX_RESPONSE_BYTES`]: used by the HTTP backends, whatever client they use.
#[derive(Default)]
pub struct BodyLimit {
    /// The body so far, never more than [`MAX_RESPONSE_BYTES`].
    pub bytes: Vec<u8>,
}

impl BodyLimit {
    /// Appends `chunk`; `Err` with the limit once the body is too large.
    pub fn push(&mut self, chunk: &[u8]) -> std::result::Result<(), usize> {
        if self.bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(MAX_RESPONSE_BYTES);
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }
}

/// `text` cut to at most `max` characters for a message (a 1 MB key name is not repeated).
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}... ({} characters)", text.chars().count())
}

/// `f`'s answer, or a test failure if it takes 10 s: for tests of reads that must not block,
/// which would otherwise hang the test binary instead of failing it. A backend call's own
/// worker-and-deadline mechanism runs it.
#[cfg(test)]
pub(crate) fn within_ten_seconds<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let deadline = crate::Deadline::after(std::time::Duration::from_secs(10));
    crate::blocking::run_with_deadline(&deadline, "a read that must not block", move || Ok(f()))
        .expect("blocked for 10 s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_directories_and_huge_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        crate::client::make_fifo(&fifo);
        // Opened without blocking: a FIFO with no writer would hold a blocking open forever.
        let path = fifo.clone();
        let e = within_ten_seconds(move || read_file(&path, 100, "the chain file")).unwrap_err();
        assert!(e.message.contains("is a FIFO"), "{}", e.message);
        let e = read_file(Path::new("/dev/zero"), 100, "the chain file").unwrap_err();
        assert!(e.message.contains("is a device"), "{}", e.message);
        let e = read_file(dir.path(), 100, "the chain file").unwrap_err();
        assert!(e.message.contains("is a directory"), "{}", e.message);
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 4096]).unwrap();
        let e = read_file(&big, 1024, "the chain file").unwrap_err();
        assert!(e.message.contains("larger than 1 KiB"), "{}", e.message);
        assert_eq!(read_file(&big, 4096, "f").unwrap().len(), 4096);
    }

    #[test]
    fn a_file_longer_than_its_size_said_is_refused_at_the_bound() {
        // The check of the size before reading is not the bound: /proc files say 0 bytes, and
        // a file may grow between the check and the read. The read itself stops one byte past
        // the limit and refuses the file, rather than returning its first `limit` bytes.
        let maps = Path::new("/proc/self/maps");
        assert_eq!(std::fs::metadata(maps).unwrap().len(), 0);
        let e = read_file(maps, 1024, "the chain file").unwrap_err();
        assert!(
            e.message.contains("/proc/self/maps is larger than 1 KiB"),
            "{}",
            e.message
        );
        assert!(read_file(maps, 1 << 20, "the chain file").unwrap().len() > 1024);
    }

    #[test]
    fn a_body_is_collected_up_to_its_bound_and_refused_past_it() {
        let mut body = BodyLimit::default();
        body.push(b"{\"data\":").unwrap();
        body.push(&vec![b'x'; MAX_RESPONSE_BYTES - 8]).unwrap();
        assert_eq!(
            body.bytes.len(),
            MAX_RESPONSE_BYTES,
            "exactly the bound is kept"
        );
        assert_eq!(body.push(b"}"), Err(MAX_RESPONSE_BYTES));
        assert_eq!(
            body.bytes.len(),
            MAX_RESPONSE_BYTES,
            "a refused chunk is not kept"
        );
        let mut one_chunk = BodyLimit::default();
        let too_large = vec![0; MAX_RESPONSE_BYTES + 1];
        assert_eq!(one_chunk.push(&too_large), Err(MAX_RESPONSE_BYTES));
        assert!(one_chunk.bytes.is_empty());
    }

    #[test]
    fn shorten_keeps_short_text_and_cuts_long_text() {
        assert_eq!(shorten("key", 10), "key");
        let long = "k".repeat(1 << 20);
        let s = shorten(&long, 40);
        assert!(s.len() < 80 && s.ends_with("(1048576 characters)"), "{s}");
    }
}
