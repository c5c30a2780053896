//! Realistic sample data (feature `sample`) for `sqdata bench` and the
//! tests alike: a book of held positions, a year of deals, an equity curve,
//! random codes. Data generation, not test code: the benchmark in the
//! shipped binary uses it, the testkit re-exports it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use crate::{AssetRow, BookId, Code, Deal, DealKind, Market, PositionEntry, PositionSnapshot, Result, Stores};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A random number (no RNG dependency: std's randomly seeded hasher).
pub fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    std::collections::hash_map::RandomState::new().hash_one((
        t,
        SEQ.fetch_add(1, Ordering::Relaxed),
        std::process::id(),
    ))
}

/// `n` distinct random codes (random digits, so concurrent runs on a shared
/// server do not collide on bar series).
pub fn fresh_codes(n: usize) -> Vec<Code> {
    let mut out: Vec<Code> = Vec::with_capacity(n);
    while out.len() < n {
        let r = random_u64();
        let market = [Market::SH, Market::SZ, Market::BJ][(r % 3) as usize];
        let Ok(c) = Code::new(&format!("{:06}", (r >> 8) % 1_000_000), market) else { continue };
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

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
    s.assets.upsert_assets(book, assets).await?;
    Ok(())
}
