//! Key-spec mapping, signature normalisation and diagnosis, retry and deadline behaviour.

use std::time::Duration;

use plugin_protocol::config::{after_failure, retry, Deadline, MAX_ATTEMPTS};
use plugin_protocol::signature::{normalise, verify_digest, SignatureProblem};
use plugin_protocol::testca::generate_key;
use plugin_protocol::{
    BackendSignature, ErrorCode, HashAlgorithm, KeySpec, PluginError, PublicKey, Retry,
};

fn openssl_spki(args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    let st = std::process::Command::new("openssl")
        .args(["genpkey"])
        .args(args)
        .arg("-out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let out = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn unusable_keys_are_refused_by_name() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
            "an RSA-1024 key",
        ),
        (
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:secp256k1",
            ],
            "an EC secp256k1 key",
        ),
        (&["-algorithm", "ED25519"], "an Ed25519 key"),
        (&["-algorithm", "X25519"], "key-agreement"),
    ];
    for (args, needle) in cases {
        let err = PublicKey::from_spki_der(&openssl_spki(args)).unwrap_err();
        assert_eq!(err.code, ErrorCode::Validation);
        assert!(
            err.message.contains(needle),
            "{} should name {needle}",
            err.message
        );
        assert!(
            err.message.contains("RSA-2048"),
            "says what to use instead: {}",
            err.message
        );
    }
    let p384 = PublicKey::from_spki_der(&openssl_spki(&[
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
    ]))
    .unwrap();
    assert_eq!(p384.key_spec(), KeySpec::Ec384);
}

#[test]
fn key_specs_from_every_source_agree() {
    for spec in KeySpec::ALL {
        let public = generate_key(spec).public_key().unwrap();
        assert_eq!(public.key_spec(), spec);
        assert_eq!(
            PublicKey::from_spki_der(&public.to_spki_der()).unwrap(),
            public
        );
        assert_eq!(
            PublicKey::from_spki_pem(&public.to_spki_pem()).unwrap(),
            public
        );
    }
}

#[test]
fn der_ecdsa_is_normalised_and_raw_of_wrong_width_is_refused() {
    for spec in [KeySpec::Ec256, KeySpec::Ec384, KeySpec::Ec521] {
        let key = generate_key(spec);
        let digest = spec.hash_algorithm().digest(b"payload");
        let der = key.sign(&digest, spec, 0, true).unwrap();
        let BackendSignature::EcdsaDer(der_bytes) = &der else {
            panic!()
        };
        // Notation refuses DER, and says so.
        let problem = verify_digest(
            &key.public_key().unwrap(),
            spec.hash_algorithm(),
            &digest,
            der_bytes,
        )
        .unwrap_err();
        assert!(
            matches!(problem, SignatureProblem::EcdsaDer { .. }),
            "{spec}: {problem}"
        );
        let fixed = normalise(spec, der).unwrap();
        assert_eq!(fixed.len(), 2 * spec.ecdsa_scalar_len().unwrap());
        verify_digest(
            &key.public_key().unwrap(),
            spec.hash_algorithm(),
            &digest,
            &fixed,
        )
        .unwrap();
        let short = normalise(spec, BackendSignature::EcdsaFixed(fixed[1..].to_vec())).unwrap_err();
        assert!(short.to_string().contains("fixed-width"), "{short}");
    }
    let err = normalise(KeySpec::Rsa2048, BackendSignature::EcdsaFixed(vec![0; 64])).unwrap_err();
    assert!(
        err.to_string()
            .contains("ECDSA signature cannot belong to a RSA-2048 key"),
        "{err}"
    );
}

#[test]
fn rsa_signature_problems_are_diagnosed() {
    let spec = KeySpec::Rsa3072;
    let key = generate_key(spec);
    let public = key.public_key().unwrap();
    let hash = HashAlgorithm::Sha384;
    let digest = hash.digest(b"payload");
    let sign = |salt| match key.sign(&digest, spec, salt, false).unwrap() {
        BackendSignature::RsaPss(b) => b,
        other => panic!("{other:?}"),
    };
    verify_digest(&public, hash, &digest, &sign(48)).unwrap();
    assert_eq!(
        verify_digest(&public, hash, &digest, &sign(32)).unwrap_err(),
        SignatureProblem::PssSaltLength {
            salt: 32,
            expected: 48
        }
    );
    let max = 384 - 48 - 2;
    assert_eq!(
        verify_digest(&public, hash, &digest, &sign(max)).unwrap_err(),
        SignatureProblem::PssSaltLength {
            salt: max,
            expected: 48
        }
    );
    let plugin_protocol::softkey::SoftKey::Rsa(rsa_key) = &key else {
        panic!()
    };
    let pkcs1 = rsa_key
        .sign(rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), &digest)
        .unwrap();
    assert_eq!(
        verify_digest(&public, hash, &digest, &pkcs1).unwrap_err(),
        SignatureProblem::RsaPkcs1v15
    );
    let mut tampered = sign(48);
    tampered[10] ^= 1;
    assert_eq!(
        verify_digest(&public, hash, &digest, &tampered).unwrap_err(),
        SignatureProblem::DoesNotVerify
    );
    assert!(matches!(
        verify_digest(&public, hash, &digest, &tampered[1..]).unwrap_err(),
        SignatureProblem::RsaLength {
            len: 383,
            expected: 384
        }
    ));
}

#[test]
fn retry_stops_at_the_attempt_limit_and_reports_throttled() {
    let deadline = Deadline::after(Duration::from_secs(30));
    let mut calls = 0;
    let err = retry(&deadline, "signing", || -> Result<(), PluginError> {
        calls += 1;
        Err(PluginError::generic("slow down")
            .with_retry(Retry::Throttled(Some(Duration::from_millis(1)))))
    })
    .unwrap_err();
    assert_eq!(calls, MAX_ATTEMPTS);
    assert_eq!(err.code, ErrorCode::Throttled);
    assert!(
        err.message.contains("slow down") && err.message.contains("5 attempts"),
        "{}",
        err.message
    );
}

#[test]
fn retry_never_repeats_a_non_retryable_error_and_recovers_from_transient_ones() {
    let deadline = Deadline::after(Duration::from_secs(30));
    let mut calls = 0;
    let err = retry(&deadline, "login", || -> Result<(), PluginError> {
        calls += 1;
        Err(PluginError::access_denied("wrong PIN"))
    })
    .unwrap_err();
    assert_eq!((calls, err.code), (1, ErrorCode::AccessDenied));

    let mut calls = 0;
    let v = retry(&deadline, "signing", || {
        calls += 1;
        if calls < 3 {
            Err(PluginError::generic("503").with_retry(Retry::Transient))
        } else {
            Ok(7)
        }
    })
    .unwrap();
    assert_eq!((v, calls), (7, 3));
}

#[test]
fn a_retry_after_longer_than_the_deadline_is_throttled_and_says_so() {
    let deadline = Deadline::after(Duration::from_millis(50));
    let err = after_failure(
        &deadline,
        "signing with key k",
        1,
        PluginError::generic("throttled")
            .with_retry(Retry::Throttled(Some(Duration::from_secs(10))))
            .with_metadata("requestId", "r-9"),
    )
    .unwrap_err();
    // The deadline has not passed: the backend's own throttling is the answer (issue #18).
    assert_eq!(err.code, ErrorCode::Throttled);
    assert!(
        err.message.contains("signing with key k")
            && err.message.contains("throttled")
            && err.message.contains("Retry-After"),
        "{}",
        err.message
    );
    assert_eq!(err.metadata["requestId"], "r-9");
}
