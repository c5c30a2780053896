//! Bar conformance: series replace, upsert, batch loads, overview.

use std::sync::Arc;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use sqdata_core::{Adjust, Bar, BarKey, BarSeries, BarStore, BarWriteMode, Period, TimeRange};

use crate::{Fixture, fresh_codes, random_u64};

fn store(fx: &Fixture) -> Arc<dyn BarStore> {
    fx.bars.clone().expect("the fixture provides no bar store")
}

/// `n` consecutive daily bars from 2023-06-01 with prices of 2 decimals.
pub fn daily_bars(n: usize) -> Vec<Bar> {
    let start = NaiveDate::from_ymd_opt(2023, 6, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let seed = random_u64();
    (0..n)
        .map(|i| {
            // prices are decimals (cents), as an exchange quotes them
            let cents = 1000 + ((seed >> (i % 32)) % 500) as i64;
            let p = |c: i64| c as f64 / 100.0;
            Bar {
                datetime: start + Duration::days(i as i64),
                open: p(cents),
                high: p(cents + 37),
                low: p(cents - 21),
                close: p(cents + 5),
                volume: 100_000 + i as u64 * 37,
                amount: 1_234_567.5 + i as f64,
            }
        })
        .collect()
}

fn key(period: Period) -> BarKey {
    BarKey::new(fresh_codes(1)[0], period, Adjust::Qfq)
}

async fn cleanup(s: &dyn BarStore, k: &BarKey) {
    s.delete_bars(k, TimeRange::all()).await.unwrap();
}

/// 550 daily bars (SilverQuant's history) round-trip exactly; ranges are inclusive.
pub async fn save_and_load_550_daily_bars(fx: &Fixture) {
    let s = store(fx);
    let k = key(Period::Day1);
    let bars = daily_bars(550);
    assert_eq!(s.save_bars(&BarSeries { key: k, bars: bars.clone() }, BarWriteMode::Replace).await.unwrap(), 550);
    assert_eq!(s.load_bars(&k, TimeRange::all()).await.unwrap(), bars);
    let r = TimeRange { from: Some(bars[10].datetime), to: Some(bars[19].datetime) };
    assert_eq!(s.load_bars(&k, r).await.unwrap(), bars[10..20].to_vec());
    // other adjustments and periods of the same code are other series
    assert!(s.load_bars(&BarKey { adjust: Adjust::None, ..k }, TimeRange::all()).await.unwrap().is_empty());
    assert!(s.load_bars(&BarKey { period: Period::Week1, ..k }, TimeRange::all()).await.unwrap().is_empty());
    cleanup(&*s, &k).await;
}

/// An ex-rights re-download replaces the whole series.
pub async fn saving_again_replaces_the_series(fx: &Fixture) {
    let s = store(fx);
    let k = key(Period::Day1);
    let old = daily_bars(100);
    s.save_bars(&BarSeries { key: k, bars: old.clone() }, BarWriteMode::Replace).await.unwrap();
    s.save_bars(&BarSeries { key: k, bars: old.clone() }, BarWriteMode::Replace).await.unwrap();
    assert_eq!(s.load_bars(&k, TimeRange::all()).await.unwrap().len(), 100, "no duplicates");
    let new: Vec<Bar> =
        old[30..].iter().map(|b| Bar { close: ((b.close * 0.9) * 100.0).round() / 100.0, ..*b }).collect();
    s.save_bars(&BarSeries { key: k, bars: new.clone() }, BarWriteMode::Replace).await.unwrap();
    assert_eq!(s.load_bars(&k, TimeRange::all()).await.unwrap(), new);
    cleanup(&*s, &k).await;
}

/// Upsert replaces bars at the same time and keeps the others.
pub async fn upsert_merges_by_time(fx: &Fixture) {
    let s = store(fx);
    let k = key(Period::Day1);
    let bars = daily_bars(20);
    s.save_bars(&BarSeries { key: k, bars: bars[..15].to_vec() }, BarWriteMode::Replace).await.unwrap();
    let mut patch: Vec<Bar> = bars[10..].to_vec();
    patch[0].close = 99.99;
    s.save_bars(&BarSeries { key: k, bars: patch.clone() }, BarWriteMode::Upsert).await.unwrap();
    let mut want = bars[..10].to_vec();
    want.extend(patch);
    assert_eq!(s.load_bars(&k, TimeRange::all()).await.unwrap(), want);
    cleanup(&*s, &k).await;
}

/// One call for many series: one answer per key, in order, empty where none.
pub async fn batch_load_keeps_order_and_reports_empty(fx: &Fixture) {
    let s = store(fx);
    let codes = fresh_codes(6);
    let keys: Vec<BarKey> = codes.iter().map(|c| BarKey::new(*c, Period::Day1, Adjust::Qfq)).collect();
    for (i, k) in keys.iter().enumerate().take(5) {
        s.save_bars(&BarSeries { key: *k, bars: daily_bars(10 + i) }, BarWriteMode::Replace).await.unwrap();
    }
    let mut ask = keys.clone();
    ask.reverse();
    let got = s.load_bars_batch(&ask, TimeRange::all()).await.unwrap();
    assert_eq!(got.iter().map(|x| x.key).collect::<Vec<_>>(), ask);
    assert!(got[0].bars.is_empty());
    assert_eq!(got.iter().map(|x| x.bars.len()).collect::<Vec<_>>(), [0, 14, 13, 12, 11, 10]);
    let first = got[1].bars[0].datetime;
    let r = TimeRange { from: Some(first + Duration::days(5)), to: None };
    let cut = s.load_bars_batch(&ask, r).await.unwrap();
    assert_eq!(cut.iter().map(|x| x.bars.len()).collect::<Vec<_>>(), [0, 9, 8, 7, 6, 5]);
    for k in &keys {
        cleanup(&*s, k).await;
    }
}

/// Count, first and last per series, kept up to date by saves and deletes.
pub async fn overview_counts(fx: &Fixture) {
    let s = store(fx);
    let k1 = key(Period::Day1);
    let k2 = BarKey { period: Period::Min5, ..k1 };
    let d = daily_bars(30);
    s.save_bars(&BarSeries { key: k1, bars: d.clone() }, BarWriteMode::Replace).await.unwrap();
    s.save_bars(&BarSeries { key: k2, bars: d[..7].to_vec() }, BarWriteMode::Replace).await.unwrap();
    let ov = s.overview().await.unwrap();
    let o1 = ov.iter().find(|o| o.key == k1).expect("series in overview");
    assert_eq!((o1.count, o1.first, o1.last), (30, d[0].datetime, d[29].datetime));
    let o2 = ov.iter().find(|o| o.key == k2).expect("series in overview");
    assert_eq!((o2.count, o2.first, o2.last), (7, d[0].datetime, d[6].datetime));
    s.delete_bars(&k1, TimeRange { from: Some(d[25].datetime), to: None }).await.unwrap();
    let ov = s.overview().await.unwrap();
    let o1 = ov.iter().find(|o| o.key == k1).unwrap();
    assert_eq!((o1.count, o1.last), (25, d[24].datetime));
    cleanup(&*s, &k1).await;
    cleanup(&*s, &k2).await;
    let ov = s.overview().await.unwrap();
    assert!(!ov.iter().any(|o| o.key == k1 || o.key == k2), "deleted series leave the overview");
}

/// Deleting a range removes exactly it and says how many.
pub async fn delete_range(fx: &Fixture) {
    let s = store(fx);
    let k = key(Period::Day1);
    let d = daily_bars(50);
    s.save_bars(&BarSeries { key: k, bars: d.clone() }, BarWriteMode::Replace).await.unwrap();
    let n = s.delete_bars(&k, TimeRange { from: Some(d[10].datetime), to: Some(d[19].datetime) }).await.unwrap();
    assert_eq!(n, 10);
    let mut want = d[..10].to_vec();
    want.extend_from_slice(&d[20..]);
    assert_eq!(s.load_bars(&k, TimeRange::all()).await.unwrap(), want);
    assert_eq!(s.delete_bars(&BarKey { adjust: Adjust::Hfq, ..k }, TimeRange::all()).await.unwrap(), 0);
    cleanup(&*s, &k).await;
}

/// One-minute bars keep their times to the minute.
pub async fn minute_bars_roundtrip(fx: &Fixture) {
    let s = store(fx);
    let k = key(Period::Min1);
    let open: NaiveDateTime = NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(9, 31, 0).unwrap();
    // prices are decimals (cents), as an exchange quotes them
    let bars: Vec<Bar> = (0..240)
        .map(|i| {
            let c = 2000 + (i % 17);
            let p = |c: i64| c as f64 / 100.0;
            Bar {
                datetime: open + Duration::minutes(i),
                open: p(c),
                high: p(c + 2),
                low: p(c - 1),
                close: p(c),
                volume: 1000 + i as u64,
                amount: c as f64 * 10.0,
            }
        })
        .collect();
    s.save_bars(&BarSeries { key: k, bars: bars.clone() }, BarWriteMode::Replace).await.unwrap();
    assert_eq!(s.load_bars(&k, TimeRange::all()).await.unwrap(), bars);
    let r = TimeRange { from: Some(open + Duration::minutes(60)), to: Some(open + Duration::minutes(61)) };
    assert_eq!(s.load_bars(&k, r).await.unwrap(), bars[60..62].to_vec());
    cleanup(&*s, &k).await;
}

/// high < low, NaN, unsorted or duplicate times: an error naming the field,
/// and the stored series is untouched.
pub async fn bad_series_are_rejected_without_change(fx: &Fixture) {
    let s = store(fx);
    let k = key(Period::Day1);
    let good = daily_bars(10);
    s.save_bars(&BarSeries { key: k, bars: good.clone() }, BarWriteMode::Replace).await.unwrap();
    let mut cases: Vec<(Vec<Bar>, &str)> = Vec::new();
    let mut b = good.clone();
    b[3].high = b[3].low - 1.0;
    cases.push((b, "high"));
    let mut b = good.clone();
    b[4].close = f64::NAN;
    cases.push((b, "close"));
    let mut b = good.clone();
    b[5].open = -0.01;
    cases.push((b, "open"));
    let mut b = good.clone();
    b.swap(1, 2);
    cases.push((b, "datetime"));
    let mut b = good.clone();
    b[2].datetime = b[1].datetime;
    cases.push((b, "datetime"));
    for (bars, field) in cases {
        for mode in [BarWriteMode::Replace, BarWriteMode::Upsert] {
            let e = s.save_bars(&BarSeries { key: k, bars: bars.clone() }, mode).await.unwrap_err();
            assert!(e.is_invalid_input() && e.to_string().contains(field), "{field}: {e}");
        }
    }
    assert_eq!(s.load_bars(&k, TimeRange::all()).await.unwrap(), good);
    let e = s.load_bars(&k, TimeRange { from: Some(good[5].datetime), to: Some(good[1].datetime) }).await.unwrap_err();
    assert!(e.is_invalid_input());
    cleanup(&*s, &k).await;
}

/// A batch of series (a whole market's import): every series written and
/// read back exactly, upsert per series; a bad series or a key given twice
/// anywhere in the batch is an error naming it, and nothing of that batch is
/// stored.
pub async fn batch_save_is_all_or_nothing_when_invalid(fx: &Fixture) {
    let s = store(fx);
    let codes = fresh_codes(4);
    let keys: Vec<BarKey> = codes.iter().map(|c| BarKey::new(*c, Period::Day1, Adjust::Qfq)).collect();
    let series: Vec<BarSeries> =
        keys.iter().enumerate().map(|(i, k)| BarSeries { key: *k, bars: daily_bars(20 + i * 7) }).collect();
    let n = series.iter().map(|x| x.bars.len() as u64).sum::<u64>();
    assert_eq!(s.save_bars_batch(&series, BarWriteMode::Replace).await.unwrap(), n);
    let back = s.load_bars_batch(&keys, TimeRange::all()).await.unwrap();
    assert_eq!(back, series);

    // upsert: new bars after the stored ones are added, the rest kept
    let mut later = daily_bars(60);
    later.drain(..50);
    let up: Vec<BarSeries> = keys[..2].iter().map(|k| BarSeries { key: *k, bars: later.clone() }).collect();
    assert_eq!(s.save_bars_batch(&up, BarWriteMode::Upsert).await.unwrap(), 20);
    let got = s.load_bars(&keys[0], TimeRange::all()).await.unwrap();
    assert_eq!(got.len(), 30);
    assert_eq!(got[..20], series[0].bars[..]);

    // invalid: nothing of the batch lands, the error names what is wrong
    let fresh = BarSeries { key: keys[3], bars: daily_bars(5) };
    let mut bad = BarSeries { key: keys[2], bars: daily_bars(5) };
    bad.bars[3].low = f64::NAN;
    let twice = BarSeries { key: keys[3], bars: daily_bars(3) };
    for (batch, needle) in [(vec![fresh.clone(), bad.clone()], "low"), (vec![fresh.clone(), twice], "series[1].key")] {
        for mode in [BarWriteMode::Replace, BarWriteMode::Upsert] {
            let e = s.save_bars_batch(&batch, mode).await.unwrap_err();
            assert!(e.is_invalid_input() && e.to_string().contains(needle), "{needle}: {e}");
        }
    }
    assert_eq!(s.load_bars(&keys[3], TimeRange::all()).await.unwrap(), series[3].bars);
    assert_eq!(s.save_bars_batch(&[], BarWriteMode::Replace).await.unwrap(), 0);
    for k in &keys {
        cleanup(&*s, k).await;
    }
}
