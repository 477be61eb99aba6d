//! Verifies a Notary blob signature envelope (JWS or COSE, detected from the bytes) the way
//! `notation blob verify` does, and stricter: envelope format, the chain up to a trust anchor,
//! every certificate rule, the algorithm implied by the leaf, the signature (with the encoding
//! diagnosis of the shared crate), and that the payload describes the blob.

use std::time::SystemTime;

use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::signature::verify_digest;
use plugin_protocol::{HashAlgorithm, KeySpec, SigningAlgorithm};

use crate::envelope::{Format, SignedEnvelope};
use crate::payload::{rfc3339, Payload};
use crate::report::Report;
use crate::{cose, jws};

/// The hash a signing algorithm uses.
pub fn hash_of(alg: SigningAlgorithm) -> HashAlgorithm {
    KeySpec::ALL
        .into_iter()
        .find(|s| s.signing_algorithm() == alg)
        .map(KeySpec::hash_algorithm)
        .unwrap_or(HashAlgorithm::Sha256)
}

/// Parses an envelope of either format.
pub fn parse_envelope(bytes: &[u8]) -> Result<SignedEnvelope, String> {
    match Format::detect(bytes) {
        Some(Format::Jws) => jws::parse(bytes),
        Some(Format::Cose) => cose::parse(bytes),
        None => Err(
            "the file is neither a JWS envelope (a JSON object) nor a COSE envelope (CBOR tag 18)"
                .into(),
        ),
    }
}

/// Checks the envelope `bytes` against `blob` and `anchors`, adding one check per step to
/// `report` under `group`. Returns whether every step passed.
pub fn verify_envelope(
    report: &mut Report,
    group: &str,
    bytes: &[u8],
    blob: &[u8],
    anchors: &[Certificate],
) -> bool {
    let before = report.checks.len();
    verify_steps(report, group, bytes, blob, anchors);
    report.checks[before..]
        .iter()
        .all(|c| c.status == crate::report::Status::Pass)
}

fn verify_steps(
    report: &mut Report,
    group: &str,
    bytes: &[u8],
    blob: &[u8],
    anchors: &[Certificate],
) {
    let env = match parse_envelope(bytes) {
        Ok(env) => {
            report.pass(
                group,
                "envelope format",
                format!(
                    "{} envelope ({}), {}, signed at {}{}",
                    env.format,
                    env.format.media_type(),
                    env.algorithm,
                    rfc3339(env.signing_time),
                    env.signing_agent
                        .as_deref()
                        .map(|a| format!(" by {a}"))
                        .unwrap_or_default()
                ),
            );
            env
        }
        Err(why) => {
            report.fail(group, "envelope format", why);
            return;
        }
    };

    // The payload: a Notary payload describing exactly this blob.
    let payload = serde_json::from_slice::<Payload>(&env.payload)
        .map_err(|e| {
            format!("the payload is not a Notary payload ({{\"targetArtifact\": descriptor}}): {e}")
        })
        .and_then(|p| p.matches_blob(blob));
    report.outcome(group, "payload digest matches the blob", payload);

    // The chain as the envelope carries it, in its order.
    let certs: Result<Vec<Certificate>, String> = env
        .chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            Certificate::from_der(der, &format!("certificate #{} of the envelope", i + 1))
                .map_err(|e| e.message)
        })
        .collect();
    let certs = match certs {
        Ok(c) => c,
        Err(why) => {
            report.fail(group, "certificate chain", why);
            return;
        }
    };
    let problems = chain::validate(&certs, env.signing_time);
    if problems.is_empty() {
        report.pass(
            group,
            "certificate chain",
            format!(
                "{} certificate(s), every Notary rule holds at the signing time: {}",
                certs.len(),
                subjects(&certs)
            ),
        );
    } else {
        report.fail(group, "certificate chain", list(&problems));
    }
    let now = SystemTime::now();
    let expired: Vec<String> = certs
        .iter()
        .filter_map(|c| {
            let v = &c.x509().tbs_certificate.validity;
            if now > v.not_after.to_system_time() {
                Some(format!(
                    "certificate '{}' expired on {}",
                    c.subject(),
                    v.not_after
                ))
            } else if now < v.not_before.to_system_time() {
                Some(format!(
                    "certificate '{}' is not valid before {}",
                    c.subject(),
                    v.not_before
                ))
            } else {
                None
            }
        })
        .collect();
    if expired.is_empty() {
        report.pass(group, "certificates valid now", "");
    } else {
        report.fail(
            group,
            "certificates valid now",
            format!(
                "{}; without a timestamp, notation verifies the chain at verification time",
                expired.join("; ")
            ),
        );
    }
    if let Some(expiry) = env.expiry {
        if now > expiry {
            report.fail(
                group,
                "signature expiry",
                format!("the signature expired at {}", rfc3339(expiry)),
            );
        }
    }

    // Trust: a certificate of the chain is one of the trust anchors (notation's trust store rule).
    match certs.iter().find(|c| anchors.contains(c)) {
        Some(c) => report.pass(
            group,
            "chain ends at the trust anchor",
            format!("'{}' is a trust anchor", c.subject()),
        ),
        None => report.fail(
            group,
            "chain ends at the trust anchor",
            format!(
                "no certificate of the chain ({}) is a trust anchor ({}); the signature was made under another root",
                subjects(&certs),
                subjects(anchors)
            ),
        ),
    };

    // The leaf's key implies the algorithm; the signature must verify with it.
    let Some(leaf) = certs.first() else {
        report.fail(group, "signature", "the chain is empty");
        return;
    };
    let leaf_key = match leaf.public_key() {
        Ok(k) => k,
        Err(e) => {
            report.fail(group, "signature", e.message);
            return;
        }
    };
    let implied = leaf_key.key_spec().signing_algorithm();
    if implied == env.algorithm {
        report.pass(
            group,
            "algorithm matches the leaf certificate",
            format!("{} key, {implied}", leaf_key.key_spec()),
        );
    } else {
        report.fail(
            group,
            "algorithm matches the leaf certificate",
            format!(
                "the envelope says {} but the leaf certificate '{}' holds an {}, which implies {implied}",
                env.algorithm,
                leaf.subject(),
                leaf_key.describe()
            ),
        );
    }
    let hash = hash_of(env.algorithm);
    match verify_digest(
        &leaf_key,
        hash,
        &hash.digest(&env.signing_input),
        &env.signature,
    ) {
        Ok(()) => report.pass(
            group,
            "signature verifies with the leaf key",
            format!("{} over the {} signing input", env.algorithm, env.format),
        ),
        Err(p) => report.fail(
            group,
            "signature verifies with the leaf key",
            format!("{p} (leaf '{}')", leaf.subject()),
        ),
    };
}

pub fn subjects(certs: &[Certificate]) -> String {
    certs
        .iter()
        .map(|c| format!("'{}'", c.subject()))
        .collect::<Vec<_>>()
        .join(" -> ")
}

pub fn list<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Largest envelope read: a signature, its chain and a timestamp take a few KiB.
pub const MAX_ENVELOPE_BYTES: u64 = 4 << 20;
/// Largest blob read (it is held whole to digest it): the checker signs and verifies sample
/// artifacts; real ones are notation's to sign.
pub const MAX_BLOB_BYTES: u64 = 256 << 20;

/// The bytes of a regular file of at most `limit` bytes; a FIFO or device is refused at once.
pub fn read_file(path: &std::path::Path, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    plugin_protocol::bounded::read_file(path, limit, what).map_err(|e| e.message)
}

/// The `verify` subcommand: reads the files, checks, reports.
pub fn run(
    envelope: &std::path::Path,
    blob: &std::path::Path,
    trust_anchor: &std::path::Path,
) -> Result<Report, String> {
    let bytes = read_file(envelope, MAX_ENVELOPE_BYTES, "envelope")?;
    let blob_bytes = read_file(blob, MAX_BLOB_BYTES, "blob")?;
    let anchors = chain::load_file(trust_anchor).map_err(|e| e.message)?;
    let mut report = Report::new("verify", envelope.display().to_string());
    verify_envelope(&mut report, "verify", &bytes, &blob_bytes, &anchors);
    report.finish();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cose::CoseToSign;
    use crate::jws::JwsToSign;

    #[test]
    fn truncated_or_garbage_envelopes_are_errors_not_panics() {
        let payload = Payload::for_blob(b"blob", HashAlgorithm::Sha256);
        let t = crate::payload::now_seconds();
        let alg = SigningAlgorithm::EcdsaSha256;
        let jws = JwsToSign::new(&payload, alg, t).assemble(&[7; 64], &[vec![0x30, 0x03, 1, 2, 3]]);
        let cose = CoseToSign::new(&payload, alg, t)
            .unwrap()
            .assemble(&[7; 64], &[vec![0x30, 0x03, 1, 2, 3]])
            .unwrap();
        for file in [&jws, &cose] {
            assert!(parse_envelope(file).is_ok());
            for end in 0..file.len() {
                let err = parse_envelope(&file[..end]).unwrap_err();
                assert!(!err.is_empty());
            }
        }
        let err = parse_envelope(b"\x00\x01garbage").unwrap_err();
        assert!(err.contains("neither a JWS"), "{err}");
        // The whole verification reports, never panics, on a chain that is not X.509.
        let mut report = Report::new("verify", "test");
        assert!(!verify_envelope(&mut report, "verify", &cose, b"blob", &[]));
        let failed: Vec<_> = report.failures().map(|c| c.detail.clone()).collect();
        assert!(
            failed
                .iter()
                .any(|d| d.contains("not a valid X.509 certificate")),
            "{failed:?}"
        );
    }
}
