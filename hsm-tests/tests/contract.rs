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
use hsm_tests::fake::{self, free_port, tampering_proxy, Answer, Fake, Tamper};
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
                    let addr = format!("http://127.0.0.1:{}", free_port());
                    let run = Run::describe("some-key", vec![], proxied(&addr));
                    return Ok(Faulty {
                        run,
                        fragments: vec![addr, "connection refused".into()],
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
    }
}

hsm_tests::contract_suite!(hashicorp_vault, vault::Vault);
