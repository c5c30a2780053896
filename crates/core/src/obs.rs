//! Observability helpers shared by every backend: one latency histogram and
//! one error counter per (backend, operation), through the `metrics` facade.
//! Libraries only record; binaries install an exporter.

use std::future::Future;
use std::time::Instant;

use crate::error::Result;

/// Histogram of operation latency, seconds. Labels: `backend`, `op`.
pub const OP_DURATION: &str = "sqdata_op_duration_seconds";
/// Counter of failed operations. Labels: `backend`, `op`, `kind`.
pub const OP_ERRORS: &str = "sqdata_op_errors_total";

/// Runs `fut`, recording its latency and, on failure, the error kind.
pub async fn timed<T>(backend: &'static str, op: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
    let t = Instant::now();
    let r = fut.await;
    metrics::histogram!(OP_DURATION, "backend" => backend, "op" => op).record(t.elapsed().as_secs_f64());
    if let Err(e) = &r {
        metrics::counter!(OP_ERRORS, "backend" => backend, "op" => op, "kind" => e.kind()).increment(1);
    }
    r
}
