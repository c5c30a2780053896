//! The Redis suite of issue 3, next to `redis-benchmark -c 1` (the loopback
//! round-trip floor), the raw driver and the file store, in the same run.

use std::process::Command;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqdata::redis::{RedisConfig, RedisStore};
use sqdata::{BookId, Code, PositionEntry, PositionSnapshot, PositionStore, PriceTick, Quote, QuoteStore, Result};

use crate::data::{self, Rng};
use crate::stats::{Measured, Scenario};

/// What to run against which server.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://host:port/db`.
    pub url: String,
    /// Iterations of each scenario.
    pub iterations: usize,
    /// Where the file store's comparison book lives.
    pub data_dir: std::path::PathBuf,
}

async fn time<F, Fut>(n: usize, mut f: F) -> Result<Vec<Duration>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let warm = (n / 10).clamp(1, 100);
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

/// `redis-benchmark -c 1 -t ping_mbulk`: one client, no pipelining — the
/// round trip every single-command operation pays.
fn redis_benchmark(url: &str, n: usize) -> Option<Measured> {
    let (host, port) = url.trim_start_matches("redis://").split('/').next()?.split_once(':')?;
    let out = Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "-c", "1", "-n", &n.to_string(), "-t", "ping_mbulk"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // "latency summary (msec):" / header / "avg min p50 p95 p99 max" values
    let mut lines = text.lines().skip_while(|l| !l.contains("latency summary"));
    lines.next()?;
    lines.next()?;
    let vals: Vec<f64> = lines.next()?.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let rps: f64 = text.lines().find(|l| l.contains("throughput summary"))?.split_whitespace().nth(2)?.parse().ok()?;
    let [_, _, p50, p95, p99, _] = vals[..] else { return None };
    Some(Measured {
        implementation: "redis-benchmark -c 1 (PING, loopback floor)".into(),
        samples: n,
        p50_us: p50 * 1000.0,
        p95_us: p95 * 1000.0,
        p99_us: p99 * 1000.0,
        throughput_per_s: rps,
        unit: "op".into(),
    })
}

fn book_of(n: usize) -> PositionSnapshot {
    data::position_snapshot(n)
}

/// Runs the suite on a private prefix (deleted afterwards).
pub async fn run_redis_suite(o: &RedisOptions) -> Result<Vec<Scenario>> {
    let prefix = format!("sqbench{}", std::process::id());
    let store = RedisStore::open(RedisConfig { url: o.url.clone(), prefix, ..Default::default() })?;
    let result = suite(o, &store).await;
    store.purge_prefix().await?;
    result
}

async fn suite(o: &RedisOptions, store: &RedisStore) -> Result<Vec<Scenario>> {
    let n = o.iterations;
    let floor = redis_benchmark(&o.url, n.max(5000));
    let mut out = Vec::new();
    let book = BookId::new("55009728", "bench_redis")?;
    let snap200 = book_of(200);
    store.replace_book(&book, &snap200).await?;
    let codes: Vec<Code> = snap200.positions.keys().copied().collect();
    let fstore = data::store(&data::Paths::under(&o.data_dir))?;
    let fbook = BookId::new("55009728", "bench_redis_file")?;
    fstore.replace_book(&fbook, &snap200).await?;

    eprintln!("running: held_days, one code");
    let one = [codes[0]];
    let mut s = time(n, |_| async { store.held_days(&book, &one).await.map(|_| ()) }).await?;
    let mut rows = vec![Measured::from_samples("sqdata redis held_days (HMGET)", &mut s, 1, "op")];
    if let Some(f) = &floor {
        rows.push(f.clone());
    }
    let target = floor.as_ref().map(|f| f.p95_us * 1.5);
    out.push(Scenario {
        name: "held_days, one code".into(),
        target_p95_us: target,
        results: rows,
        note: "target: 1.5 x the redis-benchmark single-client P95 measured now".into(),
    });

    eprintln!("running: snapshot(200)");
    let mut s = time(n, |_| async { store.snapshot(&book).await.map(|_| ()) }).await?;
    let sq = Measured::from_samples("sqdata redis snapshot (one Lua read)", &mut s, 200, "pos");
    let client =
        sqdata::redis::driver::Client::open(o.url.as_str()).map_err(|e| sqdata::Error::Config(e.to_string()))?;
    let mut raw = client.get_multiplexed_async_connection().await.map_err(|e| sqdata::Error::Config(e.to_string()))?;
    let keys = sqdata::redis::book_keys(&store.config().prefix, &book);
    let mut p = sqdata::redis::driver::pipe();
    p.cmd("HGETALL").arg(&keys[0]).cmd("HMGET").arg(&keys[1]).arg("n").arg("inc_date");
    let mut r = Vec::with_capacity(n);
    for i in 0..n + n / 10 {
        let t = Instant::now();
        let _: sqdata::redis::driver::Value =
            p.query_async(&mut raw).await.map_err(|e| sqdata::Error::Config(e.to_string()))?;
        if i >= n / 10 {
            r.push(t.elapsed());
        }
    }
    let rawm = Measured::from_samples("raw redis-rs pipeline (HGETALL + HMGET)", &mut r, 200, "pos");
    let mut f = time(n, |_| async { fstore.snapshot(&fbook).await.map(|_| ()) }).await?;
    let fm = Measured::from_samples("sqdata file snapshot (same run)", &mut f, 200, "pos");
    let bdir = fstore.book_dir(&fbook);
    let mut b = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        std::hint::black_box(crate::baseline::snapshot(&bdir));
        b.push(t.elapsed());
    }
    let bm = Measured::from_samples("SilverQuant way (parse 3 JSON files)", &mut b, 200, "pos");
    out.push(Scenario {
        name: "snapshot(200)".into(),
        target_p95_us: Some(200.0),
        results: vec![sq, rawm, fm, bm],
        note: String::new(),
    });

    eprintln!("running: update_extremes(200)");
    let ticks_for = |k: usize| -> Vec<PriceTick> {
        codes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let e: PositionEntry = snap200.positions[c];
                let (mx, mn) = (e.max_price.unwrap_or(10.0), e.min_price.unwrap_or(9.0));
                let step = 0.001 * (k as f64 + 1.0);
                match i {
                    0..10 => PriceTick { code: *c, high: mx + step, low: mn + 0.01 },
                    10..20 => PriceTick { code: *c, high: mx - 0.01, low: (mn - step).max(0.001) },
                    _ => PriceTick { code: *c, high: mx - 0.01, low: mn + 0.01 },
                }
            })
            .collect()
    };
    let mut s = time(n, |k| {
        let t = ticks_for(k);
        let (store, book) = (&store, &book);
        async move { store.update_extremes(book, &t).await.map(|_| ()) }
    })
    .await?;
    let sq = Measured::from_samples("sqdata redis (one Lua step)", &mut s, 200, "tick");
    let iters = n.min(500);
    let mut f = time(iters, |k| {
        let t = ticks_for(k);
        let (fstore, fbook) = (&fstore, &fbook);
        async move { fstore.update_extremes(fbook, &t).await.map(|_| ()) }
    })
    .await?;
    let fm = Measured::from_samples("sqdata file (fsync, same run)", &mut f, 200, "tick");
    out.push(Scenario {
        name: "update_extremes(200), 20 changed".into(),
        target_p95_us: Some(250.0),
        results: vec![sq, fm],
        note: "10 new highs and 10 new lows a tick".into(),
    });

    eprintln!("running: inc_held_days(500)");
    let b500 = BookId::new("55009728", "bench_redis_500")?;
    store.replace_book(&b500, &book_of(500)).await?;
    let start = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap_or_default();
    let mut s = time(n.min(2000), |k| {
        let day = start + chrono::Duration::days(k as i64);
        let (store, b) = (&store, &b500);
        async move {
            let ran = store.inc_held_days(b, day).await?;
            debug_assert!(ran);
            Ok(())
        }
    })
    .await?;
    let sq = Measured::from_samples("sqdata redis (one Lua step)", &mut s, 500, "pos");
    out.push(Scenario {
        name: "inc_held_days(500)".into(),
        target_p95_us: Some(1000.0),
        results: vec![sq],
        note: String::new(),
    });

    eprintln!("running: quotes, 5,000 codes");
    let qcodes = data::market_codes(5000);
    let mut rng = Rng::new(3);
    let quotes: Vec<Quote> = qcodes
        .iter()
        .map(|c| {
            let p = 5.0 + (rng.unit() * 5000.0).round() / 100.0;
            Quote {
                code: *c,
                time: start.and_hms_opt(10, 0, 0).unwrap_or_default(),
                last: p,
                open: p,
                high: p * 1.02,
                low: p * 0.98,
                pre_close: p,
                volume: 1000,
                amount: p * 1000.0,
            }
        })
        .collect();
    let qn = (n / 10).max(20);
    let mut s = time(qn, |_| async { store.put_quotes(&quotes).await }).await?;
    let put = Measured::from_samples("sqdata redis put_quotes (pipelined SET PX)", &mut s, 5000, "quote");
    let mut s = time(qn, |_| async { store.get_quotes(&qcodes).await.map(|_| ()) }).await?;
    let get = Measured::from_samples("sqdata redis get_quotes (one MGET)", &mut s, 5000, "quote");
    out.push(Scenario {
        name: "quotes, 5,000 codes".into(),
        target_p95_us: None,
        results: vec![put, get],
        note: String::new(),
    });

    eprintln!("running: bulk field updates");
    let big = book_of(10_000);
    let bbig = BookId::new("55009728", "bench_redis_bulk")?;
    let mut s = time(qn, |_| async { store.replace_book(&bbig, &big).await }).await?;
    let fields = 30_000u64;
    let m = Measured::from_samples("sqdata redis replace_book (10k positions)", &mut s, fields, "field");
    let pass = m.throughput_per_s >= 200_000.0;
    out.push(Scenario {
        name: "bulk field updates, pipelined".into(),
        target_p95_us: None,
        results: vec![m],
        note: format!("30,000 hash fields per call; target >= 200k fields/s: {}", if pass { "PASS" } else { "MISS" }),
    });
    Ok(out)
}
