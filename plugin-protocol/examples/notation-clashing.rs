//! A test-only plugin built with an operator command that takes a protocol command's name, for
//! the binary-boundary test that such a plugin refuses to start rather than hide one of them.

/// The plugin's own commands; `describe-key` is the protocol's.
#[derive(clap::Subcommand)]
enum Clashing {
    /// Would hide the protocol's describe-key.
    DescribeKey,
}

impl plugin_protocol::operator::OperatorCommands for Clashing {
    fn run(self) -> plugin_protocol::Result<()> {
        Ok(())
    }
}

fn main() {
    plugin_protocol::run_with::<plugin_protocol::softkey::SoftKeyBackend, Clashing>(
        &plugin_protocol::softkey::INFO,
    )
}
