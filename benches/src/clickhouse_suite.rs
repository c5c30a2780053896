//! The ClickHouse suite of issue 4 at scale: 1M deals (10 accounts, 5
//! years), 5,000 codes x 550 daily bars, 100 codes x a year of 1-minute
//! bars; each query next to the file store and the SilverQuant way in the
//! same run, plus ingest rates and storage against the CSVs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{Datelike, Duration as CDuration, NaiveDate};
use sqdata::clickhouse::{ClickHouseConfig, ClickHouseStore};
use sqdata::{
    Adjust, Bar, BarKey, BarSeries, BarStore, BarWriteMode, BookId, Deal, DealKind, DealQuery, DealScope, DealStore,
    Period, Result, TimeRange,
};

use crate::data::{self, Paths, Rng, Spec};
use crate::stats::{Measured, Scenario};

/// What to run against which server.
#[derive(Debug, Clone)]
pub struct ClickHouseOptions {
    /// HTTP endpoint.
    pub url: String,
    /// Iterations of each query scenario.
    pub iterations: usize,
    /// The file suite's data folder (K-line CSVs and the file store).
    pub data_dir: PathBuf,
    /// Keep the benchmark database afterwards.
    pub keep: bool,
    /// Only ingest the bars and report storage (for a second server, e.g. a
    /// current engine through the chdb-http shim).
    pub storage_only: bool,
    /// `lz4` or `none` (the shim needs none).
    pub compression: String,
    /// Keep idle connections (off for the single-connection shim).
    pub keep_alive: bool,
}

async fn time<F, Fut>(n: usize, mut f: F) -> Result<Vec<Duration>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let warm = (n / 10).clamp(1, 20);
    for i in 0..warm {
        f(i).await?;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(warm + i).await?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// 1M deals: 10 accounts, one book each, 8 a trading day each over 5 years.
fn deal_set() -> Vec<Deal> {
    let mut rng = Rng::new(42);
    let codes = data::market_codes(800);
    let mut out = Vec::with_capacity(1_000_000);
    let mut day = NaiveDate::from_ymd_opt(2021, 1, 4).unwrap_or_default();
    let books: Vec<BookId> = (0..10).filter_map(|a| BookId::new(format!("acct{a:02}"), "main").ok()).collect();
    let mut n = 0u64;
    while out.len() < 1_000_000 {
        if day.weekday().number_from_monday() <= 5 {
            for book in &books {
                for k in 0..8 {
                    let time =
                        day.and_hms_opt(9, 30, 0).unwrap_or_default() + CDuration::seconds(k * 1800 + (n % 600) as i64);
                    let price = (500.0 + rng.unit() * 5000.0).round() / 100.0;
                    let volume = 100 * (1 + rng.next_u64() % 50);
                    out.push(Deal {
                        id: format!("d{n:08}"),
                        book: book.clone(),
                        time,
                        code: codes[(rng.next_u64() % codes.len() as u64) as usize],
                        name: "平安银行".into(),
                        kind: [DealKind::MarketBuy, DealKind::LimitSell][(n % 2) as usize],
                        remark: "bench".into(),
                        price,
                        volume,
                        amount: price * volume as f64,
                        strategy: "bench".into(),
                    });
                    n += 1;
                }
            }
        }
        day = day.succ_opt().unwrap_or(day);
    }
    out.truncate(1_000_000);
    out
}

/// 100 codes x 250 trading days x 240 minutes.
fn minute_series(codes: &[sqdata::Code]) -> Vec<BarSeries> {
    codes
        .iter()
        .enumerate()
        .map(|(ci, c)| {
            let mut rng = Rng::new(7 + ci as u64);
            let mut bars = Vec::with_capacity(60_000);
            let mut day = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap_or_default();
            let mut price = 1000 + (rng.next_u64() % 4000) as i64;
            while bars.len() < 60_000 {
                if day.weekday().number_from_monday() <= 5 {
                    for m in 0..240i64 {
                        let t = day.and_hms_opt(9, 30, 0).unwrap_or_default()
                            + CDuration::minutes(if m < 120 { m } else { m + 90 });
                        price = (price + (rng.next_u64() % 5) as i64 - 2).max(100);
                        let p = |c: i64| c as f64 / 100.0;
                        bars.push(Bar {
                            datetime: t,
                            open: p(price),
                            high: p(price + 2),
                            low: p(price - 2),
                            close: p(price + 1),
                            volume: 1000 + rng.next_u64() % 10_000,
                            amount: (price * 1000) as f64,
                        });
                    }
                }
                day = day.succ_opt().unwrap_or(day);
            }
            BarSeries { key: BarKey::new(*c, Period::Min1, Adjust::None), bars }
        })
        .collect()
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let m = e.metadata().ok();
                    if m.as_ref().is_some_and(|m| m.is_dir()) {
                        dir_size(&e.path())
                    } else {
                        m.map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

async fn storage(
    s: &ClickHouseStore,
    paths: &Paths,
    daily: u64,
    minutes: &[BarSeries],
    deals: Option<&[Deal]>,
) -> Result<Scenario> {
    let version = s.server_version().await?;
    let stats = s.stats().await?;
    let bars_disk: u64 = stats.iter().filter(|t| t.table == "bars2").map(|t| t.bytes_on_disk).sum();
    let deals_disk: u64 = stats.iter().filter(|t| t.table == "deals").map(|t| t.bytes_on_disk).sum();
    let csv_bytes = dir_size(&paths.kline_dir);
    let minute_rows: u64 = minutes.iter().map(|x| x.bars.len() as u64).sum();
    let minute_csv: u64 =
        minutes.iter().map(|x| sqdata::kline::format_kline_csv(Period::Min1, &x.bars).len() as u64).sum();
    let ratio = (csv_bytes + minute_csv) as f64 / bars_disk.max(1) as f64;
    let mut note = format!(
        "bars: {:.1} MB of CSV ({daily} daily + {minute_rows} one-minute rows) -> {:.1} MB on disk = {ratio:.1}x",
        (csv_bytes + minute_csv) as f64 / 1e6,
        bars_disk as f64 / 1e6,
    );
    if let Some(deals) = deals {
        let deal_csv: u64 = deals.iter().map(|d| 60 + d.name.len() as u64 + d.remark.len() as u64).sum();
        note.push_str(&format!(
            "; deals: ~{:.1} MB as deal_hist.csv -> {:.1} MB = {:.1}x",
            deal_csv as f64 / 1e6,
            deals_disk as f64 / 1e6,
            deal_csv as f64 / deals_disk.max(1) as f64
        ));
    }
    Ok(Scenario { name: format!("storage on ClickHouse {version}"), target_p95_us: None, results: Vec::new(), note })
}

/// Runs the suite in its own database (dropped afterwards unless `keep`).
pub async fn run_clickhouse_suite(o: &ClickHouseOptions) -> Result<Vec<Scenario>> {
    let spec = Spec::full();
    data::ensure(&o.data_dir, spec).await?;
    let paths = Paths::under(&o.data_dir);
    let journal = o.data_dir.join("ch_journal");
    let _ = std::fs::remove_dir_all(&journal);
    let cfg = ClickHouseConfig {
        url: o.url.clone(),
        database: "sqdata_bench".into(),
        journal_dir: journal,
        flush_rows: 50_000,
        compression: o.compression.clone(),
        keep_alive: o.keep_alive,
        ..Default::default()
    };
    let s = ClickHouseStore::open(cfg)?;
    s.drop_database().await?;
    let r = suite(o, &s, &paths, spec).await;
    if !o.keep {
        s.drop_database().await?;
    }
    r
}

async fn suite(o: &ClickHouseOptions, s: &ClickHouseStore, paths: &Paths, spec: Spec) -> Result<Vec<Scenario>> {
    let n = o.iterations;
    let mut out = Vec::new();
    let version = s.server_version().await?;
    eprintln!("clickhouse {version}");

    // ---- ingest: the whole market of daily bars, then a year of minutes ----
    eprintln!("loading the K-line CSV folder");
    let loaded = sqdata::kline::load_kline_dir(&paths.kline_dir)?;
    let series: Vec<BarSeries> = loaded.into_iter().filter_map(|(_, r)| r.ok()).collect();
    let total_bars: u64 = series.iter().map(|x| x.bars.len() as u64).sum();
    eprintln!("ingesting {total_bars} daily bars");
    let t = Instant::now();
    for chunk in series.chunks(1000) {
        s.save_bars_batch(chunk, BarWriteMode::Replace).await?;
    }
    let mut d = vec![t.elapsed()];
    let daily_ingest = Measured::from_samples("sqdata clickhouse save_bars_batch", &mut d, total_bars, "bar");
    let minutes = minute_series(&data::market_codes(100));
    let minute_rows: u64 = minutes.iter().map(|x| x.bars.len() as u64).sum();
    eprintln!("ingesting {minute_rows} one-minute bars");
    let t = Instant::now();
    for chunk in minutes.chunks(10) {
        s.save_bars_batch(chunk, BarWriteMode::Replace).await?;
    }
    let mut d = vec![t.elapsed()];
    let minute_ingest = Measured::from_samples("sqdata clickhouse, 1-minute bars", &mut d, minute_rows, "bar");
    let pass = daily_ingest.throughput_per_s.min(minute_ingest.throughput_per_s) >= 500_000.0;
    out.push(Scenario {
        name: "bulk bar ingest".into(),
        target_p95_us: None,
        results: vec![daily_ingest, minute_ingest],
        note: format!("target >= 500k rows/s: {}", if pass { "PASS" } else { "MISS" }),
    });
    if o.storage_only {
        out.push(storage(s, paths, total_bars, &minutes, None).await?);
        return Ok(out);
    }

    // ---- one 550-bar series ----
    eprintln!("running: one 550-bar series");
    let key = BarKey::new(data::market_codes(1)[0], Period::Day1, Adjust::Qfq);
    let mut q = time(n, |_| async { s.load_bars(&key, TimeRange::all()).await.map(|_| ()) }).await?;
    let ch = Measured::from_samples("sqdata clickhouse load_bars", &mut q, spec.bars as u64, "bar");
    let fstore = data::store(paths)?;
    let mut f = time(n, |_| async { fstore.load_bars(&key, TimeRange::all()).await.map(|_| ()) }).await?;
    let fm = Measured::from_samples("sqdata file (same run)", &mut f, spec.bars as u64, "bar");
    let csv = paths.kline_dir.join(format!("{}.csv", key.code));
    let mut b = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(crate::baseline::load_series(&csv));
        b.push(t.elapsed());
    }
    let bm = Measured::from_samples("SilverQuant way (parse the CSV)", &mut b, spec.bars as u64, "bar");
    out.push(Scenario {
        name: "one 550-bar series".into(),
        target_p95_us: Some(5000.0),
        results: vec![ch, fm, bm],
        note: String::new(),
    });

    // ---- whole market into memory ----
    eprintln!("running: whole market");
    let keys: Vec<BarKey> = series.iter().map(|x| x.key).collect();
    let m = 5;
    let mut q = time(m, |_| async {
        let v = s.load_bars_batch(&keys, TimeRange::all()).await?;
        std::hint::black_box(v.len());
        Ok(())
    })
    .await?;
    let ch = Measured::from_samples("sqdata clickhouse load_bars_batch", &mut q, total_bars, "bar");
    let all_codes = data::market_codes(spec.codes);
    let mut b = Vec::new();
    for _ in 0..m {
        let t = Instant::now();
        std::hint::black_box(crate::baseline::whole_market(&paths.kline_dir, &all_codes));
        b.push(t.elapsed());
    }
    let bm = Measured::from_samples("SilverQuant way (one CSV after another)", &mut b, total_bars, "bar");
    out.push(Scenario {
        name: format!("whole market, {total_bars} bars into memory"),
        target_p95_us: Some(1e6),
        results: vec![ch, bm],
        note: String::new(),
    });

    // ---- 1M deals ----
    eprintln!("ingesting 1M deals through the journal");
    let deals = deal_set();
    let t = Instant::now();
    for chunk in deals.chunks(20_000) {
        s.record_batch(chunk).await?;
    }
    s.flush().await?;
    let mut d = vec![t.elapsed()];
    let deal_ingest =
        Measured::from_samples("sqdata clickhouse record_batch + flush", &mut d, deals.len() as u64, "deal");
    out.push(Scenario {
        name: "1M deals ingest (journaled)".into(),
        target_p95_us: None,
        results: vec![deal_ingest],
        note: String::new(),
    });

    eprintln!("running: one account, one month of deals");
    let account = sqdata::AccountCode::new("acct03")?;
    let q = DealQuery {
        scope: DealScope::Account(account),
        from: NaiveDate::from_ymd_opt(2023, 6, 1),
        to: NaiveDate::from_ymd_opt(2023, 6, 30),
        code: None,
        kind: None,
        page: 1,
        page_size: 1000,
    };
    let rows = s.query(&q).await?.total;
    let mut r = time(n, |_| async { s.query(&q).await.map(|_| ()) }).await?;
    let ch = Measured::from_samples("sqdata clickhouse (one page of 1000, with total)", &mut r, rows, "deal");
    out.push(Scenario {
        name: "one account, one month of deals out of 1M".into(),
        target_p95_us: Some(15_000.0),
        results: vec![ch],
        note: format!("{rows} deals in the month; design review: 100 ms"),
    });

    out.push(storage(s, paths, total_bars, &minutes, Some(&deals)).await?);
    Ok(out)
}
