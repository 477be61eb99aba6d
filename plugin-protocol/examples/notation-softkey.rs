//! The test-only software-key plugin, built for the binary-boundary tests.
fn main() {
    plugin_protocol::run::<plugin_protocol::softkey::SoftKeyBackend>(
        &plugin_protocol::softkey::INFO,
    )
}
