//! The Notary JWS envelope (JSON serialization), as notation-core-go writes and checks it:
//! protected header `alg`, `cty`, `crit` (with `io.cncf.notary.signingScheme`),
//! `io.cncf.notary.signingScheme: notary.x509`, `io.cncf.notary.signingTime`; unprotected header
//! `x5c` (standard base64 DER, leaf first) and `io.cncf.notary.signingAgent`.

use std::time::SystemTime;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use plugin_protocol::SigningAlgorithm;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::envelope::*;
use crate::payload::{parse_rfc3339, rfc3339, Payload, PAYLOAD_CONTENT_TYPE};

/// A JWS envelope waiting for its signature.
#[derive(Clone, Debug)]
pub struct JwsToSign {
    protected_b64: String,
    payload_b64: String,
}

/// The envelope on the wire, fields in notation-core-go's order.
#[derive(Serialize, Deserialize)]
struct Wire {
    payload: String,
    protected: String,
    header: WireHeader,
    signature: String,
}

#[derive(Serialize, Deserialize)]
struct WireHeader {
    #[serde(
        rename = "io.cncf.notary.timestampSignature",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    timestamp_signature: Option<String>,
    #[serde(default)]
    x5c: Option<Vec<String>>,
    #[serde(
        rename = "io.cncf.notary.signingAgent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    signing_agent: Option<String>,
}

impl JwsToSign {
    pub fn new(payload: &Payload, alg: SigningAlgorithm, signing_time: SystemTime) -> Self {
        // A serde_json Map keeps keys sorted, like Go's encoding of the header map.
        let protected = json!({
            "alg": alg.jws_name(),
            "crit": [SIGNING_SCHEME],
            "cty": PAYLOAD_CONTENT_TYPE,
            SIGNING_SCHEME: SCHEME_X509,
            SIGNING_TIME: rfc3339(signing_time),
        });
        let protected = serde_json::to_vec(&protected).expect("a JSON value serialises");
        Self {
            protected_b64: URL_SAFE_NO_PAD.encode(protected),
            payload_b64: URL_SAFE_NO_PAD.encode(payload.to_jws_bytes()),
        }
    }

    /// ASCII `BASE64URL(protected) "." BASE64URL(payload)`: what the plugin signs.
    pub fn signing_input(&self) -> Vec<u8> {
        format!("{}.{}", self.protected_b64, self.payload_b64).into_bytes()
    }

    /// The envelope file: JSON serialization with the chain in `x5c`.
    pub fn assemble(&self, signature: &[u8], chain: &[Vec<u8>]) -> Vec<u8> {
        let wire = Wire {
            payload: self.payload_b64.clone(),
            protected: self.protected_b64.clone(),
            header: WireHeader {
                timestamp_signature: None,
                x5c: Some(chain.iter().map(|c| STANDARD.encode(c)).collect()),
                signing_agent: Some(signing_agent()),
            },
            signature: URL_SAFE_NO_PAD.encode(signature),
        };
        serde_json::to_vec(&wire).expect("strings serialise")
    }
}

/// Parses a JWS envelope and checks its headers as notation-core-go does.
pub fn parse(bytes: &[u8]) -> Result<SignedEnvelope, String> {
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| {
        format!("not a Notary JWS envelope (JSON serialization with payload, protected, header, signature): {e}")
    })?;
    let raw_protected = URL_SAFE_NO_PAD
        .decode(wire.protected.as_bytes())
        .map_err(|e| format!("the protected header is not unpadded base64url: {e}"))?;
    let protected: Map<String, Value> = serde_json::from_slice(&raw_protected)
        .map_err(|e| format!("the protected header is not a JSON object: {e}"))?;
    let text = |name: &str| -> Result<Option<&str>, String> {
        match protected.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "protected header '{name}' must be a string, is {other}"
            )),
        }
    };

    let alg = text("alg")?.ok_or("the protected header has no 'alg'")?;
    let algorithm = algorithm_from_jws(alg).ok_or_else(|| {
        format!("protected header alg '{alg}' is not one notation accepts (PS256, PS384, PS512, ES256, ES384, ES512)")
    })?;
    match text("cty")? {
        Some(PAYLOAD_CONTENT_TYPE) => {}
        Some(other) => {
            return Err(format!(
                "protected header cty is '{other}'; notation requires '{PAYLOAD_CONTENT_TYPE}'"
            ))
        }
        None => return Err("the protected header has no 'cty'".into()),
    }
    let crit: Vec<&str> = match protected.get("crit") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().ok_or("'crit' must hold strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("'crit' must be a non-empty array of header names".into()),
        None => return Err("missing 'crit' header".into()),
    };
    for label in &crit {
        if !protected.contains_key(*label) {
            return Err(format!(
                "header '{label}' is marked critical but not present"
            ));
        }
    }
    if !crit.contains(&SIGNING_SCHEME) {
        return Err(format!("'{SIGNING_SCHEME}' must be marked critical"));
    }
    match text(SIGNING_SCHEME)? {
        Some(SCHEME_X509) => {}
        Some(SCHEME_X509_SIGNING_AUTHORITY) => {
            return Err(format!(
                "signing scheme {SCHEME_X509_SIGNING_AUTHORITY} needs a signing authority's timestamp; this checker verifies {SCHEME_X509} signatures"
            ))
        }
        Some(other) => return Err(format!("unsupported signing scheme '{other}'")),
        None => return Err(format!("the protected header has no '{SIGNING_SCHEME}'")),
    }
    if protected.contains_key(AUTHENTIC_SIGNING_TIME) {
        return Err(format!(
            "'{AUTHENTIC_SIGNING_TIME}' must not be present for the {SCHEME_X509} signing scheme"
        ));
    }
    let time = |name: &str| -> Result<Option<SystemTime>, String> {
        text(name)?
            .map(|s| {
                parse_rfc3339(s)
                    .ok_or_else(|| format!("header '{name}' is not an RFC 3339 time: '{s}'"))
            })
            .transpose()
    };
    let signing_time = time(SIGNING_TIME)?
        .ok_or_else(|| format!("the protected header has no '{SIGNING_TIME}'"))?;
    let expiry = time(EXPIRY)?;
    if expiry.is_some() && !crit.contains(&EXPIRY) {
        return Err(format!("'{EXPIRY}' is present but not marked critical"));
    }

    let payload = URL_SAFE_NO_PAD
        .decode(wire.payload.as_bytes())
        .map_err(|e| format!("the payload is not unpadded base64url: {e}"))?;
    let signature = URL_SAFE_NO_PAD
        .decode(wire.signature.as_bytes())
        .map_err(|e| format!("the signature is not unpadded base64url: {e}"))?;
    if signature.is_empty() {
        return Err("the signature is empty".into());
    }
    let chain = wire
        .header
        .x5c
        .filter(|c| !c.is_empty())
        .ok_or("the unprotected header has no certificate chain ('x5c')")?
        .iter()
        .enumerate()
        .map(|(i, c)| {
            STANDARD
                .decode(c.as_bytes())
                .map_err(|e| format!("x5c[{i}] is not standard base64: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SignedEnvelope {
        format: Format::Jws,
        algorithm,
        signing_time,
        expiry,
        payload,
        signing_input: format!("{}.{}", wire.protected, wire.payload).into_bytes(),
        signature,
        chain,
        signing_agent: wire.header.signing_agent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn protected_header_is_notation_core_go_shaped_and_round_trips() {
        let payload = Payload::for_blob(b"x", plugin_protocol::HashAlgorithm::Sha384);
        let t = UNIX_EPOCH + Duration::from_secs(1_795_454_520);
        let jws = JwsToSign::new(&payload, SigningAlgorithm::EcdsaSha384, t);
        let input = String::from_utf8(jws.signing_input()).unwrap();
        let (h, _) = input.split_once('.').unwrap();
        let header = String::from_utf8(URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        assert_eq!(
            header,
            r#"{"alg":"ES384","crit":["io.cncf.notary.signingScheme"],"cty":"application/vnd.cncf.notary.payload.v1+json","io.cncf.notary.signingScheme":"notary.x509","io.cncf.notary.signingTime":"2026-11-23T17:22:00Z"}"#
        );
        let file = jws.assemble(&[1, 2, 3], &[vec![4, 5]]);
        let text = String::from_utf8(file.clone()).unwrap();
        assert!(text.starts_with(r#"{"payload":""#), "{text}");
        assert!(
            text.contains(
                r#""header":{"x5c":["BAU="],"io.cncf.notary.signingAgent":"notation-plugin-check/"#
            ),
            "{text}"
        );
        let parsed = parse(&file).unwrap();
        assert_eq!(parsed.algorithm, SigningAlgorithm::EcdsaSha384);
        assert_eq!(parsed.signing_time, t);
        assert_eq!(parsed.signing_input, jws.signing_input());
        assert_eq!(parsed.signature, [1, 2, 3]);
        assert_eq!(parsed.payload, payload.to_jws_bytes());
    }

    #[test]
    fn header_problems_are_named() {
        let bad = |protected: Value| {
            let w = json!({
                "payload": "e30", "protected": URL_SAFE_NO_PAD.encode(protected.to_string()),
                "header": {"x5c": ["BAU="]}, "signature": "AQ"
            });
            parse(w.to_string().as_bytes()).unwrap_err()
        };
        let ok = json!({"alg":"ES256","crit":[SIGNING_SCHEME],"cty":PAYLOAD_CONTENT_TYPE,
            SIGNING_SCHEME: SCHEME_X509, SIGNING_TIME: "2026-01-01T00:00:00Z"});
        let mut v = ok.clone();
        v["alg"] = json!("RS256");
        assert!(bad(v).contains("RS256"));
        let mut v = ok.clone();
        v["crit"] = json!(["io.cncf.notary.expiry"]);
        assert!(bad(v).contains("marked critical but not present"));
        let mut v = ok.clone();
        v.as_object_mut().unwrap().remove(SIGNING_TIME);
        assert!(bad(v).contains(SIGNING_TIME));
        let mut v = ok;
        v["cty"] = json!("application/json");
        assert!(bad(v).contains("cty"));
    }
}
