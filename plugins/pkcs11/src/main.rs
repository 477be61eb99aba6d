//! `notation-pkcs11`: the Notation signing plugin for PKCS#11 tokens and HSMs.
// Denied, not forbidden: plugin_protocol::main! allows it for the `#[no_mangle]` C `main`.
#![deny(unsafe_code)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

mod commands;
mod key;
mod pin;
mod plugin;
mod token;
mod uri;

plugin_protocol::main! {
    plugin_protocol::run_with::<plugin::Pkcs11Backend, commands::Cmd>(&plugin::INFO)
}
