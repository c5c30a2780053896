//! Asset conformance: one row per (book, date).

use std::sync::Arc;

use chrono::NaiveDate;
use sqdata_core::{AssetRow, AssetStore, AssetStoreExt as _, DateRange};

use crate::{Fixture, fresh_book, sibling_book};

fn store(fx: &Fixture) -> Arc<dyn AssetStore> {
    fx.assets.clone().expect("the fixture provides no asset store")
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 10, d).unwrap()
}

/// A second value for the same date replaces the first (SilverQuant
/// appended a duplicate row on restart).
pub async fn upsert_replaces_the_same_date(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    s.upsert_asset(&b, AssetRow { date: day(10), asset: 100_000.0 }).await.unwrap();
    s.upsert_asset(&b, AssetRow { date: day(9), asset: 99_500.25 }).await.unwrap();
    s.upsert_asset(&b, AssetRow { date: day(10), asset: 100_600.5 }).await.unwrap();
    let rows = s.assets(&b, DateRange::all()).await.unwrap();
    assert_eq!(rows, vec![AssetRow { date: day(9), asset: 99_500.25 }, AssetRow { date: day(10), asset: 100_600.5 }]);
    assert!(s.list_books().await.unwrap().contains(&b));
    s.delete_book(&b).await.unwrap();
    assert!(s.assets(&b, DateRange::all()).await.unwrap().is_empty());
}

/// Inclusive ranges; books do not see each other.
pub async fn range_and_isolation(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let other = sibling_book(&b);
    for d in 1..=20 {
        s.upsert_asset(&b, AssetRow { date: day(d), asset: 1000.0 + d as f64 }).await.unwrap();
    }
    s.upsert_asset(&other, AssetRow { date: day(5), asset: 1.0 }).await.unwrap();
    let r = s.assets(&b, DateRange { from: Some(day(5)), to: Some(day(7)) }).await.unwrap();
    assert_eq!(r.iter().map(|x| x.date).collect::<Vec<_>>(), vec![day(5), day(6), day(7)]);
    assert_eq!(r[0].asset, 1005.0);
    assert_eq!(s.assets(&other, DateRange::all()).await.unwrap().len(), 1);
    assert!(s.assets(&b, DateRange { from: Some(day(7)), to: Some(day(5)) }).await.is_err());
    s.delete_book(&b).await.unwrap();
    s.delete_book(&other).await.unwrap();
}

/// NaN or negative assets are rejected; what is stored stays.
pub async fn bad_assets_are_rejected(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    s.upsert_asset(&b, AssetRow { date: day(10), asset: 5.0 }).await.unwrap();
    for v in [f64::NAN, f64::INFINITY, -1.0] {
        let e = s.upsert_asset(&b, AssetRow { date: day(10), asset: v }).await.unwrap_err();
        assert!(e.is_invalid_input() && e.to_string().contains("asset"), "{e}");
    }
    assert_eq!(s.assets(&b, DateRange::all()).await.unwrap(), vec![AssetRow { date: day(10), asset: 5.0 }]);
    s.delete_book(&b).await.unwrap();
}

fn row(d: u32, asset: f64) -> AssetRow {
    AssetRow { date: day(d), asset }
}

/// One batch of several days, one already stored: the stored day is
/// replaced, the others added, the untouched days kept; the batch need not
/// be in date order, and an empty batch changes nothing.
pub async fn batch_upsert_adds_and_replaces(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    s.upsert_asset(&b, row(10, 100_000.0)).await.unwrap();
    s.upsert_asset(&b, row(8, 98_000.0)).await.unwrap();
    s.upsert_assets(&b, &[row(13, 101_000.75), row(10, 100_600.5), row(9, 99_500.25)]).await.unwrap();
    let want = vec![row(8, 98_000.0), row(9, 99_500.25), row(10, 100_600.5), row(13, 101_000.75)];
    assert_eq!(s.assets(&b, DateRange::all()).await.unwrap(), want);
    s.upsert_assets(&b, &[]).await.unwrap();
    assert_eq!(s.assets(&b, DateRange::all()).await.unwrap(), want);
    // a fresh book gets its first rows from one batch
    let fresh = sibling_book(&b);
    s.upsert_assets(&fresh, &[row(1, 1.0), row(2, 0.0)]).await.unwrap();
    assert_eq!(s.assets(&fresh, DateRange::all()).await.unwrap(), vec![row(1, 1.0), row(2, 0.0)]);
    assert!(s.list_books().await.unwrap().contains(&fresh));
    assert_eq!(s.assets(&b, DateRange::all()).await.unwrap(), want);
    s.delete_book(&b).await.unwrap();
    s.delete_book(&fresh).await.unwrap();
}

/// An invalid row anywhere in a batch (NaN, infinite or negative asset, a
/// year before 1990): a clear error naming the field, and no row of the
/// batch is stored — neither the new days nor the replacement of a stored one.
pub async fn bad_row_in_a_batch_stores_nothing(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let empty = sibling_book(&b);
    s.upsert_asset(&b, row(10, 5.0)).await.unwrap();
    let old = AssetRow { date: NaiveDate::from_ymd_opt(1980, 1, 2).unwrap(), asset: 1.0 };
    let cases: Vec<(Vec<AssetRow>, &str)> = vec![
        (vec![row(11, 6.0), row(12, f64::NAN)], "asset"),
        (vec![row(10, 7.0), row(11, 6.0), old], "date"),
        (vec![row(11, f64::INFINITY), row(10, 7.0)], "asset"),
        (vec![row(11, 6.0), row(10, -0.5), row(12, 8.0)], "asset"),
        (vec![old], "date"),
    ];
    for (rows, field) in cases {
        for bk in [&b, &empty] {
            let e = s.upsert_assets(bk, &rows).await.unwrap_err();
            assert!(e.is_invalid_input(), "{e:?}");
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
    }
    let e = s.upsert_asset(&b, old).await.unwrap_err();
    assert!(e.is_invalid_input() && e.to_string().contains("date"), "{e}");
    assert_eq!(s.assets(&b, DateRange::all()).await.unwrap(), vec![row(10, 5.0)]);
    assert!(s.assets(&empty, DateRange::all()).await.unwrap().is_empty());
    assert!(!s.list_books().await.unwrap().contains(&empty));
    s.delete_book(&b).await.unwrap();
}

/// delete_assets returns how many of the dates existed (unknown dates count
/// 0 and are no error, a date listed twice counts once), and leaves the other
/// days and other books alone.
pub async fn delete_assets_counts_what_existed(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let other = sibling_book(&b);
    let b3 = sqdata_core::BookId::new(format!("{}x", b.account), b.book.as_str()).unwrap();
    s.upsert_assets(&b, &(1..=5).map(|d| row(d, 1000.0 + d as f64)).collect::<Vec<_>>()).await.unwrap();
    let theirs: Vec<AssetRow> = (1..=3).map(|d| row(d, 1.0 + d as f64)).collect();
    s.upsert_assets(&other, &theirs).await.unwrap();
    s.upsert_assets(&b3, &theirs).await.unwrap();
    assert_eq!(s.delete_assets(&b, &[day(2), day(20), day(4), day(2)]).await.unwrap(), 2);
    assert_eq!(s.assets(&b, DateRange::all()).await.unwrap(), vec![row(1, 1001.0), row(3, 1003.0), row(5, 1005.0)]);
    assert_eq!(s.assets(&other, DateRange::all()).await.unwrap(), theirs);
    assert_eq!(s.assets(&b3, DateRange::all()).await.unwrap(), theirs);
    assert_eq!(s.delete_assets(&b, &[day(2), day(4), day(21)]).await.unwrap(), 0, "already gone");
    assert_eq!(s.delete_assets(&b, &[]).await.unwrap(), 0);
    assert_eq!(s.delete_assets(&fresh_book(), &[day(1)]).await.unwrap(), 0, "a book with no rows");
    assert_eq!(s.assets(&b, DateRange::all()).await.unwrap().len(), 3);
    // a deleted day may be stored again
    s.upsert_asset(&b, row(2, 2.5)).await.unwrap();
    assert_eq!(s.assets(&b, DateRange { from: Some(day(2)), to: Some(day(2)) }).await.unwrap(), vec![row(2, 2.5)]);
    for bk in [&b, &other, &b3] {
        s.delete_book(bk).await.unwrap();
    }
}

/// Deleting every row leaves the curve empty; the book can start again.
pub async fn deleting_every_row_empties_the_book(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let dates: Vec<NaiveDate> = (1..=4).map(day).collect();
    s.upsert_assets(&b, &dates.iter().map(|d| AssetRow { date: *d, asset: 10.0 }).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(s.delete_assets(&b, &dates).await.unwrap(), 4);
    assert!(s.assets(&b, DateRange::all()).await.unwrap().is_empty());
    assert_eq!(s.delete_assets(&b, &dates).await.unwrap(), 0);
    s.upsert_asset(&b, row(9, 9.0)).await.unwrap();
    assert_eq!(s.assets(&b, DateRange::all()).await.unwrap(), vec![row(9, 9.0)]);
    s.delete_book(&b).await.unwrap();
}
