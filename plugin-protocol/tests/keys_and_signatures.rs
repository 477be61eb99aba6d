//! Key-spec mapping, signature normalisation and diagnosis, retry and deadline behaviour.

use std::time::Duration;

use plugin_protocol::config::{after_failure, retry, MAX_ATTEMPTS};
use plugin_protocol::signature::{normalise, verify_digest, SignatureProblem};
use plugin_protocol::testca::generate_key;
use plugin_protocol::Deadline;
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

/// Signs `digest` with openssl (an independent signer) and the key `key`, with `opts` as
/// `-pkeyopt` settings; returns the raw signature bytes.
fn openssl_sign(key: &plugin_protocol::softkey::SoftKey, digest: &[u8], opts: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("k.pem"), key.to_pkcs8_pem().as_bytes()).unwrap();
    std::fs::write(d.join("digest"), digest).unwrap();
    let mut cmd = std::process::Command::new("openssl");
    cmd.current_dir(d).args([
        "pkeyutl", "-sign", "-inkey", "k.pem", "-in", "digest", "-out", "sig",
    ]);
    for o in opts {
        cmd.args(["-pkeyopt", o]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "openssl pkeyutl {opts:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(d.join("sig")).unwrap()
}

#[test]
fn openssl_rsa_signatures_are_accepted_or_diagnosed_by_their_padding_and_salt() {
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa3072] {
        let key = generate_key(spec);
        let public = key.public_key().unwrap();
        let hash = spec.hash_algorithm();
        let expected = hash.output_len();
        let digest = hash.digest(b"payload");
        let md = format!("digest:{}", hash.oci_name());
        let pss = |salt: &str| {
            let salt = format!("rsa_pss_saltlen:{salt}");
            openssl_sign(&key, &digest, &["rsa_padding_mode:pss", &salt, &md])
        };
        // Salt = hash length is the one notation accepts.
        verify_digest(&public, hash, &digest, &pss("digest")).unwrap();
        // Every salt a backend is known to pick instead is named, the maximum included.
        let max = spec.bits() / 8 - expected - 2;
        for salt in [0, 20, 32, 48, 64, max] {
            if salt == expected {
                continue;
            }
            assert_eq!(
                verify_digest(&public, hash, &digest, &pss(&salt.to_string())),
                Err(SignatureProblem::PssSaltLength { salt, expected }),
                "{spec} salt {salt}"
            );
        }
        assert_eq!(
            verify_digest(&public, hash, &digest, &pss("max")),
            Err(SignatureProblem::PssSaltLength {
                salt: max,
                expected
            })
        );
        // A salt no backend uses is still a signature that does not verify, not a pass.
        assert_eq!(
            verify_digest(&public, hash, &digest, &pss("17")),
            Err(SignatureProblem::DoesNotVerify)
        );
        let pkcs1 = openssl_sign(&key, &digest, &["rsa_padding_mode:pkcs1", &md]);
        assert_eq!(
            verify_digest(&public, hash, &digest, &pkcs1),
            Err(SignatureProblem::RsaPkcs1v15)
        );
        // The right signature over another payload.
        let other = hash.digest(b"another payload");
        assert_eq!(
            verify_digest(&public, hash, &other, &pss("digest")),
            Err(SignatureProblem::DoesNotVerify)
        );
    }
}

#[test]
fn openssl_ecdsa_signatures_are_der_and_normalised_to_r_s() {
    for spec in [KeySpec::Ec256, KeySpec::Ec384, KeySpec::Ec521] {
        let key = generate_key(spec);
        let public = key.public_key().unwrap();
        let hash = spec.hash_algorithm();
        let width = 2 * spec.ecdsa_scalar_len().unwrap();
        let digest = hash.digest(b"payload");
        // openssl, like AWS KMS and PIV, returns DER: refused as such, then normalised.
        let der = openssl_sign(&key, &digest, &[]);
        assert_eq!(
            verify_digest(&public, hash, &digest, &der),
            Err(SignatureProblem::EcdsaDer {
                len: der.len(),
                expected: width
            }),
            "{spec}"
        );
        let fixed = normalise(spec, BackendSignature::EcdsaDer(der.clone())).unwrap();
        assert_eq!(fixed.len(), width);
        verify_digest(&public, hash, &digest, &fixed).unwrap();
        // Normalising is a re-encoding, not a re-signing: r‖s converts back to the same DER.
        assert_eq!(
            plugin_protocol::signature::ecdsa_fixed_to_der(spec, &fixed),
            Some(der)
        );
        // The same r‖s over another digest, and a signature of another key, do not verify.
        assert_eq!(
            verify_digest(&public, hash, &hash.digest(b"other"), &fixed),
            Err(SignatureProblem::DoesNotVerify)
        );
        let stranger = openssl_sign(&generate_key(spec), &digest, &[]);
        let stranger = normalise(spec, BackendSignature::EcdsaDer(stranger)).unwrap();
        assert_eq!(
            verify_digest(&public, hash, &digest, &stranger),
            Err(SignatureProblem::DoesNotVerify)
        );
        // A blob declared DER that is no DER ECDSA signature is an unusable backend answer,
        // named as such.
        assert_eq!(
            normalise(spec, BackendSignature::EcdsaDer(vec![0x30, 0x00])),
            Err(SignatureProblem::EcdsaNotDer {
                len: 2,
                expected: width
            })
        );
    }
}

#[test]
fn the_key_spec_table_matches_the_contract_jws_and_cose() {
    use plugin_protocol::SigningAlgorithm;
    // keySpec, bits, hash, digest length, signingAlgorithm, JWS alg, COSE alg (RFC 9053), r‖s width.
    let rows = [
        (
            "RSA-2048",
            2048,
            "SHA-256",
            32,
            "RSASSA-PSS-SHA-256",
            "PS256",
            -37,
            None,
        ),
        (
            "RSA-3072",
            3072,
            "SHA-384",
            48,
            "RSASSA-PSS-SHA-384",
            "PS384",
            -38,
            None,
        ),
        (
            "RSA-4096",
            4096,
            "SHA-512",
            64,
            "RSASSA-PSS-SHA-512",
            "PS512",
            -39,
            None,
        ),
        (
            "EC-256",
            256,
            "SHA-256",
            32,
            "ECDSA-SHA-256",
            "ES256",
            -7,
            Some(32),
        ),
        (
            "EC-384",
            384,
            "SHA-384",
            48,
            "ECDSA-SHA-384",
            "ES384",
            -35,
            Some(48),
        ),
        (
            "EC-521",
            521,
            "SHA-512",
            64,
            "ECDSA-SHA-512",
            "ES512",
            -36,
            Some(66),
        ),
    ];
    assert_eq!(KeySpec::ALL.len(), rows.len());
    for (spec, (name, bits, hash, len, alg, jws, cose, scalar)) in
        KeySpec::ALL.into_iter().zip(rows)
    {
        assert_eq!(spec.to_string(), name);
        assert_eq!(name.parse::<KeySpec>(), Ok(spec));
        assert_eq!(spec.bits(), bits);
        assert_eq!(spec.is_rsa(), scalar.is_none(), "{spec}");
        assert_eq!(spec.ecdsa_scalar_len(), scalar, "{spec}");
        let h = spec.hash_algorithm();
        assert_eq!(h.to_string(), hash);
        assert_eq!(hash.parse::<HashAlgorithm>(), Ok(h));
        assert_eq!(h.output_len(), len);
        assert_eq!(h.digest(b"abc").len(), len);
        assert_eq!(h.oci_name(), hash.replace("SHA-", "sha"));
        let a = spec.signing_algorithm();
        assert_eq!(a.to_string(), alg);
        assert_eq!(alg.parse::<SigningAlgorithm>(), Ok(a));
        assert_eq!((a.jws_name(), a.cose_id()), (jws, cose), "{spec}");
    }
    // Known digests, so a hash swapped for another of the same length is caught.
    assert_eq!(
        HashAlgorithm::Sha256.digest(b"abc")[..4],
        [0xba, 0x78, 0x16, 0xbf]
    );
    assert_eq!(
        HashAlgorithm::Sha384.digest(b"abc")[..4],
        [0xcb, 0x00, 0x75, 0x3f]
    );
    assert_eq!(
        HashAlgorithm::Sha512.digest(b"abc")[..4],
        [0xdd, 0xaf, 0x35, 0xa1]
    );
    let err = "RSASSA-PKCS1-v1_5-SHA-256"
        .parse::<SigningAlgorithm>()
        .unwrap_err();
    assert!(
        err.contains("unsupported signing algorithm") && err.contains("ECDSA-SHA-512"),
        "{err}"
    );
    let err = "SHA-1".parse::<HashAlgorithm>().unwrap_err();
    assert!(
        err.contains("'SHA-1'") && err.contains("SHA-256, SHA-384, SHA-512"),
        "{err}"
    );
}

#[test]
fn every_other_openssl_key_is_refused_by_its_name() {
    let ec =
        |curve: &'static str| -> Vec<&'static str> { vec!["-algorithm", "EC", "-pkeyopt", curve] };
    let cases: [(Vec<&str>, &str); 9] = [
        (ec("ec_paramgen_curve:P-192"), "an EC P-192 key"),
        (ec("ec_paramgen_curve:P-224"), "an EC P-224 key"),
        (
            ec("ec_paramgen_curve:brainpoolP256r1"),
            "an EC brainpoolP256r1 key",
        ),
        (
            ec("ec_paramgen_curve:brainpoolP384r1"),
            "an EC brainpoolP384r1 key",
        ),
        (
            ec("ec_paramgen_curve:brainpoolP512r1"),
            "an EC brainpoolP512r1 key",
        ),
        (vec!["-algorithm", "SM2"], "an EC SM2 key"),
        (
            ec("ec_paramgen_curve:prime239v1"),
            "an EC curve 1.2.840.10045.3.1.4 key",
        ),
        (vec!["-algorithm", "ED448"], "an Ed448 key"),
        (
            vec!["-algorithm", "X448"],
            "a key-agreement (X25519/X448) key",
        ),
    ];
    for (args, needle) in cases {
        let err = PublicKey::from_spki_der(&openssl_spki(&args)).unwrap_err();
        assert_eq!(err.code, ErrorCode::Validation, "{needle}");
        assert!(
            err.message.starts_with(&format!(
                "the key is {needle}, which notation cannot sign with"
            )),
            "{}",
            err.message
        );
    }
    // RSASSA-PSS-restricted RSA keys are RSA keys like any other; sizes map to their spec.
    let pss = PublicKey::from_spki_der(&openssl_spki(&[
        "-algorithm",
        "RSA-PSS",
        "-pkeyopt",
        "rsa_keygen_bits:3072",
    ]))
    .unwrap();
    assert_eq!(pss.key_spec(), KeySpec::Rsa3072);
    let err = PublicKey::from_spki_der(b"\x30\x03\x02\x01\x01").unwrap_err();
    assert_eq!(err.code, ErrorCode::Generic);
    assert!(
        err.message.contains("not a valid SubjectPublicKeyInfo"),
        "{}",
        err.message
    );
}

#[test]
fn keys_from_components_are_the_same_keys_and_described_by_their_spki() {
    use plugin_protocol::public_key::named_curve_der;
    use rsa::traits::PublicKeyParts;
    for spec in KeySpec::ALL {
        let public = generate_key(spec).public_key().unwrap();
        let rebuilt = match &public {
            PublicKey::Rsa(k) => {
                assert_eq!(named_curve_der(spec), None);
                PublicKey::from_rsa_components(&k.n().to_bytes_be(), &k.e().to_bytes_be())
            }
            PublicKey::P256(k) => PublicKey::from_ec_point(
                &named_curve_der(spec).unwrap(),
                k.to_sec1_bytes().as_ref(),
            ),
            PublicKey::P384(k) => PublicKey::from_ec_point(
                &named_curve_der(spec).unwrap(),
                k.to_sec1_bytes().as_ref(),
            ),
            PublicKey::P521(k) => PublicKey::from_ec_point(
                &named_curve_der(spec).unwrap(),
                k.to_sec1_bytes().as_ref(),
            ),
        }
        .unwrap();
        assert_eq!(rebuilt, public, "{spec}");
        // The fingerprint is the SHA-256 of the SPKI, as `openssl pkey -pubout | sha256sum` shows.
        let fp = HashAlgorithm::Sha256.digest(&public.to_spki_der());
        let hex: String = fp[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            public.describe(),
            format!("{spec} key (SPKI sha256 {hex}…)")
        );
    }
    // A key of another curve, given as components, is refused by name too.
    let k1 = openssl_spki(&[
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:secp256k1",
    ]);
    let spki = <spki::SubjectPublicKeyInfoOwned as der::Decode>::from_der(&k1).unwrap();
    let curve = spki.algorithm.parameters.unwrap();
    let err = PublicKey::from_ec_point(
        &der::Encode::to_der(&curve).unwrap(),
        spki.subject_public_key.raw_bytes(),
    )
    .unwrap_err();
    assert!(
        err.message.contains("an EC secp256k1 key"),
        "{}",
        err.message
    );
    let small = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
    let err = PublicKey::from_rsa_components(&small.n().to_bytes_be(), &small.e().to_bytes_be())
        .unwrap_err();
    assert!(err.message.contains("an RSA-1024 key"), "{}", err.message);
}

#[test]
fn only_what_can_be_der_is_called_der() {
    for spec in [KeySpec::Ec256, KeySpec::Ec384, KeySpec::Ec521] {
        let public = generate_key(spec).public_key().unwrap();
        let hash = spec.hash_algorithm();
        let digest = hash.digest(b"x");
        let width = 2 * spec.ecdsa_scalar_len().unwrap();
        // A DER SEQUENCE of two integers is at most a few bytes longer than r‖s ...
        let mut longest_der = vec![0u8; width + 9];
        longest_der[0] = 0x30;
        assert_eq!(
            verify_digest(&public, hash, &digest, &longest_der),
            Err(SignatureProblem::EcdsaDer {
                len: width + 9,
                expected: width
            })
        );
        // ... so anything longer, or not a SEQUENCE, is just the wrong length.
        let mut too_long = longest_der.clone();
        too_long.push(0);
        let mut not_a_sequence = longest_der.clone();
        not_a_sequence[0] = 0x31;
        for (sig, what) in [(too_long, "too long"), (not_a_sequence, "no SEQUENCE")] {
            assert_eq!(
                verify_digest(&public, hash, &digest, &sig),
                Err(SignatureProblem::EcdsaLength {
                    len: sig.len(),
                    expected: width
                }),
                "{spec} {what}"
            );
        }
        // A backend's r‖s of the wrong width is refused with both widths.
        assert_eq!(
            normalise(spec, BackendSignature::EcdsaFixed(vec![1; width - 1])),
            Err(SignatureProblem::EcdsaLength {
                len: width - 1,
                expected: width
            })
        );
    }
}

#[test]
fn backend_signatures_show_their_kind_and_length_never_their_bytes() {
    // What the debug log records of a backend's answer.
    let cases = [
        (BackendSignature::RsaPss(vec![7; 256]), "RsaPss(256 bytes)"),
        (
            BackendSignature::EcdsaDer(vec![7; 71]),
            "EcdsaDer(71 bytes)",
        ),
        (
            BackendSignature::EcdsaFixed(vec![7; 64]),
            "EcdsaFixed(64 bytes)",
        ),
    ];
    for (sig, shown) in cases {
        assert_eq!(format!("{sig:?}"), shown);
    }
}

#[test]
fn an_invalid_point_on_a_notary_curve_names_the_curve() {
    use plugin_protocol::public_key::named_curve_der;
    for (spec, curve) in [
        (KeySpec::Ec256, "P-256"),
        (KeySpec::Ec384, "P-384"),
        (KeySpec::Ec521, "P-521"),
    ] {
        // An uncompressed point of the right length that is not on the curve.
        let width = spec.ecdsa_scalar_len().unwrap();
        let mut point = vec![1u8; 1 + 2 * width];
        point[0] = 4;
        let err = PublicKey::from_ec_point(&named_curve_der(spec).unwrap(), &point).unwrap_err();
        assert!(
            err.message
                .starts_with(&format!("invalid {curve} public key point")),
            "{spec}: {}",
            err.message
        );
    }
}

/// What a digest-signing service returns is RSASSA-PSS for an RSA spec and ECDSA in the
/// service's encoding for an EC spec (DER: AWS KMS, Cloud KMS; r‖s: Key Vault, Transit).
#[test]
fn a_service_signature_is_pss_or_ecdsa_by_the_spec() {
    use plugin_protocol::BackendSignature as S;
    let sig = || vec![1, 2, 3];
    for rsa in [KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096] {
        assert!(matches!(S::pss_or_der_ecdsa(rsa, sig()), S::RsaPss(b) if b == sig()));
        assert!(matches!(S::pss_or_fixed_ecdsa(rsa, sig()), S::RsaPss(b) if b == sig()));
    }
    for ec in [KeySpec::Ec256, KeySpec::Ec384, KeySpec::Ec521] {
        assert!(matches!(S::pss_or_der_ecdsa(ec, sig()), S::EcdsaDer(b) if b == sig()));
        assert!(matches!(S::pss_or_fixed_ecdsa(ec, sig()), S::EcdsaFixed(b) if b == sig()));
    }
}
