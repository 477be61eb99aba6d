//! PIV attestation: the certificate a YubiKey's f9 key issues for a key generated on the device,
//! checked up to Yubico's published PIV attestation roots (or a root the user names), and the
//! facts Yubico's extensions carry (serial, firmware, PIN and touch policy, form factor).

use std::time::SystemTime;

use der::Decode;
use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::{PluginError, Result};

/// Yubico's PIV attestation roots, as Yubico publishes them: `Yubico PIV Root CA Serial
/// 263751` (firmware before 5.7.4; SHA-256 63ECE914…B546) and `Yubico Attestation Root 1`
/// (5.7.4 and later, through intermediates the device does not hold; SHA-256 62760C6A…D5A8).
pub const YUBICO_ROOTS: [&str; 2] = [
    include_str!("../roots/yubico-piv-root-ca-263751.pem"),
    include_str!("../roots/yubico-attestation-root-1.pem"),
];

const YUBICO_ARC: &str = "1.3.6.1.4.1.41482.3";

/// What an attestation certificate says about the key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub serial: Option<u32>,
    pub firmware: Option<String>,
    pub pin_policy: Option<&'static str>,
    pub touch_policy: Option<&'static str>,
    pub form_factor: Option<String>,
}

/// Reads Yubico's extensions (1.3.6.1.4.1.41482.3.3 firmware, .7 serial, .8 policies, .9 form
/// factor) of an attestation certificate.
pub fn facts(att: &Certificate) -> Facts {
    let mut facts = Facts::default();
    let Some(exts) = &att.x509().tbs_certificate.extensions else {
        return facts;
    };
    for ext in exts {
        let id = ext.extn_id.to_string();
        let Some(arc) = id
            .strip_prefix(YUBICO_ARC)
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let v = ext.extn_value.as_bytes();
        match (arc, v) {
            ("3", [a, b, c]) => facts.firmware = Some(format!("{a}.{b}.{c}")),
            ("7", _) => {
                facts.serial = der::asn1::Uint::from_der(v)
                    .ok()
                    .map(|u| {
                        u.as_bytes()
                            .iter()
                            .fold(0u64, |n, b| n << 8 | u64::from(*b))
                    })
                    .and_then(|n| u32::try_from(n).ok())
            }
            ("8", [pin, touch, ..]) => {
                facts.pin_policy = Some(match pin {
                    1 => "never",
                    2 => "once",
                    3 => "always",
                    4 => "match-once",
                    5 => "match-always",
                    _ => "unknown",
                });
                facts.touch_policy = Some(match touch {
                    1 => "never",
                    2 => "always",
                    3 => "cached",
                    _ => "unknown",
                });
            }
            ("9", [f, ..]) => facts.form_factor = Some(form_factor(*f)),
            _ => {}
        }
    }
    facts
}

fn form_factor(b: u8) -> String {
    let kind = match b & 0x0f {
        1 => "USB-A keychain",
        2 => "USB-A nano",
        3 => "USB-C keychain",
        4 => "USB-C nano",
        5 => "USB-C and Lightning",
        6 => "USB-A Bio keychain",
        7 => "USB-C Bio keychain",
        _ => "unspecified",
    };
    let mut s = kind.to_owned();
    if b & 0x80 != 0 {
        s.push_str(", FIPS");
    }
    if b & 0x40 != 0 {
        s.push_str(", CSPN");
    }
    s
}

/// Checks that `att` was issued by the device key `f9`, and `f9` up to one of `roots` through
/// `intermediates` (each signature verified, each certificate valid at `at`). Returns the path's
/// subjects, attestation first.
pub fn verify(
    att: &Certificate,
    f9: &Certificate,
    intermediates: &[Certificate],
    roots: &[Certificate],
    at: SystemTime,
) -> Result<Vec<String>> {
    let mut path = vec![att.subject().to_owned()];
    check_issued(att, f9, at)?;
    let mut current = f9.clone();
    for _ in 0..8 {
        path.push(current.subject().to_owned());
        if let Some(root) = roots
            .iter()
            .find(|r| r.der() == current.der() || issued_by(&current, r))
        {
            if root.der() != current.der() {
                check_valid(root, at)?;
                path.push(root.subject().to_owned());
            }
            check_valid(&current, at)?;
            return Ok(path);
        }
        let Some(parent) = intermediates.iter().find(|i| issued_by(&current, i)) else {
            return Err(PluginError::validation(format!(
                "the attestation does not chain to a trusted root: no root or intermediate \
                 issued '{}' (issuer '{}'); for firmware 5.7.4 and later pass Yubico's \
                 intermediates (developers.yubico.com/PKI/yubico-intermediate.pem) with \
                 --intermediates, or name the root with --root",
                current.subject(),
                current.issuer()
            )));
        };
        check_issued(&current, parent, at)?;
        current = parent.clone();
    }
    Err(PluginError::validation(
        "the attestation's chain is longer than 8 certificates",
    ))
}

fn issued_by(cert: &Certificate, issuer: &Certificate) -> bool {
    cert.issuer() == issuer.subject() && signature_ok(cert, issuer).is_ok()
}

fn signature_ok(cert: &Certificate, issuer: &Certificate) -> Result<()> {
    chain::check_signature(cert, issuer)
        .map_err(|why| PluginError::validation(format!("'{}': {why}", cert.subject())))
}

fn check_issued(cert: &Certificate, issuer: &Certificate, at: SystemTime) -> Result<()> {
    signature_ok(cert, issuer)?;
    check_valid(cert, at)
}

fn check_valid(cert: &Certificate, at: SystemTime) -> Result<()> {
    let v = &cert.x509().tbs_certificate.validity;
    if at < v.not_before.to_system_time() || at > v.not_after.to_system_time() {
        return Err(PluginError::validation(format!(
            "'{}' is not valid now (valid from {} to {})",
            cert.subject(),
            v.not_before,
            v.not_after
        )));
    }
    Ok(())
}

/// Yubico's roots, parsed.
pub fn yubico_roots() -> Result<Vec<Certificate>> {
    let mut roots = Vec::new();
    for pem in YUBICO_ROOTS {
        roots.extend(chain::parse_pem_or_der(
            pem.as_bytes(),
            "Yubico's PIV attestation roots",
        )?);
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_roots_are_the_ones_yubico_publishes() {
        let roots = yubico_roots().unwrap();
        let fingerprints: Vec<String> = roots
            .iter()
            .map(|r| {
                plugin_protocol::HashAlgorithm::Sha256
                    .digest(r.der())
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect()
            })
            .collect();
        assert_eq!(
            fingerprints,
            [
                "63ECE914E54DD87915F34033C85AF4C0696BA1512F8ADD66CED738331207B546",
                "62760C6A6EF91679F454C8902B80FD009825B3F25DA90F1FBACE2EC6586CD5A8",
            ]
        );
        assert_eq!(roots[0].subject(), "CN=Yubico PIV Root CA Serial 263751");
        assert_eq!(roots[1].subject(), "CN=Yubico Attestation Root 1");
    }

    /// A self-signed certificate with Yubico's attestation extensions of these raw values.
    fn attestation_with(firmware: &str, serial_der: &str, policy: &str, form: &str) -> Certificate {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("att.pem");
        let ext = |arc: u8, hex: &str| format!("{YUBICO_ARC}.{arc}=DER:{hex}");
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-subj",
                "/CN=YubiKey PIV Attestation 9c",
                "-days",
                "1",
            ])
            .args(["-keyout", "/dev/null", "-out"])
            .arg(&out)
            .args(["-addext", &ext(3, firmware), "-addext", &ext(7, serial_der)])
            .args(["-addext", &ext(8, policy), "-addext", &ext(9, form)])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        chain::load_file(&out).unwrap().remove(0)
    }

    #[test]
    fn yubico_extensions_are_read() {
        let att = attestation_with("05:07:01", "02:04:01:12:A8:81", "03:01", "03");
        assert_eq!(
            facts(&att),
            Facts {
                serial: Some(18000001),
                firmware: Some("5.7.1".into()),
                pin_policy: Some("always"),
                touch_policy: Some("never"),
                form_factor: Some("USB-C keychain".into()),
            }
        );
        for (policy, pin, touch) in [
            ("01:02", "never", "always"),
            ("02:03", "once", "cached"),
            ("04:01", "match-once", "never"),
            ("05:09", "match-always", "unknown"),
            ("09:01", "unknown", "never"),
        ] {
            let f = facts(&attestation_with("04:03:05", "02:01:07", policy, "81"));
            assert_eq!(
                (f.pin_policy, f.touch_policy),
                (Some(pin), Some(touch)),
                "{policy}"
            );
            assert_eq!(f.serial, Some(7));
            assert_eq!(f.firmware.as_deref(), Some("4.3.5"));
            assert_eq!(f.form_factor.as_deref(), Some("USB-A keychain, FIPS"));
        }
    }

    #[test]
    fn form_factors_and_flags() {
        assert_eq!(form_factor(0x02), "USB-A nano");
        assert_eq!(form_factor(0x05), "USB-C and Lightning");
        assert_eq!(form_factor(0x06), "USB-A Bio keychain");
        assert_eq!(form_factor(0x07), "USB-C Bio keychain");
        assert_eq!(form_factor(0x01), "USB-A keychain");
        assert_eq!(form_factor(0x83), "USB-C keychain, FIPS");
        assert_eq!(form_factor(0x44), "USB-C nano, CSPN");
        assert_eq!(form_factor(0x00), "unspecified");
    }
}
