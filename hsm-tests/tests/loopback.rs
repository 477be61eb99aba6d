//! Every server the scripts start (LocalStack, OpenBao, the Key Vault and Cloud KMS emulators)
//! listens on 127.0.0.1 only: checked on the listening sockets of the processes each script
//! started. The PIV card stack's reader driver listens on every interface, but in a network
//! namespace of its own: nothing of it listens in the machine's.

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
fn started_processes(script: &str, pidfile: &str) -> std::collections::BTreeSet<u32> {
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
    process_tree(pid)
}

#[track_caller]
fn listens_on_loopback_only(script: &str, pidfile: &str) {
    let tree = started_processes(script, pidfile);
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

#[test]
fn piv_card_stack_listens_only_in_its_own_network_namespace() {
    let tree = started_processes("piv-card.sh", "piv-card/stack.pid");
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
    let ours = ns("self").expect("our network namespace");
    assert!(
        tree.len() >= 4,
        "the stack (shell, pcscd, two cards): {tree:?}"
    );
    for pid in &tree {
        let theirs = ns(&pid.to_string());
        assert!(
            theirs.is_some() && theirs.as_ref() != Some(&ours),
            "process {pid} of scripts/piv-card.sh runs in the machine's network namespace"
        );
    }
    // Seen from the machine's namespace, the stack listens on nothing, and nobody listens on
    // vpcd's ports.
    let addrs = listening_addresses(&tree);
    assert!(addrs.is_empty(), "the PIV card stack listens on {addrs:?}");
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default()
        + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    for port in ["8C7B", "8C7C"] {
        let listening = tcp.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&format!(":{port}")) && f[3] == "0A"
        });
        assert!(
            !listening,
            "something listens on port {} in the machine's namespace",
            u16::from_str_radix(port, 16).unwrap()
        );
    }
}
