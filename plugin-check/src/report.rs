//! The outcome of a run: every check with its verdict and reason, every plugin invocation with
//! its wall time, and the files written. Rendered for people or as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Not what the contract asks for, but nothing the real notation sends or checks breaks:
    /// reported with the reason, never a failure.
    Warn,
    Fail,
    /// Not run because an earlier step failed; never counts as a pass.
    Skip,
}

/// One check: what was checked, the verdict and why.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// The step it belongs to (`installation`, `describe-key`, `jws`, `cose`, `probe`, `verify`).
    pub group: String,
    pub name: String,
    pub status: Status,
    /// For a pass, what was seen; for a failure, what is wrong and what notation would do.
    pub detail: String,
    /// Wall time of the plugin invocation this check is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wall_time_ms: Option<f64>,
}

/// One run of the plugin executable.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// What the invocation was for (`sign (jws): generate-signature`, `probe: empty stdin`).
    pub label: String,
    pub command: String,
    pub exit_code: Option<i32>,
    pub wall_time_ms: f64,
}

/// Everything one run of the checker found.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub tool: String,
    /// `check` or `verify`.
    pub mode: String,
    /// The plugin executable (check) or envelope file (verify).
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub passed: bool,
    pub summary: Summary,
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub invocations: Vec<Timing>,
    /// Wall time of each signing conversation (get-plugin-metadata, describe-key,
    /// generate-signature) as notation runs it, per envelope format.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sign_conversations: Vec<Conversation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_written: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub passed: usize,
    pub warned: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// The three launches notation makes for one signature.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub envelope: String,
    pub wall_time_ms: f64,
}

pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

impl Report {
    pub fn new(mode: &str, subject: impl Into<String>) -> Self {
        Self {
            tool: format!("notation-plugin-check {}", env!("CARGO_PKG_VERSION")),
            mode: mode.to_owned(),
            subject: subject.into(),
            ..Self::default()
        }
    }

    fn push(&mut self, group: &str, name: &str, status: Status, detail: String) -> &mut Check {
        self.checks.push(Check {
            group: group.to_owned(),
            name: name.to_owned(),
            status,
            detail,
            wall_time_ms: None,
        });
        self.checks.last_mut().expect("just pushed")
    }

    pub fn pass(&mut self, group: &str, name: &str, detail: impl Into<String>) -> &mut Check {
        self.push(group, name, Status::Pass, detail.into())
    }

    /// A deviation notation never meets (a request it never sends): WARN with the reason.
    pub fn warn(&mut self, group: &str, name: &str, detail: impl Into<String>) -> &mut Check {
        self.push(group, name, Status::Warn, detail.into())
    }

    pub fn fail(&mut self, group: &str, name: &str, detail: impl Into<String>) -> &mut Check {
        self.push(group, name, Status::Fail, detail.into())
    }

    pub fn skip(&mut self, group: &str, name: &str, detail: impl Into<String>) -> &mut Check {
        self.push(group, name, Status::Skip, detail.into())
    }

    /// Records a pass or a failure from a `Result`.
    pub fn outcome(
        &mut self,
        group: &str,
        name: &str,
        result: Result<String, String>,
    ) -> &mut Check {
        match result {
            Ok(detail) => self.pass(group, name, detail),
            Err(why) => self.fail(group, name, why),
        }
    }

    pub fn timing(
        &mut self,
        label: impl Into<String>,
        command: &str,
        code: Option<i32>,
        d: Duration,
    ) {
        self.invocations.push(Timing {
            label: label.into(),
            command: command.to_owned(),
            exit_code: code,
            wall_time_ms: millis(d),
        });
    }

    /// Fills in `passed` and the summary; call once all checks are in.
    pub fn finish(&mut self) {
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        self.summary = Summary {
            passed: count(Status::Pass),
            warned: count(Status::Warn),
            failed: count(Status::Fail),
            skipped: count(Status::Skip),
        };
        // Only a FAIL fails the run (a check is skipped only after an earlier one failed).
        self.passed = self.summary.failed == 0;
    }

    /// The checks that failed or could not run (warnings are not failures).
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks
            .iter()
            .filter(|c| matches!(c.status, Status::Fail | Status::Skip))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!(r#"{{"error":"cannot encode the report as JSON: {e}"}}"#))
    }

    /// The human report: one line per check, reasons indented below failures.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{} ({})", self.tool, self.mode);
        let _ = writeln!(out, "  {}", self.subject);
        if let Some(k) = &self.key_id {
            let _ = writeln!(out, "  key id: {k}");
        }
        let mut group = "";
        for c in &self.checks {
            if c.group != group {
                group = &c.group;
                let _ = writeln!(out, "\n[{group}]");
            }
            let mark = match c.status {
                Status::Pass => "PASS",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
                Status::Skip => "SKIP",
            };
            let time = c
                .wall_time_ms
                .map(|t| format!(" ({t} ms)"))
                .unwrap_or_default();
            let _ = writeln!(out, "  {mark}  {}{time}", c.name);
            if !c.detail.is_empty() {
                for line in c.detail.lines() {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
        if !self.invocations.is_empty() {
            let _ = writeln!(out, "\n[wall time per invocation]");
            for t in &self.invocations {
                let code = t
                    .exit_code
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "signal".into());
                let _ = writeln!(
                    out,
                    "  {:>9.1} ms  exit {code:<3} {}",
                    t.wall_time_ms, t.label
                );
            }
        }
        for c in &self.sign_conversations {
            let _ = writeln!(
                out,
                "  {:>9.1} ms  total of one `notation sign` conversation ({}: metadata + describe-key + generate-signature)",
                c.wall_time_ms, c.envelope
            );
        }
        if !self.files_written.is_empty() {
            let _ = writeln!(out, "\n[files written]");
            for f in &self.files_written {
                let _ = writeln!(out, "  {f}");
            }
        }
        let _ = writeln!(
            out,
            "\n{}: {} passed, {} failed, {} warned, {} skipped",
            if self.passed { "PASSED" } else { "FAILED" },
            self.summary.passed,
            self.summary.failed,
            self.summary.warned,
            self.summary.skipped
        );
        out
    }
}

impl Check {
    /// Sets the wall time of the invocation this check is about.
    pub fn timed(&mut self, d: Duration) {
        self.wall_time_ms = Some(millis(d));
    }
}
