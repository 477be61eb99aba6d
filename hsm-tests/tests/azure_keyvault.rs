//! notation-azure-keyvault against the local Key Vault emulator
//! (hsm-tests/keyvault-emulator/emulator.py, started by `scripts/keyvault-emulator.sh start`,
//! which these tests run themselves if needed; it is idempotent). The vault is
//! https://local.vault.azure.net:8443 and the Entra authority https://login.kv-emulator.test:8443,
//! both 127.0.0.1 through /etc/hosts, trusted through SSL_CERT_FILE. Every test makes its own keys
//! and certificates with unique names, so the tests run in parallel on one emulator. The emulator
//! is set up through its plain-HTTP admin port (the vault API without authentication); the
//! plugin itself is driven exactly as notation drives it, with a client secret or a workload
//! identity against the local token endpoint.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use plugin_protocol::client::{Invocation, PluginClient};
use plugin_protocol::contract::{DescribeKeyResponse, PluginConfig};
use plugin_protocol::public_key::named_curve_der;
use plugin_protocol::testca::{CaProfile, TestCa};
use plugin_protocol::{chain, KeySpec, PublicKey};
use serde_json::{json, Value};

const SPECS: [(KeySpec, &str); 6] = [
    (KeySpec::Rsa2048, r#"{"kty":"RSA","key_size":2048}"#),
    (KeySpec::Rsa3072, r#"{"kty":"RSA","key_size":3072}"#),
    (KeySpec::Rsa4096, r#"{"kty":"RSA","key_size":4096}"#),
    (KeySpec::Ec256, r#"{"kty":"EC","crv":"P-256"}"#),
    (KeySpec::Ec384, r#"{"kty":"EC","crv":"P-384"}"#),
    (KeySpec::Ec521, r#"{"kty":"EC","crv":"P-521"}"#),
];
const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";

// ---------------------------------------------------------------------------------------------
// The emulator and a tiny client of its admin port

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The emulator's state file (started if needed): VAULT_URL, ADMIN_URL, SSL_CERT_FILE, ...
fn state() -> &'static BTreeMap<String, String> {
    static STATE: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    STATE.get_or_init(|| {
        let status = Command::new(repo().join("scripts/keyvault-emulator.sh"))
            .arg("start")
            .status()
            .expect("run scripts/keyvault-emulator.sh start");
        assert!(
            status.success(),
            "scripts/keyvault-emulator.sh start failed"
        );
        let cache = std::env::var("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache"));
        let text =
            std::fs::read_to_string(cache.join("notation-plugins/keyvault-emulator/state.env"))
                .expect("read the emulator's state.env");
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

fn st(key: &str) -> String {
    state()
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from state.env"))
        .clone()
}

fn vault_url() -> String {
    st("KV_EMULATOR_VAULT_URL")
}

/// One call to the admin port: the vault API without authentication, and fault injection.
fn admin(method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let admin = st("KV_EMULATOR_ADMIN_URL");
    let host = admin.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).expect("connect to the emulator's admin port");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path}?api-version=2025-07-01 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_owned())),
    )
}

#[track_caller]
fn admin_ok(method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, value) = admin(method, path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path} answered {status}: {value}"
    );
    value
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{:x}-{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The version at the end of a Key Vault id.
fn version_of(id: &str) -> String {
    id.rsplit('/').next().unwrap().to_owned()
}

fn b64url(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .unwrap()
}

/// The public key of a key bundle's JWK.
fn jwk_public_key(jwk: &Value) -> PublicKey {
    let s = |k: &str| b64url(jwk[k].as_str().unwrap());
    if jwk["kty"].as_str().unwrap().starts_with("RSA") {
        PublicKey::from_rsa_components(&s("n"), &s("e")).unwrap()
    } else {
        let spec = match jwk["crv"].as_str().unwrap() {
            "P-256" => KeySpec::Ec256,
            "P-384" => KeySpec::Ec384,
            _ => KeySpec::Ec521,
        };
        let mut point = vec![4];
        point.extend(s("x"));
        point.extend(s("y"));
        PublicKey::from_ec_point(&named_curve_der(spec).unwrap(), &point).unwrap()
    }
}

/// A plain key (no certificate): its version.
fn create_key(name: &str, props: &str) -> String {
    let v = admin_ok(
        "POST",
        &format!("/keys/{name}/create"),
        Some(serde_json::from_str(props).unwrap()),
    );
    version_of(v["key"]["kid"].as_str().unwrap())
}

fn policy(props: &str, issuer: &str, content_type: &str, key_usage: &[&str]) -> Value {
    let kp: Value = serde_json::from_str(props).unwrap();
    json!({
        "key_props": {"kty": kp["kty"], "key_size": kp["key_size"], "crv": kp["crv"],
                      "exportable": true, "reuse_key": false},
        "secret_props": {"contentType": content_type},
        "x509_props": {"subject": "CN=notation signer,O=notation-plugins",
                       "key_usage": key_usage, "ekus": [CODE_SIGNING], "validity_months": 12},
        "issuer": {"name": issuer},
    })
}

/// A certificate issued by a test CA the way Key Vault users do it: create with issuer Unknown
/// (Key Vault makes the key and a CSR), the CA signs, merge the chain. Returns (version, CA).
fn ca_issued_certificate(
    name: &str,
    props: &str,
    content_type: &str,
    intermediate: bool,
) -> (String, TestCa) {
    admin_ok(
        "POST",
        &format!("/certificates/{name}/create"),
        Some(json!({"policy": policy(props, "Unknown", content_type, &["digitalSignature"])})),
    );
    let key = admin_ok("GET", &format!("/keys/{name}"), None);
    let public = jwk_public_key(&key["key"]);
    let mut ca = TestCa::new("CN=Key Vault Test Root,O=notation-plugins");
    if intermediate {
        ca = ca.with_intermediate(
            "CN=Key Vault Test Signing CA,O=notation-plugins",
            &CaProfile::default(),
        );
    }
    let chain = ca.issue_leaf(&public, &format!("CN={name},O=notation-plugins"));
    let b64 = base64::engine::general_purpose::STANDARD;
    let x5c: Vec<String> = chain.iter().map(|c| b64.encode(c.der())).collect();
    let v = admin_ok(
        "POST",
        &format!("/certificates/{name}/pending/merge"),
        Some(json!({ "x5c": x5c })),
    );
    (version_of(v["id"].as_str().unwrap()), ca)
}

/// A self-signed certificate made by Key Vault from a policy. Returns (version, cert PEM).
fn self_signed_certificate(name: &str, props: &str, key_usage: &[&str]) -> (String, String) {
    admin_ok(
        "POST",
        &format!("/certificates/{name}/create"),
        Some(json!({"policy": policy(props, "Self", "application/x-pkcs12", key_usage)})),
    );
    let cert = admin_ok("GET", &format!("/certificates/{name}"), None);
    let der = base64::engine::general_purpose::STANDARD
        .decode(cert["cer"].as_str().unwrap())
        .unwrap();
    let pem = chain::Certificate::from_der(&der, "kv").unwrap().to_pem();
    (version_of(cert["id"].as_str().unwrap()), pem)
}

/// The PEM bundle of a test CA's certificates (intermediate, root) for ca_certs.
fn ca_bundle(ca: &TestCa, dir: &Path, name: &str) -> PathBuf {
    // issue_leaf returns leaf, intermediate (if any), root: drop the leaf.
    let probe = plugin_protocol::testca::generate_key(KeySpec::Ec256)
        .public_key()
        .unwrap();
    let chain = ca.issue_leaf(&probe, "CN=probe");
    let path = dir.join(format!("{name}.ca.pem"));
    std::fs::write(&path, chain::to_pem_bundle(&chain[1..])).unwrap();
    path
}

fn fault(matching: &str, status: u16, count: i64, retry_after: Option<&str>) {
    admin_ok(
        "POST",
        "/_admin/fault",
        Some(json!({"match": matching, "status": status, "count": count,
                    "retry_after": retry_after})),
    );
}

// ---------------------------------------------------------------------------------------------
// Driving the plugin

fn plugin() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| hsm_tests::plugin_binary("azure-keyvault"))
        .clone()
}

/// A service principal with a client secret, against the local Entra endpoint; every other
/// Azure variable is explicitly blank so the tests do not depend on the caller's shell.
fn base_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("SSL_CERT_FILE".into(), st("SSL_CERT_FILE")),
        ("AZURE_AUTHORITY_HOST".into(), st("AZURE_AUTHORITY_HOST")),
        ("AZURE_TENANT_ID".into(), st("AZURE_TENANT_ID")),
        ("AZURE_CLIENT_ID".into(), "notation-tests".into()),
        (
            "AZURE_CLIENT_SECRET".into(),
            st("KV_EMULATOR_CLIENT_SECRET"),
        ),
    ];
    for k in [
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CREDENTIAL_TYPE",
        "IDENTITY_ENDPOINT",
        "MSI_ENDPOINT",
        "NOTATION_AZURE_KEYVAULT_CERTIFICATE_CHAIN",
        "NOTATION_AZURE_KEYVAULT_CA_CERTS",
        "NOTATION_AZURE_KEYVAULT_SELF_SIGNED",
        "NOTATION_AZURE_KEYVAULT_CREDENTIAL_TYPE",
        "NOTATION_AZURE_KEYVAULT_CLIENT_ID",
        "NOTATION_AZURE_KEYVAULT_TENANT_ID",
        "NOTATION_AZURE_KEYVAULT_TIMEOUT_SECONDS",
    ] {
        env.push((k.to_owned(), String::new()));
    }
    env
}

/// `base_env` with some variables replaced.
fn env_with(changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = base_env();
    for (k, v) in changes {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

fn client(env: &[(String, String)]) -> PluginClient {
    let mut c = PluginClient::new(plugin());
    for (k, v) in env {
        c = c.with_env(k, v);
    }
    c
}

fn config(pairs: &[(&str, &str)]) -> Option<PluginConfig> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn describe(key_id: &str, pairs: &[(&str, &str)], env: &[(String, String)]) -> Invocation {
    client(env).describe_key(key_id, config(pairs)).unwrap()
}

fn sign(
    key_id: &str,
    spec: KeySpec,
    pairs: &[(&str, &str)],
    env: &[(String, String)],
) -> Invocation {
    client(env)
        .generate_signature(
            key_id,
            spec,
            spec.hash_algorithm(),
            b"payload",
            config(pairs),
        )
        .unwrap()
}

/// The conformance checker (describe-key, generate-signature, JWS and COSE envelopes, all of
/// notation's checks), then each envelope verified against the root.
#[track_caller]
fn conformance(
    key_id: &str,
    pairs: &[(&str, &str)],
    env: &[(String, String)],
    root_pem: &str,
    dir: &Path,
) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    std::fs::create_dir_all(dir).unwrap();
    hsm_tests::check_and_verify(&plugin(), key_id, pairs, &env, root_pem, dir);
}

/// The JSON error of a failed invocation, checked for its code and message fragments.
#[track_caller]
fn assert_error(
    inv: &Invocation,
    code: &str,
    fragments: &[&str],
) -> plugin_protocol::error::ErrorResponse {
    assert_eq!(
        inv.exit_code,
        Some(1),
        "expected a failure; stdout {:?}",
        String::from_utf8_lossy(&inv.stdout)
    );
    assert!(inv.stdout.is_empty(), "nothing on stdout on failure");
    let err = inv
        .error()
        .unwrap_or_else(|| panic!("stderr is not one JSON error: {}", inv.stderr_text()));
    assert_eq!(
        err.error_code.as_str(),
        code,
        "error code; message: {}",
        err.error_message
    );
    for f in fragments {
        assert!(
            err.error_message.contains(f),
            "message lacks {f:?}: {}",
            err.error_message
        );
    }
    err
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

fn meta(err: &plugin_protocol::error::ErrorResponse, key: &str) -> String {
    err.error_metadata
        .as_ref()
        .and_then(|m| m.get(key).cloned())
        .unwrap_or_else(|| panic!("errorMetadata lacks {key}: {:?}", err.error_metadata))
}

// ---------------------------------------------------------------------------------------------
// The six key specs, with a chain from each source

/// One key spec through the checker with every chain source and key id form:
/// * PKCS#12 backing secret (CA chain merged into Key Vault), versionless keys/ id;
/// * PEM backing secret, versioned certificates/ id;
/// * the certificate plus ca_certs, with a principal that may not read secrets, azurekms:// id;
/// * a self-signed certificate made by Key Vault from a Notary-compatible policy, self_signed=true,
///   versioned keys/ id.
fn six_specs_case(spec: KeySpec, props: &str) {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_url();
    let host = vault.trim_start_matches("https://");

    let name = unique("p12");
    let (_, ca) = ca_issued_certificate(&name, props, "application/x-pkcs12", true);
    let key_id = format!("{vault}/keys/{name}");
    assert_spec(&key_id, spec);
    conformance(
        &key_id,
        &[],
        &base_env(),
        &ca.root_pem(),
        &dir.path().join("p12"),
    );

    let name = unique("pem");
    let (version, ca) = ca_issued_certificate(&name, props, "application/x-pem-file", false);
    let key_id = format!("{vault}/certificates/{name}/{version}");
    assert_spec(&key_id, spec);
    conformance(
        &key_id,
        &[],
        &base_env(),
        &ca.root_pem(),
        &dir.path().join("pem"),
    );

    let bundle = ca_bundle(&ca, dir.path(), &name);
    let key_id = format!("azurekms://{host}/{name}");
    let no_secrets = env_with(&[("AZURE_CLIENT_ID", "deny-secrets.get")]);
    conformance(
        &key_id,
        &[("ca_certs", bundle.to_str().unwrap())],
        &no_secrets,
        &ca.root_pem(),
        &dir.path().join("ca_certs"),
    );

    let name = unique("self");
    let (version, pem) = self_signed_certificate(&name, props, &["digitalSignature"]);
    let key_id = format!("{vault}/keys/{name}/{version}");
    conformance(
        &key_id,
        &[("self_signed", "true")],
        &no_secrets,
        &pem,
        &dir.path().join("self"),
    );
}

#[test]
fn rsa_2048_every_chain_source() {
    six_specs_case(SPECS[0].0, SPECS[0].1);
}

#[test]
fn rsa_3072_every_chain_source() {
    six_specs_case(SPECS[1].0, SPECS[1].1);
}

#[test]
fn rsa_4096_every_chain_source() {
    six_specs_case(SPECS[2].0, SPECS[2].1);
}

#[test]
fn ec_256_every_chain_source() {
    six_specs_case(SPECS[3].0, SPECS[3].1);
}

#[test]
fn ec_384_every_chain_source() {
    six_specs_case(SPECS[4].0, SPECS[4].1);
}

#[test]
fn ec_521_every_chain_source() {
    six_specs_case(SPECS[5].0, SPECS[5].1);
}
