//! Blocking backend calls under the invocation's deadline. A PKCS#11 module whose network HSM
//! went away can block in `C_Login` or `C_Sign` forever; running the call on a worker thread
//! lets the plugin answer TIMEOUT when the deadline passes, and exit (the stuck thread goes
//! with the process).

use std::sync::{mpsc, Arc, Mutex};

use crate::deadline::Deadline;
use crate::error::Result;

/// Runs `call` on a worker thread and waits for it until `deadline`; past it, the answer is
/// TIMEOUT naming `doing` and the call is left behind (the process exits after answering).
pub(crate) fn run_with_deadline<T, F>(deadline: &Deadline, doing: &str, call: F) -> Result<T>
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

/// A backend handle that blocks (a PKCS#11 session, a PC/SC card) used from worker threads, one
/// call at a time, each under the invocation's deadline: a call that hangs past it is left
/// behind holding the handle, and the invocation answers TIMEOUT.
pub struct SharedHandle<T>(Arc<Mutex<T>>);

impl<T: Send + 'static> SharedHandle<T> {
    /// Wraps `handle` for [`SharedHandle::run`].
    pub fn new(handle: T) -> Self {
        Self(Arc::new(Mutex::new(handle)))
    }

    /// Runs `call` on the handle on a worker thread until `deadline`, as
    /// [`crate::Context::run_blocking`] does; `doing` names the call in a TIMEOUT.
    pub fn run<R, F>(&self, deadline: &Deadline, doing: &str, call: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut T) -> Result<R> + Send + 'static,
    {
        let handle = Arc::clone(&self.0);
        run_with_deadline(deadline, doing, move || {
            let mut handle = handle.lock().unwrap_or_else(|p| p.into_inner());
            call(&mut handle)
        })
    }
}

/// Runs `first` and `second` at the same time (`first` on a scoped thread), for two backend
/// requests that do not depend on each other (a chain fetch and the sign call): the wall time is
/// one round trip, not two. Each closure bounds itself by the deadline, as every backend call does.
pub fn concurrently<A, B, RA, RB>(first: A, second: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB,
    RA: Send,
{
    std::thread::scope(|s| {
        let handle = s.spawn(first);
        let b = second();
        match handle.join() {
            Ok(a) => (a, b),
            // The panic hook has already answered; end the way the panic would have.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// For [`crate::Backend::sign_unresolved`]: `sign`, and when `fetch_chain` also `chain` at the
/// same time (see [`concurrently`]); the signature and the certificates (none unless fetched).
pub fn sign_and_fetch_chain<C, S>(fetch_chain: bool, chain: C, sign: S) -> Result<crate::Signed>
where
    C: FnOnce() -> Result<Vec<Vec<u8>>> + Send,
    S: FnOnce() -> Result<crate::BackendSignature>,
{
    if !fetch_chain {
        return Ok((sign()?, Vec::new()));
    }
    let (certificates, signature) = concurrently(chain, sign);
    Ok((signature?, certificates?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn concurrently_overlaps_both_calls_and_keeps_their_order() {
        let start = Instant::now();
        let (a, b) = concurrently(
            || {
                std::thread::sleep(Duration::from_millis(300));
                "first"
            },
            || {
                std::thread::sleep(Duration::from_millis(300));
                "second"
            },
        );
        assert_eq!((a, b), ("first", "second"));
        assert!(
            start.elapsed() < Duration::from_millis(550),
            "{:?}",
            start.elapsed()
        );
    }

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
