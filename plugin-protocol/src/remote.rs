//! Remote backends on an async client (the AWS and Azure SDKs): one call retried under the
//! invocation's deadline, the way [`crate::config::retry`] does it for blocking clients. Each
//! attempt is bounded by what is left of the deadline; throttling and transient failures are
//! retried with the shared bounded, jittered backoff (honouring Retry-After); the error is the
//! adapter's own mapping of the service's answer.

use std::future::Future;

use crate::config::after_failure;
use crate::deadline::Deadline;
use crate::error::Result;

/// Runs `attempt` (made anew for each try) until it succeeds, fails for good, or the deadline
/// passes (TIMEOUT naming `doing`).
pub async fn retry<T, F, Fut>(deadline: &Deadline, doing: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut tries = 0;
    loop {
        deadline.check(doing)?;
        tries += 1;
        let err = match tokio::time::timeout(deadline.remaining(), attempt()).await {
            Err(_) => return Err(deadline.exceeded(doing)),
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e,
        };
        tracing::debug!(attempt = tries, code = %err.code, message = %err.message, doing, "call failed");
        let delay = after_failure(deadline, doing, tries, err)?;
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, PluginError, Retry};
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn transient_failures_are_retried_and_final_ones_are_not() {
        let deadline = Deadline::after(Duration::from_secs(10));
        let tries = Cell::new(0);
        let out = run(retry(&deadline, "calling", || {
            tries.set(tries.get() + 1);
            let n = tries.get();
            async move {
                if n < 3 {
                    Err(PluginError::generic("flaky").with_retry(Retry::Transient))
                } else {
                    Ok(n)
                }
            }
        }));
        assert_eq!(out.unwrap(), 3);

        tries.set(0);
        let e = run(retry(&deadline, "calling", || {
            tries.set(tries.get() + 1);
            async { Err::<(), _>(PluginError::access_denied("no")) }
        }))
        .unwrap_err();
        assert_eq!((e.code, tries.get()), (ErrorCode::AccessDenied, 1));
    }

    #[test]
    fn an_attempt_that_hangs_ends_at_the_deadline() {
        let deadline = Deadline::after(Duration::from_millis(300));
        let start = Instant::now();
        let e = run(retry(&deadline, "signing", || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        }))
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::Timeout);
        assert!(e.message.contains("signing"), "{}", e.message);
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
