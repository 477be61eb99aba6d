//! The user's terminal (`/dev/tty`), the only place this plugin talks to a person during a
//! signature: notation reads the plugin's stdout and stderr, so a PIN prompt or a "touch your
//! YubiKey" notice must not go there. Without a controlling terminal (CI), there is no prompt
//! and no notice.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use plugin_protocol::{Deadline, PluginError, Result};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::termios::{self, LocalModes, OptionalActions};
use zeroize::Zeroizing;

/// The longest PIN line read from the terminal (a PIV PIN is 6 to 8 characters).
const MAX_LINE: usize = 64;

/// The controlling terminal, opened for reading and writing.
pub struct Tty(File);

impl Tty {
    /// The controlling terminal, or `None` when the process has none (CI, a service).
    pub fn open() -> Option<Self> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()
            .map(Self)
    }

    /// Writes one line to the terminal; a terminal that cannot be written to is ignored.
    pub fn say(&mut self, line: &str) {
        let _ = writeln!(self.0, "{line}");
        let _ = self.0.flush();
    }

    /// Shows `prompt` and reads one line with echo off, until `deadline`: TIMEOUT when nobody
    /// types it in time. Echo is restored however this ends, also on SIGTERM.
    pub fn read_secret(&mut self, prompt: &str, deadline: &Deadline) -> Result<Zeroizing<Vec<u8>>> {
        let saved = termios::tcgetattr(self.0.as_fd())
            .map_err(|e| PluginError::generic(format!("cannot read the terminal's mode: {e}")))?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        termios::tcsetattr(self.0.as_fd(), OptionalActions::Flush, &quiet).map_err(|e| {
            PluginError::generic(format!("cannot turn off the terminal's echo: {e}"))
        })?;
        let restore = match self.0.try_clone() {
            Ok(f) => f,
            Err(e) => {
                let _ = termios::tcsetattr(self.0.as_fd(), OptionalActions::Now, &saved);
                return Err(PluginError::generic(format!(
                    "cannot use the terminal: {e}"
                )));
            }
        };
        let on_signal = (restore.try_clone().ok(), saved.clone());
        plugin_protocol::on_interrupt(move || {
            if let (Some(f), saved) = &on_signal {
                let _ = termios::tcsetattr(f.as_fd(), OptionalActions::Now, saved);
            }
        });
        let _ = write!(self.0, "{prompt}");
        let _ = self.0.flush();
        let line = self.read_line(deadline);
        let _ = termios::tcsetattr(restore.as_fd(), OptionalActions::Now, &saved);
        // The user's Enter was not echoed.
        let _ = writeln!(self.0);
        line
    }

    fn read_line(&mut self, deadline: &Deadline) -> Result<Zeroizing<Vec<u8>>> {
        let mut line = Zeroizing::new(Vec::with_capacity(MAX_LINE));
        let mut byte = [0u8; 1];
        loop {
            let remaining = deadline.remaining();
            if remaining.is_zero() {
                return Err(deadline.exceeded("waiting for the PIN to be typed at the terminal"));
            }
            let timeout = timespec(remaining);
            let mut fds = [PollFd::new(&self.0, PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    return Err(PluginError::generic(format!(
                        "cannot read the terminal: {e}"
                    )))
                }
            }
            match self.0.read(&mut byte) {
                Ok(0) => return Ok(line),
                Ok(_) if matches!(byte[0], b'\n' | b'\r') => return Ok(line),
                Ok(_) if line.len() >= MAX_LINE => {
                    return Err(PluginError::validation(format!(
                        "the PIN typed at the terminal is longer than {MAX_LINE} characters"
                    )))
                }
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(PluginError::generic(format!(
                        "cannot read the terminal: {e}"
                    )))
                }
            }
        }
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}
