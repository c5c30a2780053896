//! The archive's behaviour, run on a local directory and on the
//! S3-compatible server of `cargo xtask services up` (a bucket per test),
//! with the file store as the source.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Duration, NaiveDate};
use object_store::ObjectStoreExt;
use sqdata_archive::{Archive, ArchiveConfig, Progress, Table};
use sqdata_core::{
    BarKey, BarSeries, BarWriteMode, BookId, DateRange, Deal, DealQuery, DealStore, Period, Stores, TimeRange,
};
use sqdata_file::{FileConfig, FileStore};
use sqdata_testkit::{code, env, fresh_book, fresh_codes, sample};

struct Env {
    _dir: tempfile::TempDir,
    stores: Stores,
    cfg: ArchiveConfig,
}

fn files(dir: &std::path::Path) -> Stores {
    Stores::from_one(Arc::new(FileStore::open(FileConfig::at(dir.join("files"))).unwrap()))
}

fn local() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ArchiveConfig { url: dir.path().join("archive").display().to_string(), ..Default::default() };
    Env { stores: files(dir.path()), _dir: dir, cfg }
}

fn s3() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = env("SQDATA_TEST_S3_URL");
    let bucket = format!("sqdata-t-{:016x}", sqdata_testkit::random_u64());
    sqdata_testkit::create_s3_bucket(&endpoint, &bucket);
    let cfg = ArchiveConfig {
        url: format!("s3://{bucket}/silverquant/archive"),
        endpoint,
        access_key: env("SQDATA_TEST_S3_ACCESS_KEY"),
        secret_key: env("SQDATA_TEST_S3_SECRET_KEY"),
        ..Default::default()
    };
    Env { stores: files(dir.path()), _dir: dir, cfg }
}

fn quiet(_: &Progress) {}

async fn all_deals(s: &dyn DealStore, b: &BookId) -> Vec<Deal> {
    let mut out = Vec::new();
    for page in 1.. {
        let q = DealQuery { page, page_size: 1000, ..DealQuery::book(b.clone()) };
        let got = s.query(&q).await.unwrap();
        let n = got.data.len();
        out.extend(got.data);
        if n < 1000 {
            break;
        }
    }
    out
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// Old deals move to one part per book and month and come back intact.
async fn deals_move_out_and_back(e: Env) {
    let codes = fresh_codes(5);
    let (b1, b2) = (fresh_book(), fresh_book());
    let days = sample::weekdays(d(2025, 1, 2), 60); // January to late March
    for b in [&b1, &b2] {
        let mut deals = sample::deals(b, &codes, &days, 4, "t");
        deals[0].name = "贵州茅台·测试".into();
        deals[1].remark = "止损, \"quoted\"".into();
        e.stores.deals.record_batch(&deals).await.unwrap();
    }
    let before = all_deals(&*e.stores.deals, &b1).await;
    let a = Archive::open(&e.cfg).unwrap();
    let seen = AtomicU64::new(0);
    let progress = |p: &Progress| seen.store(p.rows, Ordering::Relaxed);
    let r = a.archive(&e.stores, Table::Deals, d(2025, 3, 1), &progress).await.unwrap();
    let old = before.iter().filter(|x| x.time.date() < d(2025, 3, 1)).count() as u64;
    assert_eq!((r.parts_written, r.rows_archived, r.rows_deleted), (4, 2 * old, 2 * old), "{r:?}");
    assert_eq!(seen.load(Ordering::Relaxed), 2 * old, "progress reported every row");
    let left = all_deals(&*e.stores.deals, &b1).await;
    assert!(left.iter().all(|x| x.time.date() >= d(2025, 3, 1)) && !left.is_empty());
    let m = a.manifest().await.unwrap();
    assert_eq!(m.parts.len(), 4);
    assert!(m.parts.contains_key(&format!("deals/account={}/book={}/month=2025-01.parquet", b1.account, b1.book)));
    assert!(a.verify().await.unwrap().problems.is_empty());

    // Restore one month: only it comes back.
    let feb = DateRange { from: Some(d(2025, 2, 1)), to: Some(d(2025, 2, 28)) };
    let rr = a.restore(&e.stores, Table::Deals, feb, &quiet).await.unwrap();
    assert_eq!(rr.parts_read, 2);
    let now = all_deals(&*e.stores.deals, &b1).await;
    assert!(now.iter().all(|x| x.time.date() >= d(2025, 2, 1)));
    // Restore everything: the book is exactly what it was; again: no duplicates.
    for _ in 0..2 {
        a.restore(&e.stores, Table::Deals, DateRange::all(), &quiet).await.unwrap();
        assert_eq!(all_deals(&*e.stores.deals, &b1).await, before);
    }
    // Archiving again merges into the same parts: nothing duplicated.
    let r2 = a.archive(&e.stores, Table::Deals, d(2025, 3, 1), &quiet).await.unwrap();
    assert_eq!(r2.rows_archived, 2 * old);
    let m2 = a.manifest().await.unwrap();
    assert_eq!(m2.parts.values().map(|p| p.rows).sum::<u64>(), 2 * old);
    assert_eq!(m2.parts.keys().collect::<Vec<_>>(), m.parts.keys().collect::<Vec<_>>());
}

/// Daily bars split by year; a restore of a range upserts just that range.
async fn bars_move_out_and_back(e: Env) {
    let key = BarKey::new(fresh_codes(1)[0], Period::Day1, sqdata_core::Adjust::Qfq);
    let mut bars = sqdata_testkit::bars::daily_bars(550);
    let start = d(2023, 6, 1).and_hms_opt(0, 0, 0).unwrap();
    for (i, b) in bars.iter_mut().enumerate() {
        b.datetime = start + Duration::days(i as i64);
    }
    e.stores.bars.save_bars(&BarSeries { key, bars: bars.clone() }, BarWriteMode::Replace).await.unwrap();
    let a = Archive::open(&e.cfg).unwrap();
    let r = a.archive(&e.stores, Table::Bars, d(2024, 7, 1), &quiet).await.unwrap();
    let old = bars.iter().filter(|b| b.datetime.date() < d(2024, 7, 1)).count() as u64;
    assert_eq!((r.parts_written, r.rows_archived, r.rows_deleted), (2, old, old), "2023 and 2024: {r:?}");
    let left = e.stores.bars.load_bars(&key, TimeRange::all()).await.unwrap();
    assert_eq!(left.len() as u64, 550 - old);
    let q1 = DateRange { from: Some(d(2024, 1, 1)), to: Some(d(2024, 3, 31)) };
    let rr = a.restore(&e.stores, Table::Bars, q1, &quiet).await.unwrap();
    assert_eq!(rr.rows_restored, 91);
    a.restore(&e.stores, Table::Bars, DateRange::all(), &quiet).await.unwrap();
    assert_eq!(e.stores.bars.load_bars(&key, TimeRange::all()).await.unwrap(), bars, "bit-exact floats");
}

/// A damaged part is reported by verify and refused by restore, naming the
/// object; the store is not touched.
async fn a_damaged_part_is_reported_and_not_restored(e: Env) {
    let b = fresh_book();
    let days = sample::weekdays(d(2025, 1, 2), 10);
    e.stores.deals.record_batch(&sample::deals(&b, &[code("600000.SH")], &days, 3, "x")).await.unwrap();
    let a = Archive::open(&e.cfg).unwrap();
    a.archive(&e.stores, Table::Deals, d(2025, 2, 1), &quiet).await.unwrap();
    let rel = a.manifest().await.unwrap().parts.keys().next().unwrap().clone();
    // Overwrite the part with a valid Parquet file of different rows.
    let other = sample::deals(&b, &[code("600000.SH")], &days[..2], 1, "y");
    let (store, prefix) = raw(&e.cfg);
    let mut p = prefix;
    for seg in rel.split('/') {
        p = p.join(seg);
    }
    store.put(&p, bytes_of(&other).await.into()).await.unwrap();
    let v = a.verify().await.unwrap();
    assert_eq!(v.problems.len(), 1, "{v:?}");
    assert_eq!(v.problems[0].path, rel);
    let err = a.restore(&e.stores, Table::Deals, DateRange::all(), &quiet).await.unwrap_err();
    assert_eq!(err.kind(), "corrupt", "{err}");
    assert!(err.to_string().contains(&rel), "{err}");
    assert!(all_deals(&*e.stores.deals, &b).await.is_empty(), "nothing restored");
    // Garbage bytes: also corrupt, never a panic.
    store.put(&p, b"not parquet at all".to_vec().into()).await.unwrap();
    let err = a.restore(&e.stores, Table::Deals, DateRange::all(), &quiet).await.unwrap_err();
    assert_eq!(err.kind(), "corrupt", "{err}");
}

/// Parquet bytes of `deals`, written through a scratch local archive.
async fn bytes_of(deals: &[Deal]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let st = files(dir.path());
    st.deals.record_batch(deals).await.unwrap();
    let cfg = ArchiveConfig { url: dir.path().join("a").display().to_string(), ..Default::default() };
    let a = Archive::open(&cfg).unwrap();
    a.archive(&st, Table::Deals, d(2030, 1, 1), &quiet).await.unwrap();
    let rel = a.manifest().await.unwrap().parts.keys().next().unwrap().clone();
    std::fs::read(dir.path().join("a").join(rel)).unwrap()
}

/// The object store under the archive, for tampering.
fn raw(cfg: &ArchiveConfig) -> (Arc<dyn object_store::ObjectStore>, object_store::path::Path) {
    if let Some(rest) = cfg.url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap();
        let s = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(&cfg.endpoint)
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_access_key_id(&cfg.access_key)
            .with_secret_access_key(&cfg.secret_key)
            .build()
            .unwrap();
        (Arc::new(s), object_store::path::Path::from(prefix))
    } else {
        let s = object_store::local::LocalFileSystem::new_with_prefix(&cfg.url).unwrap();
        (Arc::new(s), object_store::path::Path::default())
    }
}

/// Bad input names its field; nothing moves.
async fn bad_input_is_rejected(e: Env) {
    let a = Archive::open(&e.cfg).unwrap();
    let bad = DateRange { from: Some(d(2025, 3, 1)), to: Some(d(2025, 1, 1)) };
    let err = a.restore(&e.stores, Table::Deals, bad, &quiet).await.unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert!("trades".parse::<Table>().unwrap_err().to_string().contains("table"));
    let m = a.manifest().await.unwrap();
    assert!(m.parts.is_empty());
}

macro_rules! on_both {
    ($($case:ident),+) => {
        mod local_dir {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(local()).await } )+
        }
        mod s3_server {
            use super::*;
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $case() { super::$case(s3()).await } )+
        }
    };
}

on_both!(
    deals_move_out_and_back,
    bars_move_out_and_back,
    a_damaged_part_is_reported_and_not_restored,
    bad_input_is_rejected
);

/// An S3 server that is not there: `Unavailable`, and the store keeps every row.
#[tokio::test]
async fn an_unreachable_server_moves_nothing() {
    let e = local();
    let b = fresh_book();
    let days = sample::weekdays(d(2025, 1, 2), 5);
    e.stores.deals.record_batch(&sample::deals(&b, &[code("000001.SZ")], &days, 2, "u")).await.unwrap();
    let cfg = ArchiveConfig {
        url: "s3://nowhere/x".into(),
        endpoint: "http://127.0.0.1:1".into(),
        access_key: "k".into(),
        secret_key: "s".into(),
        ..Default::default()
    };
    let a = Archive::open(&cfg).unwrap();
    let err = a.archive(&e.stores, Table::Deals, d(2026, 1, 1), &quiet).await.unwrap_err();
    assert_eq!(err.kind(), "unavailable", "{err}");
    assert_eq!(all_deals(&*e.stores.deals, &b).await.len(), 10, "nothing deleted");
}
