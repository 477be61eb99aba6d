//! The offline-root workflow end to end: a root CA key on a SoftHSM token (standing for the
//! offline HSM or YubiKey) makes an intermediate for a second token key; the intermediate
//! certifies a LocalStack KMS key and an OpenBao Transit key from the public keys those plugins
//! report; both plugins then sign with their chains, pass the conformance checker, and the
//! envelopes verify against the root. openssl checks every certificate and every backend's
//! CSR independently.

use std::path::Path;
use std::process::Command;

use hsm_tests::softhsm::SoftToken;
use hsm_tests::{check_and_verify, env_refs, localstack, openbao, unique};
use plugin_protocol::KeySpec;

#[track_caller]
fn run(program: &Path, args: &[&str], env: &[(String, String)]) -> String {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

#[test]
fn an_offline_root_on_a_token_certifies_kms_and_vault_keys() {
    localstack::start();
    let openbao = openbao::server();
    let token = SoftToken::new("offline-root");
    let dir = token.dir.path().to_path_buf();
    let p = |name: &str| dir.join(name).display().to_string();

    // The root and the signing CA live on the token.
    let root = token.generate("root", KeySpec::Ec384);
    let signing_ca = token.generate("signing-ca", KeySpec::Ec384);
    token.run_ok(&[
        "ca",
        "init",
        "--key-id",
        &root,
        "--subject",
        "CN=Example Offline Root,O=Example,ST=Washington,C=US",
        "--path-len",
        "1",
        "--days",
        "30",
        "--out",
        &p("root.pem"),
    ]);
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
        "CN=Example Signing CA,O=Example,ST=Washington,C=US",
        "--intermediate",
        "--path-len",
        "0",
        "--days",
        "20",
        "--out",
        &p("signing-ca.pem"),
    ]);
    openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        &p("root.pem"),
        &p("signing-ca.pem"),
    ]);

    // The cloud keys report their public keys and make CSRs, signed in their backends.
    let aws_plugin = hsm_tests::plugin_binary("aws-kms");
    let aws = localstack::env();
    let kms_key = run(
        &aws_plugin,
        &["create-key", "--spec", "ECC_NIST_P256"],
        &aws,
    )
    .trim()
    .to_owned();
    std::fs::write(
        dir.join("kms.pem"),
        run(&aws_plugin, &["public-key", "--key-id", &kms_key], &aws),
    )
    .unwrap();
    run(
        &aws_plugin,
        &[
            "certificate",
            "csr",
            "--key-id",
            &kms_key,
            "--subject",
            "CN=ci kms,O=Example,ST=Washington,C=US",
            "--out",
            &p("kms.csr"),
        ],
        &aws,
    );

    let vault_plugin = hsm_tests::plugin_binary("hashicorp-vault");
    let (vault, bao) = (openbao.root_env(), &openbao.bao_bin);
    let mount = unique("offline-root-transit");
    run(
        bao,
        &["secrets", "enable", &format!("-path={mount}"), "transit"],
        &vault,
    );
    let transit_key = unique("ci");
    run(
        bao,
        &[
            "write",
            "-f",
            &format!("{mount}/keys/{transit_key}"),
            "type=rsa-3072",
        ],
        &vault,
    );
    let mount_config = format!("transit_mount={mount}");
    std::fs::write(
        dir.join("vault.pem"),
        run(
            &vault_plugin,
            &[
                "public-key",
                "--key-id",
                &transit_key,
                "--plugin-config",
                &mount_config,
            ],
            &vault,
        ),
    )
    .unwrap();
    run(
        &vault_plugin,
        &[
            "certificate",
            "csr",
            "--key-id",
            &transit_key,
            "--plugin-config",
            &mount_config,
            "--subject",
            "CN=ci vault,O=Example,ST=Washington,C=US",
            "--out",
            &p("vault.csr"),
        ],
        &vault,
    );
    for csr in ["kms.csr", "vault.csr"] {
        let text = openssl(&["req", "-verify", "-noout", "-in", &p(csr)]);
        assert!(
            text.contains("verify OK")
                || text.contains("Certificate request self-signature verify OK"),
            "{text}"
        );
    }

    // The signing CA on the token certifies both: one from a public key, one from its CSR.
    token.run_ok(&[
        "ca",
        "issue",
        "--ca-key-id",
        &signing_ca,
        "--ca-cert",
        &p("signing-ca.pem"),
        "--public-key",
        &p("kms.pem"),
        "--subject",
        "CN=ci kms,O=Example,ST=Washington,C=US",
        "--days",
        "7",
        "--out",
        &p("kms-chain.pem"),
    ]);
    token.run_ok(&[
        "ca",
        "issue",
        "--ca-key-id",
        &signing_ca,
        "--ca-cert",
        &p("signing-ca.pem"),
        "--csr",
        &p("vault.csr"),
        "--days",
        "7",
        "--out",
        &p("vault-chain.pem"),
    ]);
    for chain in ["kms-chain.pem", "vault-chain.pem"] {
        // leaf first, then the signing CA, then the root
        let text = std::fs::read_to_string(dir.join(chain)).unwrap();
        assert_eq!(
            text.matches("BEGIN CERTIFICATE").count(),
            3,
            "{chain}: {text}"
        );
        let leaf_end = text.find("-----END CERTIFICATE-----").unwrap() + 25;
        std::fs::write(dir.join("leaf.pem"), &text[..leaf_end]).unwrap();
        openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            &p("root.pem"),
            "-untrusted",
            &p("signing-ca.pem"),
            &p("leaf.pem"),
        ]);
        let ext = openssl(&[
            "x509",
            "-in",
            &p("leaf.pem"),
            "-noout",
            "-ext",
            "keyUsage,extendedKeyUsage,basicConstraints",
        ]);
        assert!(
            ext.contains("Code Signing") && ext.contains("Digital Signature"),
            "{ext}"
        );
        assert!(
            !ext.contains("Key Encipherment") && !ext.contains("CA:TRUE"),
            "{ext}"
        );
    }

    // Both cloud plugins sign with those chains, pass every check, and verify against the root.
    let root_pem = std::fs::read_to_string(dir.join("root.pem")).unwrap();
    let kms_config = [("certificate_chain", p("kms-chain.pem"))];
    let vault_config = [
        ("certificate_chain", p("vault-chain.pem")),
        ("transit_mount", mount.clone()),
    ];
    let runs = [
        (&aws_plugin, &kms_key, &kms_config[..], &aws),
        (&vault_plugin, &transit_key, &vault_config[..], &vault),
    ];
    for (plugin, key_id, config, env) in runs {
        let config: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let out = tempfile::tempdir().unwrap();
        check_and_verify(
            plugin,
            key_id,
            &config,
            &env_refs(env),
            &root_pem,
            out.path(),
        );
    }

    // Last step: what a verifier installs, from the chain the KMS key signs with. Only the
    // offline root goes to the trust store; the policy pins the CI leaf's subject.
    let trust = dir.join("trust");
    let printed = run(
        &aws_plugin,
        &[
            "trust",
            "export",
            "--key-id",
            &kms_key,
            "--plugin-config",
            &format!("certificate_chain={}", p("kms-chain.pem")),
            "--out",
            &trust.display().to_string(),
            "--scope",
            "registry.example.com/release/app",
        ],
        &aws,
    );
    let exported = trust.join("example-offline-root/example-offline-root.pem");
    assert_eq!(std::fs::read_to_string(&exported).unwrap(), root_pem);
    let policy: serde_json::Value =
        serde_json::from_slice(&std::fs::read(trust.join("trustpolicy.json")).unwrap()).unwrap();
    let statement = &policy["trustPolicies"][0];
    assert_eq!(
        statement["trustedIdentities"],
        serde_json::json!(["x509.subject: CN=ci kms,O=Example,ST=Washington,C=US"])
    );
    assert_eq!(
        statement["registryScopes"],
        serde_json::json!(["registry.example.com/release/app"])
    );
    assert_eq!(
        statement["trustStores"],
        serde_json::json!(["ca:example-offline-root"])
    );
    assert!(
        printed.contains(&format!(
            "notation cert add --type ca --store example-offline-root {}",
            exported.display()
        )),
        "{printed}"
    );
}
