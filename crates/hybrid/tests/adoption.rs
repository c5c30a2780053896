//! Adoption safety, the rollout file's damage, rollback without deletes and
//! journals left by processes that died.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sqdata_core::{BookId, Deal, DealQuery, DealStoreExt as _, Domain, PositionSnapshot, PositionStore, Stores};
use sqdata_hybrid::{Hybrid, HybridConfig, Mode, RolloutState, Stage, Truth, VerifyOptions};
use sqdata_testkit::MemoryStore;

use common::{book, code};

fn deal(b: &BookId, i: u32) -> Deal {
    common::deal("a", b, i)
}

fn setup(dir: &std::path::Path) -> (Arc<Hybrid>, Stores, Stores) {
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let files = common::files(dir, ttl);
    let h = Hybrid::new(mem.clone(), files.clone(), common::config(dir)).unwrap();
    (h, mem, files)
}

/// `tier = mvp` on an existing folder: a book the server never received is
/// served by the files (never an empty book from the server), writes stay
/// on the files, `waiting_books` names it; after a copy and an adoption the
/// server serves it.
#[tokio::test]
async fn a_book_the_server_never_received_is_served_by_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let (h, mem, files) = setup(dir.path());
    let b = book("existing");
    files.positions.new_held(&b, &[code(1), code(2)]).await.unwrap();
    assert_eq!(h.stage(Some(&b)), Stage::Writes, "the default stage");
    assert_eq!(h.snapshot(&b).await.unwrap().positions.len(), 2, "never the server's empty book");
    h.new_held(&b, &[code(3)]).await.unwrap();
    assert!(mem.positions.snapshot(&b).await.unwrap().positions.is_empty(), "writes stay on the files");
    assert_eq!(files.positions.snapshot(&b).await.unwrap().positions.len(), 3);
    let waiting = h.waiting_books().await.unwrap();
    assert_eq!(waiting.get(&Domain::Positions), Some(&vec![b.to_string()]));
    // what `sqdata migrate` does: copy, verify, adopt
    let copy = VerifyOptions { repair: true, truth: Truth::Secondary, ..VerifyOptions::default() };
    h.verify(&copy).await.unwrap();
    h.adopt(Domain::Positions, Some(std::slice::from_ref(&b))).unwrap();
    assert!(h.waiting_books().await.unwrap().is_empty());
    h.new_held(&b, &[code(4)]).await.unwrap();
    assert_eq!(mem.positions.snapshot(&b).await.unwrap().positions.len(), 4, "the server has it whole now");
    assert_eq!(h.snapshot(&b).await.unwrap().positions.len(), 4);
}

/// A book the files hold nothing of starts on the server at its first
/// write, and the rollout file says so for every other process.
#[tokio::test]
async fn a_new_book_is_adopted_at_its_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let (h, mem, _files) = setup(dir.path());
    let b = book("fresh");
    h.new_held(&b, &[code(1)]).await.unwrap();
    h.record(&deal(&b, 1)).await.unwrap();
    assert_eq!(mem.positions.snapshot(&b).await.unwrap().positions.len(), 1);
    assert_eq!(mem.deals.query(&DealQuery::book(b.clone())).await.unwrap().data.len(), 1);
    let st = RolloutState::load(&h.config().rollout_file).unwrap();
    assert!(st.is_adopted(Domain::Positions, Some(&b)) && st.is_adopted(Domain::Deals, Some(&b)), "{st:?}");
    assert!(!st.is_adopted(Domain::Assets, Some(&b)), "only the domains it was written in");
}

/// A damaged rollout file stops no process: it serves with the last good
/// stages and reports the damage with both paths.
#[tokio::test]
async fn a_damaged_rollout_file_keeps_the_last_good_stages() {
    let dir = tempfile::tempdir().unwrap();
    let cfg: HybridConfig = common::config(dir.path());
    sqdata_hybrid::set_stage(&cfg, Some(&["55009728".to_string()]), Stage::Shadow).unwrap();
    sqdata_hybrid::set_stage(&cfg, Some(&["55009728".to_string()]), Stage::Reads).unwrap();
    // torn by something that is not sqdata (a crash of an old version, an editor)
    std::fs::write(&cfg.rollout_file, b"{\"stage\": \"wri").unwrap();
    let ttl = Duration::from_secs(5);
    let h = Hybrid::new(Stores::from_one(Arc::new(MemoryStore::new(ttl))), common::files(dir.path(), ttl), cfg.clone())
        .expect("a damaged rollout file must not stop the process");
    assert_eq!(h.stage(Some(&book("x"))), Stage::Shadow, "the last good copy's stage");
    let damage = h.rollout_damage().expect("reported");
    assert!(damage.contains("rollout.json") && damage.contains("last-good"), "{damage}");
    let e = sqdata_hybrid::set_stage(&cfg, None, Stage::Files).unwrap_err();
    assert!(e.to_string().contains("last-good"), "changing a damaged file is refused, naming the copy: {e}");
    let health = sqdata_core::HealthCheck::health(&*h).await;
    assert!(health.details.contains_key("rollout_damaged"), "{health:?}");
}

/// Concurrent promotes of different accounts lose neither (the file is
/// changed under its lock).
#[test]
fn concurrent_stage_changes_keep_every_account() {
    let dir = tempfile::tempdir().unwrap();
    let cfg: HybridConfig = common::config(dir.path());
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    let a = format!("{}{:03}", i + 1, j);
                    sqdata_hybrid::set_stage(&cfg, Some(&[a]), Stage::Shadow).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(RolloutState::load(&cfg.rollout_file).unwrap().accounts.len(), 80);
}

/// Rollback brings the files up to date from the server but deletes
/// nothing only the files hold (a deal SilverQuant wrote straight into the
/// folder), unless told to prune.
#[tokio::test]
async fn rollback_keeps_what_only_the_files_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (h, mem, files) = setup(dir.path());
    let b = book("rollback");
    h.record(&deal(&b, 1)).await.unwrap(); // adopted, both sides
    files.deals.record(&deal(&b, 2)).await.unwrap(); // SilverQuant, files only
    let mut changed = deal(&b, 1);
    changed.volume = 300;
    mem.deals.replace_deals(&b, &[changed]).await.unwrap(); // newer on the server
    let r = h.rollback_to_files(None, false).await.unwrap();
    let synced = r.synced.expect("the server answered");
    assert_eq!(synced.domains.iter().map(|d| d.kept).sum::<u64>(), 1, "{}", synced.render_text());
    let q = files.deals.query(&DealQuery::book(b.clone())).await.unwrap();
    let got: Vec<(String, u64)> = q.data.iter().map(|d| (d.id.clone(), d.volume)).collect();
    assert_eq!(got, vec![("a1".to_string(), 300), ("a2".to_string(), 100)], "updated, and nothing deleted");
    let prune = VerifyOptions { repair: true, truth: Truth::Primary, prune: true, ..VerifyOptions::default() };
    h.verify(&prune).await.unwrap();
    let q = files.deals.query(&DealQuery::book(b.clone())).await.unwrap();
    assert_eq!(q.data.len(), 1, "--prune deletes what only the files hold");
}

/// A journal left by a process that died (another pid, its lock free) is
/// adopted by the prober, the domain degrades and replays it: the server
/// catches up with the write it never saw.
#[tokio::test]
async fn the_journal_of_a_dead_process_is_adopted_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (h, mem, files) = setup(dir.path());
    let b = book("orphan");
    h.new_held(&b, &[code(1)]).await.unwrap(); // adopted, both sides
    // the dead process wrote code 2 to the files and journaled the book
    files.positions.new_held(&b, &[code(2)]).await.unwrap();
    let line = serde_json::to_string(&sqdata_hybrid::Unit::Book { book: b.clone() }).unwrap();
    std::fs::write(h.config().journal_dir.join("positions-999999-0.journal"), format!("{line}\n")).unwrap();
    common::wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(5)).await;
    let t = std::time::Instant::now();
    loop {
        let p: PositionSnapshot = mem.positions.snapshot(&b).await.unwrap();
        if p.positions.len() == 2 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "the orphaned write never reached the server: {p:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!h.config().journal_dir.join("positions-999999-0.journal").exists(), "adopted and removed");
}

/// A repair of a book's equity curve towards the files is one write (one
/// atomic replace of assets.csv), never the curve deleted and re-added row
/// by row — a failure half way would have left it truncated.
#[tokio::test]
async fn an_equity_repair_towards_the_files_is_one_write() {
    use sqdata_core::{AssetRow, AssetStoreExt as _};
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let files = sqdata_testkit::chaos::Chaos::wrap(common::files(dir.path(), ttl));
    let h = Hybrid::new(mem.clone(), files.stores(), common::config(dir.path())).unwrap();
    let b = book("equity");
    for d in 1..=5u32 {
        let row = AssetRow { date: NaiveDate::from_ymd_opt(2025, 3, d).unwrap(), asset: 100.0 };
        h.upsert_asset(&b, row).await.unwrap();
        let newer = AssetRow { asset: 100.0 + f64::from(d), ..row };
        mem.assets.upsert_asset(&b, newer).await.unwrap(); // the server moved on
    }
    let before = files.switch.writes();
    let opts = VerifyOptions { repair: true, truth: Truth::Primary, ..VerifyOptions::default() };
    let r = h.verify(&opts).await.unwrap();
    let assets = r.domains.iter().find(|d| d.domain == Domain::Assets).unwrap();
    assert_eq!(assets.repaired, 5, "{}", r.render_text());
    assert_eq!(files.switch.writes() - before, 1, "one write for the five days");
    let rows = files.stores().assets.assets(&b, sqdata_core::DateRange::all()).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.asset).collect::<Vec<_>>(), vec![101.0, 102.0, 103.0, 104.0, 105.0]);
}
