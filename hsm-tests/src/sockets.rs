//! The listening sockets of the processes a script started, read from /proc: which addresses
//! the test backends (LocalStack, OpenBao, the Key Vault emulator) accept connections on.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// `pid` and every process in its session (the scripts start servers with `setsid`) or below it.
pub fn process_tree(pid: u32) -> BTreeSet<u32> {
    let mut parents: HashMap<u32, (u32, u32)> = HashMap::new(); // pid -> (ppid, sid)
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp session ...: comm may hold spaces, so split after ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(ppid), Some(sid)) = (f.get(1), f.get(3)) {
            parents.insert(p, (ppid.parse().unwrap_or(0), sid.parse().unwrap_or(0)));
        }
    }
    let mut tree: BTreeSet<u32> = [pid].into();
    loop {
        let before = tree.len();
        for (p, (ppid, sid)) in &parents {
            if tree.contains(ppid) || *sid == pid {
                tree.insert(*p);
            }
        }
        if tree.len() == before {
            return tree;
        }
    }
}

/// The local addresses (`127.0.0.1:4566`, `[::]:8200`) of every listening TCP socket and bound
/// UDP socket held by any of `pids`.
pub fn listening_addresses(pids: &BTreeSet<u32>) -> Vec<String> {
    let mut inodes = BTreeSet::new();
    for pid in pids {
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(link) = std::fs::read_link(fd.path()) {
                let link = link.to_string_lossy().into_owned();
                if let Some(inode) = link
                    .strip_prefix("socket:[")
                    .and_then(|l| l.strip_suffix(']'))
                {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    for (table, listening_state) in [
        ("/proc/net/tcp", "0A"),
        ("/proc/net/tcp6", "0A"),
        ("/proc/net/udp", "07"),
        ("/proc/net/udp6", "07"),
    ] {
        let Ok(text) = std::fs::read_to_string(Path::new(table)) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != listening_state || !inodes.contains(f[9]) {
                continue;
            }
            out.push(decode_address(f[1]));
        }
    }
    out
}

/// `0100007F:11D6` -> `127.0.0.1:4566`; IPv6 as `[hex groups]:port`.
fn decode_address(hex: &str) -> String {
    let (ip, port) = hex.split_once(':').unwrap_or((hex, "0"));
    let port = u16::from_str_radix(port, 16).unwrap_or(0);
    let bytes: Vec<u8> = (0..ip.len() / 2)
        .filter_map(|i| u8::from_str_radix(&ip[2 * i..2 * i + 2], 16).ok())
        .collect();
    if bytes.len() == 4 {
        // /proc shows the address as one little-endian 32-bit word.
        return format!("{}.{}.{}.{}:{port}", bytes[3], bytes[2], bytes[1], bytes[0]);
    }
    // /proc shows IPv6 as four little-endian 32-bit words.
    let mut v6 = [0u8; 16];
    for w in 0..4 {
        for i in 0..4 {
            v6[4 * w + i] = bytes.get(4 * w + 3 - i).copied().unwrap_or(0);
        }
    }
    format!("[{}]:{port}", std::net::Ipv6Addr::from(v6))
}

/// Whether `addr` (as [`listening_addresses`] gives it) accepts connections from this machine
/// only.
pub fn is_loopback(addr: &str) -> bool {
    addr.starts_with("127.") || addr.starts_with("[::1]") || addr.starts_with("[::ffff:127.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_decode_like_ss_shows_them() {
        assert_eq!(decode_address("0100007F:11D6"), "127.0.0.1:4566");
        assert_eq!(decode_address("00000000:11D6"), "0.0.0.0:4566");
        assert_eq!(
            decode_address("00000000000000000000000001000000:2008"),
            "[::1]:8200"
        );
        assert!(is_loopback("127.0.0.1:4566") && is_loopback("[::1]:8200"));
        assert!(!is_loopback("0.0.0.0:4566") && !is_loopback("[::]:8200"));
    }
}
