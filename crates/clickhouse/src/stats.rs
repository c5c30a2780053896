//! Table storage statistics ([`TableStats`]) and the health check.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use sqdata_core::{BackendHealth, HealthCheck, Result, async_trait};

use crate::core::{BACKEND, ClickHouseStore};

/// Storage of one table (`system.parts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Row)]
pub struct TableStats {
    /// Table.
    pub table: String,
    /// Rows in active parts.
    pub rows: u64,
    /// Bytes on disk.
    pub bytes_on_disk: u64,
    /// Uncompressed bytes.
    pub uncompressed_bytes: u64,
}

impl TableStats {
    /// Uncompressed / on-disk.
    pub fn compression_ratio(&self) -> f64 {
        if self.bytes_on_disk == 0 { 0.0 } else { self.uncompressed_bytes as f64 / self.bytes_on_disk as f64 }
    }
}

impl ClickHouseStore {
    /// Rows, bytes on disk and compression ratio per table (`system.parts`).
    pub async fn stats(&self) -> Result<Vec<TableStats>> {
        let (c, _) = self.inner.ready().await?;
        let q = c
            .query(
                "SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes_on_disk, \
                 sum(data_uncompressed_bytes) AS uncompressed_bytes FROM system.parts \
                 WHERE database = ? AND active GROUP BY table ORDER BY table",
            )
            .bind(&self.inner.cfg.database);
        self.inner.t("stats", q.fetch_all::<TableStats>()).await
    }
}

#[async_trait]
impl HealthCheck for ClickHouseStore {
    async fn health(&self) -> BackendHealth {
        let t = Instant::now();
        let r = self.inner.t("health", self.inner.base.query("SELECT 1").fetch_one::<u8>()).await;
        let latency = t.elapsed().max(Duration::from_nanos(1));
        let mut details = BTreeMap::new();
        details.insert("url".into(), serde_json::json!(self.inner.cfg.url));
        details.insert("database".into(), serde_json::json!(self.inner.cfg.database));
        let (jlen, jflushed) = self.inner.journal.lock().state();
        details.insert("pending_deals".into(), serde_json::json!(self.pending_deals()));
        details.insert("journal_bytes".into(), serde_json::json!(jlen));
        details.insert("journal_flushed_bytes".into(), serde_json::json!(jflushed));
        details.insert("flush_failures".into(), serde_json::json!(self.inner.flush_failures.load(Ordering::Relaxed)));
        metrics::gauge!("sqdata_clickhouse_pending_deals").set(self.pending_deals() as f64);
        metrics::gauge!("sqdata_backend_up", "backend" => BACKEND).set(if r.is_ok() { 1.0 } else { 0.0 });
        if r.is_ok() {
            if let Ok(v) = self.server_version().await {
                details.insert("server_version".into(), serde_json::json!(v.to_string()));
            }
            if let Ok(stats) = self.stats().await {
                details.insert(
                    "tables".into(),
                    serde_json::json!(
                        stats
                            .iter()
                            .map(|s| serde_json::json!({
                                "table": s.table, "rows": s.rows, "bytes_on_disk": s.bytes_on_disk,
                                "compression_ratio": (s.compression_ratio() * 100.0).round() / 100.0
                            }))
                            .collect::<Vec<_>>()
                    ),
                );
            }
        }
        BackendHealth {
            backend: BACKEND.into(),
            up: r.is_ok(),
            latency,
            details,
            error: r.err().map(|e| e.to_string()),
        }
    }
}
