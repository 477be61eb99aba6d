//! The debug log is optional: a log that cannot be written (a full disk, a missing folder, a
//! FIFO nobody reads) never changes the answer and never hangs the plugin.

mod common;

use std::time::Duration;

use common::*;
use plugin_protocol::{HashAlgorithm, KeySpec};

/// The softkey plugin with `NOTATION_PLUGIN_LOG` set to `log`, killed after 15 s.
fn with_log(log: &str) -> plugin_protocol::client::PluginClient {
    let mut p = softkey_plugin().with_env("NOTATION_PLUGIN_LOG", log);
    p.timeout = Duration::from_secs(15);
    p
}

fn answers_every_command(log: &str) {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let p = with_log(log);
    let m = p.get_metadata(None).expect("get-plugin-metadata ends");
    assert!(
        m.succeeded(),
        "metadata with log {log}: {}",
        m.stderr_text()
    );
    let d = p
        .describe_key(&key.key_id(), None)
        .expect("describe-key ends");
    assert!(
        d.succeeded(),
        "describe-key with log {log}: {}",
        d.stderr_text()
    );
    let s = p
        .generate_signature(
            &key.key_id(),
            KeySpec::Ec256,
            HashAlgorithm::Sha256,
            b"x",
            None,
        )
        .expect("generate-signature ends");
    assert!(
        s.succeeded(),
        "generate-signature with log {log}: {}",
        s.stderr_text()
    );
    // A failing command still gives its own error, not one about the log.
    let e = p
        .describe_key("test:print", None)
        .expect("describe-key ends");
    let err = e.error().expect("JSON error");
    assert!(
        err.error_message.contains("not found"),
        "{}",
        err.error_message
    );
    assert!(e.stdout.is_empty());
}

#[test]
fn a_full_disk_log_changes_nothing() {
    // /dev/full accepts open and fails every write with ENOSPC, like a full disk.
    answers_every_command("/dev/full");
}

#[test]
fn a_log_in_a_missing_folder_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("no/such/folder/plugin.log");
    answers_every_command(log.to_str().unwrap());
    assert!(!log.exists());
}

#[test]
fn a_log_that_is_a_fifo_nobody_reads_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("log.fifo");
    plugin_protocol::client::make_fifo(&fifo);
    answers_every_command(fifo.to_str().unwrap());
}

#[test]
fn a_log_that_is_a_directory_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    answers_every_command(dir.path().to_str().unwrap());
}
