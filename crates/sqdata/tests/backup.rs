//! Logical backup and restore of every configured store (files, Redis,
//! ClickHouse) on the real servers; checksums; 7-day retention.

mod common;

use chrono::NaiveDate;
use sqdata::backup;
use sqdata::{Backend, BarKey, BarSeries, BarWriteMode, DealQuery, Period, PriceTick, RegistryStore};
use sqdata_testkit::{bars::daily_bars, fresh_book, fresh_codes, sample};

#[tokio::test]
async fn backup_then_restore_returns_every_store_to_the_backup() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::mvp(dir.path());
    let _cleanup = common::Cleanup::of(&c);
    let opened = sqdata::open_all(&c).unwrap();
    let s = &opened.stores;
    let days = sample::weekdays(NaiveDate::from_ymd_opt(2025, 5, 5).unwrap(), 10);
    let book = fresh_book();
    let codes = fresh_codes(20);
    sample::seed_book(
        s,
        &book,
        &sample::positions(&codes, days[9]),
        &sample::deals(&book, &codes, &days, 5, "k"),
        &sample::assets(&days),
    )
    .await
    .unwrap();
    let key = BarKey::new(fresh_codes(1)[0], Period::Day1, sqdata::Adjust::Qfq);
    s.bars.save_bars(&BarSeries { key, bars: daily_bars(15) }, BarWriteMode::Replace).await.unwrap();
    let before = s.positions.snapshot(&book).await.unwrap();
    // the registry (SQLite under the data folder here) is backed up too
    let reg = sqdata::open_registry(&c).await.unwrap();
    let acct =
        sqdata::Account { id: book.account.clone(), name: "n".into(), broker: "qmt".into(), meta: Default::default() };
    reg.upsert_account(&acct, "t").await.unwrap();
    let strat = sqdata::Strategy { book: book.clone(), description: String::new(), kind: "pwc".into(), enabled: true };
    reg.upsert_strategy(&strat, "t").await.unwrap();
    let p1 = sqdata::serde_json::json!({"stop": 0.05}).as_object().unwrap().clone();
    reg.put_params(&book, &p1, "t", "").await.unwrap();

    // this process's unflushed deals reach ClickHouse within flush_interval;
    // the backup (another store instance) reads what ClickHouse holds
    s.deals.query(&DealQuery::book(book.clone())).await.unwrap();
    let out = dir.path().join("backups");
    let r = backup::backup(&c, &out).await.unwrap();
    assert!(r.archive.exists() && r.bytes > 0);
    let parts: Vec<Backend> = r.manifest.parts.iter().map(|p| p.backend).collect();
    assert_eq!(parts, vec![Backend::File, Backend::Redis, Backend::Clickhouse]);
    let ch = r.manifest.parts.iter().find(|p| p.backend == Backend::Clickhouse).unwrap();
    assert_eq!((ch.records["deals"], ch.records["assets"], ch.records["bars"]), (50, 10, 15));
    let sidecar = std::fs::read_to_string(format!("{}.sha256", r.archive.display())).unwrap();
    assert!(sidecar.starts_with(&r.sha256));
    let rp = r.manifest.registry.as_ref().expect("registry part");
    assert_eq!((rp.backend.as_str(), rp.accounts, rp.params), ("sqlite", 1, 1));

    // after the backup: a stop raised, more deals, a new book
    s.positions.update_extremes(&book, &[PriceTick { code: codes[0], high: 999.0, low: 1.0 }]).await.unwrap();
    s.deals.record_batch(&sample::deals(&book, &codes, &days[..1], 3, "late")).await.unwrap();
    let other = fresh_book();
    s.positions.new_held(&other, &fresh_codes(2)).await.unwrap();
    reg.put_params(&book, &p1, "t", "after the backup").await.unwrap();

    // this process's ClickHouse journal is flushed before another store
    // instance (the restore's) opens the same journal folder
    s.deals.query(&DealQuery::book(book.clone())).await.unwrap();
    let rr = backup::restore(&c, &r.archive, None).await.unwrap();
    assert_eq!(rr.checked.len(), 3);
    assert!(rr.checked.iter().all(|(_, v)| v.total_differences() == 0));
    assert_eq!(rr.registry.as_ref().map(|r| r.params), Some(1));
    assert_eq!(reg.param_history(&book).await.unwrap().len(), 1, "the version added after the backup is gone");
    for side in [opened.hybrid.as_ref().unwrap().primary(), &sqdata::Stores::from_one(opened.files.clone())] {
        assert_eq!(side.positions.snapshot(&book).await.unwrap(), before);
        assert!(side.positions.snapshot(&other).await.unwrap().positions.is_empty(), "added after: removed");
        assert_eq!(side.deals.query(&DealQuery::book(book.clone())).await.unwrap().total, 50);
    }

    // a damaged archive is refused before anything is touched
    let mut bytes = std::fs::read(&r.archive).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&r.archive, bytes).unwrap();
    let e = backup::restore(&c, &r.archive, None).await.unwrap_err();
    assert!(matches!(e, sqdata::Error::Corrupt { .. }), "{e}");
}

#[test]
fn retention_keeps_the_newest_backup_of_each_of_seven_days() {
    let dir = tempfile::tempdir().unwrap();
    for d in 1..=10 {
        for t in ["080000", "150000"] {
            let name = format!("sqdata-backup-202511{d:02}-{t}.tar.gz");
            std::fs::write(dir.path().join(&name), b"x").unwrap();
            std::fs::write(dir.path().join(format!("{name}.sha256")), b"x").unwrap();
        }
    }
    let removed = backup::prune(dir.path(), backup::KEEP_DAYS).unwrap();
    assert_eq!(removed.len(), 20 - 7);
    let kept: Vec<String> =
        backup::list(dir.path()).unwrap().iter().map(|p| p.file_name().unwrap().to_string_lossy().into()).collect();
    assert_eq!(kept.len(), 7);
    assert!(kept.iter().all(|k| k.ends_with("-150000.tar.gz")), "{kept:?}");
    assert_eq!(kept[0], "sqdata-backup-20251104-150000.tar.gz");
    assert!(!dir.path().join("sqdata-backup-20251101-150000.tar.gz.sha256").exists());
}
