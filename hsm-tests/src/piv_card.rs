//! The virtual PIV cards of `hsm-tests/piv-card/` (two YubiKey 5 look-alikes, firmware 5.7, in
//! the private pcscd of `scripts/piv-card.sh`), for the tests that drive YKCS11, Yubico's tools
//! and the plugins against a real PC/SC stack. One pcscd serves every test process, so a test
//! holds [`PivCard`] (a machine-wide lock) while it uses the cards, and starts from a
//! factory-reset card.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use plugin_protocol::chain::{self, Certificate};
use plugin_protocol::{KeySpec, PublicKey};

/// The default management key of a YubiKey (AES-192 from firmware 5.7, 3DES before).
pub const DEFAULT_MGMT_KEY: &str = "010203040506070801020304050607080102030405060708";
pub const DEFAULT_PIN: &str = "123456";
pub const DEFAULT_PUK: &str = "12345678";

/// YKCS11's CKA_ID of a PIV slot: 9a 1, 9c 2, 9d 3, 9e 4, retired 82..95 5..24, f9 25.
pub fn ykcs11_id(slot: u8) -> u8 {
    match slot {
        0x9a => 1,
        0x9c => 2,
        0x9d => 3,
        0x9e => 4,
        0x82..=0x95 => slot - 0x82 + 5,
        0xf9 => 25,
        other => panic!("{other:#x} is not a PIV key slot"),
    }
}

/// ykman's name of an algorithm.
pub fn ykman_algorithm(spec: KeySpec) -> &'static str {
    match spec {
        KeySpec::Rsa2048 => "RSA2048",
        KeySpec::Rsa3072 => "RSA3072",
        KeySpec::Rsa4096 => "RSA4096",
        KeySpec::Ec256 => "ECCP256",
        KeySpec::Ec384 => "ECCP384",
        KeySpec::Ec521 => panic!("PIV has no P-521"),
    }
}

/// Card 1 of the stack, held under the machine-wide card lock and reset to factory state.
pub struct PivCard {
    pub serial: u32,
    /// The other card's serial (the stack runs two, for serial selection).
    pub other_serial: u32,
    /// The PC/SC reader card 1 is in.
    pub reader: &'static str,
    /// The card's state directory (card.json, touch, fault, attestation-root.pem).
    pub state_dir: PathBuf,
    /// Everything `scripts/piv-card.sh env` exports.
    pub vars: HashMap<String, String>,
    /// A scratch directory for this test (PIN files, certificates, envelopes).
    pub dir: tempfile::TempDir,
    pub plugin: PathBuf,
    _lock: File,
}

impl PivCard {
    /// Starts the stack if needed, waits for the lock, and factory-resets card 1 (`ykman piv
    /// reset`).
    pub fn acquire() -> Self {
        crate::start_backend("piv-card.sh");
        let out = Command::new(crate::repo().join("scripts/piv-card.sh"))
            .arg("env")
            .output()
            .expect("run scripts/piv-card.sh env");
        let vars: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let lock = File::create(&vars["PIV_CARD_LOCK"]).expect("create the card lock file");
        lock.lock().expect("take the card lock");
        let serials: Vec<u32> = vars["PIV_CARD_SERIALS"]
            .split(',')
            .filter_map(|s| s.parse().ok())
            .collect();
        assert_eq!(serials.len(), 2, "PIV_CARD_SERIALS");
        let card = PivCard {
            serial: serials[0],
            other_serial: serials[1],
            reader: "Yubico YubiKey OTP+FIDO+CCID 00 00",
            state_dir: Path::new(&vars["PIV_CARD_DIR"]).join("card1"),
            vars,
            dir: tempfile::tempdir().expect("temporary directory"),
            plugin: crate::plugin_binary("pkcs11"),
            _lock: lock,
        };
        for f in ["touch", "touch-timeout", "fault", "apdu.log"] {
            let _ = std::fs::remove_file(card.state_dir.join(f));
        }
        card.wait_until_present();
        // The set-up's own reset: pcscd's RPC to the virtual reader can drop while the previous
        // test's client lets go of the card (SCARD_F_COMM_ERROR), so it is tried up to 3 times.
        let ykman = card.vars["PIV_CARD_YKMAN"].clone();
        let serial = card.serial.to_string();
        let reset = ["--device", serial.as_str(), "piv", "reset", "--force"];
        for attempt in 1.. {
            let out = card.run(&ykman, &reset);
            if out.status.success() {
                break;
            }
            assert!(
                attempt < 3,
                "ykman piv reset failed 3 times: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
            card.wait_until_present();
        }
        card
    }

    /// Waits (at most 20 s) until card 1 answers: after a pulled-out card, pcscd notices the
    /// reinserted one on its own schedule, slower on a busy machine.
    pub fn wait_until_present(&self) {
        let ykman = &self.vars["PIV_CARD_YKMAN"];
        let serial = self.serial.to_string();
        let start = std::time::Instant::now();
        loop {
            let out = self.run(ykman, &["--device", &serial, "piv", "info"]);
            if out.status.success() {
                return;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "card {serial} never answered: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    /// What a PC/SC client needs to reach the stack's pcscd.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(
            "PCSCLITE_CSOCK_NAME".into(),
            self.vars["PCSCLITE_CSOCK_NAME"].clone(),
        )]
    }

    pub fn ykcs11(&self) -> &str {
        &self.vars["PIV_CARD_YKCS11"]
    }

    /// Runs a program with the stack's environment.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program)
            .args(args)
            .envs(self.env())
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    }

    /// Runs a program and returns its stdout (and stderr), panicking on failure.
    #[track_caller]
    pub fn run_ok(&self, program: &str, args: &[&str]) -> String {
        succeeded(program, args, self.run(program, args))
    }

    /// Yubico's ykman on this card (`ykman --device <serial> ...`). After a reset of the card
    /// (the set-up's, or a test's), pcscd may refuse a client's first command with
    /// SCARD_W_RESET_CARD ("Card was reset"), which never reached the card: that one is run again.
    #[track_caller]
    pub fn ykman(&self, args: &[&str]) -> String {
        let serial = self.serial.to_string();
        let mut all = vec!["--device", serial.as_str()];
        all.extend_from_slice(args);
        let ykman = &self.vars["PIV_CARD_YKMAN"];
        let mut out = self.run(ykman, &all);
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("0x80100068") {
            out = self.run(ykman, &all);
        }
        succeeded(ykman, &all, out)
    }

    /// A fresh key of `spec` in `slot` (`ykman piv keys generate`), with `pin_policy` (DEFAULT,
    /// NEVER, ONCE, ALWAYS); returns its public key, also written to `<slot>.pub.pem` in the
    /// scratch directory.
    pub fn generate(&self, slot: u8, spec: KeySpec, pin_policy: &str) -> PublicKey {
        self.generate_with(slot, spec, pin_policy, "DEFAULT")
    }

    /// [`PivCard::generate`] with a touch policy (DEFAULT, NEVER, ALWAYS, CACHED) too.
    pub fn generate_with(
        &self,
        slot: u8,
        spec: KeySpec,
        pin_policy: &str,
        touch_policy: &str,
    ) -> PublicKey {
        let slot = format!("{slot:02x}");
        let pem = self.dir.path().join(format!("{slot}.pub.pem"));
        self.ykman(&[
            "piv",
            "keys",
            "generate",
            "--management-key",
            DEFAULT_MGMT_KEY,
            "--algorithm",
            ykman_algorithm(spec),
            "--pin-policy",
            pin_policy,
            "--touch-policy",
            touch_policy,
            &slot,
            &pem.display().to_string(),
        ]);
        PublicKey::from_spki_pem(&std::fs::read_to_string(&pem).expect("ykman wrote the key"))
            .expect("an SPKI PEM")
    }

    /// Factory-resets the stack's other card and makes a P-384 key in its slot 9a (ykman), for
    /// the tests that need two YubiKeys with a key each.
    pub fn other_card_with_p384_key(&self) {
        let other = self.other_serial.to_string();
        let ykman = self.vars["PIV_CARD_YKMAN"].clone();
        self.run_ok(&ykman, &["--device", &other, "piv", "reset", "--force"]);
        let public = self.dir.path().join("other.pem").display().to_string();
        self.run_ok(
            &ykman,
            &[
                "--device",
                &other,
                "piv",
                "keys",
                "generate",
                "--management-key",
                DEFAULT_MGMT_KEY,
                "--algorithm",
                "ECCP384",
                "9a",
                &public,
            ],
        );
    }

    /// Stores `cert` in `slot` (`ykman piv certificates import`).
    pub fn import_certificate(&self, slot: u8, cert: &Certificate) {
        let slot = format!("{slot:02x}");
        let pem = self.write(&format!("{slot}.cert.pem"), &cert.to_pem());
        self.ykman(&[
            "piv",
            "certificates",
            "import",
            "--management-key",
            DEFAULT_MGMT_KEY,
            &slot,
            &pem.display().to_string(),
        ]);
    }

    /// Writes `chain` as a PEM bundle into the scratch directory.
    pub fn write_chain(&self, name: &str, chain: &[Certificate]) -> PathBuf {
        self.write(name, &chain::to_pem_bundle(chain))
    }

    /// Writes `contents` to `name` in the scratch directory (mode 0600).
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write into the scratch directory");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// The notation-pkcs11 key URI of the key in `slot` through YKCS11, with `pin_file`.
    pub fn uri(&self, slot: u8, pin_file: &Path) -> String {
        format!(
            "pkcs11:serial={};id=%{:02X}?module-path={}&pin-source=file:{}",
            self.serial,
            ykcs11_id(slot),
            self.ykcs11(),
            pin_file.display()
        )
    }

    /// The card's own PIN retry counter (from its state, not through any client).
    pub fn pin_retries(&self) -> u64 {
        self.state()["pin_retries"].as_u64().expect("pin_retries")
    }

    /// The card's state file (card.json), as the card wrote it.
    pub fn state(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.state_dir.join("card.json")).expect("the card's state");
        serde_json::from_str(&text).expect("card.json is JSON")
    }

    /// Injects a fault (see hsm-tests/piv-card/vpcd.py): `slow <seconds>`, `remove <seconds>`.
    pub fn inject_fault(&self, fault: &str) {
        std::fs::write(self.state_dir.join("fault"), fault).expect("write the fault file");
    }

    /// Ends a `slow` fault.
    pub fn clear_fault(&self) {
        let _ = std::fs::remove_file(self.state_dir.join("fault"));
    }

    /// Starts counting the commands card 1 gets (see [`PivCard::commands`]), from none.
    pub fn log_commands(&self) {
        std::fs::write(self.state_dir.join("apdu.log"), "").expect("write the command log");
    }

    /// The instructions of the commands card 1 got since [`PivCard::log_commands`], by name
    /// (VERIFY, GENERAL AUTHENTICATE, GET METADATA, GET DATA, ...), in order.
    pub fn commands(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.state_dir.join("apdu.log")).unwrap_or_default();
        text.lines()
            .map(|ins| {
                match ins.trim() {
                    "a4" => "SELECT",
                    "20" => "VERIFY",
                    "87" => "GENERAL AUTHENTICATE",
                    "f7" => "GET METADATA",
                    "cb" => "GET DATA",
                    "c0" => "GET RESPONSE",
                    "fd" => "GET VERSION",
                    "f8" => "GET SERIAL",
                    "f9" => "ATTEST",
                    "47" => "GENERATE",
                    "db" => "PUT DATA",
                    other => return format!("INS {other}"),
                }
                .to_owned()
            })
            .collect()
    }

    /// Touches the card (a key with a touch policy is waiting for it, or will be).
    pub fn touch(&self) {
        std::fs::write(self.state_dir.join("touch"), "").expect("write the touch file");
    }

    /// How long the card waits for a touch before failing like a YubiKey.
    pub fn set_touch_timeout(&self, seconds: f32) {
        std::fs::write(self.state_dir.join("touch-timeout"), seconds.to_string())
            .expect("write the touch timeout");
    }
}

/// The stdout and stderr of a run that must have succeeded.
#[track_caller]
fn succeeded(program: &str, args: &[&str], out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}
