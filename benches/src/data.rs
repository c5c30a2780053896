//! Deterministic benchmark data: a 200-position book, 100k deals, and a
//! whole market of K-lines (5,000 codes × 550 days) as SilverQuant's CSV
//! folder and in the file backend's own storage.

use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use sqdata::file::{FileConfig, FileStore, kline};
use sqdata::{
    Adjust, Bar, BarKey, BarSeries, BarStore, BarWriteMode, BookId, Code, Deal, DealKind, DealStore, Market, Period,
    PositionEntry, PositionSnapshot, PositionStore, Result,
};

/// Bump when the generated data changes shape, so old data is rebuilt.
const DATA_VERSION: &str = "sqdata-bench-data v1";

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` distinct realistic codes (SZ main board, ChiNext, SH main board, STAR).
pub fn market_codes(n: usize) -> Vec<Code> {
    let mut out = Vec::with_capacity(n);
    let bands: [(u32, Market, usize); 4] =
        [(1, Market::SZ, 2000), (300_001, Market::SZ, 1000), (600_000, Market::SH, 1500), (688_001, Market::SH, 500)];
    'outer: for (start, m, count) in bands {
        for i in 0..count as u32 {
            if out.len() == n {
                break 'outer;
            }
            out.push(Code::new(&format!("{:06}", start + i), m).expect("valid code"));
        }
    }
    while out.len() < n {
        let i = out.len() as u32;
        out.push(Code::new(&format!("{:06}", 2000 + i), Market::SZ).expect("valid code"));
    }
    out
}

/// Where everything lives.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The file backend's root.
    pub root: PathBuf,
    /// SilverQuant-style K-line folder.
    pub kline_dir: PathBuf,
}

impl Paths {
    /// Under `base`.
    pub fn under(base: &Path) -> Paths {
        Paths { root: base.join("store"), kline_dir: base.join("_daily_bench").join("kline") }
    }
}

/// The store over the bench root, fsync durability.
pub fn store(paths: &Paths) -> Result<FileStore> {
    FileStore::open(FileConfig::at(&paths.root))
}

/// The 200-position book.
pub fn positions_book() -> BookId {
    BookId::new("55009728", "bench_positions").expect("valid book")
}

/// The 100k-deal book.
pub fn deals_book() -> BookId {
    BookId::new("55009728", "bench_deals").expect("valid book")
}

/// 200 held positions with day counts and prices.
pub fn position_snapshot(n: usize) -> PositionSnapshot {
    let mut rng = Rng::new(7);
    let mut s = PositionSnapshot { inc_date: NaiveDate::from_ymd_opt(2025, 10, 10), ..Default::default() };
    for c in market_codes(n) {
        let base = 5.0 + (rng.unit() * 50.0 * 100.0).round() / 100.0;
        s.positions.insert(
            c,
            PositionEntry {
                day_count: Some(1 + (rng.next_u64() % 30) as u32),
                max_price: Some(sqdata::validate::round3(base * 1.1)),
                min_price: Some(sqdata::validate::round3(base * 0.9)),
            },
        );
    }
    s
}

const NAMES: [&str; 8] = ["平安银行", "浦发银行", "宁德时代", "贵州茅台", "萬科Ａ", "招商银行", "中国平安", "比亚迪"];
const REMARKS: [&str; 4] = ["买入委托", "卖出委托", "止盈卖出", "止损卖出"];

/// `n` deals over consecutive weekdays from 2024-01-02, `per_day` a day.
pub fn deals(book: &BookId, n: usize, per_day: usize) -> Vec<Deal> {
    let mut rng = Rng::new(11);
    let codes = market_codes(500);
    let mut day = NaiveDate::from_ymd_opt(2024, 1, 2).expect("date");
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while out.len() < n {
        use chrono::Datelike;
        if day.weekday().number_from_monday() <= 5 {
            for k in 0..per_day.min(n - out.len()) {
                let secs = 9 * 3600 + 30 * 60 + (k as i64 * 19_800 / per_day as i64);
                let time = day.and_hms_opt(0, 0, 0).expect("midnight") + Duration::seconds(secs);
                let kind = [DealKind::MarketBuy, DealKind::LimitBuy, DealKind::MarketSell, DealKind::LimitSell]
                    [(rng.next_u64() % 4) as usize];
                let price = (500.0 + rng.unit() * 5000.0).round() / 100.0;
                let volume = 100 * (1 + rng.next_u64() % 50);
                out.push(Deal {
                    id: format!("bench-{i:07}"),
                    book: book.clone(),
                    time,
                    code: codes[(rng.next_u64() % codes.len() as u64) as usize],
                    name: NAMES[(rng.next_u64() % NAMES.len() as u64) as usize].to_owned(),
                    kind,
                    remark: REMARKS[(rng.next_u64() % REMARKS.len() as u64) as usize].to_owned(),
                    price,
                    volume,
                    amount: price * volume as f64,
                    strategy: "bench".to_owned(),
                });
                i += 1;
            }
        }
        day = day.succ_opt().expect("next day");
    }
    out
}

/// `n` consecutive daily bars ending 2025-10-10, a random walk.
pub fn daily_bars(code_index: usize, n: usize) -> Vec<Bar> {
    let mut rng = Rng::new(1000 + code_index as u64);
    let end: NaiveDateTime = NaiveDate::from_ymd_opt(2025, 10, 10).expect("date").and_hms_opt(0, 0, 0).expect("time");
    let start = end - Duration::days(n as i64 - 1);
    let mut close = 5.0 + rng.unit() * 60.0;
    (0..n)
        .map(|i| {
            let open = (close * (1.0 + (rng.unit() - 0.5) * 0.02) * 100.0).round() / 100.0;
            close = ((open * (1.0 + (rng.unit() - 0.5) * 0.06)) * 100.0).round() / 100.0;
            let high = ((open.max(close) * (1.0 + rng.unit() * 0.02)) * 100.0).round() / 100.0;
            let low = ((open.min(close) * (1.0 - rng.unit() * 0.02)) * 100.0).round() / 100.0;
            let volume = 100_000 + rng.next_u64() % 10_000_000;
            Bar {
                datetime: start + Duration::days(i as i64),
                open,
                high,
                low: low.max(0.01),
                close,
                volume,
                amount: ((volume as f64 * close) * 100.0).round() / 100.0,
            }
        })
        .collect()
}

/// What the generator built.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Positions in the book.
    pub positions: usize,
    /// Deals in the deal book.
    pub deals: usize,
    /// Codes in the market.
    pub codes: usize,
    /// Daily bars per code.
    pub bars: usize,
}

impl Spec {
    /// The sizes the issue names.
    pub fn full() -> Spec {
        Spec { positions: 200, deals: 100_000, codes: 5000, bars: 550 }
    }
    /// Small, for criterion smoke runs and tests.
    pub fn small() -> Spec {
        Spec { positions: 200, deals: 5_000, codes: 50, bars: 550 }
    }
    fn marker(&self) -> String {
        format!("{DATA_VERSION} {} {} {} {}", self.positions, self.deals, self.codes, self.bars)
    }
}

/// Builds the data under `base` unless it is already there (a marker file
/// records what was built). Returns whether it had to build.
pub async fn ensure(base: &Path, spec: Spec) -> Result<bool> {
    let marker = base.join("READY");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(spec.marker().as_str()) {
        return Ok(false);
    }
    if base.exists() {
        std::fs::remove_dir_all(base).map_err(|e| sqdata::Error::io(base, e))?;
    }
    let paths = Paths::under(base);
    std::fs::create_dir_all(&paths.kline_dir).map_err(|e| sqdata::Error::io(&paths.kline_dir, e))?;
    let s = store(&paths)?;
    s.replace_book(&positions_book(), &position_snapshot(spec.positions)).await?;
    let ds = deals(&deals_book(), spec.deals, 250);
    for chunk in ds.chunks(5000) {
        s.record_batch(chunk).await?;
    }
    for (i, code) in market_codes(spec.codes).into_iter().enumerate() {
        let bars = daily_bars(i, spec.bars);
        let path = paths.kline_dir.join(format!("{code}.csv"));
        std::fs::write(&path, kline::format_kline_csv(Period::Day1, &bars)).map_err(|e| sqdata::Error::io(&path, e))?;
        s.save_bars(&BarSeries { key: BarKey::new(code, Period::Day1, Adjust::Qfq), bars }, BarWriteMode::Replace)
            .await?;
    }
    std::fs::write(&marker, spec.marker()).map_err(|e| sqdata::Error::io(&marker, e))?;
    Ok(true)
}
