//! The overall deadline of one invocation, which every backend call and retry is bounded by.
//! It depends only on the error type, so the blocking and remote call helpers and the
//! configuration can all use it without depending on one another.

use std::time::{Duration, Instant};

use crate::error::{PluginError, Result};

/// The overall deadline of one invocation (`timeout_seconds`, default 30 s), fixed when the
/// invocation starts; [`crate::Context::deadline`] holds it.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    /// The deadline `total` from now.
    pub fn after(total: Duration) -> Self {
        Self {
            at: Instant::now() + total,
            total,
        }
    }
    /// What is left of it; zero once it has passed. A backend call's own timeout is this.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
    /// The whole deadline as configured, for messages.
    pub fn total(&self) -> Duration {
        self.total
    }
    /// TIMEOUT if the deadline has passed, naming what was being done.
    pub fn check(&self, doing: &str) -> Result<()> {
        if self.remaining().is_zero() {
            Err(self.exceeded(doing))
        } else {
            Ok(())
        }
    }
    /// The TIMEOUT error for a deadline that passed while `doing` ("signing with key 'k'"):
    /// it names what was being done and `timeout_seconds`.
    pub fn exceeded(&self, doing: &str) -> PluginError {
        PluginError::timeout(format!(
            "gave up {doing} after the {}s deadline; raise pluginConfig timeout_seconds if the \
             backend is just slow",
            self.total.as_secs_f64()
        ))
    }
}
