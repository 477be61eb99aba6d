//! The contract suite (hsm_tests::contract) instantiated for every backend: notation-pkcs11 on
//! SoftHSM2, notation-hashicorp-vault on OpenBao, notation-aws-kms on LocalStack,
//! notation-azure-keyvault on the Key Vault emulator, notation-gcp-kms on the Cloud KMS
//! emulator, notation-yubikey on the virtual PIV card. Each fixture below only says how to make
//! a key, where its chain comes from, and how to make its backend faulty; the behaviours are
//! written once in hsm_tests::contract. What is specific to one backend stays in its own file.

use std::sync::Arc;
use std::time::Duration;

use hsm_tests::contract::{
    pairs, Fault, Faulty, Fixture, Key, NotApplicable, Pairs, Run, Secrets, Trip, TripKind,
    Unknown, Unreachable,
};
use hsm_tests::fake::{self, closed_port, tampering_proxy, Answer, Fake, Tamper};
use hsm_tests::tamper::{self, Arranged, Tampering};
use hsm_tests::unique;
use plugin_protocol::testca::TestCa;
use plugin_protocol::{chain, KeySpec, PublicKey};
use serde_json::{json, Value};

/// A chain for `key` from a fresh test CA (with an intermediate when `intermediate`): (PEM
/// bundle, root PEM).
fn chain_for(key: &PublicKey, name: &str, intermediate: bool) -> (String, String) {
    let mut ca = TestCa::new("CN=Contract Test Root,O=notation-plugins");
    if intermediate {
        ca = ca.with_intermediate(
            "CN=Contract Test CA,O=notation-plugins",
            &Default::default(),
        );
    }
    let chain = ca.issue_leaf(key, &format!("CN={name},O=notation-plugins"));
    (chain::to_pem_bundle(&chain), ca.root_pem())
}

/// A file holding `text`, kept alive by the returned directory.
fn file(name: &str, text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path.display().to_string())
}

fn hold<T: 'static>(t: T) -> hsm_tests::contract::Hold {
    Some(Box::new(t))
}

/// A counter of a proxy's or fake's requests.
fn counter(fake: &Fake) -> Box<dyn Fn() -> usize> {
    let n = Arc::clone(&fake.requests);
    Box::new(move || n.load(std::sync::atomic::Ordering::SeqCst))
}

/// The request lines (or, with `header`, that header's values) a proxy forwarded.
fn heads(fake: &Fake, header: Option<&'static str>) -> Box<dyn Fn() -> Vec<String>> {
    let seen = Arc::clone(&fake.heads);
    Box::new(move || {
        seen.lock()
            .unwrap()
            .iter()
            .filter_map(|h| match header {
                None => h.lines().next().map(str::to_owned),
                Some(name) => h.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                }),
            })
            .collect()
    })
}

fn peak(fake: &Fake) -> Box<dyn Fn() -> usize> {
    let p = Arc::clone(&fake.peak_in_flight);
    Box::new(move || p.load(std::sync::atomic::Ordering::SeqCst))
}

/// A proxy in front of `upstream` holding every request 300 ms, so that requests made at the
/// same time overlap.
fn slow_proxy(upstream: &str, on: &'static str) -> Fake {
    tampering_proxy(upstream, on, Tamper::Delay(Duration::from_millis(300)))
}

// =============================================================================================
// HashiCorp Vault on OpenBao

mod vault {
    use super::*;
    use hsm_tests::openbao::{env_with, root_env, server, Api};

    pub struct Vault;

    fn key_type(spec: KeySpec) -> &'static str {
        match spec {
            KeySpec::Rsa2048 => "rsa-2048",
            KeySpec::Rsa3072 => "rsa-3072",
            KeySpec::Rsa4096 => "rsa-4096",
            KeySpec::Ec256 => "ecdsa-p256",
            KeySpec::Ec384 => "ecdsa-p384",
            KeySpec::Ec521 => "ecdsa-p521",
        }
    }

    /// A Transit key of `spec` and its chain (PEM bundle, root).
    fn transit_key(spec: KeySpec, prefix: &str) -> (String, String, String) {
        let api = Api::root();
        let name = unique(prefix);
        api.create_key(&name, key_type(spec));
        let (bundle, root) = chain_for(&api.public_key(&name, None), &name, false);
        (name, bundle, root)
    }

    fn proxied(addr: &str) -> Pairs {
        hsm_tests::env_with(root_env(), &[("VAULT_ADDR", addr)])
    }

    fn edit(v: &mut Value, f: fn(Vec<u8>) -> Vec<u8>) {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        if let Some((prefix, data)) = v["data"]["signature"]
            .as_str()
            .and_then(|s| s.rsplit_once(':'))
        {
            v["data"]["signature"] =
                json!(format!("{prefix}:{}", tamper::edit_base64(data, &b64, f)));
        }
    }

    impl Fixture for Vault {
        fn name(&self) -> &'static str {
            "hashicorp-vault"
        }

        fn signing_call(&self) -> &'static str {
            "/transit/sign/"
        }

        fn supports(&self, _: KeySpec) -> Result<(), NotApplicable> {
            Ok(())
        }

        fn chain_sources(&self) -> &'static [&'static str] {
            &["file", "kv"]
        }

        fn key(&self, spec: KeySpec, source: &str) -> Key {
            let api = Api::root();
            let (name, bundle, root) = transit_key(spec, source);
            match source {
                "file" => {
                    let (dir, path) = file("chain.pem", &bundle);
                    // Every key-reference form: plain, pinned, and the sigstore schemes.
                    let key_id = match spec {
                        KeySpec::Rsa2048 | KeySpec::Ec256 => name.clone(),
                        KeySpec::Rsa3072 | KeySpec::Ec384 => format!("hashivault://{name}"),
                        _ => format!("openbao://{name}:1"),
                    };
                    Key {
                        key_id,
                        pairs: pairs(&[("certificate_chain", &path)]),
                        env: root_env(),
                        root_pem: root,
                        after: None,
                        hold: hold(dir),
                    }
                }
                _ => {
                    // The experimental notation-hashicorp-vault plugin's layout: secret/<key
                    // name>, field `certificate`, a PEM bundle.
                    api.call(
                        "POST",
                        &format!("secret/data/{name}"),
                        Some(json!({ "data": { "certificate": bundle } })),
                    );
                    Key {
                        key_id: name,
                        pairs: pairs(&[("chain_source", "kv")]),
                        env: root_env(),
                        root_pem: root,
                        after: None,
                        hold: None,
                    }
                }
            }
        }

        fn unknown_key(&self) -> Unknown {
            let name = unique("no-such-key");
            Unknown {
                key_id: name.clone(),
                pairs: vec![],
                env: root_env(),
                fragments: vec![name, "mount 'transit'".into(), "does not exist".into()],
                metadata: vec![],
                hold: None,
            }
        }

        fn faulty(&self, fault: Fault) -> Result<Faulty, NotApplicable> {
            let (proxy, fragments) = match fault {
                Fault::Down => {
                    let addr = format!("http://127.0.0.1:{}", closed_port());
                    let run = Run::describe("some-key", vec![], proxied(&addr));
                    return Ok(Faulty {
                        run,
                        fragments: vec![addr, "connection refused".into()],
                        metadata: vec![],
                        attempts: None,
                        after: None,
                        hold: None,
                    });
                }
                Fault::Hung => (
                    tampering_proxy(&server().addr, "/v1/", Tamper::Hang),
                    vec![],
                ),
                Fault::Throttled => (
                    tampering_proxy(
                        &server().addr,
                        "/v1/",
                        Tamper::Fail {
                            count: usize::MAX,
                            status: "429 Too Many Requests",
                            body: r#"{"errors":["request rate limited :("]}"#,
                        },
                    ),
                    vec!["rate".into(), "attempts".into()],
                ),
                Fault::ServerError => {
                    let proxy = tampering_proxy(
                        &server().addr,
                        "/v1/",
                        Tamper::Fail {
                            count: usize::MAX,
                            status: "500 Internal Server Error",
                            body: r#"{"errors":["storage down"]}"#,
                        },
                    );
                    let addr = proxy.addr.clone();
                    (proxy, vec!["storage down".into(), "500".into(), addr])
                }
            };
            Ok(Faulty {
                run: Run::describe("some-key", vec![], proxied(&proxy.addr)),
                fragments,
                metadata: vec![],
                attempts: Some(counter(&proxy)),
                after: None,
                hold: hold(proxy),
            })
        }

        fn secrets(&self) -> Secrets {
            let api = Api::root();
            let (name, bundle, _) = transit_key(KeySpec::Ec256, "log-key");
            let (dir, chain) = file("chain.pem", &bundle);
            let token = api.create_token(&["root"]);
            let env = env_with(Some(&token));
            // A login secret too: an AppRole secret id that Vault refuses.
            let secret_id = "1d7f3b2a-0000-4c3e-9a8b-secretsecret";
            let approle = hsm_tests::env_with(
                env.clone(),
                &[
                    ("NOTATION_HASHICORP_VAULT_SECRET_ID", secret_id),
                    ("NOTATION_HASHICORP_VAULT_ROLE_ID", "some-role-id"),
                ],
            );
            Secrets {
                runs: vec![
                    (
                        Run::sign(
                            &name,
                            KeySpec::Ec256,
                            pairs(&[("certificate_chain", &chain)]),
                            env,
                        ),
                        true,
                    ),
                    (
                        Run::describe(&name, pairs(&[("auth_method", "approle")]), approle),
                        false,
                    ),
                ],
                values: vec![token, secret_id.into()],
                hold: hold(dir),
            }
        }

        fn unreachable(&self) -> Unreachable {
            let fake = fake::serve(Answer::Hang);
            Unreachable {
                env: proxied(&fake.addr),
                requests: Some(counter(&fake)),
                hold: hold(fake),
            }
        }

        /// describe-key reads the key; generate-signature signs without reading the key first,
        /// and reads a chain kept in Vault at the same time as it signs.
        fn round_trips(&self) -> Result<Vec<Trip>, NotApplicable> {
            let api = Api::root();
            let (name, pem, _) = transit_key(KeySpec::Ec256, "trips");
            api.call(
                "POST",
                &format!("secret/data/{name}"),
                Some(json!({ "data": { "certificate": pem } })),
            );
            api.call(
                "POST",
                &format!("transit/keys/{name}/set-certificate"),
                Some(json!({ "version": 1, "certificate_chain": pem })),
            );
            let (dir, file) = file("chain.pem", &pem);
            let read_key = format!("GET /v1/transit/keys/{name} ");
            let sign_call = format!("POST /v1/transit/sign/{name} ");
            let read_kv = format!("GET /v1/secret/data/{name} ");
            let cases = [
                (
                    "describe-key",
                    TripKind::DescribeKey,
                    vec![],
                    vec![read_key.clone()],
                ),
                (
                    "generate-signature, chain from a file",
                    TripKind::SignLocalChain,
                    vec![("certificate_chain", file.as_str())],
                    vec![sign_call.clone()],
                ),
                (
                    "generate-signature, chain on the Transit key",
                    TripKind::Other,
                    vec![],
                    vec![read_key, sign_call.clone()],
                ),
                (
                    "generate-signature, chain in KV",
                    TripKind::Other,
                    vec![("chain_source", "kv")],
                    vec![read_kv, sign_call],
                ),
            ];
            let dir = Arc::new(dir);
            Ok(cases
                .into_iter()
                .map(|(what, kind, config, expected)| {
                    let proxy = slow_proxy(&server().addr, "/v1/");
                    let env = proxied(&proxy.addr);
                    let run = match kind {
                        TripKind::DescribeKey => Run::describe(&name, pairs(&config), env),
                        _ => Run::sign(&name, KeySpec::Ec256, pairs(&config), env),
                    };
                    Trip {
                        what: what.into(),
                        kind,
                        run,
                        in_flight: Some((expected.len(), peak(&proxy))),
                        expected,
                        calls: heads(&proxy, None),
                        hold: hold((proxy, Arc::clone(&dir))),
                    }
                })
                .collect())
        }

        fn tampered(&self, t: Tampering) -> Result<Arranged, NotApplicable> {
            let (name, bundle, _) = transit_key(KeySpec::Ec256, "tamper");
            let (dir, chain) = file("chain.pem", &bundle);
            let proxy = tamper::proxy(
                &server().addr,
                "/transit/sign/",
                t,
                r#"{"errors":["request rate limit exceeded"]}"#,
                |v| edit(v, tamper::flip_bit),
                |v| edit(v, tamper::other_ecdsa_encoding),
            );
            Ok(Arranged {
                key_id: name,
                pairs: pairs(&[("certificate_chain", &chain)]),
                env: proxied(&proxy.addr),
                hold: hold((dir, proxy)),
            })
        }

        fn at_endpoint(&self, url: &str) -> Result<Run, NotApplicable> {
            Ok(Run::describe(
                "fault-key",
                vec![],
                env_with(Some("fault-secret-7373"))
                    .into_iter()
                    .map(|(k, v)| {
                        if k == "VAULT_ADDR" {
                            (k, url.to_owned())
                        } else {
                            (k, v)
                        }
                    })
                    .collect(),
            ))
        }
    }
}

hsm_tests::contract_suite!(hashicorp_vault, vault::Vault);

// =============================================================================================
// AWS KMS on LocalStack

mod aws {
    use super::*;
    use hsm_tests::localstack::{self, create_secret, public_key, signing_key, ENDPOINT, REGION};

    pub struct Aws;

    fn kms_spec(spec: KeySpec) -> &'static str {
        match spec {
            KeySpec::Rsa2048 => "RSA_2048",
            KeySpec::Rsa3072 => "RSA_3072",
            KeySpec::Rsa4096 => "RSA_4096",
            KeySpec::Ec256 => "ECC_NIST_P256",
            KeySpec::Ec384 => "ECC_NIST_P384",
            KeySpec::Ec521 => "ECC_NIST_P521",
        }
    }

    /// A KMS key of `spec` and its chain (key id, PEM bundle, root).
    fn kms_key(spec: KeySpec, name: &str) -> (String, String, String) {
        let (key_id, _) = signing_key(kms_spec(spec));
        let (bundle, root) = chain_for(&public_key(&key_id), name, false);
        (key_id, bundle, root)
    }

    fn env_with(changes: &[(&str, &str)]) -> Pairs {
        hsm_tests::env_with(localstack::env(), changes)
    }

    fn edit(v: &mut Value, f: fn(Vec<u8>) -> Vec<u8>) {
        let b64 = base64::engine::general_purpose::STANDARD;
        if let Some(sig) = v["Signature"].as_str() {
            v["Signature"] = json!(tamper::edit_base64(sig, &b64, f));
        }
    }

    /// A proxy in front of LocalStack answering every KMS call with `status` and `body`.
    fn failing(status: &'static str, body: &'static str) -> Fake {
        tampering_proxy(
            ENDPOINT,
            "TrentService.",
            Tamper::Fail {
                count: usize::MAX,
                status,
                body,
            },
        )
    }

    impl Fixture for Aws {
        fn name(&self) -> &'static str {
            "aws-kms"
        }

        fn signing_call(&self) -> &'static str {
            "TrentService.Sign"
        }

        fn supports(&self, _: KeySpec) -> Result<(), NotApplicable> {
            Ok(())
        }

        fn chain_sources(&self) -> &'static [&'static str] {
            &["file", "secrets manager"]
        }

        fn key(&self, spec: KeySpec, source: &str) -> Key {
            let (key_id, bundle, root) = kms_key(spec, kms_spec(spec));
            let (dir, config) = match source {
                "file" => {
                    let (dir, path) = file("chain.pem", &bundle);
                    (Some(dir), pairs(&[("certificate_chain", &path)]))
                }
                _ => {
                    let name = unique("notation/chain");
                    let arn = create_secret(&name, &bundle);
                    // By name for half of the specs, by ARN for the other half.
                    let secret = match spec {
                        KeySpec::Rsa2048 | KeySpec::Rsa4096 | KeySpec::Ec384 => name,
                        _ => arn,
                    };
                    (
                        None,
                        pairs(&[
                            ("certificate_chain_secret", &secret),
                            ("secrets_endpoint_url", ENDPOINT),
                        ]),
                    )
                }
            };
            Key {
                key_id,
                pairs: config,
                env: localstack::env(),
                root_pem: root,
                after: None,
                hold: hold(dir),
            }
        }

        fn unknown_key(&self) -> Unknown {
            let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
            Unknown {
                key_id: missing.into(),
                pairs: vec![],
                env: localstack::env(),
                fragments: vec![missing.into(), "not found".into(), REGION.into()],
                metadata: vec![("awsErrorCode".into(), "NotFoundException".into())],
                hold: None,
            }
        }

        fn faulty(&self, fault: Fault) -> Result<Faulty, NotApplicable> {
            let (proxy, fragments) = match fault {
                Fault::Down => {
                    let url = format!("http://127.0.0.1:{}", closed_port());
                    return Ok(Faulty {
                        run: Run::describe(
                            "alias/release",
                            pairs(&[("endpoint_url", &url)]),
                            localstack::env(),
                        ),
                        fragments: vec![url.trim_start_matches("http://").into()],
                        metadata: vec![],
                        attempts: None,
                        after: None,
                        hold: None,
                    });
                }
                Fault::Hung => (
                    tampering_proxy(ENDPOINT, "TrentService.", Tamper::Hang),
                    vec![],
                ),
                Fault::Throttled => (
                    failing(
                        "400 Bad Request",
                        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                    ),
                    vec!["Rate exceeded".into(), "attempts".into()],
                ),
                Fault::ServerError => (
                    failing(
                        "500 Internal Server Error",
                        r#"{"__type":"KMSInternalException","message":"internal failure"}"#,
                    ),
                    vec!["KMSInternalException".into(), "internal failure".into()],
                ),
            };
            Ok(Faulty {
                run: Run::describe(
                    "alias/release",
                    pairs(&[("endpoint_url", &proxy.addr)]),
                    localstack::env(),
                ),
                fragments,
                metadata: vec![],
                attempts: Some(counter(&proxy)),
                after: None,
                hold: hold(proxy),
            })
        }

        fn secrets(&self) -> Secrets {
            let (key_id, bundle, _) = kms_key(KeySpec::Ec256, "log");
            let (dir, chain) = file("chain.pem", &bundle);
            let secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRET";
            let token = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";
            let env = env_with(&[
                ("AWS_SECRET_ACCESS_KEY", secret),
                ("AWS_SESSION_TOKEN", token),
            ]);
            let chain = pairs(&[("certificate_chain", &chain)]);
            Secrets {
                runs: vec![
                    (
                        Run::sign(&key_id, KeySpec::Ec256, chain.clone(), env.clone()),
                        true,
                    ),
                    (Run::describe("alias/does-not-exist", chain, env), false),
                ],
                values: vec![secret.into(), token.into()],
                hold: hold(dir),
            }
        }

        fn unreachable(&self) -> Unreachable {
            // No credentials, no Region, an endpoint that never answers.
            let fake = fake::serve(Answer::Hang);
            Unreachable {
                env: env_with(&[
                    ("AWS_ACCESS_KEY_ID", ""),
                    ("AWS_SECRET_ACCESS_KEY", ""),
                    ("AWS_REGION", ""),
                    ("AWS_ENDPOINT_URL", &fake.addr),
                ]),
                requests: Some(counter(&fake)),
                hold: hold(fake),
            }
        }

        /// describe-key is one GetPublicKey; generate-signature is one Sign (no key read
        /// first), plus the Secrets Manager chain at the same time.
        fn round_trips(&self) -> Result<Vec<Trip>, NotApplicable> {
            let (key_id, bundle, _) = kms_key(KeySpec::Ec256, "trips");
            let (dir, file) = file("chain.pem", &bundle);
            let secret = unique("notation/trips");
            create_secret(&secret, &bundle);
            let cases = [
                (
                    "describe-key",
                    TripKind::DescribeKey,
                    vec![],
                    vec!["TrentService.GetPublicKey"],
                ),
                (
                    "generate-signature, chain from a file",
                    TripKind::SignLocalChain,
                    vec![("certificate_chain", file.as_str())],
                    vec!["TrentService.Sign"],
                ),
                (
                    "generate-signature, chain in Secrets Manager",
                    TripKind::Other,
                    vec![("certificate_chain_secret", secret.as_str())],
                    vec!["TrentService.Sign", "secretsmanager.GetSecretValue"],
                ),
            ];
            let dir = Arc::new(dir);
            Ok(cases
                .into_iter()
                .map(|(what, kind, mut config, expected)| {
                    let proxy = slow_proxy(ENDPOINT, "POST");
                    config.push(("endpoint_url", &proxy.addr));
                    config.push(("secrets_endpoint_url", &proxy.addr));
                    let run = match kind {
                        TripKind::DescribeKey => {
                            Run::describe(&key_id, pairs(&config), localstack::env())
                        }
                        _ => Run::sign(&key_id, KeySpec::Ec256, pairs(&config), localstack::env()),
                    };
                    Trip {
                        what: what.into(),
                        kind,
                        run,
                        in_flight: Some((expected.len(), peak(&proxy))),
                        expected: expected.into_iter().map(String::from).collect(),
                        calls: heads(&proxy, Some("x-amz-target")),
                        hold: hold((proxy, Arc::clone(&dir))),
                    }
                })
                .collect())
        }

        fn tampered(&self, t: Tampering) -> Result<Arranged, NotApplicable> {
            let (key_id, bundle, _) = kms_key(KeySpec::Ec256, "tamper");
            let (dir, chain) = file("chain.pem", &bundle);
            let proxy = tamper::proxy(
                ENDPOINT,
                "TrentService.Sign",
                t,
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
                |v| edit(v, tamper::flip_bit),
                |v| edit(v, tamper::other_ecdsa_encoding),
            );
            Ok(Arranged {
                key_id,
                pairs: pairs(&[("certificate_chain", &chain)]),
                env: env_with(&[("AWS_ENDPOINT_URL", &proxy.addr)]),
                hold: hold((dir, proxy)),
            })
        }

        fn at_endpoint(&self, url: &str) -> Result<Run, NotApplicable> {
            Ok(Run::describe(
                "alias/fault-key",
                vec![],
                env_with(&[
                    ("AWS_ENDPOINT_URL", url),
                    ("AWS_SECRET_ACCESS_KEY", "fault-secret-7373"),
                ]),
            ))
        }
    }
}

hsm_tests::contract_suite!(aws_kms, aws::Aws);

// =============================================================================================
// Azure Key Vault on the Key Vault emulator

mod azure {
    use super::*;
    use hsm_tests::keyvault::{
        admin_ok, base_env, ca_bundle, ca_issued_certificate, create_key, env_with, fault,
        requests, self_signed_certificate, st, vault_url, EC_256, SPECS,
    };
    use std::sync::Mutex;

    pub struct Azure;

    fn props(spec: KeySpec) -> &'static str {
        SPECS.iter().find(|(s, _)| *s == spec).unwrap().1
    }

    /// A principal that may not read secrets (the chain then comes from the certificate).
    fn no_secrets() -> Pairs {
        env_with(&[("AZURE_CLIENT_ID", "deny-secrets.get")])
    }

    /// The Key Vault calls the emulator logged for `name` since the last look: the official SDK
    /// sends each client's first request without a token (Key Vault's challenge tells it the
    /// tenant and scope) and then again with one, so each call is logged twice; one of each
    /// pair is returned.
    fn calls_since(name: String) -> Box<dyn Fn() -> Vec<String>> {
        let seen = Mutex::new(requests(&format!("/{name}")).len());
        Box::new(move || {
            let all = requests(&format!("/{name}"));
            let mut seen = seen.lock().unwrap();
            let mut made = all[*seen..].to_vec();
            *seen = all.len();
            made.sort();
            assert!(
                made.len().is_multiple_of(2) && made.chunks(2).all(|p| p[0] == p[1]),
                "each call after its challenge: {made:?}"
            );
            made.into_iter().step_by(2).collect()
        })
    }

    impl Fixture for Azure {
        fn name(&self) -> &'static str {
            "azure-keyvault"
        }

        fn signing_call(&self) -> &'static str {
            "/sign"
        }

        fn supports(&self, _: KeySpec) -> Result<(), NotApplicable> {
            Ok(())
        }

        fn chain_sources(&self) -> &'static [&'static str] {
            &["PKCS#12 secret", "PEM secret", "ca_certs", "self_signed"]
        }

        /// The PKCS#12 backing secret (CA chain merged into Key Vault) with a versionless keys/
        /// id; the PEM backing secret with a versioned certificates/ id; the certificate plus
        /// ca_certs, with a principal that may not read secrets, with an azurekms:// id; a
        /// self-signed certificate made by Key Vault from a Notary-compatible policy, with a
        /// versioned keys/ id.
        fn key(&self, spec: KeySpec, source: &str) -> Key {
            let vault = vault_url();
            let name = unique("contract");
            let key = |key_id: String, pairs: Pairs, env: Pairs, root_pem: String| Key {
                key_id,
                pairs,
                env,
                root_pem,
                after: None,
                hold: None,
            };
            match source {
                "PKCS#12 secret" => {
                    let (_, ca) =
                        ca_issued_certificate(&name, props(spec), "application/x-pkcs12", true);
                    key(
                        format!("{vault}/keys/{name}"),
                        vec![],
                        base_env(),
                        ca.root_pem(),
                    )
                }
                "PEM secret" => {
                    let (version, ca) =
                        ca_issued_certificate(&name, props(spec), "application/x-pem-file", false);
                    key(
                        format!("{vault}/certificates/{name}/{version}"),
                        vec![],
                        base_env(),
                        ca.root_pem(),
                    )
                }
                "ca_certs" => {
                    let (_, ca) =
                        ca_issued_certificate(&name, props(spec), "application/x-pem-file", false);
                    let dir = tempfile::tempdir().unwrap();
                    let bundle = ca_bundle(&ca, dir.path(), &name);
                    let host = vault.trim_start_matches("https://");
                    Key {
                        hold: hold(dir),
                        ..key(
                            format!("azurekms://{host}/{name}"),
                            pairs(&[("ca_certs", bundle.to_str().unwrap())]),
                            no_secrets(),
                            ca.root_pem(),
                        )
                    }
                }
                _ => {
                    let (version, pem) =
                        self_signed_certificate(&name, props(spec), &["digitalSignature"]);
                    key(
                        format!("{vault}/keys/{name}/{version}"),
                        pairs(&[("self_signed", "true")]),
                        no_secrets(),
                        pem,
                    )
                }
            }
        }

        fn unknown_key(&self) -> Unknown {
            let name = unique("missing");
            Unknown {
                key_id: format!("{}/keys/{name}", vault_url()),
                pairs: vec![],
                env: base_env(),
                fragments: vec![
                    format!("key '{name}' in vault local.vault.azure.net"),
                    "KeyNotFound".into(),
                    "request id".into(),
                ],
                metadata: pairs(&[
                    ("azureErrorCode", "KeyNotFound"),
                    ("httpStatus", "404"),
                    ("requestId", "*"),
                ]),
                hold: None,
            }
        }

        fn faulty(&self, f: Fault) -> Result<Faulty, NotApplicable> {
            let name = unique("fault");
            create_key(&name, EC_256);
            let key_id = format!("{}/keys/{name}", vault_url());
            let fragments: &[&str] = match f {
                Fault::Down => {
                    // Nothing listens on port 1 of the vault's host.
                    return Ok(Faulty {
                        run: Run::describe(
                            format!("https://local.vault.azure.net:1/keys/{name}"),
                            vec![],
                            base_env(),
                        ),
                        fragments: vec!["cannot reach Key Vault".into()],
                        metadata: vec![],
                        attempts: None,
                        after: None,
                        hold: None,
                    });
                }
                Fault::Hung => {
                    admin_ok(
                        "POST",
                        "/_admin/fault",
                        Some(json!({"match": format!("/keys/{name}"), "kind": "hang",
                                    "count": -1})),
                    );
                    &[]
                }
                Fault::Throttled => {
                    fault(&format!("/keys/{name}"), 429, -1, Some("0"));
                    &["is throttling requests", "Throttled", "after 5 attempts"]
                }
                Fault::ServerError => {
                    fault(&format!("/keys/{name}"), 503, -1, Some("0"));
                    &["ServiceUnavailable", "after 5 attempts"]
                }
            };
            let path = format!("/keys/{name}");
            let metadata = match f {
                Fault::Throttled => pairs(&[("azureErrorCode", "Throttled"), ("requestId", "*")]),
                _ => vec![],
            };
            Ok(Faulty {
                run: Run::describe(key_id, vec![], base_env()),
                fragments: fragments.iter().map(|s| s.to_string()).collect(),
                metadata,
                // The SDK's first request of a client is its challenge (without a token), which
                // gets the fault too; the attempts are the requests after it.
                attempts: Some(Box::new(move || requests(&path).len().saturating_sub(1))),
                after: None,
                hold: None,
            })
        }

        fn secrets(&self) -> Secrets {
            let name = unique("log");
            let (version, _) = self_signed_certificate(&name, EC_256, &["digitalSignature"]);
            let vault = vault_url();
            Secrets {
                runs: vec![
                    (
                        Run::sign(
                            format!("{vault}/keys/{name}/{version}"),
                            KeySpec::Ec256,
                            pairs(&[("self_signed", "true")]),
                            base_env(),
                        ),
                        true,
                    ),
                    (
                        Run::describe(
                            format!("{vault}/keys/{}", unique("missing")),
                            vec![],
                            base_env(),
                        ),
                        false,
                    ),
                ],
                values: vec![st("KV_EMULATOR_CLIENT_SECRET")],
                hold: None,
            }
        }

        fn unreachable(&self) -> Unreachable {
            // No credential, no trust, an authority that never answers.
            let fake = fake::serve(Answer::Hang);
            let authority = fake.addr.replace("http://", "https://");
            Unreachable {
                env: env_with(&[
                    ("AZURE_AUTHORITY_HOST", &authority),
                    ("AZURE_CLIENT_SECRET", ""),
                    ("SSL_CERT_FILE", ""),
                ]),
                requests: Some(counter(&fake)),
                hold: hold(fake),
            }
        }

        /// The emulator's request log, per key id kind and chain source: describe-key one read;
        /// generate-signature one sign (no key read first), plus the certificate or its backing
        /// secret when the chain is kept in Key Vault (and one token request per invocation, not
        /// counted here).
        fn round_trips(&self) -> Result<Vec<Trip>, NotApplicable> {
            let name = unique("trips");
            let (_, pem) = self_signed_certificate(&name, EC_256, &["digitalSignature"]);
            let (dir, file) = file("chain.pem", &pem);
            let vault = vault_url();
            let keys = format!("{vault}/keys/{name}");
            let certificates = format!("{vault}/certificates/{name}");
            let sign = format!("POST /keys/{name}/sign");
            let sign = sign.as_str();
            /// What is run, its kind, key id, pluginConfig, and the calls it must make.
            type Case<'a> = (
                &'a str,
                TripKind,
                &'a str,
                Vec<(&'a str, &'a str)>,
                &'a [&'a str],
            );
            let cases: [Case; 6] = [
                (
                    "describe-key, key id",
                    TripKind::DescribeKey,
                    &keys,
                    vec![],
                    &["GET /keys/"],
                ),
                (
                    "describe-key, certificate id",
                    TripKind::Other,
                    &certificates,
                    vec![],
                    &["GET /certificates/"],
                ),
                (
                    "generate-signature, chain from a file",
                    TripKind::SignLocalChain,
                    &keys,
                    vec![("certificate_chain", &file)],
                    &[sign],
                ),
                (
                    "generate-signature, chain from the backing secret",
                    TripKind::Other,
                    &certificates,
                    vec![],
                    &["GET /secrets/", sign],
                ),
                (
                    "generate-signature, self_signed",
                    TripKind::Other,
                    &keys,
                    vec![("self_signed", "true")],
                    &["GET /certificates/", sign],
                ),
                (
                    "generate-signature, certificate and ca_certs",
                    TripKind::Other,
                    &certificates,
                    vec![("ca_certs", &file)],
                    &["GET /certificates/", sign],
                ),
            ];
            let calls: Arc<dyn Fn() -> Vec<String>> = Arc::from(calls_since(name));
            let dir = Arc::new(dir);
            Ok(cases
                .into_iter()
                .map(|(what, kind, key_id, config, expected)| {
                    let run = if what.starts_with("describe-key") {
                        Run::describe(key_id, pairs(&config), base_env())
                    } else {
                        Run::sign(key_id, KeySpec::Ec256, pairs(&config), base_env())
                    };
                    let calls = Arc::clone(&calls);
                    Trip {
                        what: what.into(),
                        kind,
                        run,
                        expected: expected.iter().map(|s| s.to_string()).collect(),
                        calls: Box::new(move || calls()),
                        in_flight: None,
                        hold: hold(Arc::clone(&dir)),
                    }
                })
                .collect())
        }

        /// Through the emulator's fault injection (Key Vault returns r‖s, so the wrong
        /// encoding is DER).
        fn tampered(&self, t: Tampering) -> Result<Arranged, NotApplicable> {
            let name = unique("tamper");
            self_signed_certificate(&name, EC_256, &["digitalSignature"]);
            let (kind, count) = match t {
                Tampering::ThrottledTwice => ("status", 2),
                Tampering::Slow | Tampering::SlowPastDeadline => ("delay", -1),
                Tampering::Hung => ("hang", -1),
                Tampering::FlippedSignature => ("flip_signature", -1),
                Tampering::OtherEcdsaEncoding => ("der_signature", -1),
            };
            admin_ok(
                "POST",
                "/_admin/fault",
                Some(
                    json!({"match": format!("/keys/{name}/"), "suffix": "/sign", "kind": kind,
                            "count": count, "status": 429, "retry_after": "0",
                            "seconds": tamper::SLOW.as_secs_f64()}),
                ),
            );
            Ok(Arranged {
                key_id: format!("{}/keys/{name}", vault_url()),
                pairs: pairs(&[("self_signed", "true")]),
                env: base_env(),
                hold: None,
            })
        }

        fn at_endpoint(&self, _: &str) -> Result<Run, NotApplicable> {
            Err(
                "Key Vault is reached over https only (its faults: the emulator's fault \
                 injection, here and in azure_keyvault.rs)",
            )
        }
    }
}

hsm_tests::contract_suite!(azure_keyvault, azure::Azure);

// =============================================================================================
// Google Cloud KMS on the Cloud KMS emulator

mod gcp {
    use super::*;
    use hsm_tests::gcpkms::{
        base_env, create_key, create_secret, env_with, fault, gcloud_user_env, key_ring,
        public_key, st, url, SPECS,
    };

    pub struct Gcp;

    /// A key version of `spec` (its only version) and its chain: (version, PEM bundle, root).
    fn version(spec: KeySpec, name: &str) -> (String, String, String) {
        let algorithm = SPECS.iter().find(|(s, _)| *s == spec).unwrap().1;
        let version = format!("{}/cryptoKeyVersions/1", create_key(algorithm));
        let (bundle, root) = chain_for(&public_key(&version), name, false);
        (version, bundle, root)
    }

    /// An EC P-256 key version with a chain file.
    fn ready(name: &str) -> (String, tempfile::TempDir, Pairs) {
        let (version, bundle, _) = version(KeySpec::Ec256, name);
        let (dir, path) = file("chain.pem", &bundle);
        (version, dir, pairs(&[("certificate_chain", &path)]))
    }

    fn through(proxy: &Fake) -> Pairs {
        env_with(&[
            ("NOTATION_GCP_KMS_ENDPOINT", &proxy.addr),
            ("NOTATION_GCP_KMS_SECRET_MANAGER_ENDPOINT", &proxy.addr),
        ])
    }

    impl Fixture for Gcp {
        fn name(&self) -> &'static str {
            "gcp-kms"
        }

        fn signing_call(&self) -> &'static str {
            ":asymmetricSign"
        }

        fn supports(&self, spec: KeySpec) -> Result<(), NotApplicable> {
            match spec {
                KeySpec::Rsa3072 => Err(
                    "Cloud KMS's RSA-3072 PSS key hashes with SHA-256 and notation pairs RSA-3072 \
                     with SHA-384: the plugin refuses it (gcp_kms.rs)",
                ),
                KeySpec::Ec521 => Err("Cloud KMS has no P-521 keys"),
                _ => Ok(()),
            }
        }

        fn chain_sources(&self) -> &'static [&'static str] {
            &["file", "secret manager"]
        }

        /// The full version name with the chain from a file; the sigstore form of the key name
        /// (its only enabled version) with the chain from Secret Manager.
        fn key(&self, spec: KeySpec, source: &str) -> Key {
            let (version, bundle, root) = version(spec, source);
            let (key_id, config, dir) = match source {
                "file" => {
                    let (dir, path) = file("chain.pem", &bundle);
                    (version, pairs(&[("certificate_chain", &path)]), Some(dir))
                }
                _ => {
                    let key = version.split("/cryptoKeyVersions/").next().unwrap();
                    let secret = create_secret(&bundle);
                    (
                        format!("gcpkms://{key}"),
                        pairs(&[("certificate_chain_secret", &secret)]),
                        None,
                    )
                }
            };
            Key {
                key_id,
                pairs: config,
                env: base_env(),
                root_pem: root,
                after: None,
                hold: hold(dir),
            }
        }

        fn unknown_key(&self) -> Unknown {
            let missing = format!("{}/cryptoKeys/absent/cryptoKeyVersions/1", key_ring());
            Unknown {
                key_id: missing.clone(),
                pairs: vec![],
                env: base_env(),
                fragments: vec!["not found".into(), missing],
                metadata: pairs(&[("googleStatus", "NOT_FOUND")]),
                hold: None,
            }
        }

        fn faulty(&self, f: Fault) -> Result<Faulty, NotApplicable> {
            if f == Fault::Down {
                let endpoint = format!("http://127.0.0.1:{}", closed_port());
                let version =
                    "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1";
                return Ok(Faulty {
                    run: Run::describe(version, pairs(&[("endpoint", &endpoint)]), base_env()),
                    fragments: vec![endpoint],
                    metadata: vec![],
                    attempts: None,
                    after: None,
                    hold: None,
                });
            }
            let (version, dir, chain) = ready("fault");
            let sign = format!("{version}:asymmetricSign");
            let fragments: &[&str] = match f {
                Fault::Hung => {
                    fault(json!({"match": sign, "hang": true, "count": -1}));
                    &["timeout_seconds"]
                }
                Fault::Throttled => {
                    fault(json!({"match": sign, "status": 429, "count": -1}));
                    &["RESOURCE_EXHAUSTED", "Quota exceeded"]
                }
                _ => {
                    fault(json!({"match": sign, "status": 503, "count": -1}));
                    &["UNAVAILABLE", "unavailable"]
                }
            };
            // A proxy in front of the emulator counts the attempts.
            let proxy = tampering_proxy(&url(), "/v1/", Tamper::Delay(Duration::ZERO));
            Ok(Faulty {
                run: Run::sign(&version, KeySpec::Ec256, chain, through(&proxy)),
                fragments: fragments.iter().map(|s| s.to_string()).collect(),
                // Five attempts, then the error.
                metadata: match f {
                    Fault::Hung => vec![],
                    _ => pairs(&[("attempts", "5")]),
                },
                attempts: Some(counter(&proxy)),
                after: None,
                hold: hold((dir, proxy)),
            })
        }

        /// A service account key and a gcloud user's refresh token, each on a signature and on
        /// a refused one (a key whose every sign call is denied).
        fn secrets(&self) -> Secrets {
            let (version, dir, chain) = ready("log");
            let (denied, _dir2, denied_chain) = ready("denied");
            fault(json!({"match": format!("{denied}:asymmetricSign"), "status": 403, "count": -1}));
            let read = |k: &str| -> Value {
                serde_json::from_str(&std::fs::read_to_string(st(k)).unwrap()).unwrap()
            };
            let sa = read("GCPKMS_EMULATOR_SERVICE_ACCOUNT");
            let user = read("GCPKMS_EMULATOR_AUTHORIZED_USER");
            // A line of the service account's private key, the refresh token, and what any
            // token looks like (a JWT's header, the emulator's access tokens, an Authorization
            // header).
            let key_line = sa["private_key"].as_str().unwrap().lines().nth(5).unwrap();
            let refresh = user["refresh_token"].as_str().unwrap();
            let user_env = gcloud_user_env(dir.path());
            let mut runs = vec![];
            for env in [base_env(), user_env] {
                runs.push((
                    Run::sign(&version, KeySpec::Ec256, chain.clone(), env.clone()),
                    true,
                ));
                runs.push((
                    Run::sign(&denied, KeySpec::Ec256, denied_chain.clone(), env),
                    false,
                ));
            }
            Secrets {
                runs,
                values: [key_line, refresh, "eyJ", "emu.", "Bearer", "PRIVATE KEY"]
                    .map(String::from)
                    .to_vec(),
                hold: hold((dir, _dir2)),
            }
        }

        fn unreachable(&self) -> Unreachable {
            let fake = fake::serve(Answer::Hang);
            Unreachable {
                env: env_with(&[("NOTATION_GCP_KMS_ENDPOINT", &fake.addr)]),
                requests: Some(counter(&fake)),
                hold: hold(fake),
            }
        }

        /// Through a proxy in front of the emulator that holds every request 300 ms:
        /// describe-key reads the public key; generate-signature is one asymmetricSign (no
        /// getPublicKey first; a key name without a version lists the versions first), plus
        /// the Secret Manager chain at the same time.
        fn round_trips(&self) -> Result<Vec<Trip>, NotApplicable> {
            let (version, dir, chain) = ready("trips");
            let key = version
                .split("/cryptoKeyVersions/")
                .next()
                .unwrap()
                .to_owned();
            let file = chain[0].1.clone();
            let secret = create_secret(&std::fs::read_to_string(&file).unwrap());
            let sign = format!("POST /v1/{version}:asymmetricSign");
            let cases = [
                (
                    "describe-key",
                    TripKind::DescribeKey,
                    &version,
                    vec![],
                    vec![format!("GET /v1/{version}/publicKey")],
                    1,
                ),
                (
                    "generate-signature, chain from a file",
                    TripKind::SignLocalChain,
                    &version,
                    vec![("certificate_chain", file.as_str())],
                    vec![sign.clone()],
                    1,
                ),
                (
                    "generate-signature, chain in Secret Manager",
                    TripKind::Other,
                    &version,
                    vec![("certificate_chain_secret", secret.as_str())],
                    vec![format!("GET /v1/{secret}:access"), sign.clone()],
                    2,
                ),
                (
                    "generate-signature, a key name without a version",
                    TripKind::Other,
                    &key,
                    vec![("certificate_chain", file.as_str())],
                    vec![format!("GET /v1/{key}/cryptoKeyVersions"), sign],
                    1,
                ),
            ];
            let dir = Arc::new(dir);
            Ok(cases
                .into_iter()
                .map(|(what, kind, key_id, config, expected, overlap)| {
                    let proxy = slow_proxy(&url(), "/v1/");
                    let env = through(&proxy);
                    let run = match kind {
                        TripKind::DescribeKey => Run::describe(key_id, pairs(&config), env),
                        _ => Run::sign(key_id, KeySpec::Ec256, pairs(&config), env),
                    };
                    Trip {
                        what: what.into(),
                        kind,
                        run,
                        expected,
                        calls: heads(&proxy, None),
                        in_flight: Some((overlap, peak(&proxy))),
                        hold: hold((proxy, Arc::clone(&dir))),
                    }
                })
                .collect())
        }

        fn tampered(&self, _: Tampering) -> Result<Arranged, NotApplicable> {
            Err(
                "Cloud KMS answers carry the signature's CRC32C, so a changed signature is a \
                 checksum mismatch (gcp_kms.rs crc32c_mismatches_are_caught_both_ways); slow, \
                 throttled and hung sign calls: gcp_kms.rs and this suite's faults",
            )
        }

        fn known_failures(&self) -> &'static [(&'static str, &'static str)] {
            &[(
                "huge body",
                "notation-gcp-kms reads a Cloud KMS answer whole, with no 4 MiB bound; a \
                 plugin bug, reported, not fixed here",
            )]
        }

        fn at_endpoint(&self, url: &str) -> Result<Run, NotApplicable> {
            Ok(Run::describe(
                "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1",
                pairs(&[("endpoint", url)]),
                base_env(),
            ))
        }
    }
}

hsm_tests::contract_suite!(gcp_kms, gcp::Gcp);

// =============================================================================================
// PKCS#11 on SoftHSM2

mod softhsm {
    use super::*;
    use hsm_tests::softhsm::{fault_module, pkcs11_spy, SoftToken, SOFTHSM_MODULE};

    pub struct Pkcs11;

    /// A fresh token with a key `k` of `spec` and its chain (leaf, intermediate, root) on the
    /// token; returns the token, the key URI, the chain and the root.
    fn token_key(spec: KeySpec) -> (SoftToken, String, Vec<chain::Certificate>, String) {
        let token = SoftToken::new("contract");
        let uri = token.generate("k", spec);
        let ca = TestCa::new("CN=Contract Test Root,O=notation-plugins").with_intermediate(
            "CN=Contract Test CA,O=notation-plugins",
            &Default::default(),
        );
        let chain = ca.issue_leaf(&token.public_key(&uri), "CN=contract,O=notation-plugins");
        token.import_chain(&uri, &chain);
        (token, uri, chain, ca.root_pem())
    }

    /// The URI of `k` without a PIN source (the PIN then comes from PKCS11_PIN).
    fn bare_uri(token: &SoftToken) -> String {
        format!(
            "pkcs11:token={};object=k?module-path={SOFTHSM_MODULE}",
            token.label
        )
    }

    impl Fixture for Pkcs11 {
        fn name(&self) -> &'static str {
            "pkcs11"
        }

        fn supports(&self, _: KeySpec) -> Result<(), NotApplicable> {
            Ok(())
        }

        fn chain_sources(&self) -> &'static [&'static str] {
            &["token", "file"]
        }

        fn key(&self, spec: KeySpec, source: &str) -> Key {
            let (token, uri, chain, root) = token_key(spec);
            let config = match source {
                "token" => vec![],
                _ => {
                    let path = token.write_chain("chain.pem", &chain);
                    pairs(&[("certificate_chain", path.to_str().unwrap())])
                }
            };
            Key {
                key_id: uri,
                pairs: config,
                env: token.env(),
                root_pem: root,
                after: None,
                hold: hold(token),
            }
        }

        fn unknown_key(&self) -> Unknown {
            let (token, _, _, _) = token_key(KeySpec::Ec256);
            Unknown {
                key_id: token.uri("absent"),
                pairs: vec![],
                env: token.env(),
                fragments: vec![
                    "no private key with object=absent".into(),
                    "object=k".into(),
                ],
                metadata: vec![],
                hold: hold(token),
            }
        }

        fn faulty(&self, f: Fault) -> Result<Faulty, NotApplicable> {
            match f {
                Fault::Down => Err("no server: the PKCS#11 module runs inside the plugin's \
                     process (a missing module, token or SoftHSM configuration: pkcs11.rs and \
                     pkcs11_faults.rs)"),
                Fault::Throttled | Fault::ServerError => Err("no HTTP: a PKCS#11 module \
                     answers CKR_* codes, never 429 or 5xx (a login whose outcome is unknown is \
                     never repeated: pkcs11_faults.rs)"),
                Fault::Hung => {
                    // The fault-injecting pass-through to SoftHSM2, hanging in C_Sign.
                    let (token, _, _, _) = token_key(KeySpec::Ec256);
                    let uri = format!(
                        "pkcs11:token={};object=k?module-path={}&pin-source=file:{}",
                        token.label,
                        fault_module().display(),
                        token.pin_file().display()
                    );
                    let env = hsm_tests::env_with(
                        token.env(),
                        &[
                            ("FAULT_PKCS11_MODULE", SOFTHSM_MODULE),
                            ("FAULT_PKCS11_HANG", "C_Sign"),
                        ],
                    );
                    Ok(Faulty {
                        run: Run::sign(uri, KeySpec::Ec256, vec![], env),
                        fragments: vec!["C_Sign".into()],
                        metadata: vec![],
                        attempts: None,
                        after: None,
                        hold: hold(token),
                    })
                }
            }
        }

        /// The PIN from a file and from PKCS11_PIN, and a wrong PIN.
        fn secrets(&self) -> Secrets {
            let (token, uri, _, _) = token_key(KeySpec::Ec256);
            let pin = token.pin();
            let wrong = "0badc0ffee0badc0";
            let with_pin = |p: &str| hsm_tests::env_with(token.env(), &[("PKCS11_PIN", p)]);
            Secrets {
                runs: vec![
                    (Run::sign(&uri, KeySpec::Ec256, vec![], token.env()), true),
                    (
                        Run::sign(bare_uri(&token), KeySpec::Ec256, vec![], with_pin(&pin)),
                        true,
                    ),
                    (
                        Run::sign(bare_uri(&token), KeySpec::Ec256, vec![], with_pin(wrong)),
                        false,
                    ),
                    // A PIN after an '&' in the path, which RFC 7512 reads as part of the label.
                    (
                        Run::describe(
                            uri.replacen('?', &format!("&pin-value={pin}?"), 1),
                            vec![],
                            token.env(),
                        ),
                        false,
                    ),
                ],
                values: vec![pin, wrong.into()],
                hold: hold(token),
            }
        }

        fn unreachable(&self) -> Unreachable {
            Unreachable {
                env: pairs(&[("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf")]),
                requests: None,
                hold: None,
            }
        }

        fn signing_call(&self) -> &'static str {
            "C_SignInit"
        }

        fn remote(&self) -> bool {
            false
        }

        /// The logins and signing operations each command makes on the token, logged by
        /// OpenSC's pkcs11-spy in front of SoftHSM2: a signing operation is C_SignInit, then
        /// C_Sign twice (the signature's length, then the signature).
        fn round_trips(&self) -> Result<Vec<Trip>, NotApplicable> {
            let (token, _, chain, _) = token_key(KeySpec::Ec256);
            let file = token.write_chain("chain.pem", &chain);
            let uri = format!(
                "pkcs11:token={};object=k?module-path={}&pin-source=file:{}",
                token.label,
                pkcs11_spy(),
                token.pin_file().display()
            );
            let cases = [
                (
                    "describe-key",
                    TripKind::DescribeKey,
                    vec![],
                    &["C_Login"][..],
                ),
                (
                    "generate-signature, chain from a file",
                    TripKind::SignLocalChain,
                    pairs(&[("certificate_chain", file.to_str().unwrap())]),
                    &["C_Login", "C_SignInit"],
                ),
                (
                    "generate-signature, chain on the token",
                    TripKind::Other,
                    vec![],
                    &["C_Login", "C_SignInit"],
                ),
            ];
            let token = Arc::new(token);
            Ok(cases
                .into_iter()
                .enumerate()
                .map(|(i, (what, kind, config, expected))| {
                    let log = token.dir.path().join(format!("spy-{i}.log"));
                    let env = hsm_tests::env_with(
                        token.env(),
                        &[
                            ("PKCS11SPY", SOFTHSM_MODULE),
                            ("PKCS11SPY_OUTPUT", log.to_str().unwrap()),
                        ],
                    );
                    let run = match kind {
                        TripKind::DescribeKey => Run::describe(&uri, config, env),
                        _ => Run::sign(&uri, KeySpec::Ec256, config, env),
                    };
                    Trip {
                        what: what.into(),
                        kind,
                        run,
                        expected: expected.iter().map(|s| s.to_string()).collect(),
                        calls: Box::new(move || {
                            let text = std::fs::read_to_string(&log).unwrap_or_default();
                            text.lines()
                                .filter_map(|l| l.split_once(": ").map(|(_, c)| c.trim()))
                                .filter(|c| ["C_Login", "C_SignInit"].contains(c))
                                .map(str::to_owned)
                                .collect()
                        }),
                        in_flight: None,
                        hold: hold(Arc::clone(&token)),
                    }
                })
                .collect())
        }

        fn tampered(&self, _: Tampering) -> Result<Arranged, NotApplicable> {
            Err(
                "no answer on a wire to tamper with: the module is in-process (a hanging module: \
                 this suite and pkcs11_faults.rs)",
            )
        }

        fn at_endpoint(&self, _: &str) -> Result<Run, NotApplicable> {
            Err("no HTTP endpoint: a misbehaving module is pkcs11_faults.rs's fault module")
        }
    }
}

hsm_tests::contract_suite!(pkcs11, softhsm::Pkcs11);

// =============================================================================================
// YubiKey PIV on the virtual card

mod piv {
    use super::*;
    use hsm_tests::piv_card::{PivCard, DEFAULT_PIN};

    pub struct YubiKey;

    /// The slot each key spec is put in (several slot kinds: 9c PIN-always, 9e PIN-never by
    /// default, a retired slot).
    fn slot(spec: KeySpec) -> u8 {
        match spec {
            KeySpec::Ec256 => 0x9a,
            KeySpec::Ec384 => 0x9c,
            KeySpec::Rsa2048 => 0x9d,
            KeySpec::Rsa3072 => 0x9e,
            _ => 0x82,
        }
    }

    fn key_id(card: &PivCard, slot: u8) -> String {
        format!("yubikey:serial={};slot={slot:02x}", card.serial)
    }

    /// Card 1 (held under the card lock), with a key of `spec` in its slot and its certificate
    /// from a test CA: the card, the key id, and the pluginConfig (the CA's root as ca_certs, the
    /// PIN from a file), the root.
    fn card_key(spec: KeySpec) -> (Arc<PivCard>, String, Pairs, String) {
        let card = PivCard::acquire();
        let slot = slot(spec);
        let public = card.generate(slot, spec, "DEFAULT");
        let ca = TestCa::new("CN=YubiKey Contract Root,O=Notation Plugins,ST=Washington,C=US");
        let chain = ca.issue_leaf(
            &public,
            &format!("CN=yubikey {slot:02x},O=Notation Plugins,ST=Washington,C=US"),
        );
        card.import_certificate(slot, &chain[0]);
        let bundle = card.write("ca.pem", &ca.root_pem()).display().to_string();
        let pin = card.write("pin", DEFAULT_PIN).display().to_string();
        let id = key_id(&card, slot);
        let config = pairs(&[("ca_certs", &bundle), ("pin_file", &pin)]);
        (Arc::new(card), id, config, ca.root_pem())
    }

    impl Fixture for YubiKey {
        fn name(&self) -> &'static str {
            "yubikey"
        }

        fn signing_call(&self) -> &'static str {
            "GENERAL AUTHENTICATE"
        }

        fn remote(&self) -> bool {
            false
        }

        fn supports(&self, spec: KeySpec) -> Result<(), NotApplicable> {
            match spec {
                KeySpec::Ec521 => Err("PIV has no P-521 keys"),
                _ => Ok(()),
            }
        }

        fn chain_sources(&self) -> &'static [&'static str] {
            &["the slot's certificate and ca_certs"]
        }

        fn key(&self, spec: KeySpec, _: &str) -> Key {
            let (card, key_id, config, root) = card_key(spec);
            let env = card.env();
            let held = Arc::clone(&card);
            Key {
                key_id,
                pairs: config,
                env,
                root_pem: root,
                after: Some(Box::new(move || {
                    assert_eq!(held.pin_retries(), 3, "no wrong PIN on the way")
                })),
                hold: hold(card),
            }
        }

        fn unknown_key(&self) -> Unknown {
            let card = PivCard::acquire();
            Unknown {
                key_id: key_id(&card, 0x9e),
                pairs: vec![],
                env: card.env(),
                fragments: vec!["holds no key".into(), "generate-key".into()],
                metadata: vec![],
                hold: hold(card),
            }
        }

        fn faulty(&self, f: Fault) -> Result<Faulty, NotApplicable> {
            match f {
                Fault::Down => Ok(Faulty {
                    // No pcscd where PC/SC looks.
                    run: Run::describe(
                        "yubikey:slot=9a",
                        vec![],
                        pairs(&[("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm")]),
                    ),
                    fragments: vec!["PC/SC".into()],
                    metadata: vec![],
                    attempts: None,
                    after: None,
                    hold: None,
                }),
                Fault::Hung => {
                    // A card slower than the deadline.
                    let (card, key_id, config, _) = card_key(KeySpec::Ec256);
                    card.inject_fault("slow 0.5");
                    let env = card.env();
                    let held = Arc::clone(&card);
                    Ok(Faulty {
                        run: Run::sign(key_id, KeySpec::Ec256, config, env),
                        fragments: vec![],
                        metadata: vec![],
                        attempts: None,
                        after: Some(Box::new(move || {
                            held.clear_fault();
                            std::thread::sleep(Duration::from_secs(1));
                            held.wait_until_present();
                        })),
                        hold: hold(card),
                    })
                }
                Fault::Throttled | Fault::ServerError => Err("no HTTP: a card answers status \
                     words, never 429 or 5xx (a card pulled out: yubikey.rs)"),
            }
        }

        /// The PIN from a file and from YUBIKEY_PIN, and a wrong PIN (one try of three).
        fn secrets(&self) -> Secrets {
            let (card, key_id, config, _) = card_key(KeySpec::Ec256);
            let pin = "47110815";
            card.ykman(&["piv", "access", "change-pin", "-P", DEFAULT_PIN, "-n", pin]);
            let pin_file = card.write("pin", pin).display().to_string();
            let ca = config
                .iter()
                .find(|(k, _)| k == "ca_certs")
                .unwrap()
                .1
                .clone();
            let wrong = "90817263";
            let env = |p: &str| hsm_tests::env_with(card.env(), &[("YUBIKEY_PIN", p)]);
            let only_ca = pairs(&[("ca_certs", &ca)]);
            Secrets {
                runs: vec![
                    (
                        Run::sign(
                            &key_id,
                            KeySpec::Ec256,
                            pairs(&[("ca_certs", &ca), ("pin_file", &pin_file)]),
                            card.env(),
                        ),
                        true,
                    ),
                    (
                        Run::sign(&key_id, KeySpec::Ec256, only_ca.clone(), env(pin)),
                        true,
                    ),
                    (
                        Run::sign(&key_id, KeySpec::Ec256, only_ca, env(wrong)),
                        false,
                    ),
                ],
                values: vec![pin.into(), wrong.into()],
                hold: hold(card),
            }
        }

        fn unreachable(&self) -> Unreachable {
            Unreachable {
                env: pairs(&[("PCSCLITE_CSOCK_NAME", "/nonexistent/pcscd.comm")]),
                requests: None,
                hold: None,
            }
        }

        /// The card commands each command sends that do work (the virtual card's command log;
        /// SELECT, version and serial, which every open of a reader sends, and GET RESPONSE are
        /// left out): describe-key reads the slot's metadata; generate-signature also verifies
        /// the PIN (9a's policy: once) and signs once, and reads the slot's certificate only
        /// when the chain is not in a file.
        fn round_trips(&self) -> Result<Vec<Trip>, NotApplicable> {
            let (card, key_id, config, _) = card_key(KeySpec::Ec256);
            let root = card.dir.path().join("ca.pem").display().to_string();
            let leaf = card.dir.path().join("9a.cert.pem").display().to_string();
            let pin = card.dir.path().join("pin").display().to_string();
            let chain_file = card.write(
                "chain-file.pem",
                &format!(
                    "{}{}",
                    std::fs::read_to_string(&leaf).unwrap(),
                    std::fs::read_to_string(&root).unwrap()
                ),
            );
            let from_file = pairs(&[
                ("certificate_chain", chain_file.to_str().unwrap()),
                ("pin_file", &pin),
            ]);
            let cases = [
                (
                    "describe-key",
                    TripKind::DescribeKey,
                    Run::describe(&key_id, config.clone(), card.env()),
                    &["GET METADATA"][..],
                ),
                (
                    "generate-signature, chain from a file",
                    TripKind::SignLocalChain,
                    Run::sign(&key_id, KeySpec::Ec256, from_file, card.env()),
                    &["GET METADATA", "VERIFY", "GENERAL AUTHENTICATE"],
                ),
                (
                    "generate-signature, the slot's certificate and ca_certs",
                    TripKind::Other,
                    Run::sign(&key_id, KeySpec::Ec256, config, card.env()),
                    &["GET METADATA", "VERIFY", "GENERAL AUTHENTICATE", "GET DATA"],
                ),
            ];
            card.log_commands();
            // The log grows across the cases, run in order: each case's calls are the lines
            // after the previous case's.
            let seen = Arc::new(std::sync::Mutex::new(0usize));
            Ok(cases
                .into_iter()
                .map(|(what, kind, run, expected)| {
                    let (log, seen) = (Arc::clone(&card), Arc::clone(&seen));
                    Trip {
                        what: what.into(),
                        kind,
                        run,
                        expected: expected.iter().map(|s| s.to_string()).collect(),
                        calls: Box::new(move || {
                            let all = log.commands();
                            let mut seen = seen.lock().unwrap();
                            let new = all[(*seen).min(all.len())..].to_vec();
                            *seen = all.len();
                            new.into_iter()
                                .filter(|c| {
                                    !["SELECT", "GET VERSION", "GET SERIAL", "GET RESPONSE"]
                                        .contains(&c.as_str())
                                })
                                .collect()
                        }),
                        in_flight: None,
                        hold: hold(Arc::clone(&card)),
                    }
                })
                .collect())
        }

        fn tampered(&self, _: Tampering) -> Result<Arranged, NotApplicable> {
            Err(
                "no answer on a wire to tamper with (a slow card: this suite; a card pulled out \
                 mid-signature: yubikey.rs)",
            )
        }

        fn at_endpoint(&self, _: &str) -> Result<Run, NotApplicable> {
            Err(
                "no HTTP endpoint: a misbehaving card is the virtual card's faults (slow, \
                 removed)",
            )
        }
    }
}

hsm_tests::contract_suite!(yubikey, piv::YubiKey);
