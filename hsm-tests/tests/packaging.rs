//! Release archives and installation, checked the way `notation plugin install` and notation's
//! plugin manager look at them. Plugins are discovered like the scripts do, so a plugin added
//! later is covered without editing this test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use plugin_protocol::client::PluginClient;
use plugin_protocol::contract::GetMetadataResponse;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The target directory this test was built in, so the scripts' builds reuse it.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn run_script(script: &str, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut cmd = Command::new(repo().join("scripts").join(script));
    cmd.args(args).env("CARGO_TARGET_DIR", target_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (plugin name, version) of every plugin crate, from cargo metadata.
fn plugins() -> Vec<(String, String)> {
    let out = Command::new("bash")
        .arg("-c")
        .arg("source scripts/plugins.sh && list_plugins")
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[1].to_owned(), f[2].to_owned())
        })
        .collect();
    assert!(
        list.iter().any(|(n, _)| n == "pkcs11"),
        "plugins found: {list:?}"
    );
    list
}

/// Every plugin has the shared `trust export` command, checked before any backend is touched.
#[test]
fn every_plugin_has_trust_export() {
    let dir = tempfile::tempdir().unwrap();
    for (name, _) in plugins() {
        let exe = hsm_tests::plugin_binary(&name);
        let help = Command::new(&exe).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        assert!(help.contains("\n  trust "), "{name}: {help}");
        let out = Command::new(&exe)
            .args(["trust", "export", "--help"])
            .output()
            .unwrap();
        let usage = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {usage}");
        assert!(usage.contains("--any-identity"), "{name}: {usage}");
        let out = Command::new(&exe)
            .args(["trust", "export", "--key-id", "k", "--out"])
            .arg(dir.path())
            .args(["--scope", "registry.example.com/app:v1"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("no tag or digest"), "{name}: {stderr}");
    }
}

/// Builds every binary of the workspace the way the other tests do (one build, the test run's
/// features), so the scripts package and install those with --no-build.
fn built_by_this_test_run() {
    hsm_tests::checker_binary();
}

fn metadata(exe: &Path) -> GetMetadataResponse {
    let inv = PluginClient::new(exe).get_metadata(None).unwrap();
    assert!(inv.succeeded(), "{}: {}", exe.display(), inv.stderr_text());
    inv.response().unwrap()
}

#[test]
fn every_plugin_has_an_archive_notation_accepts() {
    let out = tempfile::tempdir().unwrap();
    built_by_this_test_run();
    run_script(
        "package.sh",
        &[
            "--profile",
            "dev",
            "--no-build",
            "--out",
            out.path().to_str().unwrap(),
        ],
        &[],
    );
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };

    let sums = std::fs::read_to_string(out.path().join("checksums.txt")).unwrap();
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg("checksums.txt")
        .current_dir(out.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sha256sum -c: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    for (name, version) in plugins() {
        let archive = format!("notation-{name}_{version}_linux_{arch}.tar.gz");
        assert!(
            sums.contains(&format!("  {archive}\n")),
            "{archive} missing from checksums.txt:\n{sums}"
        );
        let unpacked = tempfile::tempdir().unwrap();
        let tar = Command::new("tar")
            .args(["-xzf"])
            .arg(out.path().join(&archive))
            .arg("-C")
            .arg(unpacked.path())
            .status()
            .unwrap();
        assert!(tar.success(), "unpack {archive}");
        let mut entries: Vec<String> = std::fs::read_dir(unpacked.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        let exe_name = format!("notation-{name}");
        assert_eq!(
            entries,
            ["LICENSE".to_owned(), exe_name.clone()],
            "{archive} must hold exactly the executable and LICENSE"
        );
        let exe = unpacked.path().join(&exe_name);
        let meta = std::fs::symlink_metadata(&exe).unwrap();
        assert!(meta.file_type().is_file(), "a regular file, not a link");
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        let m = metadata(&exe);
        assert_eq!(
            (m.name.as_str(), m.version.as_str()),
            (name.as_str(), version.as_str()),
            "metadata matches the archive name"
        );
    }
}

#[test]
fn install_lays_plugins_out_as_notation_does() {
    let config = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    built_by_this_test_run();
    let bin_dir = bin.path().to_str().unwrap();
    let stdout = run_script(
        "install.sh",
        &["--profile", "dev", "--no-build", "--bin-dir", bin_dir],
        &[("XDG_CONFIG_HOME", config.path())],
    );
    assert!(
        stdout.contains("notation key add"),
        "prints the next commands: {stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{bin_dir} is not on PATH; add it:  export PATH=\"{bin_dir}:$PATH\""
        )),
        "prints the PATH line: {stdout}"
    );
    // The operator commands and the checker are where a shell finds them.
    let checker = bin.path().join("notation-plugin-check");
    let meta = std::fs::symlink_metadata(&checker).unwrap();
    assert!(meta.file_type().is_file() && meta.permissions().mode() & 0o111 != 0);
    let help = Command::new(&checker).arg("--help").output().unwrap();
    assert!(
        help.status.success(),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
    for (name, _) in plugins() {
        let link = bin.path().join(format!("notation-{name}"));
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            config
                .path()
                .join(format!("notation/plugins/{name}/notation-{name}")),
            "{name}"
        );
    }
    for (name, version) in plugins() {
        let dir = config.path().join("notation/plugins").join(&name);
        let exe = dir.join(format!("notation-{name}"));
        let meta =
            std::fs::symlink_metadata(&exe).unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        assert!(meta.file_type().is_file() && !meta.file_type().is_symlink());
        assert_eq!(meta.permissions().mode() & 0o777, 0o755);
        let m = metadata(&exe);
        assert_eq!(m.name, name, "metadata name equals the directory name");
        assert_eq!(m.version, version);
    }
    // The conformance checker's installation rules (and everything else) pass on the
    // installed plugin, signing with a SoftHSM key.
    let installed = config
        .path()
        .join("notation/plugins/pkcs11/notation-pkcs11");
    let token = hsm_tests::softhsm::SoftToken::new("installed");
    let uri = token.generate("k", plugin_protocol::KeySpec::Ec256);
    let ca = plugin_protocol::testca::TestCa::new("CN=Install Root");
    token.import_chain(
        &uri,
        &ca.issue_leaf(&token.public_key(&uri), "CN=installed"),
    );
    let env: Vec<(String, String)> = token.env();
    let env = hsm_tests::env_refs(&env);
    hsm_tests::check_and_verify(
        &installed,
        &uri,
        &[],
        &env,
        &ca.root_pem(),
        token.dir.path(),
    );

    // Installing again replaces the files (an upgrade), it does not fail.
    run_script(
        "install.sh",
        &[
            "--profile",
            "dev",
            "--no-build",
            "--bin-dir",
            bin_dir,
            "pkcs11",
        ],
        &[("XDG_CONFIG_HOME", config.path())],
    );
}

/// Release builds of the remote plugins are linked statically against musl, and the scripts
/// find each executable where its build put it (`<arch>-unknown-linux-musl/release` for those,
/// `release` or `debug` otherwise).
#[test]
fn static_release_builds_and_where_the_scripts_find_them() {
    let rows = String::from_utf8(
        Command::new("bash")
            .arg("-c")
            .arg("source scripts/plugins.sh && list_plugins")
            .current_dir(repo())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for (name, want) in [
        ("aws-kms", "static"),
        ("azure-keyvault", "static"),
        ("gcp-kms", "static"),
        ("hashicorp-vault", "static"),
        ("pkcs11", "dynamic"),
        ("yubikey", "dynamic"),
    ] {
        assert!(
            rows.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == [&format!("notation-{name}"), name, "0.1.0", want]),
            "{name} should be {want}:\n{rows}"
        );
    }
    let dir = |args: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("source scripts/plugins.sh && plugin_dir {args}"))
            .env("CARGO_TARGET_DIR", "/t")
            .current_dir(repo())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(
        dir("release x86_64-unknown-linux-gnu static"),
        "/t/x86_64-unknown-linux-musl/release"
    );
    assert_eq!(
        dir("release aarch64-unknown-linux-gnu dynamic"),
        "/t/aarch64-unknown-linux-gnu/release"
    );
    assert_eq!(dir("release '' dynamic"), "/t/release");
    assert_eq!(
        dir("dev '' static"),
        "/t/debug",
        "only release builds are static"
    );
    assert_eq!(
        dir("release aarch64-apple-darwin static"),
        "/t/aarch64-apple-darwin/release",
        "static means musl on Linux only"
    );
    let off = Command::new("bash")
        .arg("-c")
        .arg("source scripts/plugins.sh && plugin_dir release x86_64-unknown-linux-gnu static")
        .env("CARGO_TARGET_DIR", "/t")
        .env("NOTATION_PLUGINS_NO_MUSL", "1")
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&off.stdout).trim(),
        "/t/x86_64-unknown-linux-gnu/release",
        "without musl, a dynamic build"
    );
    assert!(String::from_utf8_lossy(&off.stderr).contains("built dynamic"));
}

/// The static (musl) build of a remote plugin works where the release one runs: no shared
/// library at all, names resolved by musl's resolver (`localhost` from /etc/hosts), the system
/// trust store read by the plugin over HTTPS, and a signature through the checker against
/// OpenBao, verified. (scripts/test.sh builds it; a dev build has the same linking.)
#[test]
fn a_static_musl_plugin_signs_against_openbao() {
    let host = String::from_utf8(Command::new("rustc").arg("-vV").output().unwrap().stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .unwrap();
    let musl = host.replace("-linux-gnu", "-linux-musl");
    let target_dir = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .unwrap()
        .to_path_buf();
    let exe = target_dir
        .join(&musl)
        .join("debug/notation-hashicorp-vault");
    if !exe.exists() {
        let built = Command::new("cargo")
            .args([
                "build",
                "--quiet",
                "--target",
                &musl,
                "-p",
                "notation-hashicorp-vault",
            ])
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(repo())
            .status()
            .unwrap();
        assert!(built.success(), "cargo build --target {musl}");
    }
    let dynamic = Command::new("readelf")
        .arg("-d")
        .arg(&exe)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&dynamic.stdout).contains("(NEEDED)"),
        "no shared library: {}",
        String::from_utf8_lossy(&dynamic.stdout)
    );
    // The checker wants the executable named notation-<name> in a folder of its own.
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("notation-hashicorp-vault");
    std::fs::copy(&exe, &plugin).unwrap();

    let api = hsm_tests::openbao::Api::root();
    let name = hsm_tests::unique("musl");
    api.create_key(&name, "ecdsa-p256");
    let ca = plugin_protocol::testca::TestCa::new("CN=musl root,O=Test,ST=WA,C=US");
    let chain = ca.issue_leaf(&api.public_key(&name, None), "CN=musl,O=Test,ST=WA,C=US");
    let chain_file = dir.path().join("chain.pem");
    std::fs::write(&chain_file, plugin_protocol::chain::to_pem_bundle(&chain)).unwrap();
    let config = [("certificate_chain", chain_file.to_str().unwrap())];
    let by_name = api.addr.replace("127.0.0.1", "localhost");
    let proxy = hsm_tests::tls_proxy::TlsProxy::start(api.addr.trim_start_matches("http://"));
    let ca_file = proxy.ca.display().to_string();
    for (i, (addr, extra)) in [
        (by_name.as_str(), vec![]),
        (
            proxy.url.as_str(),
            vec![("SSL_CERT_FILE", ca_file.as_str()), ("SSL_CERT_DIR", "")],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut env = hsm_tests::env_with(hsm_tests::openbao::root_env(), &[("VAULT_ADDR", addr)]);
        env = hsm_tests::env_with(env, &extra);
        let out = dir.path().join(format!("check-{i}"));
        std::fs::create_dir_all(&out).unwrap();
        hsm_tests::check_and_verify(
            &plugin,
            &name,
            &config,
            &hsm_tests::env_refs(&env),
            &ca.root_pem(),
            &out,
        );
    }
}
