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
