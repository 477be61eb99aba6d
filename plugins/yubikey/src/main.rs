//! `notation-yubikey`: the Notation signing plugin `yubikey` for keys in a YubiKey's PIV
//! application, on the `yubikey` crate (no PKCS#11 module needed).
//!
//! describe-key reads the slot's metadata; generate-signature verifies the PIN when the slot's
//! policy needs it (once: a wrong PIN is never retried), asks for a touch on the terminal when
//! the policy needs one, and has the card sign: ECDSA over the digest, or raw RSA over the
//! shared crate's EMSA-PSS encoding. The slot's certificate is the leaf of the chain. Operator
//! commands list the devices and slots, generate keys, import certificates and attest keys.
// Denied, not forbidden: plugin_protocol::main! allows it for the `#[no_mangle]` C `main`.
#![deny(unsafe_code)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

mod attestation;
mod backend;
mod commands;
mod device;
mod metadata;
#[cfg(target_os = "linux")]
mod pcsc_lib;
mod pin;
mod slot;
mod tty;

use plugin_protocol::{ConfigKey, PluginInfo};

pub const PIN_FILE: ConfigKey = ConfigKey::new(
    "pin_file",
    &["YUBIKEY_PIN_FILE"],
    "file holding the PIV PIN (mode 0600); without it the PIN comes from \
     YUBIKEY_PIN or, in a terminal, a prompt on /dev/tty",
);

pub const PIN: ConfigKey = ConfigKey::new_secret(
    "pin",
    &["YUBIKEY_PIN"],
    "the PIV PIN, from the environment only (refused in pluginConfig, which \
     notation stores in plain text)",
);

pub static INFO: PluginInfo = plugin_protocol::plugin_info!(
    "yubikey",
    "Sign artifacts with keys in a YubiKey's PIV application",
    [PIN_FILE, PIN],
    "the YubiKey (the certificate in the key's slot, stored with \
     notation-yubikey import-certificate)",
);

plugin_protocol::main! {
    plugin_protocol::run_with::<backend::YubiKeyBackend, commands::Cmd>(&INFO)
}
