//! notation-hashicorp-vault against a real OpenBao server (`scripts/openbao.sh start`, which these
//! tests run themselves if needed; it is idempotent). Every test makes its own keys, mounts,
//! policies and namespaces with a random suffix, so the tests run in parallel on one server.
//! The server is set up over its HTTP API by the small client below.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use plugin_protocol::client::Invocation;
use plugin_protocol::contract::DescribeKeyResponse;
use plugin_protocol::testca::TestCa;
use plugin_protocol::{chain, KeySpec, PublicKey};
use serde_json::{json, Value};

use hsm_tests::fake::free_port;
use hsm_tests::openbao::{env_with, root_env, server, Api};
use hsm_tests::{assert_error, unique};

const SPECS: [(KeySpec, &str); 6] = [
    (KeySpec::Rsa2048, "rsa-2048"),
    (KeySpec::Rsa3072, "rsa-3072"),
    (KeySpec::Rsa4096, "rsa-4096"),
    (KeySpec::Ec256, "ecdsa-p256"),
    (KeySpec::Ec384, "ecdsa-p384"),
    (KeySpec::Ec521, "ecdsa-p521"),
];

// ---------------------------------------------------------------------------------------------
// Driving the plugin

fn plugin() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| hsm_tests::plugin_binary("hashicorp-vault"))
        .clone()
}

/// The conformance checker against `key_id`: describe-key and generate-signature as notation
/// runs them, every answer checked as notation checks it, JWS and COSE envelopes assembled, and
/// both verified against `root_pem` as the only trust anchor.
#[track_caller]
fn sign_and_verify(
    key_id: &str,
    spec: KeySpec,
    pairs: &[(&str, &str)],
    env: &[(String, String)],
    root_pem: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let env = hsm_tests::env_refs(env);
    hsm_tests::check_and_verify(&plugin(), key_id, pairs, &env, root_pem, dir.path());
    // The key spec the checker saw is the one the Transit key type promises.
    let described = describe(
        key_id,
        pairs,
        &env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    );
    let described: DescribeKeyResponse = described.response().unwrap();
    assert_eq!(described.key_spec, spec, "{key_id}");
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

/// A chain file for `key` issued by a fresh test CA; returns (file, root PEM).
fn chain_file(dir: &Path, key: &PublicKey, name: &str) -> (PathBuf, String) {
    let ca = TestCa::new("CN=Vault Test Root,O=notation-plugins");
    let chain = ca.issue_leaf(key, &format!("CN={name},O=notation-plugins"));
    let path = dir.join(format!("{name}.chain.pem"));
    std::fs::write(&path, chain::to_pem_bundle(&chain)).unwrap();
    (path, ca.root_pem())
}

// ---------------------------------------------------------------------------------------------
// The six key specs, with a chain from each source

/// A PKI mount with a long-lived root (the mount's default max TTL of 768h is raised first).
fn pki_mount(api: &Api) -> (String, String) {
    let mount = unique("pki");
    api.call(
        "POST",
        &format!("sys/mounts/{mount}"),
        Some(json!({ "type": "pki", "config": { "max_lease_ttl": "87600h" } })),
    );
    let root = api.call(
        "POST",
        &format!("{mount}/root/generate/internal"),
        Some(json!({ "common_name": "Vault PKI Test Root", "ttl": "87600h", "key_type": "ec", "key_bits": 384 })),
    );
    let pem = root["data"]["certificate"].as_str().unwrap().to_owned();
    (mount, pem)
}

fn issue_certificate(key_id: &str, pki: &str, extra: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(plugin());
    cmd.args([
        "issue-certificate",
        "--key-id",
        key_id,
        "--subject",
        "CN=release signer,O=notation-plugins",
        "--pki-mount",
        pki,
    ])
    .args(extra);
    for (k, v) in root_env() {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn six_key_specs_with_chain_from_pki_stored_on_the_key() {
    let api = Api::root();
    let (pki, root) = pki_mount(&api);
    for (spec, key_type) in SPECS {
        let name = unique(&format!("pki-{key_type}"));
        api.create_key(&name, key_type);
        let out = issue_certificate(&name, &pki, &[]);
        assert!(
            out.status.success(),
            "issue-certificate {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The chain now lives on the key version: no chain configuration at all.
        sign_and_verify(&name, spec, &[], &root_env(), &root);
        if spec == KeySpec::Ec384 {
            // ca_certs naming the root the stored chain already holds is no duplicate.
            let dir = tempfile::tempdir().unwrap();
            let ca = dir.path().join("root.pem");
            std::fs::write(&ca, &root).unwrap();
            sign_and_verify(
                &name,
                spec,
                &[("ca_certs", ca.to_str().unwrap())],
                &root_env(),
                &root,
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication and namespaces

/// The README's signing policy for one key, with its optional read on every key's metadata
/// (public keys only), which lets a mistyped key name be "does not exist" rather than "permission
/// denied" (and the checker's unknown-keyId probe expects the former).
fn signing_policy(mount: &str, name: &str) -> String {
    format!(
        r#"path "{mount}/keys/{name}" {{ capabilities = ["read"] }}
path "{mount}/sign/{name}" {{ capabilities = ["update"] }}
path "{mount}/keys/*" {{ capabilities = ["read"] }}
"#
    )
}

/// An AppRole auth mount with a role `signer` whose tokens carry `policy`: (mount, role id,
/// secret id).
fn approle(api: &Api, policy: &str) -> (String, String, String) {
    let mount = unique("approle");
    api.call(
        "POST",
        &format!("sys/auth/{mount}"),
        Some(json!({ "type": "approle" })),
    );
    api.call(
        "POST",
        &format!("auth/{mount}/role/signer"),
        Some(json!({ "token_policies": [policy], "token_ttl": "5m" })),
    );
    let role_id = api.call("GET", &format!("auth/{mount}/role/signer/role-id"), None)["data"]
        ["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret_id = api.call("POST", &format!("auth/{mount}/role/signer/secret-id"), None)["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (mount, role_id, secret_id)
}

#[test]
fn approle_login_with_role_and_secret_id_files() {
    let api = Api::root();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("approle-key");
    api.create_key(&name, "ecdsa-p256");
    let (file, root) = chain_file(dir.path(), &api.public_key(&name, None), &name);
    let policy = unique("sign-policy");
    api.put_policy(&policy, &signing_policy("transit", &name));
    let (mount, role_id, secret_id) = approle(&api, &policy);
    let role_file = dir.path().join("role-id");
    let secret_file = dir.path().join("secret-id");
    write_private(&role_file, format!("{role_id}\n"));
    write_private(&secret_file, &secret_id);
    let chain = file.to_str().unwrap();
    let base = [
        ("auth_method", "approle"),
        ("auth_mount", mount.as_str()),
        ("role_id_file", role_file.to_str().unwrap()),
        ("certificate_chain", chain),
    ];
    let no_token = env_with(None);
    let mut pairs = base.to_vec();
    pairs.push(("secret_id_file", secret_file.to_str().unwrap()));
    sign_and_verify(&name, KeySpec::Ec256, &pairs, &no_token, &root);
    // Every login token was revoked when its invocation ended: none with the role's policy
    // is left in the token store.
    let accessors = api.call("GET", "auth/token/accessors?list=true", None);
    for accessor in accessors["data"]["keys"].as_array().unwrap() {
        let (status, info) = api.request(
            "POST",
            "auth/token/lookup-accessor",
            Some(&json!({ "accessor": accessor })),
        );
        if status == 200 {
            let policies = info["data"]["policies"].to_string();
            assert!(
                !policies.contains(&policy),
                "a login token outlived its invocation: {info}"
            );
        }
    }

    // The secret id from the environment works the same.
    let mut env = no_token.clone();
    env.push((
        "NOTATION_HASHICORP_VAULT_SECRET_ID".into(),
        secret_id.clone(),
    ));
    sign_and_verify(&name, KeySpec::Ec256, &base, &env, &root);

    // A wrong secret id is ACCESS_DENIED with Vault's reason, and never echoes the secret.
    let mut env = no_token.clone();
    let wrong = "00000000-1111-2222-3333-444444444444";
    env.push(("NOTATION_HASHICORP_VAULT_SECRET_ID".into(), wrong.into()));
    let inv = describe(&name, &base, &env);
    let msg = assert_error(&inv, "ACCESS_DENIED", &["AppRole login", &mount]).error_message;
    assert!(!msg.contains(wrong) && !msg.contains(&role_id));
}

#[test]
fn token_from_the_token_helper_file() {
    let api = Api::root();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("helper-key");
    api.create_key(&name, "ecdsa-p384");
    let policy = unique("sign-policy");
    api.put_policy(&policy, &signing_policy("transit", &name));
    let token = api.create_token(&[&policy]);
    write_private(&dir.path().join(".vault-token"), format!("{token}\n"));
    let (file, root) = chain_file(dir.path(), &api.public_key(&name, None), &name);
    let mut env = env_with(None);
    env.push(("HOME".into(), dir.path().to_str().unwrap().into()));
    sign_and_verify(
        &name,
        KeySpec::Ec384,
        &[("certificate_chain", file.to_str().unwrap())],
        &env,
        &root,
    );
}

/// Writes a secret file readable by its owner only, as the plugin requires.
fn write_private(path: &Path, contents: impl AsRef<[u8]>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A JWT with `claims`, signed ES256 by a Transit key of the test (Transit's JWS marshaling is
/// exactly JWS's ES256 encoding).
fn signed_jwt(api: &Api, issuer_key: &str, claims: &Value) -> String {
    use base64::Engine as _;
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64url.encode(json!({ "alg": "ES256", "typ": "JWT" }).to_string());
    let input = format!("{header}.{}", b64url.encode(claims.to_string()));
    let signed = api.call(
        "POST",
        &format!("transit/sign/{issuer_key}"),
        Some(json!({
            "input": base64::engine::general_purpose::STANDARD.encode(&input),
            "hash_algorithm": "sha2-256",
            "marshaling_algorithm": "jws",
        })),
    );
    let sig = signed["data"]["signature"].as_str().unwrap();
    format!("{input}.{}", sig.rsplit(':').next().unwrap())
}

/// An ID token as a CI system issues one.
fn ci_jwt(api: &Api, issuer_key: &str, audience: &str, exp_offset: i64) -> String {
    let now = now_secs();
    signed_jwt(
        api,
        issuer_key,
        &json!({
            "iss": "https://ci.example.test",
            "sub": "project:app:ref:main",
            "aud": audience,
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + exp_offset,
            "project_path": "group/app",
        }),
    )
}

#[test]
fn jwt_login_with_a_ci_id_token() {
    let api = Api::root();
    let dir = tempfile::tempdir().unwrap();
    // The CI's token-signing key, and Vault's jwt auth method trusting it.
    let issuer = unique("ci-issuer");
    api.create_key(&issuer, "ecdsa-p256");
    let issuer_pem = api.public_key(&issuer, None).to_spki_pem();
    let mount = unique("jwt");
    api.call(
        "POST",
        &format!("sys/auth/{mount}"),
        Some(json!({ "type": "jwt" })),
    );
    api.call(
        "POST",
        &format!("auth/{mount}/config"),
        Some(json!({
            "jwt_validation_pubkeys": [issuer_pem],
            "bound_issuer": "https://ci.example.test",
        })),
    );
    let name = unique("jwt-key");
    api.create_key(&name, "rsa-2048");
    let policy = unique("sign-policy");
    api.put_policy(&policy, &signing_policy("transit", &name));
    api.call(
        "POST",
        &format!("auth/{mount}/role/release"),
        Some(json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["https://vault.example.test"],
            "bound_claims": { "project_path": "group/app" },
            "token_policies": [policy],
            "token_ttl": "5m",
        })),
    );
    let (chain, root) = chain_file(dir.path(), &api.public_key(&name, None), &name);
    let chain = chain.to_str().unwrap();
    let jwt_file = dir.path().join("id-token.jwt");
    let jwt = ci_jwt(&api, &issuer, "https://vault.example.test", 600);
    std::fs::write(&jwt_file, &jwt).unwrap();
    let no_token = env_with(None);
    let pairs = [
        ("auth_method", "jwt"),
        ("auth_mount", mount.as_str()),
        ("role", "release"),
        ("jwt_file", jwt_file.to_str().unwrap()),
        ("certificate_chain", chain),
    ];
    sign_and_verify(&name, KeySpec::Rsa2048, &pairs, &no_token, &root);

    // `oidc` is an alias; the token can come from the environment.
    let mut env = no_token.clone();
    env.push(("NOTATION_HASHICORP_VAULT_JWT".into(), jwt.clone()));
    let pairs = [
        ("auth_method", "oidc"),
        ("auth_mount", mount.as_str()),
        ("role", "release"),
        ("certificate_chain", chain),
    ];
    assert!(sign(&name, KeySpec::Rsa2048, &pairs, &env).succeeded());

    // A token for another audience, or an expired one, is refused: ACCESS_DENIED.
    for bad in [
        ci_jwt(&api, &issuer, "https://other.example.test", 600),
        ci_jwt(&api, &issuer, "https://vault.example.test", -120),
    ] {
        let mut env = no_token.clone();
        env.push(("NOTATION_HASHICORP_VAULT_JWT".into(), bad.clone()));
        let inv = describe(&name, &pairs, &env);
        let msg = assert_error(&inv, "ACCESS_DENIED", &["JWT/OIDC login", &mount]).error_message;
        assert!(!msg.contains(&bad), "the JWT never appears in output");
    }
}

/// A stand-in for the Kubernetes API's TokenReview endpoint: every token is the service account
/// ci/release (the only call Vault's kubernetes auth method makes).
fn fake_token_review() -> String {
    let review = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "status": {
                "authenticated": true,
                "audiences": ["vault"],
                "user": {
                    "username": "system:serviceaccount:ci:release",
                    "uid": "11111111-2222-3333-4444-555555555555",
                    "groups": ["system:serviceaccounts"],
                },
            },
    });
    hsm_tests::fake::serve(hsm_tests::fake::json("201 Created", &review.to_string())).addr
}

#[test]
fn kubernetes_login_with_a_service_account_token() {
    let api = Api::root();
    let dir = tempfile::tempdir().unwrap();
    let issuer = unique("k8s-issuer");
    api.create_key(&issuer, "ecdsa-p256");
    let mount = unique("kubernetes");
    api.call(
        "POST",
        &format!("sys/auth/{mount}"),
        Some(json!({ "type": "kubernetes" })),
    );
    api.call(
        "POST",
        &format!("auth/{mount}/config"),
        Some(json!({
            "kubernetes_host": fake_token_review(),
            "disable_local_ca_jwt": true,
            // Required with disable_local_ca_jwt; unused for the plain-HTTP stand-in.
            "kubernetes_ca_cert": TestCa::new("CN=cluster CA").root_pem(),
        })),
    );
    let name = unique("k8s-key");
    api.create_key(&name, "ecdsa-p521");
    let policy = unique("sign-policy");
    api.put_policy(&policy, &signing_policy("transit", &name));
    api.call(
        "POST",
        &format!("auth/{mount}/role/notation"),
        Some(json!({
            "bound_service_account_names": ["release"],
            "bound_service_account_namespaces": ["ci"],
            "token_policies": [policy],
            "token_ttl": "5m",
        })),
    );
    // A projected service-account token's claims.
    let now = now_secs();
    let sa_token = signed_jwt(
        &api,
        &issuer,
        &json!({
            "iss": "https://kubernetes.default.svc",
            "sub": "system:serviceaccount:ci:release",
            "aud": ["vault"],
            "iat": now - 5,
            "nbf": now - 5,
            "exp": now + 600,
            "kubernetes.io": {
                "namespace": "ci",
                "serviceaccount": { "name": "release", "uid": "11111111-2222-3333-4444-555555555555" },
            },
        }),
    );
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &sa_token).unwrap();
    let (chain, root) = chain_file(dir.path(), &api.public_key(&name, None), &name);
    let chain = chain.to_str().unwrap();
    let no_token = env_with(None);
    let pairs = [
        ("auth_method", "kubernetes"),
        ("auth_mount", mount.as_str()),
        ("role", "notation"),
        ("jwt_file", token_file.to_str().unwrap()),
        ("certificate_chain", chain),
    ];
    sign_and_verify(&name, KeySpec::Ec521, &pairs, &no_token, &root);

    // A role the service account is not bound to: ACCESS_DENIED with Vault's reason.
    api.call(
        "POST",
        &format!("auth/{mount}/role/other"),
        Some(json!({
            "bound_service_account_names": ["someone-else"],
            "bound_service_account_namespaces": ["ci"],
            "token_policies": [policy],
        })),
    );
    let mut other = pairs.to_vec();
    other[2] = ("role", "other");
    let inv = describe(&name, &other, &no_token);
    let msg = assert_error(&inv, "ACCESS_DENIED", &["Kubernetes login", &mount]).error_message;
    assert!(!msg.contains(&sa_token));

    // Without a role: said so before any request.
    let inv = describe(&name, &[pairs[0], pairs[1], pairs[3]], &no_token);
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["Kubernetes login needs", "role"],
    );
}

#[test]
fn keys_in_a_namespace() {
    let api = Api::root();
    let dir = tempfile::tempdir().unwrap();
    let ns = unique("team");
    api.call("POST", &format!("sys/namespaces/{ns}"), None);
    let in_ns = api.in_namespace(&ns);
    in_ns.call(
        "POST",
        "sys/mounts/transit",
        Some(json!({ "type": "transit" })),
    );
    let name = unique("ns-key");
    in_ns.create_key(&name, "rsa-3072");
    let (file, root) = chain_file(dir.path(), &in_ns.public_key(&name, None), &name);
    let chain = file.to_str().unwrap();
    sign_and_verify(
        &name,
        KeySpec::Rsa3072,
        &[("certificate_chain", chain), ("namespace", &ns)],
        &root_env(),
        &root,
    );
    // VAULT_NAMESPACE works the same.
    let mut env = root_env();
    env.retain(|(k, _)| k != "VAULT_NAMESPACE");
    env.push(("VAULT_NAMESPACE".into(), ns.clone()));
    sign_and_verify(
        &name,
        KeySpec::Rsa3072,
        &[("certificate_chain", chain)],
        &env,
        &root,
    );
    // Outside the namespace the key does not exist.
    let inv = describe(&name, &[], &root_env());
    assert_error(&inv, "VALIDATION_ERROR", &[&name, "mount 'transit'"]);
}

// ---------------------------------------------------------------------------------------------
// Failures: code and message

/// (An unknown key in the default mount: the contract suite.)
#[test]
fn an_unknown_mount_and_a_malformed_key_reference() {
    let name = unique("no-such-key");
    let inv = describe(&name, &[("transit_mount", "no-such-mount")], &root_env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["no-such-mount", "transit_mount"],
    );
    // A bad key reference fails before any network call.
    let inv = describe("transit/keys/x", &[], &root_env());
    assert_error(&inv, "VALIDATION_ERROR", &["<name>:<version>"]);
}

#[test]
fn ed25519_and_non_signing_keys_are_refused_by_type() {
    let api = Api::root();
    let ed = unique("ed");
    api.create_key(&ed, "ed25519");
    let inv = describe(&ed, &[], &root_env());
    assert_error(&inv, "VALIDATION_ERROR", &[&ed, "ed25519", "rsa-2048"]);

    let aes = unique("aes");
    api.create_key(&aes, "aes256-gcm96");
    let inv = describe(&aes, &[], &root_env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &[&aes, "aes256-gcm96", "cannot sign"],
    );
    let inv = sign(&aes, KeySpec::Ec256, &[], &root_env());
    assert_error(&inv, "VALIDATION_ERROR", &["aes256-gcm96"]);
}

#[test]
fn revoked_and_invalid_tokens_are_access_denied() {
    let api = Api::root();
    let name = unique("tok-key");
    api.create_key(&name, "ecdsa-p256");
    let token = api.create_token(&["default"]);
    api.call("POST", "auth/token/revoke", Some(json!({ "token": token })));
    let inv = describe(&name, &[], &env_with(Some(&token)));
    let msg = assert_error(
        &inv,
        "ACCESS_DENIED",
        &["permission denied", "rejected the token", "revoked", &name],
    )
    .error_message;
    assert!(!msg.contains(&token), "the token never appears in output");
    assert!(!inv.stderr_text().contains(&token));

    let inv = describe(&name, &[], &env_with(Some("s.not-a-real-token")));
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &["permission denied", "rejected the token"],
    );

    // A valid token whose policies do not cover the key: said so, with the policy line to add,
    // and that a mistyped key name looks the same to Vault.
    let other = api.create_token(&["default"]);
    let inv = describe(&name, &[], &env_with(Some(&other)));
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &[
            "the token is valid (policies: default)",
            &format!("path \"transit/keys/{name}\""),
            "does not exist",
        ],
    );

    // No token anywhere: said so, before any request.
    let home = tempfile::tempdir().unwrap();
    let mut env = env_with(None);
    env.push(("HOME".into(), home.path().to_str().unwrap().into()));
    let inv = describe(&name, &[], &env);
    assert_error(&inv, "VALIDATION_ERROR", &["VAULT_TOKEN", "~/.vault-token"]);
}

#[test]
fn a_policy_that_forbids_sign_is_access_denied_with_vaults_reason() {
    let api = Api::root();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("deny-key");
    api.create_key(&name, "ecdsa-p256");
    let policy = unique("read-only");
    api.put_policy(
        &policy,
        &format!(
            r#"path "transit/keys/{name}" {{ capabilities = ["read"] }}
path "transit/sign/{name}" {{ capabilities = ["deny"] }}
"#
        ),
    );
    let token = api.create_token(&[&policy]);
    let (file, _) = chain_file(dir.path(), &api.public_key(&name, None), &name);
    let pairs = [("certificate_chain", file.to_str().unwrap())];
    // Reading the key is allowed: describe-key works.
    assert!(describe(&name, &pairs, &env_with(Some(&token))).succeeded());
    let inv = sign(&name, KeySpec::Ec256, &pairs, &env_with(Some(&token)));
    assert_error(
        &inv,
        "ACCESS_DENIED",
        &[
            "permission denied",
            &format!("update on transit/sign/{name}"),
            &policy,
        ],
    );
}

/// A second, throwaway dev server (the shared one must stay unsealed and on plain HTTP).
struct OwnServer {
    child: Child,
    addr: String,
    token: &'static str,
    /// With TLS: the directory holding vault-ca.pem, vault-cert.pem and vault-key.pem.
    tls_dir: Option<tempfile::TempDir>,
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl OwnServer {
    fn start(tls: bool, extra_args: &[String]) -> Self {
        let port = free_port();
        let token = "own-server-root";
        let tls_dir = tls.then(|| tempfile::tempdir().unwrap());
        let mut cmd = Command::new(&server().bao_bin);
        cmd.args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={token}"),
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ]);
        if let Some(dir) = &tls_dir {
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.path().display()));
        }
        cmd.args(extra_args);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a second bao dev server");
        let own = OwnServer {
            child,
            addr: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
            token,
            tls_dir,
        };
        let start = Instant::now();
        while !own.up() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the second dev server did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        own
    }

    fn up(&self) -> bool {
        match &self.tls_dir {
            None => {
                let host = self.addr.trim_start_matches("http://");
                TcpStream::connect(host).is_ok()
                    && self.api().request("GET", "sys/health", None).0 == 200
            }
            Some(dir) => {
                dir.path().join("vault-ca.pem").exists() && self.bao(&["status"]).status.success()
            }
        }
    }

    fn api(&self) -> Api {
        assert!(self.tls_dir.is_none(), "the test client speaks plain HTTP");
        Api {
            addr: self.addr.clone(),
            token: self.token.into(),
            namespace: None,
        }
    }

    fn ca_pem(&self) -> PathBuf {
        self.tls_dir.as_ref().unwrap().path().join("vault-ca.pem")
    }

    /// The bao CLI against this server (for the TLS server the test client cannot reach).
    fn bao(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(&server().bao_bin);
        cmd.args(args)
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", self.token)
            .env_remove("VAULT_NAMESPACE");
        if let Some(dir) = &self.tls_dir {
            cmd.env("VAULT_CACERT", dir.path().join("vault-ca.pem"));
        }
        cmd.output().unwrap()
    }

    /// The plugin's environment for this server (a valid token, no CA settings).
    fn env(&self) -> Vec<(String, String)> {
        let mut env = env_with(Some(self.token));
        env.retain(|(k, _)| k != "VAULT_ADDR");
        env.push(("VAULT_ADDR".into(), self.addr.clone()));
        env
    }
}

#[test]
fn a_sealed_server_says_sealed() {
    let own = OwnServer::start(false, &[]);
    let api = own.api();
    api.call(
        "POST",
        "sys/mounts/transit",
        Some(json!({ "type": "transit" })),
    );
    api.create_key("k", "ecdsa-p256");
    api.call("PUT", "sys/seal", None);
    let inv = describe("k", &[], &own.env());
    assert_error(&inv, "ERROR", &["sealed", &own.addr, "unseal"]);
}

#[test]
fn tls_is_verified_against_the_configured_ca_and_never_skipped() {
    let own = OwnServer::start(true, &[]);
    for args in [
        &["secrets", "enable", "transit"][..],
        &["write", "-f", "transit/keys/k", "type=ecdsa-p256"][..],
    ] {
        let out = own.bao(args);
        assert!(
            out.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The server's CA is not a system root: refused, whatever VAULT_SKIP_VERIFY says.
    let inv = describe("k", &[], &own.env());
    assert_error(&inv, "ERROR", &["TLS", &own.addr, "VAULT_CACERT"]);
    let mut env = own.env();
    env.push(("VAULT_SKIP_VERIFY".into(), "true".into()));
    let inv = describe("k", &[], &env);
    assert_error(&inv, "ERROR", &["TLS", "VAULT_SKIP_VERIFY is ignored"]);

    // VAULT_CACERT, pluginConfig ca_cert and VAULT_CAPATH (a directory) all work.
    let ca = own.ca_pem();
    let ca = ca.to_str().unwrap();
    let mut env = own.env();
    env.retain(|(k, _)| k != "VAULT_CACERT");
    env.push(("VAULT_CACERT".into(), ca.into()));
    assert!(describe("k", &[], &env).succeeded());
    assert!(describe("k", &[("ca_cert", ca)], &own.env()).succeeded());
    let mut env = own.env();
    env.retain(|(k, _)| k != "VAULT_CAPATH");
    let dir = own.tls_dir.as_ref().unwrap().path().to_str().unwrap();
    env.push(("VAULT_CAPATH".into(), dir.into()));
    let inv = describe("k", &[], &env);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
fn mtls_certificates(dir: &Path) {
    let script = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -subj /CN=mtls-test-ca -days 1 -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
printf 'extendedKeyUsage=clientAuth\n' > client.ext
for who in server client; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $who.key -out $who.csr -subj /CN=$who
  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $who.pem -days 1 -extfile $who.ext
done
"#;
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .expect("run openssl (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn client_certificates_for_a_server_that_requires_them() {
    let dir = tempfile::tempdir().unwrap();
    mtls_certificates(dir.path());
    let file = |f: &str| dir.path().join(f).to_str().unwrap().to_owned();
    let (port, cluster) = (free_port(), free_port());
    let hcl = dir.path().join("mtls.hcl");
    std::fs::write(
        &hcl,
        format!(
            r#"listener "tcp" {{
  address = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster}"
  tls_cert_file = "{}"
  tls_key_file = "{}"
  tls_client_ca_file = "{}"
  tls_require_and_verify_client_cert = true
}}
"#,
            file("server.pem"),
            file("server.key"),
            file("ca.pem")
        ),
    )
    .unwrap();
    // The dev listener (plain HTTP) sets the server up; the plugin uses the mTLS listener.
    let own = OwnServer::start(false, &[format!("-config={}", hcl.display())]);
    let api = own.api();
    api.call(
        "POST",
        "sys/mounts/transit",
        Some(json!({ "type": "transit" })),
    );
    api.create_key("k", "ecdsa-p384");
    let addr = format!("https://127.0.0.1:{port}");
    let mut env = own.env();
    env.retain(|(k, _)| k != "VAULT_ADDR" && k != "VAULT_CACERT");
    env.push(("VAULT_ADDR".into(), addr.clone()));
    env.push(("VAULT_CACERT".into(), file("ca.pem")));

    let inv = describe("k", &[], &env);
    assert_error(
        &inv,
        "ERROR",
        &[&addr, "client certificate", "VAULT_CLIENT_CERT"],
    );
    let inv = describe("k", &[("client_cert", &file("client.pem"))], &env);
    assert_error(&inv, "VALIDATION_ERROR", &["client_key"]);

    let mut with_cert = env.clone();
    with_cert.retain(|(k, _)| k != "VAULT_CLIENT_CERT" && k != "VAULT_CLIENT_KEY");
    with_cert.push(("VAULT_CLIENT_CERT".into(), file("client.pem")));
    with_cert.push(("VAULT_CLIENT_KEY".into(), file("client.key")));
    // The private key is a secret file: one that others may read is refused, before any call.
    use std::os::unix::fs::PermissionsExt;
    let mode = |m| {
        std::fs::set_permissions(file("client.key"), std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(0o644);
    let inv = describe("k", &[], &with_cert);
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &[
            "environment variable VAULT_CLIENT_KEY",
            "mode 0644",
            "chmod 600",
        ],
    );
    mode(0o600);
    let inv = describe("k", &[], &with_cert);
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let inv = describe(
        "k",
        &[
            ("client_cert", &file("client.pem")),
            ("client_key", &file("client.key")),
        ],
        &env,
    );
    assert!(inv.succeeded(), "{}", inv.stderr_text());
}

#[test]
fn a_certificate_for_another_key_version_after_rotation() {
    let api = Api::root();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("rotated");
    api.create_key(&name, "ecdsa-p256");
    let v1 = api.public_key(&name, Some(1));
    let (file, root) = chain_file(dir.path(), &v1, &name);
    let file = file.to_str().unwrap().to_owned();
    // The chain is also stored on version 1 of the key itself.
    let pem = std::fs::read_to_string(&file).unwrap();
    api.call(
        "POST",
        &format!("transit/keys/{name}/set-certificate"),
        Some(json!({ "version": 1, "certificate_chain": pem })),
    );
    sign_and_verify(&name, KeySpec::Ec256, &[], &root_env(), &root);
    api.call("POST", &format!("transit/keys/{name}/rotate"), None);

    // The file certifies version 1; version 2 now signs.
    let inv = sign(
        &name,
        KeySpec::Ec256,
        &[("certificate_chain", &file)],
        &root_env(),
    );
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["version 1", "version 2", &format!("{name}:1")],
    );
    // The chain on the key is on version 1 only.
    let inv = sign(&name, KeySpec::Ec256, &[], &root_env());
    assert_error(
        &inv,
        "VALIDATION_ERROR",
        &["version 2", "rotated", "issue-certificate"],
    );
    // Pinning the certified version signs with exactly that version.
    sign_and_verify(
        &format!("{name}:1"),
        KeySpec::Ec256,
        &[],
        &root_env(),
        &root,
    );
    sign_and_verify(
        &format!("{name}:1"),
        KeySpec::Ec256,
        &[("certificate_chain", &file)],
        &root_env(),
        &root,
    );
    // A version that does not exist names the available ones.
    let inv = describe(&format!("{name}:7"), &[], &root_env());
    assert_error(&inv, "VALIDATION_ERROR", &["no version 7", "1, 2"]);
}

#[test]
fn sigterm_during_a_stalled_sign_revokes_the_login_token() {
    let api = Api::root();
    let dir = tempfile::tempdir().unwrap();
    let name = unique("signal-key");
    api.create_key(&name, "ecdsa-p256");
    let (file, _) = chain_file(dir.path(), &api.public_key(&name, None), &name);
    let policy = unique("signal-policy");
    api.put_policy(&policy, &signing_policy("transit", &name));
    let (mount, role_id, secret_id) = approle(&api, &policy);
    // Everything reaches OpenBao except the sign, which stalls.
    let proxy = hsm_tests::fake::stalling_proxy(&api.addr, "/transit/sign/");
    let mut env = env_with(None);
    env.retain(|(k, _)| k != "VAULT_ADDR");
    env.push(("VAULT_ADDR".into(), proxy.addr.clone()));
    env.push(("NOTATION_HASHICORP_VAULT_SECRET_ID".into(), secret_id));
    let req = json!({
        "contractVersion": "1.0", "keyId": name, "keySpec": "EC-256", "hashAlgorithm": "SHA-256",
        "payload": "aGVsbG8=",
        "pluginConfig": {
            "auth_method": "approle", "auth_mount": mount, "role_id": role_id,
            "certificate_chain": file.to_str().unwrap(), "timeout_seconds": "60"
        }
    });
    let child = hsm_tests::spawn_plugin(&plugin(), "generate-signature", &env, &req.to_string());
    // Login, then the sign request arrives and stalls.
    let start = Instant::now();
    let signing = || {
        proxy
            .heads
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.contains("/transit/sign/"))
    };
    while !signing() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the sign never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let sent = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("interrupted by SIGTERM"),
        "{err}"
    );
    // The plugin asked OpenBao (through the proxy) to revoke its login token, and OpenBao
    // no longer knows that token.
    let heads = proxy.heads.lock().unwrap().clone();
    let revoke = heads
        .iter()
        .find(|h| h.starts_with("POST /v1/auth/token/revoke-self"))
        .unwrap_or_else(|| panic!("no revoke-self after SIGTERM: {heads:#?}"));
    let token = revoke
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-vault-token")
                .then(|| value.trim().to_owned())
        })
        .expect("the revoke carried the token");
    let (status, _) = api.request(
        "POST",
        "auth/token/lookup",
        Some(&json!({ "token": token })),
    );
    assert_ne!(
        status, 200,
        "the login token outlived the cancelled invocation"
    );
}

/// Vault over HTTPS (a TLS front on the test server): trusted through VAULT_CACERT, or through
/// the system trust store the plugin reads itself (SSL_CERT_FILE here), the signature goes
/// through the checker; with neither holding the server's CA, the answer says the certificate
/// is not trusted.
#[test]
fn https_with_vault_cacert_or_the_system_trust_store() {
    let api = Api::root();
    let proxy = hsm_tests::tls_proxy::TlsProxy::start(api.addr.trim_start_matches("http://"));
    let name = unique("https");
    api.create_key(&name, "ecdsa-p256");
    let dir = tempfile::tempdir().unwrap();
    let (file, root) = chain_file(dir.path(), &api.public_key(&name, None), &name);
    let ca = proxy.ca.display().to_string();
    let https = |extra: &[(&str, &str)]| {
        let mut env = hsm_tests::env_with(root_env(), &[("VAULT_ADDR", &proxy.url)]);
        env = hsm_tests::env_with(env, extra);
        env
    };
    let chain = [("certificate_chain", file.to_str().unwrap())];
    for trusted in [
        https(&[("VAULT_CACERT", &ca), ("SSL_CERT_DIR", "")]),
        https(&[("SSL_CERT_FILE", &ca), ("SSL_CERT_DIR", "")]),
    ] {
        sign_and_verify(&name, KeySpec::Ec256, &chain, &trusted, &root);
    }
    let untrusted = https(&[("SSL_CERT_FILE", "/dev/null"), ("SSL_CERT_DIR", "")]);
    let inv = describe(&name, &[], &untrusted);
    assert_eq!(inv.exit_code, Some(1), "{}", inv.stderr_text());
    let err = inv.error().unwrap();
    assert!(
        err.error_message.contains("invalid peer certificate")
            && err.error_message.contains("VAULT_CACERT"),
        "{}",
        err.error_message
    );
}
