//! Configuration as every plugin reads it: unknown pluginConfig keys are errors that list the
//! known ones, the lookup order pluginConfig > NOTATION_<PLUGIN>_<KEY> > well-known variables,
//! secrets redacted, and the bounds of timeout_seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use plugin_protocol::config::{expand_home, Config, DEFAULT_TIMEOUT};
use plugin_protocol::slips::Example;
use plugin_protocol::{ConfigKey, Context, ErrorCode, PluginInfo};

const REGION: ConfigKey = ConfigKey::new(
    "region",
    &["CFG_TEST_REGION", "CFG_TEST_DEFAULT_REGION"],
    "a setting with two well-known variables",
);
const PIN: ConfigKey = ConfigKey::new_secret("pin", &[], "a secret");
const KEY_FILE: ConfigKey = ConfigKey::new(
    "key_file",
    &[],
    "a path, number, URL or choice (no test sets its variables, so tests may run in \
     parallel)",
);
const VERBOSE: ConfigKey = ConfigKey::new("verbose", &[], "a flag");

static INFO: PluginInfo = PluginInfo {
    name: "cfg-test",
    description: "config tests",
    version: "0.0.0",
    url: "https://example.invalid",
    config_keys: &[REGION, PIN, KEY_FILE, VERBOSE],
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
                 certificate_chain, ca_certs, timeout_seconds, region, pin, key_file, verbose"
            )
        );
    }
    // Context::for_key and Context::without_key (every command's entry) apply the same check.
    let err = Context::for_key::<plugin_protocol::PlainKeyId>(
        &INFO,
        "k".into(),
        cfg(&[("ca_cert", "x")]),
    )
    .unwrap_err();
    assert!(err.message.contains("'ca_cert'"), "{}", err.message);
    let err = Context::without_key(&INFO, cfg(&[("ca_cert", "x")])).unwrap_err();
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
        c.get_with_source(&REGION),
        Some((
            "from-second-wellknown".into(),
            "environment variable CFG_TEST_DEFAULT_REGION".into()
        )),
        "an empty variable is skipped"
    );
    std::env::set_var("CFG_TEST_REGION", "from-wellknown");
    assert_eq!(c.get(&REGION).as_deref(), Some("from-wellknown"));
    std::env::set_var("NOTATION_CFG_TEST_REGION", "from-own");
    assert_eq!(
        c.get_with_source(&REGION),
        Some((
            "from-own".into(),
            "environment variable NOTATION_CFG_TEST_REGION".into()
        ))
    );
    let c = config(&[("region", "from-config")]);
    assert_eq!(
        c.get_with_source(&REGION),
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
    assert_eq!(config(&[]).get(&REGION), None);

    let c = config(&[("pin", "123456"), ("region", "eu")]);
    let shown = format!("{c:?}");
    assert!(
        shown.contains("[redacted]") && !shown.contains("123456") && shown.contains("\"eu\""),
        "{shown}"
    );
    assert_eq!(
        c.get_secret(&PIN).as_deref().map(String::as_str),
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
            config(&[("verbose", v)]).flag(&VERBOSE).unwrap(),
            expected,
            "{v}"
        );
    }
    assert!(!config(&[]).flag(&VERBOSE).unwrap());
    let err = config(&[("verbose", "maybe")]).flag(&VERBOSE).unwrap_err();
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
    let ctx = Context::without_key(&INFO, cfg(&[("timeout_seconds", "7")])).unwrap();
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

#[test]
fn a_passed_deadline_is_a_timeout_naming_what_was_being_done() {
    use plugin_protocol::Deadline;
    let passed = Deadline::after(Duration::ZERO);
    let err = passed.check("signing with key k").unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);
    assert!(
        err.message
            .starts_with("gave up signing with key k after the 0s deadline"),
        "{}",
        err.message
    );
    Deadline::after(Duration::from_secs(30)).check("x").unwrap();
}

#[test]
fn backoff_grows_with_the_attempt_up_to_its_cap() {
    use plugin_protocol::config::after_failure;
    use plugin_protocol::{Deadline, PluginError, Retry};
    let deadline = Deadline::after(Duration::from_secs(60));
    let delays = |attempt: u32| -> Vec<Duration> {
        (0..40)
            .map(|_| {
                let e = PluginError::generic("503").with_retry(Retry::Transient);
                after_failure(&deadline, "x", attempt, e).unwrap()
            })
            .collect()
    };
    // Full jitter below 200 ms << attempt: attempt 3 waits up to 1.6 s, never more, and 40
    // draws all below 100 ms would mean the backoff stopped growing (chance 1 in 16^40).
    let third = delays(3);
    assert!(
        third.iter().all(|d| *d < Duration::from_millis(1600)),
        "{third:?}"
    );
    assert!(
        third.iter().any(|d| *d > Duration::from_millis(100)),
        "{third:?}"
    );
    let first = delays(1);
    assert!(
        first.iter().all(|d| *d < Duration::from_millis(400)),
        "{first:?}"
    );
    // A delay the backend names is used as it is.
    let e = PluginError::generic("slow down")
        .with_retry(Retry::Throttled(Some(Duration::from_millis(1234))));
    assert_eq!(
        after_failure(&deadline, "x", 1, e).unwrap(),
        Duration::from_millis(1234)
    );
}

#[test]
fn a_wait_is_taken_only_if_the_next_attempt_has_time_after_it() {
    use plugin_protocol::config::after_failure;
    use plugin_protocol::{Deadline, PluginError, Retry};
    let throttled = |secs: f64| {
        PluginError::generic("is throttling requests")
            .with_retry(Retry::Throttled(Some(Duration::from_secs_f64(secs))))
    };
    // A 3 s deadline keeps a quarter of it, 0.75 s, for the attempt after the wait.
    let deadline = Deadline::after(Duration::from_secs(3));
    assert_eq!(
        after_failure(&deadline, "x", 1, throttled(2.0)).unwrap(),
        Duration::from_secs(2)
    );
    // 2.5 s fits in what is left, but would leave the next call 0.5 s: the throttling is the
    // answer now, not a TIMEOUT after the wait.
    let err = after_failure(&deadline, "getting key k", 1, throttled(2.5)).unwrap_err();
    assert_eq!(err.code, ErrorCode::Throttled);
    assert!(
        err.message.contains("wait 2.5s")
            && err.message.contains("no time for another try")
            && err.message.contains("3s deadline")
            && err.message.contains("is throttling requests"),
        "{}",
        err.message
    );
    assert_eq!(err.retry, Retry::Never);
    // A long deadline keeps at most 1 s: a 58.5 s wait of 60 s is taken, 59.5 s is not.
    let long = Deadline::after(Duration::from_secs(60));
    assert!(after_failure(&long, "x", 1, throttled(58.5)).is_ok());
    assert!(after_failure(&long, "x", 1, throttled(59.5)).is_err());
}

/// A key reference whose ids may carry `secret=...`, redacted as a backend would.
#[derive(Debug)]
struct Secretive;

impl plugin_protocol::KeyReference for Secretive {
    const KIND: &'static str = "a secretive key id";
    const HELP: &'static str = "anything but bad...";
    const MAX_LEN: usize = 8192;

    fn parse(key_id: &str) -> Result<Self, String> {
        if key_id.starts_with("bad") {
            return Err("it starts with bad".into());
        }
        Ok(Self)
    }

    fn redacted(key_id: &str) -> String {
        plugin_protocol::secret::redact_attributes(key_id, |name| name == "secret")
    }
}

#[test]
fn the_key_is_parsed_once_and_named_only_by_its_redacted_form() {
    let (ctx, _) =
        Context::for_key::<Secretive>(&INFO, "k;SECRET=hunter2;x=1".into(), None).unwrap();
    assert_eq!(ctx.key_id, "k;SECRET=hunter2;x=1", "echoed as sent");
    assert_eq!(ctx.key_name(), "k;SECRET=[redacted];x=1");
    // A huge key id is named by its start.
    let huge = format!("k;secret=hunter2;{}", "x".repeat(5000));
    let (ctx, _) = Context::for_key::<Secretive>(&INFO, huge, None).unwrap();
    assert!(ctx.key_name().len() < 300, "{}", ctx.key_name());
    assert!(!ctx.key_name().contains("hunter2"));
    // A key id the backend refuses is refused before any backend call, with its own message.
    let e = Context::for_key::<Secretive>(&INFO, "bad;secret=hunter2".into(), None).unwrap_err();
    assert_eq!(
        e.message,
        "keyId 'bad;secret=[redacted]' is not a secretive key id (it starts with bad); \
         expected anything but bad..."
    );
    let checked = plugin_protocol::slips::check::<Secretive>(
        &INFO,
        &[
            Example::holding("k;secret=hunter2", "hunter2"),
            Example::holding("bad;Secret=hunter2", "hunter2"),
        ],
    );
    assert!(checked > 500, "{checked}");
}

#[test]
fn typed_settings_name_their_source() {
    let home = std::env::var("HOME").unwrap();
    assert_eq!(
        config(&[("key_file", "~/k.pem")]).path(&KEY_FILE),
        Some((
            std::path::Path::new(&home).join("k.pem"),
            "pluginConfig 'key_file'".into()
        ))
    );
    assert_eq!(config(&[]).path(&KEY_FILE), None);

    let n = |v: &str| config(&[("key_file", v)]).number(&KEY_FILE, 1u32..=10);
    assert_eq!(
        n(" 7 ").unwrap(),
        Some((7, "pluginConfig 'key_file'".into()))
    );
    for v in ["0", "11", "-1", "x"] {
        assert_eq!(
            n(v).unwrap_err().message,
            format!("pluginConfig 'key_file' must be a number between 1 and 10, not '{v}'")
        );
    }

    let choices = ["transit", "kv"];
    let c = |v: &str| config(&[("key_file", v)]).choice(&KEY_FILE, &choices);
    assert_eq!(c(" KV").unwrap().map(|(v, _)| v), Some("kv"));
    let err = c("vault").unwrap_err();
    assert_eq!(err.code, ErrorCode::Validation);
    assert_eq!(
        err.message,
        "pluginConfig 'key_file' must be one of transit, kv, not 'vault'"
    );

    use plugin_protocol::config::PlainHttp;
    let u = |v: &str, http| config(&[("key_file", v)]).url(&KEY_FILE, http, "https://x.example");
    assert_eq!(
        u(" https://h.example/ ", PlainHttp::Refused)
            .unwrap()
            .map(|(v, _)| v),
        Some("https://h.example".to_owned())
    );
    for ok in [
        "http://127.0.0.1:4566",
        "http://localhost/x",
        "http://[::1]:80",
        "http://[::1]",
    ] {
        assert!(u(ok, PlainHttp::Loopback).is_ok(), "{ok}");
    }
    let err = u("http://10.0.0.1:8200", PlainHttp::Loopback).unwrap_err();
    assert!(
        err.message.contains("only allowed to a loopback"),
        "{}",
        err.message
    );
    assert!(u("http://10.0.0.1:8200", PlainHttp::Allowed).is_ok());
    let err = u("http://127.0.0.1", PlainHttp::Refused).unwrap_err();
    assert!(
        err.message.contains("plain http:// is not allowed"),
        "{}",
        err.message
    );
    let err = u("ftp://user:hunter2@h", PlainHttp::Allowed).unwrap_err();
    assert_eq!(
        err.message,
        "pluginConfig 'key_file' must be an http(s):// URL such as https://x.example, not \
         'ftp://user:[redacted]@h'"
    );
    let err = u("https://user:hunter2@", PlainHttp::Refused).unwrap_err();
    assert!(!err.message.contains("hunter2"), "{}", err.message);
}
