//! SIGTERM or SIGINT during a backend call (a cancelled CI job, Ctrl-C) ends the plugin
//! promptly with a JSON error naming the signal, after the backend's cleanups ran, and so does
//! the deadline passing in a call that nothing else bounds: through the softkey plugin, whose
//! key id `test:hang` opens something and then never answers.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The plugin running `command` with `request` on its stdin.
fn start(plugin: &std::path::Path, command: &str, request: &serde_json::Value) -> Child {
    let mut child = Command::new(plugin)
        .arg(command)
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
    child
}

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
        let child = start(&plugin.path, "describe-key", &request);
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

#[test]
fn a_call_stuck_past_the_deadline_ends_the_plugin_after_its_cleanups() {
    let plugin = common::softkey_plugin();
    let dir = tempfile::tempdir().unwrap();
    for command in ["describe-key", "generate-signature"] {
        let marker = dir.path().join(format!("{command}.closed"));
        let request = serde_json::json!({
            "contractVersion": "1.0",
            "keyId": "test:hang",
            "keySpec": "EC-256",
            "hashAlgorithm": "SHA-256",
            "payload": "cGF5bG9hZA==",
            "pluginConfig": {
                "interrupt_marker": marker.to_str().unwrap(),
                "timeout_seconds": "1.5",
            },
        });
        let started = Instant::now();
        let child = start(&plugin.path, command, &request);
        let out = child.wait_with_output().unwrap();
        // The backend call sleeps 60 s; the deadline and its half-second grace end it at 2 s.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
            "{command}: {took:?}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(out.stdout.is_empty(), "{command}");
        let err: serde_json::Value = serde_json::from_str(stderr.trim()).unwrap();
        assert_eq!(err["errorCode"], "TIMEOUT", "{stderr}");
        let message = err["errorMessage"].as_str().unwrap();
        assert!(
            message.starts_with(
                "gave up waiting for the backend to answer after the 1.5s deadline; raise \
                 pluginConfig timeout_seconds"
            ),
            "{message}"
        );
        assert!(message.ends_with("was closed"), "{message}");
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            "closed",
            "{command}"
        );
    }
}
