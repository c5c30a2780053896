//! `verify`: digests per partition, field diffs where they differ, repair
//! of exactly what differs, from the declared source of truth. The memory
//! store stands for the primary (the backends' own suites run against real
//! servers in the facade's tests); the secondary is the real file store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sqdata_core::{
    AssetRow, AssetStoreExt as _, BarKey, BarSeries, BarWriteMode, DateRange, DealQuery, Period, PositionEntry, Stores,
    TimeRange,
};
use sqdata_core::{DealStoreExt, Domain};
use sqdata_hybrid::{Truth, VerifyMode, VerifyOptions, verify};
use sqdata_testkit::{MemoryStore, bars::daily_bars, fresh_book, fresh_codes, sample};

struct Fx {
    _dir: tempfile::TempDir,
    mem: Stores,
    files: Stores,
}

/// Both sides hold the same two books, a bar series and equity.
async fn equal_stores() -> (Fx, Vec<sqdata_core::BookId>, BarKey) {
    let dir = tempfile::tempdir().unwrap();
    let mem = Stores::from_one(Arc::new(MemoryStore::new(Duration::from_secs(5))));
    let files = common::files(dir.path(), Duration::from_secs(5));
    let days = sample::weekdays(NaiveDate::from_ymd_opt(2025, 1, 2).unwrap(), 60);
    let mut books = Vec::new();
    for _ in 0..2 {
        let book = fresh_book();
        let codes = fresh_codes(20);
        let snap = sample::positions(&codes, days[59]);
        let deals = sample::deals(&book, &codes, &days, 5, "d");
        let assets = sample::assets(&days);
        for s in [&mem, &files] {
            sample::seed_book(s, &book, &snap, &deals, &assets).await.unwrap();
        }
        books.push(book);
    }
    let key = BarKey::new(fresh_codes(1)[0], Period::Day1, sqdata_core::Adjust::Qfq);
    let bars = daily_bars(40);
    for s in [&mem, &files] {
        s.bars.save_bars(&BarSeries { key, bars: bars.clone() }, BarWriteMode::Replace).await.unwrap();
    }
    (Fx { _dir: dir, mem, files }, books, key)
}

#[tokio::test]
async fn equal_stores_verify_clean_and_partitions_are_counted() {
    let (fx, _, _) = equal_stores().await;
    let r = verify(&fx.mem, &fx.files, &VerifyOptions::default()).await.unwrap();
    assert_eq!(r.total_differences(), 0, "{}", r.render_text());
    let by = |d: &str| r.domains.iter().find(|x| x.domain.as_str() == d).unwrap().clone();
    assert_eq!(by("positions").partitions, 2);
    assert_eq!(by("deals").partitions, 120, "one partition per book and day");
    assert_eq!(by("deals").records, 600);
    assert_eq!(by("assets").partitions, 6, "one per book and month (Jan–Mar)");
    assert_eq!(by("bars").partitions, 1);
    assert!(r.render_text().contains("consistent: 0 differences"));
}

#[tokio::test]
async fn differences_are_found_field_by_field_and_repair_rewrites_only_them() {
    let (fx, books, key) = equal_stores().await;
    let b = &books[0];
    // drift on the primary: a trailing-stop price, a deal's volume, a missing
    // deal, an extra deal, an equity value, a bar's close
    let mut snap = fx.mem.positions.snapshot(b).await.unwrap();
    let (code, e) = snap.positions.iter().next().map(|(c, e)| (*c, *e)).unwrap();
    snap.positions.insert(code, PositionEntry { max_price: Some(99.99), ..e });
    fx.mem.positions.replace_book(b, &snap).await.unwrap();
    let all = fx.mem.deals.query(&DealQuery { page_size: 1000, ..DealQuery::book(b.clone()) }).await.unwrap().data;
    let (changed, missing) = (all[0].clone(), all[1].clone());
    fx.mem.deals.delete_deals(b, &[changed.id.clone(), missing.id.clone()]).await.unwrap();
    fx.mem.deals.record(&sqdata_core::Deal { volume: changed.volume + 100, ..changed.clone() }).await.unwrap();
    let extra = sqdata_core::Deal { id: "extra-1".into(), ..all[2].clone() };
    fx.mem.deals.record(&extra).await.unwrap();
    let day = fx.mem.assets.assets(b, DateRange::all()).await.unwrap()[3].date;
    fx.mem.assets.upsert_asset(b, AssetRow { date: day, asset: 1.0 }).await.unwrap();
    let mut bars = fx.mem.bars.load_bars(&key, TimeRange::all()).await.unwrap();
    bars[5].close += 1.0;
    fx.mem.bars.save_bars(&BarSeries { key, bars: vec![bars[5]] }, BarWriteMode::Upsert).await.unwrap();

    let r = verify(&fx.mem, &fx.files, &VerifyOptions::default()).await.unwrap();
    let text = r.render_text();
    assert!(!r.consistent(), "{text}");
    let fields: Vec<(&str, &str)> = r.differences.iter().map(|d| (d.domain.as_str(), d.field.as_str())).collect();
    assert!(fields.contains(&("positions", "max_price")), "{text}");
    assert!(fields.contains(&("deals", "volume")), "{text}");
    assert!(fields.contains(&("deals", "amount")) || fields.contains(&("deals", "volume")), "{text}");
    assert!(fields.contains(&("assets", "asset")), "{text}");
    assert!(fields.contains(&("bars", "close")), "{text}");
    let records: Vec<&str> = r.differences.iter().filter(|d| d.field == "(record)").map(|d| d.key.as_str()).collect();
    assert!(records.contains(&missing.id.as_str()) && records.contains(&"extra-1"), "{text}");
    let by = |d: &str| r.domains.iter().find(|x| x.domain.as_str() == d).unwrap().clone();
    assert_eq!(by("positions").differing_partitions, 1);
    assert_eq!(by("positions").differences, 1, "only the changed field");
    assert_eq!(by("bars").differences, 1);
    // the JSON report carries the same
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["mode"]["mode"], "full");
    assert!(json["differences"].as_array().unwrap().len() >= 6);

    // repair from the files: only the differing records are rewritten
    let opts = VerifyOptions { repair: true, truth: Truth::Secondary, ..VerifyOptions::default() };
    let r = verify(&fx.mem, &fx.files, &opts).await.unwrap();
    assert_eq!(by_repaired(&r, "deals"), 3, "changed + missing + extra: {}", r.render_text());
    assert_eq!(by_repaired(&r, "assets"), 1);
    assert_eq!(by_repaired(&r, "bars"), 1);
    let again = verify(&fx.mem, &fx.files, &VerifyOptions::default()).await.unwrap();
    assert_eq!(again.total_differences(), 0, "{}", again.render_text());
}

fn by_repaired(r: &sqdata_hybrid::VerifyReport, d: &str) -> u64 {
    r.domains.iter().find(|x| x.domain.as_str() == d).unwrap().repaired
}

#[tokio::test]
async fn repair_can_take_the_primary_as_truth_and_incremental_checks_one_day() {
    let (fx, books, _) = equal_stores().await;
    let b = &books[1];
    let days = sample::weekdays(NaiveDate::from_ymd_opt(2025, 1, 2).unwrap(), 60);
    // the primary has a later deal the files lack (files behind)
    let late = sample::deals(b, &fresh_codes(1), &[days[59]], 1, "late");
    fx.mem.deals.record_batch(&late).await.unwrap();
    // incremental on another day sees nothing; on that day, the deal
    let other = VerifyOptions { mode: VerifyMode::Incremental(days[10]), ..VerifyOptions::default() };
    assert_eq!(verify(&fx.mem, &fx.files, &other).await.unwrap().total_differences(), 0);
    let that = VerifyOptions {
        mode: VerifyMode::Incremental(days[59]),
        repair: true,
        truth: Truth::Primary,
        domains: vec![Domain::Deals],
        books: Some(vec![b.clone()]),
        ..VerifyOptions::default()
    };
    let r = verify(&fx.mem, &fx.files, &that).await.unwrap();
    assert_eq!((r.total_differences(), r.total_repaired()), (1, 1), "{}", r.render_text());
    let files_have = fx.files.deals.query(&DealQuery::book(b.clone())).await.unwrap().total;
    assert_eq!(files_have, 301, "the files got the primary's deal");
}

#[tokio::test]
async fn a_side_that_cannot_be_read_fails_the_verification() {
    let (fx, _, _) = equal_stores().await;
    let chaos = sqdata_testkit::chaos::Chaos::wrap(fx.mem.clone());
    chaos.switch.set(sqdata_testkit::chaos::Fault::Fail);
    assert!(verify(&chaos.stores(), &fx.files, &VerifyOptions::default()).await.is_err());
}

/// `rollout rollback`: the files are brought up to date from the primary,
/// then the accounts are back on the files; a dead primary does not stop it
/// (the files hold every acknowledged write).
#[tokio::test]
async fn rollback_to_files_syncs_first_and_survives_a_dead_primary() {
    use sqdata_core::PositionStore;
    let dir = tempfile::tempdir().unwrap();
    let mem = Stores::from_one(Arc::new(MemoryStore::new(Duration::from_secs(5))));
    let chaos = sqdata_testkit::chaos::Chaos::wrap(mem.clone());
    let files = common::files(dir.path(), Duration::from_secs(5));
    let h = sqdata_hybrid::Hybrid::new(chaos.stores(), files.clone(), common::config(dir.path())).unwrap();
    let book = fresh_book();
    let codes = fresh_codes(200);
    h.new_held(&book, &codes).await.unwrap();
    // the primary moved on without the files (a direct write on the server)
    let tick = sqdata_core::PriceTick { code: codes[7], high: 123.45, low: 1.0 };
    mem.positions.update_extremes(&book, &[tick]).await.unwrap();
    assert_ne!(files.positions.snapshot(&book).await.unwrap(), mem.positions.snapshot(&book).await.unwrap());
    let r = h.rollback_to_files(Some(&[book.account.as_str().to_string()]), false).await.unwrap();
    assert!(r.synced.as_ref().is_some_and(|v| v.total_repaired() > 0), "{r:?}");
    assert_eq!(files.positions.snapshot(&book).await.unwrap(), mem.positions.snapshot(&book).await.unwrap());
    assert_eq!(h.stage(Some(&book)), sqdata_hybrid::Stage::Files);
    let stages = sqdata_hybrid::effective_stages(h.config()).unwrap();
    assert_eq!(stages[book.account.as_str()], sqdata_hybrid::Stage::Files);
    assert_eq!(stages["*"], sqdata_hybrid::Stage::Writes, "other accounts stay");

    chaos.switch.set(sqdata_testkit::chaos::Fault::Fail);
    let r = h.rollback_to_files(None, false).await.unwrap();
    assert!(r.synced.is_none() && r.notes.iter().any(|n| n.contains("unreachable")), "{r:?}");
    assert_eq!(sqdata_hybrid::effective_stages(h.config()).unwrap()["*"], sqdata_hybrid::Stage::Files);
}
