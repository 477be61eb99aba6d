//! A test certificate authority (feature `softkey`, tests only): issues chains for any public
//! key, correct by default and broken on request, so every chain rule has a failing case.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::Encode;
use p256::ecdsa::{DerSignature, SigningKey};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::chain::Certificate;
use crate::softkey::SoftKey;
use crate::{KeySpec, PublicKey};

const CODE_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.3");
const SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");

/// What to put in (or get wrong in) a leaf certificate. The default is a correct Notary leaf.
#[derive(Clone, Debug)]
pub struct LeafProfile {
    /// Add keyUsage digitalSignature (a leaf without it breaks the leaf rules).
    pub key_usage: bool,
    /// Mark keyUsage critical, as the leaf rules require.
    pub key_usage_critical: bool,
    /// Add keyEncipherment to keyUsage, which the leaf rules forbid.
    pub key_encipherment: bool,
    /// Add serverAuth to extendedKeyUsage, which the leaf rules forbid.
    pub server_auth: bool,
    /// basicConstraints cA=true on the leaf, which the leaf rules forbid.
    pub ca: bool,
    /// Validity that ended before now.
    pub expired: bool,
    /// Leave the root out of the returned chain.
    pub omit_root: bool,
}

impl Default for LeafProfile {
    fn default() -> Self {
        Self {
            key_usage: true,
            key_usage_critical: true,
            key_encipherment: false,
            server_auth: false,
            ca: false,
            expired: false,
            omit_root: false,
        }
    }
}

/// What to get wrong in a CA certificate. The default is a correct Notary CA.
#[derive(Clone, Debug)]
pub struct CaProfile {
    /// Add keyUsage keyCertSign, as the CA rules require.
    pub key_cert_sign: bool,
    /// Mark basicConstraints critical, as the CA rules require.
    pub basic_constraints_critical: bool,
    /// basicConstraints pathLenConstraint; `None` for no limit.
    pub path_len: Option<u8>,
}

impl Default for CaProfile {
    fn default() -> Self {
        Self {
            key_cert_sign: true,
            basic_constraints_critical: true,
            path_len: None,
        }
    }
}

/// An extension with the criticality chosen by the test.
struct Ext<T> {
    inner: T,
    critical: bool,
}
impl<T: AssociatedOid> AssociatedOid for Ext<T> {
    const OID: ObjectIdentifier = T::OID;
}
impl<T: Encode> Encode for Ext<T> {
    fn encoded_len(&self) -> der::Result<der::Length> {
        self.inner.encoded_len()
    }
    fn encode(&self, w: &mut impl der::Writer) -> der::Result<()> {
        self.inner.encode(w)
    }
}
impl<T: AssociatedOid + Encode> x509_cert::ext::AsExtension for Ext<T> {
    fn critical(&self, _: &Name, _: &[x509_cert::ext::Extension]) -> bool {
        self.critical
    }
}

struct Authority {
    key: SigningKey,
    cert: Certificate,
}

/// A root CA, optionally with one intermediate that issues the leaves. Keys are P-256.
pub struct TestCa {
    root: Authority,
    intermediate: Option<Authority>,
}

fn serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::new(&bytes).expect("16 positive bytes are a valid serial")
}

fn validity(expired: bool) -> Validity {
    let now = SystemTime::now();
    let (from, to) = if expired {
        (
            now - Duration::from_secs(86400 * 30),
            now - Duration::from_secs(86400),
        )
    } else {
        (
            now - Duration::from_secs(3600),
            now + Duration::from_secs(86400 * 365),
        )
    };
    Validity {
        not_before: Time::try_from(from).expect("time in range"),
        not_after: Time::try_from(to).expect("time in range"),
    }
}

fn spki(key: &PublicKey) -> spki::SubjectPublicKeyInfoOwned {
    use der::Decode;
    spki::SubjectPublicKeyInfoOwned::from_der(&key.to_spki_der()).expect("valid SPKI")
}

fn p256_public(key: &SigningKey) -> PublicKey {
    PublicKey::P256(p256::PublicKey::from(key.verifying_key()))
}

fn ca_cert(
    subject: &str,
    key: &SigningKey,
    issuer: Option<&Authority>,
    profile: &CaProfile,
) -> Certificate {
    let subject = Name::from_str(subject).expect("valid DN");
    let signer = issuer.map(|a| &a.key).unwrap_or(key);
    let issuer_name = issuer.map(|a| a.cert.x509().tbs_certificate.subject.clone());
    let mut b = CertificateBuilder::new(
        Profile::Manual {
            issuer: issuer_name,
        },
        serial(),
        validity(false),
        subject,
        spki(&p256_public(key)),
        signer,
    )
    .expect("builder");
    b.add_extension(&Ext {
        inner: BasicConstraints {
            ca: true,
            path_len_constraint: profile.path_len,
        },
        critical: profile.basic_constraints_critical,
    })
    .unwrap();
    let ku = if profile.key_cert_sign {
        KeyUsages::KeyCertSign | KeyUsages::CRLSign
    } else {
        KeyUsages::CRLSign.into()
    };
    b.add_extension(&Ext {
        inner: KeyUsage(ku),
        critical: true,
    })
    .unwrap();
    let cert = b.build::<DerSignature>().expect("sign CA certificate");
    Certificate::from_der(&cert.to_der().unwrap(), "test CA").unwrap()
}

impl TestCa {
    /// A correct root CA.
    pub fn new(subject: &str) -> Self {
        Self::with_root_profile(subject, &CaProfile::default())
    }

    /// A root CA made as `profile` says (correct or broken), on a fresh P-256 key.
    pub fn with_root_profile(subject: &str, profile: &CaProfile) -> Self {
        let key = SigningKey::random(&mut rand::thread_rng());
        let cert = ca_cert(subject, &key, None, profile);
        Self {
            root: Authority { key, cert },
            intermediate: None,
        }
    }

    /// Adds an intermediate CA under the root; leaves are then issued by it.
    pub fn with_intermediate(mut self, subject: &str, profile: &CaProfile) -> Self {
        let key = SigningKey::random(&mut rand::thread_rng());
        let cert = ca_cert(subject, &key, Some(&self.root), profile);
        self.intermediate = Some(Authority { key, cert });
        self
    }

    /// The root certificate, for trust stores and chain files.
    pub fn root(&self) -> &Certificate {
        &self.root.cert
    }

    /// The root certificate as PEM.
    pub fn root_pem(&self) -> String {
        self.root.cert.to_pem()
    }

    /// A correct Notary leaf for `key`: the chain leaf, \[intermediate\], root.
    pub fn issue_leaf(&self, key: &PublicKey, subject: &str) -> Vec<Certificate> {
        self.issue_leaf_with(key, subject, &LeafProfile::default())
    }

    /// A leaf for `key` made as `p` says (correct or broken): the chain leaf, \[intermediate\],
    /// root unless `p.omit_root`.
    pub fn issue_leaf_with(
        &self,
        key: &PublicKey,
        subject: &str,
        p: &LeafProfile,
    ) -> Vec<Certificate> {
        let issuer = self.intermediate.as_ref().unwrap_or(&self.root);
        let mut b = CertificateBuilder::new(
            Profile::Manual {
                issuer: Some(issuer.cert.x509().tbs_certificate.subject.clone()),
            },
            serial(),
            validity(p.expired),
            Name::from_str(subject).expect("valid DN"),
            spki(key),
            &issuer.key,
        )
        .expect("builder");
        if p.key_usage {
            let mut ku = KeyUsages::DigitalSignature.into();
            if p.key_encipherment {
                ku |= KeyUsages::KeyEncipherment;
            }
            b.add_extension(&Ext {
                inner: KeyUsage(ku),
                critical: p.key_usage_critical,
            })
            .unwrap();
        }
        b.add_extension(&Ext {
            inner: BasicConstraints {
                ca: p.ca,
                path_len_constraint: None,
            },
            critical: true,
        })
        .unwrap();
        let mut eku = vec![CODE_SIGNING];
        if p.server_auth {
            eku.push(SERVER_AUTH);
        }
        b.add_extension(&Ext {
            inner: ExtendedKeyUsage(eku),
            critical: false,
        })
        .unwrap();
        let leaf = b.build::<DerSignature>().expect("sign leaf");
        let mut chain = vec![Certificate::from_der(&leaf.to_der().unwrap(), "test leaf").unwrap()];
        if let Some(i) = &self.intermediate {
            chain.push(i.cert.clone());
        }
        if !p.omit_root {
            chain.push(self.root.cert.clone());
        }
        chain
    }
}

/// A fresh software key of `spec`.
pub fn generate_key(spec: KeySpec) -> SoftKey {
    let mut rng = rand::thread_rng();
    match spec {
        KeySpec::Ec256 => SoftKey::P256(p256::SecretKey::random(&mut rng)),
        KeySpec::Ec384 => SoftKey::P384(p384::SecretKey::random(&mut rng)),
        KeySpec::Ec521 => SoftKey::P521(p521::SecretKey::random(&mut rng)),
        rsa_spec => SoftKey::Rsa(
            rsa::RsaPrivateKey::new(&mut rng, rsa_spec.bits()).expect("RSA key generation"),
        ),
    }
}

impl SoftKey {
    /// PKCS#8 PEM of the private key.
    pub fn to_pkcs8_pem(&self) -> zeroize::Zeroizing<String> {
        use rsa::pkcs8::EncodePrivateKey;
        let lf = rsa::pkcs8::LineEnding::LF;
        match self {
            Self::Rsa(k) => k.to_pkcs8_pem(lf),
            Self::P256(k) => k.to_pkcs8_pem(lf),
            Self::P384(k) => k.to_pkcs8_pem(lf),
            Self::P521(k) => k.to_pkcs8_pem(lf),
        }
        .expect("PKCS#8 encoding")
    }
}
