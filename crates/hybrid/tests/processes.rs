//! Several processes on one folder (two hybrids over one server and one
//! folder stand for two processes: separate caches, journals and locks):
//! a dual write and another process's replay of the same book are ordered
//! by the book's lock; `rollout rollback` does not copy back over another
//! process's unreplayed writes; and an orphan adopted while a recovery
//! finishes is not stranded.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use parking_lot::Mutex;
use sqdata_core::{
    AssetRow, AssetStore, AssetStoreExt as _, BookId, Code, DateRange, Domain, Error, PositionStore, Result, Stores,
    async_trait,
};
use sqdata_hybrid::{Hybrid, HybridConfig, Mode, Unit};
use sqdata_testkit::MemoryStore;
use sqdata_testkit::chaos::{Chaos, Fault};

fn code(i: u32) -> Code {
    Code::new(&format!("{:06}", i), sqdata_core::Market::SZ).unwrap()
}

fn book(name: &str) -> BookId {
    BookId::new("55009728", name).unwrap()
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 3, d).unwrap()
}

async fn asset_on(s: &Stores, b: &BookId, d: NaiveDate) -> Option<f64> {
    let r = DateRange { from: Some(d), to: Some(d) };
    s.assets.assets(b, r).await.unwrap().first().map(|r| r.asset)
}

async fn until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < within, "{what}: not after {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Finding 7: process B replays a journaled equity day (reads the files,
/// then writes the server — which stalls) while process A writes the same
/// day (server, then files). Without the book's lock A's write lands in
/// between and B's stale copy overwrites it on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_write_and_another_process_replay_are_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let files = common::files(dir.path(), ttl);
    let a = Hybrid::new(mem.clone(), common::files(dir.path(), ttl), common::config(dir.path())).unwrap();
    let chaos = Chaos::wrap(mem.clone());
    let slow = HybridConfig { probe_interval_ms: 600_000, primary_timeout_ms: 10_000, ..common::config(dir.path()) };
    let b = Hybrid::new(chaos.stores(), common::files(dir.path(), ttl), slow).unwrap();
    let bk = book("ordered");
    a.upsert_asset(&bk, AssetRow { date: day(3), asset: 100.0 }).await.unwrap(); // adopted
    chaos.switch.set(Fault::Fail);
    b.upsert_asset(&bk, AssetRow { date: day(3), asset: 101.0 }).await.unwrap(); // B journals it
    assert_eq!(b.status().iter().find(|s| s.domain == Domain::Assets).unwrap().mode, Mode::Degraded);
    chaos.switch.set(Fault::Hang);
    let calls = chaos.switch.calls();
    let replay = tokio::spawn({
        let b = b.clone();
        async move { b.recover(Domain::Assets).await }
    });
    until("B's replay reached the server", Duration::from_secs(5), || chaos.switch.calls() > calls).await;
    let write = tokio::spawn({
        let (a, bk) = (a.clone(), bk.clone());
        async move { a.upsert_asset(&bk, AssetRow { date: day(3), asset: 102.0 }).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    chaos.switch.set(Fault::None);
    replay.await.unwrap().unwrap();
    write.await.unwrap().unwrap();
    assert_eq!(asset_on(&files, &bk, day(3)).await, Some(102.0));
    assert_eq!(asset_on(&mem, &bk, day(3)).await, Some(102.0), "the server lost A's write to B's stale copy");
}

/// Finding 4: `rollout rollback` in one process does not copy the server
/// back over a sale another live process made while its server was down
/// (journaled, not yet replayed): the copy of that domain is refused,
/// naming the journal, and the sale stays in the files.
#[tokio::test]
async fn rollback_does_not_undo_another_process_journaled_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let files = common::files(dir.path(), ttl);
    let a = Hybrid::new(mem.clone(), common::files(dir.path(), ttl), common::config(dir.path())).unwrap();
    let chaos = Chaos::wrap(mem.clone());
    let b = Hybrid::new(chaos.stores(), common::files(dir.path(), ttl), common::config(dir.path())).unwrap();
    let bk = book("sold");
    a.new_held(&bk, &[code(1), code(2)]).await.unwrap();
    chaos.switch.set(Fault::Fail); // B's server connection is down
    b.mark_sold(&bk, code(1)).await.unwrap(); // journaled by B, in the files
    let sold = files.positions.snapshot(&bk).await.unwrap();
    assert_ne!(sold, mem.positions.snapshot(&bk).await.unwrap(), "the server still holds code 1");
    let r = a.rollback_to_files(None, false).await.unwrap();
    assert_eq!(files.positions.snapshot(&bk).await.unwrap(), sold, "the sale was undone by the copy back");
    let why = r.refused.get(&Domain::Positions).expect("positions refused");
    assert!(why.contains(&format!("positions-{}-", std::process::id())) && why.contains(".journal"), "{why}");
    assert!(why.contains("sqdata health") && why.contains("sqdata rollout rollback"), "{why}");
    assert!(!r.refused.contains_key(&Domain::Deals), "{:?}", r.refused);
}

/// The equity store of the primary, with a hand on it: writes of a chosen
/// day wait until released, writes fail on command, and the hybrid's probe
/// read fails on command (so only the test starts a recovery).
#[derive(Debug)]
struct Latch {
    inner: Arc<dyn AssetStore>,
    hold: Mutex<Option<NaiveDate>>,
    holding: Mutex<Option<NaiveDate>>,
    fail: AtomicBool,
    fail_probe: AtomicBool,
}

#[async_trait]
impl AssetStore for Latch {
    async fn upsert_assets(&self, book: &BookId, rows: &[AssetRow]) -> Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Unavailable { backend: "latch", message: "down".into(), source: None });
        }
        for r in rows {
            while *self.hold.lock() == Some(r.date) {
                *self.holding.lock() = Some(r.date);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        self.inner.upsert_assets(book, rows).await
    }
    async fn delete_assets(&self, book: &BookId, dates: &[NaiveDate]) -> Result<u64> {
        self.inner.delete_assets(book, dates).await
    }
    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>> {
        if book.book.as_str() == "probe" && self.fail_probe.load(Ordering::SeqCst) {
            return Err(Error::Unavailable { backend: "latch", message: "probe refused".into(), source: None });
        }
        self.inner.assets(book, range).await
    }
    async fn delete_book(&self, book: &BookId) -> Result<()> {
        self.inner.delete_book(book).await
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.inner.list_books().await
    }
}

/// Finding 8: an orphaned journal adopted while a recovery replays its last
/// units degrades the domain again; the recovery does not then declare it
/// healthy with the orphan's units pending (they would never be replayed),
/// and the next recovery replays them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_adopted_during_recovery_is_not_stranded() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let latch = Arc::new(Latch {
        inner: mem.assets.clone(),
        hold: Mutex::new(None),
        holding: Mutex::new(None),
        fail: AtomicBool::new(false),
        fail_probe: AtomicBool::new(false),
    });
    let mut primary = mem.clone();
    primary.assets = latch.clone();
    let files = common::files(dir.path(), ttl);
    let cfg = HybridConfig { primary_timeout_ms: 10_000, ..common::config(dir.path()) };
    let h = Hybrid::new(primary, files.clone(), cfg).unwrap();
    let (b1, b2, b3) = (book("rec1"), book("rec2"), book("rec3"));
    for b in [&b1, &b2, &b3] {
        h.upsert_asset(b, AssetRow { date: day(3), asset: 1.0 }).await.unwrap(); // adopted
    }
    latch.fail_probe.store(true, Ordering::SeqCst);
    latch.fail.store(true, Ordering::SeqCst);
    h.upsert_asset(&b1, AssetRow { date: day(4), asset: 2.0 }).await.unwrap(); // journaled
    latch.fail.store(false, Ordering::SeqCst);
    *latch.hold.lock() = Some(day(4));
    let rec = tokio::spawn({
        let h = h.clone();
        async move { h.recover(Domain::Assets).await }
    });
    until("the first replay is held", Duration::from_secs(5), || *latch.holding.lock() == Some(day(4))).await;
    h.upsert_asset(&b2, AssetRow { date: day(5), asset: 3.0 }).await.unwrap(); // journaled meanwhile
    *latch.hold.lock() = Some(day(5)); // releases day 4, holds the late unit's replay
    until("the late replay is held", Duration::from_secs(5), || *latch.holding.lock() == Some(day(5))).await;
    // now a process that died with a journaled write of its own
    files.assets.upsert_asset(&b3, AssetRow { date: day(6), asset: 4.0 }).await.unwrap();
    let unit = serde_json::to_string(&Unit::Asset { book: b3.clone(), date: day(6) }).unwrap();
    let orphan = h.config().journal_dir.join("assets-999996-0.journal");
    std::fs::write(&orphan, format!("{unit}\n")).unwrap();
    until("the orphan adopted", Duration::from_secs(5), || !orphan.exists()).await;
    *latch.hold.lock() = None;
    let _ = rec.await.unwrap();
    latch.fail_probe.store(false, Ordering::SeqCst);
    common::wait_mode(&h, "assets", Mode::Healthy, Duration::from_secs(10)).await;
    let t = Instant::now();
    while asset_on(&mem, &b3, day(6)).await.is_none() {
        let st: BTreeMap<_, _> = h.status().into_iter().map(|s| (s.domain, (s.mode, s.journal_bytes))).collect();
        assert!(t.elapsed() < Duration::from_secs(5), "the orphan's write never reached the server: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(h.status().iter().find(|s| s.domain == Domain::Assets).unwrap().journal_bytes, 0);
    assert_eq!(asset_on(&mem, &b2, day(5)).await, Some(3.0));
}
