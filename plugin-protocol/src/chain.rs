//! Certificate chains: loading, ordering, and every rule notation enforces at sign and verify
//! time. Each failure names the certificate (its subject) and the rule it breaks.

use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use rsa::traits::PublicKeyParts;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};

use crate::error::{PluginError, Result};
use crate::public_key::oid as key_oid;
use crate::{HashAlgorithm, PublicKey};

mod oid {
    use const_oid::ObjectIdentifier as O;
    pub const KEY_USAGE: O = O::new_unwrap("2.5.29.15");
    pub const SUBJECT_KEY_ID: O = O::new_unwrap("2.5.29.14");
    pub const AUTHORITY_KEY_ID: O = O::new_unwrap("2.5.29.35");
    pub const BASIC_CONSTRAINTS: O = O::new_unwrap("2.5.29.19");
    pub const EXT_KEY_USAGE: O = O::new_unwrap("2.5.29.37");
    pub const CODE_SIGNING: O = O::new_unwrap("1.3.6.1.5.5.7.3.3");
    pub const SERVER_AUTH: O = O::new_unwrap("1.3.6.1.5.5.7.3.1");
    pub const CLIENT_AUTH: O = O::new_unwrap("1.3.6.1.5.5.7.3.2");
    pub const EMAIL_PROTECTION: O = O::new_unwrap("1.3.6.1.5.5.7.3.4");
    pub const TIME_STAMPING: O = O::new_unwrap("1.3.6.1.5.5.7.3.8");
    pub const OCSP_SIGNING: O = O::new_unwrap("1.3.6.1.5.5.7.3.9");
    pub const ANY_EKU: O = O::new_unwrap("2.5.29.37.0");
    pub const SHA256_RSA: O = O::new_unwrap("1.2.840.113549.1.1.11");
    pub const SHA384_RSA: O = O::new_unwrap("1.2.840.113549.1.1.12");
    pub const SHA512_RSA: O = O::new_unwrap("1.2.840.113549.1.1.13");
    pub const SHA1_RSA: O = O::new_unwrap("1.2.840.113549.1.1.5");
    pub const MD5_RSA: O = O::new_unwrap("1.2.840.113549.1.1.4");
    pub const RSASSA_PSS: O = O::new_unwrap("1.2.840.113549.1.1.10");
    pub const ECDSA_SHA1: O = O::new_unwrap("1.2.840.10045.4.1");
    pub const ECDSA_SHA256: O = O::new_unwrap("1.2.840.10045.4.3.2");
    pub const ECDSA_SHA384: O = O::new_unwrap("1.2.840.10045.4.3.3");
    pub const ECDSA_SHA512: O = O::new_unwrap("1.2.840.10045.4.3.4");
    pub const DSA_SHA1: O = O::new_unwrap("1.2.840.10040.4.3");
    pub const MGF1: O = O::new_unwrap("1.2.840.113549.1.1.8");
    pub const SHA1: O = O::new_unwrap("1.3.14.3.2.26");
    pub const SHA256: O = O::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const SHA384: O = O::new_unwrap("2.16.840.1.101.3.4.2.2");
    pub const SHA512: O = O::new_unwrap("2.16.840.1.101.3.4.2.3");
}

/// A parsed X.509 certificate with its DER.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    cert: x509_cert::Certificate,
    subject: String,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Certificate({})", self.subject)
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Certificate {
    /// Parses one DER certificate; `source` names where it came from in errors.
    pub fn from_der(der: &[u8], source: &str) -> Result<Self> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| {
            PluginError::validation(format!("{source} is not a valid X.509 certificate: {e}"))
        })?;
        let subject = name_string(&cert.tbs_certificate.subject);
        Ok(Self {
            der: der.to_vec(),
            cert,
            subject,
        })
    }
    /// The DER exactly as it was read, for the response and for byte comparisons.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The parsed certificate, for fields this type has no accessor for.
    pub fn x509(&self) -> &x509_cert::Certificate {
        &self.cert
    }
    /// The subject DN as RFC 4514 text (`CN=release,O=Example`).
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// The issuer DN as RFC 4514 text.
    pub fn issuer(&self) -> String {
        name_string(&self.cert.tbs_certificate.issuer)
    }
    /// One PEM `CERTIFICATE` block.
    pub fn to_pem(&self) -> String {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.der)
            .expect("PEM encoding of DER cannot fail")
    }
    /// The subject public key, if it is one notation can sign with.
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::try_from(&self.cert.tbs_certificate.subject_public_key_info)
            .map_err(|e| e.context(format_args!("certificate '{}'", self.subject)))
    }
    fn self_issued(&self) -> bool {
        self.cert.tbs_certificate.subject == self.cert.tbs_certificate.issuer
    }
    fn issued(&self, child: &Certificate) -> bool {
        self.cert.tbs_certificate.subject == child.cert.tbs_certificate.issuer
    }
    /// The authority key identifier's keyIdentifier, if the certificate has one.
    fn authority_key_id(&self) -> Option<Vec<u8>> {
        let (_, aki) = self.extension::<AuthorityKeyIdentifier>(oid::AUTHORITY_KEY_ID)?;
        Some(aki.ok()?.key_identifier?.as_bytes().to_vec())
    }
    /// The subject key identifier, if the certificate has one.
    fn subject_key_id(&self) -> Option<Vec<u8>> {
        let (_, ski) = self.extension::<SubjectKeyIdentifier>(oid::SUBJECT_KEY_ID)?;
        Some(ski.ok()?.0.as_bytes().to_vec())
    }
    fn extension<T: for<'a> Decode<'a>>(
        &self,
        id: ObjectIdentifier,
    ) -> Option<(bool, std::result::Result<T, der::Error>)> {
        self.cert
            .tbs_certificate
            .extensions
            .as_ref()?
            .iter()
            .find(|e| e.extn_id == id)
            .map(|e| (e.critical, T::from_der(e.extn_value.as_bytes())))
    }
}

fn name_string(name: &x509_cert::name::Name) -> String {
    let s = crate::dn::to_string(name);
    if s.is_empty() {
        "(empty subject)".to_owned()
    } else {
        s
    }
}

/// Parses certificates from PEM (any number of `CERTIFICATE` blocks) or a single DER cert.
pub fn parse_pem_or_der(bytes: &[u8], source: &str) -> Result<Vec<Certificate>> {
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN"));
    let Some(text) = text else {
        return Ok(vec![Certificate::from_der(bytes, source)?]);
    };
    let mut certs = Vec::new();
    let mut rest = text;
    let mut blocks = 0;
    while let Some(start) = rest.find("-----BEGIN ") {
        blocks += 1;
        let block = &rest[start..];
        let end_marker = block.find("-----END ").ok_or_else(|| {
            PluginError::validation(format!("{source}: a PEM block has no END line"))
        })?;
        let end = block[end_marker..]
            .find('\n')
            .map(|i| end_marker + i + 1)
            .unwrap_or(block.len());
        let pem_block = &block[..end];
        let (label, der) = der::pem::decode_vec(pem_block.as_bytes()).map_err(|e| {
            PluginError::validation(format!("{source}: invalid PEM block #{blocks}: {e}"))
        })?;
        if label == "CERTIFICATE" {
            let name = format!("{source} (certificate #{})", certs.len() + 1);
            certs.push(Certificate::from_der(&der, &name)?);
        }
        rest = &block[end..];
    }
    if certs.is_empty() {
        return Err(PluginError::validation(format!(
            "{source} holds no PEM CERTIFICATE block"
        )));
    }
    Ok(certs)
}

/// Certificates in PEM or DER (a secret's value) as DER blobs, the form
/// [`crate::Backend::certificate_chain`] returns.
pub fn parse_to_der(bytes: &[u8], source: &str) -> Result<Vec<Vec<u8>>> {
    Ok(parse_pem_or_der(bytes, source)?
        .into_iter()
        .map(|c| c.der().to_vec())
        .collect())
}

/// Loads certificates from a PEM or DER file.
pub fn load_file(path: &Path) -> Result<Vec<Certificate>> {
    let bytes = crate::bounded::read_file(
        path,
        crate::bounded::MAX_CERTIFICATE_FILE_BYTES,
        "certificate file",
    )?;
    parse_pem_or_der(&bytes, &format!("certificate file {}", path.display()))
}

/// Writes certificates as a PEM bundle (leaf first).
pub fn to_pem_bundle(chain: &[Certificate]) -> String {
    chain.iter().map(Certificate::to_pem).collect()
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainProblem {
    /// The subject of the certificate at fault (or the chain as a whole).
    pub subject: String,
    /// The rule it breaks and what to do, as a user reads it.
    pub rule: String,
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "certificate '{}': {}", self.subject, self.rule)
    }
}

fn problem(cert: &Certificate, rule: impl Into<String>) -> ChainProblem {
    ChainProblem {
        subject: cert.subject.clone(),
        rule: rule.into(),
    }
}

/// Orders certificates leaf -> root, from a pool in any order: copies are dropped, and where
/// several CA certificates carry the issuer's name (a key rollover) the one whose key signed
/// the certificate below it is taken (the one whose subject key identifier matches the
/// authority key identifier first); the others are left out. The leaf is
/// the certificate holding `leaf_key` when one is given (the backend's key), otherwise the one
/// that issued no other. Fails naming the missing link, an unrelated certificate, or the
/// key/certificate mismatch.
pub fn order(
    certs: Vec<Certificate>,
    leaf_key: Option<(&str, &PublicKey)>,
) -> Result<Vec<Certificate>> {
    let mut rest: Vec<Certificate> = Vec::with_capacity(certs.len());
    for cert in certs {
        if !rest.contains(&cert) {
            rest.push(cert);
        }
    }
    let leaf_index = match leaf_key {
        Some((key_id, key)) => rest
            .iter()
            .position(|c| c.public_key().ok().as_ref() == Some(key))
            .ok_or_else(|| key_mismatch(key_id, key, &rest))?,
        None => rest
            .iter()
            .position(|c| {
                !rest
                    .iter()
                    .any(|o| o != c && c.issued(o) && !o.self_issued())
            })
            .unwrap_or(0),
    };
    let mut chain = vec![rest.remove(leaf_index)];
    loop {
        let current = chain.last().expect("chain is never empty");
        if current.self_issued() {
            break;
        }
        match pick_issuer(current, &rest) {
            Some(i) => chain.push(rest.remove(i)),
            None => {
                return Err(PluginError::validation(format!(
                    "the certificate chain is incomplete: no certificate for '{}', the issuer of \
                     '{}'; add the issuing CA certificates up to and including the self-signed \
                     root (certificate_chain or ca_certs)",
                    current.issuer(),
                    current.subject
                )))
            }
        }
    }
    // What the path did not take but shares a name with a certificate on it: the other key of
    // a CA rollover (an old root or intermediate), or a copy. It is not part of the chain.
    rest.retain(|c| {
        !chain
            .iter()
            .any(|p| p.cert.tbs_certificate.subject == c.cert.tbs_certificate.subject)
    });
    if let Some(extra) = rest.first() {
        return Err(PluginError::validation(format!(
            "certificate '{}' is not part of the chain of '{}' (leaf -> root); remove it",
            extra.subject, chain[0].subject
        )));
    }
    Ok(chain)
}

/// The issuer of `child` among `pool`, like a path builder: of the certificates named as its
/// issuer, the one whose subject key identifier matches the child's authority key identifier
/// and whose key verifies the child's signature; else one whose key verifies it; else the first
/// with the name (the chain rules then say why its signature fails). Several CA certificates
/// share a name after a key rollover (an old and a new root, two intermediates).
fn pick_issuer(child: &Certificate, pool: &[Certificate]) -> Option<usize> {
    let named: Vec<usize> = (0..pool.len()).filter(|&i| pool[i].issued(child)).collect();
    if named.len() < 2 {
        return named.first().copied();
    }
    let authority = child.authority_key_id();
    let verifies = |i: &usize| check_signature(child, &pool[*i]).is_ok();
    named
        .iter()
        .filter(|&&i| match (&authority, pool[i].subject_key_id()) {
            (Some(a), Some(s)) => *a == s,
            _ => false,
        })
        .find(|i| verifies(i))
        .or_else(|| named.iter().find(|i| verifies(i)))
        .or(named.first())
        .copied()
}

fn key_mismatch(key_id: &str, key: &PublicKey, certs: &[Certificate]) -> PluginError {
    let leafish = certs
        .iter()
        .find(|c| {
            !certs
                .iter()
                .any(|o| o != *c && c.issued(o) && !o.self_issued())
        })
        .or(certs.first());
    let held = leafish
        .map(|c| match c.public_key() {
            Ok(k) => format!(
                "its leaf '{}' certifies a different {}",
                c.subject,
                k.describe()
            ),
            Err(e) => format!(
                "its leaf '{}' certifies an unusable key ({})",
                c.subject, e.message
            ),
        })
        .unwrap_or_default();
    PluginError::validation(format!(
        "the certificate chain does not belong to key '{key_id}', an {}: {held}; use the \
         certificate issued for this key",
        key.describe()
    ))
}

/// Checks an ordered chain (leaf first) against every Notary rule at time `at`.
pub fn validate(chain: &[Certificate], at: SystemTime) -> Vec<ChainProblem> {
    let mut problems = Vec::new();
    let Some(root) = chain.last() else {
        return vec![ChainProblem {
            subject: "(chain)".into(),
            rule: "the certificate chain is empty".into(),
        }];
    };
    if !root.self_issued() {
        problems.push(problem(
            root,
            "the chain does not end in a self-signed root certificate; include the root",
        ));
    }
    for (i, cert) in chain.iter().enumerate() {
        let is_leaf = i == 0;
        let is_root = i == chain.len() - 1;
        check_validity(cert, at, &mut problems);
        check_key_size(cert, &mut problems);
        check_algorithm_fields(cert, &mut problems);
        check_rsa_key_encoding(cert, &mut problems);
        check_ec_point_encoding(cert, &mut problems);
        check_serial_number(cert, &mut problems);
        check_extensions_unique(cert, &mut problems);
        let issuer = if is_root { cert } else { &chain[i + 1] };
        if !is_root && cert.self_issued() {
            problems.push(problem(
                cert,
                "is self-signed but is not the last certificate; a chain has exactly one self-signed certificate, its root",
            ));
        }
        if let Err(why) = check_signature(cert, issuer) {
            problems.push(problem(cert, why));
        }
        if is_leaf {
            check_leaf(cert, &mut problems);
        } else {
            // Intermediate CAs between this CA and the leaf.
            let below = i - 1;
            check_ca(cert, below, &mut problems);
        }
    }
    problems
}

/// Orders, validates and checks the leaf key: the chain a plugin may return.
pub fn build(
    certs: Vec<Certificate>,
    leaf_key: Option<(&str, &PublicKey)>,
    at: SystemTime,
) -> Result<Vec<Certificate>> {
    let chain = order(certs, leaf_key)?;
    let problems = validate(&chain, at);
    if problems.is_empty() {
        return Ok(chain);
    }
    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
    Err(PluginError::validation(format!(
        "the certificate chain breaks notation's rules: {}",
        list.join("; ")
    )))
}

fn check_validity(cert: &Certificate, at: SystemTime, out: &mut Vec<ChainProblem>) {
    let v = &cert.cert.tbs_certificate.validity;
    if at < v.not_before.to_system_time() {
        out.push(problem(
            cert,
            format!("is not valid before {}", v.not_before),
        ));
    }
    if at > v.not_after.to_system_time() {
        out.push(problem(cert, format!("expired on {}", v.not_after)));
    }
}

/// RFC 5280 4.1.1.2: the algorithm outside the signed part must be the one inside it. Go's
/// crypto/x509 (notation) compares the two encodings and refuses to parse the certificate when
/// they differ, so notation would fail on it after the plugin signed.
fn check_algorithm_fields(cert: &Certificate, out: &mut Vec<ChainProblem>) {
    let (outer, inner) = (
        &cert.cert.signature_algorithm,
        &cert.cert.tbs_certificate.signature,
    );
    if outer == inner {
        return;
    }
    let differ = if outer.oid == inner.oid {
        format!("both {} but with different parameters", outer.oid)
    } else {
        format!("{} outside it, {} inside", outer.oid, inner.oid)
    };
    out.push(problem(
        cert,
        format!(
            "its signatureAlgorithm differs from the signature algorithm its tbsCertificate \
             names ({differ}); notation refuses to read such a certificate; reissue it"
        ),
    ));
}

/// How Go's crypto/x509 (notation) reads an RSA key in a certificate: only as rsaEncryption,
/// with the NULL parameters RFC 3279 2.3.1 requires. An id-RSASSA-PSS key is an unknown
/// algorithm there (notation cannot verify with it, or sign with the leaf's), and missing
/// parameters fail the certificate's parsing.
fn check_rsa_key_encoding(cert: &Certificate, out: &mut Vec<ChainProblem>) {
    let algorithm = &cert.cert.tbs_certificate.subject_public_key_info.algorithm;
    if algorithm.oid == key_oid::RSASSA_PSS {
        out.push(problem(
            cert,
            "has an RSA key marked RSASSA-PSS only (id-RSASSA-PSS), which notation cannot \
             use; reissue the certificate with the key as rsaEncryption (the key itself can \
             stay)",
        ));
    } else if algorithm.oid == key_oid::RSA_ENCRYPTION
        && algorithm.parameters != Some(der::asn1::Any::null())
    {
        out.push(problem(
            cert,
            "has an RSA key without the NULL parameters RFC 3279 requires of rsaEncryption, \
             and notation refuses to read such a certificate; reissue it",
        ));
    }
}

/// Go's crypto/x509 reads an EC key's point only uncompressed (SEC 1 2.3.3, first byte 4), and
/// refuses to read a certificate whose point is compressed (first byte 2 or 3).
fn check_ec_point_encoding(cert: &Certificate, out: &mut Vec<ChainProblem>) {
    let spki = &cert.cert.tbs_certificate.subject_public_key_info;
    if spki.algorithm.oid == key_oid::EC_PUBLIC_KEY
        && matches!(spki.subject_public_key.raw_bytes().first(), Some(2 | 3))
    {
        out.push(problem(
            cert,
            "has an EC key whose point is compressed, which notation refuses to read; reissue \
             the certificate with the point uncompressed (the key itself can stay)",
        ));
    }
}

/// RFC 5280 4.1.2.2: a serial number is positive. Go's crypto/x509 refuses to read a
/// certificate with a negative one since Go 1.23, and notation with it.
fn check_serial_number(cert: &Certificate, out: &mut Vec<ChainProblem>) {
    let serial = cert.cert.tbs_certificate.serial_number.as_bytes();
    if serial.first().is_some_and(|b| b & 0x80 != 0) {
        out.push(problem(
            cert,
            "has a negative serial number, which notation refuses to read (RFC 5280 requires \
             a positive one); reissue it",
        ));
    }
}

/// RFC 5280 4.2: an extension appears at most once. Go's crypto/x509 refuses to read a
/// certificate that repeats one, and the rules here would read only the first.
fn check_extensions_unique(cert: &Certificate, out: &mut Vec<ChainProblem>) {
    let ids: Vec<ObjectIdentifier> = cert
        .cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .map(|e| e.extn_id)
        .collect();
    let mut repeated: Vec<String> = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let name = id.to_string();
        if ids[..i].contains(id) && !repeated.contains(&name) {
            repeated.push(name);
        }
    }
    if !repeated.is_empty() {
        out.push(problem(
            cert,
            format!(
                "repeats the extension {}, which notation refuses to read (RFC 5280 allows each \
                 extension once); reissue it",
                repeated.join(", ")
            ),
        ));
    }
}

fn check_key_size(cert: &Certificate, out: &mut Vec<ChainProblem>) {
    match IssuerKey::of(cert) {
        Ok(IssuerKey::Rsa(k)) if k.n().bits() < 2048 => out.push(problem(
            cert,
            format!(
                "has an RSA-{} key; notation requires at least 2048 bits",
                k.n().bits()
            ),
        )),
        Ok(_) => {}
        Err(why) => out.push(problem(cert, why)),
    }
}

fn check_leaf(cert: &Certificate, out: &mut Vec<ChainProblem>) {
    match cert.extension::<KeyUsage>(oid::KEY_USAGE) {
        None => out.push(problem(
            cert,
            "leaf has no keyUsage extension; it must be present, critical, with digitalSignature",
        )),
        Some((_, Err(e))) => out.push(problem(
            cert,
            format!("leaf keyUsage cannot be parsed: {e}"),
        )),
        Some((critical, Ok(ku))) => {
            if !critical {
                out.push(problem(cert, "leaf keyUsage must be marked critical"));
            }
            if !ku.digital_signature() {
                out.push(problem(cert, "leaf keyUsage lacks digitalSignature"));
            }
            let forbidden = [
                (KeyUsages::KeyEncipherment, "keyEncipherment"),
                (KeyUsages::DataEncipherment, "dataEncipherment"),
                (KeyUsages::KeyAgreement, "keyAgreement"),
                (KeyUsages::KeyCertSign, "keyCertSign"),
                (KeyUsages::CRLSign, "cRLSign"),
                (KeyUsages::EncipherOnly, "encipherOnly"),
                (KeyUsages::DecipherOnly, "decipherOnly"),
            ];
            let bad: Vec<&str> = forbidden
                .iter()
                .filter(|(f, _)| ku.0.contains(*f))
                .map(|(_, n)| *n)
                .collect();
            if !bad.is_empty() {
                out.push(problem(
                    cert,
                    format!(
                        "leaf keyUsage must not include {} (a code-signing leaf allows digitalSignature only)",
                        bad.join(", ")
                    ),
                ));
            }
        }
    }
    match cert.extension::<BasicConstraints>(oid::BASIC_CONSTRAINTS) {
        Some((_, Ok(bc))) if bc.ca => out.push(problem(
            cert,
            "leaf has basicConstraints cA=true; a signing leaf must not be a CA",
        )),
        Some((_, Err(e))) => out.push(problem(
            cert,
            format!("basicConstraints cannot be parsed: {e}"),
        )),
        _ => {}
    }
    match cert.extension::<ExtendedKeyUsage>(oid::EXT_KEY_USAGE) {
        Some((_, Ok(eku))) => {
            let forbidden = [
                (oid::SERVER_AUTH, "serverAuth"),
                (oid::CLIENT_AUTH, "clientAuth"),
                (oid::EMAIL_PROTECTION, "emailProtection"),
                (oid::TIME_STAMPING, "timeStamping"),
                (oid::OCSP_SIGNING, "OCSPSigning"),
                (oid::ANY_EKU, "anyExtendedKeyUsage"),
            ];
            let bad: Vec<&str> = forbidden
                .iter()
                .filter(|(o, _)| eku.0.contains(o))
                .map(|(_, n)| *n)
                .collect();
            if !bad.is_empty() {
                out.push(problem(
                    cert,
                    format!(
                        "leaf extendedKeyUsage must not include {}; use codeSigning only",
                        bad.join(", ")
                    ),
                ));
            }
            let _ = oid::CODE_SIGNING; // allowed, and the only usage our tooling sets
        }
        Some((_, Err(e))) => out.push(problem(
            cert,
            format!("extendedKeyUsage cannot be parsed: {e}"),
        )),
        None => {}
    }
}

/// The CA rules for one certificate on its own (basicConstraints cA=true and keyUsage
/// keyCertSign, both critical): what `ca issue` asks of its `--ca-cert`.
pub(crate) fn ca_problems(cert: &Certificate) -> Vec<ChainProblem> {
    let mut out = Vec::new();
    check_ca(cert, 0, &mut out);
    out
}

fn check_ca(cert: &Certificate, cas_below: usize, out: &mut Vec<ChainProblem>) {
    match cert.extension::<BasicConstraints>(oid::BASIC_CONSTRAINTS) {
        None => out.push(problem(
            cert,
            "CA certificate has no basicConstraints; it must be present, critical, with cA=true",
        )),
        Some((_, Err(e))) => out.push(problem(
            cert,
            format!("basicConstraints cannot be parsed: {e}"),
        )),
        Some((critical, Ok(bc))) => {
            if !critical {
                out.push(problem(cert, "CA basicConstraints must be marked critical"));
            }
            if !bc.ca {
                out.push(problem(
                    cert,
                    "issues another certificate in the chain but its basicConstraints say cA=false",
                ));
            }
            if let Some(len) = bc.path_len_constraint {
                if cas_below > usize::from(len) {
                    out.push(problem(
                        cert,
                        format!("pathLenConstraint {len} allows {len} intermediate CA(s) below it, but the chain has {cas_below}"),
                    ));
                }
            }
        }
    }
    match cert.extension::<KeyUsage>(oid::KEY_USAGE) {
        None => out.push(problem(
            cert,
            "CA certificate has no keyUsage; it must be present, critical, with keyCertSign",
        )),
        Some((_, Err(e))) => out.push(problem(cert, format!("keyUsage cannot be parsed: {e}"))),
        Some((critical, Ok(ku))) => {
            if !critical {
                out.push(problem(cert, "CA keyUsage must be marked critical"));
            }
            if !ku.key_cert_sign() {
                out.push(problem(cert, "CA keyUsage lacks keyCertSign"));
            }
        }
    }
}

/// The largest RSA modulus of a chain's certificate that is verified: Go (notation) and
/// OpenSSL verify certificates signed by RSA-8192 roots, which the `rsa` crate's default bound
/// (4096 bits, the largest *signing* key notation allows) would call malformed. 16384 bits is
/// OpenSSL's own bound, and keeps one verification within milliseconds.
const MAX_CERTIFICATE_RSA_BITS: usize = 16384;

/// Keys of issuing certificates: any RSA size up to [`MAX_CERTIFICATE_RSA_BITS`] (the lower
/// bound is checked separately) or the three NIST curves.
enum IssuerKey {
    Rsa(rsa::RsaPublicKey),
    Ec(PublicKey),
}

impl IssuerKey {
    fn of(cert: &Certificate) -> std::result::Result<Self, String> {
        let spki = &cert.cert.tbs_certificate.subject_public_key_info;
        if spki.algorithm.oid == key_oid::RSA_ENCRYPTION
            || spki.algorithm.oid == key_oid::RSASSA_PSS
        {
            let invalid = |e: &dyn fmt::Display| format!("has an invalid RSA public key: {e}");
            let key = rsa::pkcs1::RsaPublicKey::from_der(spki.subject_public_key.raw_bytes())
                .map_err(|e| invalid(&e))?;
            let n = rsa::BigUint::from_bytes_be(key.modulus.as_bytes());
            if n.bits() > MAX_CERTIFICATE_RSA_BITS {
                return Err(format!(
                    "has an RSA-{} key, larger than the {MAX_CERTIFICATE_RSA_BITS} bits a \
                     certificate's key may have",
                    n.bits()
                ));
            }
            let e = rsa::BigUint::from_bytes_be(key.public_exponent.as_bytes());
            return rsa::RsaPublicKey::new_with_max_size(n, e, MAX_CERTIFICATE_RSA_BITS)
                .map(Self::Rsa)
                .map_err(|e| invalid(&e));
        }
        PublicKey::try_from(spki)
            .map(Self::Ec)
            .map_err(|e| format!("has an unusable public key: {}", e.message))
    }
}

/// Verifies that `issuer`'s key signed `cert` (any certificate: a chain's, or a YubiKey's PIV
/// attestation and the f9 certificate that issued it). Refuses SHA-1 and MD5. The error says
/// why, naming the certificates.
pub fn check_signature(
    cert: &Certificate,
    issuer: &Certificate,
) -> std::result::Result<(), String> {
    let tbs = cert
        .cert
        .tbs_certificate
        .to_der()
        .map_err(|e| format!("cannot re-encode: {e}"))?;
    let sig = cert
        .cert
        .signature
        .as_bytes()
        .ok_or("signature is not a whole number of bytes")?;
    let key = IssuerKey::of(issuer).map_err(|why| format!("issuer '{}' {why}", issuer.subject))?;
    let signer = if std::ptr::eq(cert, issuer) {
        "its own key (self-signed)".to_owned()
    } else {
        format!("the key of '{}'", issuer.subject)
    };
    verify_with(&tbs, &cert.cert.signature_algorithm, sig, &key).map_err(|why| match why {
        SignedDataError::DoesNotVerify => format!("signature does not verify with {signer}"),
        SignedDataError::Refused(why) => why,
    })
}

/// Why signed data (a certificate, a CSR) does not verify.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SignedDataError {
    DoesNotVerify,
    /// The algorithm is refused or unsupported; the text says which and why.
    Refused(String),
}

/// Verifies an X.509-style signature (`alg` over `data`) with `key`.
pub(crate) fn verify_signed(
    data: &[u8],
    alg: &spki::AlgorithmIdentifierOwned,
    sig: &[u8],
    key: &PublicKey,
) -> std::result::Result<(), SignedDataError> {
    let key = match key {
        PublicKey::Rsa(k) => IssuerKey::Rsa(k.clone()),
        ec => IssuerKey::Ec(ec.clone()),
    };
    verify_with(data, alg, sig, &key)
}

/// A digest's name in messages: the SHA-2 hashes by name, SHA-1 too, others by OID.
fn hash_name(id: ObjectIdentifier) -> String {
    match id {
        oid::SHA1 => "SHA-1".into(),
        oid::SHA256 => HashAlgorithm::Sha256.as_str().into(),
        oid::SHA384 => HashAlgorithm::Sha384.as_str().into(),
        oid::SHA512 => HashAlgorithm::Sha512.as_str().into(),
        other => other.to_string(),
    }
}

fn verify_with(
    data: &[u8],
    alg: &spki::AlgorithmIdentifierOwned,
    sig: &[u8],
    key: &IssuerKey,
) -> std::result::Result<(), SignedDataError> {
    use SignedDataError::{DoesNotVerify, Refused};
    match alg.oid {
        oid::SHA1_RSA | oid::ECDSA_SHA1 | oid::DSA_SHA1 | oid::MD5_RSA => Err(Refused(
            "is signed with SHA-1 or MD5, which notation refuses; reissue it with SHA-256 or stronger".into(),
        )),
        oid::SHA256_RSA | oid::SHA384_RSA | oid::SHA512_RSA => {
            let IssuerKey::Rsa(k) = key else { return Err(DoesNotVerify) };
            let (hash, scheme) = match alg.oid {
                oid::SHA256_RSA => (HashAlgorithm::Sha256, rsa::Pkcs1v15Sign::new::<sha2::Sha256>()),
                oid::SHA384_RSA => (HashAlgorithm::Sha384, rsa::Pkcs1v15Sign::new::<sha2::Sha384>()),
                _ => (HashAlgorithm::Sha512, rsa::Pkcs1v15Sign::new::<sha2::Sha512>()),
            };
            k.verify(scheme, &hash.digest(data), sig).map_err(|_| DoesNotVerify)
        }
        oid::RSASSA_PSS => {
            let IssuerKey::Rsa(k) = key else { return Err(DoesNotVerify) };
            let params = alg
                .parameters
                .as_ref()
                .ok_or_else(|| Refused("RSASSA-PSS signature without parameters".into()))?
                .decode_as::<rsa::pkcs1::RsaPssParams>()
                .map_err(|e| Refused(format!("invalid RSASSA-PSS parameters: {e}")))?;
            let (hash, scheme) = match params.hash.oid {
                oid::SHA256 => (HashAlgorithm::Sha256, rsa::Pss::new::<sha2::Sha256>()),
                oid::SHA384 => (HashAlgorithm::Sha384, rsa::Pss::new::<sha2::Sha384>()),
                oid::SHA512 => (HashAlgorithm::Sha512, rsa::Pss::new::<sha2::Sha512>()),
                other => {
                    return Err(Refused(format!(
                        "RSASSA-PSS with hash {other} is not supported; use SHA-256 or stronger"
                    )))
                }
            };
            // Go's crypto/x509 knows RSASSA-PSS only with MGF1 over the message's own hash and
            // a salt as long as that hash (RFC 8017 9.1's recommendation); any other form is
            // an unknown algorithm to notation, which then cannot verify the certificate.
            let mgf_hash = params.mask_gen.parameters.as_ref().map(|h| h.oid);
            if params.mask_gen.oid != oid::MGF1 || mgf_hash != Some(params.hash.oid) {
                let mgf = match mgf_hash {
                    Some(h) if params.mask_gen.oid == oid::MGF1 => {
                        format!("MGF1 over {}", hash_name(h))
                    }
                    _ => format!("mask generation function {}", params.mask_gen.oid),
                };
                return Err(Refused(format!(
                    "uses RSASSA-PSS with {} and {mgf}, which notation cannot verify: it \
                     requires MGF1 over the same hash; reissue it",
                    hash.as_str()
                )));
            }
            let hash_len = hash.output_len();
            if usize::from(params.salt_len) != hash_len {
                return Err(Refused(format!(
                    "uses RSASSA-PSS with {} and a {}-byte salt, which notation cannot verify: \
                     it requires a salt as long as the hash ({hash_len} bytes); reissue it",
                    hash.as_str(),
                    params.salt_len
                )));
            }
            k.verify(scheme, &hash.digest(data), sig).map_err(|_| DoesNotVerify)
        }
        oid::ECDSA_SHA256 | oid::ECDSA_SHA384 | oid::ECDSA_SHA512 => {
            let IssuerKey::Ec(k) = key else { return Err(DoesNotVerify) };
            let hash = match alg.oid {
                oid::ECDSA_SHA256 => HashAlgorithm::Sha256,
                oid::ECDSA_SHA384 => HashAlgorithm::Sha384,
                _ => HashAlgorithm::Sha512,
            };
            let fixed = crate::signature::ecdsa_der_to_fixed(k.key_spec(), sig).ok_or(DoesNotVerify)?;
            // A digest shorter than the curve's order is the number it spells (SEC 1 4.1.4),
            // as Go and OpenSSL verify it. The ecdsa crate refuses one under half the field
            // (SHA-256 under a P-521 CA); zeros on its left, where that crate would put them
            // itself, spell the same number.
            let mut digest = hash.digest(data);
            let width = k.key_spec().ecdsa_scalar_len().unwrap_or(0);
            digest.splice(0..0, std::iter::repeat_n(0, width.saturating_sub(digest.len())));
            crate::signature::verify_digest(k, hash, &digest, &fixed).map_err(|_| DoesNotVerify)
        }
        other => Err(Refused(format!(
            "uses signature algorithm {other}, which notation does not accept"
        ))),
    }
}
