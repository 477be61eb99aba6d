//! The README's main command, `scripts/demo.sh`, as a new user runs it (with the binaries this
//! test run built): a signature through notation-pkcs11 on a throwaway SoftHSM token, verified.

use std::process::Command;

#[test]
fn the_demo_signs_verifies_and_says_what_verified() {
    let checker = hsm_tests::checker_binary(); // builds every binary of the workspace once
    let target = checker.ancestors().nth(2).unwrap().to_path_buf();
    let demo = tempfile::tempdir().unwrap();
    let out = Command::new(hsm_tests::repo().join("scripts/demo.sh"))
        .arg("--no-build")
        .env("CARGO_TARGET_DIR", &target)
        .env("NOTATION_PLUGINS_DEMO_DIR", demo.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo.sh failed:\n{stdout}\n{stderr}");
    for verified in ["artifact.txt.jws.sig", "artifact.txt.cose.sig"] {
        assert!(
            demo.path().join("signatures").join(verified).is_file(),
            "{stdout}"
        );
    }
    assert!(
        stdout.matches("PASSED").count() >= 3,
        "sign run and two verifications: {stdout}"
    );
    let policy = std::fs::read_to_string(demo.path().join("trust/trustpolicy.blob.json")).unwrap();
    assert!(
        policy
            .contains("x509.subject: CN=release signer,O=Notation Plugins Demo,ST=Washington,C=US"),
        "{policy}"
    );
    assert!(demo
        .path()
        .join("trust/demo/demo-signing-root.pem")
        .is_file());
    // The last lines say honestly what verified the envelopes, and point into the demo folder.
    let which = if which_notation() {
        "as checked by notation blob verify"
    } else {
        "as checked by notation-plugin-check, which re-checks the envelopes as notation-go does (notation itself is not installed)"
    };
    assert!(stdout.contains(which), "{stdout}");
    assert!(
        stdout.contains(&format!("Files are in {}", demo.path().display())),
        "{stdout}"
    );
    assert!(
        !stderr.contains("cannot be pinned"),
        "full subjects: {stderr}"
    );
}

fn which_notation() -> bool {
    Command::new("sh")
        .args(["-c", "command -v notation"])
        .output()
        .is_ok_and(|o| o.status.success())
}
