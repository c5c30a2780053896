//! Position conformance: the semantics of SilverQuant's cache helpers, made atomic.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use sqdata_core::validate::round3;
use sqdata_core::{Code, PositionEntry, PositionSnapshot, PositionStore, PriceTick};

use crate::{Fixture, code, fresh_book, random_u64, sibling_book};

fn store(fx: &Fixture) -> Arc<dyn PositionStore> {
    fx.positions.clone().expect("the fixture provides no position store")
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn tick(c: &str, high: f64, low: f64) -> PriceTick {
    PriceTick { code: code(c), high, low }
}

/// A book nobody wrote to reads as empty, not as an error.
pub async fn snapshot_of_unknown_book_is_empty(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    assert_eq!(s.snapshot(&b).await.unwrap(), PositionSnapshot::default());
    assert!(s.held_days(&b, &[code("000001.SZ")]).await.unwrap().is_empty());
}

/// Buy fill: day_count 0; buying more of a held code keeps its prices.
pub async fn new_held_sets_zero_and_keeps_prices(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let (a, c) = (code("000001.SZ"), code("600000.SH"));
    s.new_held(&b, &[a, c]).await.unwrap();
    let snap = s.snapshot(&b).await.unwrap();
    assert_eq!(snap.positions.len(), 2);
    assert_eq!(snap.positions[&a], PositionEntry { day_count: Some(0), max_price: None, min_price: None });
    s.inc_held_days(&b, day(2025, 10, 10)).await.unwrap();
    s.update_extremes(&b, &[tick("000001.SZ", 11.5, 10.5)]).await.unwrap();
    s.new_held(&b, &[a]).await.unwrap();
    let e = s.snapshot(&b).await.unwrap().positions[&a];
    assert_eq!(e, PositionEntry { day_count: Some(0), max_price: Some(11.5), min_price: Some(10.5) });
    s.delete_book(&b).await.unwrap();
}

/// Sell fill: day_count null and both price keys gone; selling an untracked
/// code (a reverse repo) records it as sold.
pub async fn mark_sold_drops_price_keys(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let a = code("000001.SZ");
    s.new_held(&b, &[a]).await.unwrap();
    s.inc_held_days(&b, day(2025, 10, 10)).await.unwrap();
    s.update_extremes(&b, &[tick("000001.SZ", 11.5, 10.5)]).await.unwrap();
    s.mark_sold(&b, a).await.unwrap();
    let snap = s.snapshot(&b).await.unwrap();
    assert_eq!(snap.positions[&a], PositionEntry::default());
    assert_eq!(s.held_days(&b, &[a]).await.unwrap(), BTreeMap::from([(a, None)]));
    let repo = code("204001.SH");
    s.mark_sold(&b, repo).await.unwrap();
    assert_eq!(s.snapshot(&b).await.unwrap().positions[&repo], PositionEntry::default());
    // a sold code is not updated by ticks
    assert!(s.update_extremes(&b, &[tick("000001.SZ", 99.0, 1.0)]).await.unwrap().is_empty());
    assert_eq!(s.snapshot(&b).await.unwrap().positions[&a], PositionEntry::default());
    s.delete_book(&b).await.unwrap();
}

/// Pre-market: broker codes not tracked are added with 0, tracked codes the
/// broker no longer holds are dropped with their prices, the rest is kept.
pub async fn reconcile_adds_and_drops(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let (a, c, d, e) = (code("000001.SZ"), code("600000.SH"), code("300750.SZ"), code("430047.BJ"));
    s.new_held(&b, &[a, c]).await.unwrap();
    s.mark_sold(&b, d).await.unwrap();
    s.inc_held_days(&b, day(2025, 10, 10)).await.unwrap();
    s.update_extremes(&b, &[tick("000001.SZ", 12.0, 11.0), tick("600000.SH", 8.0, 7.5)]).await.unwrap();
    let report = s.reconcile(&b, &[a, e]).await.unwrap();
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(report.added, vec![e]);
    assert_eq!(
        removed,
        vec![d, c].into_iter().collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>()
    );
    let snap = s.snapshot(&b).await.unwrap();
    assert_eq!(snap.positions.keys().copied().collect::<Vec<_>>(), vec![a, e]);
    assert_eq!(snap.positions[&a], PositionEntry { day_count: Some(1), max_price: Some(12.0), min_price: Some(11.0) });
    assert_eq!(snap.positions[&e], PositionEntry { day_count: Some(0), max_price: None, min_price: None });
    assert_eq!(snap.inc_date, Some(day(2025, 10, 10)));
    // reconciling again changes nothing
    let again = s.reconcile(&b, &[a, e]).await.unwrap();
    assert!(again.added.is_empty() && again.removed.is_empty());
    s.delete_book(&b).await.unwrap();
}

/// +1 once per day; a second call the same day (or an earlier day) is a
/// no-op returning false; sold codes stay null.
pub async fn inc_held_days_is_idempotent_per_day_and_skips_sold(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let (a, c, d) = (code("000001.SZ"), code("600000.SH"), code("300750.SZ"));
    s.new_held(&b, &[a, c, d]).await.unwrap();
    s.mark_sold(&b, d).await.unwrap();
    assert!(s.inc_held_days(&b, day(2025, 10, 9)).await.unwrap());
    assert!(!s.inc_held_days(&b, day(2025, 10, 9)).await.unwrap());
    assert!(s.inc_held_days(&b, day(2025, 10, 10)).await.unwrap());
    assert!(!s.inc_held_days(&b, day(2025, 10, 10)).await.unwrap());
    assert!(!s.inc_held_days(&b, day(2025, 10, 8)).await.unwrap(), "an earlier day must not count again");
    let snap = s.snapshot(&b).await.unwrap();
    assert_eq!(snap.inc_date, Some(day(2025, 10, 10)));
    assert_eq!(snap.positions[&a].day_count, Some(2));
    assert_eq!(snap.positions[&c].day_count, Some(2));
    assert_eq!(snap.positions[&d].day_count, None);
    // an empty book still records the date
    let e = fresh_book();
    assert!(s.inc_held_days(&e, day(2025, 10, 10)).await.unwrap());
    assert!(!s.inc_held_days(&e, day(2025, 10, 10)).await.unwrap());
    s.delete_book(&b).await.unwrap();
    s.delete_book(&e).await.unwrap();
}

/// Prices are rounded to 3 decimals like `round(x, 3)`; max only rises, min
/// only falls; the returned changes say exactly what moved.
pub async fn update_extremes_rounds_and_only_widens(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let (a, c) = (code("000001.SZ"), code("600000.SH"));
    s.new_held(&b, &[a, c]).await.unwrap();
    let ch =
        s.update_extremes(&b, &[tick("000001.SZ", 11.23456, 10.98765), tick("600000.SH", 8.0, 7.5)]).await.unwrap();
    assert_eq!(ch.len(), 2);
    let snap = s.snapshot(&b).await.unwrap();
    assert_eq!(snap.positions[&a].max_price, Some(11.235));
    assert_eq!(snap.positions[&a].min_price, Some(10.988));
    // narrower range: nothing changes, nothing returned
    assert!(s.update_extremes(&b, &[tick("000001.SZ", 11.1, 11.0)]).await.unwrap().is_empty());
    // only the max moves
    let ch = s.update_extremes(&b, &[tick("000001.SZ", 11.5, 11.0), tick("600000.SH", 8.0, 7.5)]).await.unwrap();
    assert_eq!(ch.len(), 1);
    assert_eq!((ch[0].code, ch[0].max_price, ch[0].min_price), (a, Some(11.5), None));
    // a rise smaller than the rounding is no change
    assert!(s.update_extremes(&b, &[tick("000001.SZ", 11.5004, 11.0)]).await.unwrap().is_empty());
    let snap = s.snapshot(&b).await.unwrap();
    assert_eq!(
        snap.positions[&a],
        PositionEntry { day_count: Some(0), max_price: Some(11.5), min_price: Some(10.988) }
    );
    assert_eq!(snap.positions[&c], PositionEntry { day_count: Some(0), max_price: Some(8.0), min_price: Some(7.5) });
    s.delete_book(&b).await.unwrap();
}

/// Ticks for codes that are not positions do not create state.
pub async fn update_extremes_skips_codes_not_held(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    s.new_held(&b, &[code("000001.SZ")]).await.unwrap();
    let ch = s.update_extremes(&b, &[tick("600000.SH", 9.0, 8.0)]).await.unwrap();
    assert!(ch.is_empty());
    let snap = s.snapshot(&b).await.unwrap();
    assert_eq!(snap.positions.len(), 1);
    assert!(!snap.positions.contains_key(&code("600000.SH")));
    s.delete_book(&b).await.unwrap();
}

/// Eight writers update the same codes at once: the final max is the
/// maximum of every high sent, the final min the minimum of every low.
pub async fn update_extremes_with_eight_concurrent_writers_loses_nothing(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let codes: Vec<Code> = ["000001.SZ", "600000.SH", "300750.SZ", "430047.BJ", "002594.SZ"].map(code).to_vec();
    s.new_held(&b, &codes).await.unwrap();
    let writers = 8;
    let rounds = 12;
    let mut plans: Vec<Vec<Vec<PriceTick>>> = Vec::new();
    for _ in 0..writers {
        let mut rounds_v = Vec::new();
        for _ in 0..rounds {
            let ticks = codes
                .iter()
                .map(|c| {
                    let r = random_u64();
                    let low = 5.0 + (r % 5000) as f64 / 1000.0;
                    let high = low + ((r >> 20) % 5000) as f64 / 1000.0;
                    PriceTick { code: *c, high, low }
                })
                .collect::<Vec<_>>();
            rounds_v.push(ticks);
        }
        plans.push(rounds_v);
    }
    let mut want_max: BTreeMap<Code, f64> = BTreeMap::new();
    let mut want_min: BTreeMap<Code, f64> = BTreeMap::new();
    for t in plans.iter().flatten().flatten() {
        let hi = want_max.entry(t.code).or_insert(f64::MIN);
        *hi = hi.max(round3(t.high));
        let lo = want_min.entry(t.code).or_insert(f64::MAX);
        *lo = lo.min(round3(t.low));
    }
    let mut handles = Vec::new();
    for plan in plans {
        let s = s.clone();
        let b = b.clone();
        handles.push(tokio::spawn(async move {
            for ticks in plan {
                s.update_extremes(&b, &ticks).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let snap = s.snapshot(&b).await.unwrap();
    for c in &codes {
        let e = snap.positions[c];
        assert_eq!(e.max_price, Some(want_max[c]), "lost maximum for {c}");
        assert_eq!(e.min_price, Some(want_min[c]), "lost minimum for {c}");
        assert_eq!(e.day_count, Some(0));
    }
    s.delete_book(&b).await.unwrap();
}

/// Buys, sells and ticks from many tasks at once: every acknowledged write is there.
pub async fn mixed_concurrent_writers_keep_every_write(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let buy: Vec<Code> = (0..8).map(|i| code(&format!("60{i:04}.SH"))).collect();
    let sell: Vec<Code> = (0..8).map(|i| code(&format!("00{i:04}.SZ"))).collect();
    s.new_held(&b, &sell).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..8 {
        let (s, b, bc, sc) = (s.clone(), b.clone(), buy[i], sell[i]);
        handles.push(tokio::spawn(async move {
            s.new_held(&b, &[bc]).await.unwrap();
            s.update_extremes(&b, &[PriceTick { code: sc, high: 10.0 + i as f64, low: 5.0 }]).await.unwrap();
            s.mark_sold(&b, sc).await.unwrap();
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let snap = s.snapshot(&b).await.unwrap();
    for c in &buy {
        assert_eq!(snap.positions[c].day_count, Some(0), "lost buy of {c}");
    }
    for c in &sell {
        assert_eq!(snap.positions[c], PositionEntry::default(), "lost sell of {c}");
    }
    s.delete_book(&b).await.unwrap();
}

/// held_days answers only for tracked codes; sold codes map to None.
pub async fn held_days_batch(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let (a, c, d) = (code("000001.SZ"), code("600000.SH"), code("300750.SZ"));
    s.new_held(&b, &[a, c]).await.unwrap();
    s.mark_sold(&b, c).await.unwrap();
    s.inc_held_days(&b, day(2025, 10, 10)).await.unwrap();
    let h = s.held_days(&b, &[a, c, d]).await.unwrap();
    assert_eq!(h, BTreeMap::from([(a, Some(1)), (c, None)]));
    s.delete_book(&b).await.unwrap();
}

/// Two books of one account, and the same book name in two accounts, never
/// see each other's state.
pub async fn books_are_isolated(fx: &Fixture) {
    let s = store(fx);
    let b1 = fresh_book();
    let b2 = sibling_book(&b1);
    let b3 = sqdata_core::BookId::new(format!("{}x", b1.account), b1.book.as_str()).unwrap();
    let a = code("000001.SZ");
    s.new_held(&b1, &[a]).await.unwrap();
    s.inc_held_days(&b1, day(2025, 10, 10)).await.unwrap();
    assert_eq!(s.snapshot(&b2).await.unwrap(), PositionSnapshot::default());
    assert_eq!(s.snapshot(&b3).await.unwrap(), PositionSnapshot::default());
    s.new_held(&b2, &[code("600000.SH")]).await.unwrap();
    assert!(s.inc_held_days(&b2, day(2025, 10, 10)).await.unwrap(), "inc_date is per book");
    assert_eq!(s.snapshot(&b1).await.unwrap().positions.len(), 1);
    assert_eq!(s.snapshot(&b1).await.unwrap().positions[&a].day_count, Some(1));
    for b in [&b1, &b2, &b3] {
        s.delete_book(b).await.unwrap();
    }
}

/// NaN, infinite or negative prices, high below low, a code twice in one
/// update, an impossible date: a clear error naming the field, and the
/// stored state is unchanged.
pub async fn bad_input_is_rejected_without_changing_state(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let a = code("000001.SZ");
    s.new_held(&b, &[a]).await.unwrap();
    s.update_extremes(&b, &[tick("000001.SZ", 11.0, 10.0)]).await.unwrap();
    let before = s.snapshot(&b).await.unwrap();
    let cases: Vec<(Vec<PriceTick>, &str)> = vec![
        (vec![tick("000001.SZ", f64::NAN, 10.0)], "high"),
        (vec![tick("000001.SZ", f64::INFINITY, 10.0)], "high"),
        (vec![tick("000001.SZ", 12.0, -1.0)], "low"),
        (vec![tick("000001.SZ", 9.0, 10.0)], "high"),
        (vec![tick("000001.SZ", 12.0, 9.0), tick("000001.SZ", 13.0, 9.0)], "code"),
        // one bad tick poisons the whole batch: the good one is not applied
        (vec![tick("000001.SZ", 50.0, 1.0), tick("600000.SH", f64::NAN, 1.0)], "high"),
    ];
    for (ticks, field) in cases {
        let e = s.update_extremes(&b, &ticks).await.unwrap_err();
        assert!(e.is_invalid_input(), "{e:?}");
        assert!(e.to_string().contains(field), "{field}: {e}");
    }
    let e = s.inc_held_days(&b, day(1800, 1, 1)).await.unwrap_err();
    assert!(e.to_string().contains("today"), "{e}");
    let mut bad = before.clone();
    bad.positions.get_mut(&a).unwrap().max_price = Some(f64::NAN);
    assert!(s.replace_book(&b, &bad).await.unwrap_err().is_invalid_input());
    assert_eq!(s.snapshot(&b).await.unwrap(), before);
    s.delete_book(&b).await.unwrap();
}

/// replace_book writes a whole book; delete_book removes it; list_books sees both.
pub async fn replace_delete_and_list_books(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let mut snap = PositionSnapshot { inc_date: Some(day(2025, 10, 10)), ..Default::default() };
    snap.positions
        .insert(code("000001.SZ"), PositionEntry { day_count: Some(3), max_price: Some(11.23), min_price: Some(9.8) });
    snap.positions.insert(code("600000.SH"), PositionEntry { day_count: None, max_price: None, min_price: None });
    snap.positions
        .insert(code("430047.BJ"), PositionEntry { day_count: Some(0), max_price: Some(20.5), min_price: None });
    s.replace_book(&b, &snap).await.unwrap();
    assert_eq!(s.snapshot(&b).await.unwrap(), snap);
    assert!(s.list_books().await.unwrap().contains(&b));
    let mut smaller = snap.clone();
    smaller.positions.remove(&code("600000.SH"));
    s.replace_book(&b, &smaller).await.unwrap();
    assert_eq!(s.snapshot(&b).await.unwrap(), smaller);
    s.delete_book(&b).await.unwrap();
    assert_eq!(s.snapshot(&b).await.unwrap(), PositionSnapshot::default());
    assert!(!s.list_books().await.unwrap().contains(&b));
}

/// SilverQuant's `del_held_day`: day_count null, the max/min prices kept
/// (unlike `mark_sold`, which drops them); the code is no longer held, so
/// ticks leave its prices alone, and the other codes are untouched.
pub async fn del_held_days_keeps_prices(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let (a, c, d) = (code("000001.SZ"), code("600000.SH"), code("300750.SZ"));
    s.new_held(&b, &[a, c, d]).await.unwrap();
    s.inc_held_days(&b, day(2025, 10, 10)).await.unwrap();
    s.update_extremes(
        &b,
        &[tick("000001.SZ", 11.5, 10.5), tick("600000.SH", 8.0, 7.5), tick("300750.SZ", 250.0, 240.0)],
    )
    .await
    .unwrap();
    s.del_held_days(&b, &[a, c]).await.unwrap();
    let snap = s.snapshot(&b).await.unwrap();
    assert_eq!(snap.positions[&a], PositionEntry { day_count: None, max_price: Some(11.5), min_price: Some(10.5) });
    assert_eq!(snap.positions[&c], PositionEntry { day_count: None, max_price: Some(8.0), min_price: Some(7.5) });
    assert_eq!(
        snap.positions[&d],
        PositionEntry { day_count: Some(1), max_price: Some(250.0), min_price: Some(240.0) }
    );
    assert_eq!(snap.inc_date, Some(day(2025, 10, 10)));
    assert_eq!(s.held_days(&b, &[a, c, d]).await.unwrap(), BTreeMap::from([(a, None), (c, None), (d, Some(1))]));
    // no longer held: a wider tick moves nothing
    assert!(s.update_extremes(&b, &[tick("000001.SZ", 99.0, 1.0)]).await.unwrap().is_empty());
    assert_eq!(s.snapshot(&b).await.unwrap().positions[&a].max_price, Some(11.5));
    // contrast: mark_sold drops the prices
    s.mark_sold(&b, c).await.unwrap();
    assert_eq!(s.snapshot(&b).await.unwrap().positions[&c], PositionEntry::default());
    s.delete_book(&b).await.unwrap();
}

/// A code not tracked is added with day_count null and no prices; held_days
/// reports it as None; inc_held_days skips it afterwards. An empty list
/// changes nothing.
pub async fn del_held_days_adds_untracked_codes(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let (a, x) = (code("000001.SZ"), code("204001.SH"));
    s.del_held_days(&b, &[]).await.unwrap();
    assert_eq!(s.snapshot(&b).await.unwrap(), PositionSnapshot::default());
    assert!(!s.list_books().await.unwrap().contains(&b), "an empty call creates no book");
    s.new_held(&b, &[a]).await.unwrap();
    s.del_held_days(&b, &[x]).await.unwrap();
    let snap = s.snapshot(&b).await.unwrap();
    assert_eq!(snap.positions.keys().copied().collect::<Vec<_>>(), vec![a, x]);
    assert_eq!(snap.positions[&x], PositionEntry::default());
    assert_eq!(snap.positions[&a], PositionEntry { day_count: Some(0), max_price: None, min_price: None });
    assert_eq!(s.held_days(&b, &[x]).await.unwrap(), BTreeMap::from([(x, None)]));
    assert!(s.inc_held_days(&b, day(2025, 10, 10)).await.unwrap());
    assert!(s.inc_held_days(&b, day(2025, 10, 13)).await.unwrap());
    assert_eq!(s.held_days(&b, &[a, x]).await.unwrap(), BTreeMap::from([(a, Some(2)), (x, None)]));
    assert_eq!(s.snapshot(&b).await.unwrap().positions[&x], PositionEntry::default());
    assert!(s.list_books().await.unwrap().contains(&b));
    s.delete_book(&b).await.unwrap();
}

/// Twice is the same as once, and a code listed twice in one call is the
/// same as listed once.
pub async fn del_held_days_is_idempotent(fx: &Fixture) {
    let s = store(fx);
    let b = fresh_book();
    let (a, c, x) = (code("000001.SZ"), code("600000.SH"), code("430047.BJ"));
    s.new_held(&b, &[a, c]).await.unwrap();
    s.inc_held_days(&b, day(2025, 10, 10)).await.unwrap();
    s.update_extremes(&b, &[tick("000001.SZ", 11.5, 10.5)]).await.unwrap();
    s.del_held_days(&b, &[a, x]).await.unwrap();
    let once = s.snapshot(&b).await.unwrap();
    s.del_held_days(&b, &[a, x]).await.unwrap();
    assert_eq!(s.snapshot(&b).await.unwrap(), once);
    s.del_held_days(&b, &[x, a, a, x]).await.unwrap();
    assert_eq!(s.snapshot(&b).await.unwrap(), once);
    assert_eq!(once.positions.len(), 3);
    assert_eq!(once.positions[&a], PositionEntry { day_count: None, max_price: Some(11.5), min_price: Some(10.5) });
    assert_eq!(once.positions[&c], PositionEntry { day_count: Some(1), max_price: None, min_price: None });
    assert_eq!(once.positions[&x], PositionEntry::default());
    s.delete_book(&b).await.unwrap();
}

/// del_held_days touches only its book: a sibling book and the same book
/// name in another account, holding the same codes, keep their state.
pub async fn del_held_days_leaves_other_books_alone(fx: &Fixture) {
    let s = store(fx);
    let b1 = fresh_book();
    let b2 = sibling_book(&b1);
    let b3 = sqdata_core::BookId::new(format!("{}x", b1.account), b1.book.as_str()).unwrap();
    let (a, c) = (code("000001.SZ"), code("600000.SH"));
    for b in [&b1, &b2, &b3] {
        s.new_held(b, &[a, c]).await.unwrap();
        s.inc_held_days(b, day(2025, 10, 10)).await.unwrap();
        s.update_extremes(b, &[tick("000001.SZ", 11.5, 10.5)]).await.unwrap();
    }
    let before2 = s.snapshot(&b2).await.unwrap();
    let before3 = s.snapshot(&b3).await.unwrap();
    s.del_held_days(&b1, &[a, c, code("300750.SZ")]).await.unwrap();
    assert_eq!(s.snapshot(&b1).await.unwrap().positions.len(), 3);
    assert_eq!(s.snapshot(&b2).await.unwrap(), before2);
    assert_eq!(s.snapshot(&b3).await.unwrap(), before3);
    for b in [&b1, &b2, &b3] {
        s.delete_book(b).await.unwrap();
    }
}
