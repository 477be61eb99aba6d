//! A deliberately broken Notation plugin, for the checker's tests only. It answers through the
//! shared pipeline with the softkey backend (key id = PKCS#8 file, chain = `<key>.chain.pem`),
//! then breaks its answer the way real plugins do, chosen by `NOTATION_BROKEN_MODE`:
//!
//! | mode | what it does wrong |
//! |---|---|
//! | (unset) | nothing: a correct plugin named `broken` |
//! | `der-ecdsa` | returns the ECDSA signature as ASN.1 DER instead of r‖s |
//! | `pss-salt` | signs RSASSA-PSS with a 20-byte salt |
//! | `double-hash` | signs the digest of the digest (a backend that hashes its input again) |
//! | `changed-key-id` | answers with a canonicalised keyId |
//! | `chain-file` | returns the certificates of `NOTATION_BROKEN_CHAIN` unchecked |
//! | `plain-stderr` | reports errors as plain text on stderr |
//! | `wrong-signing-algorithm` | names a signingAlgorithm of another hash |
//! | `stray-stdout` | prints a line on stdout before every response |
//! | `lax-probes` | answers the requests notation never sends as the Notary Project's Go Vault plugin does: `{}` and an unknown key with ERROR, an unknown command with ERROR, contractVersion 2.0 accepted, a hashAlgorithm contradicting the keySpec signed anyway |
//! | `go-vault` | `lax-probes`, and the version `v0.1.0+unreleased` (not strict SemVer) |
//! | `missing-version-unsupported` | a request without contractVersion answered UNSUPPORTED_CONTRACT_VERSION |

use std::io::{Read, Write};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use plugin_protocol::contract::Command;
use plugin_protocol::softkey::{SoftKey, SoftKeyBackend};
use plugin_protocol::{pipeline, KeySpec, PluginError, PluginInfo, SigningAlgorithm};
use serde_json::Value;

static INFO: PluginInfo = PluginInfo {
    name: "broken",
    description: "Test-only plugin that breaks the contract on request",
    version: "0.1.0",
    url: "https://github.com/notation-plugins/notation-plugins",
    // The softkey backend reads its own keys (a pretend token, encodings).
    config_keys: plugin_protocol::softkey::INFO.config_keys,
    chain_sources_help: "the file <key path>.chain.pem",
};

fn main() {
    let mode = std::env::var("NOTATION_BROKEN_MODE").unwrap_or_default();
    let command = std::env::args().nth(1).unwrap_or_default();
    let mut input = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut input);
    let lax = mode == "lax-probes" || mode == "go-vault";
    if lax {
        input = laxen(&input);
    }
    let mut result = match Command::parse(&command) {
        Some(c) => pipeline::handle::<SoftKeyBackend>(&INFO, c, &input)
            .and_then(|out| break_response(&mode, c, &input, out)),
        None => Err(PluginError::validation(format!(
            "unknown command '{command}'"
        ))),
    };
    if let Err(e) = &mut result {
        // The Go plugin answers these with its generic code; bad input it still calls invalid.
        let generic = Command::parse(&command).is_none()
            || e.message.contains("missing field")
            || e.message.contains("not found");
        if lax && generic && e.code == plugin_protocol::ErrorCode::Validation {
            e.code = plugin_protocol::ErrorCode::Generic;
        }
        let no_version = serde_json::from_slice::<Value>(&input)
            .is_ok_and(|v| v.is_object() && v.get("contractVersion").is_none());
        if mode == "missing-version-unsupported" && no_version {
            *e = PluginError::unsupported_contract_version("no contractVersion in the request");
        }
    }
    match result {
        Ok(out) => {
            if mode == "stray-stdout" {
                println!("connecting to the backend...");
            }
            print!("{out}");
            let _ = std::io::stdout().flush();
            std::process::exit(0)
        }
        Err(e) => {
            if mode == "plain-stderr" {
                eprintln!("Error: {}", e.message);
            } else {
                eprintln!("{}", e.to_json());
            }
            std::process::exit(1)
        }
    }
}

/// The Go Vault plugin's leniency: contractVersion 2.0 taken as 1.0, a hashAlgorithm that
/// contradicts the keySpec replaced by the keySpec's.
fn laxen(input: &[u8]) -> Vec<u8> {
    let Ok(mut req) = serde_json::from_slice::<Value>(input) else {
        return input.to_vec();
    };
    if req.get("contractVersion").and_then(Value::as_str) == Some("2.0") {
        req["contractVersion"] = Value::String("1.0".into());
    }
    if let Some(spec) = req
        .get("keySpec")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<KeySpec>().ok())
    {
        if req.get("hashAlgorithm").is_some() {
            req["hashAlgorithm"] = Value::String(spec.hash_algorithm().as_str().to_owned());
        }
    }
    serde_json::to_vec(&req).unwrap_or_else(|_| input.to_vec())
}

fn break_response(
    mode: &str,
    command: Command,
    input: &[u8],
    out: String,
) -> Result<String, PluginError> {
    let fail = |e: &dyn std::fmt::Display| PluginError::generic(e.to_string());
    let mut resp: Value = serde_json::from_str(&out).map_err(|e| fail(&e))?;
    let req: Value = serde_json::from_slice(input).map_err(|e| fail(&e))?;
    if mode == "changed-key-id" && command != Command::GetPluginMetadata {
        let id = resp["keyId"].as_str().unwrap_or_default();
        resp["keyId"] = Value::String(format!("{id}#canonical"));
    }
    if mode == "go-vault" && command == Command::GetPluginMetadata {
        resp["version"] = Value::String("v0.1.0+unreleased".into());
    }
    if command != Command::GenerateSignature {
        return serde_json::to_string(&resp).map_err(|e| fail(&e));
    }
    let spec: KeySpec = req["keySpec"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e: String| fail(&e))?;
    match mode {
        "der-ecdsa" => {
            let fixed = STANDARD
                .decode(resp["signature"].as_str().unwrap_or_default())
                .map_err(|e| fail(&e))?;
            let der = plugin_protocol::signature::ecdsa_fixed_to_der(spec, &fixed)
                .ok_or_else(|| fail(&"not an ECDSA key"))?;
            resp["signature"] = Value::String(STANDARD.encode(der));
        }
        "pss-salt" => {
            let path = req["keyId"].as_str().unwrap_or_default();
            let pem = std::fs::read_to_string(path).map_err(|e| fail(&e))?;
            let key = SoftKey::from_pkcs8_pem(&pem)?;
            let payload = STANDARD
                .decode(req["payload"].as_str().unwrap_or_default())
                .map_err(|e| fail(&e))?;
            let digest = spec.hash_algorithm().digest(&payload);
            let sig = match key.sign(&digest, spec, 20, false)? {
                plugin_protocol::BackendSignature::RsaPss(b) => b,
                _ => return Err(fail(&"pss-salt needs an RSA key")),
            };
            resp["signature"] = Value::String(STANDARD.encode(sig));
        }
        "double-hash" => {
            let path = req["keyId"].as_str().unwrap_or_default();
            let pem = std::fs::read_to_string(path).map_err(|e| fail(&e))?;
            let key = SoftKey::from_pkcs8_pem(&pem)?;
            let payload = STANDARD
                .decode(req["payload"].as_str().unwrap_or_default())
                .map_err(|e| fail(&e))?;
            let hash = spec.hash_algorithm();
            let twice = hash.digest(&hash.digest(&payload));
            let salt = hash.output_len();
            let sig = match key.sign(&twice, spec, salt, false)? {
                plugin_protocol::BackendSignature::RsaPss(b)
                | plugin_protocol::BackendSignature::EcdsaFixed(b)
                | plugin_protocol::BackendSignature::EcdsaDer(b) => b,
            };
            resp["signature"] = Value::String(STANDARD.encode(sig));
        }
        "chain-file" => {
            let path = std::env::var("NOTATION_BROKEN_CHAIN").map_err(|e| fail(&e))?;
            let certs = plugin_protocol::chain::load_file(std::path::Path::new(&path))?;
            resp["certificateChain"] = certs
                .iter()
                .map(|c| Value::String(STANDARD.encode(c.der())))
                .collect();
        }
        "wrong-signing-algorithm" => {
            let other = KeySpec::ALL
                .map(KeySpec::signing_algorithm)
                .into_iter()
                .find(|a| {
                    *a != spec.signing_algorithm()
                        && a.jws_name()[..2] == spec.signing_algorithm().jws_name()[..2]
                })
                .unwrap_or(SigningAlgorithm::EcdsaSha256);
            resp["signingAlgorithm"] = Value::String(other.as_str().to_owned());
        }
        _ => {}
    }
    serde_json::to_string(&resp).map_err(|e| fail(&e))
}
