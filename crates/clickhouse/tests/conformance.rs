//! The conformance suite on ClickHouse 18.16 (the server Debian ships), each
//! case in its own database.

mod common;

use std::sync::Arc;
use std::time::Duration;

use sqdata_clickhouse::ClickHouseStore;
use sqdata_testkit::Fixture;

async fn fx() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = common::config(common::env("SQDATA_TEST_CLICKHOUSE_URL"), dir.path());
    let s = ClickHouseStore::open(cfg).expect("open clickhouse store");
    let store = Arc::new(s.clone());
    Fixture {
        deals: Some(store.clone()),
        assets: Some(store.clone()),
        bars: Some(store),
        quote_ttl: Duration::from_secs(1),
        guard: Some(Box::new((common::DropDb(s), dir))),
        ..Default::default()
    }
}

sqdata_testkit::conformance!(fx; deals, assets, bars);

/// The same suite on a current engine (ClickHouse 26.x embedded in chdb,
/// behind the chdb-http shim): codecs, LowCardinality, TTL and skip indexes.
mod modern {
    use super::*;

    async fn fx() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = common::config(common::env("SQDATA_TEST_CHDB_URL"), dir.path());
        cfg.compression = "none".into();
        cfg.keep_alive = false;
        let s = ClickHouseStore::open(cfg).expect("open clickhouse store");
        let store = Arc::new(s.clone());
        Fixture {
            deals: Some(store.clone()),
            assets: Some(store.clone()),
            bars: Some(store),
            quote_ttl: Duration::from_secs(1),
            guard: Some(Box::new((common::DropDb(s), dir))),
            ..Default::default()
        }
    }

    sqdata_testkit::conformance!(fx; deals, assets, bars);
}
