//! Objects on a token: the private key a URI names, its public key, its certificates, and
//! signing with it.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use plugin_protocol::chain::Certificate;
use plugin_protocol::{BackendSignature, HashAlgorithm, KeySpec, PluginError, PublicKey, Result};

use crate::token::{describe, TokenSlot};
use crate::uri::{ObjectType, Pkcs11Uri};

/// A private key found on the token.
#[derive(Clone, Debug)]
pub struct KeyObject {
    pub handle: ObjectHandle,
    pub label: String,
    pub id: Vec<u8>,
    pub key_type: KeyType,
    /// CKA_ALWAYS_AUTHENTICATE: every signature needs a context-specific login (YubiKey PIV
    /// slot 9c, most smart cards' signature keys).
    pub always_authenticate: bool,
}

impl KeyObject {
    /// The URI that names exactly this key on `token`, with the query carried over.
    pub fn uri(&self, token: &TokenSlot, query: &Pkcs11Uri) -> Pkcs11Uri {
        Pkcs11Uri {
            object: (!self.label.is_empty()).then(|| self.label.clone()),
            id: (!self.id.is_empty()).then(|| self.id.clone()),
            ..token.uri(query)
        }
    }
}

fn attr_error(what: &str, e: CkError) -> PluginError {
    PluginError::generic(format!("cannot read {what}: {}", describe(&e)))
}

/// Every private key on the token, optionally restricted to the URI's object selectors.
pub fn private_keys(session: &Session, uri: Option<&Pkcs11Uri>) -> Result<Vec<KeyObject>> {
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    if let Some(uri) = uri {
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
    }
    let handles = session
        .find_objects(&template)
        .map_err(|e| attr_error("the token's private keys", e))?;
    handles
        .into_iter()
        .map(|handle| {
            let attrs = session
                .get_attributes(
                    handle,
                    &[
                        AttributeType::Label,
                        AttributeType::Id,
                        AttributeType::KeyType,
                        AttributeType::AlwaysAuthenticate,
                    ],
                )
                .map_err(|e| attr_error("a private key's label and id", e))?;
            let mut key = KeyObject {
                handle,
                label: String::new(),
                id: Vec::new(),
                key_type: KeyType::RSA,
                always_authenticate: false,
            };
            for a in attrs {
                match a {
                    Attribute::Label(l) => key.label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Id(id) => key.id = id,
                    Attribute::KeyType(t) => key.key_type = t,
                    Attribute::AlwaysAuthenticate(a) => key.always_authenticate = a,
                    _ => {}
                }
            }
            Ok(key)
        })
        .collect()
}

/// The single private key the URI names; zero or several is a VALIDATION_ERROR listing the
/// candidates as ready-to-use URIs.
pub fn find_key(session: &Session, token: &TokenSlot, uri: &Pkcs11Uri) -> Result<KeyObject> {
    if let Some(t) = uri.object_type {
        if t != ObjectType::Private {
            return Err(PluginError::validation(format!(
                "the key URI says type={}; a signing key URI names the private key (type=private, \
                 or no type)",
                t.as_str()
            )));
        }
    }
    if !uri.selects_object() {
        let all = private_keys(session, None)?;
        return Err(PluginError::validation(format!(
            "the key URI names no key: add object=<label> or id=<%xx bytes>. Private keys on \
             token '{}':{}",
            token.label(),
            list(&all, token, uri)
        )));
    }
    let mut found = private_keys(session, Some(uri))?;
    match found.len() {
        1 => Ok(found.pop().expect("one key")),
        0 => {
            let all = private_keys(session, None)?;
            Err(PluginError::validation(format!(
                "no private key with {} on token '{}'; private keys on the token:{}",
                object_part(uri),
                token.label(),
                list(&all, token, uri)
            )))
        }
        n => Err(PluginError::validation(format!(
            "{} matches {n} private keys on token '{}'; name one of them exactly:{}",
            object_part(uri),
            token.label(),
            list(&found, token, uri)
        ))),
    }
}

fn object_part(uri: &Pkcs11Uri) -> String {
    let mut parts = Vec::new();
    if let Some(o) = &uri.object {
        parts.push(format!("object={o}"));
    }
    if let Some(id) = &uri.id {
        parts.push(format!("id={}", hex::encode(id)));
    }
    parts.join(" and ")
}

fn list(keys: &[KeyObject], token: &TokenSlot, uri: &Pkcs11Uri) -> String {
    if keys.is_empty() {
        return " none".into();
    }
    keys.iter()
        .map(|k| format!("\n  {}", k.uri(token, uri)))
        .collect()
}

/// The key's public key: RSA from the private key's modulus and exponent; EC from the public
/// key object with the same CKA_ID (or CKA_PUBLIC_KEY_INFO, or the certificate).
pub fn public_key(session: &Session, key: &KeyObject) -> Result<PublicKey> {
    match key.key_type {
        KeyType::RSA => {
            let attrs = session
                .get_attributes(
                    key.handle,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(|e| attr_error("the RSA key's modulus", e))?;
            let (mut n, mut e) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Modulus(m) => n = Some(m),
                    Attribute::PublicExponent(x) => e = Some(x),
                    _ => {}
                }
            }
            match (n, e) {
                (Some(n), Some(e)) => PublicKey::from_rsa_components(&n, &e),
                _ => from_public_object(session, key),
            }
        }
        KeyType::EC => from_public_object(session, key),
        KeyType::EC_EDWARDS => Err(PluginError::validation(format!(
            "key '{}' is an EdDSA (Ed25519/Ed448) key; notation signs with RSA 2048/3072/4096 or \
             EC P-256/P-384/P-521 keys",
            key.label
        ))),
        other => Err(PluginError::validation(format!(
            "key '{}' is a {other} key; notation signs with RSA 2048/3072/4096 or EC \
             P-256/P-384/P-521 keys",
            key.label
        ))),
    }
}

fn from_public_object(session: &Session, key: &KeyObject) -> Result<PublicKey> {
    if let Ok(attrs) = session.get_attributes(key.handle, &[AttributeType::PublicKeyInfo]) {
        for a in attrs {
            if let Attribute::PublicKeyInfo(spki) = a {
                if !spki.is_empty() {
                    return PublicKey::from_spki_der(&spki);
                }
            }
        }
    }
    let public = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Id(key.id.clone()),
        ])
        .map_err(|e| attr_error("the public key object", e))?;
    if let Some(handle) = public.first() {
        let attrs = session
            .get_attributes(
                *handle,
                &[
                    AttributeType::EcParams,
                    AttributeType::EcPoint,
                    AttributeType::Modulus,
                    AttributeType::PublicExponent,
                ],
            )
            .map_err(|e| attr_error("the public key", e))?;
        let (mut params, mut point, mut n, mut e) = (None, None, None, None);
        for a in attrs {
            match a {
                Attribute::EcParams(p) => params = Some(p),
                Attribute::EcPoint(p) => point = Some(p),
                Attribute::Modulus(m) => n = Some(m),
                Attribute::PublicExponent(x) => e = Some(x),
                _ => {}
            }
        }
        if let (Some(params), Some(point)) = (params, point) {
            return PublicKey::from_ec_point(&params, unwrap_ec_point(&point));
        }
        if let (Some(n), Some(e)) = (n, e) {
            return PublicKey::from_rsa_components(&n, &e);
        }
    }
    if let Some(cert) = certificates_with_id(session, &key.id)?.into_iter().next() {
        return cert.public_key();
    }
    Err(PluginError::validation(format!(
        "cannot find the public key of '{}' on the token: there is no public key object or \
         certificate with its CKA_ID {}",
        key.label,
        hex::encode(&key.id)
    )))
}

/// CKA_EC_POINT is specified as the DER OCTET STRING holding the point, but some modules
/// return the bare point: accept both.
fn unwrap_ec_point(value: &[u8]) -> &[u8] {
    use der::Decode as _;
    match der::asn1::OctetStringRef::from_der(value) {
        Ok(inner) if matches!(inner.as_bytes().first(), Some(2..=4)) => inner.as_bytes(),
        _ => value,
    }
}

fn certificates(session: &Session, template: Vec<Attribute>) -> Result<Vec<Certificate>> {
    let mut full = vec![Attribute::Class(ObjectClass::CERTIFICATE)];
    full.extend(template);
    let handles = session
        .find_objects(&full)
        .map_err(|e| attr_error("certificates", e))?;
    let mut out = Vec::new();
    for h in handles {
        let attrs = session
            .get_attributes(h, &[AttributeType::Value])
            .map_err(|e| attr_error("a certificate", e))?;
        for a in attrs {
            if let Attribute::Value(der) = a {
                out.push(Certificate::from_der(
                    &der,
                    "a certificate object on the token",
                )?);
            }
        }
    }
    Ok(out)
}

fn certificates_with_id(session: &Session, id: &[u8]) -> Result<Vec<Certificate>> {
    if id.is_empty() {
        return Ok(Vec::new());
    }
    certificates(session, vec![Attribute::Id(id.to_vec())])
}

/// The certificates on the token for this key's chain: the certificate with the key's CKA_ID
/// (the one carrying the key's public key if several), then every certificate whose subject is
/// the issuer of one already found, up to self-signed roots. A CA key rollover leaves two CA
/// certificates with one name (old and new key): both are returned, and the shared chain
/// builder takes the one whose key signed (AKI/SKI first).
pub fn chain_on_token(
    session: &Session,
    key: &KeyObject,
    public: &PublicKey,
) -> Result<Vec<Vec<u8>>> {
    let leaves = certificates_with_id(session, &key.id)?;
    let Some(leaf) = leaves
        .iter()
        .find(|c| c.public_key().is_ok_and(|k| &k == public))
        .or(leaves.first())
        .cloned()
    else {
        return Ok(Vec::new());
    };
    let mut pool = vec![leaf];
    let mut next = 0;
    while next < pool.len() && pool.len() < MAX_CHAIN_POOL {
        let tbs = &pool[next].x509().tbs_certificate;
        next += 1;
        if tbs.issuer == tbs.subject {
            continue;
        }
        let issuer = der::Encode::to_der(&tbs.issuer)
            .map_err(|e| PluginError::generic(format!("cannot encode an issuer name: {e}")))?;
        for c in certificates(session, vec![Attribute::Subject(issuer)])? {
            if !pool.iter().any(|x| x.der() == c.der()) {
                pool.push(c);
            }
        }
    }
    Ok(pool.into_iter().map(|c| c.der().to_vec()).collect())
}

/// The most certificates read from a token for one chain (a token with a CA history keeps a
/// few per name; this bounds a token full of them).
const MAX_CHAIN_POOL: usize = 32;

/// The mechanisms to sign with for `spec` on this token: raw (digest in) where offered.
pub enum Signer {
    /// RSA-PSS or ECDSA over the digest.
    Digest(Mechanism<'static>),
    /// Hash-and-sign PSS over the message, for tokens without raw PSS.
    Message(Mechanism<'static>),
}

fn pss_params(hash: HashAlgorithm) -> PkcsPssParams {
    let (hash_alg, mgf) = match hash {
        HashAlgorithm::Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256),
        HashAlgorithm::Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384),
        HashAlgorithm::Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512),
    };
    PkcsPssParams {
        hash_alg,
        mgf,
        s_len: (hash.output_len() as u64).into(),
    }
}

/// Chooses the signing mechanism from the token's mechanism list. With `multi_part` (a key
/// that needs a context-specific login between C_SignInit and the data, which cryptoki can
/// only pass in C_SignUpdate), the hash-and-sign mechanism of the spec's hash comes first where
/// the token offers it, because PKCS#11 defines multi-part signing for it.
pub fn signer(
    mechanisms: &[MechanismType],
    spec: KeySpec,
    token: &str,
    multi_part: bool,
) -> Result<Signer> {
    let hash = spec.hash_algorithm();
    if multi_part {
        if let Some(signer) = hash_and_sign(mechanisms, spec) {
            return Ok(signer);
        }
    }
    if spec.ecdsa_scalar_len().is_some() {
        if mechanisms.contains(&MechanismType::ECDSA) {
            return Ok(Signer::Digest(Mechanism::Ecdsa));
        }
        return Err(PluginError::validation(format!(
            "token '{token}' does not offer CKM_ECDSA, which signing with an {spec} key needs"
        )));
    }
    let params = pss_params(hash);
    if mechanisms.contains(&MechanismType::RSA_PKCS_PSS) {
        return Ok(Signer::Digest(Mechanism::RsaPkcsPss(params)));
    }
    let (combined, ty) = match hash {
        HashAlgorithm::Sha256 => (
            Mechanism::Sha256RsaPkcsPss(params),
            MechanismType::SHA256_RSA_PKCS_PSS,
        ),
        HashAlgorithm::Sha384 => (
            Mechanism::Sha384RsaPkcsPss(params),
            MechanismType::SHA384_RSA_PKCS_PSS,
        ),
        HashAlgorithm::Sha512 => (
            Mechanism::Sha512RsaPkcsPss(params),
            MechanismType::SHA512_RSA_PKCS_PSS,
        ),
    };
    if mechanisms.contains(&ty) {
        return Ok(Signer::Message(combined));
    }
    Err(PluginError::validation(format!(
        "token '{token}' offers neither CKM_RSA_PKCS_PSS nor {ty}: it cannot make the RSASSA-PSS \
         signatures notation requires for {spec}"
    )))
}

/// The multi-part hash-and-sign mechanism for `spec` (ECDSA-SHA-x, SHA-x-RSA-PKCS-PSS), if
/// the token offers it.
fn hash_and_sign(mechanisms: &[MechanismType], spec: KeySpec) -> Option<Signer> {
    let hash = spec.hash_algorithm();
    let (mechanism, ty) = match (spec.ecdsa_scalar_len().is_some(), hash) {
        (true, HashAlgorithm::Sha256) => (Mechanism::EcdsaSha256, MechanismType::ECDSA_SHA256),
        (true, HashAlgorithm::Sha384) => (Mechanism::EcdsaSha384, MechanismType::ECDSA_SHA384),
        (true, HashAlgorithm::Sha512) => (Mechanism::EcdsaSha512, MechanismType::ECDSA_SHA512),
        (false, HashAlgorithm::Sha256) => (
            Mechanism::Sha256RsaPkcsPss(pss_params(hash)),
            MechanismType::SHA256_RSA_PKCS_PSS,
        ),
        (false, HashAlgorithm::Sha384) => (
            Mechanism::Sha384RsaPkcsPss(pss_params(hash)),
            MechanismType::SHA384_RSA_PKCS_PSS,
        ),
        (false, HashAlgorithm::Sha512) => (
            Mechanism::Sha512RsaPkcsPss(pss_params(hash)),
            MechanismType::SHA512_RSA_PKCS_PSS,
        ),
    };
    mechanisms
        .contains(&ty)
        .then_some(Signer::Message(mechanism))
}

/// The context-specific login a CKA_ALWAYS_AUTHENTICATE key needs after C_SignInit: called
/// once per signature with the PIN the user login used.
pub type ContextLogin<'a> = &'a dyn Fn(&Session) -> Result<()>;

/// Signs with `key`; ECDSA comes back as r‖s from PKCS#11. A key with CKA_ALWAYS_AUTHENTICATE
/// is signed with C_SignInit, the context-specific login (`context_login`, once), then the data
/// in one C_SignUpdate and C_SignFinal: cryptoki's single-part `sign` calls C_SignInit itself
/// and leaves no room for the login between the two.
pub fn sign(
    session: &Session,
    key: &KeyObject,
    signer: &Signer,
    message: &[u8],
    digest: &[u8],
    context_login: ContextLogin,
) -> Result<BackendSignature> {
    let (mechanism, input) = match signer {
        Signer::Digest(m) => (m, digest),
        Signer::Message(m) => (m, message),
    };
    let signed = if key.always_authenticate {
        session
            .sign_init(mechanism, key.handle)
            .map_err(|e| refused(key, &e))?;
        context_login(session)?;
        match (session.sign_update(input), signer) {
            (Ok(()), _) => session.sign_final(),
            // YKCS11 and OpenSC take a raw mechanism's data in parts; SoftHSM2 does not.
            (Err(e), Signer::Digest(m))
                if !matches!(&e, CkError::Pkcs11(RvError::UserNotLoggedIn, _)) =>
            {
                return Err(PluginError::generic(format!(
                    "the token cannot take the data of a {} signature with '{}' in parts \
                     (C_SignUpdate: {}), and the key needs a PIN entry for every signature \
                     (CKA_ALWAYS_AUTHENTICATE), which leaves no other way here: the token offers \
                     no hash-and-sign mechanism for this key (such as CKM_ECDSA_SHA256 or \
                     CKM_SHA256_RSA_PKCS_PSS), and the plugin's PKCS#11 binding cannot call \
                     single-part C_Sign after the context-specific login; use a key without \
                     CKA_ALWAYS_AUTHENTICATE (YubiKey: slot 9a or a retired slot), or a module \
                     that offers the hash-and-sign mechanism",
                    m.mechanism_type(),
                    key.label,
                    describe(&e)
                )));
            }
            (Err(e), _) => Err(e),
        }
    } else {
        session.sign(mechanism, key.handle, input)
    };
    let signature = signed.map_err(|e| refused(key, &e))?;
    Ok(match mechanism {
        Mechanism::Ecdsa
        | Mechanism::EcdsaSha256
        | Mechanism::EcdsaSha384
        | Mechanism::EcdsaSha512 => BackendSignature::EcdsaFixed(signature),
        _ => BackendSignature::RsaPss(signature),
    })
}

fn refused(key: &KeyObject, e: &CkError) -> PluginError {
    let why = match e {
        CkError::Pkcs11(RvError::UserNotLoggedIn, _) if key.always_authenticate => {
            " (the key needs a PIN entry for every signature (CKA_ALWAYS_AUTHENTICATE), which \
             the plugin made; a YubiKey also answers so when a key with a touch policy was not \
             touched in time (about 15 s): touch it when it blinks and sign again)"
        }
        CkError::Pkcs11(RvError::UserNotLoggedIn, _) => {
            " (the token says nobody is logged in: a YubiKey answers so when a key with a touch \
             policy was not touched in time (about 15 s): touch it when it blinks and sign \
             again; otherwise the key may need a PIN entry for every signature without saying \
             so with CKA_ALWAYS_AUTHENTICATE)"
        }
        CkError::Pkcs11(RvError::KeyFunctionNotPermitted, _) => {
            " (the key's CKA_SIGN attribute is false: it is not a signing key)"
        }
        _ => "",
    };
    PluginError::generic(format!(
        "the token refused to sign with '{}': {}{why}",
        key.label,
        describe(e)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PSS parameters a token is given: the spec's hash, MGF1 on the same hash, and a salt
    /// of exactly the hash length (a token told "maximum" makes signatures COSE refuses).
    fn assert_notation_pss(params: &PkcsPssParams, spec: KeySpec) {
        let (hash_alg, mgf, salt) = match spec {
            KeySpec::Rsa2048 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32),
            KeySpec::Rsa3072 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48),
            KeySpec::Rsa4096 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64),
            ec => panic!("{ec} has no PSS parameters"),
        };
        assert_eq!(params.hash_alg, hash_alg, "{spec}");
        assert_eq!(params.mgf, mgf, "{spec}");
        assert_eq!(usize::from(params.s_len), salt, "{spec}");
    }

    #[test]
    fn rsa_signs_with_raw_pss_where_offered_salt_equal_to_the_hash_length() {
        let both = [
            MechanismType::SHA256_RSA_PKCS_PSS,
            MechanismType::SHA384_RSA_PKCS_PSS,
            MechanismType::SHA512_RSA_PKCS_PSS,
            MechanismType::RSA_PKCS_PSS,
        ];
        for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
            match signer(&both, spec, "t", false).unwrap() {
                Signer::Digest(Mechanism::RsaPkcsPss(p)) => assert_notation_pss(&p, spec),
                Signer::Digest(m) | Signer::Message(m) => panic!("{spec}: {m:?}"),
            }
        }
    }

    #[test]
    fn rsa_falls_back_to_hash_and_sign_pss_of_the_spec_hash_only() {
        let cases = [
            (KeySpec::Rsa2048, MechanismType::SHA256_RSA_PKCS_PSS),
            (KeySpec::Rsa3072, MechanismType::SHA384_RSA_PKCS_PSS),
            (KeySpec::Rsa4096, MechanismType::SHA512_RSA_PKCS_PSS),
        ];
        for (spec, ty) in cases {
            let params = match signer(&[MechanismType::ECDSA, ty], spec, "t", false).unwrap() {
                Signer::Message(Mechanism::Sha256RsaPkcsPss(p)) if spec == KeySpec::Rsa2048 => p,
                Signer::Message(Mechanism::Sha384RsaPkcsPss(p)) if spec == KeySpec::Rsa3072 => p,
                Signer::Message(Mechanism::Sha512RsaPkcsPss(p)) if spec == KeySpec::Rsa4096 => p,
                Signer::Digest(m) | Signer::Message(m) => panic!("{spec}: {m:?}"),
            };
            assert_notation_pss(&params, spec);
            // Hash-and-sign with another hash is no substitute.
            let others: Vec<_> = cases.iter().map(|c| c.1).filter(|t| *t != ty).collect();
            let err = signer(&others, spec, "tok", false)
                .err()
                .expect("no usable mechanism");
            assert!(
                err.message
                    .contains("token 'tok' offers neither CKM_RSA_PKCS_PSS nor")
                    && err.message.contains(&spec.to_string()),
                "{}",
                err.message
            );
        }
    }

    /// A key that needs a context-specific login signs in parts: the hash-and-sign mechanism
    /// of the spec's hash where offered (PKCS#11 defines multi-part signing for it), else the
    /// raw one.
    #[test]
    fn multi_part_prefers_hash_and_sign_of_the_spec_hash() {
        let all = [
            MechanismType::ECDSA,
            MechanismType::ECDSA_SHA256,
            MechanismType::ECDSA_SHA384,
            MechanismType::RSA_PKCS_PSS,
            MechanismType::SHA256_RSA_PKCS_PSS,
        ];
        assert!(matches!(
            signer(&all, KeySpec::Ec256, "t", true),
            Ok(Signer::Message(Mechanism::EcdsaSha256))
        ));
        assert!(matches!(
            signer(&all, KeySpec::Ec384, "t", true),
            Ok(Signer::Message(Mechanism::EcdsaSha384))
        ));
        match signer(&all, KeySpec::Rsa2048, "t", true).unwrap() {
            Signer::Message(Mechanism::Sha256RsaPkcsPss(p)) => {
                assert_notation_pss(&p, KeySpec::Rsa2048)
            }
            Signer::Digest(m) | Signer::Message(m) => panic!("{m:?}"),
        }
        // No ECDSA-SHA512, no SHA384-RSA-PKCS-PSS: the raw mechanisms.
        assert!(matches!(
            signer(&all, KeySpec::Ec521, "t", true),
            Ok(Signer::Digest(Mechanism::Ecdsa))
        ));
        assert!(matches!(
            signer(&all, KeySpec::Rsa3072, "t", true),
            Ok(Signer::Digest(Mechanism::RsaPkcsPss(_)))
        ));
        // Without the need, the raw mechanism as before.
        assert!(matches!(
            signer(&all, KeySpec::Ec256, "t", false),
            Ok(Signer::Digest(Mechanism::Ecdsa))
        ));
    }

    #[test]
    fn ecdsa_needs_ckm_ecdsa() {
        for spec in [KeySpec::Ec256, KeySpec::Ec384, KeySpec::Ec521] {
            assert!(matches!(
                signer(&[MechanismType::ECDSA], spec, "t", false),
                Ok(Signer::Digest(Mechanism::Ecdsa))
            ));
            let err = signer(&[MechanismType::RSA_PKCS_PSS], spec, "tok", false)
                .err()
                .expect("no CKM_ECDSA");
            assert!(
                err.message.contains("token 'tok' does not offer CKM_ECDSA"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn ec_points_are_read_wrapped_or_bare() {
        let point = [4u8, 1, 2, 3];
        let wrapped = [&[0x04, 4][..], &point].concat();
        assert_eq!(unwrap_ec_point(&wrapped), point);
        assert_eq!(unwrap_ec_point(&point), point);
        // An OCTET STRING that does not hold a SEC1 point is left as it is.
        assert_eq!(unwrap_ec_point(&[0x04, 1, 9]), [0x04, 1, 9]);
    }
}
