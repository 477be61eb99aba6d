//! TLS settings for the plugins' HTTPS clients: the system's trust store, read once per
//! invocation, each CA once ([`Sources::from_env`]); CA certificates a user's setting names
//! ([`configured_roots`]); and a client certificate with its key for mutual TLS
//! ([`client_identity`]). Every file is read bounded and without blocking.
//!
//! The system store:
//!
//! The TLS stacks the SDKs bring (rustls-native-certs, behind reqwest and the AWS SDK's client)
//! read OpenSSL's defaults the eager way: the distribution's CA bundle *and* every file of the
//! certificate directory beside it, which on Debian holds the same CAs again, twice (a
//! `<hash>.0` link and a named link per CA). That costs milliseconds at every start, and
//! notation starts a plugin three times per signature. Here:
//!
//! - `SSL_CERT_FILE` and `SSL_CERT_DIR`, when set, are read as OpenSSL users expect;
//! - otherwise the first CA bundle of the well-known paths is read, and a certificate directory
//!   only when there is no bundle;
//! - a directory's entries are read once per file they lead to (links followed; one `stat`
//!   each), and not at all when they lead to the bundle already read;
//! - every read is bounded and never blocks: a FIFO, socket or device is refused by name
//!   (`/dev/null` is "no roots"), as [`crate::bounded::check_trust_store_env`] does;
//! - a certificate that cannot be a trust anchor is skipped (as rustls-native-certs does), not
//!   fatal.
//!
//! A user's own settings are strict instead: a file that is missing, would block, or holds no
//! certificate is a VALIDATION_ERROR naming the setting.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;

use zeroize::Zeroizing;

use crate::bounded::{self, FileKind};
use crate::error::{PluginError, Result};
use crate::{Config, ConfigKey};

/// CA bundles, in the order they are looked for (openssl-probe's list, most common first).
const BUNDLES: [&str; 7] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/share/certs/ca-root-nss.crt",
];
/// Certificate directories, used only when no bundle exists.
const DIRECTORIES: [&str; 3] = ["/etc/ssl/certs", "/etc/pki/tls/certs", "/etc/openssl/certs"];
/// Largest bundle read (Debian's is about 220 KiB).
const MAX_BUNDLE_BYTES: u64 = 8 << 20;
/// Most directory entries looked at.
const MAX_ENTRIES: usize = 10_000;

/// The trust anchors found, and what was read.
#[derive(Debug, Default)]
pub struct Roots {
    /// Each certificate that can be a trust anchor, once.
    pub certificates: Vec<CertificateDer<'static>>,
    /// The trust anchor of each of `certificates`, in the same order: parsed once, here, and
    /// given to rustls as they are (its verifier used to parse every certificate again at the
    /// first handshake).
    anchors: Vec<rustls_pki_types::TrustAnchor<'static>>,
    /// Certificates skipped: not parsable as a trust anchor.
    pub skipped: usize,
    /// The files and directories read, for messages and the debug log.
    pub read: Vec<PathBuf>,
}

/// Where a trust store is read from, and why (the variable that named it, or the default).
#[derive(Debug, Default)]
pub struct Sources {
    /// A CA bundle file, and the variable that named it (`None`: the well-known default).
    pub bundle: Option<(PathBuf, Option<&'static str>)>,
    /// Certificate directories, and the variable that named them.
    pub directories: Vec<(PathBuf, Option<&'static str>)>,
}

impl Sources {
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the first well-known bundle, else the
    /// well-known directories.
    pub fn from_env() -> Self {
        Self::from(
            std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()),
            std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty()),
            |p| p.exists(),
        )
    }

    fn from(
        file: Option<std::ffi::OsString>,
        dirs: Option<std::ffi::OsString>,
        exists: impl Fn(&Path) -> bool,
    ) -> Self {
        let bundle = match file {
            Some(f) => Some((PathBuf::from(f), Some("SSL_CERT_FILE"))),
            None => BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| exists(p))
                .map(|p| (p, None)),
        };
        let directories = match dirs {
            Some(d) => std::env::split_paths(&d)
                .map(|p| (p, Some("SSL_CERT_DIR")))
                .collect(),
            None if bundle.is_none() => DIRECTORIES
                .iter()
                .map(PathBuf::from)
                .filter(|p| exists(p))
                .map(|p| (p, None))
                .collect(),
            None => Vec::new(),
        };
        Self {
            bundle,
            directories,
        }
    }

    /// What [`Sources::load`] would refuse without reading a byte: a named bundle that is a
    /// FIFO, socket, device or directory, or does not exist; a directory that would block.
    pub fn check(&self) -> Result<()> {
        self.bundle_to_read()?;
        for (dir, var) in &self.directories {
            directory_to_read(dir, *var)?;
        }
        Ok(())
    }

    /// The bundle to read, if any. A named bundle that would block, is a directory or does not
    /// exist is refused; `/dev/null`, or a well-known bundle that is gone, is none.
    fn bundle_to_read(&self) -> Result<Option<&Path>> {
        let Some((path, var)) = &self.bundle else {
            return Ok(None);
        };
        match bounded::file_kind(path) {
            FileKind::Regular => Ok(Some(path)),
            FileKind::Null => Ok(None),
            FileKind::Blocking(is) => Err(refuse(*var, path, is)),
            FileKind::Directory => Err(refuse(*var, path, "a directory")),
            FileKind::Missing if var.is_none() => Ok(None),
            FileKind::Missing => Err(missing_bundle(path)),
        }
    }

    /// Reads the trust anchors.
    pub fn load(&self) -> Result<Roots> {
        let mut roots = Roots::default();
        let mut seen_files = HashSet::new();
        let mut seen_certs = HashSet::new();
        if let Some(path) = self.bundle_to_read()? {
            let bytes = bounded::read_file(path, MAX_BUNDLE_BYTES, "the CA bundle")?;
            add_pem(&mut roots, &mut seen_certs, &bytes);
            roots.read.push(path.to_path_buf());
            if let Ok(meta) = std::fs::metadata(path) {
                seen_files.insert((meta.dev(), meta.ino()));
            }
        }
        for (dir, var) in &self.directories {
            if !directory_to_read(dir, *var)? {
                continue;
            }
            let files = match directory_files(dir, &mut seen_files) {
                Ok(files) => files,
                Err(DirectoryProblem::Unreadable(_)) => continue,
                Err(DirectoryProblem::Blocking(path, is)) => return Err(refuse(*var, &path, is)),
            };
            for path in files {
                if let Ok(bytes) = bounded::read_file(&path, MAX_BUNDLE_BYTES, "a CA file") {
                    add_pem(&mut roots, &mut seen_certs, &bytes);
                }
            }
            roots.read.push(dir.clone());
        }
        Ok(roots)
    }
}

/// A rustls client configuration that trusts the system's roots ([`Sources::from_env`]) and reads
/// them within the first wait on a backend on this thread ([`crate::blocking::at_first_wait`]),
/// or at the first certificate check if none came before it: the client's set-up, the
/// credentials, the TCP connection and the first TLS flight are not held up by the trust store
/// (about a millisecond for Debian's bundle, several with `SSL_CERT_DIR` set), and no thread is
/// started to read it (on two cores, one contended with the request's preparation for the
/// process's memory map). What [`Sources::load`] refuses (a FIFO or a directory named by
/// `SSL_CERT_FILE`, a missing file it names) is still refused here, before any request.
pub fn client_config_with_system_roots(
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
) -> Result<rustls::ClientConfig> {
    client_config_reading(Sources::from_env(), provider, Vec::new(), None)
}

/// [`client_config_with_system_roots`] that also trusts `extra` (a user's own CA certificates,
/// [`configured_roots`], parsed once, there) and presents `identity` ([`client_identity`]: the
/// PEM certificate chain, then the private key) to a server that asks for a client
/// certificate. An identity without a certificate or a usable key is a VALIDATION_ERROR naming
/// its settings.
pub fn client_config_with_system_roots_and(
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
    extra: Vec<Roots>,
    identity: Option<&crate::secret::Secret>,
) -> Result<rustls::ClientConfig> {
    client_config_reading(Sources::from_env(), provider, extra, identity)
}

fn client_config_reading(
    sources: Sources,
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
    extra: Vec<Roots>,
    identity: Option<&crate::secret::Secret>,
) -> Result<rustls::ClientConfig> {
    sources.check()?;
    let identity = identity.map(pem_identity).transpose()?;
    let verifier = std::sync::Arc::new(RootsAtFirstWait {
        provider: provider.clone(),
        pending: std::sync::Mutex::new(Some(sources)),
        extra: extra.into_iter().flat_map(|r| r.anchors).collect(),
        ready: std::sync::OnceLock::new(),
    });
    crate::blocking::at_first_wait({
        let verifier = std::sync::Arc::clone(&verifier);
        move || {
            // What it finds (or fails to) is kept for the handshake, which reports it.
            let _ = verifier.verifier();
        }
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PluginError::generic(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match identity {
        None => Ok(config.with_no_client_auth()),
        Some((chain, key, source)) => config.with_client_auth_cert(chain, key).map_err(|e| {
            PluginError::validation(format!(
                "{source} do not hold a usable client certificate and private key: {e}"
            ))
        }),
    }
}

/// The certificate chain and the private key of a [`client_identity`], and its source.
fn pem_identity(
    identity: &crate::secret::Secret,
) -> Result<(
    Vec<CertificateDer<'static>>,
    rustls_pki_types::PrivateKeyDer<'static>,
    &str,
)> {
    use rustls_pki_types::pem::PemObject;
    let source = identity.source.as_str();
    let unusable = |what: &str| {
        PluginError::validation(format!(
            "{source} do not hold a usable PEM client certificate and private key: {what}"
        ))
    };
    let chain = CertificateDer::pem_slice_iter(&identity.bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| unusable(&e.to_string()))?;
    if chain.is_empty() {
        return Err(unusable("no CERTIFICATE block"));
    }
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(&identity.bytes)
        .map_err(|e| unusable(&format!("no private key ({e})")))?;
    Ok((chain, key, source))
}

/// The server certificate check of [`client_config_with_system_roots`]: WebPKI over the
/// system's roots, read within the first wait on a backend
/// ([`crate::blocking::at_first_wait`]: the first request's, once it is out), or by the first
/// certificate check if no wait came before it.
#[derive(Debug)]
struct RootsAtFirstWait {
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
    /// Where the roots are, until they are read.
    pending: std::sync::Mutex<Option<Sources>>,
    /// The user's own CA certificates, trusted beside the system's.
    extra: Vec<rustls_pki_types::TrustAnchor<'static>>,
    /// The verifier over the roots read, or why there is none (no roots: every certificate's
    /// issuer is unknown; a failed read: its message).
    ready: std::sync::OnceLock<
        std::result::Result<std::sync::Arc<rustls::client::WebPkiServerVerifier>, Option<String>>,
    >,
}

impl RootsAtFirstWait {
    fn verifier(
        &self,
    ) -> std::result::Result<&rustls::client::WebPkiServerVerifier, rustls::Error> {
        let ready = self.ready.get_or_init(|| {
            let pending = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            let roots = match pending.map(|sources| sources.load()) {
                Some(Ok(roots)) => roots,
                Some(Err(e)) => return Err(Some(e.message)),
                None => return Err(Some("the TLS trust store could not be read".to_owned())),
            };
            tracing::debug!(
                certificates = roots.certificates.len(),
                skipped = roots.skipped,
                read = ?roots.read,
                "TLS trust store"
            );
            let mut store = rustls::RootCertStore {
                roots: roots.anchors,
            };
            store.roots.extend(self.extra.iter().cloned());
            if store.is_empty() {
                return Err(None);
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                std::sync::Arc::new(store),
                self.provider.clone(),
            )
            .build()
            .map_err(|e| Some(e.to_string()))
        });
        match ready {
            Ok(verifier) => Ok(verifier),
            Err(None) => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
            Err(Some(why)) => Err(rustls::Error::General(why.clone())),
        }
    }
}

impl rustls::client::danger::ServerCertVerifier for RootsAtFirstWait {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls_pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls_pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// For an SDK that reads the system trust store itself, through rustls-native-certs (Google's
/// clients, which take no roots from outside): when neither `SSL_CERT_FILE` nor `SSL_CERT_DIR`
/// is set, that library reads the CA bundle *and* every file of the certificate directory
/// beside it (milliseconds, at each of notation's three starts). This names the bundle
/// [`Sources::from_env`] would read in `SSL_CERT_FILE`, so that the SDK reads that one file, as the
/// other plugins do; with either variable set, or no bundle, it changes nothing. It changes the
/// process's environment: call it first in `main`, before any thread exists.
pub fn name_the_system_bundle() {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    if set("SSL_CERT_FILE") || set("SSL_CERT_DIR") {
        return;
    }
    if let Some((bundle, None)) = Sources::from_env().bundle {
        std::env::set_var("SSL_CERT_FILE", bundle);
    }
}

/// The one certificate of [`trust_nothing_for_plain_http`]'s trust store: self-signed, its private
/// key destroyed the moment it was made (2026-12-01), expired a day later. No one can present a
/// chain to it, so trusting it trusts no server.
const NO_TLS_PLACEHOLDER: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIB0jCCAXegAwIBAgIUJKJab+f6yyjVBOugnNKXhMcSRH8wCgYIKoZIzj0EAwIw\n\
PjE8MDoGA1UEAwwzbm90YXRpb24tcGx1Z2lucyBuby1UTFMgcGxhY2Vob2xkZXIg\n\
KGtleSBkaXNjYXJkZWQpMB4XDTI2MTIwMTIyMTgyMloXDTI2MTIwMjIyMTgyMlow\n\
PjE8MDoGA1UEAwwzbm90YXRpb24tcGx1Z2lucyBuby1UTFMgcGxhY2Vob2xkZXIg\n\
KGtleSBkaXNjYXJkZWQpMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhAPlKKqp\n\
gtj38OfOyGPzRGIVKxoY2uiK0kwylZkUQQcqNyJja4UhjC2EN6fUjgqmxY0Y+hQm\n\
Nb2TLWRuSq+ON6NTMFEwHQYDVR0OBBYEFMh7TsUZmQrGXQ+1wWV94OBgCYFUMB8G\n\
A1UdIwQYMBaAFMh7TsUZmQrGXQ+1wWV94OBgCYFUMA8GA1UdEwEB/wQFMAMBAf8w\n\
CgYIKoZIzj0EAwIDSQAwRgIhAKYrgtTcOu9HVlol/ZqIShv8ztWrvhhNR5z0w4OW\n\
yF/hAiEAqV6RWBJUkvg7tiPeBI2em7xmcZ+DfWwwm8dc4WWFF+I=\n\
-----END CERTIFICATE-----\n";

/// For an SDK that reads the system trust store itself whenever it builds an HTTP client, even
/// one that will only ever speak plain HTTP (Google's clients: rustls-platform-verifier reads it
/// as the client is built, and refuses an empty one): names in `SSL_CERT_FILE` an in-memory file
/// holding one certificate that anchors nothing ([`NO_TLS_PLACEHOLDER`]), and unsets
/// `SSL_CERT_DIR`, so that building the client parses 700 bytes instead of the system's bundle
/// (220 kB, about 150 certificates). Only for an invocation that makes no TLS connection at all:
/// a TLS handshake after this fails as an unknown issuer. It changes the process's environment:
/// call it before the async runtime's threads start (the runner's signal thread reads none).
/// Returns whether it did; without memfd or `/proc` it leaves everything as it was.
pub fn trust_nothing_for_plain_http() -> bool {
    use std::io::Write;
    use std::os::fd::{AsRawFd, IntoRawFd};
    let Ok(fd) = rustix::fs::memfd_create("notation-no-tls", rustix::fs::MemfdFlags::CLOEXEC)
    else {
        return false;
    };
    let mut file = std::fs::File::from(fd);
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    // One check, of what the SDK will find at the path: a write that failed left it shorter.
    let _ = file.write_all(NO_TLS_PLACEHOLDER.as_bytes());
    if !std::fs::metadata(&path).is_ok_and(|m| m.len() == NO_TLS_PLACEHOLDER.len() as u64) {
        return false;
    }
    // Open for the rest of the process: the SDK opens the path whenever it builds a client.
    let _ = file.into_raw_fd();
    std::env::set_var("SSL_CERT_FILE", path);
    std::env::remove_var("SSL_CERT_DIR");
    true
}

/// Why a certificate directory's files cannot be listed.
enum DirectoryProblem {
    /// The directory cannot be read.
    Unreadable(std::io::Error),
    /// An entry is a FIFO, socket or device (named), which a reader would hang on.
    Blocking(PathBuf, &'static str),
}

/// The regular files of the certificate directory `dir` (at most [`MAX_ENTRIES`] entries
/// looked at, links followed), in name order, each file once: one stat per entry says what it
/// is and which file it is (device and inode, kept in `seen` with any read before), so a file
/// several links lead to (`<hash>.0` and `<name>.pem`, or the bundle) is listed once.
fn directory_files(
    dir: &Path,
    seen: &mut HashSet<(u64, u64)>,
) -> std::result::Result<Vec<PathBuf>, DirectoryProblem> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(DirectoryProblem::Unreadable)?
        .flatten()
        .take(MAX_ENTRIES)
        .map(|e| e.path())
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        match bounded::kind_of(&meta) {
            FileKind::Blocking(is) => return Err(DirectoryProblem::Blocking(path, is)),
            FileKind::Regular if seen.insert((meta.dev(), meta.ino())) => files.push(path),
            _ => {}
        }
    }
    Ok(files)
}

/// Whether the directory setting `dir` is a directory to read: one that would block is
/// refused; anything else that is no directory is passed over.
fn directory_to_read(dir: &Path, var: Option<&'static str>) -> Result<bool> {
    match bounded::file_kind(dir) {
        FileKind::Blocking(is) => Err(refuse(var, dir, is)),
        FileKind::Directory => Ok(true),
        _ => Ok(false),
    }
}

fn missing_bundle(path: &Path) -> PluginError {
    PluginError::validation(format!(
        "SSL_CERT_FILE names {}, which does not exist; point it at a CA bundle file (or unset it)",
        path.display()
    ))
}

fn refuse(var: Option<&str>, path: &Path, is: &str) -> PluginError {
    match var {
        Some(var) => bounded::refuse_trust_store(var, path, is),
        None => PluginError::validation(format!(
            "the system's TLS trust store {} is {is}: it must be regular PEM files; set \
             SSL_CERT_FILE to a CA bundle file",
            path.display()
        )),
    }
}

/// What a CA setting names: one PEM bundle, or a directory of PEM files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaSetting {
    /// A PEM file of one or more CA certificates (`VAULT_CACERT`).
    File,
    /// A directory whose regular files are PEM CA certificates (`VAULT_CAPATH`); files that
    /// hold none are passed over.
    Directory,
}

/// The CA certificates at `path`, which the setting `source` (e.g. `environment variable
/// VAULT_CACERT`) names; read like the system store (bounded, each file once, never blocking)
/// but strictly: a path that is missing, of the wrong kind or would block, and a file (or
/// directory) that holds no usable CA certificate, is a VALIDATION_ERROR naming `source`.
pub fn configured_roots(path: &Path, at: CaSetting, source: &str) -> Result<Roots> {
    let mut roots = Roots::default();
    let mut seen_certs = HashSet::new();
    let shown = path.display();
    let wrong = |is: &str, want: &str| {
        PluginError::validation(format!("{source}: {shown} is {is}; it must be {want}"))
    };
    match (bounded::file_kind(path), at) {
        (FileKind::Missing, _) => {
            return Err(PluginError::validation(format!(
                "{source}: {shown} does not exist or cannot be read"
            )))
        }
        (FileKind::Blocking(is), CaSetting::File) => return Err(wrong(is, "a PEM file")),
        (FileKind::Directory, CaSetting::File) => {
            return Err(wrong(
                "a directory",
                "a PEM file (a directory goes in the CA path setting)",
            ))
        }
        (FileKind::Null, CaSetting::File) => {}
        (FileKind::Regular, CaSetting::File) => {
            let bytes = bounded::read_file(path, MAX_BUNDLE_BYTES, "the CA file")
                .map_err(|e| e.context(source))?;
            add_pem(&mut roots, &mut seen_certs, &bytes);
            if roots.skipped > 0 {
                return Err(PluginError::validation(format!(
                    "{source}: {shown} holds {} certificate(s) that cannot be a trust anchor \
                     (not valid X.509)",
                    roots.skipped
                )));
            }
        }
        (FileKind::Directory, CaSetting::Directory) => {
            let files = directory_files(path, &mut HashSet::new()).map_err(|p| match p {
                DirectoryProblem::Unreadable(e) => PluginError::validation(format!(
                    "{source}: cannot read the directory {shown}: {e}"
                )),
                DirectoryProblem::Blocking(file, is) => wrong_entry(source, &file, is),
            })?;
            for file in files {
                let bytes = bounded::read_file(&file, MAX_BUNDLE_BYTES, "a CA file")
                    .map_err(|e| e.context(source))?;
                add_pem(&mut roots, &mut seen_certs, &bytes);
            }
        }
        (other, CaSetting::Directory) => {
            let is = match other {
                FileKind::Blocking(is) => is,
                _ => "not a directory",
            };
            return Err(wrong(is, "a directory of PEM files"));
        }
    }
    if roots.certificates.is_empty() {
        return Err(PluginError::validation(format!(
            "{source}: {shown} holds no PEM CA certificate"
        )));
    }
    roots.read.push(path.to_path_buf());
    Ok(roots)
}

fn wrong_entry(source: &str, file: &Path, is: &str) -> PluginError {
    PluginError::validation(format!(
        "{source}: {} is {is}; a CA directory may hold only PEM files",
        file.display()
    ))
}

/// Largest client certificate file read (a certificate and its issuers).
const MAX_CLIENT_CERT_BYTES: u64 = 256 << 10;

/// The client identity for mutual TLS that the settings `cert` and `key` name, as one
/// [`Secret`](crate::secret::Secret): the certificate file's PEM, then the private key's
/// (zeroized when dropped; `Debug` and messages show the two settings only). Both settings or
/// neither: one without the other is a VALIDATION_ERROR naming both. The certificate is read
/// bounded; the key is a secret file under the shared policy ([`crate::secret::read_file`]:
/// owner-only, bounded).
pub fn client_identity(
    config: &Config,
    cert: &ConfigKey,
    key: &ConfigKey,
) -> Result<Option<crate::secret::Secret>> {
    let (cert_path, cert_source, key_path, key_source) = match (config.path(cert), config.path(key))
    {
        (None, None) => return Ok(None),
        (Some((c, cs)), Some((k, ks))) => (c, cs, k, ks),
        (Some((_, s)), None) | (None, Some((_, s))) => {
            let named = |k: &ConfigKey| match k.env.first() {
                Some(var) => format!("{} ({var})", k.name),
                None => k.name.to_owned(),
            };
            return Err(PluginError::validation(format!(
                "{s} is set but not its pair: a client certificate needs both {} and {}",
                named(cert),
                named(key)
            )));
        }
    };
    let mut pem = Zeroizing::new(
        bounded::read_file(
            &cert_path,
            MAX_CLIENT_CERT_BYTES,
            "the client certificate file",
        )
        .map_err(|e| e.context(&cert_source))?,
    );
    pem.push(b'\n');
    let key = crate::secret::read_file(
        &key_path,
        "the client key file",
        crate::secret::FileOwner::User,
    )
    .map_err(|e| e.context(&key_source))?;
    pem.extend_from_slice(&key);
    Ok(Some(crate::secret::Secret {
        bytes: pem,
        source: format!("{cert_source} and {key_source}"),
    }))
}

/// Where a certificate already added may be found: its length and last bytes (its signature's),
/// which tell certificates apart without hashing the whole of each.
type CertificateKey = (usize, [u8; 16]);

fn certificate_key(der: &[u8]) -> CertificateKey {
    let mut tail = [0; 16];
    let n = der.len().min(tail.len());
    tail[..n].copy_from_slice(&der[der.len() - n..]);
    (der.len(), tail)
}

/// Adds the `CERTIFICATE` blocks of `pem` that can be trust anchors, each once.
fn add_pem(roots: &mut Roots, seen: &mut HashSet<CertificateKey>, pem: &[u8]) {
    use base64::Engine;
    let Ok(text) = std::str::from_utf8(pem) else {
        return;
    };
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let Some(end) = body.find(END) else {
            return;
        };
        let b64: String = body[..end].split_whitespace().collect();
        rest = &body[end + END.len()..];
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            roots.skipped += 1;
            continue;
        };
        let key = certificate_key(&der);
        // A key seen before is nearly always the same certificate again; only the bytes say.
        if !seen.insert(key) && roots.certificates.iter().any(|c| c.as_ref() == der) {
            continue;
        }
        let cert = CertificateDer::from(der);
        let Ok(anchor) = webpki::anchor_from_trusted_cert(&cert) else {
            roots.skipped += 1;
            continue;
        };
        roots.anchors.push(anchor.to_owned());
        roots.certificates.push(cert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(cn: &str) -> String {
        crate::testca::TestCa::new(&format!("CN={cn},O=Test,C=US")).root_pem()
    }

    #[test]
    fn a_bundle_is_read_and_the_directory_only_when_there_is_none() {
        let has = |wanted: &'static str| move |p: &Path| p == Path::new(wanted);
        let s = Sources::from(None, None, has("/etc/pki/tls/certs/ca-bundle.crt"));
        assert_eq!(
            s.bundle,
            Some((PathBuf::from("/etc/pki/tls/certs/ca-bundle.crt"), None))
        );
        assert!(s.directories.is_empty(), "no directory beside a bundle");
        let s = Sources::from(None, None, |_| true);
        assert_eq!(
            s.bundle,
            Some((PathBuf::from(BUNDLES[0]), None)),
            "the first bundle"
        );
        assert!(
            s.directories.is_empty(),
            "no directory beside a bundle, though all exist"
        );
        let s = Sources::from(None, None, has("/etc/ssl/certs"));
        assert_eq!(s.bundle, None);
        assert_eq!(s.directories, [(PathBuf::from("/etc/ssl/certs"), None)]);
        let s = Sources::from(Some("/b.pem".into()), Some("/d1:/d2".into()), |_| true);
        assert_eq!(
            s.bundle,
            Some((PathBuf::from("/b.pem"), Some("SSL_CERT_FILE")))
        );
        assert_eq!(
            s.directories,
            [
                (PathBuf::from("/d1"), Some("SSL_CERT_DIR")),
                (PathBuf::from("/d2"), Some("SSL_CERT_DIR"))
            ]
        );
    }

    #[test]
    fn each_ca_is_loaded_once_and_links_to_the_bundle_are_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (ca_pem("A"), ca_pem("B"), ca_pem("C"));
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, format!("# comment\n{a}\n{b}")).unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        std::fs::write(certs.join("c.pem"), &c).unwrap();
        std::os::unix::fs::symlink(certs.join("c.pem"), certs.join("1234abcd.0")).unwrap();
        std::os::unix::fs::symlink(&bundle, certs.join("bundle-link.pem")).unwrap();
        std::fs::write(certs.join("a-again.pem"), &a).unwrap();
        std::fs::write(certs.join("README"), "not a certificate").unwrap();
        std::fs::write(
            certs.join("broken.pem"),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        std::fs::write(
            certs.join("not-base64.pem"),
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let sources = Sources {
            bundle: Some((bundle.clone(), Some("SSL_CERT_FILE"))),
            directories: vec![(certs.clone(), Some("SSL_CERT_DIR"))],
        };
        let roots = sources.load().unwrap();
        assert_eq!(roots.certificates.len(), 3, "A, B, C once each");
        assert_eq!(
            roots.skipped, 2,
            "the broken one and the one that is not base64"
        );
        assert_eq!(roots.read, [bundle, certs]);
        assert_eq!(roots.anchors.len(), 3, "an anchor for each");
    }

    #[test]
    fn what_would_block_is_refused_and_dev_null_means_no_roots() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("roots.pem");
        crate::client::make_fifo(&fifo);
        let only = |bundle: &Path| Sources {
            bundle: Some((bundle.to_owned(), Some("SSL_CERT_FILE"))),
            directories: vec![],
        };
        let e = only(&fifo).load().unwrap_err();
        assert!(
            e.message.contains("SSL_CERT_FILE") && e.message.contains("a FIFO"),
            "{}",
            e.message
        );
        let e = only(Path::new("/dev/zero")).load().unwrap_err();
        assert!(e.message.contains("a device"), "{}", e.message);
        let e = only(&dir.path().join("missing.pem")).load().unwrap_err();
        assert!(e.message.contains("does not exist"), "{}", e.message);
        let none = only(Path::new("/dev/null")).load().unwrap();
        assert!(none.certificates.is_empty());
        let in_dir = Sources {
            bundle: None,
            directories: vec![(dir.path().to_owned(), Some("SSL_CERT_DIR"))],
        };
        let e = in_dir.load().unwrap_err();
        assert!(
            e.message.contains("SSL_CERT_DIR") && e.message.contains("roots.pem"),
            "{}",
            e.message
        );
        let default = Sources {
            bundle: None,
            directories: vec![(dir.path().to_owned(), None)],
        };
        let e = default.load().unwrap_err();
        assert!(e.message.contains("set SSL_CERT_FILE"), "{}", e.message);
        // A directory setting that names a FIFO itself is refused too, before and when read.
        let fifo_dir = Sources {
            bundle: None,
            directories: vec![(fifo.clone(), Some("SSL_CERT_DIR"))],
        };
        for e in [fifo_dir.check().unwrap_err(), fifo_dir.load().unwrap_err()] {
            assert!(
                e.message.contains("SSL_CERT_DIR") && e.message.contains("a FIFO"),
                "{}",
                e.message
            );
        }
        // A named bundle that is a directory is refused by check as by load.
        for e in [
            only(dir.path()).check().unwrap_err(),
            only(dir.path()).load().unwrap_err(),
        ] {
            assert!(e.message.contains("a directory"), "{}", e.message);
        }
        // A well-known bundle that is gone (no variable named it) is no error: no roots.
        let gone = Sources {
            bundle: Some((dir.path().join("gone.pem"), None)),
            directories: vec![],
        };
        gone.check().unwrap();
        assert!(gone.load().unwrap().certificates.is_empty());
        let e = only(&dir.path().join("gone.pem")).check().unwrap_err();
        assert!(e.message.contains("does not exist"), "{}", e.message);
    }

    #[test]
    fn certificates_alike_in_length_and_last_bytes_are_told_apart_by_their_bytes() {
        use base64::Engine;
        let pem = ca_pem("A");
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        // The subject's common name "A" becomes "Z": another certificate, still well-formed,
        // of the same length and with the same signature bytes.
        let cn = [0x06, 0x03, 0x55, 0x04, 0x03];
        let at = der.windows(cn.len()).position(|w| w == cn).unwrap() + cn.len() + 2;
        assert_eq!(der[at], b'A');
        let mut other = der.clone();
        other[at] = b'Z';
        assert_eq!(certificate_key(&der), certificate_key(&other));
        let pem_of =
            |d: &[u8]| der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, d).unwrap();
        let bundle = format!("{}{}{}", pem_of(&der), pem_of(&other), pem_of(&der));
        let mut roots = Roots::default();
        add_pem(&mut roots, &mut HashSet::new(), bundle.as_bytes());
        assert_eq!(roots.skipped, 0);
        let kept: Vec<&[u8]> = roots.certificates.iter().map(|c| c.as_ref()).collect();
        assert_eq!(kept, [&der[..], &other[..]], "both, and the first once");
        assert_eq!(roots.anchors.len(), 2, "an anchor for each");
        let subject = |c: &CertificateDer<'_>| {
            webpki::anchor_from_trusted_cert(c)
                .unwrap()
                .subject
                .to_vec()
        };
        let subjects: Vec<Vec<u8>> = roots.anchors.iter().map(|a| a.subject.to_vec()).collect();
        assert_eq!(
            subjects,
            roots.certificates.iter().map(subject).collect::<Vec<_>>(),
            "each anchor is its certificate's"
        );
    }

    #[test]
    fn a_configured_ca_file_or_directory_is_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (ca_pem("A"), ca_pem("B"));
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, format!("{a}\n{b}\n{a}")).unwrap();
        let roots = configured_roots(&file, CaSetting::File, "pluginConfig ca_cert").unwrap();
        assert_eq!(roots.certificates.len(), 2, "A and B, A once");
        assert_eq!(roots.read, std::slice::from_ref(&file));

        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        std::fs::write(certs.join("a.pem"), &a).unwrap();
        std::os::unix::fs::symlink(certs.join("a.pem"), certs.join("0abc.0")).unwrap();
        std::fs::write(certs.join("README"), "not a certificate").unwrap();
        let roots = configured_roots(&certs, CaSetting::Directory, "VAULT_CAPATH").unwrap();
        assert_eq!(
            roots.certificates.len(),
            1,
            "a.pem once, README passed over"
        );

        let err = |path: &Path, at| configured_roots(path, at, "the setting").unwrap_err();
        let says = |e: PluginError, words: &[&str]| {
            assert_eq!(e.code, crate::ErrorCode::Validation, "{}", e.message);
            assert!(e.message.starts_with("the setting: "), "{}", e.message);
            for w in words {
                assert!(e.message.contains(w), "{w:?} not in {}", e.message);
            }
        };
        says(
            err(&dir.path().join("none.pem"), CaSetting::File),
            &["does not exist"],
        );
        says(err(&certs, CaSetting::File), &["is a directory"]);
        says(err(&file, CaSetting::Directory), &["not a directory"]);
        std::fs::write(certs.join("empty.pem"), "").unwrap();
        says(
            err(&certs.join("empty.pem"), CaSetting::File),
            &["holds no PEM CA certificate"],
        );
        says(
            err(Path::new("/dev/null"), CaSetting::File),
            &["holds no PEM CA certificate"],
        );
        let only_readme = dir.path().join("docs");
        std::fs::create_dir(&only_readme).unwrap();
        std::fs::write(only_readme.join("README"), "text").unwrap();
        says(
            err(&only_readme, CaSetting::Directory),
            &["holds no PEM CA certificate"],
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            format!("{a}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        )
        .unwrap();
        says(
            err(&broken, CaSetting::File),
            &["1 certificate(s) that cannot be a trust anchor"],
        );
        // What would block a reader is refused, not read: as the file, or inside the directory.
        let fifo = dir.path().join("fifo.pem");
        crate::client::make_fifo(&fifo);
        says(err(&fifo, CaSetting::File), &["is a FIFO"]);
        crate::client::make_fifo(&certs.join("z-fifo.pem"));
        says(err(&certs, CaSetting::Directory), &["z-fifo.pem is a FIFO"]);
        says(
            err(&fifo, CaSetting::Directory),
            &["is a FIFO; it must be a directory"],
        );
    }

    #[test]
    fn a_client_identity_is_both_files_or_neither_and_the_key_is_a_secret_file() {
        use std::os::unix::fs::PermissionsExt;
        const CERT: ConfigKey = ConfigKey::new("client_cert", &["X_CLIENT_CERT"], "cert");
        const KEY: ConfigKey = ConfigKey::new("client_key", &["X_CLIENT_KEY"], "key");
        static INFO: crate::PluginInfo = crate::PluginInfo {
            name: "tls-test",
            description: "",
            version: "0.0.0",
            url: "",
            config_keys: &[CERT, KEY],
            chain_sources_help: "",
        };
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("client.pem");
        let key = dir.path().join("client.key");
        std::fs::write(&cert, "CERTIFICATE PEM").unwrap();
        std::fs::write(&key, "KEY PEM\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = |pairs: &[(&str, &Path)]| {
            let map = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            Config::new(&INFO, Some(map)).unwrap()
        };
        assert!(client_identity(&config(&[]), &CERT, &KEY)
            .unwrap()
            .is_none());
        let both = config(&[("client_cert", &cert), ("client_key", &key)]);
        let identity = client_identity(&both, &CERT, &KEY).unwrap().unwrap();
        assert_eq!(&identity.bytes[..], b"CERTIFICATE PEM\nKEY PEM");
        assert!(identity.source.contains("client_cert") && identity.source.contains("client_key"));
        assert!(
            !format!("{identity:?}").contains("KEY PEM"),
            "Debug shows no key"
        );

        for one in [
            ("client_cert", cert.as_path()),
            ("client_key", key.as_path()),
        ] {
            let e = client_identity(&config(&[one]), &CERT, &KEY).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::Validation);
            for w in [
                "not its pair",
                "client_cert (X_CLIENT_CERT)",
                "client_key (X_CLIENT_KEY)",
            ] {
                assert!(e.message.contains(w), "{w:?} not in {}", e.message);
            }
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = client_identity(&both, &CERT, &KEY).unwrap_err();
        assert!(e.message.contains("mode 0644"), "{}", e.message);
        assert!(
            e.message.contains("client_key"),
            "names the setting: {}",
            e.message
        );
        let fifo = dir.path().join("cert-fifo.pem");
        crate::client::make_fifo(&fifo);
        let fifo_cert = config(&[("client_cert", &fifo), ("client_key", &key)]);
        let e = crate::bounded::within_ten_seconds(move || {
            client_identity(&fifo_cert, &CERT, &KEY).map(|_| ())
        })
        .unwrap_err();
        assert!(e.message.contains("a FIFO"), "{}", e.message);
    }

    /// A CA and a server certificate for `localhost` it issued (openssl), in `dir`.
    fn server_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let p = |n: &str| dir.join(n);
        let run = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-subj",
                "/CN=test CA",
                "-days",
                "2",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat());
        std::fs::write(
            p("ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ]);
        (p("ca.pem"), p("server.pem"), p("server.key"))
    }

    /// A TLS handshake in memory between a client with `config` and a server with the
    /// certificate and key; the client's error, if any.
    fn handshake(
        config: rustls::ClientConfig,
        cert: &Path,
        key: &Path,
    ) -> std::result::Result<(), rustls::Error> {
        use rustls_pki_types::pem::PemObject;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let chain = CertificateDer::pem_file_iter(cert)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut client = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
        let mut server = rustls::ServerConnection::new(std::sync::Arc::new(server)).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            client.write_tls(&mut buf).unwrap();
            server.read_tls(&mut &buf[..]).unwrap();
            if let Err(e) = server.process_new_packets() {
                panic!("server: {e}");
            }
            let mut buf = Vec::new();
            server.write_tls(&mut buf).unwrap();
            client.read_tls(&mut &buf[..]).unwrap();
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not finish");
    }

    #[test]
    fn the_roots_read_verify_the_server_and_only_that() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = server_files(dir.path());
        let provider = || std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let bundle = |path: &Path| Sources {
            bundle: Some((path.to_owned(), Some("SSL_CERT_FILE"))),
            directories: vec![],
        };
        let config = client_config_reading(bundle(&ca), provider(), Vec::new(), None).unwrap();
        handshake(config, &cert, &key).expect("the server's CA is in the bundle");

        std::fs::write(dir.path().join("other.pem"), ca_pem("Other")).unwrap();
        let config = client_config_reading(
            bundle(&dir.path().join("other.pem")),
            provider(),
            Vec::new(),
            None,
        )
        .unwrap();
        let e = handshake(config, &cert, &key).unwrap_err();
        assert_eq!(
            e,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        );
        // No roots at all (SSL_CERT_FILE=/dev/null): every issuer is unknown, as with any client.
        let config =
            client_config_reading(bundle(Path::new("/dev/null")), provider(), Vec::new(), None)
                .unwrap();
        let e = handshake(config, &cert, &key).unwrap_err();
        assert_eq!(
            e,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        );

        // What would block or is missing is refused before any connection, by name.
        let fifo = dir.path().join("fifo.pem");
        crate::client::make_fifo(&fifo);
        let e = client_config_reading(bundle(&fifo), provider(), Vec::new(), None).unwrap_err();
        assert!(
            e.message.contains("SSL_CERT_FILE") && e.message.contains("a FIFO"),
            "{}",
            e.message
        );
        // A bundle that passes the checks but cannot be read (too large): the handshake fails
        // with why, not with an unknown issuer.
        let huge = dir.path().join("huge.pem");
        std::fs::write(&huge, vec![b'#'; (MAX_BUNDLE_BYTES + 1) as usize]).unwrap();
        let config = client_config_reading(bundle(&huge), provider(), Vec::new(), None).unwrap();
        match handshake(config, &cert, &key) {
            Err(rustls::Error::General(why)) => assert!(why.contains("larger than"), "{why}"),
            other => panic!("{other:?}"),
        }
        let e = client_config_reading(
            bundle(&dir.path().join("none.pem")),
            provider(),
            Vec::new(),
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("does not exist"), "{}", e.message);
    }

    #[test]
    fn the_roots_are_read_within_the_first_wait_on_a_backend() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = server_files(dir.path());
        let bundle = dir.path().join("bundle.pem");
        std::fs::copy(&ca, &bundle).unwrap();
        let sources = Sources {
            bundle: Some((bundle.clone(), Some("SSL_CERT_FILE"))),
            directories: vec![],
        };
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = client_config_reading(sources, provider, Vec::new(), None).unwrap();
        // The request is out: the bundle is read now, and what it held then is what is trusted.
        crate::blocking::waiting_on_backend();
        std::fs::write(&bundle, ca_pem("Other")).unwrap();
        handshake(config, &cert, &key).expect("the bundle as it was at the first wait");
    }

    #[test]
    fn a_users_own_ca_is_trusted_beside_the_system_roots_and_an_identity_must_be_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = server_files(dir.path());
        let provider = || std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let other = dir.path().join("other.pem");
        std::fs::write(&other, ca_pem("Other")).unwrap();
        let system = || Sources {
            bundle: Some((other.clone(), Some("SSL_CERT_FILE"))),
            directories: vec![],
        };
        let own = || configured_roots(&ca, CaSetting::File, "VAULT_CACERT").unwrap();
        let config = client_config_reading(system(), provider(), vec![own()], None).unwrap();
        handshake(config, &cert, &key).expect("the server's CA is the user's own");
        // Without it, the system's roots alone do not know the server's issuer.
        let config = client_config_reading(system(), provider(), Vec::new(), None).unwrap();
        assert!(handshake(config, &cert, &key).is_err());

        let identity = |pem: Vec<u8>| crate::secret::Secret {
            bytes: Zeroizing::new(pem),
            source: "VAULT_CLIENT_CERT and VAULT_CLIENT_KEY".into(),
        };
        let (cert_pem, key_pem) = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());
        let whole = identity([cert_pem.clone(), key_pem.clone()].concat());
        assert!(client_config_reading(system(), provider(), vec![own()], Some(&whole)).is_ok());
        for (pem, why) in [(key_pem, "no CERTIFICATE"), (cert_pem, "no private key")] {
            let e = client_config_reading(system(), provider(), Vec::new(), Some(&identity(pem)))
                .unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::Validation);
            assert!(
                e.message.contains("VAULT_CLIENT_CERT and VAULT_CLIENT_KEY")
                    && e.message.contains(why),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn a_directory_lists_each_file_once_and_not_those_already_read() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, "bundle").unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        std::fs::write(certs.join("a.pem"), "a").unwrap();
        std::os::unix::fs::symlink(certs.join("a.pem"), certs.join("0abc.0")).unwrap();
        std::os::unix::fs::symlink(&bundle, certs.join("bundle-link.pem")).unwrap();
        std::fs::create_dir(certs.join("sub")).unwrap();
        let meta = std::fs::metadata(&bundle).unwrap();
        let mut seen = HashSet::from([(meta.dev(), meta.ino())]);
        let Ok(files) = directory_files(&certs, &mut seen) else {
            panic!("the directory is readable");
        };
        // In name order, the first name of a.pem's file; no second link, no bundle, no folder.
        assert_eq!(files, [certs.join("0abc.0")]);
        assert_eq!(seen.len(), 2);
    }
}
