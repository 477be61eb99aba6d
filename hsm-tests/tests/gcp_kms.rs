//! notation-gcp-kms against the local Cloud KMS emulator (hsm-tests/gcpkms-emulator/emulator.py,
//! started by `scripts/gcpkms-emulator.sh start`, which these tests run themselves if needed; it
//! is idempotent) on http://127.0.0.1:8490. Every test makes its own key rings, keys and secrets
//! with unique names, so the tests run in parallel on one emulator. The emulator is set up
//! through its REST API with a token from its test helper; the plugin itself is driven exactly
//! as notation drives it, with the emulator's service-account key file as Application Default
//! Credentials (a self-signed JWT, as Google's Rust library sends for service accounts).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use plugin_protocol::client::Invocation;
use plugin_protocol::contract::DescribeKeyResponse;
use plugin_protocol::testca::TestCa;
use plugin_protocol::{chain, KeySpec, PublicKey};
use serde_json::{json, Value};

use hsm_tests::assert_error;
use hsm_tests::fake::closed_port;
use hsm_tests::gcpkms::*;

// ---------------------------------------------------------------------------------------------
// Driving the plugin

fn plugin() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| hsm_tests::plugin_binary("gcp-kms"))
        .clone()
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

#[track_caller]
fn assert_spec(key_id: &str, spec: KeySpec) {
    let inv = describe(key_id, &[], &base_env());
    assert!(
        inv.succeeded(),
        "describe-key {key_id}: {}",
        inv.stderr_text()
    );
    let described: DescribeKeyResponse = inv.response().unwrap();
    assert_eq!(
        (described.key_id.as_str(), described.key_spec),
        (key_id, spec)
    );
}

/// The conformance checker (describe-key, generate-signature, JWS and COSE envelopes, all of
/// notation's checks), then each envelope verified against the root.
#[track_caller]
fn conformance(key_id: &str, pairs: &[(&str, &str)], root_pem: &str, dir: &Path) {
    let env = base_env();
    let env = hsm_tests::env_refs(&env);
    std::fs::create_dir_all(dir).unwrap();
    hsm_tests::check_and_verify(&plugin(), key_id, pairs, &env, root_pem, dir);
}

/// A chain for `key` issued by a fresh test CA: (PEM bundle, root PEM).
fn chain_for(key: &PublicKey, name: &str) -> (String, String) {
    let ca = TestCa::new("CN=Cloud KMS Test Root,O=notation-plugins,C=US,ST=WA");
    let chain = ca.issue_leaf(key, &format!("CN={name},O=notation-plugins,C=US,ST=WA"));
    (chain::to_pem_bundle(&chain), ca.root_pem())
}

fn chain_file(dir: &Path, key: &PublicKey, name: &str) -> (PathBuf, String) {
    let (bundle, root) = chain_for(key, name);
    let path = dir.join(format!("{name}.chain.pem"));
    std::fs::write(&path, bundle).unwrap();
    (path, root)
}

fn meta(err: &plugin_protocol::error::ErrorResponse, key: &str) -> String {
    err.error_metadata
        .as_ref()
        .and_then(|m| m.get(key).cloned())
        .unwrap_or_else(|| panic!("errorMetadata lacks {key}: {:?}", err.error_metadata))
}

/// An EC P-256 key version and a chain file for it.
fn ready_key(dir: &Path) -> (String, PathBuf) {
    let key = create_key("EC_SIGN_P256_SHA256");
    let version = format!("{key}/cryptoKeyVersions/1");
    let (path, _) = chain_file(dir, &public_key(&version), "ready");
    (version, path)
}

// ---------------------------------------------------------------------------------------------
// The four key specs through the checker, both key reference forms, chain from file and Secret
// Manager

// ---------------------------------------------------------------------------------------------
// Refusals: algorithms, key states, versionless keys, key names

#[test]
fn unsupported_algorithms_are_refused_naming_the_algorithm_and_why() {
    for (algorithm, why) in [
        ("RSA_SIGN_PSS_3072_SHA256", "RSA-3072 with SHA-384"),
        ("RSA_SIGN_PSS_4096_SHA256", "RSA-4096 with SHA-512"),
        ("RSA_SIGN_PKCS1_2048_SHA256", "RSASSA-PKCS1-v1_5"),
        ("RSA_SIGN_RAW_PKCS1_2048", "raw PKCS#1"),
        ("EC_SIGN_SECP256K1_SHA256", "secp256k1"),
        ("PQ_SIGN_ML_DSA_65", "post-quantum"),
        ("GOOGLE_SYMMETRIC_ENCRYPTION", "symmetric"),
        ("HMAC_SHA256", "HMAC"),
    ] {
        let version = format!("{}/cryptoKeyVersions/1", create_key(algorithm));
        let inv = describe(&version, &[], &base_env());
        let err = assert_error(&inv, "VALIDATION_ERROR", &[algorithm, why, &version]);
        assert_eq!(meta(&err, "algorithm"), algorithm);
    }
}

#[test]
fn key_versions_that_cannot_sign_are_refused_naming_their_state() {
    let key = create_key("EC_SIGN_P256_SHA256");
    let disabled = format!("{key}/cryptoKeyVersions/1");
    api(
        "PATCH",
        &format!("/v1/{disabled}?updateMask=state"),
        json!({"state": "DISABLED"}),
    );
    let scheduled = add_version(&key);
    api("POST", &format!("/v1/{scheduled}:destroy"), json!({}));
    let cases = [
        (disabled, "DISABLED"),
        (scheduled, "DESTROY_SCHEDULED"),
        (add_version(&key), "DESTROYED"),
        (add_version(&key), "PENDING_GENERATION"),
        (add_version(&key), "PENDING_IMPORT"),
    ];
    for (version, state) in &cases[2..] {
        set_state(version, state);
    }
    for (version, state) in &cases {
        let inv = describe(version, &[], &base_env());
        let err = assert_error(&inv, "VALIDATION_ERROR", &[state, version]);
        assert_eq!(meta(&err, "state"), *state);
        // generate-signature refuses the same way (one process, no signing attempted).
        let inv = sign(version, KeySpec::Ec256, &[], &base_env());
        assert_error(&inv, "VALIDATION_ERROR", &[state]);
    }
}

#[test]
fn a_key_name_needs_exactly_one_enabled_version() {
    let key = create_key("EC_SIGN_P384_SHA384");
    // One enabled version: it is used (the other is disabled).
    let second = add_version(&key);
    api(
        "PATCH",
        &format!("/v1/{second}?updateMask=state"),
        json!({"state": "DISABLED"}),
    );
    assert_spec(&key, KeySpec::Ec384);
    // Two enabled: refused, listing both.
    let third = add_version(&key);
    let inv = describe(&key, &[], &base_env());
    let first = format!("{key}/cryptoKeyVersions/1");
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["2 enabled key versions", "no primary", &first, &third],
    );
    // None enabled: refused, naming their states.
    for v in [&first, &third] {
        api(
            "PATCH",
            &format!("/v1/{v}?updateMask=state"),
            json!({"state": "DISABLED"}),
        );
    }
    let inv = describe(&format!("gcpkms://{key}"), &[], &base_env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["no enabled key version", "DISABLED"],
    );
}

/// (An unknown key version: the contract suite.)
#[test]
fn malformed_key_names_are_refused_before_any_call() {
    for bad in [
        "release",
        "projects/p/locations/l/keyRings/r",
        "gcpkms://projects/p",
    ] {
        let inv = describe(bad, &[], &base_env());
        assert_error(&inv, "VALIDATION_ERROR", &["not a Cloud KMS key reference"]);
        assert!(inv.elapsed < Duration::from_secs(2), "{:?}", inv.elapsed);
    }
}

// ---------------------------------------------------------------------------------------------
// Faults: permissions, throttling, unavailability, slowness, hangs, integrity

#[test]
fn permission_denied_names_the_missing_permission() {
    let dir = tempfile::tempdir().unwrap();
    let (version, chain) = ready_key(dir.path());
    let chain = [("certificate_chain", chain.to_str().unwrap())];
    fault(json!({"match": format!("{version}:asymmetricSign"), "status": 403, "count": 1}));
    let inv = sign(&version, KeySpec::Ec256, &chain, &base_env());
    let err = assert_error(
        &inv,
        "ACCESS_DENIED",
        &[
            "cloudkms.cryptoKeyVersions.useToSign",
            "PERMISSION_DENIED",
            &version,
        ],
    );
    assert_eq!(
        meta(&err, "permission"),
        "cloudkms.cryptoKeyVersions.useToSign"
    );
    assert_eq!(meta(&err, "reason"), "IAM_PERMISSION_DENIED");
    assert_eq!(meta(&err, "attempts"), "1", "a denial is not retried");

    fault(json!({"match": format!("{version}/publicKey"), "status": 403, "count": 1}));
    let inv = describe(&version, &[], &base_env());
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &["cloudkms.cryptoKeyVersions.viewPublicKey"],
    );
}

/// (Throttled and unavailable for good: the contract suite.)
#[test]
fn throttling_and_unavailability_are_retried_then_signed() {
    let dir = tempfile::tempdir().unwrap();
    let (version, chain) = ready_key(dir.path());
    let chain = [("certificate_chain", chain.to_str().unwrap())];
    // Twice throttled, then answered: the signature is made.
    fault(json!({"match": format!("{version}:asymmetricSign"), "status": 429, "count": 2}));
    let inv = sign(&version, KeySpec::Ec256, &chain, &base_env());
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    fault(json!({"match": format!("{version}:asymmetricSign"), "status": 503, "count": 2}));
    let inv = sign(&version, KeySpec::Ec256, &chain, &base_env());
    assert!(inv.succeeded(), "{}", inv.stderr_text());
}

/// (A hung Cloud KMS: the contract suite.)
#[test]
fn slow_answers_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (version, chain) = ready_key(dir.path());
    let chain = ("certificate_chain", chain.to_str().unwrap());
    plugin(); // built before the clock starts
    fault(json!({"match": format!("{version}:asymmetricSign"), "delay": 1.5, "count": 1}));
    let inv = sign(&version, KeySpec::Ec256, &[chain], &base_env());
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    assert!(
        inv.elapsed >= Duration::from_millis(1500),
        "{:?}",
        inv.elapsed
    );
}

#[test]
fn crc32c_mismatches_are_caught_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (version, chain) = ready_key(dir.path());
    let chain = [("certificate_chain", chain.to_str().unwrap())];
    // A corrupted signature once: caught and signed again.
    fault(
        json!({"match": format!("{version}:asymmetricSign"), "corrupt": "signature", "count": 1}),
    );
    let inv = sign(&version, KeySpec::Ec256, &chain, &base_env());
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    // Always corrupted: refused, naming the check. (generate-signature reads no public key,
    // describe-key does.)
    let run = |what: &str| {
        if what == "pem" {
            describe(&version, &chain, &base_env())
        } else {
            sign(&version, KeySpec::Ec256, &chain, &base_env())
        }
    };
    for (what, matching, words) in [
        (
            "signature",
            format!("{version}:asymmetricSign"),
            "signature",
        ),
        ("pem", format!("{version}/publicKey"), "public key"),
        (
            "digest",
            format!("{version}:asymmetricSign"),
            "digest_crc32c",
        ),
    ] {
        fault(json!({"match": matching, "corrupt": what, "count": 5}));
        let inv = run(what);
        let err = assert_error(
            &inv,
            if what == "digest" {
                "VALIDATION_ERROR"
            } else {
                "ERROR"
            },
            &[words],
        );
        if what != "digest" {
            assert!(
                err.error_message.contains("CRC32C"),
                "{}",
                err.error_message
            );
        }
        // Clear what is left of the fault.
        while !run(what).succeeded() {}
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials

#[test]
fn application_default_credentials_from_each_source() {
    let dir = tempfile::tempdir().unwrap();
    let (version, chain) = ready_key(dir.path());
    let chain = ("certificate_chain", chain.to_str().unwrap());
    let sa = st("GCPKMS_EMULATOR_SERVICE_ACCOUNT");

    // pluginConfig credentials_file wins over GOOGLE_APPLICATION_CREDENTIALS.
    let env = env_with(&[("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")]);
    let inv = sign(
        &version,
        KeySpec::Ec256,
        &[chain, ("credentials_file", &sa)],
        &env,
    );
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    // A missing file is named.
    let inv = describe(&version, &[], &env);
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["/nonexistent/key.json", "GOOGLE_APPLICATION_CREDENTIALS"],
    );

    // gcloud's application-default credentials (authorized_user: refresh-token grant at the
    // token endpoint named in the file).
    let env = gcloud_user_env(dir.path());
    let inv = sign(&version, KeySpec::Ec256, &[chain], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());

    // Workload identity federation as GitHub Actions or GitLab CI set it up: an external_account
    // file whose OIDC token is in a file, exchanged at the (local) Security Token Service.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let audience = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github";
    let oidc = format!(
        "{}.{}.c2ln",
        b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(
            json!({"aud": format!("https:{audience}"), "iss": "https://token.actions.githubusercontent.com",
                   "sub": "repo:example/app:ref:refs/heads/main"})
            .to_string()
        )
    );
    let oidc_file = dir.path().join("oidc-token");
    std::fs::write(&oidc_file, oidc).unwrap();
    let external = dir.path().join("external-account.json");
    std::fs::write(
        &external,
        json!({"type": "external_account", "audience": audience,
               "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
               "token_url": format!("{}/v1/token", url()),
               "credential_source": {"file": oidc_file}})
        .to_string(),
    )
    .unwrap();
    let env = env_with(&[("GOOGLE_APPLICATION_CREDENTIALS", external.to_str().unwrap())]);
    let inv = sign(&version, KeySpec::Ec256, &[chain], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    // A token for another provider is refused by STS: ACCESS_DENIED naming the credentials.
    std::fs::write(
        &external,
        json!({"type": "external_account", "audience": format!("{audience}-other"),
               "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
               "token_url": format!("{}/v1/token", url()),
               "credential_source": {"file": oidc_file}})
        .to_string(),
    )
    .unwrap();
    let inv = describe(&version, &[], &env);
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &[external.to_str().unwrap(), "does not match"],
    );
    // The OIDC token file missing (the CI auth step did not run): named before any exchange.
    std::fs::remove_file(&oidc_file).unwrap();
    let inv = describe(&version, &[], &env);
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &[oidc_file.to_str().unwrap(), "id-token: write"],
    );

    // A service-account key the emulator does not know: UNAUTHENTICATED -> ACCESS_DENIED.
    let mut other: Value = serde_json::from_str(&std::fs::read_to_string(&sa).unwrap()).unwrap();
    let key = plugin_protocol::testca::generate_key(KeySpec::Rsa2048);
    other["private_key"] = Value::String(key.to_pkcs8_pem().to_string());
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let inv = describe(
        &version,
        &[("credentials_file", other_path.to_str().unwrap())],
        &base_env(),
    );
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &["UNAUTHENTICATED", "GOOGLE_APPLICATION_CREDENTIALS"],
    );

    // Not a credentials file.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"type\": \"api_key\"}").unwrap();
    let inv = describe(
        &version,
        &[("credentials_file", junk.to_str().unwrap())],
        &base_env(),
    );
    assert_error(&inv, "VALIDATION_ERROR", &["api_key", "service_account"]);
}

/// A TCP server on 127.0.0.1 that accepts connections and never answers (a black-holed
/// metadata server), for `secs` seconds.
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
    addr.to_string()
}

#[test]
fn metadata_server_absent_fails_fast() {
    plugin(); // built before the clock starts
    let version = "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1";
    // Off-cloud as on a laptop or CI runner: no credentials file, no gcloud, and the metadata
    // server's name does not resolve (or, below, its address takes connections and never
    // answers).
    for (metadata, limit) in [
        (String::new(), Duration::from_secs(2)),
        (
            format!("127.0.0.1:{}", closed_port()),
            Duration::from_secs(2),
        ),
        (black_hole(60), Duration::from_secs(6)),
    ] {
        let env = env_with(&[
            ("GOOGLE_APPLICATION_CREDENTIALS", ""),
            ("GCE_METADATA_HOST", &metadata),
        ]);
        let inv = describe(version, &[], &env);
        let err = assert_error(
            &inv,
            "ACCESS_DENIED",
            &[
                "metadata server",
                "GOOGLE_APPLICATION_CREDENTIALS",
                "gcloud auth application-default login",
            ],
        );
        assert!(
            inv.elapsed < limit,
            "took {:?}: {}",
            inv.elapsed,
            err.error_message
        );
        eprintln!(
            "no credentials, metadata server {:?}: ACCESS_DENIED after {:?}",
            if metadata.is_empty() {
                "metadata.google.internal"
            } else {
                &metadata
            },
            inv.elapsed
        );
    }
}

/// Google's clients read the system trust store as they are built, even for a plain-HTTP
/// endpoint. An invocation that can make no TLS connection (Cloud KMS and Secret Manager at the
/// emulator's http:// endpoint, a service account's self-signed JWT) reads a store of one
/// placeholder instead, so even a trust store that does not exist is nothing to it; credentials
/// that exchange tokens over HTTPS (gcloud's authorized_user) still read the real one.
#[test]
fn an_invocation_without_tls_reads_no_trust_store() {
    let dir = tempfile::tempdir().unwrap();
    let (version, chain) = ready_key(dir.path());
    let missing = dir.path().join("no-such-ca-bundle.pem");
    let missing = missing.to_str().unwrap();
    let no_store = env_with(&[("SSL_CERT_FILE", missing), ("SSL_CERT_DIR", missing)]);
    let inv = describe(&version, &[], &no_store);
    assert!(inv.succeeded(), "describe-key: {}", inv.stderr_text());
    let secret = create_secret(&std::fs::read_to_string(&chain).unwrap());
    let key = version.split("/cryptoKeyVersions/").next().unwrap();
    let inv = sign(
        &format!("gcpkms://{key}"),
        KeySpec::Ec256,
        &[("certificate_chain_secret", &secret)],
        &no_store,
    );
    assert!(inv.succeeded(), "generate-signature: {}", inv.stderr_text());

    let user = env_with(&[
        ("SSL_CERT_FILE", missing),
        ("SSL_CERT_DIR", missing),
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            &st("GCPKMS_EMULATOR_AUTHORIZED_USER"),
        ),
    ]);
    let inv = describe(&version, &[], &user);
    assert!(
        !inv.succeeded() && inv.stderr_text().contains("No CA certificates were loaded"),
        "authorized_user with no trust store: {}",
        inv.stderr_text()
    );
}

/// (An endpoint that is down: the contract suite.)
#[test]
fn a_plain_http_endpoint_must_be_loopback() {
    let version = "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1";
    // Plain HTTP is for a loopback emulator only.
    let inv = describe(
        version,
        &[("endpoint", "http://kms.example.com")],
        &base_env(),
    );
    assert_error(&inv, "VALIDATION_ERROR", &["loopback", "https://"]);
}

// ---------------------------------------------------------------------------------------------
// The emulator itself, kept honest by Google's Python clients

#[test]
fn emulator_passes_googles_python_client_conformance_test() {
    let mut cmd = Command::new(st("GCPKMS_EMULATOR_PYTHON"));
    cmd.arg(hsm_tests::repo().join("hsm-tests/gcpkms-emulator/conformance.py"));
    for (k, v) in state() {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run conformance.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "Google's Python clients reject the emulator:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The offline-root workflow with a Cloud KMS key

/// `notation-gcp-kms <args>` (an operator command) with `env`: its stdout.
#[track_caller]
fn run_plugin(args: &[&str], env: &[(String, String)]) -> String {
    let out = Command::new(plugin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run notation-gcp-kms");
    assert!(
        out.status.success(),
        "notation-gcp-kms {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn an_offline_root_on_a_token_certifies_a_cloud_kms_key() {
    use hsm_tests::softhsm::SoftToken;
    let token = SoftToken::new("gcp-offline-root");
    let dir = token.dir.path().to_path_buf();
    let p = |name: &str| dir.join(name).display().to_string();
    let subject = |cn: &str| format!("CN={cn},O=Example,ST=Washington,C=US");

    // The root and the signing CA live on the token (the offline HSM).
    let root = token.generate("root", KeySpec::Ec384);
    let signing_ca = token.generate("signing-ca", KeySpec::Ec384);
    let root_subject = subject("Example Offline Root");
    token.run_ok(&[
        "ca",
        "init",
        "--key-id",
        &root,
        "--subject",
        &root_subject,
        "--path-len",
        "1",
        "--days",
        "30",
        "--out",
        &p("root.pem"),
    ]);
    let ca_subject = subject("Example Signing CA");
    token.run_ok(&[
        "ca",
        "issue",
        "--ca-key-id",
        &root,
        "--ca-cert",
        &p("root.pem"),
        "--public-key-of",
        &signing_ca,
        "--subject",
        &ca_subject,
        "--intermediate",
        "--path-len",
        "0",
        "--days",
        "20",
        "--out",
        &p("signing-ca.pem"),
    ]);

    // The Cloud KMS key reports its public key and makes a CSR, signed in Cloud KMS.
    let version = format!(
        "{}/cryptoKeyVersions/1",
        create_key("RSA_SIGN_PSS_2048_SHA256")
    );
    let env = base_env();
    let reported = run_plugin(&["public-key", "--key-id", &version], &env);
    assert_eq!(
        PublicKey::from_spki_pem(&reported).unwrap(),
        public_key(&version),
        "public-key prints the key Cloud KMS holds"
    );
    let leaf_subject = subject("ci gcp kms");
    run_plugin(
        &[
            "certificate",
            "csr",
            "--key-id",
            &version,
            "--subject",
            &leaf_subject,
            "--out",
            &p("gcp.csr"),
        ],
        &env,
    );
    let verified = Command::new("openssl")
        .args(["req", "-verify", "-noout", "-in", &p("gcp.csr")])
        .output()
        .expect("openssl");
    assert!(
        verified.status.success(),
        "openssl rejects the CSR: {}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // The signing CA on the token certifies it from the CSR; the plugin signs with the chain.
    token.run_ok(&[
        "ca",
        "issue",
        "--ca-key-id",
        &signing_ca,
        "--ca-cert",
        &p("signing-ca.pem"),
        "--csr",
        &p("gcp.csr"),
        "--days",
        "7",
        "--out",
        &p("gcp-chain.pem"),
    ]);
    let root_pem = std::fs::read_to_string(dir.join("root.pem")).unwrap();
    conformance(
        &version,
        &[("certificate_chain", &p("gcp-chain.pem"))],
        &root_pem,
        &dir.join("signed"),
    );

    // What a verifier installs: the offline root, and a policy pinning the CI leaf.
    let trust = dir.join("trust");
    run_plugin(
        &[
            "trust",
            "export",
            "--key-id",
            &version,
            "--plugin-config",
            &format!("certificate_chain={}", p("gcp-chain.pem")),
            "--out",
            &trust.display().to_string(),
            "--scope",
            "registry.example.com/release/app",
        ],
        &env,
    );
    let exported = trust.join("example-offline-root/example-offline-root.pem");
    assert_eq!(std::fs::read_to_string(exported).unwrap(), root_pem);
    let policy: Value =
        serde_json::from_slice(&std::fs::read(trust.join("trustpolicy.json")).unwrap()).unwrap();
    assert_eq!(
        policy["trustPolicies"][0]["trustedIdentities"],
        json!([format!("x509.subject: {leaf_subject}")])
    );
}
