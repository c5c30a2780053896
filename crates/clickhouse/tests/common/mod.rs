//! The server comes from `SQDATA_TEST_CLICKHOUSE_URL` (set by `cargo xtask
//! services up` / `cargo xtask ci`); a missing variable is a failure with
//! instructions, never a silent pass. Each fixture gets its own database.

#![allow(dead_code)]

pub use sqdata_testkit::env;
use std::time::Duration;

use sqdata_clickhouse::{ClickHouseConfig, ClickHouseStore};

pub fn config(url: String, journal: &std::path::Path) -> ClickHouseConfig {
    ClickHouseConfig {
        url,
        database: format!("sqtest_{:x}", sqdata_testkit::random_u64()),
        journal_dir: journal.to_path_buf(),
        flush_interval_ms: 200,
        ..Default::default()
    }
}

/// Drops the test's database when the test ends.
pub struct DropDb(pub ClickHouseStore);

impl Drop for DropDb {
    fn drop(&mut self) {
        let s = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), s.drop_database()).await });
        })
        .join();
    }
}
