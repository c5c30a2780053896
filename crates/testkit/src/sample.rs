//! Realistic sample data for the tests and benchmarks of verify, migrate and
//! rollback: a book of held positions, a year of deals, an equity curve.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use sqdata_core::{AssetRow, BookId, Code, Deal, DealKind, PositionEntry, PositionSnapshot, Result, Stores};

/// The trading days (weekdays) of the `n` days from `from`.
pub fn weekdays(from: NaiveDate, n: usize) -> Vec<NaiveDate> {
    (0..)
        .map(|i| from + Duration::days(i))
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .take(n)
        .collect()
}

/// A snapshot of `codes` with held days and trailing-stop prices.
pub fn positions(codes: &[Code], inc: NaiveDate) -> PositionSnapshot {
    let mut positions = BTreeMap::new();
    for (i, c) in codes.iter().enumerate() {
        let base = (20 + i % 90) as f64 / 4.0;
        positions.insert(
            *c,
            PositionEntry {
                day_count: Some((i % 30) as u32),
                max_price: Some(((base * 1.12) * 100.0).round() / 100.0),
                min_price: Some(((base * 0.93) * 100.0).round() / 100.0),
            },
        );
    }
    PositionSnapshot { inc_date: Some(inc), positions }
}

/// `per_day` deals on each of `days`, ids `<prefix>-<day>-<i>`.
pub fn deals(book: &BookId, codes: &[Code], days: &[NaiveDate], per_day: usize, prefix: &str) -> Vec<Deal> {
    let mut out = Vec::with_capacity(days.len() * per_day);
    for d in days {
        for i in 0..per_day {
            let code = codes[(i + d.ordinal() as usize) % codes.len()];
            let price = (500 + (d.ordinal() as usize * 7 + i * 13) % 3000) as f64 / 100.0;
            let volume = 100 * (1 + (i as u64 % 20));
            out.push(Deal {
                id: format!("{prefix}-{}-{i}", d.format("%Y%m%d")),
                book: book.clone(),
                time: d.and_hms_opt(9 + (i % 5) as u32, (i * 7 % 60) as u32, (i % 60) as u32).unwrap_or_default(),
                code,
                name: "平安银行".into(),
                kind: if i % 2 == 0 { DealKind::LimitBuy } else { DealKind::LimitSell },
                remark: String::new(),
                price,
                volume,
                amount: ((price * volume as f64) * 100.0).round() / 100.0,
                strategy: "sample".into(),
            });
        }
    }
    out
}

/// One equity row per day.
pub fn assets(days: &[NaiveDate]) -> Vec<AssetRow> {
    days.iter()
        .enumerate()
        .map(|(i, d)| AssetRow { date: *d, asset: (100_000_000 + i as i64 * 123_450) as f64 / 100.0 })
        .collect()
}

/// Writes a book: positions, deals in batches, equity rows.
pub async fn seed_book(
    s: &Stores,
    book: &BookId,
    snapshot: &PositionSnapshot,
    deals: &[Deal],
    assets: &[AssetRow],
) -> Result<()> {
    s.positions.replace_book(book, snapshot).await?;
    for chunk in deals.chunks(5000) {
        s.deals.record_batch(chunk).await?;
    }
    for r in assets {
        s.assets.upsert_asset(book, *r).await?;
    }
    Ok(())
}
