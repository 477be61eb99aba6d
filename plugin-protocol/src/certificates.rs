//! Certificate tooling for keys that never leave their backend, the same on every plugin:
//! `certificate self-signed`, `certificate csr`, `ca init`, `ca issue` and `public-key`.
//! The backend signs (through [`Backend::sign`], normalised and self-checked by the same core as
//! generate-signature);
//! x509-cert's builder assembles the certificates. Leaves always meet the Notary leaf rules
//! and CA certificates the CA rules; the signature algorithm follows the signing key's spec
//! (ECDSA with its hash, or RSASSA-PSS with salt = hash length), never SHA-1.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::Subcommand;
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::builder::{Builder, CertificateBuilder, Profile, RequestBuilder};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::backend::Backend;
use crate::chain::{self, Certificate};
use crate::command_key::{write_output, BackendKey, KeyArgs, OutArgs};
use crate::error::{PluginError, Result};
use crate::plugin_info::PluginInfo;
use crate::signature::ecdsa_fixed_to_der;
use crate::{HashAlgorithm, KeySpec, PublicKey};

const CODE_SIGNING: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");

/// Default validity, in days, of what each command makes.
pub(crate) mod default_days {
    pub(crate) const SELF_SIGNED: u32 = 365;
    pub(crate) const ROOT: u32 = 3650;
    pub(crate) const INTERMEDIATE: u32 = 1825;
    pub(crate) const LEAF: u32 = 365;
}

/// The commands this module adds to every plugin ([`crate::operator::SHARED_COMMANDS`]); the
/// first paragraph of each is its line in `--help`.
#[derive(Subcommand, Debug)]
pub(crate) enum Top {
    /// self-signed | csr: a certificate or CSR signed by a backend key
    ///
    /// A certificate or certificate request signed by a key held in the backend
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// init | issue: a root CA on a backend key, and certificates it issues
    ///
    /// A certificate authority whose key is held in the backend (e.g. an offline HSM token)
    #[command(subcommand)]
    Ca(CaCommand),
    /// print the PEM public key of a backend key
    ///
    /// Print the public key of a backend key as PEM (for `ca issue --public-key`)
    PublicKey {
        #[command(flatten)]
        key: KeyArgs,
        #[command(flatten)]
        out: OutArgs,
    },
    /// export: the chain's root and a trust policy pinning the signer, for verifiers
    ///
    /// What a verifier needs: the chain's root and a notation trust policy
    #[command(subcommand)]
    Trust(crate::trust::TrustCommand),
}

/// Adds the shared commands to a plugin's operator command line.
pub(crate) fn augment(cmd: clap::Command) -> clap::Command {
    Top::augment_subcommands(cmd)
}

#[derive(Subcommand, Debug)]
pub(crate) enum CertificateCommand {
    /// A self-signed code-signing certificate for the key (single-certificate chains, tests)
    SelfSigned {
        #[command(flatten)]
        key: KeyArgs,
        /// Subject distinguished name, e.g. "CN=release signer,O=Example,ST=Washington,C=US"
        /// (notation pins a signer only when C, ST and O are present)
        #[arg(long)]
        subject: String,
        /// Validity in days
        #[arg(long, default_value_t = default_days::SELF_SIGNED)]
        days: u32,
        #[command(flatten)]
        out: OutArgs,
    },
    /// A PKCS#10 certificate request signed by the key, to send to your CA
    Csr {
        #[command(flatten)]
        key: KeyArgs,
        /// Subject distinguished name, e.g. "CN=release signer,O=Example,ST=Washington,C=US"
        /// (notation pins a signer only when C, ST and O are present)
        #[arg(long)]
        subject: String,
        #[command(flatten)]
        out: OutArgs,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum CaCommand {
    /// A self-signed root CA certificate for the key
    Init {
        #[command(flatten)]
        key: KeyArgs,
        /// Subject distinguished name, e.g. "CN=Example Signing Root,O=Example"
        #[arg(long)]
        subject: String,
        /// Validity in days
        #[arg(long, default_value_t = default_days::ROOT)]
        days: u32,
        /// Maximum number of intermediate CAs below this root
        #[arg(long)]
        path_len: Option<u8>,
        #[command(flatten)]
        out: OutArgs,
    },
    /// The CA key issues a leaf code-signing certificate (or an intermediate CA); writes the
    /// whole chain, leaf first, root last
    Issue {
        /// Key id of the CA's key
        #[arg(long)]
        ca_key_id: String,
        /// pluginConfig for the CA key (repeatable KEY=VALUE)
        #[arg(long = "plugin-config", value_parser = crate::operator::key_value)]
        plugin_config: Vec<(String, String)>,
        /// The CA's certificate (PEM), optionally followed by its issuers up to the root
        #[arg(long)]
        ca_cert: PathBuf,
        /// Certify the subject and key of this PKCS#10 request (its signature is checked)
        #[arg(long, group = "subject_key")]
        csr: Option<PathBuf>,
        /// Certify another key of this backend (same plugin-config)
        #[arg(long, group = "subject_key")]
        public_key_of: Option<String>,
        /// Certify the public key in this PEM file (from any plugin's `public-key`)
        #[arg(long, group = "subject_key")]
        public_key: Option<PathBuf>,
        /// Subject DN (required with --public-key-of/--public-key; overrides the CSR's)
        #[arg(long)]
        subject: Option<String>,
        /// Issue an intermediate CA instead of a leaf
        #[arg(long)]
        intermediate: bool,
        /// pathLenConstraint of the intermediate
        #[arg(long, requires = "intermediate")]
        path_len: Option<u8>,
        /// Validity in days (default: 365 for a leaf, 1825 for an intermediate; never beyond
        /// the CA certificate's own expiry)
        #[arg(long)]
        days: Option<u32>,
        #[command(flatten)]
        out: OutArgs,
    },
}

impl<B: Backend> BackendKey<B> {
    /// Signs `tbs` as X.509 wants it: ECDSA in DER, RSA-PSS raw; through the same signing core
    /// as generate-signature (normalised, self-checked under the key).
    fn sign(&mut self, tbs: &[u8]) -> Result<BitString> {
        let spec = self.public.key_spec();
        let digest = spec.hash_algorithm().digest(tbs);
        let payload = crate::Payload {
            spec,
            message: tbs,
            digest: &digest,
        };
        let fixed = crate::pipeline::sign_checked(
            &mut self.backend,
            &self.ctx,
            &self.key,
            payload,
            &self.public,
            "its public key",
        )?;
        let bytes = match spec.ecdsa_scalar_len() {
            Some(_) => ecdsa_fixed_to_der(spec, &fixed)
                .ok_or_else(|| PluginError::generic("cannot DER-encode the ECDSA signature"))?,
            None => fixed,
        };
        BitString::from_bytes(&bytes).map_err(der_error)
    }

    fn algorithm(&self) -> AlgorithmSigner {
        AlgorithmSigner {
            spki: spki_of(&self.public),
            algorithm: signature_algorithm(self.public.key_spec()),
        }
    }
}

fn der_error(e: impl std::fmt::Display) -> PluginError {
    PluginError::generic(format!("cannot encode the certificate: {e}"))
}

fn spki_of(key: &PublicKey) -> SubjectPublicKeyInfoOwned {
    SubjectPublicKeyInfoOwned::from_der(&key.to_spki_der()).expect("our own SPKI encoding parses")
}

/// The X.509 signature algorithm for a key spec: ECDSA with the spec's hash, or RSASSA-PSS
/// (hash, MGF1 on the same hash, salt = hash length).
pub(crate) fn signature_algorithm(spec: KeySpec) -> AlgorithmIdentifierOwned {
    use const_oid::ObjectIdentifier as O;
    let (oid, params) = match spec.hash_algorithm() {
        h if spec.is_rsa() => {
            let salt = h.output_len() as u8;
            let params = match h {
                HashAlgorithm::Sha256 => rsa::pkcs1::RsaPssParams::new::<sha2::Sha256>(salt),
                HashAlgorithm::Sha384 => rsa::pkcs1::RsaPssParams::new::<sha2::Sha384>(salt),
                HashAlgorithm::Sha512 => rsa::pkcs1::RsaPssParams::new::<sha2::Sha512>(salt),
            };
            let any = der::Any::encode_from(&params).expect("PSS parameters encode");
            (O::new_unwrap("1.2.840.113549.1.1.10"), Some(any))
        }
        HashAlgorithm::Sha256 => (O::new_unwrap("1.2.840.10045.4.3.2"), None),
        HashAlgorithm::Sha384 => (O::new_unwrap("1.2.840.10045.4.3.3"), None),
        HashAlgorithm::Sha512 => (O::new_unwrap("1.2.840.10045.4.3.4"), None),
    };
    AlgorithmIdentifierOwned {
        oid,
        parameters: params,
    }
}

/// What x509-cert's builders need of a signer: the public key and the algorithm. The
/// signature itself is made by the backend between `finalize` and `assemble`.
struct AlgorithmSigner {
    spki: SubjectPublicKeyInfoOwned,
    algorithm: AlgorithmIdentifierOwned,
}

#[derive(Clone)]
struct SpkiKey(SubjectPublicKeyInfoOwned);

impl spki::EncodePublicKey for SpkiKey {
    fn to_public_key_der(&self) -> spki::Result<spki::Document> {
        Ok(spki::Document::try_from(self.0.to_der()?)?)
    }
}

impl signature::Keypair for AlgorithmSigner {
    type VerifyingKey = SpkiKey;
    fn verifying_key(&self) -> SpkiKey {
        SpkiKey(self.spki.clone())
    }
}

impl spki::DynSignatureAlgorithmIdentifier for AlgorithmSigner {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.algorithm.clone())
    }
}

/// Runs one of the shared commands.
pub(crate) fn execute<B: Backend>(info: &'static PluginInfo, command: Top) -> Result<()> {
    match command {
        Top::Trust(command) => crate::trust::execute::<B>(info, command),
        Top::PublicKey { key, out } => {
            let k = BackendKey::<B>::open(info, &key.key_id, &key.plugin_config)?;
            write_output(&out, &k.public.to_spki_pem())
        }
        Top::Certificate(CertificateCommand::SelfSigned {
            key,
            subject,
            days,
            out,
        }) => {
            let subject = parse_leaf_dn(&subject)?;
            let mut k = BackendKey::<B>::open(info, &key.key_id, &key.plugin_config)?;
            let public = k.public.clone();
            let cert = issue(&mut k, None, subject, &public, days, Kind::Leaf)?;
            chain::build(
                vec![cert.clone()],
                Some((k.ctx.key_name(), &k.public)),
                SystemTime::now(),
            )?;
            write_output(&out, &cert.to_pem())
        }
        Top::Certificate(CertificateCommand::Csr { key, subject, out }) => {
            let subject = parse_leaf_dn(&subject)?;
            let mut k = BackendKey::<B>::open(info, &key.key_id, &key.plugin_config)?;
            let signer = k.algorithm();
            let mut b = RequestBuilder::new(subject, &signer).map_err(der_error)?;
            // Request the Notary leaf usages; the CA decides what it grants.
            b.add_extension(&KeyUsage(KeyUsages::DigitalSignature.into()))
                .map_err(der_error)?;
            b.add_extension(&ExtendedKeyUsage(vec![CODE_SIGNING]))
                .map_err(der_error)?;
            let tbs = b.finalize().map_err(der_error)?;
            let req = b.assemble(k.sign(&tbs)?).map_err(der_error)?;
            let der = req.to_der().map_err(der_error)?;
            write_output(&out, &pem("CERTIFICATE REQUEST", &der))
        }
        Top::Ca(CaCommand::Init {
            key,
            subject,
            days,
            path_len,
            out,
        }) => {
            let mut k = BackendKey::<B>::open(info, &key.key_id, &key.plugin_config)?;
            let public = k.public.clone();
            let cert = issue(
                &mut k,
                None,
                crate::dn::parse_subject(&subject)?,
                &public,
                days,
                Kind::Ca(path_len),
            )?;
            write_output(&out, &cert.to_pem())
        }
        Top::Ca(CaCommand::Issue {
            ca_key_id,
            plugin_config,
            ca_cert,
            csr,
            public_key_of,
            public_key,
            subject,
            intermediate,
            path_len,
            days,
            out,
        }) => {
            let mut ca = BackendKey::<B>::open(info, &ca_key_id, &plugin_config)?;
            let ca_chain = chain::load_file(&ca_cert)?;
            let ca_leaf = &ca_chain[0];
            if ca_leaf.public_key().ok().as_ref() != Some(&ca.public) {
                return Err(PluginError::validation(format!(
                    "--ca-cert {} ('{}') does not certify the key '{}' ({}); pass the \
                     certificate made for this CA key",
                    ca_cert.display(),
                    ca_leaf.subject(),
                    ca.ctx.key_name(),
                    ca.public.describe()
                )));
            }
            let not_ca = chain::ca_problems(ca_leaf);
            if !not_ca.is_empty() {
                let rules: Vec<&str> = not_ca.iter().map(|p| p.rule.as_str()).collect();
                return Err(PluginError::validation(format!(
                    "--ca-cert {} ('{}') is not a CA certificate: {}; pass the CA's own \
                     certificate (made by `ca init`, or `ca issue --intermediate`)",
                    ca_cert.display(),
                    ca_leaf.subject(),
                    rules.join("; ")
                )));
            }
            let (subject_key, csr_subject) = match (csr, public_key_of, public_key) {
                (Some(path), None, None) => {
                    let (k, s) = read_csr(&path)?;
                    (k, Some(s))
                }
                (None, Some(id), None) => (
                    BackendKey::<B>::open(info, &id, &plugin_config)?.public,
                    None,
                ),
                (None, None, Some(path)) => {
                    let bytes = read_pem_file(&path, "--public-key")?;
                    let pem = String::from_utf8(bytes).map_err(|_| {
                        PluginError::validation(format!(
                            "--public-key {} is not a PEM file (not text)",
                            path.display()
                        ))
                    })?;
                    (PublicKey::from_spki_pem(&pem)?, None)
                }
                _ => return Err(PluginError::validation(
                    "name the key to certify with one of --csr, --public-key-of or --public-key",
                )),
            };
            let subject = match (subject, csr_subject) {
                (Some(s), _) => crate::dn::parse_subject(&s)?,
                (None, Some(s)) => s,
                (None, None) => {
                    return Err(PluginError::validation(
                        "--subject is required with --public-key-of and --public-key",
                    ))
                }
            };
            let (kind, default) = if intermediate {
                (Kind::Ca(path_len), default_days::INTERMEDIATE)
            } else {
                warn_leaf_subject(&subject);
                (Kind::Leaf, default_days::LEAF)
            };
            let cert = issue(
                &mut ca,
                Some(ca_leaf),
                subject,
                &subject_key,
                days.unwrap_or(default),
                kind,
            )?;
            let mut full = vec![cert];
            full.extend(ca_chain.iter().cloned());
            let ordered = if intermediate {
                chain::order(full, None)?
            } else {
                // The chain a plugin will return: check it against every Notary rule now.
                chain::build(
                    full,
                    Some(("the certified key", &subject_key)),
                    SystemTime::now(),
                )?
            };
            write_output(&out, &chain::to_pem_bundle(&ordered))
        }
    }
}

enum Kind {
    Leaf,
    Ca(Option<u8>),
}

/// A leaf's subject: parsed, with a warning on stderr when notation cannot pin it.
fn parse_leaf_dn(s: &str) -> Result<Name> {
    let name = crate::dn::parse_subject(s)?;
    warn_leaf_subject(&name);
    Ok(name)
}

fn warn_leaf_subject(name: &Name) {
    if let Some(warning) = crate::identity::leaf_subject_warning(name) {
        eprintln!("{warning}");
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).expect("PEM encoding")
}

/// Key identifier: the leftmost 160 bits of the SHA-256 of the key (RFC 7093, method 1).
fn key_identifier(key: &PublicKey) -> OctetString {
    let spki = spki_of(key);
    let digest = HashAlgorithm::Sha256.digest(spki.subject_public_key.raw_bytes());
    OctetString::new(&digest[..20]).expect("20 bytes")
}

/// Makes one certificate for `subject_key`, signed by `signer` (self-signed when `issuer` is
/// `None`), with the Notary extensions of `kind`.
fn issue<B: Backend>(
    signer: &mut BackendKey<B>,
    issuer: Option<&Certificate>,
    subject: Name,
    subject_key: &PublicKey,
    days: u32,
    kind: Kind,
) -> Result<Certificate> {
    if days == 0 {
        return Err(PluginError::validation("--days must be at least 1"));
    }
    let now = SystemTime::now();
    let mut not_after = now + Duration::from_secs(u64::from(days) * 86400);
    if let Some(ca) = issuer {
        let ca_end = ca
            .x509()
            .tbs_certificate
            .validity
            .not_after
            .to_system_time();
        if not_after > ca_end {
            eprintln!(
                "note: validity shortened to the CA certificate's expiry ({})",
                ca.x509().tbs_certificate.validity.not_after
            );
            not_after = ca_end;
        }
    }
    let validity = Validity {
        not_before: Time::try_from(now - Duration::from_secs(300)).map_err(der_error)?,
        not_after: Time::try_from(not_after).map_err(der_error)?,
    };
    // 128 random bits, positive (top bit clear) and of full length (first byte not zero).
    let mut serial: [u8; 16] = rand::random();
    serial[0] = (serial[0] & 0x7f).max(1);
    let algorithm = signer.algorithm();
    let mut b = CertificateBuilder::new(
        Profile::Manual {
            issuer: issuer.map(|c| c.x509().tbs_certificate.subject.clone()),
        },
        SerialNumber::new(&serial).map_err(der_error)?,
        validity,
        subject,
        spki_of(subject_key),
        &algorithm,
    )
    .map_err(der_error)?;
    match kind {
        Kind::Leaf => {
            b.add_extension(&BasicConstraints {
                ca: false,
                path_len_constraint: None,
            })
            .map_err(der_error)?;
            b.add_extension(&KeyUsage(KeyUsages::DigitalSignature.into()))
                .map_err(der_error)?;
            b.add_extension(&ExtendedKeyUsage(vec![CODE_SIGNING]))
                .map_err(der_error)?;
        }
        Kind::Ca(path_len) => {
            b.add_extension(&BasicConstraints {
                ca: true,
                path_len_constraint: path_len,
            })
            .map_err(der_error)?;
            b.add_extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))
                .map_err(der_error)?;
        }
    }
    b.add_extension(&SubjectKeyIdentifier(key_identifier(subject_key)))
        .map_err(der_error)?;
    b.add_extension(&AuthorityKeyIdentifier {
        key_identifier: Some(key_identifier(&signer.public)),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
    .map_err(der_error)?;
    let tbs = b.finalize().map_err(der_error)?;
    let cert = b.assemble(signer.sign(&tbs)?).map_err(der_error)?;
    Certificate::from_der(&cert.to_der().map_err(der_error)?, "the new certificate")
}

/// The bytes of a PEM file an option names (a CSR, a public key): bounded like a certificate
/// file, and refused without blocking when it is a FIFO or a device.
fn read_pem_file(path: &Path, option: &str) -> Result<Vec<u8>> {
    crate::bounded::read_file(path, crate::bounded::MAX_CERTIFICATE_FILE_BYTES, option)
}

/// Reads a PEM CSR, checks its self-signature, returns its key and subject.
fn read_csr(path: &Path) -> Result<(PublicKey, Name)> {
    let text = read_pem_file(path, "--csr")?;
    let (label, der) = der::pem::decode_vec(&text).map_err(|e| {
        PluginError::validation(format!("{} is not a PEM file: {e}", path.display()))
    })?;
    if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
        return Err(PluginError::validation(format!(
            "{} holds a PEM '{label}', not a CERTIFICATE REQUEST",
            path.display()
        )));
    }
    let req = CertReq::from_der(&der).map_err(|e| {
        PluginError::validation(format!(
            "{} is not a valid PKCS#10 request: {e}",
            path.display()
        ))
    })?;
    let key = PublicKey::try_from(&req.info.public_key)?;
    let info = req.info.to_der().map_err(der_error)?;
    let sig = req.signature.as_bytes().unwrap_or_default();
    if crate::chain::verify_signed(&info, &req.algorithm, sig, &key).is_err() {
        return Err(PluginError::validation(format!(
            "the signature of the request in {} does not verify with its own key: it was altered \
             or not made by that key",
            path.display()
        )));
    }
    Ok((key, req.info.subject))
}
