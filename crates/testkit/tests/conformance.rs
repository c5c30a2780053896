//! The suite against the in-memory reference store.

use std::sync::Arc;
use std::time::Duration;

use sqdata_testkit::{Fixture, MemoryStore};

async fn memory() -> Fixture {
    let ttl = Duration::from_millis(800);
    Fixture::all(Arc::new(MemoryStore::new(ttl)), ttl)
}

sqdata_testkit::conformance!(memory; positions, quotes, deals, assets, bars);
