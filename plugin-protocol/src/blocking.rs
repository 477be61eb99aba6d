//! Blocking backend calls under the invocation's deadline. A PKCS#11 module whose network HSM
//! went away can block in `C_Login` or `C_Sign` forever; running the call on a worker thread
//! lets the plugin answer TIMEOUT when the deadline passes, and exit (the stuck thread goes
//! with the process).

use std::cell::RefCell;
use std::future::Future;
use std::sync::{mpsc, Arc, Condvar, Mutex};

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

/// Runs `call` on this thread and `local` on a scoped thread that starts only once `call`
/// waits on its backend ([`waiting_on_backend`]), or has returned: local work that is needed
/// only with the backend's answer (reading and checking a chain file while the sign call is
/// out) then runs while the request is in flight, and takes no CPU from preparing it. On a
/// machine of two cores, where the trust store is read beside the request being prepared, a
/// third busy thread would delay the first request by as much as it does.
pub fn while_waiting<L, C, RL, RC>(local: L, call: C) -> (RL, RC)
where
    L: FnOnce() -> RL + Send,
    C: FnOnce() -> RC,
    RL: Send,
{
    let latch = Arc::new(Latch::default());
    let previous = WAITING.with(|w| w.borrow_mut().replace(Arc::clone(&latch)));
    // Opens the latch however `call` ends (a panic included: the scope joins the local thread).
    struct Open(Arc<Latch>, Option<Arc<Latch>>);
    impl Drop for Open {
        fn drop(&mut self) {
            let previous = self.1.take();
            WAITING.with(|w| *w.borrow_mut() = previous);
            self.0.open();
        }
    }
    std::thread::scope(|s| {
        let waiter = Arc::clone(&latch);
        let handle = s.spawn(move || {
            waiter.wait();
            local()
        });
        let open = Open(latch, previous);
        let b = call();
        drop(open);
        match handle.join() {
            Ok(a) => (a, b),
            // The panic hook has already answered; end the way the panic would have.
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

thread_local! {
    /// The latch of the [`while_waiting`] running on this thread, until it is opened.
    static WAITING: RefCell<Option<Arc<Latch>>> = const { RefCell::new(None) };
}

/// Says that this thread now waits on its backend: the local work of the [`while_waiting`]
/// it runs in (if any) may start. Called by [`announce_waits`]; cheap when there is none.
pub fn waiting_on_backend() {
    if let Some(latch) = WAITING.with(|w| w.borrow_mut().take()) {
        latch.open();
    }
}

/// `fut`, saying [`waiting_on_backend`] whenever it waits (returns pending): the future a
/// backend blocks on for each of its requests.
pub async fn announce_waits<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        let poll = fut.as_mut().poll(cx);
        if poll.is_pending() {
            waiting_on_backend();
        }
        poll
    })
    .await
}

/// A one-way gate: closed until opened, then open for good.
#[derive(Default)]
struct Latch {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    fn open(&self) {
        *self.open.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.opened.notify_all();
    }

    fn wait(&self) {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let _open = self
            .opened
            .wait_while(open, |open| !*open)
            .unwrap_or_else(|p| p.into_inner());
    }
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
    fn local_work_starts_only_once_the_call_waits_on_its_backend() {
        let start = Instant::now();
        let (local_start, announced) = while_waiting(
            || start.elapsed(),
            || {
                std::thread::sleep(Duration::from_millis(200));
                let announced = start.elapsed();
                waiting_on_backend();
                std::thread::sleep(Duration::from_millis(300));
                announced
            },
        );
        assert!(local_start >= announced, "{local_start:?} {announced:?}");
        // It ran while the call was still waiting, not after it.
        assert!(
            local_start < announced + Duration::from_millis(250),
            "{local_start:?} {announced:?}"
        );
    }

    #[test]
    fn without_a_wait_the_local_work_runs_once_the_call_returns() {
        let start = Instant::now();
        let (local_start, returned) = while_waiting(
            || start.elapsed(),
            || {
                std::thread::sleep(Duration::from_millis(200));
                start.elapsed()
            },
        );
        assert!(local_start >= returned, "{local_start:?} {returned:?}");
        // The latch is gone with the call: a later wait on this thread opens nothing.
        assert!(WAITING.with(|w| w.borrow().is_none()));
    }

    #[test]
    fn a_call_that_panics_does_not_leave_the_local_work_waiting() {
        let outcome = std::panic::catch_unwind(|| {
            while_waiting(|| 1, || -> u8 { panic!("the backend call panicked") })
        });
        assert!(outcome.is_err());
        assert!(WAITING.with(|w| w.borrow().is_none()));
    }

    #[test]
    fn a_future_announces_its_wait_when_it_is_pending() {
        /// Pending once (and opens nothing itself), then ready.
        struct PendingOnce(bool);
        impl Future for PendingOnce {
            type Output = ();
            fn poll(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<()> {
                if std::mem::replace(&mut self.0, true) {
                    return std::task::Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                std::task::Poll::Pending
            }
        }
        let poll_once = |fut: std::pin::Pin<&mut dyn Future<Output = ()>>| {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            fut.poll(&mut cx)
        };
        let latch = Arc::new(Latch::default());
        WAITING.with(|w| *w.borrow_mut() = Some(Arc::clone(&latch)));
        // Ready at once: no wait, nothing announced.
        let mut ready = std::pin::pin!(announce_waits(std::future::ready(())));
        assert!(poll_once(ready.as_mut()).is_ready());
        assert!(!*latch.open.lock().unwrap());
        let mut fut = std::pin::pin!(announce_waits(PendingOnce(false)));
        assert!(poll_once(fut.as_mut()).is_pending());
        assert!(*latch.open.lock().unwrap());
        assert!(WAITING.with(|w| w.borrow().is_none()));
        assert!(poll_once(fut.as_mut()).is_ready());
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
