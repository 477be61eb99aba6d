//! The virtual PIV card (`hsm-tests/piv-card/`) kept honest by Yubico's own tools, not by our
//! code: Debian's yubico-piv-tool and YKCS11 (through OpenSC's pkcs11-tool), and ykman (Yubico's
//! yubikey-manager, pinned in scripts/piv-card.sh) for what Debian's tools do not know (RSA-3072
//! and 4096, the AES management key, metadata, attestation). Keys are generated and imported in
//! every slot kind, certificates written and read back, every signature checked by openssl.

use std::path::PathBuf;

use hsm_tests::piv_card::{ykman_algorithm, PivCard, DEFAULT_MGMT_KEY, DEFAULT_PIN, DEFAULT_PUK};
use plugin_protocol::KeySpec;

struct Tools<'a> {
    card: &'a PivCard,
}

impl Tools<'_> {
    fn path(&self, name: &str) -> String {
        self.card.dir.path().join(name).display().to_string()
    }

    #[track_caller]
    fn piv_tool(&self, args: &[&str]) -> String {
        let mut all = vec!["--reader", self.card.reader];
        all.extend_from_slice(args);
        self.card.run_ok("yubico-piv-tool", &all)
    }

    /// yubico-piv-tool, expected to fail; returns what it printed.
    #[track_caller]
    fn piv_tool_fails(&self, args: &[&str]) -> String {
        let mut all = vec!["--reader", self.card.reader];
        all.extend_from_slice(args);
        let out = self.card.run("yubico-piv-tool", &all);
        assert!(
            !out.status.success(),
            "yubico-piv-tool {args:?} should fail"
        );
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
    }

    /// OpenSC's pkcs11-tool on YKCS11, on this card's token, logged in.
    #[track_caller]
    fn pkcs11_tool(&self, args: &[&str]) -> String {
        let label = format!("YubiKey PIV #{}", self.card.serial);
        let mut all = vec![
            "--module",
            self.card.ykcs11(),
            "--token-label",
            &label,
            "--login",
            "--pin",
            DEFAULT_PIN,
        ];
        all.extend_from_slice(args);
        self.card.run_ok("pkcs11-tool", &all)
    }

    #[track_caller]
    fn openssl(&self, args: &[&str]) -> String {
        self.card.run_ok("openssl", args)
    }

    /// A certificate for the public key in `public` from a throwaway openssl CA.
    fn certificate_for(&self, public: &str, subject: &str, out: &str) {
        if !PathBuf::from(self.path("ca.pem")).exists() {
            // The CA, and a request whose key is replaced by the card's (-force_pubkey).
            for (kind, subject, key, out) in [
                ("-x509", "/CN=conformance CA", "ca.key", "ca.pem"),
                ("-new", "/CN=unused", "unused.key", "unused.csr"),
            ] {
                let (key, out) = (self.path(key), self.path(out));
                self.openssl(&[
                    "req",
                    kind,
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-subj",
                    subject,
                    "-keyout",
                    &key,
                    "-out",
                    &out,
                ]);
            }
        }
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &self.path("unused.csr"),
            "-CA",
            &self.path("ca.pem"),
            "-CAkey",
            &self.path("ca.key"),
            "-force_pubkey",
            public,
            "-subj",
            subject,
            "-days",
            "30",
            "-out",
            out,
        ]);
    }
}

/// `ykman piv access change-management-key` from the default key to `new` of `algorithm`,
/// which the card's metadata then reports.
fn change_management_key(card: &PivCard, algorithm: &str, new: &str) {
    card.ykman(&[
        "piv",
        "access",
        "change-management-key",
        "--management-key",
        DEFAULT_MGMT_KEY,
        "--algorithm",
        algorithm,
        "--new-management-key",
        new,
        "--force",
    ]);
    let info = card.ykman(&["piv", "info"]);
    assert!(
        info.contains(&format!("Management key algorithm: {algorithm}")),
        "{info}"
    );
}

/// The Debian tools' keys: (slot, YKCS11's CKA_ID, algorithm, imported from openssl rather than
/// generated on the card).
const DEBIAN_CASES: [(&str, &str, &str, bool); 7] = [
    ("9a", "01", "ECCP256", false),
    ("9c", "02", "ECCP384", false),
    ("9d", "03", "RSA2048", false),
    ("9e", "04", "ECCP256", false),
    ("85", "08", "ECCP384", false),
    ("82", "05", "ECCP256", true),
    ("95", "18", "RSA2048", true),
];

/// yubico-piv-tool generates and imports keys in every slot kind, writes and reads their
/// certificates and test-signs; pkcs11-tool (YKCS11) signs with each key (9c's PIN-always key
/// with its context-specific login), openssl checks every signature; the PIN is exhausted,
/// blocked, unblocked with the PUK and changed.
#[test]
fn yubico_piv_tool_and_ykcs11_drive_the_card() {
    let card = PivCard::acquire();
    let t = Tools { card: &card };
    let key = format!("--key={DEFAULT_MGMT_KEY}");
    // A 5.7 card's management key is AES-192, which Debian's yubico-piv-tool 2.2.0 does not
    // know: it fails to authenticate, and ykman switches the key to 3DES.
    let refused = t.piv_tool_fails(&[&key, "-a", "generate", "-s", "9a", "-A", "ECCP256"]);
    assert!(refused.contains("uthentication"), "{refused}");
    change_management_key(&card, "TDES", DEFAULT_MGMT_KEY);

    std::fs::write(t.path("data"), b"conformance data\n").unwrap();
    for (slot, id, algorithm, imported) in DEBIAN_CASES {
        let public = t.path(&format!("{slot}.pub.pem"));
        if imported {
            let private = t.path(&format!("{slot}.key.pem"));
            let opts: &[&str] = if algorithm == "RSA2048" {
                &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
            } else {
                &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
            };
            t.openssl(&[&["genpkey"], opts, &["-out", &private]].concat());
            t.openssl(&["pkey", "-in", &private, "-pubout", "-out", &public]);
            t.piv_tool(&[
                &key,
                "-a",
                "import-key",
                "-s",
                slot,
                "-i",
                &private,
                "--pin-policy=once",
            ]);
        } else {
            t.piv_tool(&[
                &key, "-a", "generate", "-s", slot, "-A", algorithm, "-o", &public,
            ]);
        }
        // The card's metadata says what was made (ykman reads it).
        let info = card.ykman(&["piv", "keys", "info", slot]);
        assert!(
            info.contains(&format!("Algorithm:              {algorithm}")),
            "{info}"
        );
        let origin = if imported { "IMPORTED" } else { "GENERATED" };
        assert!(info.contains(origin), "{info}");

        // Certificates: written, read back byte for byte, and used by test-signature.
        let cert = t.path(&format!("{slot}.cert.pem"));
        t.certificate_for(&public, &format!("/CN=slot {slot}"), &cert);
        t.piv_tool(&[&key, "-a", "import-certificate", "-s", slot, "-i", &cert]);
        let read = t.path(&format!("{slot}.read.pem"));
        t.piv_tool(&["-a", "read-certificate", "-s", slot, "-o", &read]);
        assert_eq!(
            std::fs::read(&cert).unwrap(),
            std::fs::read(&read).unwrap(),
            "slot {}",
            slot
        );
        let tested = t.piv_tool(&[
            "-P",
            DEFAULT_PIN,
            "-a",
            "verify-pin",
            "-a",
            "test-signature",
            "-s",
            slot,
            "-i",
            &cert,
        ]);
        assert!(
            tested.contains("verification") || tested.contains("Successful"),
            "{tested}"
        );

        // YKCS11 signs (hash and sign), openssl verifies with the public key.
        let sig = t.path(&format!("{slot}.sig"));
        let (mechanism, digest) = match algorithm {
            "ECCP256" => ("ECDSA-SHA256", "-sha256"),
            "ECCP384" => ("ECDSA-SHA384", "-sha384"),
            _ => ("SHA256-RSA-PKCS-PSS", "-sha256"),
        };
        t.pkcs11_tool(&[
            "--sign",
            "--id",
            id,
            "-m",
            mechanism,
            "-i",
            &t.path("data"),
            "-o",
            &sig,
            "--signature-format",
            "openssl",
        ]);
        let mut verify = vec!["dgst", digest, "-verify", &public, "-signature", &sig];
        if mechanism.contains("PSS") {
            verify.extend([
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:32",
            ]);
        }
        let data = t.path("data");
        verify.push(&data);
        assert!(t.openssl(&verify).contains("Verified OK"), "slot {slot}");
    }
    assert_eq!(card.pin_retries(), 3, "no wrong PIN so far");

    // The PIN: each wrong one costs one try (the card's counter and the tool agree), the third
    // blocks it, the right PIN is then refused; the PUK unblocks it.
    for left in [2, 1] {
        let out = t.piv_tool_fails(&["-P", "000000", "-a", "verify-pin"]);
        assert!(out.contains(&format!("{left} tries left")), "{out}");
        assert_eq!(card.pin_retries(), left);
    }
    let out = t.piv_tool_fails(&["-P", "000000", "-a", "verify-pin"]);
    assert!(out.contains("blocked"), "{out}");
    let out = t.piv_tool_fails(&["-P", DEFAULT_PIN, "-a", "verify-pin"]);
    assert!(out.contains("blocked"), "{out}");
    assert_eq!(card.pin_retries(), 0);
    t.piv_tool(&["-P", DEFAULT_PUK, "-N", DEFAULT_PIN, "-a", "unblock-pin"]);
    assert_eq!(card.pin_retries(), 3);
    t.piv_tool(&["-P", DEFAULT_PIN, "-N", "24681357", "-a", "change-pin"]);
    t.piv_tool(&["-P", "24681357", "-a", "verify-pin"]);
    t.piv_tool_fails(&["-P", DEFAULT_PIN, "-a", "verify-pin"]);
    assert_eq!(card.pin_retries(), 2);
}

/// ykman for what Debian's tools do not know: the AES-192 management key of 5.7 (and a change
/// to AES-256), RSA-3072/4096 keys signing on the card (CSRs and self-signed certificates,
/// checked by openssl), slot metadata, the PIN-always and touch policies, attestation chained
/// to the card's test root, and both cards by serial.
#[test]
fn ykman_drives_what_debian_tools_do_not_know() {
    let card = PivCard::acquire();
    let t = Tools { card: &card };
    let info = card.ykman(&["piv", "info"]);
    assert!(info.contains("PIV version:              5.7.1"), "{info}");
    assert!(info.contains("Management key algorithm: AES192"), "{info}");
    assert!(info.contains("Using default PIN"), "{info}");

    for (slot_id, spec, policy) in [
        (0x9a, KeySpec::Rsa3072, "ONCE"),
        (0x9c, KeySpec::Rsa4096, "ALWAYS"),
        (0x9d, KeySpec::Ec384, "NEVER"),
    ] {
        card.generate(slot_id, spec, policy);
        let (slot, algorithm) = (&format!("{slot_id:02x}"), ykman_algorithm(spec));
        let public = t.path(&format!("{slot}.pub.pem"));
        let info = card.ykman(&["piv", "keys", "info", slot]);
        assert!(
            info.contains(&format!("Algorithm:              {algorithm}")),
            "{info}"
        );
        assert!(
            info.contains(&format!("PIN required for use:   {policy}")),
            "{info}"
        );
        assert!(info.contains("Origin:                 GENERATED"), "{info}");
        // The metadata's public key is the generated one.
        let exported = t.path(&format!("{slot}.exported.pem"));
        card.ykman(&["piv", "keys", "export", slot, &exported]);
        assert_eq!(
            std::fs::read(&public).unwrap(),
            std::fs::read(&exported).unwrap()
        );

        // The card signs a CSR and a self-signed certificate; openssl checks both signatures.
        let csr = t.path(&format!("{slot}.csr"));
        card.ykman(&[
            "piv",
            "certificates",
            "request",
            "--pin",
            DEFAULT_PIN,
            "--subject",
            &format!("CN=ykman {slot}"),
            slot,
            &public,
            &csr,
        ]);
        let checked = t.openssl(&["req", "-in", &csr, "-verify", "-noout"]);
        assert!(
            checked.contains("verify OK") || checked.contains("signature ok"),
            "{checked}"
        );
        card.ykman(&[
            "piv",
            "certificates",
            "generate",
            "--management-key",
            DEFAULT_MGMT_KEY,
            "--pin",
            DEFAULT_PIN,
            "--subject",
            &format!("CN=ykman {slot}"),
            slot,
            &public,
        ]);
        let cert = t.path(&format!("{slot}.cert.pem"));
        card.ykman(&["piv", "certificates", "export", slot, &cert]);
        let verified = t.openssl(&[
            "verify",
            "-check_ss_sig",
            "-partial_chain",
            "-trusted",
            &cert,
            &cert,
        ]);
        assert!(verified.contains("OK"), "{verified}");

        // Attestation: the slot's key, signed by f9, whose certificate chains to the test root.
        let attestation = t.path(&format!("{slot}.attestation.pem"));
        card.ykman(&["piv", "keys", "attest", slot, &attestation]);
        let f9 = t.path("f9.pem");
        card.ykman(&["piv", "certificates", "export", "f9", &f9]);
        let root = card
            .state_dir
            .join("attestation-root.pem")
            .display()
            .to_string();
        let chained = t.openssl(&["verify", "-CAfile", &root, "-untrusted", &f9, &attestation]);
        assert!(chained.contains(": OK"), "{chained}");
        let attested = t.openssl(&["x509", "-in", &attestation, "-noout", "-pubkey"]);
        assert_eq!(
            attested,
            std::fs::read_to_string(&public).unwrap(),
            "slot {slot}"
        );
    }
    // An imported key cannot be attested, as on a YubiKey.
    let imported = t.path("imported.pem");
    t.openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &imported,
    ]);
    card.ykman(&[
        "piv",
        "keys",
        "import",
        "--management-key",
        DEFAULT_MGMT_KEY,
        "9e",
        &imported,
    ]);
    let serial = card.serial.to_string();
    let ykman = &card.vars["PIV_CARD_YKMAN"];
    let out = card.run(
        ykman,
        &[
            "--device",
            &serial,
            "piv",
            "keys",
            "attest",
            "9e",
            &t.path("x.pem"),
        ],
    );
    assert!(!out.status.success(), "attesting an imported key");

    // Touch: a touch-always key waits for the touch, and fails like a YubiKey without one.
    card.generate_with(0x82, KeySpec::Ec256, "ONCE", "ALWAYS");
    let public = t.path("82.pub.pem");
    card.set_touch_timeout(1.0);
    let request = [
        "--device",
        &serial,
        "piv",
        "certificates",
        "request",
        "--pin",
        DEFAULT_PIN,
        "--subject",
        "CN=touch",
        "82",
        &public,
        &t.path("touch.csr"),
    ];
    let started = std::time::Instant::now();
    let out = card.run(ykman, &request);
    assert!(!out.status.success(), "no touch, no signature");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "it waited for the touch"
    );
    card.touch();
    let out = card.run(ykman, &request);
    assert!(
        out.status.success(),
        "touched: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !card.state_dir.join("touch").exists(),
        "the touch was used up"
    );

    // The management key: AES-256 replaces it; the old key no longer authenticates.
    let new_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    change_management_key(&card, "AES256", new_key);
    let gen = |mgmt: &str| {
        card.run(
            ykman,
            &[
                "--device",
                &serial,
                "piv",
                "keys",
                "generate",
                "--management-key",
                mgmt,
                "--algorithm",
                "ECCP256",
                "9e",
                &t.path("9e.pem"),
            ],
        )
    };
    assert!(
        !gen(DEFAULT_MGMT_KEY).status.success(),
        "the old management key"
    );
    assert!(gen(new_key).status.success(), "the new management key");

    // PIN and PUK changes show in the metadata.
    card.ykman(&[
        "piv",
        "access",
        "change-pin",
        "--pin",
        DEFAULT_PIN,
        "--new-pin",
        "97531135",
    ]);
    card.ykman(&[
        "piv",
        "access",
        "change-puk",
        "--puk",
        DEFAULT_PUK,
        "--new-puk",
        "86420864",
    ]);
    let info = card.ykman(&["piv", "info"]);
    assert!(
        !info.contains("Using default PIN") && !info.contains("Using default PUK"),
        "{info}"
    );

    // Two cards: each found by its serial, by ykman and by YKCS11.
    let listed = card.run_ok(ykman, &["list", "--serials"]);
    assert!(
        listed.contains(&serial) && listed.contains(&card.other_serial.to_string()),
        "{listed}"
    );
    let other = card.other_serial.to_string();
    let info = card.run_ok(ykman, &["--device", &other, "info"]);
    assert!(info.contains(&format!("Serial number: {other}")), "{info}");
    let tokens = card.run_ok("pkcs11-tool", &["--module", card.ykcs11(), "--list-slots"]);
    assert!(
        tokens.contains(&format!("YubiKey PIV #{serial}"))
            && tokens.contains(&format!("YubiKey PIV #{other}")),
        "{tokens}"
    );
}

/// Faults: a slow card still answers (later); a card pulled out in the middle of a command
/// fails that command, and answers again once it is back.
#[test]
fn a_slow_card_and_a_card_pulled_out_mid_command() {
    let card = PivCard::acquire();
    let ykman = card.vars["PIV_CARD_YKMAN"].clone();
    let serial = card.serial.to_string();
    card.inject_fault("slow 0.05");
    let started = std::time::Instant::now();
    card.ykman(&["piv", "info"]);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "every command 50 ms later"
    );
    card.clear_fault();

    // The fault pulls the card out at the next command it gets; should another client's
    // command (pcscd's own) take it first, the card is back in 1.5 s and pulled out again.
    let pulled = (0..3).any(|_| {
        card.inject_fault("remove 1.5");
        let out = card.run(&ykman, &["--device", &serial, "piv", "info"]);
        if out.status.success() {
            card.clear_fault();
            card.wait_until_present();
        }
        !out.status.success()
    });
    assert!(pulled, "the card was pulled out");
    // Back after 1.5 s: it answers again.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    card.wait_until_present();
}
