//! The command line. Two shapes share one program:
//!
//! ```text
//! notation-plugin-check <PLUGIN_EXECUTABLE> --key-id <ID> [--plugin-config KEY=VALUE]...
//!     [--envelope jws|cose|both] [--blob FILE] [--out DIR] [--json]
//! notation-plugin-check verify <ENVELOPE_FILE> --blob FILE --trust-anchor ROOT.pem [--json]
//! ```
//!
//! The first word decides: `verify` selects the verifier; anything else is the plugin path (a
//! plugin file literally named `verify` is given as `./verify`).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use plugin_protocol::contract::PluginConfig;

use crate::envelope::Format;

const USAGE: &str = "notation-plugin-check <PLUGIN_EXECUTABLE> --key-id <ID> [--plugin-config KEY=VALUE]... [--envelope jws|cose|both] [--blob FILE] [--out DIR] [--json]\n       notation-plugin-check verify <ENVELOPE_FILE> --blob FILE --trust-anchor ROOT.pem [--json]";

/// Plays notation's side of the plugin contract against any Notation signing plugin, checks
/// every answer the way notation-go and notation-core-go do (stricter where notation is lax),
/// and assembles real Notary JWS and COSE blob signatures.
#[derive(Debug, Parser)]
#[command(
    name = "notation-plugin-check",
    version,
    override_usage = USAGE,
    after_help = "Exit status: 0 every check passed, 1 a check failed, 2 usage error.\n\
                  `notation-plugin-check verify --help` describes the verifier."
)]
pub struct CheckArgs {
    /// The plugin executable, named notation-<name> (or the word `verify`: see `verify --help`)
    #[arg(value_name = "PLUGIN_EXECUTABLE")]
    pub plugin: PathBuf,
    /// The key id, exactly as `notation key add --id` would store it
    #[arg(long, value_name = "ID")]
    pub key_id: String,
    /// pluginConfig passed with every request, as `notation key add --plugin-config`
    #[arg(long = "plugin-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub plugin_config: Vec<(String, String)>,
    /// Which envelope formats to sign and assemble
    #[arg(long, value_enum, default_value_t = EnvelopeChoice::Both)]
    pub envelope: EnvelopeChoice,
    /// The blob to sign (default: a small built-in sample)
    #[arg(long, value_name = "FILE")]
    pub blob: Option<PathBuf>,
    /// Write <blob name>.jws.sig, <blob name>.cose.sig and chain.pem here (and, without
    /// --blob, the signed sample itself, for `verify --blob`)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// Verifies a blob signature envelope made by `notation-plugin-check` (or `notation blob
/// sign`): envelope format (JWS or COSE, detected), signature, the chain up to the trust anchor,
/// every certificate rule, and that the payload's digest matches the blob.
#[derive(Debug, Parser)]
#[command(
    name = "notation-plugin-check verify",
    version,
    after_help = "Exit status: 0 the envelope verifies, 1 it does not, 2 usage error."
)]
pub struct VerifyArgs {
    /// The envelope file (<blob>.jws.sig or <blob>.cose.sig)
    #[arg(value_name = "ENVELOPE_FILE")]
    pub envelope: PathBuf,
    /// The signed blob
    #[arg(long, value_name = "FILE")]
    pub blob: PathBuf,
    /// PEM (or DER) root certificate(s) to trust
    #[arg(long = "trust-anchor", value_name = "ROOT.pem")]
    pub trust_anchor: PathBuf,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnvelopeChoice {
    Jws,
    Cose,
    Both,
}

impl EnvelopeChoice {
    pub fn formats(self) -> Vec<Format> {
        match self {
            Self::Jws => vec![Format::Jws],
            Self::Cose => vec![Format::Cose],
            Self::Both => vec![Format::Jws, Format::Cose],
        }
    }
}

impl CheckArgs {
    pub fn config(&self) -> PluginConfig {
        self.plugin_config.iter().cloned().collect()
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

#[derive(Debug)]
pub enum Cli {
    Check(CheckArgs),
    Verify(VerifyArgs),
}

/// Parses argv (program name first).
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.get(1).is_some_and(|a| a == "verify") {
        let rest = std::iter::once(OsString::from("notation-plugin-check verify"))
            .chain(args.into_iter().skip(2));
        VerifyArgs::try_parse_from(rest).map(Cli::Verify)
    } else {
        CheckArgs::try_parse_from(args).map(Cli::Check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_parse() {
        let Cli::Check(c) = parse([
            "x",
            "./notation-softkey",
            "--key-id",
            "k",
            "--plugin-config",
            "a=b=c",
            "--envelope",
            "cose",
            "--json",
        ])
        .unwrap() else {
            panic!("expected the check shape")
        };
        assert_eq!(c.plugin, PathBuf::from("./notation-softkey"));
        assert_eq!(c.config()["a"], "b=c");
        assert_eq!(c.envelope.formats(), [Format::Cose]);
        assert!(c.json);
        let Cli::Verify(v) = parse([
            "x",
            "verify",
            "a.jws.sig",
            "--blob",
            "a",
            "--trust-anchor",
            "r.pem",
        ])
        .unwrap() else {
            panic!("expected the verify shape")
        };
        assert_eq!(v.envelope, PathBuf::from("a.jws.sig"));
        let e = parse(["x", "p", "--plugin-config", "novalue"]).unwrap_err();
        assert!(e.to_string().contains("KEY=VALUE"), "{e}");
        let e = parse(["x", "verify", "a.sig"]).unwrap_err();
        assert!(e.to_string().contains("--blob"), "{e}");
    }
}
