//! The whole sign run: installation rules, describe-key, one signing conversation per envelope
//! format, negative probes; then the files under `--out`.

use std::path::{Path, PathBuf};

use plugin_protocol::chain::to_pem_bundle;
use plugin_protocol::client::PluginClient;

use crate::install;
use crate::options::CheckArgs;
use crate::probes;
use crate::report::{millis, Conversation, Report};
use crate::sign::{describe_key, sign_envelope};

/// The blob signed when `--blob` is not given.
pub const SAMPLE_BLOB_NAME: &str = "sample-artifact.txt";
pub const SAMPLE_BLOB: &[u8] = b"notation-plugin-check sample artifact\n";

/// A problem with the command line or the files it names (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

/// Runs every check against the plugin of `args`.
pub fn check(args: &CheckArgs) -> Result<Report, UsageError> {
    let plugin = &args.plugin;
    if std::fs::symlink_metadata(plugin).is_err() {
        return Err(UsageError(format!(
            "plugin executable {} does not exist",
            plugin.display()
        )));
    }
    let (blob_name, blob) = match &args.blob {
        Some(path) => (
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| UsageError(format!("--blob {} is not a file", path.display())))?,
            crate::verify::read_file(path, crate::verify::MAX_BLOB_BYTES, "--blob")
                .map_err(UsageError)?,
        ),
        None => (SAMPLE_BLOB_NAME.to_owned(), SAMPLE_BLOB.to_vec()),
    };
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)
            .map_err(|e| UsageError(format!("cannot create --out {}: {e}", out.display())))?;
    }
    let config = args.config();
    // A relative path without a slash would be looked up in PATH: run the file given.
    let client = PluginClient::new(absolute(plugin));
    let mut report = Report::new("check", plugin.display().to_string());
    report.key_id = Some(args.key_id.clone());

    let name = install::check_file(&mut report, plugin);
    let metadata = match install::check_metadata(&mut report, &client, name.as_deref(), &config) {
        install::Metadata::Answered(_, time) => Some(time),
        install::Metadata::Unusable => None,
        install::Metadata::CannotRun => {
            report.skip(
                "describe-key",
                "signing conversation and negative probes",
                "the plugin cannot be run (above)",
            );
            report.finish();
            return Ok(report);
        }
    };
    let described = describe_key(&mut report, &client, &args.key_id, &config);

    let mut chain_written = false;
    match described {
        Some((spec, describe_time)) => {
            for format in args.envelope.formats() {
                let Some(signed) = sign_envelope(
                    &mut report,
                    &client,
                    &args.key_id,
                    &config,
                    spec,
                    format,
                    &blob,
                ) else {
                    continue;
                };
                if let Some(meta_time) = &metadata {
                    report.sign_conversations.push(Conversation {
                        envelope: format.name().to_owned(),
                        wall_time_ms: millis(*meta_time + describe_time + signed.elapsed),
                    });
                }
                if let Some(out) = &args.out {
                    let path = out.join(format!("{blob_name}.{}.sig", format.name()));
                    write(&mut report, &path, &signed.envelope)?;
                    if !chain_written {
                        write(
                            &mut report,
                            &out.join("chain.pem"),
                            to_pem_bundle(&signed.chain).as_bytes(),
                        )?;
                        if args.blob.is_none() {
                            // The signed sample, so that `verify --blob` can be run on the
                            // envelopes written beside it.
                            write(&mut report, &out.join(SAMPLE_BLOB_NAME), SAMPLE_BLOB)?;
                        }
                        chain_written = true;
                    }
                }
            }
        }
        None => {
            for format in args.envelope.formats() {
                report.skip(
                    &format!("generate-signature ({format})"),
                    "signing conversation",
                    "describe-key gave no usable keySpec (above)",
                );
            }
        }
    }
    probes::run(
        &mut report,
        &client,
        &args.key_id,
        &config,
        described.map(|(s, _)| s),
    );
    report.finish();
    Ok(report)
}

fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

fn write(report: &mut Report, path: &Path, bytes: &[u8]) -> Result<(), UsageError> {
    std::fs::write(path, bytes)
        .map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))?;
    report.files_written.push(path.display().to_string());
    Ok(())
}
