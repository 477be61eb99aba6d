//! `notation-pkcs11`: the Notation signing plugin for PKCS#11 tokens and HSMs.
#![forbid(unsafe_code)]

mod commands;
mod key;
mod pin;
mod plugin;
mod token;
mod uri;

fn main() {
    plugin_protocol::run_with::<plugin::Pkcs11Backend, commands::Cmd>(&plugin::INFO)
}
