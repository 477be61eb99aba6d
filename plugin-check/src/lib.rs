//! `notation-plugin-check`: plays notation's side of the plugin contract against any Notation
//! signing plugin, checks every answer the way notation-go and notation-core-go do (and stricter
//! where notation is lax), assembles real Notary JWS and COSE blob signatures, and verifies them.
//!
//! The contract types, the plugin client, key specs, signature diagnosis and certificate-chain
//! rules come from `plugin-protocol`; this crate adds the envelope formats, the checks, the
//! probes and the report.
#![forbid(unsafe_code)]

pub mod cose;
pub mod envelope;
pub mod install;
pub mod jws;
pub mod options;
pub mod payload;
pub mod probes;
pub mod report;
pub mod response;
pub mod run;
pub mod sign;
pub mod verify;

use std::ffi::OsString;

/// Exit codes: every check passed, a check failed, usage error.
pub const EXIT_PASS: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// The whole program: parses `args`, runs, prints the report, returns the exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match options::parse(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_PASS
            };
        }
    };
    let (result, json) = match cli {
        options::Cli::Check(args) => (run::check(&args).map_err(|e| e.0), args.json),
        options::Cli::Verify(args) => (
            verify::run(&args.envelope, &args.blob, &args.trust_anchor),
            args.json,
        ),
    };
    match result {
        Ok(report) => {
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            if report.passed {
                EXIT_PASS
            } else {
                EXIT_FAIL
            }
        }
        Err(why) => {
            eprintln!("notation-plugin-check: error: {why}");
            EXIT_USAGE
        }
    }
}
