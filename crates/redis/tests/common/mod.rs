//! Test servers come from `SQDATA_TEST_*` variables that `cargo xtask
//! services up` prints (and `cargo xtask ci` sets). A missing variable is a
//! failure with instructions, never a silent pass.

#![allow(dead_code)]

pub use sqdata_testkit::env;
use std::time::Duration;

use sqdata_redis::{RedisConfig, RedisStore};

pub fn prefix() -> String {
    format!("sqtest{:x}", sqdata_testkit::random_u64())
}

pub fn standalone() -> RedisConfig {
    RedisConfig { url: env("SQDATA_TEST_REDIS_URL"), prefix: prefix(), quote_ttl_ms: 800, ..Default::default() }
}

pub fn cluster() -> RedisConfig {
    RedisConfig {
        cluster: env("SQDATA_TEST_REDIS_CLUSTER_URLS").split(',').map(str::to_owned).collect(),
        prefix: prefix(),
        quote_ttl_ms: 800,
        ..Default::default()
    }
}

pub fn sentinel() -> RedisConfig {
    RedisConfig {
        sentinels: vec![env("SQDATA_TEST_REDIS_SENTINEL_URL")],
        sentinel_master: env("SQDATA_TEST_REDIS_SENTINEL_MASTER"),
        replica_acks: 1,
        prefix: prefix(),
        quote_ttl_ms: 800,
        ..Default::default()
    }
}

/// Deletes the test's prefix when the test ends (SCAN + DEL, never FLUSHDB).
pub struct Purge(pub RedisStore);

impl Drop for Purge {
    fn drop(&mut self) {
        let s = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), s.purge_prefix()).await });
        })
        .join();
    }
}
