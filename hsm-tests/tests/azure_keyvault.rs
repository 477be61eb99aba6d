//! notation-azure-keyvault against the local Key Vault emulator
//! (hsm-tests/keyvault-emulator/emulator.py, started by `scripts/keyvault-emulator.sh start`,
//! which these tests run themselves if needed; it is idempotent). The vault is
//! https://local.vault.azure.net and the Entra authority https://login.kv-emulator.test,
//! both 127.0.0.1:443 through /etc/hosts, trusted through SSL_CERT_FILE. Every test makes its own keys
//! and certificates with unique names, so the tests run in parallel on one emulator. The emulator
//! is set up through its plain-HTTP admin port (the vault API without authentication); the
//! plugin itself is driven exactly as notation drives it, with a client secret or a workload
//! identity against the local token endpoint.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use plugin_protocol::client::{Invocation, PluginClient};
use plugin_protocol::contract::DescribeKeyResponse;
use plugin_protocol::testca::{CaProfile, TestCa};
use plugin_protocol::{chain, KeySpec};
use serde_json::json;

use hsm_tests::keyvault::*;
use hsm_tests::{assert_error, unique};

fn plugin() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| hsm_tests::plugin_binary("azure-keyvault"))
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
    let env = hsm_tests::env_refs(env);
    std::fs::create_dir_all(dir).unwrap();
    hsm_tests::check_and_verify(&plugin(), key_id, pairs, &env, root_pem, dir);
}

fn meta(err: &plugin_protocol::error::ErrorResponse, key: &str) -> String {
    err.error_metadata
        .as_ref()
        .and_then(|m| m.get(key).cloned())
        .unwrap_or_else(|| panic!("errorMetadata lacks {key}: {:?}", err.error_metadata))
}

// ---------------------------------------------------------------------------------------------
// The six key specs, with a chain from each source

// ---------------------------------------------------------------------------------------------
// Credentials

/// A federated token as a Kubernetes service account token file holds it (the emulator checks
/// the audience, not the signature).
fn federated_token_file(dir: &Path, audience: &str) -> PathBuf {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!(
        "{}.{}.{}",
        b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(
            json!({"aud": [audience], "iss": "https://oidc.kv-emulator.test",
                   "sub": "system:serviceaccount:ci:notation", "exp": 4102444800u64})
            .to_string()
        ),
        b64.encode("not-a-signature")
    );
    let path = dir.join("azure-identity-token");
    std::fs::write(&path, jwt).unwrap();
    path
}

#[test]
fn workload_identity_signs_through_the_checker() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("wid");
    let (version, pem) = self_signed_certificate(
        &name,
        r#"{"kty":"EC","crv":"P-256"}"#,
        &["digitalSignature"],
    );
    let token = federated_token_file(dir.path(), "api://AzureADTokenExchange");
    let token = token.to_str().unwrap();
    let key_id = format!("{}/certificates/{name}/{version}", vault_url());
    // credential_type default picks workload identity when AZURE_FEDERATED_TOKEN_FILE is set.
    let env = env_with(&[
        ("AZURE_CLIENT_SECRET", ""),
        ("AZURE_CLIENT_ID", "workload-app"),
        ("AZURE_FEDERATED_TOKEN_FILE", token),
    ]);
    conformance(
        &key_id,
        &[("self_signed", "true")],
        &env,
        &pem,
        &dir.path().join("default"),
    );
    // ... and so does credential_type=workloadid, with the client id from pluginConfig.
    let env = env_with(&[
        ("AZURE_CLIENT_SECRET", ""),
        ("AZURE_CLIENT_ID", ""),
        ("AZURE_FEDERATED_TOKEN_FILE", token),
    ]);
    let inv = sign(
        &key_id,
        KeySpec::Ec256,
        &[
            ("self_signed", "true"),
            ("credential_type", "workloadid"),
            ("client_id", "workload-app"),
        ],
        &env,
    );
    assert!(inv.succeeded(), "{}", inv.stderr_text());

    // A token Entra does not accept: ACCESS_DENIED with Entra's reason.
    let bad = federated_token_file(&dir.path().join(".."), "api://someone-else");
    let env = env_with(&[
        ("AZURE_CLIENT_SECRET", ""),
        ("AZURE_FEDERATED_TOKEN_FILE", bad.to_str().unwrap()),
    ]);
    let inv = describe(&key_id, &[("credential_type", "workloadid")], &env);
    let err = assert_error(
        &inv,
        "ACCESS_DENIED",
        &[
            "cannot get a Key Vault token",
            "workload identity",
            "AADSTS700211",
        ],
    );
    assert_eq!(meta(&err, "entraErrorCode"), "AADSTS700211");
}

#[test]
fn client_secret_credentials_and_their_failures() {
    let name = unique("cred");
    let version = create_key(&name, r#"{"kty":"EC","crv":"P-384"}"#);
    let key_id = format!("{}/keys/{name}/{version}", vault_url());
    // credential_type environment = the client secret. With the debug log on, neither the
    // secret nor a token reaches the log.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("plugin.log");
    let mut env = base_env();
    env.push(("NOTATION_PLUGIN_LOG".into(), log.to_str().unwrap().into()));
    let inv = describe(&key_id, &[("credential_type", "environment")], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("GET"),
        "the debug log has the requests: {logged}"
    );
    assert!(
        !logged.contains(&st("KV_EMULATOR_CLIENT_SECRET")),
        "secret in the log"
    );
    assert!(!logged.contains("kvemu."), "token in the log");

    let inv = describe(
        &key_id,
        &[],
        &env_with(&[("AZURE_CLIENT_SECRET", "wrong-secret")]),
    );
    let err = assert_error(
        &inv,
        "ACCESS_DENIED",
        &[
            "client secret of application notation-tests",
            "AADSTS7000215",
        ],
    );
    assert!(
        !inv.stderr_text().contains("wrong-secret"),
        "the secret is never echoed"
    );
    assert_eq!(meta(&err, "entraErrorCode"), "AADSTS7000215");

    let inv = describe(
        &key_id,
        &[("credential_type", "environment")],
        &env_with(&[("AZURE_CLIENT_SECRET", "")]),
    );
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["credential_type environment needs", "AZURE_CLIENT_SECRET"],
    );
    let inv = describe(&key_id, &[("credential_type", "password")], &base_env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["pluginConfig 'credential_type' must be one of default, environment, workloadid"],
    );
    let inv = describe(&key_id, &[], &env_with(&[("AZURE_TENANT_ID", "")]));
    assert_error(&inv, "VALIDATION_ERROR", &["no tenant", "AZURE_TENANT_ID"]);
}

// ---------------------------------------------------------------------------------------------
// Failures: code and message

/// (An unknown key: the contract suite.)
#[test]
fn certificate_not_found_and_bad_key_ids() {
    let vault = vault_url();
    let name = unique("missing");
    let inv = describe(
        &format!("{vault}/certificates/{name}/0a1b"),
        &[],
        &base_env(),
    );
    let err = assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["certificate", "CertificateNotFound"],
    );
    assert_eq!(meta(&err, "azureErrorCode"), "CertificateNotFound");

    for bad in [
        format!("{vault}/secrets/{name}"),
        "http://local.vault.azure.net/keys/k".to_owned(),
        "my-key".to_owned(),
    ] {
        let inv = describe(&bad, &[], &base_env());
        assert_error(
            &inv,
            "VALIDATION_ERROR",
            &[&bad, "is not a Key Vault key id"],
        );
    }

    // A plain key has no certificate: the default chain source says so.
    let version = create_key(&name, r#"{"kty":"EC","crv":"P-256"}"#);
    let key_id = format!("{vault}/keys/{name}");
    let inv = sign(&key_id, KeySpec::Ec256, &[], &base_env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &[
            "no certificate chain for key",
            &version,
            "certificate_chain",
        ],
    );
}

#[test]
fn unsupported_keys_are_named() {
    let vault = vault_url();
    for (props, what) in [
        (r#"{"kty":"EC","crv":"P-256K"}"#, "secp256k1"),
        (r#"{"kty":"RSA","key_size":1024}"#, "RSA-1024"),
        (r#"{"kty":"oct"}"#, "symmetric (oct) key"),
    ] {
        let name = unique("unsupported");
        create_key(&name, props);
        let inv = describe(&format!("{vault}/keys/{name}"), &[], &base_env());
        assert_error(
            &inv,
            "VALIDATION_ERROR",
            &[what, "which notation cannot sign with", &name],
        );
    }
    // A key whose key_ops exclude sign.
    let name = unique("nosign-ops");
    admin_ok(
        "POST",
        &format!("/keys/{name}/create"),
        Some(json!({"kty": "EC", "crv": "P-256", "key_ops": ["verify"]})),
    );
    let inv = describe(&format!("{vault}/keys/{name}"), &[], &base_env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["does not allow the sign operation"],
    );
}

#[test]
fn disabled_key() {
    let name = unique("disabled");
    let (version, _) = self_signed_certificate(
        &name,
        r#"{"kty":"RSA","key_size":2048}"#,
        &["digitalSignature"],
    );
    admin_ok(
        "PATCH",
        &format!("/keys/{name}/{version}"),
        Some(json!({"attributes": {"enabled": false}})),
    );
    let inv = describe(&format!("{}/keys/{name}", vault_url()), &[], &base_env());
    let err = assert_error(&inv, "VALIDATION_ERROR", &["is disabled", "enable it"]);
    assert_eq!(meta(&err, "azureInnerErrorCode"), "KeyDisabled");
    assert_eq!(meta(&err, "azureErrorCode"), "Forbidden");
}

#[test]
fn forbidden_sign_and_secret_permissions() {
    let vault = vault_url();
    let name = unique("forbidden");
    let (version, _) = ca_issued_certificate(
        &name,
        r#"{"kty":"EC","crv":"P-256"}"#,
        "application/x-pkcs12",
        false,
    );
    let key_id = format!("{vault}/keys/{name}/{version}");

    // No keys/sign: describe-key works, generate-signature is ACCESS_DENIED naming the
    // permission and the role.
    let env = env_with(&[("AZURE_CLIENT_ID", "deny-keys.sign")]);
    let inv = describe(&key_id, &[], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let inv = sign(&key_id, KeySpec::Ec256, &[], &env);
    let err = assert_error(
        &inv,
        "ACCESS_DENIED",
        &[
            "denied sign on key",
            "keys/sign permission",
            "Key Vault Crypto User",
            "deny-keys.sign",
        ],
    );
    assert_eq!(meta(&err, "azureErrorCode"), "Forbidden");
    assert_eq!(meta(&err, "httpStatus"), "403");
    assert!(!meta(&err, "requestId").is_empty());

    // No secrets/get: the default chain source is refused, with the hint to use ca_certs.
    let env = env_with(&[("AZURE_CLIENT_ID", "deny-secrets.get")]);
    let inv = sign(&key_id, KeySpec::Ec256, &[], &env);
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &[
            "secrets/get permission",
            "Key Vault Secrets User",
            "ca_certs",
            "certificates/get",
        ],
    );

    // No certificates/get with ca_certs: that permission is named.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, TestCa::new("CN=unused").root_pem()).unwrap();
    let env = env_with(&[("AZURE_CLIENT_ID", "deny-certificates.get")]);
    let inv = sign(
        &key_id,
        KeySpec::Ec256,
        &[("ca_certs", bundle.to_str().unwrap())],
        &env,
    );
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &["certificates/get permission", "Key Vault Certificate User"],
    );
}

#[test]
fn throttled_then_succeeded() {
    let name = unique("throttle-ok");
    create_key(&name, r#"{"kty":"EC","crv":"P-256"}"#);
    fault(&format!("/keys/{name}"), 429, 2, Some("1"));
    let started = Instant::now();
    let inv = describe(&format!("{}/keys/{name}", vault_url()), &[], &base_env());
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 honoured twice, took {:?}",
        started.elapsed()
    );

    // A 503 on sign is transient: retried, and the signature comes back (the key id pins the
    // version, so the sign call is the one the fault names).
    let name = unique("unavailable");
    let (version, _) = self_signed_certificate(
        &name,
        r#"{"kty":"EC","crv":"P-256"}"#,
        &["digitalSignature"],
    );
    fault(&format!("/keys/{name}/{version}/sign"), 503, 1, None);
    let inv = sign(
        &format!("{}/keys/{name}/{version}", vault_url()),
        KeySpec::Ec256,
        &[("self_signed", "true")],
        &base_env(),
    );
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    // The SDK's challenge (unauthenticated), the 503, the retry.
    assert_eq!(requests(&format!("/keys/{name}/{version}/sign")).len(), 3);
}

/// (Throttled beyond the attempts: the contract suite.)
#[test]
fn throttled_beyond_the_deadline() {
    let vault = vault_url();
    // Retry-After 2 with a 3 s deadline: once the wait no longer fits, THROTTLED, saying that
    // the asked wait is longer than what is left of the deadline (which has not passed).
    let name = unique("throttle-deadline");
    create_key(&name, r#"{"kty":"EC","crv":"P-256"}"#);
    fault(&format!("/keys/{name}"), 429, -1, Some("2"));
    let started = Instant::now();
    let inv = describe(
        &format!("{vault}/keys/{name}"),
        &[("timeout_seconds", "3")],
        &base_env(),
    );
    assert_error(
        &inv,
        "THROTTLED",
        &["Retry-After", "3s deadline", "is throttling requests"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn certificate_chain_rules_and_self_signed_misuse() {
    let vault = vault_url();
    // A policy with keyEncipherment (a common default): refused by the chain rules, with why.
    let name = unique("keyenc");
    let (version, _) = self_signed_certificate(
        &name,
        r#"{"kty":"RSA","key_size":2048}"#,
        &["digitalSignature", "keyEncipherment"],
    );
    let key_id = format!("{vault}/keys/{name}/{version}");
    let inv = sign(
        &key_id,
        KeySpec::Rsa2048,
        &[("self_signed", "true")],
        &base_env(),
    );
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["breaks notation's rules", "keyEncipherment"],
    );

    // self_signed with a CA-issued certificate.
    let name = unique("ca-issued");
    let (version, _) = ca_issued_certificate(
        &name,
        r#"{"kty":"EC","crv":"P-384"}"#,
        "application/x-pem-file",
        true,
    );
    let key_id = format!("{vault}/certificates/{name}/{version}");
    let inv = sign(
        &key_id,
        KeySpec::Ec384,
        &[("self_signed", "true")],
        &base_env(),
    );
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &[
            "self_signed=true but certificate",
            "is issued by",
            "Key Vault Test Signing CA",
        ],
    );

    // ca_certs and self_signed together.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, TestCa::new("CN=unused").root_pem()).unwrap();
    let inv = sign(
        &key_id,
        KeySpec::Ec384,
        &[
            ("self_signed", "true"),
            ("ca_certs", bundle.to_str().unwrap()),
        ],
        &base_env(),
    );
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["self_signed=true and ca_certs are set together"],
    );
}

#[test]
fn imported_pkcs12_encrypted_with_the_empty_password() {
    // Key Vault hands out password-less PKCS#12 files; openssl encrypts them (AES-256, PBES2)
    // even with an empty password. Import one and sign with the chain read from it.
    let dir = tempfile::tempdir().unwrap();
    let key = plugin_protocol::testca::generate_key(KeySpec::Ec256);
    let ca = TestCa::new("CN=PKCS12 Root,O=notation-plugins")
        .with_intermediate("CN=PKCS12 CA,O=notation-plugins", &CaProfile::default());
    let chain = ca.issue_leaf(&key.public_key().unwrap(), "CN=pkcs12 signer");
    let key_pem = dir.path().join("key.pem");
    let certs_pem = dir.path().join("certs.pem");
    std::fs::write(&key_pem, key.to_pkcs8_pem().as_bytes()).unwrap();
    std::fs::write(&certs_pem, chain::to_pem_bundle(&chain)).unwrap();
    let pfx = dir.path().join("signer.pfx");
    let status = Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:", "-inkey"])
        .arg(&key_pem)
        .arg("-in")
        .arg(&certs_pem)
        .arg("-out")
        .arg(&pfx)
        .status()
        .expect("run openssl");
    assert!(status.success());
    let name = unique("pfx");
    let value = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&pfx).unwrap());
    let v = admin_ok(
        "POST",
        &format!("/certificates/{name}/import"),
        Some(
            json!({"value": value, "policy": {"secret_props": {"contentType": "application/x-pkcs12"}}}),
        ),
    );
    let version = version_of(v["id"].as_str().unwrap());
    let key_id = format!("{}/keys/{name}/{version}", vault_url());
    conformance(&key_id, &[], &base_env(), &ca.root_pem(), dir.path());
}

// ---------------------------------------------------------------------------------------------
// The emulator itself, kept honest by Microsoft's Python SDK

#[test]
fn emulator_passes_the_official_python_sdk_conformance_test() {
    let mut cmd = Command::new(st("KV_EMULATOR_PYTHON"));
    cmd.arg(hsm_tests::repo().join("hsm-tests/keyvault-emulator/conformance.py"));
    for (k, v) in state() {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run conformance.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "the official Python SDK rejects the emulator:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn managed_identity_system_and_user_assigned() {
    // The App Service managed identity protocol (IDENTITY_ENDPOINT + IDENTITY_HEADER), served by
    // the emulator's admin port.
    let name = unique("mi");
    self_signed_certificate(
        &name,
        r#"{"kty":"EC","crv":"P-521"}"#,
        &["digitalSignature"],
    );
    // A versionless certificate id.
    let key_id = format!("{}/certificates/{name}", vault_url());
    let endpoint = format!("{}/msi/token", st("KV_EMULATOR_ADMIN_URL"));
    let secret = st("KV_EMULATOR_CLIENT_SECRET");
    let env = env_with(&[
        ("AZURE_CLIENT_SECRET", ""),
        ("AZURE_CLIENT_ID", ""),
        ("IDENTITY_ENDPOINT", &endpoint),
        ("IDENTITY_HEADER", &secret),
    ]);
    // credential_type default picks the managed identity when IDENTITY_ENDPOINT is set.
    let inv = sign(&key_id, KeySpec::Ec521, &[("self_signed", "true")], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    // A user-assigned identity by client id (here one without keys/sign: the id reaches Entra).
    let inv = sign(
        &key_id,
        KeySpec::Ec521,
        &[
            ("self_signed", "true"),
            ("credential_type", "managedid"),
            ("client_id", "deny-keys.sign"),
        ],
        &env,
    );
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &[
            "user-assigned managed identity deny-keys.sign",
            "keys/sign permission",
        ],
    );
}

/// A fake `az` on PATH that prints what `az account get-access-token -o json` prints, with a
/// token from the emulator (or fails like a signed-out CLI).
fn fake_az(dir: &Path, signed_in: bool) -> String {
    let bin = dir.join(if signed_in { "az-in" } else { "az-out" });
    std::fs::create_dir_all(&bin).unwrap();
    let script = if signed_in {
        format!(
            "#!/bin/sh\nexec curl -fsS -XPOST -d '{{\"client_id\":\"cli-user\"}}' {}/_admin/token\n",
            st("KV_EMULATOR_ADMIN_URL")
        )
    } else {
        "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n"
            .to_owned()
    };
    let az = bin.join("az");
    std::fs::write(&az, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn azure_cli_credential() {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("cli");
    let version = create_key(&name, r#"{"kty":"RSA","key_size":2048}"#);
    let key_id = format!("{}/keys/{name}/{version}", vault_url());
    let path = fake_az(dir.path(), true);
    let env = env_with(&[("AZURE_CLIENT_SECRET", ""), ("PATH", &path)]);
    // credential_type default picks the Azure CLI when `az` is on PATH and nothing else is set.
    let inv = describe(&key_id, &[], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let inv = describe(&key_id, &[("credential_type", "azurecli")], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());

    let path = fake_az(dir.path(), false);
    let env = env_with(&[("AZURE_CLIENT_SECRET", ""), ("PATH", &path)]);
    let inv = describe(&key_id, &[("credential_type", "azurecli")], &env);
    assert_error(&inv, "ACCESS_DENIED", &["Azure CLI sign-in", "az login"]);
}

#[test]
fn incomplete_chain_in_the_backing_secret() {
    // The CA's answer merged without its chain: the backing secret holds the leaf alone, and the
    // message names the missing issuer and ca_certs.
    let name = unique("leafonly");
    admin_ok(
        "POST",
        &format!("/certificates/{name}/create"),
        Some(
            json!({"policy": policy(r#"{"kty":"EC","crv":"P-256"}"#, "Unknown",
                                     "application/x-pkcs12", &["digitalSignature"])}),
        ),
    );
    let key = admin_ok("GET", &format!("/keys/{name}"), None);
    let ca = TestCa::new("CN=Leaf Only Root,O=notation-plugins");
    let chain = ca.issue_leaf(&jwk_public_key(&key["key"]), "CN=leaf only");
    let b64 = base64::engine::general_purpose::STANDARD;
    admin_ok(
        "POST",
        &format!("/certificates/{name}/pending/merge"),
        Some(json!({"x5c": [b64.encode(chain[0].der())]})),
    );
    let inv = sign(
        &format!("{}/keys/{name}", vault_url()),
        KeySpec::Ec256,
        &[],
        &base_env(),
    );
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["chain is incomplete", "Leaf Only Root", "ca_certs"],
    );
}

/// (An unreachable vault: the contract suite.)
#[test]
fn untrusted_tls_fails_fast() {
    let name = unique("tls");
    create_key(&name, r#"{"kty":"EC","crv":"P-256"}"#);
    // Without the test CA in SSL_CERT_FILE: no retries (the SDK's own would take ~80 s).
    let started = Instant::now();
    let inv = describe(
        &format!("{}/keys/{name}", vault_url()),
        &[],
        &env_with(&[("SSL_CERT_FILE", "/dev/null")]),
    );
    assert_error(
        &inv,
        "ERROR",
        &[
            "TLS certificate of local.vault.azure.net is not trusted",
            "SSL_CERT_FILE",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn plain_key_with_a_certificate_chain_file() {
    // A key without a Key Vault certificate signs with the shared certificate_chain source, and
    // needs nothing but keys/get and keys/sign.
    let dir = tempfile::tempdir().unwrap();
    let name = unique("plain");
    create_key(&name, r#"{"kty":"EC","crv":"P-384"}"#);
    let key = admin_ok("GET", &format!("/keys/{name}"), None);
    let ca = TestCa::new("CN=Chain File Root,O=notation-plugins");
    let chain = ca.issue_leaf(&jwk_public_key(&key["key"]), "CN=plain key signer");
    let file = dir.path().join("chain.pem");
    std::fs::write(&file, chain::to_pem_bundle(&chain)).unwrap();
    let env = env_with(&[("AZURE_CLIENT_ID", "deny-secrets.get+certificates.get")]);
    conformance(
        &format!("azurekms://local.vault.azure.net/{name}"),
        &[("certificate_chain", file.to_str().unwrap())],
        &env,
        &ca.root_pem(),
        &dir.path().join("out"),
    );
}

#[test]
fn certificate_commands_sign_with_the_vault_key() {
    // The shared operator commands (public-key, certificate self-signed) work through Key Vault:
    // a plain key gets a Notary-compatible self-signed certificate that Key Vault's key signs.
    let dir = tempfile::tempdir().unwrap();
    let name = unique("cmd");
    create_key(&name, r#"{"kty":"RSA","key_size":3072}"#);
    let key_id = format!("{}/keys/{name}", vault_url());
    let cert = dir.path().join("self.pem");
    let mut cmd = Command::new(plugin());
    cmd.args(["certificate", "self-signed", "--key-id", &key_id])
        .args(["--subject", "CN=command signer,O=notation-plugins", "--out"])
        .arg(&cert);
    for (k, v) in base_env() {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(&cert).unwrap();
    conformance(
        &key_id,
        &[("certificate_chain", cert.to_str().unwrap())],
        &base_env(),
        &pem,
        &dir.path().join("out"),
    );
}

/// After a certificate is renewed (a new version of certificate, key and secret), a key id pinned
/// to the old version signs with the old key and returns the old certificate; the versionless
/// id uses the new ones.
#[test]
fn a_pinned_certificate_version_signs_with_its_own_key_after_renewal() {
    use plugin_protocol::contract::GenerateSignatureResponse;
    let name = unique("renewed");
    let props = r#"{"kty":"EC","crv":"P-256"}"#;
    let (v1, pem1) = self_signed_certificate(&name, props, &["digitalSignature"]);
    let (v2, pem2) = self_signed_certificate(&name, props, &["digitalSignature"]);
    assert_ne!(v1, v2);
    let vault = vault_url();
    // The chain from the backing secret, and from the certificate itself (self_signed).
    let sources: [&[(&str, &str)]; 2] = [&[], &[("self_signed", "true")]];
    for (key_id, pem, pairs) in [
        (format!("{vault}/certificates/{name}/{v1}"), &pem1),
        (format!("{vault}/certificates/{name}/{v2}"), &pem2),
        (format!("{vault}/certificates/{name}"), &pem2),
    ]
    .into_iter()
    .flat_map(|(k, p)| sources.map(|s| (k.clone(), p, s)))
    {
        let inv = sign(&key_id, KeySpec::Ec256, pairs, &base_env());
        let r: GenerateSignatureResponse = inv
            .response()
            .unwrap_or_else(|e| panic!("{key_id}: {e}: {}", inv.stderr_text()));
        let leaf = base64::engine::general_purpose::STANDARD
            .decode(&r.certificate_chain[0])
            .unwrap();
        let leaf = chain::Certificate::from_der(&leaf, "leaf")
            .unwrap()
            .to_pem();
        assert_eq!(
            &leaf, pem,
            "{key_id} returned another version's certificate"
        );
    }
}

/// A key id pinned to a version describes that version, not the current one (a new version
/// of a key may even be of another curve).
#[test]
fn a_pinned_key_version_is_described_as_that_version() {
    let name = unique("versions");
    let v1 = create_key(&name, r#"{"kty":"EC","crv":"P-256"}"#);
    let v2 = create_key(&name, r#"{"kty":"EC","crv":"P-384"}"#);
    let vault = vault_url();
    for (key_id, spec) in [
        (format!("{vault}/keys/{name}/{v1}"), KeySpec::Ec256),
        (format!("{vault}/keys/{name}/{v2}"), KeySpec::Ec384),
        (format!("{vault}/keys/{name}"), KeySpec::Ec384),
    ] {
        let inv = describe(&key_id, &[], &base_env());
        let described: DescribeKeyResponse = inv
            .response()
            .unwrap_or_else(|e| panic!("{key_id}: {e}: {}", inv.stderr_text()));
        assert_eq!(described.key_spec, spec, "{key_id}");
    }
}

/// A trust store that would block its reader (SSL_CERT_FILE a FIFO) is refused by name at
/// once, instead of hanging the plugin past its deadline inside the TLS stack.
#[test]
fn a_trust_store_that_would_block_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("roots.pem");
    plugin_protocol::client::make_fifo(&fifo);
    let env = hsm_tests::env_with(base_env(), &[("SSL_CERT_FILE", fifo.to_str().unwrap())]);
    let mut c = PluginClient::new(plugin()).with_envs(&env);
    c.timeout = Duration::from_secs(20);
    let inv = c
        .describe_key(
            &format!("{}/keys/anything", vault_url()),
            hsm_tests::config(&[("timeout_seconds", "5")]),
        )
        .unwrap();
    assert_error(&inv, "VALIDATION_ERROR", &["SSL_CERT_FILE", "a FIFO"]);
    assert!(inv.elapsed < Duration::from_secs(3), "{:?}", inv.elapsed);
}
