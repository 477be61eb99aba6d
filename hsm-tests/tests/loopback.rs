//! Every server the scripts start (LocalStack, OpenBao, the Key Vault and Cloud KMS emulators)
//! listen on 127.0.0.1 only: checked on the listening sockets of the processes each script started.

use std::path::PathBuf;

use hsm_tests::sockets::{is_loopback, listening_addresses, process_tree};
use hsm_tests::start_backend;

fn state_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache"))
        .join("notation-plugins")
}

#[track_caller]
fn listens_on_loopback_only(script: &str, pidfile: &str) {
    start_backend(script);
    let pidfile = state_dir().join(pidfile);
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/{script} start writes it)",
                pidfile.display()
            )
        })
        .trim()
        .parse()
        .expect("a pid");
    let tree = process_tree(pid);
    let addrs = listening_addresses(&tree);
    assert!(
        !addrs.is_empty(),
        "scripts/{script}: processes {tree:?} listen on nothing"
    );
    let open: Vec<&String> = addrs.iter().filter(|a| !is_loopback(a)).collect();
    assert!(
        open.is_empty(),
        "scripts/{script} started servers listening beyond 127.0.0.1: {open:?} (all: {addrs:?})"
    );
}

#[test]
fn localstack_listens_on_loopback_only() {
    listens_on_loopback_only("localstack.sh", "localstack/localstack.pid");
}

#[test]
fn openbao_listens_on_loopback_only() {
    listens_on_loopback_only("openbao.sh", "openbao/bao.pid");
}

#[test]
fn keyvault_emulator_listens_on_loopback_only() {
    listens_on_loopback_only("keyvault-emulator.sh", "keyvault-emulator/emulator.pid");
}

#[test]
fn gcpkms_emulator_listens_on_loopback_only() {
    listens_on_loopback_only("gcpkms-emulator.sh", "gcpkms-emulator/emulator.pid");
}
