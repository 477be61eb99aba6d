//! Blocking backend calls under the invocation's deadline. A PKCS#11 module whose network HSM
//! went away can block in `C_Login` or `C_Sign` forever; running the call on a worker thread
//! lets the plugin answer TIMEOUT when the deadline passes, and exit (the stuck thread goes
//! with the process).

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
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
    let worker = match spawned {
        Ok(worker) => worker,
        Err(e) => {
            return Err(crate::PluginError::generic(format!(
                "cannot start a thread for {doing}: {e}"
            )))
        }
    };
    match rx.recv_timeout(deadline.remaining()) {
        Ok(result) => {
            // The worker has answered and is ending: its thread-exit handlers are left, and
            // they must not run while the process exits. A PKCS#11 module's OpenSSL has one,
            // which takes a lock that OpenSSL's exit handler frees: notation-pkcs11 crashed
            // with SIGSEGV in a "backend-call" thread after its answer was out (once in
            // thousands of runs of scripts/bench.sh). Past its answer nothing in it waits on
            // the backend, and the runner's deadline ends the process whatever happens.
            let _ = worker.join();
            result
        }
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

/// Runs `call`, and `local` on this same thread the first time `call` waits on its backend
/// ([`waiting_on_backend`], inside that wait), or once `call` has returned if it never waits:
/// local work that is needed only with the backend's answer (reading and checking a chain file
/// while the sign call is out) then runs while the request is in flight, and takes no time from
/// preparing it. It runs on no thread of its own: starting one took 0.5 ms from the first request
/// of a Key Vault sign, on two cores (its stack's mapping and first page faults contend with the
/// main thread's for the process's memory map).
///
/// `local` must be short and must not block on the backend or an async runtime: it holds up the
/// handling of the answer it overlaps.
pub fn while_waiting<L, C, RL, RC>(local: L, call: C) -> (RL, RC)
where
    L: FnOnce() -> RL + 'static,
    C: FnOnce() -> RC,
    RL: 'static,
{
    let result = Rc::new(RefCell::new(None));
    let job: LocalWork = {
        let result = Rc::clone(&result);
        Box::new(move || *result.borrow_mut() = Some(local()))
    };
    // Puts back the work of an enclosing while_waiting however `call` ends (a panic included),
    // and hands over this one's, if it has not run yet.
    struct Restore(Option<Option<LocalWork>>);
    impl Restore {
        fn ours(&mut self) -> Option<LocalWork> {
            let previous = self.0.take()?;
            WAITING.with(|w| std::mem::replace(&mut *w.borrow_mut(), previous))
        }
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            self.ours();
        }
    }
    let mut restore = Restore(Some(WAITING.with(|w| w.borrow_mut().replace(job))));
    let b = call();
    if let Some(job) = restore.ours() {
        job();
    }
    let a = result.borrow_mut().take();
    (a.expect("the local work ran during or after the call"), b)
}

/// Work of a [`while_waiting`] that has not run yet.
type LocalWork = Box<dyn FnOnce()>;

thread_local! {
    /// The local work of the [`while_waiting`] running on this thread, until it runs.
    static WAITING: RefCell<Option<LocalWork>> = const { RefCell::new(None) };
}

/// Says that this thread now waits on its backend: the local work of the [`while_waiting`]
/// it runs in (if any) runs now, within the wait. Called by [`announce_waits`]; cheap when there
/// is none.
pub fn waiting_on_backend() {
    // Taken before they run: the work itself may announce nothing, and finds nothing to run.
    let first = FIRST_WAIT.with(|f| std::mem::take(&mut *f.borrow_mut()));
    for job in first {
        job();
    }
    if let Some(job) = WAITING.with(|w| w.borrow_mut().take()) {
        job();
    }
}

/// Runs `work` on this thread within the next wait on a backend ([`waiting_on_backend`]),
/// before any [`while_waiting`]'s: for set-up that an answer needs and the request does not (the
/// trust store a TLS handshake checks the server's certificate against), so that it neither
/// delays the first request nor needs a thread of its own. Whoever needs what `work` makes must
/// make it too if it is not there yet (no wait may come first), and `work` must then find it
/// made: a `OnceLock`'s `get_or_init` on both sides.
pub fn at_first_wait(work: impl FnOnce() + 'static) {
    FIRST_WAIT.with(|f| f.borrow_mut().push(Box::new(work)));
}

thread_local! {
    /// The work of [`at_first_wait`], until the next wait on a backend.
    static FIRST_WAIT: RefCell<Vec<LocalWork>> = const { RefCell::new(Vec::new()) };
}

/// `fut`, saying [`waiting_on_backend`] whenever it waits (returns pending), unless what it
/// waits on is a [`host_lookup`]: the future a backend blocks on for each of its requests.
pub async fn announce_waits<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        // Set again, within this poll, by a host lookup that is pending (nested announcers see
        // what the innermost saw).
        LOOKING_UP.with(|l| l.set(false));
        let poll = fut.as_mut().poll(cx);
        if poll.is_pending() && !LOOKING_UP.with(|l| l.get()) {
            waiting_on_backend();
        }
        poll
    })
    .await
}

/// `fut`, the lookup of a backend's host name: a poll in which it is pending announces no wait
/// ([`announce_waits`]), so the local work of [`while_waiting`] and [`at_first_wait`] runs once
/// the connection is being made, not while the name is looked up. That work runs on this thread
/// and would hold up the connection: a name found in `/etc/hosts` is looked up in microseconds.
pub async fn host_lookup<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        let poll = fut.as_mut().poll(cx);
        if poll.is_pending() {
            LOOKING_UP.with(|l| l.set(true));
        }
        poll
    })
    .await
}

thread_local! {
    /// Whether a [`host_lookup`] was pending in the current poll of an [`announce_waits`].
    static LOOKING_UP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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

    /// What happened, in order, on this thread.
    type Log = Rc<RefCell<Vec<&'static str>>>;

    fn log() -> Log {
        Rc::new(RefCell::new(Vec::new()))
    }

    /// Local work for [`while_waiting`] that logs "local" and returns the thread it ran on.
    fn logging(log: &Log) -> impl FnOnce() -> std::thread::ThreadId + 'static {
        let log = Rc::clone(log);
        move || {
            log.borrow_mut().push("local");
            std::thread::current().id()
        }
    }

    #[test]
    fn local_work_runs_on_this_thread_within_the_first_wait_on_the_backend() {
        let log = log();
        let (ran_on, answer) = while_waiting(logging(&log), || {
            log.borrow_mut().push("request prepared");
            waiting_on_backend();
            log.borrow_mut().push("answer read");
            // A second wait runs nothing again.
            waiting_on_backend();
            7
        });
        assert_eq!(answer, 7);
        assert_eq!(ran_on, std::thread::current().id());
        assert_eq!(
            *log.borrow(),
            ["request prepared", "local", "answer read"],
            "the local work runs inside the wait, once"
        );
        assert!(WAITING.with(|w| w.borrow().is_none()));
    }

    #[test]
    fn without_a_wait_the_local_work_runs_once_the_call_returns() {
        let log = log();
        let (_, ()) = while_waiting(logging(&log), || log.borrow_mut().push("call"));
        assert_eq!(*log.borrow(), ["call", "local"]);
        // It is gone with the call: a later wait on this thread runs nothing.
        assert!(WAITING.with(|w| w.borrow().is_none()));
        waiting_on_backend();
        assert_eq!(log.borrow().len(), 2);
    }

    #[test]
    fn nested_calls_each_run_their_own_local_work() {
        let log = log();
        let outer_log = Rc::clone(&log);
        let (_, ()) = while_waiting(
            move || outer_log.borrow_mut().push("outer local"),
            || {
                let (_, ()) = while_waiting(logging(&log), || {
                    waiting_on_backend();
                    log.borrow_mut().push("inner answered");
                });
                waiting_on_backend();
                log.borrow_mut().push("outer answered");
            },
        );
        assert_eq!(
            *log.borrow(),
            ["local", "inner answered", "outer local", "outer answered"]
        );
        assert!(WAITING.with(|w| w.borrow().is_none()));
    }

    #[test]
    fn a_call_that_panics_does_not_leave_the_local_work_waiting() {
        let log = log();
        let local = logging(&log);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            while_waiting(local, || -> u8 { panic!("the backend call panicked") })
        }));
        assert!(outcome.is_err());
        assert!(WAITING.with(|w| w.borrow().is_none()));
        waiting_on_backend();
        assert!(log.borrow().is_empty(), "{:?}", log.borrow());
    }

    /// Pending for its first `n` polls (waking itself), then ready.
    struct PendingFor(u32);
    impl Future for PendingFor {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if self.0 == 0 {
                return std::task::Poll::Ready(());
            }
            self.0 -= 1;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }

    fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        fut.poll(&mut cx)
    }

    /// Sets `log`'s local work as a [`while_waiting`] would, for polling futures by hand.
    fn expect_local_work(log: &Log) {
        let local = logging(log);
        let job: LocalWork = Box::new(move || {
            local();
        });
        WAITING.with(|w| *w.borrow_mut() = Some(job));
    }

    #[test]
    fn a_future_announces_its_wait_when_it_is_pending() {
        let log = log();
        expect_local_work(&log);
        // Ready at once: no wait, nothing announced.
        let mut ready = std::pin::pin!(announce_waits(std::future::ready(())));
        assert!(poll_once(ready.as_mut()).is_ready());
        assert!(log.borrow().is_empty());
        let mut fut = std::pin::pin!(announce_waits(PendingFor(1)));
        assert!(poll_once(fut.as_mut()).is_pending());
        assert_eq!(*log.borrow(), ["local"]);
        assert!(WAITING.with(|w| w.borrow().is_none()));
        assert!(poll_once(fut.as_mut()).is_ready());
    }

    #[test]
    fn a_host_lookup_is_not_a_wait_on_the_backend() {
        let log = log();
        expect_local_work(&log);
        // The name is looked up (pending twice), then the request waits on its backend; inside
        // two announcers, as a retry loop around a client's own would be.
        let lookup_then_request = async {
            host_lookup(PendingFor(2)).await;
            PendingFor(1).await;
        };
        let mut fut = std::pin::pin!(announce_waits(announce_waits(lookup_then_request)));
        assert!(poll_once(fut.as_mut()).is_pending());
        assert!(poll_once(fut.as_mut()).is_pending());
        assert!(log.borrow().is_empty(), "ran during the lookup");
        assert!(poll_once(fut.as_mut()).is_pending());
        assert_eq!(*log.borrow(), ["local"]);
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
    fn a_call_that_answered_has_ended_its_thread_with_its_exit_handlers() {
        use std::sync::atomic::{AtomicBool, Ordering};
        static EXITED: AtomicBool = AtomicBool::new(false);
        /// A thread-exit handler that takes its time, as a library's may.
        struct SlowExit;
        impl Drop for SlowExit {
            fn drop(&mut self) {
                std::thread::sleep(Duration::from_millis(100));
                EXITED.store(true, Ordering::SeqCst);
            }
        }
        thread_local!(static ON_EXIT: RefCell<Option<SlowExit>> = const { RefCell::new(None) });
        let deadline = Deadline::after(Duration::from_secs(10));
        let answer = run_with_deadline(&deadline, "x", || {
            ON_EXIT.with(|e| *e.borrow_mut() = Some(SlowExit));
            Ok(7)
        });
        assert_eq!(answer.unwrap(), 7);
        assert!(
            EXITED.load(Ordering::SeqCst),
            "the worker's thread-exit handlers had not finished when its answer was returned"
        );
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
