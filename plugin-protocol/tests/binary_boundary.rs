//! The runner at the real process boundary: argv, stdin to EOF, exactly one JSON document on
//! stdout or a JSON error on stderr with exit 1, for the softkey plugin.

mod common;

use base64::Engine as _;
use common::*;
use plugin_protocol::client::Invocation;
use plugin_protocol::contract::{
    DescribeKeyResponse, GenerateSignatureResponse, GetMetadataResponse,
};
use plugin_protocol::{chain, ErrorCode, HashAlgorithm, KeySpec, PublicKey};

fn assert_error(inv: &Invocation, code: ErrorCode, needle: &str) -> String {
    assert_eq!(
        inv.exit_code,
        Some(1),
        "exit code; stderr: {}",
        inv.stderr_text()
    );
    assert!(
        inv.stdout.is_empty(),
        "stdout must be empty, was {:?}",
        String::from_utf8_lossy(&inv.stdout)
    );
    let err = inv
        .error()
        .unwrap_or_else(|| panic!("stderr is not one JSON error: {:?}", inv.stderr_text()));
    assert_eq!(err.error_code, code, "{}", err.error_message);
    assert!(
        err.error_message.contains(needle),
        "message {:?} should mention {needle:?}",
        err.error_message
    );
    err.error_message
}

#[test]
fn metadata_is_static_and_complete() {
    let inv = softkey_plugin().get_metadata(None).unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let m: GetMetadataResponse = inv.response().unwrap();
    assert_eq!(m.name, "softkey");
    assert_eq!(m.supported_contract_versions, ["1.0"]);
    assert_eq!(m.capabilities, ["SIGNATURE_GENERATOR.RAW"]);
    // With any pluginConfig (notation passes the key's config), still static.
    let inv = softkey_plugin()
        .get_metadata(config(&[("no_such_key", "x")]))
        .unwrap();
    assert_eq!(inv.response::<GetMetadataResponse>().unwrap(), m);
}

#[test]
fn all_six_key_specs_sign_and_verify_through_the_binary() {
    let plugin = softkey_plugin();
    for spec in KeySpec::ALL {
        for encoding in ["fixed", "der"] {
            let key = KeyOnDisk::new(spec);
            let cfg = config(&[("ecdsa_encoding", encoding)]);
            let d = plugin.describe_key(&key.key_id(), cfg.clone()).unwrap();
            assert!(d.succeeded(), "{spec}: {}", d.stderr_text());
            let d: DescribeKeyResponse = d.response().unwrap();
            assert_eq!(
                (d.key_id.as_str(), d.key_spec),
                (key.key_id().as_str(), spec)
            );

            let payload = b"eyJhbGciOiJFUzM4NCJ9.eyJ0YXJnZXRBcnRpZmFjdCI6e319";
            let inv = plugin
                .generate_signature(&key.key_id(), spec, spec.hash_algorithm(), payload, cfg)
                .unwrap();
            assert!(inv.succeeded(), "{spec}/{encoding}: {}", inv.stderr_text());
            let r: GenerateSignatureResponse = inv.response().unwrap();
            assert_eq!(r.key_id, key.key_id());
            assert_eq!(r.signing_algorithm, spec.signing_algorithm());
            let b64 = base64::engine::general_purpose::STANDARD;
            let certs: Vec<_> = r
                .certificate_chain
                .iter()
                .map(|c| chain::Certificate::from_der(&b64.decode(c).unwrap(), "response").unwrap())
                .collect();
            assert_eq!(certs.len(), 2, "leaf and root");
            let leaf_key: PublicKey = certs[0].public_key().unwrap();
            let sig = b64.decode(&r.signature).unwrap();
            if let Some(n) = spec.ecdsa_scalar_len() {
                assert_eq!(sig.len(), 2 * n, "{spec}: fixed-width r||s");
            }
            let digest = spec.hash_algorithm().digest(payload);
            plugin_protocol::signature::verify_digest(
                &leaf_key,
                spec.hash_algorithm(),
                &digest,
                &sig,
            )
            .unwrap_or_else(|p| panic!("{spec}/{encoding}: {p}"));
        }
    }
}

#[test]
fn every_runner_error_path_is_a_json_error() {
    let p = softkey_plugin();
    assert_error(
        &p.invoke_raw("describe-key", b"").unwrap(),
        ErrorCode::Validation,
        "empty request",
    );
    assert_error(
        &p.invoke_raw("describe-key", b"{not json").unwrap(),
        ErrorCode::Validation,
        "not valid JSON",
    );
    assert_error(
        &p.invoke_raw("describe-key", b"[1,2]").unwrap(),
        ErrorCode::Validation,
        "JSON object",
    );
    assert_error(
        &p.invoke_raw("describe-key", b"{}").unwrap(),
        ErrorCode::Validation,
        "contractVersion",
    );
    assert_error(
        &p.invoke_raw("describe-key", br#"{"contractVersion":"1.0"}"#)
            .unwrap(),
        ErrorCode::Validation,
        "keyId",
    );
    assert_error(
        &p.invoke_raw("describe-key", br#"{"contractVersion":"2.0","keyId":"k"}"#)
            .unwrap(),
        ErrorCode::UnsupportedContractVersion,
        "2.0",
    );
    assert_error(
        &p.invoke_raw("sign-everything", b"{}").unwrap(),
        ErrorCode::Validation,
        "unknown command 'sign-everything'",
    );
    assert_error(
        &p.invoke_raw("generate-envelope", br#"{"contractVersion":"1.0","keyId":"k","payloadType":"x","signatureEnvelopeType":"y","payload":""}"#).unwrap(),
        ErrorCode::Validation,
        "does not implement generate-envelope",
    );
    assert_error(
        &p.describe_key("/no/such/key.pem", None).unwrap(),
        ErrorCode::Validation,
        "not found",
    );
    assert_error(
        &p.describe_key("k", config(&[("certifcate_chain", "x")]))
            .unwrap(),
        ErrorCode::Validation,
        "unknown pluginConfig key 'certifcate_chain'",
    );
    assert_error(
        &p.describe_key("k", config(&[("timeout_seconds", "soon")]))
            .unwrap(),
        ErrorCode::Validation,
        "timeout_seconds",
    );
    // The request is bounded: 16 MiB and one byte more is refused, not buffered forever.
    let big = vec![b' '; (16 << 20) + 1];
    assert_error(
        &p.invoke_raw("describe-key", &big).unwrap(),
        ErrorCode::Validation,
        "larger than 16 MiB",
    );
}

#[test]
fn generate_signature_input_errors() {
    let p = softkey_plugin();
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let body = |spec: &str, hash: &str, payload: &str| {
        format!(
            r#"{{"contractVersion":"1.0","keyId":{:?},"keySpec":"{spec}","hashAlgorithm":"{hash}","payload":"{payload}"}}"#,
            key.key_id()
        )
    };
    let run = |b: String| p.invoke_raw("generate-signature", b.as_bytes()).unwrap();
    assert_error(
        &run(body("EC-256", "SHA-256", "***")),
        ErrorCode::Validation,
        "not valid base64",
    );
    assert_error(
        &run(body("EC-256", "SHA-512", "aGk=")),
        ErrorCode::Validation,
        "does not match keySpec EC-256",
    );
    assert_error(
        &run(body("RSA-1024", "SHA-256", "aGk=")),
        ErrorCode::Validation,
        "RSA-1024",
    );
    assert_error(
        &run(body("EC-384", "SHA-384", "aGk=")),
        ErrorCode::Validation,
        "is an EC-256 key but the request asks for EC-384",
    );
}

#[test]
fn a_panic_becomes_a_json_error_without_backtrace() {
    let inv = softkey_plugin()
        .with_env("RUST_BACKTRACE", "1")
        .describe_key("test:panic", None)
        .unwrap();
    let msg = assert_error(&inv, ErrorCode::Generic, "deliberate test panic");
    assert!(!inv.stderr_text().contains("stack backtrace"), "{msg}");
}

#[test]
fn libraries_capture_no_backtrace_even_with_rust_backtrace_set() {
    // Azure's SDK builds an error (and so a backtrace) for every missing optional header; no
    // output shows one, so with RUST_BACKTRACE=1 each would be a stack walk for nothing.
    for (var, value) in [("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")] {
        let inv = softkey_plugin()
            .with_env(var, value)
            .describe_key("test:backtrace", None)
            .unwrap();
        assert_error(&inv, ErrorCode::Generic, "a library backtrace is Disabled");
    }
}

#[test]
fn library_output_never_reaches_stdout_or_the_error() {
    let inv = softkey_plugin().describe_key("test:print", None).unwrap();
    // The key id is not a file, so this fails; what the "library" printed must be nowhere.
    assert_error(&inv, ErrorCode::Validation, "not found");
    assert!(!inv.stderr_text().contains("stray"));
}

#[test]
fn debug_log_goes_to_the_named_file_and_never_holds_secrets() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    let log = key.dir.path().join("plugin.log");
    let secret = "s3cr3t-token-value";
    let p = softkey_plugin().with_env("NOTATION_PLUGIN_LOG", log.to_str().unwrap());
    let inv = p
        .generate_signature(
            &key.key_id(),
            KeySpec::Ec256,
            HashAlgorithm::Sha256,
            b"x",
            config(&[("token", secret)]),
        )
        .unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());
    let inv = p
        .describe_key("test:print", config(&[("token", secret)]))
        .unwrap();
    assert!(!inv.succeeded());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("generate-signature") && text.contains("[redacted]"),
        "log: {text}"
    );
    assert!(
        text.contains("stray text a library printed"),
        "library output is kept in the log: {text}"
    );
    assert!(!text.contains(secret), "secret leaked into the log");
    assert!(!inv.stderr_text().contains(secret) && !inv.stderr_text().contains("stray"));

    // Without the variable nothing is written anywhere.
    let quiet = softkey_plugin().describe_key(&key.key_id(), None).unwrap();
    assert!(quiet.succeeded());
    assert_eq!(std::fs::read_to_string(&log).unwrap(), text);
}

#[test]
fn human_help_and_version() {
    let path = softkey_plugin().path;
    let help = std::process::Command::new(&path).output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for needle in [
        "notation key add",
        "certificate_chain",
        "NOTATION_SOFTKEY_CERTIFICATE_CHAIN",
        "NOTATION_PLUGIN_LOG",
        "(secret)",
    ] {
        assert!(text.contains(needle), "help lacks {needle}: {text}");
    }
    let v = std::process::Command::new(&path)
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(v.stdout).unwrap().trim(),
        format!("notation-softkey {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_wrong_pss_salt_is_caught_by_the_self_check() {
    let key = KeyOnDisk::new(KeySpec::Rsa2048);
    let inv = softkey_plugin()
        .generate_signature(
            &key.key_id(),
            KeySpec::Rsa2048,
            HashAlgorithm::Sha256,
            b"x",
            config(&[("pss_salt", "222")]),
        )
        .unwrap();
    assert_error(&inv, ErrorCode::Generic, "222-byte salt");
}

#[test]
fn a_signature_by_another_key_is_caught_by_the_self_check() {
    // The backend answers with a well-formed signature of the right kind, made by a key other
    // than the one it reported (and the leaf certifies): only the self-check can tell.
    for spec in [
        KeySpec::Ec256,
        KeySpec::Ec384,
        KeySpec::Ec521,
        KeySpec::Rsa2048,
    ] {
        for encoding in ["fixed", "der"] {
            let key = KeyOnDisk::new(spec);
            let other = KeyOnDisk::new(spec);
            let inv = softkey_plugin()
                .generate_signature(
                    &key.key_id(),
                    spec,
                    spec.hash_algorithm(),
                    b"x",
                    config(&[("sign_with", &other.key_id()), ("ecdsa_encoding", encoding)]),
                )
                .unwrap();
            let msg = assert_error(&inv, ErrorCode::Generic, "self-check failed");
            assert!(
                msg.contains(&format!("key '{}'", key.key_id()))
                    && msg.contains("leaf certificate 'CN=release signer'")
                    && msg.contains("does not verify with the public key"),
                "{spec} {encoding}: {msg}"
            );
            if spec.is_rsa() {
                break;
            }
        }
    }
}

#[test]
fn an_openssl_chain_is_checked_by_generate_signature_like_any_other() {
    // The plugin path end to end: a chain made by openssl for the plugin's key, through
    // certificate_chain. The Notary profile signs; a leaf without digitalSignature is refused.
    let key = KeyOnDisk::new(KeySpec::Ec256);
    for (leaf_ext, refusal) in [
        (LEAF_EXT, None),
        (
            "keyUsage=critical,nonRepudiation\n",
            Some("certificate 'CN=openssl leaf': leaf keyUsage lacks digitalSignature"),
        ),
    ] {
        let certs = openssl_chain(P256, ROOT_EXT, leaf_ext, &[], Some(&key.key_path));
        let file = key.dir.path().join("openssl-chain.pem");
        std::fs::write(&file, chain::to_pem_bundle(&certs)).unwrap();
        let inv = softkey_plugin()
            .generate_signature(
                &key.key_id(),
                KeySpec::Ec256,
                HashAlgorithm::Sha256,
                b"x",
                config(&[("certificate_chain", file.to_str().unwrap())]),
            )
            .unwrap();
        match refusal {
            None => {
                let r: GenerateSignatureResponse = inv.response().unwrap();
                assert_eq!(r.certificate_chain.len(), 2);
            }
            Some(rule) => {
                assert_error(&inv, ErrorCode::Validation, rule);
            }
        }
    }
}

#[test]
fn a_chain_for_another_key_is_named() {
    let key = KeyOnDisk::new(KeySpec::Ec384);
    let other = KeyOnDisk::new(KeySpec::Ec384);
    let cfg = config(&[(
        "certificate_chain",
        chain_path(&other.key_path).to_str().unwrap(),
    )]);
    let inv = softkey_plugin()
        .generate_signature(
            &key.key_id(),
            KeySpec::Ec384,
            HashAlgorithm::Sha384,
            b"x",
            cfg,
        )
        .unwrap();
    let msg = assert_error(&inv, ErrorCode::Validation, "does not belong to key");
    assert!(
        msg.contains("CN=release signer") && msg.contains(&key.key_id()),
        "{msg}"
    );
}

#[test]
fn no_chain_says_how_to_configure_one() {
    let key = KeyOnDisk::new(KeySpec::Ec256);
    std::fs::remove_file(chain_path(&key.key_path)).unwrap();
    let inv = softkey_plugin()
        .generate_signature(
            &key.key_id(),
            KeySpec::Ec256,
            HashAlgorithm::Sha256,
            b"x",
            None,
        )
        .unwrap();
    assert_error(
        &inv,
        ErrorCode::Validation,
        "set pluginConfig certificate_chain",
    );
}

#[test]
fn a_request_of_exactly_the_limit_is_read_and_answered() {
    // 16 MiB is accepted (the refusal above is for one byte more): the key is looked up.
    let mut request = br#"{"contractVersion":"1.0","keyId":"/no/such/key.pem"}"#.to_vec();
    request.resize(16 << 20, b' ');
    assert_error(
        &softkey_plugin()
            .invoke_raw("describe-key", &request)
            .unwrap(),
        ErrorCode::Validation,
        "key '/no/such/key.pem' not found",
    );
}

#[test]
fn help_lists_operator_commands_only_for_plugins_that_have_them() {
    use plugin_protocol::operator::{command, NoCommands, OperatorCommands};
    #[derive(clap::Subcommand)]
    enum Ops {
        /// list the tokens
        ///
        /// List the tokens, at length.
        Tokens,
    }
    impl OperatorCommands for Ops {
        fn run(self) -> plugin_protocol::Result<()> {
            Ok(())
        }
    }
    let info = &plugin_protocol::softkey::INFO;
    let with = plugin_protocol::runner::help(info, "a key file", &command::<Ops>(info).unwrap());
    assert!(
        with.contains("Operator commands (run `notation-softkey <command> --help`):\n  tokens               list the tokens\n"),
        "{with}"
    );
    assert!(
        with.contains("  trust                export: the chain's root"),
        "{with}"
    );
    let without =
        plugin_protocol::runner::help(info, "a key file", &command::<NoCommands>(info).unwrap());
    assert!(!without.contains("Operator commands"), "{without}");
    assert!(
        without.contains("  token              NOTATION_SOFTKEY_TOKEN, SOFTKEY_TOKEN\n"),
        "{without}"
    );
}

/// A plugin built with an operator command named like a protocol command refuses to start,
/// for that protocol command (by its name alone: no command line is built for it) and for
/// `--help`, rather than let one hide the other; other protocol commands still answer.
#[test]
fn an_operator_command_that_takes_a_protocol_name_stops_the_plugin() {
    let exe = plugin_protocol::client::cargo_binary("plugin-protocol", "notation-clashing", true);
    let clashing = plugin_protocol::client::PluginClient::new(&exe);
    let inv = clashing
        .invoke_raw("describe-key", br#"{"contractVersion":"1.0","keyId":"k"}"#)
        .unwrap();
    assert_error(&inv, ErrorCode::Generic, "operator command 'describe-key'");
    let help = std::process::Command::new(&exe)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&help.stderr).contains("'describe-key'"));
    let inv = clashing.get_metadata(None).unwrap();
    assert!(inv.succeeded(), "{}", inv.stderr_text());
}

/// A write to a closed pipe is an error the runner handles (exit 1), not a death by SIGPIPE:
/// here the JSON error goes to a stderr whose reader has gone. std's start-up ignores SIGPIPE,
/// the glibc entry of `plugin_protocol::main!` skips it, and the runner ignores it itself.
#[test]
fn a_closed_pipe_is_an_exit_1_not_a_death_by_sigpipe() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let exe = plugin_protocol::client::cargo_binary("plugin-protocol", "notation-softkey", true);
    let (reader, writer) = rustix::pipe::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(exe)
        .arg("describe-key")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::from(writer))
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{}").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "the plugin should report the failed write and exit 1: {status}"
    );
}

/// On glibc, a binary built on this crate loads no `libgcc_s.so.1` (0.1 ms of every start):
/// `build.rs` links the unwinder in, as `gcc -static-libgcc` does.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_unwinder_is_linked_in_not_loaded() {
    let exe = plugin_protocol::client::cargo_binary("plugin-protocol", "notation-softkey", true);
    let needed = plugin_protocol::client::needed_libraries(&exe);
    assert!(
        !needed.iter().any(|l| l.contains("libgcc_s")),
        "{} loads libgcc_s: {needed:?}",
        exe.display()
    );
}
