//! A backend key opened by an operator command (`--key-id`, `--plugin-config`), and where a
//! command writes what it makes: what the certificate and trust commands share.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::backend::Backend;
use crate::chain::Certificate;
use crate::config::Context;
use crate::error::{PluginError, Result};
use crate::plugin_info::PluginInfo;
use crate::PublicKey;

#[derive(Args, Debug)]
pub(crate) struct KeyArgs {
    /// Key id, exactly as for `notation key add --id`
    #[arg(long)]
    pub(crate) key_id: String,
    /// pluginConfig for the key (repeatable KEY=VALUE), as for `notation key add`
    #[arg(long = "plugin-config", value_parser = crate::operator::key_value)]
    pub(crate) plugin_config: Vec<(String, String)>,
}

#[derive(Args, Debug)]
pub(crate) struct OutArgs {
    /// Write the PEM here (atomically) instead of to stdout
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Replace --out if it exists
    #[arg(long)]
    pub(crate) force: bool,
}

/// A backend key opened for certificate work.
pub(crate) struct BackendKey<B: Backend> {
    pub(crate) ctx: Context,
    pub(crate) backend: B,
    pub(crate) key: B::Key,
    pub(crate) public: PublicKey,
}

impl<B: Backend> BackendKey<B> {
    pub(crate) fn open(
        info: &'static PluginInfo,
        key_id: &str,
        config: &[(String, String)],
    ) -> Result<Self> {
        let (ctx, key_ref) = Context::for_key::<B::KeyRef>(
            info,
            key_id.to_owned(),
            Some(config.iter().cloned().collect()),
        )?;
        let mut backend = B::connect(&ctx, key_ref)?;
        let (key, public) = backend.resolve_key(&ctx)?;
        Ok(Self {
            ctx,
            backend,
            key,
            public,
        })
    }

    /// The chain generate-signature would return for this key: the same sources, the same
    /// rules, the leaf holding the key.
    pub(crate) fn chain(&mut self) -> Result<Vec<Certificate>> {
        crate::pipeline::assemble_chain(&mut self.backend, &self.ctx, &self.key, &self.public)
    }
}

/// Writes `text` to `--out` atomically (refusing to replace a file without `--force`), or to
/// stdout.
pub(crate) fn write_output(out: &OutArgs, text: &str) -> Result<()> {
    let Some(path) = &out.out else {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush())
            .map_err(|e| PluginError::generic(format!("cannot write to stdout: {e}")));
    };
    write_file_atomic(path, text, out.force)
}

/// Writes `text` to `path` through a temporary file in the same folder and a rename, so a reader
/// never sees half a file; refuses to replace an existing file unless `force`.
pub(crate) fn write_file_atomic(path: &Path, text: &str, force: bool) -> Result<()> {
    if path.exists() && !force {
        return Err(PluginError::validation(format!(
            "{} exists; pass --force to replace it",
            path.display()
        )));
    }
    let fail =
        |e: std::io::Error| PluginError::generic(format!("cannot write {}: {e}", path.display()));
    // Beside the file, whatever folder it is in (none, for a bare name): a rename never crosses
    // file systems.
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, text).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_whole_beside_itself_and_replaced_only_with_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pem");
        write_file_atomic(&path, "one", false).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        let e = write_file_atomic(&path, "two", false).unwrap_err();
        assert!(e.message.contains("exists; pass --force"), "{}", e.message);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        write_file_atomic(&path, "two", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        // Nothing else is left in the folder: the temporary file was renamed into place.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["out.pem"]);
        // A folder that cannot be written is named, and the file is not made.
        let e = write_file_atomic(&dir.path().join("no/such/dir/out.pem"), "x", false).unwrap_err();
        assert!(e.message.contains("cannot write"), "{}", e.message);
    }
}
