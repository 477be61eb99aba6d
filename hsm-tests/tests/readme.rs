//! The READMEs' command blocks, run as written, so a README cannot drift from the code.
//!
//! Every ```sh block of every README carries a marker on the line before it:
//! - `<!-- readme-test: run BACKEND -->`: the block is run by this test with bash (`set -euo
//!   pipefail`) in a fresh folder, with the workspace's plugins installed and on PATH and
//!   `notation-plugin-check` on PATH (as `scripts/install.sh` puts them), `scripts/` and
//!   `softhsm/` reachable as in a checkout, and the
//!   local backend BACKEND (`openbao`, `localstack`, `keyvault-emulator`, `gcpkms-emulator`,
//!   `softhsm`, `piv-card` or `none`) running. `piv-card` is a factory-fresh virtual YubiKey
//!   (scripts/piv-card.sh), held under the card lock, with ykman on PATH, pcscd's socket in
//!   PCSCLITE_CSOCK_NAME and the cards' state in PIV_CARD_DIR. The `notation` CLI itself cannot be installed here (no package in the registries
//!   this machine reaches): each `notation ...` line is printed as not run, and everything else
//!   runs.
//! - `<!-- readme-test: not-run REASON -->`: the block needs what no test here has (a real cloud
//!   account, a hardware token, a release download); REASON says which.
//!
//! A block without a marker fails the test, so a new block is either run or says why not.

use std::path::{Path, PathBuf};
use std::process::Command;

use hsm_tests::{openbao, repo, unique};

struct Block {
    file: PathBuf,
    line: usize,
    marker: Option<String>,
    text: String,
}

fn readmes() -> Vec<PathBuf> {
    let root = repo();
    let mut files = vec![root.join("README.md"), root.join("plugin-check/README.md")];
    let mut plugins: Vec<PathBuf> = std::fs::read_dir(root.join("plugins"))
        .unwrap()
        .map(|e| e.unwrap().path().join("README.md"))
        .filter(|p| p.is_file())
        .collect();
    plugins.sort();
    files.extend(plugins);
    files
}

fn sh_blocks(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_end() == "```sh" {
            let marker = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!-- readme-test: "))
                .and_then(|l| l.strip_suffix(" -->"))
                .map(str::to_owned);
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && lines[end].trim_end() != "```" {
                end += 1;
            }
            blocks.push(Block {
                file: file.to_path_buf(),
                line: i + 1,
                marker,
                text: lines[start..end].join("\n"),
            });
            i = end;
        }
        i += 1;
    }
    blocks
}

/// The plugins laid out as `scripts/install.sh` lays them out: regular files (hard links to the
/// workspace's binaries) in `<config>/notation/plugins/<name>/`, and a bin folder with links to
/// them and the checker. Returns (XDG_CONFIG_HOME, bin folder).
fn installed() -> (tempfile::TempDir, tempfile::TempDir) {
    let (config, bin) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let checker = hsm_tests::checker_binary();
    std::os::unix::fs::symlink(&checker, bin.path().join("notation-plugin-check")).unwrap();
    for entry in std::fs::read_dir(repo().join("plugins")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let exe = format!("notation-{name}");
        let dir = config.path().join("notation/plugins").join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let built = checker.with_file_name(&exe);
        if std::fs::hard_link(&built, dir.join(&exe)).is_err() {
            std::fs::copy(&built, dir.join(&exe)).unwrap();
        }
        std::os::unix::fs::symlink(dir.join(&exe), bin.path().join(&exe)).unwrap();
    }
    (config, bin)
}

/// What the block's shell starts with: strict mode, and `notation` reported as not run.
const PRELUDE: &str = r#"set -euo pipefail
notation() { echo "readme-test: not run (no notation CLI here): notation $*"; }
"#;

fn run_block(block: &Block, backend: &str, config: &Path, bins: &Path) {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["scripts", "softhsm"] {
        std::os::unix::fs::symlink(repo().join(folder), dir.path().join(folder)).unwrap();
    }
    let mut path = vec![bins.to_path_buf()];
    let mut cmd = Command::new("bash");
    let mut _card = None;
    match backend {
        "openbao" => {
            // A namespace of its own: the block's mounts and keys do not meet other tests'.
            let server = openbao::server();
            let namespace = unique("readme");
            let out = Command::new(&server.bao_bin)
                .args(["namespace", "create", &namespace])
                .envs(server.root_env())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            cmd.env("VAULT_NAMESPACE", &namespace);
            cmd.envs(server.root_env());
            path.push(server.bao_bin.parent().unwrap().to_path_buf());
        }
        "localstack" => hsm_tests::localstack::start(),
        "keyvault-emulator" => hsm_tests::start_backend("keyvault-emulator.sh"),
        "gcpkms-emulator" => hsm_tests::start_backend("gcpkms-emulator.sh"),
        "piv-card" => {
            let card = hsm_tests::piv_card::PivCard::acquire();
            cmd.envs(card.env());
            // The cards' state directory (a block names card 1's attestation root).
            cmd.env("PIV_CARD_DIR", &card.vars["PIV_CARD_DIR"]);
            let ykman = PathBuf::from(&card.vars["PIV_CARD_YKMAN"]);
            // Only ykman, not the rest of its venv.
            let ykman_dir = dir.path().join(".ykman");
            std::fs::create_dir(&ykman_dir).unwrap();
            std::os::unix::fs::symlink(&ykman, ykman_dir.join("ykman")).unwrap();
            path.push(ykman_dir);
            _card = Some(card);
        }
        "none" => {}
        other => panic!(
            "{}:{}: unknown backend '{other}'",
            block.file.display(),
            block.line
        ),
    }
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let script = format!("{PRELUDE}{}\n", block.text);
    let out = cmd
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", std::env::join_paths(path).unwrap())
        .env("XDG_CONFIG_HOME", config)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}:{} (readme-test: run {backend}) failed with {}:\n--- block ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        block.file.display(),
        block.line,
        out.status,
        block.text,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_readme_command_block_is_run_or_says_why_not() {
    let blocks: Vec<Block> = readmes().iter().flat_map(|f| sh_blocks(f)).collect();
    assert!(blocks.len() > 20, "found only {} blocks", blocks.len());
    let unmarked: Vec<String> = blocks
        .iter()
        .filter(|b| b.marker.is_none())
        .map(|b| format!("{}:{}", b.file.display(), b.line))
        .collect();
    assert!(
        unmarked.is_empty(),
        "command blocks without a readme-test marker (run BACKEND, or not-run REASON): {unmarked:?}"
    );
    let (config, bins) = installed();
    let mut ran = 0;
    for block in &blocks {
        let marker = block.marker.as_deref().unwrap();
        if let Some(backend) = marker.strip_prefix("run ") {
            run_block(block, backend.trim(), config.path(), bins.path());
            ran += 1;
        } else {
            let reason = marker.strip_prefix("not-run ").unwrap_or_else(|| {
                panic!(
                    "{}:{}: marker '{marker}' is neither 'run BACKEND' nor 'not-run REASON'",
                    block.file.display(),
                    block.line
                )
            });
            assert!(
                reason.trim().len() > 10,
                "{}:{}: say why",
                block.file.display(),
                block.line
            );
        }
    }
    eprintln!("{ran} of {} README command blocks run", blocks.len());
    assert!(ran >= 4, "only {ran} blocks run");
}
