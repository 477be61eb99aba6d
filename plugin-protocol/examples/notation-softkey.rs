//! The test-only software-key plugin, built for the binary-boundary tests, with the same
//! entry as the plugins ([`plugin_protocol::main!`]).
#![deny(unsafe_code)]
#![cfg_attr(all(target_os = "linux", target_env = "gnu", not(test)), no_main)]

use plugin_protocol::softkey::{SoftKeyBackend, INFO};

plugin_protocol::main! {
    plugin_protocol::run::<SoftKeyBackend>(&INFO)
}
