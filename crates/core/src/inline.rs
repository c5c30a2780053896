//! Blocking I/O in place, for callers that block on the runtime from a
//! thread of their own (the Python package: each call is `block_on` on the
//! caller's thread with the GIL released).
//!
//! A backend may then do a short request on a blocking socket right where
//! the future is polled instead of handing it to a connection task on a
//! worker thread and waiting to be woken — the two thread hops cost more
//! than a loopback round trip. Only threads inside [`run`] are marked; a
//! runtime worker never is, so a server's executor is never blocked.
//!
//! Blocking code cannot be cancelled by a timeout future, so
//! [`crate::layer::deadline`] publishes its deadline here while it polls;
//! blocking code bounds itself with [`remaining`].

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

thread_local! {
    static ALLOWED: Cell<bool> = const { Cell::new(false) };
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with blocking I/O in place allowed on this thread.
pub fn run<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            ALLOWED.with(|a| a.set(self.0));
        }
    }
    let _reset = Reset(ALLOWED.with(|a| a.replace(true)));
    f()
}

/// Whether this thread may block in place (inside [`run`]).
pub fn allowed() -> bool {
    ALLOWED.with(Cell::get)
}

/// The time left before the nearest deadline being polled on this thread
/// (`None`: no deadline; `Some(ZERO)`: already past).
pub fn remaining() -> Option<Duration> {
    DEADLINE.with(Cell::get).map(|d| d.saturating_duration_since(Instant::now()))
}

/// `fut`, with `at` published as this thread's deadline while it is polled
/// (the nearer of it and any outer deadline).
pub(crate) fn with_deadline<F: Future>(at: Instant, fut: F) -> WithDeadline<F> {
    WithDeadline { at, fut: Box::pin(fut) }
}

pub(crate) struct WithDeadline<F> {
    at: Instant,
    fut: Pin<Box<F>>,
}

impl<F: Future> Future for WithDeadline<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Restored by a guard: a panic inside (turned into an exception by
        // the Python binding) must not leave a past deadline on the thread.
        struct Restore(Option<Instant>);
        impl Drop for Restore {
            fn drop(&mut self) {
                DEADLINE.with(|d| d.set(self.0));
            }
        }
        let at = self.at;
        let _restore = Restore(DEADLINE.with(|d| d.replace(Some(d.get().map_or(at, |o| o.min(at))))));
        self.fut.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_only_inside_run_and_nests() {
        assert!(!allowed());
        run(|| {
            assert!(allowed());
            run(|| assert!(allowed()));
            assert!(allowed());
        });
        assert!(!allowed());
        assert!(std::thread::spawn(|| run(allowed)).join().unwrap());
        assert!(!allowed());
    }

    /// Polls a future that is ready at once.
    fn now<F: Future>(f: F) -> F::Output {
        let mut f = Box::pin(f);
        match f.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("not ready"),
        }
    }

    #[test]
    fn deadlines_are_seen_while_polled_and_nest_to_the_nearest() {
        assert_eq!(remaining(), None);
        let far = Instant::now() + Duration::from_secs(60);
        let near = Instant::now() + Duration::from_millis(500);
        let seen = now(with_deadline(far, async { (remaining(), with_deadline(near, async { remaining() }).await) }));
        assert!(seen.0.unwrap() > Duration::from_secs(50));
        assert!(seen.1.unwrap() <= Duration::from_millis(500));
        let inner_far = now(with_deadline(near, async { with_deadline(far, async { remaining() }).await }));
        assert!(inner_far.unwrap() <= Duration::from_millis(500), "the outer, nearer deadline wins");
        assert_eq!(remaining(), None);
        let panicked = std::panic::catch_unwind(|| now(with_deadline(near, async { panic!("inside") })));
        assert!(panicked.is_err());
        assert_eq!(remaining(), None, "a panic inside leaves no deadline behind");
    }
}
