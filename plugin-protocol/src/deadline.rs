//! The overall deadline of one invocation, which every backend call and retry is bounded by.
//! It depends only on the error type, so the blocking and remote call helpers and the
//! configuration can all use it without depending on one another.

use std::time::{Duration, Instant};

use crate::error::{PluginError, Result};

/// The overall deadline of one invocation.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    at: Instant,
    total: Duration,
}

impl Deadline {
    pub fn after(total: Duration) -> Self {
        Self {
            at: Instant::now() + total,
            total,
        }
    }
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }
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
    pub fn exceeded(&self, doing: &str) -> PluginError {
        PluginError::timeout(format!(
            "gave up {doing} after the {}s deadline; raise pluginConfig timeout_seconds if the \
             backend is just slow",
            self.total.as_secs_f64()
        ))
    }
}
