//! The local Key Vault emulator (hsm-tests/keyvault-emulator/emulator.py, started by
//! `scripts/keyvault-emulator.sh start` if needed; idempotent) and a tiny client of its
//! plain-HTTP admin port (the vault API without authentication, fault injection, request log),
//! shared by the Azure Key Vault tests and the contract suite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use plugin_protocol::public_key::named_curve_der;
use plugin_protocol::testca::{CaProfile, TestCa};
use plugin_protocol::{chain, KeySpec, PublicKey};
use serde_json::{json, Value};

/// The key properties of each key spec for a Key Vault create call.
pub const SPECS: [(KeySpec, &str); 6] = [
    (KeySpec::Rsa2048, r#"{"kty":"RSA","key_size":2048}"#),
    (KeySpec::Rsa3072, r#"{"kty":"RSA","key_size":3072}"#),
    (KeySpec::Rsa4096, r#"{"kty":"RSA","key_size":4096}"#),
    (KeySpec::Ec256, r#"{"kty":"EC","crv":"P-256"}"#),
    (KeySpec::Ec384, r#"{"kty":"EC","crv":"P-384"}"#),
    (KeySpec::Ec521, r#"{"kty":"EC","crv":"P-521"}"#),
];
/// The key properties of an EC P-256 key.
pub const EC_256: &str = r#"{"kty":"EC","crv":"P-256"}"#;
const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";

/// The emulator's state file (started if needed): VAULT_URL, ADMIN_URL, SSL_CERT_FILE, ...
pub fn state() -> &'static BTreeMap<String, String> {
    static STATE: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    STATE.get_or_init(|| crate::backend_state("keyvault-emulator"))
}

pub fn st(key: &str) -> String {
    state()
        .get(key)
        .unwrap_or_else(|| panic!("{key} missing from state.env"))
        .clone()
}

pub fn vault_url() -> String {
    st("KV_EMULATOR_VAULT_URL")
}

/// One call to the admin port: the vault API without authentication, and fault injection.
pub fn admin(method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let admin = st("KV_EMULATOR_ADMIN_URL");
    let host = admin.trim_start_matches("http://");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let joiner = if path.contains('?') { '&' } else { '?' };
    let head = format!(
        "{method} {path}{joiner}api-version=2025-07-01 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\n"
    );
    let (status, body) = crate::http(host, &head, &body);
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[track_caller]
pub fn admin_ok(method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, value) = admin(method, path, body);
    assert!(
        (200..300).contains(&status),
        "{method} {path} answered {status}: {value}"
    );
    value
}

/// The version at the end of a Key Vault id.
pub fn version_of(id: &str) -> String {
    id.rsplit('/').next().unwrap().to_owned()
}

pub fn b64url(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .unwrap()
}

/// The public key of a key bundle's JWK.
pub fn jwk_public_key(jwk: &Value) -> PublicKey {
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
pub fn create_key(name: &str, props: &str) -> String {
    let v = admin_ok(
        "POST",
        &format!("/keys/{name}/create"),
        Some(serde_json::from_str(props).unwrap()),
    );
    version_of(v["key"]["kid"].as_str().unwrap())
}

pub fn policy(props: &str, issuer: &str, content_type: &str, key_usage: &[&str]) -> Value {
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
pub fn ca_issued_certificate(
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
pub fn self_signed_certificate(name: &str, props: &str, key_usage: &[&str]) -> (String, String) {
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
pub fn ca_bundle(ca: &TestCa, dir: &Path, name: &str) -> PathBuf {
    // issue_leaf returns leaf, intermediate (if any), root: drop the leaf.
    let probe = plugin_protocol::testca::generate_key(KeySpec::Ec256)
        .public_key()
        .unwrap();
    let chain = ca.issue_leaf(&probe, "CN=probe");
    let path = dir.join(format!("{name}.ca.pem"));
    std::fs::write(&path, chain::to_pem_bundle(&chain[1..])).unwrap();
    path
}

pub fn fault(matching: &str, status: u16, count: i64, retry_after: Option<&str>) {
    admin_ok(
        "POST",
        "/_admin/fault",
        Some(json!({"match": matching, "status": status, "count": count,
                    "retry_after": retry_after})),
    );
}

// ---------------------------------------------------------------------------------------------
// Driving the plugin

/// A service principal with a client secret, against the local Entra endpoint; every other
/// Azure variable is explicitly blank so the tests do not depend on the caller's shell.
pub fn base_env() -> Vec<(String, String)> {
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
pub fn env_with(changes: &[(&str, &str)]) -> Vec<(String, String)> {
    crate::env_with(base_env(), changes)
}

/// The vault API requests the emulator got whose "METHOD /path" contains `matching`.
pub fn requests(matching: &str) -> Vec<String> {
    let v = admin_ok("GET", &format!("/_admin/requests?match={matching}"), None);
    v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}
