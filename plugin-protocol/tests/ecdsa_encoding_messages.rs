//! What the pipeline says about an ECDSA signature in the wrong encoding: DER when it is DER,
//! never a self-contradicting "64 bytes; requires exactly 64 bytes".

use plugin_protocol::signature::{ecdsa_fixed_to_der, normalise, SignatureProblem};
use plugin_protocol::{BackendSignature, KeySpec};

fn fixed(spec: KeySpec) -> Vec<u8> {
    let n = spec.ecdsa_scalar_len().unwrap();
    // Small r = s (below every curve's order), left-zero-padded.
    let mut half = vec![0u8; n - 4];
    half.extend_from_slice(&[1, 2, 3, 4]);
    [half.clone(), half].concat()
}

#[test]
fn der_declared_as_fixed_is_named_der() {
    for spec in [KeySpec::Ec256, KeySpec::Ec384, KeySpec::Ec521] {
        let der = ecdsa_fixed_to_der(spec, &fixed(spec)).unwrap();
        let p = normalise(spec, BackendSignature::EcdsaFixed(der)).unwrap_err();
        assert!(
            matches!(p, SignatureProblem::EcdsaDer { .. }),
            "{spec}: {p:?}"
        );
        assert!(p.to_string().contains("ASN.1 DER"), "{p}");
    }
}

#[test]
fn fixed_declared_as_der_never_contradicts_itself() {
    for spec in [KeySpec::Ec256, KeySpec::Ec384, KeySpec::Ec521] {
        let raw = fixed(spec);
        let n = raw.len();
        let p = normalise(spec, BackendSignature::EcdsaDer(raw)).unwrap_err();
        let text = p.to_string();
        assert!(text.contains("declared ASN.1 DER but is not DER"), "{text}");
        assert!(
            !text.contains(&format!(
                "is {n} bytes; notation requires fixed-width r‖s of exactly {n}"
            )),
            "{text}"
        );
        // Garbage of another size is named as neither encoding.
        let p = normalise(spec, BackendSignature::EcdsaDer(vec![7; 10])).unwrap_err();
        assert!(p.to_string().contains("nor fixed-width"), "{p}");
    }
}
