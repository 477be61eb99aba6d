//! The Notary COSE envelope: a tagged COSE_Sign1 as notation-core-go writes and checks it.
//! Protected header: alg, crit (`io.cncf.notary.signingScheme`), content type
//! `application/vnd.cncf.notary.payload.v1+json`, `io.cncf.notary.signingScheme: notary.x509`,
//! `io.cncf.notary.signingTime` as a CBOR tag-1 epoch time. Unprotected header: x5chain
//! (label 33, always an array of DER certificates, leaf first) and `io.cncf.notary.signingAgent`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coset::cbor::value::Value;
use coset::iana::EnumI64 as _;
use coset::{
    iana, Algorithm, ContentType, CoseSign1, CoseSign1Builder, HeaderBuilder, Label,
    RegisteredLabelWithPrivate, TaggedCborSerializable,
};
use plugin_protocol::SigningAlgorithm;

use crate::envelope::*;
use crate::payload::{unix_seconds, Payload, PAYLOAD_CONTENT_TYPE};

/// The x5chain header label (RFC 9360).
const X5CHAIN: i64 = 33;
/// CBOR tag 1: epoch-based date/time.
const EPOCH_TIME_TAG: u64 = 1;

/// A COSE_Sign1 waiting for its signature.
#[derive(Clone, Debug)]
pub struct CoseToSign {
    message: CoseSign1,
}

fn text_label(s: &str) -> Label {
    Label::Text(s.to_owned())
}

impl CoseToSign {
    pub fn new(
        payload: &Payload,
        alg: SigningAlgorithm,
        signing_time: SystemTime,
    ) -> Result<Self, String> {
        let alg = iana::Algorithm::from_i64(alg.cose_id())
            .ok_or_else(|| format!("no COSE algorithm for {alg}"))?;
        let header = HeaderBuilder::new()
            .algorithm(alg)
            .add_critical_label(RegisteredLabelWithPrivate::Text(SIGNING_SCHEME.to_owned()))
            .content_type(PAYLOAD_CONTENT_TYPE.to_owned())
            .text_value(
                SIGNING_SCHEME.to_owned(),
                Value::Text(SCHEME_X509.to_owned()),
            )
            .text_value(
                SIGNING_TIME.to_owned(),
                Value::Tag(
                    EPOCH_TIME_TAG,
                    Box::new(Value::Integer(unix_seconds(signing_time).into())),
                ),
            )
            .build();
        let mut message = CoseSign1Builder::new()
            .protected(header)
            .payload(payload.to_cose_bytes())
            .build();
        // Serialise the protected header once: the bytes signed are the bytes written.
        let bytes = coset::CborSerializable::to_vec(message.protected.header.clone())
            .map_err(|e| format!("cannot encode the COSE protected header: {e}"))?;
        message.protected.original_data = Some(bytes);
        Ok(Self { message })
    }

    /// The `Signature1` Sig_structure: what the plugin signs.
    pub fn signing_input(&self) -> Vec<u8> {
        self.message.tbs_data(&[])
    }

    /// The envelope file: tagged COSE_Sign1 with the chain in x5chain.
    pub fn assemble(&self, signature: &[u8], chain: &[Vec<u8>]) -> Result<Vec<u8>, String> {
        let mut message = self.message.clone();
        message.unprotected = HeaderBuilder::new()
            .value(
                X5CHAIN,
                Value::Array(chain.iter().map(|c| Value::Bytes(c.clone())).collect()),
            )
            .text_value(SIGNING_AGENT.to_owned(), Value::Text(signing_agent()))
            .build();
        message.signature = signature.to_vec();
        message
            .to_tagged_vec()
            .map_err(|e| format!("cannot encode the COSE envelope: {e}"))
    }
}

fn find<'a>(rest: &'a [(Label, Value)], label: &str) -> Option<&'a Value> {
    rest.iter()
        .find(|(l, _)| *l == text_label(label))
        .map(|(_, v)| v)
}

fn epoch_time(value: &Value, name: &str) -> Result<SystemTime, String> {
    let Value::Tag(EPOCH_TIME_TAG, inner) = value else {
        return Err(format!(
            "header '{name}' must be a tag-1 (epoch) CBOR date/time, as notation writes it"
        ));
    };
    let secs: i64 = match inner.as_ref() {
        Value::Integer(i) => i64::try_from(*i).map_err(|_| format!("'{name}' is out of range"))?,
        Value::Float(f) if f.is_finite() => *f as i64,
        _ => return Err(format!("'{name}' tag-1 time must hold a number")),
    };
    let time = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    time.ok_or_else(|| format!("'{name}' ({secs}) is out of range"))
}

/// Parses a COSE envelope and checks its headers as notation-core-go does.
pub fn parse(bytes: &[u8]) -> Result<SignedEnvelope, String> {
    let message = CoseSign1::from_tagged_slice(bytes).map_err(|e| {
        format!("not a Notary COSE envelope (a tagged COSE_Sign1, CBOR tag 18): {e}")
    })?;
    let p = &message.protected.header;
    let algorithm = match &p.alg {
        Some(Algorithm::Assigned(a)) => algorithm_from_cose(a.to_i64()),
        Some(Algorithm::PrivateUse(i)) => algorithm_from_cose(*i),
        _ => None,
    }
    .ok_or_else(|| {
        format!(
            "the protected header's algorithm {:?} is not one notation accepts (PS256/384/512, ES256/384/512)",
            p.alg
        )
    })?;
    match &p.content_type {
        Some(ContentType::Text(t)) if t == PAYLOAD_CONTENT_TYPE => {}
        Some(other) => {
            return Err(format!(
                "protected content type is {other:?}; notation requires '{PAYLOAD_CONTENT_TYPE}' as text"
            ))
        }
        None => return Err("the protected header has no content type".into()),
    }
    if p.crit.is_empty() {
        return Err("missing 'crit' header".into());
    }
    let crit: Vec<String> = p
        .crit
        .iter()
        .map(|l| match l {
            RegisteredLabelWithPrivate::Text(t) => t.clone(),
            RegisteredLabelWithPrivate::Assigned(a) => a.to_i64().to_string(),
            RegisteredLabelWithPrivate::PrivateUse(i) => i.to_string(),
        })
        .collect();
    for label in p.crit.iter() {
        if let RegisteredLabelWithPrivate::Text(t) = label {
            if find(&p.rest, t).is_none() {
                return Err(format!("header '{t}' is marked critical but not present"));
            }
        }
    }
    if !crit.iter().any(|c| c == SIGNING_SCHEME) {
        return Err(format!("'{SIGNING_SCHEME}' must be marked critical"));
    }
    match find(&p.rest, SIGNING_SCHEME) {
        Some(Value::Text(t)) if t == SCHEME_X509 => {}
        Some(Value::Text(t)) if t == SCHEME_X509_SIGNING_AUTHORITY => {
            return Err(format!(
                "signing scheme {SCHEME_X509_SIGNING_AUTHORITY} needs a signing authority's timestamp; this checker verifies {SCHEME_X509} signatures"
            ))
        }
        Some(other) => return Err(format!("unsupported signing scheme {other:?}")),
        None => return Err(format!("the protected header has no '{SIGNING_SCHEME}'")),
    }
    let signing_time = epoch_time(
        find(&p.rest, SIGNING_TIME)
            .ok_or_else(|| format!("the protected header has no '{SIGNING_TIME}'"))?,
        SIGNING_TIME,
    )?;
    let expiry = find(&p.rest, EXPIRY)
        .map(|v| epoch_time(v, EXPIRY))
        .transpose()?;
    if expiry.is_some() && !crit.iter().any(|c| c == EXPIRY) {
        return Err(format!("'{EXPIRY}' is present but not marked critical"));
    }

    let u = &message.unprotected;
    let chain = match u
        .rest
        .iter()
        .find(|(l, _)| *l == Label::Int(X5CHAIN))
        .map(|(_, v)| v)
    {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Bytes(b) => Ok(b.clone()),
                _ => Err(format!("x5chain[{i}] is not a byte string")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Bytes(_)) => return Err(
            "x5chain is a single byte string; notation reads it only as an array of certificates"
                .into(),
        ),
        _ => {
            return Err(
                "the unprotected header has no certificate chain (x5chain, label 33)".into(),
            )
        }
    };
    let signing_agent = match find(&u.rest, SIGNING_AGENT) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let payload = message
        .payload
        .clone()
        .ok_or("the COSE_Sign1 payload is detached (nil); notation requires it embedded")?;
    if message.signature.is_empty() {
        return Err("the signature is empty".into());
    }
    Ok(SignedEnvelope {
        format: Format::Cose,
        algorithm,
        signing_time,
        expiry,
        payload,
        signing_input: message.tbs_data(&[]),
        signature: message.signature.clone(),
        chain,
        signing_agent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembled_envelope_is_tagged_and_round_trips() {
        let payload = Payload::for_blob(b"x", plugin_protocol::HashAlgorithm::Sha256);
        let t = UNIX_EPOCH + Duration::from_secs(1_795_454_520);
        let c = CoseToSign::new(&payload, SigningAlgorithm::RsassaPssSha256, t).unwrap();
        let file = c.assemble(&[9; 4], &[vec![1, 2], vec![3]]).unwrap();
        assert_eq!(file[0], 0xd2, "COSE_Sign1 tag 18");
        let parsed = parse(&file).unwrap();
        assert_eq!(parsed.algorithm, SigningAlgorithm::RsassaPssSha256);
        assert_eq!(parsed.signing_time, t);
        assert_eq!(parsed.chain, vec![vec![1, 2], vec![3]]);
        assert_eq!(parsed.signing_input, c.signing_input());
        assert_eq!(parsed.payload, payload.to_cose_bytes());
        // The Sig_structure starts with the "Signature1" context string.
        assert!(c.signing_input().windows(10).any(|w| w == b"Signature1"));
    }
}
