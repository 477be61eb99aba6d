//! The conformance checker's command line; everything lives in the library.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(notation_plugin_check::main_with_args(std::env::args_os()));
}
