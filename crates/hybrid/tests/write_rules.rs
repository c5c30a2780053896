//! The write rule, one test per path: when the caller is told "ok", the
//! write is in the files and in the primary or in the journal; when told
//! "failed", nothing of it remains in the files, or the journal records
//! what the primary may hold — and recovery makes the primary equal the
//! files. Primary and files are both behind fault switches.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sqdata_core::{
    AssetRow, AssetStoreExt as _, BookId, Code, DateRange, Deal, DealKind, DealQuery, DealStore, DealStoreExt as _,
    Domain, PositionStore, PriceTick, Stores,
};
use sqdata_hybrid::{Hybrid, HybridConfig, Mode, Stage};
use sqdata_testkit::MemoryStore;
use sqdata_testkit::chaos::{Chaos, Fault};

struct Rig {
    h: Arc<Hybrid>,
    primary: Arc<Chaos>,
    files: Arc<Chaos>,
    mem: Stores,
    raw_files: Stores,
    _dir: tempfile::TempDir,
}

fn rig(stage: Stage) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let primary = Chaos::wrap(mem.clone());
    let raw_files = common::files(dir.path(), ttl);
    let files = Chaos::wrap(raw_files.clone());
    let cfg = HybridConfig { stage, ..common::config(dir.path()) };
    let h = Hybrid::new(primary.stores(), files.stores(), cfg).unwrap();
    Rig { h, primary, files, mem, raw_files, _dir: dir }
}

fn book() -> BookId {
    BookId::new("55009728", "rules").unwrap()
}

fn code(i: u32) -> Code {
    Code::new(&format!("{:06}", i), sqdata_core::Market::SZ).unwrap()
}

fn deal(i: u32) -> Deal {
    Deal {
        id: format!("r{i}"),
        book: book(),
        time: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(9, 30, i % 60).unwrap(),
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

fn status(h: &Hybrid, d: Domain) -> sqdata_hybrid::DomainStatus {
    h.status().into_iter().find(|s| s.domain == d).unwrap()
}

/// Heals both sides and waits until the domain is healthy (recovered).
async fn heal(r: &Rig, d: Domain) {
    r.primary.switch.set(Fault::None);
    r.files.switch.set(Fault::None);
    common::wait_mode(&r.h, d.as_str(), Mode::Healthy, Duration::from_secs(10)).await;
}

async fn equal_positions(r: &Rig) {
    let p = r.mem.positions.snapshot(&book()).await.unwrap();
    let s = r.raw_files.positions.snapshot(&book()).await.unwrap();
    assert_eq!(p, s, "the primary equals the files");
}

/// Healthy, the files refuse after the primary took the write: "failed",
/// the primary is put back, nothing remains anywhere.
#[tokio::test]
async fn files_refuse_the_primary_is_compensated() {
    let r = rig(Stage::Writes);
    r.h.new_held(&book(), &[code(1)]).await.unwrap();
    r.files.switch.set(Fault::FailWrites);
    assert!(r.h.new_held(&book(), &[code(2)]).await.is_err());
    r.files.switch.set(Fault::None);
    assert!(!r.mem.positions.snapshot(&book()).await.unwrap().positions.contains_key(&code(2)));
    equal_positions(&r).await;
    assert_eq!(status(&r.h, Domain::Positions).compensations, 1);
    assert_eq!(status(&r.h, Domain::Positions).journal_bytes, 0);
}

/// The files refuse and the compensation cannot reach the primary either:
/// "failed", and the journal records the unit, so recovery undoes what the
/// primary holds.
#[tokio::test]
async fn a_failed_compensation_is_journaled() {
    let r = rig(Stage::Writes);
    r.h.new_held(&book(), &[code(1)]).await.unwrap();
    r.files.switch.set(Fault::FailWrites);
    // the primary takes the write, then dies before the compensation
    r.primary.switch.fail_after_calls(1);
    assert!(r.h.new_held(&book(), &[code(2)]).await.is_err());
    assert!(r.mem.positions.snapshot(&book()).await.unwrap().positions.contains_key(&code(2)), "the primary holds it");
    let st = status(&r.h, Domain::Positions);
    assert!(st.journal_bytes > 0, "the journal records what the primary may hold: {st:?}");
    assert_eq!(st.mode, Mode::Degraded);
    heal(&r, Domain::Positions).await;
    equal_positions(&r).await;
    assert!(!r.mem.positions.snapshot(&book()).await.unwrap().positions.contains_key(&code(2)));
}

/// The primary fails: degraded, the unit journaled first, the files take
/// the write, "ok"; recovery brings the primary up to date.
#[tokio::test]
async fn a_failing_primary_is_journaled_then_replayed() {
    let r = rig(Stage::Writes);
    r.h.new_held(&book(), &[code(1)]).await.unwrap();
    r.primary.switch.set(Fault::Fail);
    r.h.new_held(&book(), &[code(2)]).await.unwrap();
    assert!(r.raw_files.positions.snapshot(&book()).await.unwrap().positions.contains_key(&code(2)));
    assert!(status(&r.h, Domain::Positions).journal_bytes > 0);
    heal(&r, Domain::Positions).await;
    equal_positions(&r).await;
    assert_eq!(status(&r.h, Domain::Positions).journal_bytes, 0);
}

/// The primary applies the write and then does not answer (timeout), and
/// the files refuse: "failed", and the journal recorded the unit before the
/// files were tried, so recovery takes the write back out of the primary.
#[tokio::test]
async fn a_primary_timeout_then_a_files_failure_leaves_nothing() {
    let r = rig(Stage::Writes);
    r.h.new_held(&book(), &[code(1)]).await.unwrap();
    r.primary.switch.set(Fault::ApplyThenHang);
    r.files.switch.set(Fault::FailWrites);
    assert!(r.h.new_held(&book(), &[code(2)]).await.is_err());
    assert!(r.mem.positions.snapshot(&book()).await.unwrap().positions.contains_key(&code(2)), "applied, unanswered");
    assert!(status(&r.h, Domain::Positions).journal_bytes > 0);
    heal(&r, Domain::Positions).await;
    equal_positions(&r).await;
    assert!(!r.mem.positions.snapshot(&book()).await.unwrap().positions.contains_key(&code(2)));
}

/// Degraded and the journal refuses (disk full): "failed" before anything
/// is stored.
#[tokio::test]
async fn degraded_and_the_journal_refuses_nothing_is_stored() {
    let r = rig(Stage::Writes);
    r.primary.switch.set(Fault::Fail);
    r.h.new_held(&book(), &[code(1)]).await.unwrap();
    assert_eq!(status(&r.h, Domain::Positions).mode, Mode::Degraded);
    r.h.fail_journal(Domain::Positions, true);
    assert!(r.h.new_held(&book(), &[code(2)]).await.is_err());
    assert!(!r.raw_files.positions.snapshot(&book()).await.unwrap().positions.contains_key(&code(2)));
    r.h.fail_journal(Domain::Positions, false);
    heal(&r, Domain::Positions).await;
    equal_positions(&r).await;
}

/// Degraded, journaled, then the files refuse: "failed"; the journaled unit
/// is harmless (replay copies the files' state, which lacks the write).
#[tokio::test]
async fn degraded_journaled_then_files_refuse() {
    let r = rig(Stage::Writes);
    r.primary.switch.set(Fault::Fail);
    r.h.new_held(&book(), &[code(1)]).await.unwrap();
    r.files.switch.set(Fault::FailWrites);
    assert!(r.h.new_held(&book(), &[code(2)]).await.is_err());
    heal(&r, Domain::Positions).await;
    equal_positions(&r).await;
    assert!(!r.mem.positions.snapshot(&book()).await.unwrap().positions.contains_key(&code(2)));
}

/// Files-led (shadow): the files took the write, the primary fails and so
/// does the journal: "ok" (the files serve in this stage), the unit kept in
/// memory, replayed by this process's recovery.
#[tokio::test]
async fn files_led_with_a_refusing_journal_keeps_the_unit_in_memory() {
    let r = rig(Stage::Shadow);
    r.h.new_held(&book(), &[code(1)]).await.unwrap(); // adopts the new book
    r.primary.switch.set(Fault::Fail);
    r.h.fail_journal(Domain::Positions, true);
    r.h.new_held(&book(), &[code(2)]).await.unwrap();
    assert_eq!(status(&r.h, Domain::Positions).unjournaled, 1);
    r.h.fail_journal(Domain::Positions, false);
    heal(&r, Domain::Positions).await;
    equal_positions(&r).await;
    assert_eq!(status(&r.h, Domain::Positions).unjournaled, 0);
}

/// A new day's asset row: the files refuse, and the compensation deletes
/// the day from the primary (it had no row to put back).
#[tokio::test]
async fn a_new_asset_day_is_taken_back() {
    let r = rig(Stage::Writes);
    let d1 = NaiveDate::from_ymd_opt(2025, 10, 9).unwrap();
    let d2 = NaiveDate::from_ymd_opt(2025, 10, 10).unwrap();
    r.h.upsert_asset(&book(), AssetRow { date: d1, asset: 1.0 }).await.unwrap();
    r.files.switch.set(Fault::FailWrites);
    assert!(r.h.upsert_asset(&book(), AssetRow { date: d2, asset: 2.0 }).await.is_err());
    r.files.switch.set(Fault::None);
    let p = r.mem.assets.assets(&book(), DateRange::all()).await.unwrap();
    assert_eq!(p, vec![AssetRow { date: d1, asset: 1.0 }], "the new day is gone from the primary");
    assert_eq!(status(&r.h, Domain::Assets).compensations, 1);
}

/// Deals: a refused record is taken back from the primary; a timed-out
/// record the primary applied is journaled and taken back by recovery.
#[tokio::test]
async fn deals_follow_the_rule() {
    let r = rig(Stage::Writes);
    r.h.record(&deal(1)).await.unwrap();
    r.files.switch.set(Fault::FailWrites);
    assert!(r.h.record(&deal(2)).await.is_err());
    r.primary.switch.set(Fault::ApplyThenHang);
    assert!(r.h.record(&deal(3)).await.is_err());
    heal(&r, Domain::Deals).await;
    let ids = |s: Stores| async move {
        let p = s.deals.query(&DealQuery::book(book())).await.unwrap();
        p.data.into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(r.mem.clone()).await, vec!["r1"]);
    assert_eq!(ids(r.raw_files.clone()).await, vec!["r1"]);
}

/// A batch spanning accounts follows each account's stage.
#[tokio::test]
async fn a_batch_follows_each_accounts_stage() {
    let r = rig(Stage::Writes);
    r.h.set_stage(Some(&["11111111".to_string()]), Stage::Files).unwrap();
    let other = BookId::new("11111111", "rules").unwrap();
    let mut d = deal(9);
    d.book = other.clone();
    let o = r.h.record_batch(&[deal(8), d]).await.unwrap();
    assert_eq!(o.inserted, 2);
    let in_primary = r.mem.deals.query(&DealQuery::book(other.clone())).await.unwrap();
    assert!(in_primary.data.is_empty(), "the files-stage account's deal never reached the primary");
    assert_eq!(r.mem.deals.query(&DealQuery::book(book())).await.unwrap().data.len(), 1);
    assert_eq!(r.raw_files.deals.query(&DealQuery::book(other)).await.unwrap().data.len(), 1);
}

/// Sold codes keep their prices through del_held_days on both sides.
#[tokio::test]
async fn del_held_days_goes_through_both_sides() {
    let r = rig(Stage::Writes);
    r.h.new_held(&book(), &[code(1)]).await.unwrap();
    r.h.update_extremes(&book(), &[PriceTick { code: code(1), high: 11.0, low: 9.0 }]).await.unwrap();
    r.h.del_held_days(&book(), &[code(1)]).await.unwrap();
    let s = r.raw_files.positions.snapshot(&book()).await.unwrap();
    let e = s.positions[&code(1)];
    assert_eq!((e.day_count, e.max_price, e.min_price), (None, Some(11.0), Some(9.0)));
    equal_positions(&r).await;
}
