//! The file-store suite of issue 2, each scenario next to its baseline.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use sqdata::file::kline;
use sqdata::{
    Adjust, BarKey, BarStore, BookId, DealQuery, DealStore, DealStoreExt, Period, PositionStore, PriceTick, Result,
    TimeRange,
};

use crate::baseline;
use crate::data::{self, Paths, Spec};
use crate::stats::{Measured, Scenario};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where generated data lives (kept between runs).
    pub data_dir: PathBuf,
    /// Data sizes.
    pub spec: Spec,
    /// Iterations of the micro scenarios.
    pub iterations: usize,
    /// Iterations of the whole-market scenarios.
    pub market_iterations: usize,
    /// Only scenarios whose name contains one of these.
    pub only: Vec<String>,
}

impl Options {
    /// The sizes with sensible iteration counts.
    pub fn full(data_dir: PathBuf) -> Options {
        Options { data_dir, spec: Spec::full(), iterations: 2000, market_iterations: 5, only: Vec::new() }
    }

    fn wants(&self, name: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| name.contains(o.as_str()))
    }
}

fn time_sync(n: usize, mut f: impl FnMut(usize)) -> Vec<Duration> {
    let warm = (n / 10).clamp(1, 50);
    for i in 0..warm {
        f(i);
    }
    (0..n)
        .map(|i| {
            let t = Instant::now();
            f(warm + i);
            t.elapsed()
        })
        .collect()
}

async fn time_async<F, Fut>(n: usize, mut f: F) -> Result<Vec<Duration>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let warm = (n / 10).clamp(1, 50);
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

/// Ticks raising the first 20 codes' maxima `step` above the snapshot's
/// (their lows at the floor: only the first tick moves a minimum).
fn raising_ticks(snap: &sqdata::PositionSnapshot, codes: &[sqdata::Code], step: f64) -> Vec<PriceTick> {
    codes
        .iter()
        .take(20)
        .map(|c| PriceTick { code: *c, high: snap.positions[c].max_price.unwrap_or(10.0) + step, low: 0.001 })
        .collect()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).map_err(|e| sqdata::Error::io(to, e))?;
    }
    std::fs::create_dir_all(to).map_err(|e| sqdata::Error::io(to, e))?;
    for e in std::fs::read_dir(from).map_err(|e| sqdata::Error::io(from, e))? {
        let e = e.map_err(|e| sqdata::Error::io(from, e))?;
        let name = e.file_name();
        if name.to_string_lossy().ends_with(".json") {
            std::fs::copy(e.path(), to.join(&name)).map_err(|e| sqdata::Error::io(to, e))?;
        }
    }
    Ok(())
}

/// Runs every (selected) scenario; prints progress to stderr.
pub async fn run_file_suite(o: &Options) -> Result<Vec<Scenario>> {
    let t0 = Instant::now();
    if data::ensure(&o.data_dir, o.spec).await? {
        eprintln!("generated benchmark data in {:.1} s under {}", t0.elapsed().as_secs_f64(), o.data_dir.display());
    }
    let paths = Paths::under(&o.data_dir);
    let store = data::store(&paths)?;
    let n = o.iterations;
    let mut out = Vec::new();

    let book = data::positions_book();
    let book_dir = store.book_dir(&book);
    let spec = o.spec;

    let name = format!("snapshot of a {}-position book", spec.positions);
    if o.wants(&name) {
        eprintln!("running: {name}");
        let mut s = time_async(n, |_| async { store.snapshot(&book).await.map(|_| ()) }).await?;
        let sq = Measured::from_samples("sqdata file (cached, stat-revalidated)", &mut s, spec.positions as u64, "pos");
        let mut b = time_sync(n, |_| {
            std::hint::black_box(baseline::snapshot(&book_dir));
        });
        let base = Measured::from_samples("SilverQuant way (parse 3 JSON files)", &mut b, spec.positions as u64, "pos");
        out.push(Scenario { name, target_p95_us: Some(10.0), results: vec![sq, base], note: String::new() });
    }

    let name = format!("update_extremes, {} codes, 20 changed, fsync'd", spec.positions);
    if o.wants(&name) {
        eprintln!("running: {name}");
        let ext_book = BookId::new("55009728", "bench_extremes")?;
        let snap = data::position_snapshot(spec.positions);
        store.replace_book(&ext_book, &snap).await?;
        let codes: Vec<_> = snap.positions.keys().copied().collect();
        let ticks_for = |k: usize| -> Vec<PriceTick> {
            codes
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let e = snap.positions[c];
                    let (mx, mn) = (e.max_price.unwrap_or(10.0), e.min_price.unwrap_or(9.0));
                    let step = 0.001 * (k as f64 + 1.0);
                    let (high, low) = match i {
                        0..10 => (mx + step, mn + 0.01),
                        10..20 => (mx - 0.01, (mn - step).max(0.001)),
                        _ => (mx - 0.01, mn + 0.01),
                    };
                    PriceTick { code: *c, high, low }
                })
                .collect()
        };
        let iters = n.min(1000);
        let mut s = time_async(iters, |k| {
            let t = ticks_for(k);
            let store = &store;
            let b = &ext_book;
            async move {
                let ch = store.update_extremes(b, &t).await?;
                debug_assert_eq!(ch.len(), 20);
                Ok(())
            }
        })
        .await?;
        let sq =
            Measured::from_samples("sqdata file (write-ahead log, fdatasync)", &mut s, spec.positions as u64, "tick");
        // The same durable write without the log, as before it: a synced
        // temp file, a rename and a synced folder per changed file.
        let nolog_store = sqdata::file::FileStore::open(sqdata::file::FileConfig {
            wal: false,
            ..sqdata::file::FileConfig::at(&paths.root)
        })?;
        let nolog_book = BookId::new("55009728", "bench_extremes_nolog")?;
        nolog_store.replace_book(&nolog_book, &snap).await?;
        let mut d = time_async(iters, |k| {
            let t = ticks_for(k);
            let store = &nolog_store;
            let b = &nolog_book;
            async move { store.update_extremes(b, &t).await.map(|_| ()) }
        })
        .await?;
        let nolog = Measured::from_samples(
            "sqdata file, wal=false (replace + fsync each)",
            &mut d,
            spec.positions as u64,
            "tick",
        );
        let flush_store = sqdata::file::FileStore::open(sqdata::file::FileConfig {
            durability: sqdata::file::Durability::Flush,
            ..sqdata::file::FileConfig::at(&paths.root)
        })?;
        flush_store.replace_book(&ext_book, &snap).await?;
        let mut f = time_async(iters, |k| {
            let t = ticks_for(k);
            let store = &flush_store;
            let b = &ext_book;
            async move { store.update_extremes(b, &t).await.map(|_| ()) }
        })
        .await?;
        let flush = Measured::from_samples("sqdata file, durability=flush", &mut f, spec.positions as u64, "tick");
        let bdir = o.data_dir.join("baseline_extremes");
        copy_dir(&store.book_dir(&ext_book), &bdir)?;
        store.replace_book(&ext_book, &snap).await?;
        copy_dir(&store.book_dir(&ext_book), &bdir)?;
        let mut b = time_sync(iters, |k| {
            std::hint::black_box(baseline::update_extremes(&bdir, &ticks_for(k), true));
        });
        let base = Measured::from_samples("SilverQuant way + fsync (in place)", &mut b, spec.positions as u64, "tick");
        copy_dir(&store.book_dir(&ext_book), &bdir)?;
        let mut b = time_sync(iters, |k| {
            std::hint::black_box(baseline::update_extremes(&bdir, &ticks_for(k), false));
        });
        let nofsync =
            Measured::from_samples("SilverQuant way, no fsync (as today)", &mut b, spec.positions as u64, "tick");
        out.push(Scenario {
            name,
            target_p95_us: Some(400.0),
            results: vec![sq, nolog, flush, base, nofsync],
            note: "10 new highs and 10 new lows a tick: both price files change; the log checkpoints when full \
                   (4 MiB) and after 500 ms idle"
                .into(),
        });
    }

    let name = format!("update_extremes from 8 writers on 8 books of {} codes, fsync'd", spec.positions);
    if o.wants(&name) {
        eprintln!("running: {name}");
        let snap = data::position_snapshot(spec.positions);
        let codes: Vec<_> = snap.positions.keys().copied().collect();
        let mut results = Vec::new();
        for (label, wal) in [("sqdata file (write-ahead log per book)", true), ("sqdata file, wal=false", false)] {
            let st = sqdata::file::FileStore::open(sqdata::file::FileConfig {
                wal,
                ..sqdata::file::FileConfig::at(&paths.root)
            })?;
            let mut books = Vec::new();
            for w in 0..8 {
                let b = BookId::new("55009728", format!("bench_conc_{}_{w}", u8::from(wal)))?;
                st.replace_book(&b, &snap).await?;
                books.push(b);
            }
            let per = (n / 8).clamp(25, 200);
            let t0 = Instant::now();
            let mut tasks = Vec::new();
            for b in books {
                let (st, codes, snap) = (st.clone(), codes.clone(), snap.clone());
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per);
                    for k in 0..per {
                        let t = raising_ticks(&snap, &codes, 0.001 * (k as f64 + 1.0));
                        let t1 = Instant::now();
                        st.update_extremes(&b, &t).await?;
                        lat.push(t1.elapsed());
                    }
                    Ok::<_, sqdata::Error>(lat)
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.map_err(|e| sqdata::Error::Backend {
                    backend: "bench",
                    message: format!("a writer task failed: {e}"),
                    retryable: false,
                    source: None,
                })??);
            }
            let wall = t0.elapsed();
            let mut m = Measured::from_samples(label, &mut all, 1, "write");
            m.throughput_per_s = m.samples as f64 / wall.as_secs_f64();
            results.push(m);
        }
        // SilverQuant's way on 8 books at once: each writer rewrites its
        // book's price files in place with an fsync.
        let src = store.book_dir(&BookId::new("55009728", "bench_conc_1_0")?);
        let mut dirs = Vec::new();
        for w in 0..8 {
            let d = o.data_dir.join(format!("baseline_conc_{w}"));
            copy_dir(&src, &d)?;
            dirs.push(d);
        }
        let per = (n / 8).clamp(25, 200);
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for d in dirs {
            let (codes, snap) = (codes.clone(), snap.clone());
            tasks.push(tokio::task::spawn_blocking(move || {
                let mut lat = Vec::with_capacity(per);
                for k in 0..per {
                    // above what the sqdata runs left in the copied files: every tick moves 20 maxima
                    let t = raising_ticks(&snap, &codes, 1.0 + 0.001 * (k as f64 + 1.0));
                    let t1 = Instant::now();
                    let changed = baseline::update_extremes(&d, &t, true);
                    debug_assert!(changed >= 20);
                    std::hint::black_box(changed);
                    lat.push(t1.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.map_err(|e| sqdata::Error::Backend {
                backend: "bench",
                message: format!("a baseline writer failed: {e}"),
                retryable: false,
                source: None,
            })?);
        }
        let wall = t0.elapsed();
        let mut m = Measured::from_samples("SilverQuant way + fsync (in place), 8 books", &mut all, 1, "write");
        m.throughput_per_s = m.samples as f64 / wall.as_secs_f64();
        results.push(m);
        out.push(Scenario {
            name,
            target_p95_us: None,
            results,
            note: "throughput = all writes / wall time; each book has its own log, so writers on different books \
                   never wait for each other"
                .into(),
        });
    }

    let name = "record one deal, fsync'd".to_owned();
    if o.wants(&name) {
        eprintln!("running: {name}");
        let rec_book = BookId::new("55009728", format!("bench_record_{}", std::process::id()))?;
        let template = data::deals(&rec_book, 1, 1).remove(0);
        let iters = n.min(1000);
        let mut s = time_async(iters, |k| {
            let mut d = template.clone();
            d.id = format!("rec-{k}");
            let store = &store;
            async move { store.record(&d).await.map(|_| ()) }
        })
        .await?;
        let sq = Measured::from_samples("sqdata file (append + sidecar, fsync)", &mut s, 1, "deal");
        let path = o.data_dir.join("baseline_deal_hist.csv");
        let row = "2025-10-10,14:50:03,000001.SZ,平安银行,市买委托,买入委托,11.23,800\r\n";
        let mut b = time_sync(iters, |_| baseline::record_deal(&path, row));
        let base = Measured::from_samples("SilverQuant way (append, no fsync)", &mut b, 1, "deal");
        let _ = std::fs::remove_file(&path);
        DealStore::delete_book(&store, &rec_book).await?;
        out.push(Scenario { name, target_p95_us: None, results: vec![sq, base], note: String::new() });
    }

    let name = format!("one day of deals out of {}k", spec.deals / 1000);
    if o.wants(&name) {
        eprintln!("running: {name}");
        let dbook = data::deals_book();
        // a trading day in the middle of the generated history
        let day = data::deals(&dbook, spec.deals / 2 + 1, 250).pop().map(|d| d.time.date()).unwrap_or_default();
        let q = DealQuery { from: Some(day), to: Some(day), page_size: 1000, ..DealQuery::book(dbook.clone()) };
        let cold_store = data::store(&paths)?;
        let t = Instant::now();
        let first = cold_store.query(&q).await?;
        let mut cold = vec![t.elapsed()];
        let rows = first.data.len() as u64;
        let mut s = time_async(n.min(500), |_| async { store.query(&q).await.map(|_| ()) }).await?;
        let sq = Measured::from_samples("sqdata file (indexed, cached)", &mut s, rows, "deal");
        let cold = Measured::from_samples("sqdata file, first query (cold)", &mut cold, rows, "deal");
        let csv = store.book_dir(&dbook).join("deal_hist.csv");
        let label = day.format("%Y-%m-%d").to_string();
        let mut b = time_sync(20, |_| {
            std::hint::black_box(baseline::deals_of_day(&csv, &label));
        });
        let base = Measured::from_samples("SilverQuant way (parse whole GBK CSV)", &mut b, rows, "deal");
        out.push(Scenario {
            name,
            target_p95_us: Some(5000.0),
            results: vec![sq, cold, base],
            note: format!("{rows} deals that day; the first query of a process parses the file once"),
        });
    }

    let codes = data::market_codes(spec.codes);
    let name = format!("one {}-bar series", spec.bars);
    if o.wants(&name) {
        eprintln!("running: {name}");
        let key = BarKey::new(codes[0], Period::Day1, Adjust::Qfq);
        let mut s = time_async(n, |_| async { store.load_bars(&key, TimeRange::all()).await.map(|_| ()) }).await?;
        let sq = Measured::from_samples("sqdata file (binary series)", &mut s, spec.bars as u64, "bar");
        let csv = paths.kline_dir.join(format!("{}.csv", codes[0]));
        let mut b = time_sync(n, |_| {
            std::hint::black_box(baseline::load_series(&csv));
        });
        let base = Measured::from_samples("SilverQuant way (parse the CSV)", &mut b, spec.bars as u64, "bar");
        out.push(Scenario { name, target_p95_us: Some(300.0), results: vec![sq, base], note: String::new() });
    }

    let total_bars = (spec.codes * spec.bars) as u64;
    let name = format!("whole market ({} codes x {} bars) from the K-line CSV folder", spec.codes, spec.bars);
    if o.wants(&name) || o.wants("whole market") {
        eprintln!("running: {name}");
        let m = o.market_iterations;
        let dir = paths.kline_dir.clone();
        let mut s = time_sync(m, |_| {
            std::hint::black_box(kline::load_kline_dir(&dir).map(|v| v.len()).unwrap_or(0));
        });
        let sq = Measured::from_samples("sqdata kline loader (parallel)", &mut s, total_bars, "bar");
        let mut b = time_sync(m, |_| {
            std::hint::black_box(baseline::whole_market(&dir, &codes));
        });
        let base = Measured::from_samples("SilverQuant way (one file after another)", &mut b, total_bars, "bar");
        out.push(Scenario { name, target_p95_us: Some(1.5e6), results: vec![sq, base.clone()], note: String::new() });

        let name =
            format!("whole market ({} codes x {} bars) from the file backend's own storage", spec.codes, spec.bars);
        eprintln!("running: {name}");
        let keys: Vec<BarKey> = codes.iter().map(|c| BarKey::new(*c, Period::Day1, Adjust::Qfq)).collect();
        let mut s = time_async(m, |_| async {
            let v = store.load_bars_batch(&keys, TimeRange::all()).await?;
            std::hint::black_box(v.len());
            Ok(())
        })
        .await?;
        let sq = Measured::from_samples("sqdata file load_bars_batch", &mut s, total_bars, "bar");
        out.push(Scenario { name, target_p95_us: Some(3e5), results: vec![sq, base], note: String::new() });
    }
    Ok(out)
}
