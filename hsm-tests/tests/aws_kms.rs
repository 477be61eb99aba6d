//! notation-aws-kms against LocalStack's KMS and Secrets Manager on 127.0.0.1:4566
//! (`scripts/localstack.sh start`, which these tests run themselves if needed; it is idempotent).
//! Every test makes its own keys, aliases and secrets with unique names, so the tests run in
//! parallel on one LocalStack. LocalStack is set up through its AWS JSON API by the small client
//! below; the plugin itself is driven exactly as notation drives it.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use plugin_protocol::client::{Invocation, PluginClient};
use plugin_protocol::contract::{DescribeKeyResponse, GenerateSignatureResponse};
use plugin_protocol::testca::TestCa;
use plugin_protocol::{chain, KeySpec, PublicKey};
use serde_json::{json, Value};

use hsm_tests::localstack::{
    self, aws, aws_in, create_alias, create_key, public_key, signing_key, ENDPOINT, REGION,
};
use hsm_tests::{assert_error, unique};

// ---------------------------------------------------------------------------------------------
// Driving the plugin

fn plugin() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| hsm_tests::plugin_binary("aws-kms"))
        .clone()
}

/// `base_env` with some variables replaced.
fn env_with(changes: &[(&str, &str)]) -> Vec<(String, String)> {
    hsm_tests::env_with(localstack::env(), changes)
}

fn client(env: &[(String, String)]) -> PluginClient {
    PluginClient::new(plugin()).with_envs(env)
}

/// describe-key then generate-signature, as notation runs them; checks what notation checks:
/// keyId echoed, key spec, signature verifying with the leaf (fixed-width ECDSA, PSS with salt =
/// hash length), chain rules, and the chain ending in `root_pem`.
#[track_caller]
fn sign_and_verify(key_id: &str, spec: KeySpec, pairs: &[(&str, &str)], root_pem: &str) {
    let c = client(&localstack::env());
    let described = c.describe_key(key_id, hsm_tests::config(pairs)).unwrap();
    assert!(
        described.succeeded(),
        "describe-key {key_id}: {}",
        described.stderr_text()
    );
    let described: DescribeKeyResponse = described.response().unwrap();
    assert_eq!(described.key_id, key_id, "keyId echoed byte for byte");
    assert_eq!(described.key_spec, spec);

    let payload = format!("payload for {key_id}");
    let hash = spec.hash_algorithm();
    let inv = c
        .generate_signature(
            key_id,
            spec,
            hash,
            payload.as_bytes(),
            hsm_tests::config(pairs),
        )
        .unwrap();
    assert!(
        inv.succeeded(),
        "generate-signature {key_id}: {}",
        inv.stderr_text()
    );
    let resp: GenerateSignatureResponse = inv.response().unwrap();
    assert_eq!(resp.key_id, key_id);
    assert_eq!(resp.signing_algorithm, spec.signing_algorithm());
    let b64 = base64::engine::general_purpose::STANDARD;
    let certs: Vec<chain::Certificate> = resp
        .certificate_chain
        .iter()
        .enumerate()
        .map(|(i, c)| {
            chain::Certificate::from_der(&b64.decode(c).unwrap(), &format!("cert #{i}")).unwrap()
        })
        .collect();
    let root = chain::parse_pem_or_der(root_pem.as_bytes(), "root").unwrap();
    assert_eq!(
        certs.last().unwrap().der(),
        root[0].der(),
        "the chain ends in the expected root"
    );
    let leaf_key = certs[0].public_key().unwrap();
    chain::build(certs, None, std::time::SystemTime::now())
        .unwrap_or_else(|e| panic!("chain of {key_id} breaks notation's rules: {e}"));
    let signature = b64.decode(&resp.signature).unwrap();
    plugin_protocol::signature::verify_digest(
        &leaf_key,
        hash,
        &hash.digest(payload.as_bytes()),
        &signature,
    )
    .unwrap_or_else(|p| panic!("signature of {key_id} does not verify: {p}"));
}

fn describe(key_id: &str, pairs: &[(&str, &str)], env: &[(String, String)]) -> Invocation {
    hsm_tests::describe(&plugin(), key_id, pairs, env)
}

fn sign(
    key_id: &str,
    spec: KeySpec,
    pairs: &[(&str, &str)],
    env: &[(String, String)],
) -> Invocation {
    hsm_tests::sign(&plugin(), key_id, spec, pairs, env)
}

/// A chain for `key` issued by a fresh test CA: (PEM bundle, root PEM).
fn chain_for(key: &PublicKey, name: &str) -> (String, String) {
    let ca = TestCa::new("CN=AWS KMS Test Root,O=notation-plugins");
    let chain = ca.issue_leaf(key, &format!("CN={name},O=notation-plugins"));
    (chain::to_pem_bundle(&chain), ca.root_pem())
}

fn chain_file(dir: &Path, key: &PublicKey, name: &str) -> (PathBuf, String) {
    let (bundle, root) = chain_for(key, name);
    let path = dir.join(format!("{name}.chain.pem"));
    std::fs::write(&path, bundle).unwrap();
    (path, root)
}

// ---------------------------------------------------------------------------------------------
// The six key specs, with a chain from each source

// ---------------------------------------------------------------------------------------------
// Key references

#[test]
fn every_key_id_form_resolves_and_is_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let (key_id, arn) = signing_key("ECC_NIST_P256");
    let alias = format!("alias/{}", unique("release"));
    create_alias(&alias, &key_id);
    let alias_arn = arn
        .split_once(":key/")
        .map(|(prefix, _)| format!("{prefix}:{alias}"))
        .unwrap();
    let (path, root) = chain_file(dir.path(), &public_key(&key_id), "forms");
    let chain = [("certificate_chain", path.to_str().unwrap())];
    let forms = [
        key_id.clone(),
        arn.clone(),
        alias.clone(),
        alias_arn.clone(),
        format!("awskms:///{key_id}"),
        format!("awskms:///{alias}"),
        format!("awskms:///{arn}"),
        format!("awskms://127.0.0.1:4566/{alias_arn}"),
    ];
    for form in &forms {
        sign_and_verify(form, KeySpec::Ec256, &chain, &root);
    }
}

#[test]
fn awskms_host_selects_the_endpoint() {
    // No AWS_ENDPOINT_URL: only the host in the keyId leads to LocalStack.
    let (key_id, _) = signing_key("ECC_NIST_P384");
    let env = env_with(&[("AWS_ENDPOINT_URL", "")]);
    let inv = describe(&format!("awskms://127.0.0.1:4566/{key_id}"), &[], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let described: DescribeKeyResponse = inv.response().unwrap();
    assert_eq!(described.key_spec, KeySpec::Ec384);
    // ...and endpoint_url in pluginConfig does the same.
    let inv = describe(&key_id, &[("endpoint_url", ENDPOINT)], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
}

#[test]
fn service_specific_endpoint_variable_is_honoured() {
    let (key_id, _) = signing_key("ECC_NIST_P256");
    let env = env_with(&[("AWS_ENDPOINT_URL", ""), ("AWS_ENDPOINT_URL_KMS", ENDPOINT)]);
    let inv = describe(&key_id, &[], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
}

/// A FIPS or dual-stack endpoint with a configured endpoint URL: the SDK's endpoint rules refuse
/// the pair; the plugin says so before any request, as a configuration mistake (it came as a
/// transport failure, retried five times).
#[test]
fn fips_or_dual_stack_with_an_endpoint_url_is_refused_naming_both() {
    let (key_id, _) = signing_key("ECC_NIST_P256");
    for (variable, variant) in [
        ("AWS_USE_FIPS_ENDPOINT", "a FIPS endpoint"),
        ("AWS_USE_DUALSTACK_ENDPOINT", "a dual-stack endpoint"),
    ] {
        let env = env_with(&[(variable, "true")]);
        let inv = describe(&key_id, &[], &env);
        assert_error(
            &inv,
            "VALIDATION_ERROR",
            &[variant, variable, "the KMS endpoint is set to", ENDPOINT],
        );
        let off = env_with(&[(variable, "false")]);
        let inv = describe(&key_id, &[], &off);
        assert!(inv.succeeded(), "{variable}=false: {}", inv.stderr_text());
    }
}

#[test]
fn no_region_says_where_to_set_it() {
    let env = env_with(&[("AWS_REGION", "")]);
    let inv = describe("alias/release", &[], &env);
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["no AWS Region", "region", "AWS_REGION"],
    );
}

#[test]
fn multi_region_key_id_resolves() {
    let m = create_key("RSA_3072", "SIGN_VERIFY", true);
    let key_id = m["KeyId"].as_str().unwrap().to_owned();
    assert!(key_id.starts_with("mrk-"), "LocalStack made {key_id}");
    let dir = tempfile::tempdir().unwrap();
    let (path, root) = chain_file(dir.path(), &public_key(&key_id), "mrk");
    sign_and_verify(
        &key_id,
        KeySpec::Rsa3072,
        &[("certificate_chain", path.to_str().unwrap())],
        &root,
    );
}

#[test]
fn region_comes_from_a_key_arn() {
    // A key in us-west-2, addressed by ARN while AWS_REGION says us-east-1.
    let (status, v) = aws_in(
        "us-west-2",
        "TrentService.CreateKey",
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    );
    assert_eq!(status, 200, "{v}");
    let arn = v["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    assert!(arn.contains(":us-west-2:"), "{arn}");
    let inv = describe(&arn, &[], &localstack::env());
    assert!(inv.succeeded(), "{}", inv.stderr_text());
}

// ---------------------------------------------------------------------------------------------
// Keys notation cannot use

/// (An unknown key id: the contract suite.)
#[test]
fn an_unknown_alias_is_a_validation_error_naming_it() {
    let inv = describe("alias/does-not-exist", &[], &localstack::env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["alias/does-not-exist", "not found"],
    );
}

#[test]
fn malformed_key_id_is_refused_before_any_call() {
    let inv = describe("release-key", &[], &localstack::env());
    assert_error(&inv, "VALIDATION_ERROR", &["release-key", "alias/"]);
}

#[test]
fn disabled_key_names_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let (key_id, _) = signing_key("ECC_NIST_P256");
    let (path, _) = chain_file(dir.path(), &public_key(&key_id), "disabled");
    aws("TrentService.DisableKey", json!({"KeyId": key_id}));
    // AWS refuses GetPublicKey on a disabled key (describe-key fails there); LocalStack still
    // answers it but refuses Sign, so generate-signature is where both fail.
    let inv = sign(
        &key_id,
        KeySpec::Ec256,
        &[("certificate_chain", path.to_str().unwrap())],
        &localstack::env(),
    );
    let err = assert_error(&inv, "VALIDATION_ERROR", &[&key_id, "Disabled", "enable"]);
    let meta = err.error_metadata.unwrap_or_default();
    assert_eq!(meta.get("keyState").map(String::as_str), Some("Disabled"));
    assert!(meta.contains_key("requestId"), "{meta:?}");
}

#[test]
fn key_pending_deletion_names_its_state() {
    let (key_id, _) = signing_key("RSA_2048");
    aws(
        "TrentService.ScheduleKeyDeletion",
        json!({"KeyId": key_id, "PendingWindowInDays": 7}),
    );
    let inv = describe(&key_id, &[], &localstack::env());
    let err = assert_error(&inv, "VALIDATION_ERROR", &[&key_id, "PendingDeletion"]);
    let meta = err.error_metadata.unwrap_or_default();
    assert_eq!(
        meta.get("keyState").map(String::as_str),
        Some("PendingDeletion")
    );
}

#[test]
fn encrypt_decrypt_key_is_refused_naming_its_usage() {
    let m = create_key("RSA_2048", "ENCRYPT_DECRYPT", false);
    let key_id = m["KeyId"].as_str().unwrap();
    let inv = describe(key_id, &[], &localstack::env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &[key_id, "ENCRYPT_DECRYPT", "SIGN_VERIFY"],
    );
}

#[test]
fn secp256k1_key_is_refused_by_name() {
    let (key_id, _) = signing_key("ECC_SECG_P256K1");
    let inv = describe(&key_id, &[], &localstack::env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &[
            &key_id,
            "secp256k1",
            "ECC_SECG_P256K1",
            "notation cannot sign",
        ],
    );
}

#[test]
fn hmac_key_is_refused() {
    // (LocalStack 4.13.1 cannot create SYMMETRIC_DEFAULT keys with these pins; KMS refuses
    // GetPublicKey on them the same way as on HMAC keys.)
    let v = aws(
        "TrentService.CreateKey",
        json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    );
    let key_id = v["KeyMetadata"]["KeyId"].as_str().unwrap();
    let inv = describe(key_id, &[], &localstack::env());
    assert_error(&inv, "VALIDATION_ERROR", &[key_id]);
}

#[test]
fn wrong_region_is_not_found_naming_the_region() {
    let (key_id, _) = signing_key("ECC_NIST_P256");
    let inv = describe(&key_id, &[("region", "eu-west-3")], &localstack::env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &[&key_id, "not found", "eu-west-3"],
    );
}

#[test]
fn certificate_for_another_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (key_id, _) = signing_key("ECC_NIST_P256");
    let (other, _) = signing_key("ECC_NIST_P256");
    let (path, _) = chain_file(dir.path(), &public_key(&other), "other-key");
    let inv = sign(
        &key_id,
        KeySpec::Ec256,
        &[("certificate_chain", path.to_str().unwrap())],
        &localstack::env(),
    );
    assert_error(&inv, "VALIDATION_ERROR", &[&key_id, "CN=other-key"]);
}

#[test]
fn no_certificate_chain_says_where_to_put_one() {
    let (key_id, _) = signing_key("ECC_NIST_P256");
    let inv = sign(&key_id, KeySpec::Ec256, &[], &localstack::env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &[&key_id, "certificate_chain_secret", "certificate_chain"],
    );
}

#[test]
fn missing_secret_is_a_validation_error_naming_it() {
    let (key_id, _) = signing_key("ECC_NIST_P256");
    let name = unique("notation/absent");
    let inv = sign(
        &key_id,
        KeySpec::Ec256,
        &[
            ("certificate_chain_secret", &name),
            ("secrets_endpoint_url", ENDPOINT),
        ],
        &localstack::env(),
    );
    assert_error(&inv, "VALIDATION_ERROR", &[&name, "not found"]);
}

// ---------------------------------------------------------------------------------------------
// Connection, credentials, access and throttling

/// A TCP server on 127.0.0.1 that accepts connections and never answers (an unreachable
/// instance-metadata endpoint, as off-cloud), for `secs` seconds.
fn black_hole(secs: u64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(secs);
        let mut held = Vec::new();
        while Instant::now() < until {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    format!("http://{addr}")
}

#[test]
fn no_credentials_fails_fast_with_what_to_configure() {
    // Off-cloud: no keys, no profile, and an instance-metadata endpoint that never answers.
    plugin(); // built before the clock starts
    let imds = black_hole(120);
    let env = env_with(&[
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_EC2_METADATA_DISABLED", ""),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds),
    ]);
    let inv = describe("alias/release", &[], &env);
    let elapsed = inv.elapsed;
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &["no AWS credentials", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"],
    );
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    eprintln!("no credentials, unresponsive instance metadata: failed after {elapsed:?}");

    // With metadata disabled it is immediate.
    let env = env_with(&[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", "")]);
    let inv = describe("alias/release", &[], &env);
    assert_error(&inv, "ACCESS_DENIED", &["no AWS credentials"]);
    assert!(
        inv.elapsed < Duration::from_secs(3),
        "took {:?}",
        inv.elapsed
    );
}

#[test]
fn credentials_and_region_from_a_named_profile() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let credentials = dir.path().join("credentials");
    std::fs::write(&config, "[profile ci]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        &credentials,
        "[ci]\naws_access_key_id = test\naws_secret_access_key = test\n",
    )
    .unwrap();
    let (key_id, _) = signing_key("ECC_NIST_P256");
    let env = env_with(&[
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_REGION", ""),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
    ]);
    let inv = describe(&key_id, &[("profile", "ci")], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    // A profile that does not exist is named in the error.
    let inv = describe(&key_id, &[("profile", "nope"), ("region", REGION)], &env);
    assert_error(&inv, "ACCESS_DENIED", &["profile 'nope'"]);
}

/// The requests a fake endpoint received (their X-Amz-Target), in order.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A fake AWS JSON endpoint on 127.0.0.1: `answer(target, body)` gives the status and JSON body
/// of each reply (with a request id header); every request's target is recorded.
fn fake_server(answer: impl Fn(&str, &Value) -> (u16, String) + Send + 'static) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            // Read the head and body (Content-Length) before answering.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let mut split = None;
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf);
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        split = Some(end);
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let end = split.unwrap_or(text.len());
            let target = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("x-amz-target")
                        .then(|| v.trim().to_owned())
                })
                .unwrap_or_default();
            let body: Value =
                serde_json::from_str(text.get(end + 4..).unwrap_or("")).unwrap_or(Value::Null);
            record.lock().unwrap().push(target.clone());
            let (status, reply_body) = answer(&target, &body);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\n\
                 x-amzn-RequestId: 11111111-2222-3333-4444-555555555555\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{reply_body}",
                reply_body.len()
            );
            let _ = s.write_all(reply.as_bytes());
        }
    });
    (format!("http://{addr}"), seen)
}

/// A fake endpoint that answers every request with `status` and `body`.
fn fake_aws(status: u16, body: &str) -> (String, Seen) {
    let body = body.to_owned();
    fake_server(move |_, _| (status, body.clone()))
}

#[test]
fn one_round_trip_for_describe_and_one_for_sign() {
    // A fake KMS backed by a software key, answering exactly what KMS answers (SPKI public key,
    // DER ECDSA signatures), counting the calls each command makes.
    let key = plugin_protocol::testca::generate_key(KeySpec::Ec256);
    let public = key.public_key().unwrap();
    let arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let b64 = base64::engine::general_purpose::STANDARD;
    let spki = b64.encode(public.to_spki_der());
    let (url, seen) = fake_server(move |target, body| match target {
        "TrentService.GetPublicKey" => (
            200,
            json!({"KeyId": arn, "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY",
                   "PublicKey": spki, "SigningAlgorithms": ["ECDSA_SHA_256"]})
            .to_string(),
        ),
        "TrentService.Sign" => {
            assert_eq!(
                body["KeyId"], "alias/release",
                "Sign uses the key id as given: KMS resolves the alias, no read before"
            );
            assert_eq!(body["MessageType"], "DIGEST");
            assert_eq!(body["SigningAlgorithm"], "ECDSA_SHA_256");
            let std64 = base64::engine::general_purpose::STANDARD;
            let digest = std64.decode(body["Message"].as_str().unwrap()).unwrap();
            let sig = key.sign(&digest, KeySpec::Ec256, 32, true).unwrap();
            let plugin_protocol::BackendSignature::EcdsaDer(der) = sig else {
                unreachable!()
            };
            (
                200,
                json!({"KeyId": arn, "Signature": std64.encode(der),
                       "SigningAlgorithm": "ECDSA_SHA_256"})
                .to_string(),
            )
        }
        other => (
            400,
            json!({"__type": "UnknownOperationException", "message": other}).to_string(),
        ),
    });
    let dir = tempfile::tempdir().unwrap();
    let (path, _root) = chain_file(dir.path(), &public, "fake");
    let pairs = [
        ("endpoint_url", url.as_str()),
        ("certificate_chain", path.to_str().unwrap()),
    ];
    let c = client(&localstack::env());
    let inv = c
        .describe_key("alias/release", hsm_tests::config(&pairs))
        .unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    assert_eq!(*seen.lock().unwrap(), ["TrentService.GetPublicKey"]);
    seen.lock().unwrap().clear();
    let payload = b"one round trip";
    let inv = c
        .generate_signature(
            "alias/release",
            KeySpec::Ec256,
            KeySpec::Ec256.hash_algorithm(),
            payload,
            hsm_tests::config(&pairs),
        )
        .unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    assert_eq!(*seen.lock().unwrap(), ["TrentService.Sign"]);
    let resp: GenerateSignatureResponse = inv.response().unwrap();
    assert_eq!(
        resp.key_id, "alias/release",
        "the alias is echoed, not the ARN"
    );
    let sig = b64.decode(&resp.signature).unwrap();
    assert_eq!(sig.len(), 64, "DER from KMS became fixed-width r||s");
    let hash = KeySpec::Ec256.hash_algorithm();
    plugin_protocol::signature::verify_digest(&public, hash, &hash.digest(payload), &sig).unwrap();
}

#[test]
fn access_denied_carries_the_full_reason_and_request_id() {
    let reason = "User: arn:aws:iam::111122223333:user/ci is not authorized to perform: \
                  kms:GetPublicKey on resource: arn:aws:kms:us-east-1:111122223333:key/\
                  1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows \
                  the kms:GetPublicKey action";
    let body = json!({"__type": "AccessDeniedException", "message": reason}).to_string();
    let (url, seen) = fake_aws(400, &body);
    let inv = describe(
        "alias/release",
        &[("endpoint_url", &url)],
        &localstack::env(),
    );
    let err = assert_error(
        &inv,
        "ACCESS_DENIED",
        &[
            reason,
            "11111111-2222-3333-4444-555555555555",
            "kms:GetPublicKey",
        ],
    );
    let meta = err.error_metadata.unwrap_or_default();
    assert_eq!(
        meta.get("requestId").map(String::as_str),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "never retried");
}

// ---------------------------------------------------------------------------------------------
// Operator command and metadata

#[test]
fn create_key_prints_a_usable_key_id() {
    let dir = tempfile::tempdir().unwrap();
    let alias = unique("created");
    let out = Command::new(plugin())
        .args(["create-key", "--spec", "ECC_NIST_P521", "--alias", &alias])
        .args(["--tag", "team=release", "--description", "test key"])
        .envs(localstack::env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(key_id, format!("alias/{alias}"));
    let (path, root) = chain_file(dir.path(), &public_key(&key_id), "created");
    sign_and_verify(
        &key_id,
        KeySpec::Ec521,
        &[("certificate_chain", path.to_str().unwrap())],
        &root,
    );

    let out = Command::new(plugin())
        .args(["create-key", "--spec", "RSA-2048"])
        .envs(localstack::env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let arn = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(arn.starts_with("arn:aws:kms:us-east-1:"), "{arn}");

    let out = Command::new(plugin())
        .args(["create-key", "--spec", "ECC_SECG_P256K1"])
        .envs(localstack::env())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ECC_SECG_P256K1"));
}

#[test]
fn certificate_commands_work_on_kms_keys() {
    let (key_id, _) = signing_key("ECC_NIST_P384");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("self.pem");
    let out = Command::new(plugin())
        .args(["certificate", "self-signed", "--key-id", &key_id])
        .args([
            "--subject",
            "CN=kms self-signed,O=notation-plugins",
            "--out",
        ])
        .arg(&cert)
        .envs(localstack::env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(&cert).unwrap();
    sign_and_verify(
        &key_id,
        KeySpec::Ec384,
        &[("certificate_chain", cert.to_str().unwrap())],
        &pem,
    );
}

/// A plain-HTTP KMS (LocalStack) with static keys needs no TLS, so the system's trust store is
/// not read at all: a trust store that would block its reader (a FIFO) changes nothing.
#[test]
fn a_plain_http_endpoint_reads_no_trust_store() {
    let (key_id, _) = signing_key("ECC_NIST_P256");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("roots.pem");
    plugin_protocol::client::make_fifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let env = env_with(&[("SSL_CERT_FILE", fifo), ("SSL_CERT_DIR", fifo)]);
    let mut c = client(&env);
    c.timeout = Duration::from_secs(10);
    let inv = c.describe_key(&key_id, hsm_tests::config(&[])).unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());
}

/// KMS over HTTPS (a TLS front on LocalStack): trusted through the system trust store the plugin
/// reads itself (SSL_CERT_FILE here), describe-key and generate-signature go through the
/// checker; without the server's CA in it, the answer says the certificate is not trusted.
#[test]
fn https_with_the_system_trust_store() {
    let (key_id, _) = signing_key("ECC_NIST_P256");
    let upstream = localstack::ENDPOINT.trim_start_matches("http://");
    let proxy = hsm_tests::tls_proxy::TlsProxy::start(upstream);
    let ca = proxy.ca.display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let ca_root = plugin_protocol::testca::TestCa::new("CN=HTTPS Root,O=Test,ST=WA,C=US");
    let chain = ca_root.issue_leaf(&public_key(&key_id), "CN=https,O=Test,ST=WA,C=US");
    let chain_file = dir.path().join("chain.pem");
    std::fs::write(&chain_file, plugin_protocol::chain::to_pem_bundle(&chain)).unwrap();
    let trusted = env_with(&[
        ("AWS_ENDPOINT_URL", &proxy.url),
        ("SSL_CERT_FILE", &ca),
        ("SSL_CERT_DIR", ""),
    ]);
    let out = dir.path().join("check");
    std::fs::create_dir_all(&out).unwrap();
    hsm_tests::check_and_verify(
        &plugin(),
        &key_id,
        &[("certificate_chain", chain_file.to_str().unwrap())],
        &hsm_tests::env_refs(&trusted),
        &ca_root.root_pem(),
        &out,
    );
    let untrusted = env_with(&[
        ("AWS_ENDPOINT_URL", &proxy.url),
        ("SSL_CERT_FILE", "/dev/null"),
        ("SSL_CERT_DIR", ""),
    ]);
    let mut c = client(&untrusted);
    c.timeout = Duration::from_secs(20);
    let inv = c.describe_key(&key_id, hsm_tests::config(&[])).unwrap();
    assert_eq!(inv.exit_code, Some(1), "{}", inv.stderr_text());
    let err = inv.error().unwrap();
    assert!(
        err.error_message.to_lowercase().contains("certificate"),
        "{}",
        err.error_message
    );
}
