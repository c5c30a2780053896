//! The failure-mode review, one test per finding: rollout damage on the
//! write path, sampled repairs that must not delete from the files, a
//! replay that cannot hang the writers, poison entries that cannot block a
//! domain, journals of domains this process does not compose, a batch's
//! partial failure, and a caller that stops waiting half way.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqdata_core::{
    BarKey, BarSeries, BarStore, BarWriteMode, BookId, Deal, DealStore, DealStoreExt as _, Domain, PositionStore,
    Stores, TimeRange,
};
use sqdata_hybrid::{Hybrid, HybridConfig, Mode, RolloutState, Truth, Unit};
use sqdata_testkit::MemoryStore;
use sqdata_testkit::chaos::{Chaos, Fault};

use common::{book, code};

fn deal(b: &BookId, i: u32) -> Deal {
    common::deal("f", b, i)
}

fn status(h: &Hybrid, d: Domain) -> sqdata_hybrid::DomainStatus {
    h.status().into_iter().find(|s| s.domain == d).unwrap()
}

async fn eventually(what: &str, within: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let t = Instant::now();
    while !ok().await {
        assert!(t.elapsed() < within, "{what}: not after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Finding 3: a torn rollout file (no last good copy) does not make writes
/// fail: a new book cannot be adopted, so it is born on the files (and
/// waits for a migration), and the damage is reported.
#[tokio::test]
async fn a_torn_rollout_file_does_not_stop_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(dir.path());
    std::fs::write(&cfg.rollout_file, b"{\"stage\": \"wri").unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let files = common::files(dir.path(), ttl);
    let h = Hybrid::new(mem.clone(), files.clone(), cfg).unwrap();
    let (fresh, held) = (book("torn_new"), book("torn_held"));
    files.positions.new_held(&held, &[code(9)]).await.unwrap();
    h.new_held(&fresh, &[code(1)]).await.expect("a write to a new book goes to the files");
    h.new_held(&held, &[code(2)]).await.expect("a write to a book the files hold goes to the files");
    h.record(&deal(&fresh, 1)).await.expect("deals too");
    assert_eq!(files.positions.snapshot(&fresh).await.unwrap().positions.len(), 1);
    assert_eq!(files.positions.snapshot(&held).await.unwrap().positions.len(), 2);
    assert!(mem.positions.snapshot(&fresh).await.unwrap().positions.is_empty(), "not adopted: files only");
    assert!(h.rollout_damage().is_some_and(|d| d.contains("rollout.json")), "{:?}", h.rollout_damage());
    let waiting = h.waiting_books().await.unwrap();
    assert!(waiting[&Domain::Positions].contains(&fresh.to_string()), "{waiting:?}");
}

/// Finding 6: with `source_of_truth = "primary"`, a sampled difference is
/// repaired towards the files by adding and updating only, and positions
/// are never repaired towards the files from a sample: a server that lost
/// its state must not take it out of the files.
#[tokio::test]
async fn a_sampled_repair_towards_the_files_never_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let files = common::files(dir.path(), ttl);
    let cfg = HybridConfig { source_of_truth: Truth::Primary, verify_sample_rate: 1.0, ..common::config(dir.path()) };
    let h = Hybrid::new(mem.clone(), files.clone(), cfg).unwrap();
    let b = book("sampled");
    h.new_held(&b, &[code(1), code(2)]).await.unwrap();
    mem.positions.delete_book(&b).await.unwrap(); // the server lost the book
    h.new_held(&b, &[code(3)]).await.unwrap();
    let kept = files.positions.snapshot(&b).await.unwrap();
    assert_eq!(kept.positions.len(), 3, "the files keep every position: {kept:?}");
    assert!(status(&h, Domain::Positions).inconsistencies >= 1, "the difference is counted");

    let key = BarKey::new(code(7), sqdata_core::Period::Day1, sqdata_core::Adjust::Qfq);
    let bars = sqdata_testkit::bars::daily_bars(10);
    h.save_bars(&BarSeries { key, bars: bars.clone() }, BarWriteMode::Replace).await.unwrap();
    mem.bars.delete_bars(&key, TimeRange::all()).await.unwrap(); // the server lost the series
    let mut newer = bars[9];
    newer.volume += 1;
    h.save_bars(&BarSeries { key, bars: vec![newer] }, BarWriteMode::Upsert).await.unwrap();
    let on_files = files.bars.load_bars(&key, TimeRange::all()).await.unwrap();
    assert_eq!(on_files.len(), 10, "no bar deleted from the files");
    assert_eq!(on_files[9].volume, newer.volume, "the newer bar is there");
}

/// Finding 13: a replay is bounded by `primary_timeout_ms` like every
/// primary call: a frozen primary fails the recovery (tried again later),
/// it does not hang it — nor the writers waiting at the gate.
#[tokio::test]
async fn a_replay_against_a_frozen_primary_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (h, chaos, _files) = common::hybrid(dir.path(), Duration::from_secs(5));
    let b = book("frozen");
    h.new_held(&b, &[code(1)]).await.unwrap();
    chaos.switch.set(Fault::Fail);
    h.new_held(&b, &[code(2)]).await.unwrap(); // journaled
    chaos.switch.set(Fault::Hang);
    let r = tokio::time::timeout(Duration::from_secs(5), h.recover(Domain::Positions)).await;
    let r = r.expect("the replay must give up within the primary's deadline");
    assert!(r.is_err(), "{r:?}");
    assert_eq!(status(&h, Domain::Positions).mode, Mode::Degraded);
    let w = tokio::time::timeout(Duration::from_secs(5), h.new_held(&b, &[code(3)])).await;
    assert!(w.expect("a write is not held up").is_ok());
    chaos.switch.set(Fault::None);
    common::wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(10)).await;
}

/// Finding 12: a journaled book whose file is corrupt is quarantined —
/// recorded with its error, counted, the book served by the files — and
/// the domain recovers; without it the domain would stay degraded forever.
#[tokio::test]
async fn a_corrupt_book_is_quarantined_and_the_domain_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (h, chaos, files) = common::hybrid(dir.path(), Duration::from_secs(5));
    let (bad, good) = (book("poison"), book("healthy"));
    h.new_held(&bad, &[code(1)]).await.unwrap();
    h.new_held(&good, &[code(1)]).await.unwrap();
    chaos.switch.set(Fault::Fail);
    h.new_held(&bad, &[code(2)]).await.unwrap(); // journaled
    h.new_held(&good, &[code(2)]).await.unwrap(); // journaled
    let json = dir.path().join("files").join("55009728").join("poison").join("positions.json");
    assert!(json.exists());
    std::fs::write(json, b"{ not json").unwrap();
    chaos.switch.set(Fault::None);
    common::wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(10)).await;
    let st = status(&h, Domain::Positions);
    assert_eq!((st.quarantined, st.journal_bytes), (1, 0), "{st:?}");
    let q = std::fs::read_to_string(h.config().journal_dir.join("positions-quarantine.jsonl")).unwrap();
    assert!(q.contains("55009728/poison") && q.contains("corrupt"), "{q}");
    let rollout = RolloutState::load(&h.config().rollout_file).unwrap();
    assert!(!rollout.is_adopted(Domain::Positions, Some(&bad)), "served by the files now");
    assert!(rollout.is_adopted(Domain::Positions, Some(&good)));
    let e = h.snapshot(&bad).await.unwrap_err();
    assert_eq!(e.kind(), "corrupt", "the files report the damage: {e}");
    assert_eq!(h.snapshot(&good).await.unwrap(), files.positions.snapshot(&good).await.unwrap());
}

/// Finding 12: a journal line that is not a unit (an orphan's) is
/// quarantined and the units around it are replayed.
#[tokio::test]
async fn an_unreadable_journal_line_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let files = common::files(dir.path(), ttl);
    let h = Hybrid::new(mem.clone(), files.clone(), common::config(dir.path())).unwrap();
    let b = book("after_garbage");
    h.new_held(&b, &[code(1)]).await.unwrap();
    files.positions.new_held(&b, &[code(2)]).await.unwrap(); // the dead process's write
    let unit = serde_json::to_string(&Unit::Book { book: b.clone() }).unwrap();
    let orphan = h.config().journal_dir.join("positions-999998-0.journal");
    std::fs::write(&orphan, format!("this is not a unit\n{unit}\n")).unwrap();
    eventually("the unit after the bad line replayed", Duration::from_secs(10), async || {
        mem.positions.snapshot(&b).await.unwrap().positions.len() == 2
    })
    .await;
    common::wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(10)).await;
    assert_eq!(status(&h, Domain::Positions).quarantined, 1);
    let q = std::fs::read_to_string(h.config().journal_dir.join("positions-quarantine.jsonl")).unwrap();
    assert!(q.contains("this is not a unit"), "{q}");
}

/// Finding 16: a hybrid composing some domains opens no journal for the
/// others and leaves their orphans to the processes that replay them.
#[tokio::test]
async fn only_the_composed_domains_journal() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(dir.path());
    std::fs::create_dir_all(&cfg.journal_dir).unwrap();
    let b = book("elsewhere");
    let unit = serde_json::to_string(&Unit::Deals { deals: vec![deal(&b, 1)] }).unwrap();
    let orphan = cfg.journal_dir.join("deals-999997-0.journal");
    std::fs::write(&orphan, format!("{unit}\n")).unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let h = Hybrid::compose(mem, common::files(dir.path(), ttl), cfg.clone(), &[Domain::Positions]).unwrap();
    h.new_held(&b, &[code(1)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // prober ticks
    assert!(orphan.exists(), "the deals orphan is not adopted here");
    let names: Vec<String> =
        std::fs::read_dir(&cfg.journal_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    let mine = format!("-{}-", std::process::id());
    assert!(names.iter().any(|n| n.starts_with("positions") && n.contains(&mine)), "{names:?}");
    assert!(!names.iter().any(|n| !n.starts_with("positions") && n.contains(&mine)), "{names:?}");
}

/// Finding 16: a batch spanning books that fails part way names the books
/// already stored (a retry of the whole batch is safe: deals go by id).
#[tokio::test]
async fn a_batch_failing_part_way_names_the_books_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let files = Chaos::wrap(common::files(dir.path(), ttl));
    let h = Hybrid::new(mem.clone(), files.stores(), common::config(dir.path())).unwrap();
    let (a, b) = (BookId::new("11111111", "first").unwrap(), BookId::new("22222222", "second").unwrap());
    h.record(&deal(&a, 1)).await.unwrap(); // both adopted
    h.record(&deal(&b, 2)).await.unwrap();
    files.switch.fail_after_calls(1); // the first book's files write passes, the second's fails
    let e = h.record_batch(&[deal(&a, 3), deal(&b, 4)]).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("11111111/first") && msg.contains("22222222/second"), "{msg}");
    assert!(e.is_retryable(), "the kind stays: {e:?}");
    files.switch.set(Fault::None);
    common::wait_mode(&h, "deals", Mode::Healthy, Duration::from_secs(10)).await;
    let o = h.record_batch(&[deal(&a, 3), deal(&b, 4)]).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (1, 1), "the retry stores the rest once");
}

/// Finding 16: a caller that stops waiting (its future dropped while the
/// primary hangs on the write) does not cut the write in half: it runs to
/// its end — here the primary times out, the unit is journaled, the files
/// take the write — and recovery makes the primary equal the files.
#[tokio::test]
async fn a_dropped_write_runs_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let (h, chaos, files) = common::hybrid(dir.path(), Duration::from_secs(5));
    let b = book("dropped");
    h.new_held(&b, &[code(1)]).await.unwrap();
    chaos.switch.set(Fault::ApplyThenHang);
    let gave_up = tokio::time::timeout(Duration::from_millis(50), h.new_held(&b, &[code(2)])).await;
    assert!(gave_up.is_err(), "the caller stopped waiting");
    eventually("the write reached the files", Duration::from_secs(5), async || {
        files.positions.snapshot(&b).await.unwrap().positions.len() == 2
    })
    .await;
    assert!(status(&h, Domain::Positions).journal_bytes > 0, "journaled: the primary may hold it");
    chaos.switch.set(Fault::None);
    common::wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(10)).await;
    let primary = chaos.stores().positions.snapshot(&b).await.unwrap();
    assert_eq!(primary, files.positions.snapshot(&b).await.unwrap());
}
