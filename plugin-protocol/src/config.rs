//! Configuration (pluginConfig merged with the environment), the invocation's context, and the
//! bounded, jittered retry every backend uses under the invocation's [`Deadline`].

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::contract::PluginConfig;
use crate::deadline::Deadline;
use crate::error::{ErrorCode, PluginError, Result, Retry};
use crate::key_reference::KeyReference;
use crate::plugin_info::{ConfigKey, PluginInfo};

/// `certificate_chain`, understood by every plugin: a file with the whole chain.
pub const CERTIFICATE_CHAIN: ConfigKey = ConfigKey::new(
    "certificate_chain",
    &[],
    "path of a PEM (or DER) file with the whole certificate chain, leaf first, root last; \
     overrides the chain stored in the backend",
);

/// `ca_certs`, understood by every plugin: CA certificates that complete the leaf.
pub const CA_CERTS: ConfigKey = ConfigKey::new(
    "ca_certs",
    &[],
    "path of a PEM bundle of CA certificates (intermediates and root) that completes the \
     leaf certificate found in the backend",
);

/// `timeout_seconds`, understood by every plugin: the invocation's deadline.
pub const TIMEOUT_SECONDS: ConfigKey = ConfigKey::new(
    "timeout_seconds",
    &[],
    "overall deadline for one plugin invocation, retries included (default 30)",
);

/// Keys every plugin of the suite understands, with the same name everywhere.
pub(crate) const SHARED_KEYS: &[ConfigKey] = &[CERTIFICATE_CHAIN, CA_CERTS, TIMEOUT_SECONDS];

/// Default overall deadline of one invocation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that turns on debug logging to the file it names.
pub(crate) const LOG_ENV: &str = "NOTATION_PLUGIN_LOG";

/// pluginConfig merged with environment variables. Lookup order for a key `name`:
/// pluginConfig `name`, then `NOTATION_<PLUGIN>_<NAME>`, then the key's well-known variables.
#[derive(Clone)]
pub struct Config {
    info: &'static PluginInfo,
    plugin_config: PluginConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: BTreeMap<&str, &str> = self
            .plugin_config
            .iter()
            .map(|(k, v)| {
                let secret = self.key(k).is_some_and(|key| key.secret);
                (k.as_str(), if secret { "[redacted]" } else { v.as_str() })
            })
            .collect();
        f.debug_struct("Config")
            .field("plugin", &self.info.name)
            .field("plugin_config", &shown)
            .finish()
    }
}

impl Config {
    /// Checks the pluginConfig keys: an unknown key (usually a typo) is a VALIDATION_ERROR that
    /// lists the known ones, rather than a setting silently ignored.
    pub fn new(info: &'static PluginInfo, plugin_config: Option<PluginConfig>) -> Result<Self> {
        let plugin_config = plugin_config.unwrap_or_default();
        let config = Self {
            info,
            plugin_config,
        };
        for name in config.plugin_config.keys() {
            if config.key(name).is_none() {
                let known: Vec<&str> = config.keys().map(|k| k.name).collect();
                return Err(PluginError::validation(format!(
                    "unknown pluginConfig key '{name}' for the {} plugin; known keys: {}",
                    info.name,
                    known.join(", ")
                )));
            }
        }
        Ok(config)
    }

    /// The plugin these settings are for.
    pub fn info(&self) -> &'static PluginInfo {
        self.info
    }

    /// Every key this plugin understands: shared ones first.
    pub fn keys(&self) -> impl Iterator<Item = &'static ConfigKey> {
        SHARED_KEYS.iter().chain(self.info.config_keys.iter())
    }

    fn key(&self, name: &str) -> Option<&'static ConfigKey> {
        self.keys().find(|k| k.name == name)
    }

    /// The environment variable that sets `name` for this plugin: `NOTATION_<PLUGIN>_<NAME>`.
    pub fn env_name(info: &PluginInfo, name: &str) -> String {
        format!("NOTATION_{}_{}", info.name, name)
            .to_ascii_uppercase()
            .replace('-', "_")
    }

    /// The value of `key` and where it came from (for messages), or `None` when neither
    /// pluginConfig nor the environment sets it (an empty variable counts as unset). Looked up
    /// in pluginConfig, then `NOTATION_<PLUGIN>_<NAME>`, then the key's well-known variables in
    /// order. `key` is one of the plugin's declared constants (the shared ones or
    /// [`PluginInfo::config_keys`]).
    pub fn get_with_source(&self, key: &ConfigKey) -> Option<Setting<String>> {
        if let Some(v) = self.plugin_config.get(key.name) {
            return Some((v.clone(), format!("pluginConfig '{}'", key.name)));
        }
        let own = Self::env_name(self.info, key.name);
        std::iter::once(own.as_str())
            .chain(key.env.iter().copied())
            .find_map(|var| {
                std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| (v, format!("environment variable {var}")))
            })
    }

    /// The value of `key`, or `None` (see [`Config::get_with_source`]).
    pub fn get(&self, key: &ConfigKey) -> Option<String> {
        self.get_with_source(key).map(|(v, _)| v)
    }

    /// A secret value, zeroized when dropped.
    pub fn get_secret(&self, key: &ConfigKey) -> Option<Zeroizing<String>> {
        self.get(key).map(Zeroizing::new)
    }

    /// A path value, `~/` expanded, and where it came from.
    pub fn path(&self, key: &ConfigKey) -> Option<Setting<PathBuf>> {
        self.get_with_source(key)
            .map(|(v, source)| (expand_home(&v), source))
    }

    /// A boolean value (`true/false/1/0/yes/no`, any case); unset is `false`. Anything else is
    /// a VALIDATION_ERROR naming the source.
    pub fn flag(&self, key: &ConfigKey) -> Result<bool> {
        let parsed = self.parsed(
            key,
            |v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            },
            || "true or false".to_owned(),
        )?;
        Ok(parsed.is_some_and(|(v, _)| v))
    }

    /// A number within `range` (surrounding spaces ignored), or a VALIDATION_ERROR naming the
    /// source and the range.
    pub fn number<T>(&self, key: &ConfigKey, range: RangeInclusive<T>) -> Result<Option<Setting<T>>>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
    {
        self.parsed(
            key,
            |v| v.trim().parse::<T>().ok().filter(|n| range.contains(n)),
            || format!("a number between {} and {}", range.start(), range.end()),
        )
    }

    /// One of `choices` (compared ignoring case and surrounding spaces), or a VALIDATION_ERROR
    /// naming the source and listing the choices.
    pub fn choice(
        &self,
        key: &ConfigKey,
        choices: &[&'static str],
    ) -> Result<Option<Setting<&'static str>>> {
        self.parsed(
            key,
            |v| {
                choices
                    .iter()
                    .copied()
                    .find(|c| c.eq_ignore_ascii_case(v.trim()))
            },
            || format!("one of {}", choices.join(", ")),
        )
    }

    /// An `https://` URL (surrounding spaces and trailing `/` removed); `plain_http` says when
    /// `http://` is accepted too. Anything else is a VALIDATION_ERROR naming the source and
    /// giving `example`; a password in the URL is never shown.
    pub fn url(
        &self,
        key: &ConfigKey,
        plain_http: PlainHttp,
        example: &str,
    ) -> Result<Option<Setting<String>>> {
        let Some((raw, source)) = self.get_with_source(key) else {
            return Ok(None);
        };
        let url = raw.trim().trim_end_matches('/').to_owned();
        let shown = crate::bounded::shorten(&crate::secret::redact_url(&url), 200);
        if let Some(rest) = url.strip_prefix("http://").filter(|r| !host(r).is_empty()) {
            return match plain_http {
                PlainHttp::Allowed => Ok(Some((url, source))),
                PlainHttp::Loopback if is_loopback(rest) => Ok(Some((url, source))),
                PlainHttp::Loopback => Err(PluginError::validation(format!(
                    "{source} is '{shown}': plain http:// is only allowed to a loopback address \
                     (a local emulator); use https:// (such as {example})"
                ))),
                _ => Err(PluginError::validation(format!(
                    "{source} is '{shown}': plain http:// is not allowed; use https:// (such as \
                     {example})"
                ))),
            };
        }
        if url
            .strip_prefix("https://")
            .is_some_and(|r| !host(r).is_empty())
        {
            return Ok(Some((url, source)));
        }
        let scheme = match plain_http {
            PlainHttp::Allowed => "an http(s)://",
            _ => "an https://",
        };
        Err(PluginError::validation(format!(
            "{source} must be {scheme} URL such as {example}, not '{shown}'"
        )))
    }

    /// A value `parse` accepts, or a VALIDATION_ERROR "<source> must be <expected>, not '<v>'".
    fn parsed<T>(
        &self,
        key: &ConfigKey,
        parse: impl FnOnce(&str) -> Option<T>,
        expected: impl FnOnce() -> String,
    ) -> Result<Option<Setting<T>>> {
        match self.get_with_source(key) {
            None => Ok(None),
            Some((v, source)) => match parse(&v) {
                Some(parsed) => Ok(Some((parsed, source))),
                None => Err(PluginError::validation(format!(
                    "{source} must be {}, not '{v}'",
                    expected()
                ))),
            },
        }
    }

    /// The overall deadline from `timeout_seconds`, or [`DEFAULT_TIMEOUT`].
    pub fn timeout(&self) -> Result<Duration> {
        let seconds = self.parsed(
            &TIMEOUT_SECONDS,
            |v| v.parse::<f64>().ok().filter(|s| *s > 0.0 && *s <= 3600.0),
            || "a number of seconds between 0 and 3600".to_owned(),
        )?;
        Ok(seconds.map_or(DEFAULT_TIMEOUT, |(s, _)| Duration::from_secs_f64(s)))
    }
}

/// A setting's value and where it came from, for messages: `pluginConfig 'region'` or
/// `environment variable AWS_REGION`.
pub type Setting<T> = (T, String);

/// When [`Config::url`] accepts a plain `http://` URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlainHttp {
    /// Never: credentials or tokens travel to it.
    Refused,
    /// Only to a loopback address (`localhost`, `127.x.x.x`, `[::1]`): a local emulator.
    Loopback,
    /// Always (a local dev server, a test stand-in reached over the network).
    Allowed,
}

/// The host (and port) of the authority at the start of `rest`, what follows `scheme://`.
fn host(rest: &str) -> &str {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.rsplit_once('@').map_or(authority, |(_, h)| h)
}

/// Whether the authority at the start of `rest` (what follows `http://`) is a loopback host.
fn is_loopback(rest: &str) -> bool {
    let host = host(rest);
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Expands a leading `~/` to `$HOME/`.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// How much of a key id messages and logs show.
const MAX_KEY_NAME_CHARS: usize = 200;

/// Everything one protocol invocation knows: the key id, configuration and deadline.
#[derive(Clone, Debug)]
pub struct Context {
    /// The keyId exactly as notation sent it, echoed byte for byte in the response; never put
    /// it in a message or a log (it may hold a secret): [`Context::key_name`] is for those.
    pub key_id: String,
    /// The keyId as messages and logs show it (see [`Context::key_name`]).
    key_name: String,
    /// pluginConfig merged with the environment; unknown keys were refused before the backend
    /// was called.
    pub config: Config,
    /// Every backend call and retry of this invocation ends by it.
    pub deadline: Deadline,
}

impl Context {
    /// Runs a blocking backend call (a PKCS#11 module, a PC/SC card) on a worker thread and waits
    /// for it until this invocation's deadline; past it, the answer is TIMEOUT naming `doing`
    /// and the call is left behind (the process exits after answering), so a hung token cannot
    /// hang `notation sign`.
    pub fn run_blocking<T, F>(&self, doing: &str, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        crate::blocking::run_with_deadline(&self.deadline, doing, call)
    }

    /// The context of an invocation for the key `key_id`: checks `config` (see
    /// [`Config::new`]), starts the deadline and parses `key_id` as an `R`, before any I/O. The
    /// key is named in messages and logs by [`KeyReference::redacted`] alone (shortened when
    /// huge): the runner, the certificate commands and a plugin's own commands all get their
    /// context here, so none can show a secret a key id holds.
    pub fn for_key<R: KeyReference>(
        info: &'static PluginInfo,
        key_id: String,
        config: Option<PluginConfig>,
    ) -> Result<(Self, R)> {
        let mut ctx = Self::without_key(info, config)?;
        let key = crate::key_reference::parse_key_id::<R>(&key_id)?;
        ctx.key_name = crate::bounded::shorten(&R::redacted(&key_id), MAX_KEY_NAME_CHARS);
        ctx.key_id = key_id;
        Ok((ctx, key))
    }

    /// The context of a command that names no key (`create-key`, `tokens`): `config` checked
    /// (see [`Config::new`]) and the deadline started; the key id is empty.
    pub fn without_key(info: &'static PluginInfo, config: Option<PluginConfig>) -> Result<Self> {
        let config = Config::new(info, config)?;
        let deadline = Deadline::after(config.timeout()?);
        Ok(Self {
            key_id: String::new(),
            key_name: String::new(),
            config,
            deadline,
        })
    }

    /// The key id as messages and logs show it: [`KeyReference::redacted`]'s form, with
    /// anything secret a key id may carry removed (a PKCS#11 URI's pin-value).
    pub fn key_name(&self) -> &str {
        &self.key_name
    }
}

/// How many times a failed call is tried in all, at most.
pub const MAX_ATTEMPTS: u32 = 5;
const BASE_DELAY: Duration = Duration::from_millis(200);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// A bounded exponential back-off with full jitter: before try `n + 1`, a random delay up to
/// `base * 2^n` (at most `max`); at most `attempts` tries in all, and never past the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay's bound, doubled at each try.
    pub base: Duration,
    /// The largest bound of a delay.
    pub max: Duration,
    /// How many times a call is tried in all, at most.
    pub attempts: u32,
}

impl Backoff {
    /// The back-off of remote calls (HTTP backends): 200 ms doubling up to 5 s, five tries.
    pub const REMOTE: Self = Self {
        base: BASE_DELAY,
        max: MAX_DELAY,
        attempts: MAX_ATTEMPTS,
    };

    /// The random delay before try `attempt + 1` (full jitter).
    pub fn delay(&self, attempt: u32) -> Duration {
        let cap = self.base.saturating_mul(1 << attempt.min(6)).min(self.max);
        cap.mul_f64(rand::random::<f64>())
    }

    /// What to do after failed try number `attempt`: the delay before the next one, or the
    /// final error (see [`after_failure`]).
    pub fn after_failure(
        &self,
        deadline: &Deadline,
        doing: &str,
        attempt: u32,
        err: PluginError,
    ) -> std::result::Result<Duration, PluginError> {
        after_failure_with(self, deadline, doing, attempt, err)
    }
}

/// What to do after a failed attempt: the delay before the next one, or the final error.
/// Shared by [`retry`] and async callers that sleep on their own runtime; [`Backoff::REMOTE`].
pub fn after_failure(
    deadline: &Deadline,
    doing: &str,
    attempt: u32,
    err: PluginError,
) -> std::result::Result<Duration, PluginError> {
    after_failure_with(&Backoff::REMOTE, deadline, doing, attempt, err)
}

fn after_failure_with(
    backoff: &Backoff,
    deadline: &Deadline,
    doing: &str,
    attempt: u32,
    err: PluginError,
) -> std::result::Result<Duration, PluginError> {
    let asked = match err.retry {
        Retry::Never => return Err(err),
        Retry::Transient => None,
        Retry::Throttled(after) => after,
    };
    if attempt >= backoff.attempts {
        return Err(final_error(err, attempt));
    }
    // Full jitter on an exponential backoff, unless the backend named the delay.
    let delay = asked.unwrap_or_else(|| backoff.delay(attempt));
    let remaining = deadline.remaining();
    // A wait is worth it only if the next attempt still has time once it ends: waiting out a
    // Retry-After to time out in the next call would turn the backend's answer into TIMEOUT.
    if delay + next_attempt_room(deadline) >= remaining {
        // The deadline has not passed yet: say what would happen, not that it did.
        let mut e = match asked {
            Some(asked) => PluginError::throttled(format!(
                "gave up {doing}: the backend asked to wait {}s before trying again \
                 (Retry-After), which leaves no time for another try in the {:.1}s left of the \
                 {}s deadline; sign again later, or raise pluginConfig timeout_seconds (last \
                 error: {})",
                asked.as_secs_f64(),
                remaining.as_secs_f64(),
                deadline.total().as_secs_f64(),
                err.message
            )),
            // The failure itself is the answer (THROTTLED for throttling): the deadline only
            // ended the retries.
            None => {
                let code = match err.retry {
                    Retry::Throttled(_) => ErrorCode::Throttled,
                    _ => err.code,
                };
                PluginError::new(
                    code,
                    format!(
                        "{} (tried {attempt} times; another try would pass the {}s deadline \
                         set by timeout_seconds)",
                        err.message,
                        deadline.total().as_secs_f64()
                    ),
                )
            }
        };
        e.retry = Retry::Never;
        e.metadata = err.metadata;
        return Err(e);
    }
    Ok(delay)
}

/// The time a retry needs left after its wait: a quarter of the deadline, at most 1 s (a
/// remote call answers in far less; a 3 s deadline keeps 0.75 s for it).
fn next_attempt_room(deadline: &Deadline) -> Duration {
    (deadline.total() / 4).min(Duration::from_secs(1))
}

fn final_error(err: PluginError, attempts: u32) -> PluginError {
    let code = match err.retry {
        Retry::Throttled(_) => ErrorCode::Throttled,
        _ => err.code,
    };
    let mut e = PluginError::new(code, format!("{} (after {attempts} attempts)", err.message));
    e.metadata = err.metadata;
    e
}

/// Runs `op` until it succeeds, fails with a non-retryable error, runs out of attempts
/// (THROTTLED for throttling) or would pass the deadline (TIMEOUT).
pub fn retry<T>(deadline: &Deadline, doing: &str, mut op: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        deadline.check(doing)?;
        attempt += 1;
        match op() {
            Ok(v) => return Ok(v),
            Err(err) => {
                let delay = after_failure(deadline, doing, attempt, err)?;
                tracing::debug!(attempt, ?delay, doing, "retrying");
                std::thread::sleep(delay);
            }
        }
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn delays_are_jittered_within_the_doubling_bound_and_tries_are_counted() {
        let quick = Backoff {
            base: Duration::from_millis(15),
            max: Duration::from_millis(250),
            attempts: 3,
        };
        for attempt in 1..10 {
            let bound = Duration::from_millis(15 << attempt.min(6)).min(quick.max);
            assert!(quick.delay(attempt) <= bound, "attempt {attempt}");
        }
        let deadline = Deadline::after(Duration::from_secs(30));
        let busy = || PluginError::generic("token busy").with_retry(Retry::Transient);
        assert!(quick.after_failure(&deadline, "x", 2, busy()).is_ok());
        let e = quick.after_failure(&deadline, "x", 3, busy()).unwrap_err();
        assert!(e.message.ends_with("(after 3 attempts)"), "{}", e.message);
        assert_eq!(e.retry, Retry::Never);
        let final_one = PluginError::access_denied("wrong PIN");
        let e = quick
            .after_failure(&deadline, "x", 1, final_one)
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::AccessDenied, "wrong PIN")
        );
    }
}
