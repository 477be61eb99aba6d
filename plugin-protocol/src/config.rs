//! Configuration (pluginConfig merged with the environment), the invocation's context, and the
//! bounded, jittered retry every backend uses under the invocation's [`Deadline`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::contract::PluginConfig;
use crate::deadline::Deadline;
use crate::error::{ErrorCode, PluginError, Result, Retry};
use crate::key_reference::KeyReference;
use crate::plugin_info::{ConfigKey, PluginInfo};

/// Keys every plugin of the suite understands, with the same name everywhere.
pub(crate) const SHARED_KEYS: &[ConfigKey] = &[
    ConfigKey {
        name: "certificate_chain",
        env: &[],
        help:
            "path of a PEM (or DER) file with the whole certificate chain, leaf first, root last; \
               overrides the chain stored in the backend",
        secret: false,
    },
    ConfigKey {
        name: "ca_certs",
        env: &[],
        help:
            "path of a PEM bundle of CA certificates (intermediates and root) that completes the \
               leaf certificate found in the backend",
        secret: false,
    },
    ConfigKey {
        name: "timeout_seconds",
        env: &[],
        help: "overall deadline for one plugin invocation, retries included (default 30)",
        secret: false,
    },
];

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

    /// The value of `name` and where it came from (for messages), or `None`.
    pub fn get_with_source(&self, name: &str) -> Option<(String, String)> {
        debug_assert!(self.key(name).is_some(), "undeclared config key {name}");
        if let Some(v) = self.plugin_config.get(name) {
            return Some((v.clone(), format!("pluginConfig '{name}'")));
        }
        let own = Self::env_name(self.info, name);
        let wellknown = self.key(name).map(|k| k.env).unwrap_or(&[]);
        std::iter::once(own.as_str())
            .chain(wellknown.iter().copied())
            .find_map(|var| {
                std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| (v, format!("environment variable {var}")))
            })
    }

    /// The value of `name`, or `None` when neither pluginConfig nor the environment sets it
    /// (an empty variable counts as unset). `name` must be one of [`Config::keys`].
    pub fn get(&self, name: &str) -> Option<String> {
        self.get_with_source(name).map(|(v, _)| v)
    }

    /// A secret value, zeroized when dropped.
    pub fn get_secret(&self, name: &str) -> Option<Zeroizing<String>> {
        self.get(name).map(Zeroizing::new)
    }

    /// A path value; `~/` is expanded.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(|v| expand_home(&v))
    }

    /// A boolean value (`true/false/1/0/yes/no`).
    pub fn flag(&self, name: &str) -> Result<bool> {
        match self.get_with_source(name) {
            None => Ok(false),
            Some((v, source)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(PluginError::validation(format!(
                    "{source} must be true or false, not '{v}'"
                ))),
            },
        }
    }

    /// The overall deadline from `timeout_seconds`, or [`DEFAULT_TIMEOUT`].
    pub fn timeout(&self) -> Result<Duration> {
        match self.get_with_source("timeout_seconds") {
            None => Ok(DEFAULT_TIMEOUT),
            Some((v, source)) => match v.parse::<f64>() {
                Ok(s) if s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
                _ => Err(PluginError::validation(format!(
                    "{source} must be a number of seconds between 0 and 3600, not '{v}'"
                ))),
            },
        }
    }
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
#[derive(Debug)]
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
        let key = R::parse(&key_id)?;
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
    if delay >= remaining {
        // The deadline has not passed yet: say what would happen, not that it did.
        let mut e = match asked {
            Some(asked) => PluginError::throttled(format!(
                "gave up {doing}: the backend asked to wait {}s before trying again \
                 (Retry-After), longer than the {:.1}s left of the {}s deadline; sign again \
                 later, or raise pluginConfig timeout_seconds (last error: {})",
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
