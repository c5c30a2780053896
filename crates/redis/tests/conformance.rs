//! The conformance suite on the machine's Redis, a 3-node cluster and a
//! Sentinel-monitored master/replica, each case under its own key prefix.

mod common;

use std::sync::Arc;
use std::time::Duration;

use sqdata_redis::{RedisConfig, RedisStore};
use sqdata_testkit::Fixture;

fn fixture(cfg: RedisConfig) -> Fixture {
    let ttl = Duration::from_millis(cfg.quote_ttl_ms);
    let s = RedisStore::open(cfg).expect("open redis store");
    let store = Arc::new(s.clone());
    Fixture {
        positions: Some(store.clone()),
        quotes: Some(store),
        quote_ttl: ttl,
        guard: Some(Box::new(common::Purge(s))),
        ..Default::default()
    }
}

mod standalone {
    use super::*;
    async fn fx() -> Fixture {
        fixture(common::standalone())
    }
    sqdata_testkit::conformance!(fx; positions, quotes);
}

mod cluster {
    use super::*;
    async fn fx() -> Fixture {
        fixture(common::cluster())
    }
    sqdata_testkit::conformance!(fx; positions, quotes);
}

mod sentinel {
    use super::*;
    async fn fx() -> Fixture {
        fixture(common::sentinel())
    }
    sqdata_testkit::conformance!(fx; positions, quotes);
}
