//! Real servers from `SQDATA_TEST_*` (set by `cargo xtask test`); a missing
//! variable is a failure with instructions, never a silent pass. Each test
//! gets its own Redis key prefix and ClickHouse database, removed at the end.

#![allow(dead_code)]

pub use sqdata_testkit::env;
use std::path::Path;
use std::time::Duration;

use sqdata::{ClickHouseConfig, ClickHouseStore, Config, RedisConfig, RedisStore, Tier};

pub fn redis_config() -> RedisConfig {
    RedisConfig {
        url: env("SQDATA_TEST_REDIS_URL"),
        prefix: format!("sqtest{:x}", sqdata_testkit::random_u64()),
        ..Default::default()
    }
}

pub fn clickhouse_config(dir: &Path) -> ClickHouseConfig {
    ClickHouseConfig {
        url: env("SQDATA_TEST_CLICKHOUSE_URL"),
        database: format!("sqtest_{:x}", sqdata_testkit::random_u64()),
        journal_dir: dir.join("clickhouse-journal"),
        flush_interval_ms: 200,
        ..Default::default()
    }
}

/// Tier mvp on the shared test servers, files under `dir`.
pub fn mvp(dir: &Path) -> Config {
    let mut c = Config { tier: Tier::Mvp, ..Config::default() };
    c.file.root = dir.join("data");
    c.redis = redis_config();
    c.clickhouse = clickhouse_config(dir);
    c.hybrid.probe_interval_ms = 100;
    c.hybrid.primary_timeout_ms = 500;
    c
}

/// Removes the test's Redis keys and ClickHouse database when dropped.
pub struct Cleanup {
    redis: Option<RedisConfig>,
    clickhouse: Option<ClickHouseConfig>,
}

impl Cleanup {
    pub fn of(c: &Config) -> Cleanup {
        Cleanup { redis: Some(c.redis.clone()), clickhouse: Some(c.clickhouse.clone()) }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (r, c) = (self.redis.take(), self.clickhouse.take());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Some(r) = r.and_then(|r| RedisStore::open(r).ok()) {
                    let _ = tokio::time::timeout(Duration::from_secs(5), r.purge_prefix()).await;
                }
                if let Some(c) = c.and_then(|c| ClickHouseStore::open(c).ok()) {
                    let _ = tokio::time::timeout(Duration::from_secs(10), c.drop_database()).await;
                }
            });
        })
        .join();
    }
}
