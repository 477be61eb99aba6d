//! The signing conversation notation has with a raw-signature plugin: describe-key, then, per
//! envelope format, generate-signature over the exact signing input notation builds for a blob,
//! every check of the response, and the assembled envelope.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::client::PluginClient;
use plugin_protocol::contract::PluginConfig;
use plugin_protocol::signature::{verify_digest, SignatureProblem};
use plugin_protocol::{KeySpec, PublicKey};

use crate::cose::CoseToSign;
use crate::envelope::Format;
use crate::jws::JwsToSign;
use crate::payload::{now_seconds, Payload};
use crate::report::Report;
use crate::response::{json_document, salvage, string_field};
use crate::verify::{list, subjects, verify_envelope};

/// describe-key: the key id echoed exactly and one of the six key specs.
pub fn describe_key(
    report: &mut Report,
    client: &PluginClient,
    key_id: &str,
    config: &PluginConfig,
) -> Option<(KeySpec, Duration)> {
    const GROUP: &str = "describe-key";
    let inv = match client.describe_key(key_id, Some(config.clone())) {
        Ok(inv) => inv,
        Err(e) => {
            report.fail(
                GROUP,
                "describe-key answers",
                format!("cannot run the plugin: {e}"),
            );
            return None;
        }
    };
    report.timing("describe-key", &inv.command, inv.exit_code, inv.elapsed);
    let value = match json_document(&inv) {
        Ok(v) => {
            report
                .pass(GROUP, "describe-key answers", "")
                .timed(inv.elapsed);
            v
        }
        Err(why) => {
            report
                .fail(GROUP, "describe-key answers", why)
                .timed(inv.elapsed);
            // Stray text around a usable answer: go on, so the signing steps are checked too.
            salvage(&inv)?
        }
    };
    report.outcome(
        GROUP,
        "keyId echoed byte for byte",
        string_field(&value, "keyId").and_then(|k| echoed(key_id, k)),
    );
    let spec = string_field(&value, "keySpec").and_then(|s| {
        s.parse::<KeySpec>()
            .map_err(|e| format!("{e}; notation signs only with these key specs"))
    });
    match spec {
        Ok(spec) => {
            report.pass(
                GROUP,
                "keySpec is one of the six",
                format!(
                    "{spec}: notation will ask for {} and expect {}",
                    spec.hash_algorithm(),
                    spec.signing_algorithm()
                ),
            );
            Some((spec, inv.elapsed))
        }
        Err(why) => {
            report.fail(GROUP, "keySpec is one of the six", why);
            None
        }
    }
}

fn echoed(sent: &str, got: &str) -> Result<String, String> {
    if sent == got {
        Ok(format!("'{got}'"))
    } else {
        Err(format!(
            "the request's keyId was '{sent}' but the response says '{got}'; notation requires it unchanged (do not canonicalise an alias or a path)"
        ))
    }
}

/// What one generate-signature round produced, when it produced something usable.
pub struct Signed {
    pub envelope: Vec<u8>,
    pub chain: Vec<Certificate>,
    pub elapsed: Duration,
}

/// One envelope: build the signing input, call generate-signature, check the response, assemble
/// the envelope and verify it as `notation blob verify` would.
pub fn sign_envelope(
    report: &mut Report,
    client: &PluginClient,
    key_id: &str,
    config: &PluginConfig,
    spec: KeySpec,
    format: Format,
    blob: &[u8],
) -> Option<Signed> {
    let group = format!("generate-signature ({format})");
    let group = group.as_str();
    let hash = spec.hash_algorithm();
    let payload = Payload::for_blob(blob, hash);
    let signing_time = now_seconds();
    enum ToSign {
        Jws(JwsToSign),
        Cose(Box<CoseToSign>),
    }
    let to_sign = match format {
        Format::Jws => ToSign::Jws(JwsToSign::new(
            &payload,
            spec.signing_algorithm(),
            signing_time,
        )),
        Format::Cose => match CoseToSign::new(&payload, spec.signing_algorithm(), signing_time) {
            Ok(c) => ToSign::Cose(Box::new(c)),
            Err(why) => {
                report.fail(group, "signing input", why);
                return None;
            }
        },
    };
    let input = match &to_sign {
        ToSign::Jws(j) => j.signing_input(),
        ToSign::Cose(c) => c.signing_input(),
    };

    let inv = match client.generate_signature(key_id, spec, hash, &input, Some(config.clone())) {
        Ok(inv) => inv,
        Err(e) => {
            report.fail(
                group,
                "generate-signature answers",
                format!("cannot run the plugin: {e}"),
            );
            return None;
        }
    };
    report.timing(
        format!("generate-signature ({})", format.name()),
        &inv.command,
        inv.exit_code,
        inv.elapsed,
    );
    let value = match json_document(&inv) {
        Ok(v) => v,
        Err(why) => {
            report
                .fail(group, "generate-signature answers", why)
                .timed(inv.elapsed);
            return None;
        }
    };
    let fields = (
        string_field(&value, "keyId"),
        string_field(&value, "signature"),
        string_field(&value, "signingAlgorithm"),
        value.get("certificateChain").and_then(|c| c.as_array()),
    );
    let (Ok(got_key), Ok(sig_b64), Ok(alg), Some(chain_b64)) = fields else {
        let why = [
            fields.0.err(),
            fields.1.err(),
            fields.2.err(),
            fields
                .3
                .is_none()
                .then(|| "field `certificateChain` must be an array of base64 certificates".into()),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<String>>()
        .join("; ");
        report
            .fail(group, "generate-signature answers", why)
            .timed(inv.elapsed);
        return None;
    };
    report
        .pass(
            group,
            "generate-signature answers",
            format!(
                "{} signing input, {hash}, {} bytes signed",
                format,
                input.len()
            ),
        )
        .timed(inv.elapsed);
    report.outcome(group, "keyId echoed byte for byte", echoed(key_id, got_key));
    let expected_alg = spec.signing_algorithm();
    report.outcome(
        group,
        "signingAlgorithm matches the keySpec",
        if alg == expected_alg.as_str() {
            Ok(alg.to_owned())
        } else {
            Err(format!(
                "signingAlgorithm is '{alg}' but keySpec {spec} requires {expected_alg}; notation rejects the signature"
            ))
        },
    );

    // The chain, in the order the plugin returned it.
    let certs = parse_chain(chain_b64);
    let certs = match certs {
        Ok(c) if c.is_empty() => {
            report.fail(
                group,
                "certificate chain follows notation's rules",
                "certificateChain is empty",
            );
            return None;
        }
        Ok(c) => c,
        Err(why) => {
            report.fail(group, "certificate chain follows notation's rules", why);
            return None;
        }
    };
    let problems = chain_problems(&certs);
    report.outcome(
        group,
        "certificate chain follows notation's rules",
        if problems.is_empty() {
            Ok(subjects(&certs))
        } else {
            Err(list(&problems))
        },
    );

    let leaf = &certs[0];
    let leaf_key = match leaf.public_key() {
        Ok(k) => {
            report.outcome(
                group,
                "leaf certificate's algorithm equals the keySpec",
                if k.key_spec() == spec {
                    Ok(format!("'{}' holds an {}", leaf.subject(), k.describe()))
                } else {
                    Err(format!(
                        "the leaf certificate '{}' holds an {} (implying {}) but describe-key said {spec}; notation rejects the signature",
                        leaf.subject(),
                        k.describe(),
                        k.key_spec().signing_algorithm()
                    ))
                },
            );
            Some(k)
        }
        Err(e) => {
            report.fail(
                group,
                "leaf certificate's algorithm equals the keySpec",
                e.message,
            );
            None
        }
    };

    let signature = match STANDARD.decode(sig_b64) {
        Ok(s) => s,
        Err(e) => {
            report.fail(
                group,
                "signature encoding",
                format!("`signature` is not standard base64: {e}"),
            );
            return None;
        }
    };
    let leaf_key = leaf_key?;
    check_signature(
        report, group, spec, format, leaf, &leaf_key, &input, &signature,
    );

    // The envelope, assembled from what the plugin returned, then verified like a user would.
    let ders: Vec<Vec<u8>> = certs.iter().map(|c| c.der().to_vec()).collect();
    let envelope = match &to_sign {
        ToSign::Jws(j) => Ok(j.assemble(&signature, &ders)),
        ToSign::Cose(c) => c.assemble(&signature, &ders),
    };
    let envelope = match envelope {
        Ok(e) => e,
        Err(why) => {
            report.fail(group, "envelope assembled and verified", why);
            return None;
        }
    };
    report.outcome(
        group,
        "envelope assembled and verified",
        verify_assembled(&envelope, format, blob, &certs),
    );
    Some(Signed {
        envelope,
        chain: certs,
        elapsed: inv.elapsed,
    })
}

fn parse_chain(chain_b64: &[serde_json::Value]) -> Result<Vec<Certificate>, String> {
    chain_b64
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let text = c
                .as_str()
                .ok_or_else(|| format!("certificateChain[{i}] is not a string"))?;
            let der = STANDARD
                .decode(text)
                .map_err(|e| format!("certificateChain[{i}] is not standard base64: {e}"))?;
            Certificate::from_der(&der, &format!("certificateChain[{i}]")).map_err(|e| e.message)
        })
        .collect()
}

/// Every chain rule, plus the order: notation takes the chain as given, leaf first.
fn chain_problems(certs: &[Certificate]) -> Vec<String> {
    let mut problems: Vec<String> = chain::validate(certs, SystemTime::now())
        .iter()
        .map(ToString::to_string)
        .collect();
    if let Ok(ordered) = chain::order(certs.to_vec(), None) {
        if ordered != certs {
            problems.insert(
                0,
                format!(
                    "the chain is not ordered leaf first, root last; notation needs {}",
                    subjects(&ordered)
                ),
            );
        }
    }
    problems
}

/// The signature's encoding, then whether it verifies with the leaf key over the signing input,
/// with a diagnosis of the usual reasons it does not.
#[allow(clippy::too_many_arguments)]
fn check_signature(
    report: &mut Report,
    group: &str,
    spec: KeySpec,
    format: Format,
    leaf: &Certificate,
    leaf_key: &PublicKey,
    input: &[u8],
    signature: &[u8],
) {
    let hash = spec.hash_algorithm();
    let verdict = verify_digest(leaf_key, hash, &hash.digest(input), signature);
    let encoding_ok = !matches!(
        verdict,
        Err(SignatureProblem::EcdsaDer { .. }
            | SignatureProblem::EcdsaLength { .. }
            | SignatureProblem::EcdsaNotDer { .. }
            | SignatureProblem::PssSaltLength { .. }
            | SignatureProblem::RsaPkcs1v15
            | SignatureProblem::RsaLength { .. }
            | SignatureProblem::KindMismatch { .. })
    );
    let expected_encoding = match spec.ecdsa_scalar_len() {
        Some(n) => format!("fixed-width r‖s, {} bytes", 2 * n),
        None => format!("RSASSA-PSS, salt {} bytes", hash.output_len()),
    };
    match &verdict {
        Err(p) if !encoding_ok => report.fail(group, "signature encoding", p.to_string()),
        _ => report.pass(group, "signature encoding", expected_encoding),
    };
    const NAME: &str = "signature verifies with the leaf certificate's key";
    match &verdict {
        Ok(()) => report.pass(group, NAME, format!("over the {format} signing input")),
        Err(_) if !encoding_ok => {
            report.skip(group, NAME, "the signature's encoding is wrong (above)")
        }
        Err(p) => {
            // A backend that hashes what it is given hashes the digest again (AWS KMS with
            // MessageType RAW, a PKCS#11 mechanism with a built-in hash).
            let twice = hash.digest(&hash.digest(input));
            let why = if verify_digest(leaf_key, hash, &twice, signature).is_ok() {
                format!(
                    "the signature is over the {hash} digest of the {hash} digest: the payload was hashed twice (a backend that hashes its input was given the digest; tell it the input is already a digest)"
                )
            } else {
                format!(
                    "{p}: either the leaf certificate '{}' ({}) does not certify the key that signed (return the chain issued for this key), or something other than the {hash} digest of the payload was signed",
                    leaf.subject(),
                    leaf_key.describe()
                )
            };
            report.fail(group, NAME, why)
        }
    };
}

/// Verifies an assembled envelope as `notation blob verify` would, trusting the chain's root.
fn verify_assembled(
    envelope: &[u8],
    format: Format,
    blob: &[u8],
    certs: &[Certificate],
) -> Result<String, String> {
    let root: Vec<Certificate> = certs.last().cloned().into_iter().collect();
    let mut scratch = Report::new("verify", "");
    if verify_envelope(&mut scratch, "verify", envelope, blob, &root) {
        Ok(format!(
            "{format} envelope, {} bytes; verifies against the chain's root like `notation blob verify`",
            envelope.len()
        ))
    } else {
        Err(scratch
            .failures()
            .map(|c| format!("{}: {}", c.name, c.detail))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}
