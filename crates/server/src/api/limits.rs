//! Rates and the access log: a token bucket per key (a client address, a
//! user name, a principal), and a bounded queue that batches read requests
//! into the access log — a full queue drops rows and counts them
//! (`sqdata_api_access_log_dropped_total`), it never slows a request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sqdata::{AccessEntry, AuthStore};
use tokio::sync::mpsc;

/// Token buckets by key.
#[derive(Debug)]
pub struct Limiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    /// `per_second` tokens refill, up to `burst`.
    pub fn new(per_second: f64, burst: f64) -> Limiter {
        Limiter { per_second, burst: burst.max(1.0), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `key`; `Err(seconds to wait)` when there is none.
    pub fn take(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut b = self.buckets.lock();
        if b.len() > 100_000 {
            // many distinct keys (a scan): forget the full buckets
            let burst = self.burst;
            let rate = self.per_second;
            b.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * rate < burst);
        }
        let (tokens, at) = b.entry(key.to_string()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil() as u64)
        }
    }
}

/// Rows queued for the access log.
const QUEUE: usize = 10_000;
/// Rows written per transaction.
const BATCH: usize = 500;
/// How long the writer waits for a batch to fill.
const LINGER: Duration = Duration::from_millis(100);

/// The access log's queue and its writer task.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: Option<mpsc::Sender<AccessEntry>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl AccessLog {
    /// Starts the writer (when a runtime is there).
    pub fn start(store: Arc<dyn AuthStore>) -> AccessLog {
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return AccessLog { tx: None, dropped } };
        let (tx, mut rx) = mpsc::channel::<AccessEntry>(QUEUE);
        let failed = dropped.clone();
        handle.spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                // linger so that a busy server writes a few large batches a
                // second, not one transaction per request
                if batch.len() < BATCH {
                    tokio::time::sleep(LINGER).await;
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(e) => batch.push(e),
                            Err(_) => break,
                        }
                    }
                }
                if let Err(e) = store.log_access(&batch).await {
                    metrics::counter!("sqdata_api_access_log_dropped_total").increment(batch.len() as u64);
                    failed.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, rows = batch.len(), "the access log refused a batch");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                batch.clear();
            }
        });
        AccessLog { tx: Some(tx), dropped }
    }

    /// Queues a row; drops (and counts) it when the queue is full.
    pub fn push(&self, e: AccessEntry) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("sqdata_api_access_log_dropped_total").increment(1);
        }
    }

    /// Rows dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_past_its_burst_and_refills() {
        let l = Limiter::new(1000.0, 3.0);
        assert!(l.take("a").is_ok() && l.take("a").is_ok() && l.take("a").is_ok());
        assert!(l.take("a").is_err());
        assert!(l.take("b").is_ok(), "keys are independent");
        std::thread::sleep(Duration::from_millis(5));
        assert!(l.take("a").is_ok(), "refilled");
    }
}
