//! Blocking backend calls under the invocation's deadline. A PKCS#11 module whose network HSM
//! went away can block in `C_Login` or `C_Sign` forever; running the call on a worker thread
//! lets the plugin answer TIMEOUT when the deadline passes, and exit (the stuck thread goes
//! with the process).

use std::sync::mpsc;

use crate::config::Deadline;
use crate::error::Result;

/// Runs `call` on a worker thread and waits for it until `deadline`; past it, the answer is
/// TIMEOUT naming `doing` and the call is left behind (the process exits after answering).
pub fn run_with_deadline<T, F>(deadline: &Deadline, doing: &str, call: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    deadline.check(doing)?;
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("backend-call".into())
        .spawn(move || {
            let _ = tx.send(call());
        });
    if let Err(e) = spawned {
        return Err(crate::PluginError::generic(format!(
            "cannot start a thread for {doing}: {e}"
        )));
    }
    match rx.recv_timeout(deadline.remaining()) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            tracing::debug!(doing, "deadline passed during a blocking backend call");
            Err(deadline.exceeded(doing))
        }
        // The worker panicked: the panic hook has already answered.
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(crate::PluginError::generic(format!(
            "the backend call ({doing}) ended without an answer"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_call_that_hangs_ends_at_the_deadline_with_timeout() {
        let deadline = Deadline::after(Duration::from_millis(200));
        let start = Instant::now();
        let e = run_with_deadline(&deadline, "signing", || {
            std::thread::sleep(Duration::from_secs(30));
            Ok(())
        })
        .unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::Timeout);
        assert!(e.message.contains("signing"), "{}", e.message);
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_call_that_answers_in_time_gives_its_answer() {
        let deadline = Deadline::after(Duration::from_secs(10));
        assert_eq!(run_with_deadline(&deadline, "x", || Ok(7)).unwrap(), 7);
        let deadline = Deadline::after(Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(1));
        let e = run_with_deadline(&deadline, "x", || Ok(7)).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::Timeout);
    }
}
