//! SIGTERM or SIGINT during a backend call (a cancelled CI job, Ctrl-C) ends the plugin
//! promptly with a JSON error naming the signal, after the backend's cleanups ran: through the
//! softkey plugin, whose key id `test:hang` opens something and then never answers.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_signal_during_a_backend_call_ends_the_plugin_after_its_cleanups() {
    let plugin = common::softkey_plugin();
    let dir = tempfile::tempdir().unwrap();
    for (signal, name) in [("TERM", "SIGTERM"), ("INT", "SIGINT")] {
        let marker = dir.path().join(format!("{name}.closed"));
        let request = serde_json::json!({
            "contractVersion": "1.0",
            "keyId": "test:hang",
            "pluginConfig": {"interrupt_marker": marker.to_str().unwrap()},
        });
        let mut child = Command::new(&plugin.path)
            .arg("describe-key")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(request.to_string().as_bytes())
            .unwrap();
        // Time to read the request and reach the backend call.
        std::thread::sleep(Duration::from_millis(500));
        let sent = Instant::now();
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{:?}",
            sent.elapsed()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}");
        let err: serde_json::Value = serde_json::from_str(stderr.trim()).unwrap();
        assert_eq!(err["errorCode"], "ERROR", "{stderr}");
        let message = err["errorMessage"].as_str().unwrap();
        assert!(
            message.contains(&format!("interrupted by {name}")),
            "{message}"
        );
        assert!(message.contains("was closed"), "{message}");
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            "closed",
            "{name}"
        );
    }
}
