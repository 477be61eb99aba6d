//! A PIN inside a mistyped PKCS#11 URI reaches no message, no output and no debug log line, on
//! the protocol commands and the operator commands alike.

use hsm_tests::softhsm::{SoftToken, SOFTHSM_MODULE};
use plugin_protocol::KeySpec;

const PIN: &str = "7391-secret-pin";

#[test]
fn a_pin_in_a_mistyped_uri_is_never_shown() {
    let token = SoftToken::new("leaks");
    token.generate("k", KeySpec::Ec256);
    let log = token.dir.path().join("plugin.log");
    let m = format!("module-path={SOFTHSM_MODULE}");
    let uris = [
        // pin-value in the path part (it belongs in the query)
        format!("pkcs11:token=leaks;object=k;pin-value={PIN}?{m}"),
        // any case in the query
        format!("pkcs11:token=leaks;object=k?{m}&Pin-Value={PIN}"),
        format!("pkcs11:token=leaks;object=k?{m}&PIN-VALUE={PIN}"),
        format!("pkcs11:token=leaks;object=k?{m}&pin%2Dvalue={PIN}"),
        // a missing '='
        format!("pkcs11:token=leaks;object=k?{m}&pin-value{PIN}"),
        // a typo of the attribute name
        format!("pkcs11:token=leaks;object=k?{m}&pinvalue={PIN}"),
        // valid pin-value, then another mistake
        format!("pkcs11:token=leaks;object=k;bogus=1?{m}&pin-value={PIN}"),
        format!("pkcs11:token=leaks;object=k;slot-id=x?{m}&pin-value={PIN}"),
        format!("pkcs11:token=nope;object=k?{m}&pin-value={PIN}"),
        format!("pkcs11:token=leaks;object=nope?{m}&pin-value={PIN}"),
        format!("PKCS11:token=leaks;pin-value={PIN}"),
    ];
    let client = token
        .client()
        .with_env("NOTATION_PLUGIN_LOG", log.display().to_string());
    for uri in &uris {
        let mut outputs = Vec::new();
        let inv = client.describe_key(uri, None).unwrap();
        assert!(!inv.succeeded(), "{uri} should fail");
        outputs.push(inv.stderr_text());
        outputs.push(String::from_utf8_lossy(&inv.stdout).into_owned());
        let inv = client
            .generate_signature(
                uri,
                KeySpec::Ec256,
                KeySpec::Ec256.hash_algorithm(),
                b"x",
                None,
            )
            .unwrap();
        outputs.push(inv.stderr_text());
        for args in [
            vec!["keys", uri.as_str()],
            vec!["generate-key", "--key-id", uri.as_str(), "--spec", "EC-256"],
            vec!["public-key", "--key-id", uri.as_str()],
            vec![
                "certificate",
                "self-signed",
                "--key-id",
                uri.as_str(),
                "--subject",
                "CN=x",
            ],
        ] {
            let out = std::process::Command::new(&token.plugin)
                .args(&args)
                .envs(token.env())
                .env("NOTATION_PLUGIN_LOG", &log)
                .output()
                .unwrap();
            outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
            outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        for text in &outputs {
            assert!(!text.contains(PIN), "the PIN of {uri} leaked: {text}");
        }
    }
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!logged.is_empty(), "the debug log was written");
    assert!(
        !logged.contains(PIN),
        "the PIN leaked into the log:\n{logged}"
    );
}

#[test]
fn a_pin_file_that_is_a_fifo_or_a_device_is_refused_at_once() {
    let token = SoftToken::new("fifo");
    token.generate("k", KeySpec::Ec256);
    let fifo = token.dir.path().join("pin.fifo");
    plugin_protocol::client::make_fifo(&fifo);
    let mut client = token.client();
    client.timeout = std::time::Duration::from_secs(15);
    for path in [fifo.display().to_string(), "/dev/zero".to_owned()] {
        let uri = format!(
            "pkcs11:token=fifo;object=k?module-path={SOFTHSM_MODULE}&pin-source=file:{path}"
        );
        let inv = client.describe_key(&uri, None).expect("answers by itself");
        hsm_tests::assert_error(
            &inv,
            "VALIDATION_ERROR",
            &["not a regular file", "PIN file"],
        );
        let inv = client
            .describe_key(
                &token.uri("k").replace(
                    &format!("&pin-source=file:{}", token.pin_file().display()),
                    "",
                ),
                hsm_tests::config(&[("pin_file", &path)]),
            )
            .expect("answers by itself");
        hsm_tests::assert_error(&inv, "VALIDATION_ERROR", &["not a regular file"]);
    }
}
