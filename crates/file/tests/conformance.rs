//! The suite against the file backend, each case in its own temp folder.

use std::sync::Arc;
use std::time::Duration;

use sqdata_file::{FileConfig, FileStore};
use sqdata_testkit::Fixture;

async fn files() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let ttl = Duration::from_millis(800);
    let cfg = FileConfig { quote_ttl_ms: ttl.as_millis() as u64, ..FileConfig::at(dir.path()) };
    let mut fx = Fixture::all(Arc::new(FileStore::open(cfg).expect("open file store")), ttl);
    fx.guard = Some(Box::new(dir));
    fx
}

sqdata_testkit::conformance!(files; positions, quotes, deals, assets, bars);
