#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqdata_core::Stores;
use sqdata_file::{FileConfig, FileStore};
use sqdata_hybrid::{Hybrid, HybridConfig, Mode, Stage};
use sqdata_testkit::MemoryStore;
use sqdata_testkit::chaos::Chaos;

pub fn files(dir: &Path, ttl: Duration) -> Stores {
    let cfg = FileConfig { quote_ttl_ms: ttl.as_millis() as u64, ..FileConfig::at(dir.join("files")) };
    Stores::from_one(Arc::new(FileStore::open(cfg).expect("file store")))
}

pub fn config(dir: &Path) -> HybridConfig {
    HybridConfig {
        stage: Stage::Writes,
        probe_interval_ms: 50,
        primary_timeout_ms: 300,
        journal_dir: dir.join("journal"),
        rollout_file: dir.join("rollout.json"),
        ..Default::default()
    }
}

/// A hybrid over a chaos-wrapped memory primary and a file secondary.
pub fn hybrid(dir: &Path, ttl: Duration) -> (Arc<Hybrid>, Arc<Chaos>, Stores) {
    let primary = Chaos::wrap(Stores::from_one(Arc::new(MemoryStore::new(ttl))));
    let secondary = files(dir, ttl);
    let h = Hybrid::new(primary.stores(), secondary.clone(), config(dir)).expect("hybrid");
    (h, primary, secondary)
}

pub async fn wait_mode(h: &Hybrid, domain: &str, mode: Mode, within: Duration) {
    let t = Instant::now();
    loop {
        if h.status().iter().any(|s| s.domain.as_str() == domain && s.mode == mode) {
            return;
        }
        assert!(t.elapsed() < within, "{domain} not {mode:?} after {within:?}: {:?}", h.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
