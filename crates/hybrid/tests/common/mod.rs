#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqdata_core::{BookId, Code, Deal, DealKind, Stores};
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

/// A code of the Shenzhen market: `00000i.SZ`.
pub fn code(i: u32) -> Code {
    Code::new(&format!("{:06}", i), sqdata_core::Market::SZ).unwrap()
}

/// A book of account 55009728.
pub fn book(name: &str) -> BookId {
    BookId::new("55009728", name).unwrap()
}

/// Deal `<prefix><i>` of `b`: a limit buy of 100 of code 1 at 10.
pub fn deal(prefix: &str, b: &BookId, i: u32) -> Deal {
    Deal {
        id: format!("{prefix}{i}"),
        book: b.clone(),
        time: chrono::NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(10, 0, i % 60).unwrap(),
        code: code(1),
        name: String::new(),
        kind: DealKind::LimitBuy,
        remark: String::new(),
        price: 10.0,
        volume: 100,
        amount: 1000.0,
        strategy: String::new(),
    }
}
