//! The shared EMSA-PSS encoder, checked by an independent implementation: the encoded message
//! goes through openssl's raw RSA private-key operation (as a PIV card or HSM would apply it),
//! and openssl's own PSS verifier and the shared self-check must both accept the result.

use std::process::Command;

use plugin_protocol::signature::verify_digest;
use plugin_protocol::testca::generate_key;
use plugin_protocol::{pss, KeySpec};

fn openssl(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn raw_rsa_over_the_encoded_message_is_a_pss_signature_openssl_accepts() {
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let key = generate_key(spec);
        std::fs::write(d.join("key.pem"), key.to_pkcs8_pem().as_bytes()).unwrap();
        let public = key.public_key().unwrap();
        let hash = spec.hash_algorithm();
        let digest = hash.digest(b"the JWS signing input");
        let em = pss::encode(hash, &digest, spec.bits()).unwrap();
        assert_eq!(em.len(), spec.bits() / 8);
        std::fs::write(d.join("em.bin"), &em).unwrap();
        std::fs::write(d.join("digest.bin"), &digest).unwrap();
        let raw = openssl(
            &[
                // The raw private-key operation, m^d mod n, is openssl's unpadded decrypt.
                "pkeyutl",
                "-decrypt",
                "-inkey",
                "key.pem",
                "-pkeyopt",
                "rsa_padding_mode:none",
                "-in",
                "em.bin",
                "-out",
                "sig.bin",
            ],
            d,
        );
        assert!(
            raw.status.success(),
            "{}",
            String::from_utf8_lossy(&raw.stderr)
        );
        let name = hash.as_str().replace('-', "").to_lowercase();
        let salt = format!("rsa_pss_saltlen:{}", hash.output_len());
        let digest_opt = format!("digest:{name}");
        let check = openssl(
            &[
                "pkeyutl",
                "-verify",
                "-inkey",
                "key.pem",
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                &salt,
                "-pkeyopt",
                &digest_opt,
                "-in",
                "digest.bin",
                "-sigfile",
                "sig.bin",
            ],
            d,
        );
        assert!(
            check.status.success(),
            "{spec}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let sig = std::fs::read(d.join("sig.bin")).unwrap();
        verify_digest(&public, hash, &digest, &sig).unwrap();
        // Another digest does not verify: the encoding binds the message.
        let other = hash.digest(b"something else");
        assert!(verify_digest(&public, hash, &other, &sig).is_err());
    }
}
