//! Configuration as every plugin reads it: unknown pluginConfig keys are errors that list the
//! known ones, the lookup order pluginConfig > NOTATION_<PLUGIN>_<KEY> > well-known variables,
//! secrets redacted, and the bounds of timeout_seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use plugin_protocol::config::{expand_home, Config, DEFAULT_TIMEOUT};
use plugin_protocol::{ConfigKey, Context, ErrorCode, PluginInfo};

static INFO: PluginInfo = PluginInfo {
    name: "cfg-test",
    description: "config tests",
    version: "0.0.0",
    url: "https://example.invalid",
    key_id_help: "any key id",
    config_keys: &[
        ConfigKey {
            name: "region",
            env: &["CFG_TEST_REGION", "CFG_TEST_DEFAULT_REGION"],
            help: "a setting with two well-known variables",
            secret: false,
        },
        ConfigKey {
            name: "pin",
            env: &[],
            help: "a secret",
            secret: true,
        },
        ConfigKey {
            name: "verbose",
            env: &[],
            help: "a flag",
            secret: false,
        },
    ],
    operator_commands: &[],
    chain_sources_help: "nowhere",
};

fn cfg(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn config(pairs: &[(&str, &str)]) -> Config {
    Config::new(&INFO, cfg(pairs)).unwrap()
}

#[test]
fn an_unknown_key_anywhere_in_the_config_is_refused_with_the_known_keys() {
    // Known keys, shared and the plugin's own, pass.
    config(&[
        ("certificate_chain", "c.pem"),
        ("region", "eu"),
        ("pin", "1"),
    ]);
    Config::new(&INFO, None).unwrap();
    // One typo among correct keys, wherever it sorts, is refused.
    for typo in ["aaa", "regoin", "zzz"] {
        let err =
            Config::new(&INFO, cfg(&[("region", "eu"), (typo, "x"), ("pin", "1")])).unwrap_err();
        assert_eq!(err.code, ErrorCode::Validation);
        assert_eq!(
            err.message,
            format!(
                "unknown pluginConfig key '{typo}' for the cfg-test plugin; known keys: \
                 certificate_chain, ca_certs, timeout_seconds, region, pin, verbose"
            )
        );
    }
    // Context::new (every command's entry) applies the same check.
    let err = Context::new(&INFO, "k".into(), cfg(&[("ca_cert", "x")])).unwrap_err();
    assert!(err.message.contains("'ca_cert'"), "{}", err.message);
}

#[test]
fn lookup_order_and_redaction() {
    // The only test touching these variables, so no other test races with them.
    std::env::remove_var("NOTATION_CFG_TEST_REGION");
    std::env::set_var("CFG_TEST_DEFAULT_REGION", "from-second-wellknown");
    std::env::set_var("CFG_TEST_REGION", "");
    let c = config(&[]);
    assert_eq!(
        c.get_with_source("region"),
        Some((
            "from-second-wellknown".into(),
            "environment variable CFG_TEST_DEFAULT_REGION".into()
        )),
        "an empty variable is skipped"
    );
    std::env::set_var("CFG_TEST_REGION", "from-wellknown");
    assert_eq!(c.get("region").as_deref(), Some("from-wellknown"));
    std::env::set_var("NOTATION_CFG_TEST_REGION", "from-own");
    assert_eq!(
        c.get_with_source("region"),
        Some((
            "from-own".into(),
            "environment variable NOTATION_CFG_TEST_REGION".into()
        ))
    );
    let c = config(&[("region", "from-config")]);
    assert_eq!(
        c.get_with_source("region"),
        Some(("from-config".into(), "pluginConfig 'region'".into()))
    );
    assert_eq!(
        Config::env_name(&INFO, "region"),
        "NOTATION_CFG_TEST_REGION"
    );
    for var in [
        "NOTATION_CFG_TEST_REGION",
        "CFG_TEST_REGION",
        "CFG_TEST_DEFAULT_REGION",
    ] {
        std::env::remove_var(var);
    }
    assert_eq!(config(&[]).get("region"), None);

    let c = config(&[("pin", "123456"), ("region", "eu")]);
    let shown = format!("{c:?}");
    assert!(
        shown.contains("[redacted]") && !shown.contains("123456") && shown.contains("\"eu\""),
        "{shown}"
    );
    assert_eq!(
        c.get_secret("pin").as_deref().map(String::as_str),
        Some("123456")
    );
}

#[test]
fn flags_and_timeouts_are_parsed_strictly() {
    for (v, expected) in [
        ("true", true),
        ("YES", true),
        ("1", true),
        ("no", false),
        ("0", false),
        ("False", false),
    ] {
        assert_eq!(
            config(&[("verbose", v)]).flag("verbose").unwrap(),
            expected,
            "{v}"
        );
    }
    assert!(!config(&[]).flag("verbose").unwrap());
    let err = config(&[("verbose", "maybe")]).flag("verbose").unwrap_err();
    assert_eq!(
        err.message,
        "pluginConfig 'verbose' must be true or false, not 'maybe'"
    );

    assert_eq!(config(&[]).timeout().unwrap(), DEFAULT_TIMEOUT);
    for (v, secs) in [("0.5", 0.5), ("3600", 3600.0), ("42", 42.0)] {
        assert_eq!(
            config(&[("timeout_seconds", v)]).timeout().unwrap(),
            Duration::from_secs_f64(secs)
        );
    }
    for v in ["0", "-1", "3600.5", "NaN", "soon"] {
        let err = config(&[("timeout_seconds", v)]).timeout().unwrap_err();
        assert_eq!(err.code, ErrorCode::Validation);
        assert!(
            err.message.contains(&format!("not '{v}'")),
            "{}",
            err.message
        );
    }
    let ctx = Context::new(&INFO, "k".into(), cfg(&[("timeout_seconds", "7")])).unwrap();
    assert_eq!(ctx.deadline.total(), Duration::from_secs(7));
    assert!(ctx.deadline.remaining() > Duration::from_secs(6));
}

#[test]
fn home_is_expanded_only_at_the_start() {
    let home = std::env::var("HOME").unwrap();
    assert_eq!(
        expand_home("~/a/b"),
        std::path::Path::new(&home).join("a/b")
    );
    assert_eq!(expand_home("/x/~/y"), std::path::PathBuf::from("/x/~/y"));
    assert_eq!(expand_home("~user/x"), std::path::PathBuf::from("~user/x"));
}
