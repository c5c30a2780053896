//! Deal conformance: idempotent records, filters and paging at their boundaries.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use sqdata_core::{
    AggregateBy, AggregateQuery, BookId, Deal, DealKind, DealQuery, DealScope, DealStore, DealStoreExt, MAX_PAGE_SIZE,
};

use crate::{Fixture, code, fresh_book, sibling_book};

fn store(fx: &Fixture) -> Arc<dyn DealStore> {
    fx.deals.clone().expect("the fixture provides no deal store")
}

fn at(d: u32, h: u32, m: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 10, d).unwrap().and_hms_opt(h, m, s).unwrap()
}

/// A deal with sensible defaults.
pub fn deal(book: &BookId, id: &str, time: NaiveDateTime, c: &str, kind: DealKind, price: f64, volume: u64) -> Deal {
    Deal {
        id: id.to_owned(),
        book: book.clone(),
        time,
        code: code(c),
        name: "平安银行".to_owned(),
        kind,
        remark: "买入委托".to_owned(),
        price,
        volume,
        amount: price * volume as f64,
        strategy: "conformance".to_owned(),
    }
}

async fn all(s: &dyn DealStore, scope: DealScope) -> Vec<Deal> {
    let mut q = DealQuery { scope, from: None, to: None, code: None, kind: None, page: 1, page_size: MAX_PAGE_SIZE };
    let mut out = Vec::new();
    loop {
        let p = s.query(&q).await.unwrap();
        let n = p.data.len();
        out.extend(p.data);
        if n < q.page_size as usize {
            return out;
        }
        q.page += 1;
    }
}

/// Every field comes back as written, names in Chinese included; results are
/// ordered by (time, id).
pub async fn record_and_query_roundtrip_with_unicode(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let mut d1 = deal(&b, "ord-3", at(10, 14, 50, 3), "000001.SZ", DealKind::MarketBuy, 11.23, 800);
    d1.name = "平安银行".into();
    let mut d2 = deal(&b, "ord-1", at(10, 9, 31, 0), "000002.SZ", DealKind::LimitSell, 8.5, 1200);
    d2.name = "萬科Ａ".into();
    d2.remark = "止盈卖出,\"测试\"".into();
    let mut d3 = deal(&b, "ord-2", at(10, 9, 31, 0), "430047.BJ", DealKind::SellFill, 15.0, 300);
    d3.name = "*ST国华·测试".into();
    d3.strategy = "策略甲".into();
    d3.amount = 4499.55;
    let out = s.record_batch(&[d1.clone(), d2.clone(), d3.clone()]).await.unwrap();
    assert_eq!((out.inserted, out.duplicates), (3, 0));
    let page = s.query(&DealQuery::book(b.clone())).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.data, vec![d2, d3, d1]);
    s.delete_book(&b).await.unwrap();
}

/// Recording the same id again (a replay) stores it once, in a batch too.
pub async fn same_id_is_recorded_once(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let d = deal(&b, "A-1", at(10, 10, 0, 0), "600000.SH", DealKind::LimitBuy, 7.77, 100);
    let o = s.record(&d).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (1, 0));
    let o = s.record(&d).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (0, 1));
    let d2 = deal(&b, "A-2", at(10, 10, 0, 1), "600000.SH", DealKind::LimitBuy, 7.78, 100);
    let o = s.record_batch(&[d2.clone(), d2.clone(), d.clone()]).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (1, 2));
    assert_eq!(all(&*s, DealScope::Book(b.clone())).await, vec![d, d2]);
    s.delete_book(&b).await.unwrap();
}

/// First page, last partial page, a page past the end (empty, with the total).
pub async fn paging_boundaries(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let mut ds: Vec<Deal> = (0..25)
        .map(|i| deal(&b, &format!("p{i:02}"), at(10, 10, i / 2, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100))
        .collect();
    ds.reverse(); // recorded out of order
    s.record_batch(&ds).await.unwrap();
    ds.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    let mut q = DealQuery::book(b.clone());
    q.page_size = 10;
    let p1 = s.query(&q).await.unwrap();
    assert_eq!((p1.total, p1.page, p1.page_size), (25, 1, 10));
    assert_eq!(p1.data, ds[..10].to_vec());
    q.page = 3;
    let p3 = s.query(&q).await.unwrap();
    assert_eq!(p3.data, ds[20..].to_vec());
    assert_eq!(p3.total, 25);
    q.page = 4;
    let p4 = s.query(&q).await.unwrap();
    assert!(p4.data.is_empty());
    assert_eq!(p4.total, 25);
    q.page = 1;
    q.page_size = 25;
    assert_eq!(s.query(&q).await.unwrap().data, ds);
    s.delete_book(&b).await.unwrap();
}

/// from/to are inclusive days: the first second of the first day and the
/// last second of the last day are in; the neighbours are out.
pub async fn date_filter_boundaries(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let ds = vec![
        deal(&b, "d1", at(9, 23, 59, 59), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b, "d2", at(10, 0, 0, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b, "d3", at(10, 23, 59, 59), "000001.SZ", DealKind::MarketSell, 10.0, 100),
        deal(&b, "d4", at(11, 0, 0, 0), "000001.SZ", DealKind::MarketSell, 10.0, 100),
    ];
    s.record_batch(&ds).await.unwrap();
    let day = |d: u32| Some(NaiveDate::from_ymd_opt(2025, 10, d).unwrap());
    let ids = |p: sqdata_core::Page<Deal>| p.data.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let mut q = DealQuery::book(b.clone());
    q.from = day(10);
    q.to = day(10);
    assert_eq!(ids(s.query(&q).await.unwrap()), ["d2", "d3"]);
    q.to = None;
    assert_eq!(ids(s.query(&q).await.unwrap()), ["d2", "d3", "d4"]);
    q.from = None;
    q.to = day(10);
    assert_eq!(ids(s.query(&q).await.unwrap()), ["d1", "d2", "d3"]);
    q.from = day(12);
    q.to = day(20);
    let p = s.query(&q).await.unwrap();
    assert_eq!((p.total, p.data.len()), (0, 0));
    s.delete_book(&b).await.unwrap();
}

/// Code and kind filters, alone and together.
pub async fn code_and_kind_filters(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let ds = vec![
        deal(&b, "k1", at(10, 9, 30, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b, "k2", at(10, 9, 31, 0), "000001.SH", DealKind::MarketBuy, 3000.0, 1),
        deal(&b, "k3", at(10, 9, 32, 0), "000001.SZ", DealKind::LimitSell, 10.5, 100),
        deal(&b, "k4", at(10, 9, 33, 0), "600000.SH", DealKind::LimitSell, 8.0, 100),
    ];
    s.record_batch(&ds).await.unwrap();
    let ids = |p: sqdata_core::Page<Deal>| p.data.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let mut q = DealQuery::book(b.clone());
    q.code = Some(code("000001.SZ"));
    assert_eq!(ids(s.query(&q).await.unwrap()), ["k1", "k3"], "000001.SZ and 000001.SH are different codes");
    q.kind = Some(DealKind::LimitSell);
    assert_eq!(ids(s.query(&q).await.unwrap()), ["k3"]);
    q.code = None;
    assert_eq!(ids(s.query(&q).await.unwrap()), ["k3", "k4"]);
    q.kind = Some(DealKind::Cancel);
    assert_eq!(s.query(&q).await.unwrap().total, 0);
    s.delete_book(&b).await.unwrap();
}

/// An account query spans its books and never another account's.
pub async fn account_scope_spans_books_and_isolates_accounts(fx: &Fixture) {
    let s = store(fx);
    let b1 = fresh_book();
    let b2 = sibling_book(&b1);
    let b3 = BookId::new(format!("{}x", b1.account), b1.book.as_str()).unwrap();
    s.record_batch(&[
        deal(&b1, "s1", at(10, 9, 30, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b2, "s2", at(10, 9, 29, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b3, "s3", at(10, 9, 28, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
    ])
    .await
    .unwrap();
    let got = all(&*s, DealScope::Account(b1.account.clone())).await;
    assert_eq!(got.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["s2", "s1"]);
    assert_eq!(all(&*s, DealScope::Book(b2.clone())).await.len(), 1);
    let books = s.list_books().await.unwrap();
    assert!(books.contains(&b1) && books.contains(&b2) && books.contains(&b3));
    for b in [&b1, &b2, &b3] {
        s.delete_book(b).await.unwrap();
    }
}

/// Per-day and per-month totals of an account.
pub async fn aggregate_by_day_and_month(fx: &Fixture) {
    let s = store(fx);
    let b1 = fresh_book();
    let b2 = sibling_book(&b1);
    let nov = NaiveDate::from_ymd_opt(2025, 11, 3).unwrap().and_hms_opt(10, 0, 0).unwrap();
    s.record_batch(&[
        deal(&b1, "g1", at(10, 9, 30, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b2, "g2", at(10, 10, 30, 0), "000001.SZ", DealKind::LimitBuy, 10.5, 200),
        deal(&b1, "g3", at(11, 9, 30, 0), "000001.SZ", DealKind::MarketSell, 11.0, 300),
        deal(&b1, "g4", at(11, 9, 31, 0), "000001.SZ", DealKind::Cancel, 11.0, 300),
        deal(&b1, "g5", nov, "600000.SH", DealKind::LimitSell, 8.0, 1000),
    ])
    .await
    .unwrap();
    let q = AggregateQuery { account: b1.account.clone(), from: None, to: None, by: AggregateBy::Day };
    let days = s.aggregate(&q).await.unwrap();
    assert_eq!(days.iter().map(|a| a.period.as_str()).collect::<Vec<_>>(), ["2025-10-10", "2025-10-11", "2025-11-03"]);
    let d0 = &days[0];
    assert_eq!((d0.count, d0.buy_count, d0.sell_count, d0.buy_volume), (2, 2, 0, 300));
    assert!((d0.buy_amount - 3100.0).abs() < 1e-6, "{}", d0.buy_amount);
    let d1 = &days[1];
    assert_eq!((d1.count, d1.buy_count, d1.sell_count, d1.sell_volume), (2, 0, 1, 300));
    assert!((d1.sell_amount - 3300.0).abs() < 1e-6);
    let months = s.aggregate(&AggregateQuery { by: AggregateBy::Month, ..q.clone() }).await.unwrap();
    assert_eq!(
        months.iter().map(|a| (a.period.as_str(), a.count)).collect::<Vec<_>>(),
        [("2025-10", 4), ("2025-11", 1)]
    );
    assert!((months[1].sell_amount - 8000.0).abs() < 1e-6);
    let only =
        AggregateQuery { from: NaiveDate::from_ymd_opt(2025, 10, 11), to: NaiveDate::from_ymd_opt(2025, 10, 31), ..q };
    assert_eq!(s.aggregate(&only).await.unwrap().len(), 1);
    s.delete_book(&b1).await.unwrap();
    s.delete_book(&b2).await.unwrap();
}

/// One bad deal in a batch: a clear error naming the field, and nothing of
/// the batch is stored.
pub async fn bad_batch_stores_nothing(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let good = deal(&b, "ok", at(10, 9, 30, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100);
    let mut cases: Vec<(Deal, &str)> = Vec::new();
    let mut d = good.clone();
    d.id = "b1".into();
    d.price = f64::NAN;
    cases.push((d, "price"));
    let mut d = good.clone();
    d.id = "b2".into();
    d.price = -1.0;
    cases.push((d, "price"));
    let mut d = good.clone();
    d.id = String::new();
    cases.push((d, "id"));
    let mut d = good.clone();
    d.id = "b4".into();
    d.name = "平安\n银行".into();
    cases.push((d, "name"));
    let mut d = good.clone();
    d.id = "b5".into();
    d.volume = u64::MAX;
    cases.push((d, "volume"));
    let mut d = good.clone();
    d.id = "b6".into();
    d.time = at(10, 9, 30, 0) + chrono::Duration::milliseconds(5);
    cases.push((d, "time"));
    let mut d = good.clone();
    d.id = "b7".into();
    d.amount = f64::INFINITY;
    cases.push((d, "amount"));
    for (bad, field) in cases {
        let e = s.record_batch(&[good.clone(), bad]).await.unwrap_err();
        assert!(e.is_invalid_input(), "{e:?}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    assert!(all(&*s, DealScope::Book(b.clone())).await.is_empty());
    s.delete_book(&b).await.unwrap();
}

/// Page 0, page sizes 0 and above the limit, from after to.
pub async fn bad_queries_are_rejected(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let base = DealQuery::book(b.clone());
    for (q, field) in [
        (DealQuery { page: 0, ..base.clone() }, "page"),
        (DealQuery { page_size: 0, ..base.clone() }, "page_size"),
        (DealQuery { page_size: MAX_PAGE_SIZE + 1, ..base.clone() }, "page_size"),
        (
            DealQuery {
                from: NaiveDate::from_ymd_opt(2025, 10, 11),
                to: NaiveDate::from_ymd_opt(2025, 10, 10),
                ..base.clone()
            },
            "from",
        ),
    ] {
        let e = s.query(&q).await.unwrap_err();
        assert!(e.is_invalid_input() && e.to_string().contains(field), "{field}: {e}");
    }
}

/// delete_book removes that book's deals only and says how many.
pub async fn delete_book_removes_only_that_book(fx: &Fixture) {
    let s = store(fx);
    let b1 = fresh_book();
    let b2 = sibling_book(&b1);
    s.record_batch(&[
        deal(&b1, "x1", at(10, 9, 30, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b1, "x2", at(10, 9, 31, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b2, "x3", at(10, 9, 32, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
    ])
    .await
    .unwrap();
    assert_eq!(s.delete_book(&b1).await.unwrap(), 2);
    assert!(all(&*s, DealScope::Book(b1.clone())).await.is_empty());
    assert_eq!(all(&*s, DealScope::Book(b2.clone())).await.len(), 1);
    // ids of a deleted book may be recorded again
    let again = deal(&b1, "x1", at(10, 9, 30, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100);
    assert_eq!(s.record(&again).await.unwrap().inserted, 1);
    s.delete_book(&b1).await.unwrap();
    s.delete_book(&b2).await.unwrap();
}

/// delete_deals removes exactly the given ids of that book (aggregates too).
pub async fn delete_deals_removes_exactly_those(fx: &Fixture) {
    let s = store(fx);
    let b1 = fresh_book();
    let b2 = sibling_book(&b1);
    s.record_batch(&[
        deal(&b1, "y1", at(10, 9, 30, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b1, "y2", at(10, 9, 31, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b1, "y3", at(11, 9, 32, 0), "000001.SZ", DealKind::MarketSell, 10.0, 100),
        deal(&b2, "y2", at(10, 9, 33, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
    ])
    .await
    .unwrap();
    let n = s.delete_deals(&b1, &["y2".into(), "y3".into(), "nope".into()]).await.unwrap();
    assert_eq!(n, 2);
    let left: Vec<String> = all(&*s, DealScope::Book(b1.clone())).await.into_iter().map(|d| d.id).collect();
    assert_eq!(left, ["y1"]);
    assert_eq!(all(&*s, DealScope::Book(b2.clone())).await.len(), 1, "the other book's y2 stays");
    let agg = s
        .aggregate(&AggregateQuery { account: b1.account.clone(), from: None, to: None, by: AggregateBy::Day })
        .await
        .unwrap();
    let counts: Vec<(String, u64)> = agg.into_iter().map(|a| (a.period, a.count)).collect();
    assert_eq!(counts, [("2025-10-10".to_owned(), 2)], "aggregates follow the deletion");
    assert_eq!(s.delete_deals(&b1, &[]).await.unwrap(), 0);
    s.delete_book(&b1).await.unwrap();
    s.delete_book(&b2).await.unwrap();
}

/// The book's deals, by id.
async fn by_id(s: &dyn DealStore, b: &BookId) -> std::collections::BTreeMap<String, Deal> {
    all(s, DealScope::Book(b.clone())).await.into_iter().map(|d| (d.id.clone(), d)).collect()
}

/// Replacing a recorded deal changes its fields: the query shows the new
/// price and volume, one row with that id, and the total is unchanged.
pub async fn replace_deals_changes_the_stored_fields(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let d1 = deal(&b, "r1", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 10.0, 100);
    let d2 = deal(&b, "r2", at(10, 9, 31, 0), "600000.SH", DealKind::LimitBuy, 8.0, 200);
    s.record_batch(&[d1.clone(), d2.clone()]).await.unwrap();
    let mut new1 = deal(&b, "r1", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 10.25, 300);
    new1.name = "平安银行(修正)".into();
    new1.remark = "补单".into();
    assert_eq!(s.replace_deals(&b, std::slice::from_ref(&new1)).await.unwrap(), 1);
    let page = s.query(&DealQuery::book(b.clone())).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.data, vec![new1.clone(), d2.clone()]);
    let mut q = DealQuery::book(b.clone());
    q.code = Some(code("000001.SZ"));
    let only = s.query(&q).await.unwrap();
    assert_eq!(only.total, 1, "exactly one row with the replaced id");
    assert_eq!((only.data[0].price, only.data[0].volume), (10.25, 300));
    // replacing with the same values again is still a replacement
    assert_eq!(s.replace_deals(&b, std::slice::from_ref(&new1)).await.unwrap(), 1);
    assert_eq!(all(&*s, DealScope::Book(b.clone())).await, vec![new1, d2]);
    // an empty batch changes nothing
    assert_eq!(s.replace_deals(&b, &[]).await.unwrap(), 0);
    assert_eq!(s.query(&DealQuery::book(b.clone())).await.unwrap().total, 2);
    s.delete_book(&b).await.unwrap();
}

/// A batch of stored and new ids: the count is of the stored ones, the new
/// ones are added; a later record of a replaced id is a duplicate.
pub async fn replace_deals_counts_stored_and_adds_new(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let stored: Vec<Deal> = (0..4)
        .map(|i| deal(&b, &format!("m{i}"), at(10, 10, i, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100))
        .collect();
    s.record_batch(&stored).await.unwrap();
    let batch = vec![
        deal(&b, "m3", at(10, 10, 3, 0), "000001.SZ", DealKind::MarketBuy, 10.5, 100),
        deal(&b, "n1", at(10, 11, 0, 0), "000002.SZ", DealKind::MarketSell, 9.0, 400),
        deal(&b, "m1", at(10, 10, 1, 0), "000001.SZ", DealKind::MarketBuy, 9.9, 500),
        deal(&b, "n2", at(10, 8, 0, 0), "430047.BJ", DealKind::LimitBuy, 15.0, 100),
    ];
    assert_eq!(s.replace_deals(&b, &batch).await.unwrap(), 2);
    let got = by_id(&*s, &b).await;
    assert_eq!(got.keys().map(String::as_str).collect::<Vec<_>>(), ["m0", "m1", "m2", "m3", "n1", "n2"]);
    assert_eq!(got["m0"], stored[0]);
    assert_eq!(got["m2"], stored[2]);
    assert_eq!(got["m1"], batch[2]);
    assert_eq!(got["m3"], batch[0]);
    assert_eq!(got["n1"], batch[1]);
    assert_eq!(got["n2"], batch[3]);
    // ordering by (time, id) holds after a replace
    let ids: Vec<String> = all(&*s, DealScope::Book(b.clone())).await.into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["n2", "m0", "m1", "m2", "m3", "n1"]);
    // a batch of new ids only replaces nothing
    let fresh = deal(&b, "n3", at(11, 9, 30, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100);
    assert_eq!(s.replace_deals(&b, std::slice::from_ref(&fresh)).await.unwrap(), 0);
    let o = s.record(&fresh).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (0, 1));
    assert_eq!(s.query(&DealQuery::book(b.clone())).await.unwrap().total, 7);
    s.delete_book(&b).await.unwrap();
}

/// A deal of another book anywhere in the batch: InvalidInput naming
/// `deal.book`, and nothing of the batch is stored or replaced, in either book.
pub async fn replace_deals_rejects_another_books_deal(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let other = sibling_book(&b);
    let d1 = deal(&b, "o1", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 10.0, 100);
    let d9 = deal(&other, "o9", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 10.0, 100);
    s.record_batch(&[d1.clone(), d9.clone()]).await.unwrap();
    let new1 = deal(&b, "o1", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 12.0, 900);
    let add = deal(&b, "o2", at(10, 9, 31, 0), "000001.SZ", DealKind::LimitBuy, 10.0, 100);
    let foreign = deal(&other, "o9", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitSell, 1.0, 1);
    let foreign_new = deal(&other, "o3", at(10, 9, 32, 0), "000001.SZ", DealKind::LimitBuy, 10.0, 100);
    for batch in [
        vec![new1.clone(), add.clone(), foreign.clone()],
        vec![foreign_new.clone(), new1.clone()],
        vec![foreign.clone()],
    ] {
        let e = s.replace_deals(&b, &batch).await.unwrap_err();
        assert!(e.is_invalid_input(), "{e:?}");
        assert!(e.to_string().contains("deal.book"), "{e}");
    }
    assert_eq!(all(&*s, DealScope::Book(b.clone())).await, vec![d1]);
    assert_eq!(all(&*s, DealScope::Book(other.clone())).await, vec![d9]);
    s.delete_book(&b).await.unwrap();
    s.delete_book(&other).await.unwrap();
}

/// An id twice in one batch (stored or new) is rejected: InvalidInput
/// naming `deal.id`, and nothing changes.
pub async fn replace_deals_rejects_duplicate_ids_in_the_batch(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let d1 = deal(&b, "u1", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 10.0, 100);
    s.record(&d1).await.unwrap();
    let a = deal(&b, "u1", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 11.0, 200);
    let a2 = deal(&b, "u1", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 12.0, 300);
    let n = deal(&b, "u2", at(10, 9, 31, 0), "000001.SZ", DealKind::LimitBuy, 10.0, 100);
    let n2 = deal(&b, "u2", at(10, 9, 32, 0), "000001.SZ", DealKind::LimitSell, 10.5, 100);
    for batch in [vec![a.clone(), n.clone(), a2.clone()], vec![n.clone(), n2.clone()], vec![a.clone(), a.clone()]] {
        let e = s.replace_deals(&b, &batch).await.unwrap_err();
        assert!(e.is_invalid_input(), "{e:?}");
        assert!(e.to_string().contains("deal.id"), "{e}");
    }
    assert_eq!(all(&*s, DealScope::Book(b.clone())).await, vec![d1]);
    s.delete_book(&b).await.unwrap();
}

/// Replacing in one book leaves a sibling book and the same book name in
/// another account untouched, though they hold the same ids.
pub async fn replace_deals_leaves_other_books_alone(fx: &Fixture) {
    let s = store(fx);
    let b1 = fresh_book();
    let b2 = sibling_book(&b1);
    let b3 = BookId::new(format!("{}x", b1.account), b1.book.as_str()).unwrap();
    let mut before = Vec::new();
    for b in [&b1, &b2, &b3] {
        let ds = vec![
            deal(b, "i1", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 10.0, 100),
            deal(b, "i2", at(10, 9, 31, 0), "000001.SZ", DealKind::LimitSell, 10.5, 100),
        ];
        s.record_batch(&ds).await.unwrap();
        before.push(ds);
    }
    let batch = vec![
        deal(&b1, "i1", at(10, 9, 30, 0), "000001.SZ", DealKind::LimitBuy, 20.0, 1000),
        deal(&b1, "i3", at(10, 9, 32, 0), "000001.SZ", DealKind::LimitBuy, 10.0, 100),
    ];
    assert_eq!(s.replace_deals(&b1, &batch).await.unwrap(), 1);
    assert_eq!(
        all(&*s, DealScope::Book(b1.clone())).await,
        vec![batch[0].clone(), before[0][1].clone(), batch[1].clone()]
    );
    assert_eq!(all(&*s, DealScope::Book(b2.clone())).await, before[1]);
    assert_eq!(all(&*s, DealScope::Book(b3.clone())).await, before[2]);
    for b in [&b1, &b2, &b3] {
        s.delete_book(b).await.unwrap();
    }
}

/// Aggregates follow a replace: the day's totals show the new price and
/// volume with the count unchanged, and a deal moved to another day moves
/// its count there.
pub async fn replace_deals_updates_aggregates(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    s.record_batch(&[
        deal(&b, "a1", at(10, 9, 30, 0), "000001.SZ", DealKind::MarketBuy, 10.0, 100),
        deal(&b, "a2", at(10, 10, 30, 0), "000001.SZ", DealKind::LimitBuy, 10.5, 200),
        deal(&b, "a3", at(11, 9, 30, 0), "000001.SZ", DealKind::MarketSell, 11.0, 300),
    ])
    .await
    .unwrap();
    let q = AggregateQuery { account: b.account.clone(), from: None, to: None, by: AggregateBy::Day };
    let n = s
        .replace_deals(&b, &[deal(&b, "a2", at(10, 10, 30, 0), "000001.SZ", DealKind::LimitBuy, 12.0, 500)])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let days = s.aggregate(&q).await.unwrap();
    assert_eq!(
        days.iter().map(|a| (a.period.as_str(), a.count)).collect::<Vec<_>>(),
        [("2025-10-10", 2), ("2025-10-11", 1)]
    );
    let d0 = &days[0];
    assert_eq!((d0.buy_count, d0.sell_count, d0.buy_volume), (2, 0, 600));
    assert!((d0.buy_amount - 7000.0).abs() < 1e-6, "{}", d0.buy_amount);
    let d1 = &days[1];
    assert_eq!((d1.sell_count, d1.sell_volume), (1, 300));
    assert!((d1.sell_amount - 3300.0).abs() < 1e-6, "{}", d1.sell_amount);
    // a1 moves to the next day and becomes a sell
    let n = s
        .replace_deals(&b, &[deal(&b, "a1", at(11, 14, 0, 0), "000001.SZ", DealKind::LimitSell, 11.5, 100)])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let days = s.aggregate(&q).await.unwrap();
    assert_eq!(
        days.iter().map(|a| (a.period.as_str(), a.count)).collect::<Vec<_>>(),
        [("2025-10-10", 1), ("2025-10-11", 2)]
    );
    assert_eq!((days[0].buy_count, days[0].buy_volume), (1, 500));
    assert!((days[0].buy_amount - 6000.0).abs() < 1e-6, "{}", days[0].buy_amount);
    assert_eq!((days[1].sell_count, days[1].sell_volume), (2, 400));
    assert!((days[1].sell_amount - 4450.0).abs() < 1e-6, "{}", days[1].sell_amount);
    let months = s.aggregate(&AggregateQuery { by: AggregateBy::Month, ..q }).await.unwrap();
    assert_eq!(months.iter().map(|a| (a.period.as_str(), a.count)).collect::<Vec<_>>(), [("2025-10", 3)]);
    s.delete_book(&b).await.unwrap();
}
