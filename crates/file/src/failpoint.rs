//! Crash points for the kill tests: `SQDATA_FAILPOINT=<name>[@<n>]` makes
//! the process abort (no unwinding, no destructors, no flush: as SIGKILL
//! would leave it) the `n`th time (default: first) it reaches `<name>` —
//! or, for a point checked with [`fires`], fail that step with an error.
//! Unset, a check is one load of a cached value.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    name: String,
    nth: u64,
    seen: AtomicU64,
}

fn armed_point() -> Option<&'static Armed> {
    static POINT: OnceLock<Option<Armed>> = OnceLock::new();
    POINT
        .get_or_init(|| {
            let v = std::env::var("SQDATA_FAILPOINT").ok()?;
            let (name, nth) = match v.split_once('@') {
                Some((n, k)) => (n.to_owned(), k.parse().unwrap_or(1)),
                None => (v, 1),
            };
            Some(Armed { name, nth, seen: AtomicU64::new(0) })
        })
        .as_ref()
}

/// Counts a pass through `name`: true on the armed `n`th one (the caller
/// then does its partial work and calls [`abort`]).
pub(crate) fn fires(name: &str) -> bool {
    armed_point().is_some_and(|a| a.name == name && a.seen.fetch_add(1, Ordering::SeqCst) + 1 == a.nth)
}

/// Aborts the process when `name` is armed and this is its `n`th pass.
pub(crate) fn hit(name: &str) {
    if fires(name) {
        abort(name);
    }
}

/// Aborts the process, saying where.
pub(crate) fn abort(name: &str) -> ! {
    eprintln!("failpoint {name}: aborting");
    std::process::abort();
}
