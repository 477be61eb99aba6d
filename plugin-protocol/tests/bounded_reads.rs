//! Every file a plugin reads is bounded in size and time: a FIFO or a device given as
//! `certificate_chain` or `ca_certs` is refused at once, never read until it ends.

mod common;

use std::time::Duration;

use common::*;
use plugin_protocol::{ErrorCode, HashAlgorithm, KeySpec};

fn sign_with(key: &KeyOnDisk, name: &str, path: &str) -> plugin_protocol::client::Invocation {
    let mut p = softkey_plugin();
    p.timeout = Duration::from_secs(15);
    p.generate_signature(
        &key.key_id(),
        KeySpec::Ec256,
        HashAlgorithm::Sha256,
        b"x",
        config(&[(name, path)]),
    )
    .expect("the plugin answers within 15 s")
}

#[test]
fn a_fifo_or_a_device_as_chain_or_ca_bundle_is_refused_at_once() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let fifo = key.dir.path().join("chain.fifo");
    plugin_protocol::client::make_fifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    for name in ["certificate_chain", "ca_certs"] {
        for (path, is) in [
            (fifo, "is a FIFO"),
            ("/dev/zero", "is a device"),
            ("/dev/urandom", "is a device"),
        ] {
            let inv = sign_with(&key, name, path);
            assert!(inv.stdout.is_empty());
            let err = inv.error().expect("JSON error");
            assert_eq!(
                err.error_code,
                ErrorCode::Validation,
                "{}",
                err.error_message
            );
            assert!(
                err.error_message.contains(is) && err.error_message.contains(name),
                "{name}={path}: {}",
                err.error_message
            );
            assert!(inv.elapsed < Duration::from_secs(10), "{:?}", inv.elapsed);
        }
    }
}

#[test]
fn a_huge_chain_file_is_refused_without_reading_it_whole() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let big = key.dir.path().join("big.pem");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(2 << 30).unwrap(); // sparse: 2 GiB on paper, nothing on disk
    let inv = sign_with(&key, "certificate_chain", big.to_str().unwrap());
    let err = inv.error().expect("JSON error");
    assert_eq!(err.error_code, ErrorCode::Validation);
    assert!(
        err.error_message.contains("larger than"),
        "{}",
        err.error_message
    );
}
