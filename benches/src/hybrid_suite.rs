//! The hybrid suite of issue 5: the composer's overhead on the sell loop's
//! hot path (snapshot, held_days, update_extremes) against Redis alone and
//! the files alone, in the same run; and `rollout rollback` of a book of
//! 200 positions with a year of deals (the review's 30 s figure).

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqdata::hybrid::Stage;
use sqdata::{BookId, Code, Config, PositionEntry, PriceTick, Result, Tier};

use crate::data;
use crate::stats::{Measured, Scenario};

/// Where the servers are.
#[derive(Debug, Clone)]
pub struct HybridOptions {
    /// Redis URL (a private prefix is used and removed).
    pub redis_url: String,
    /// ClickHouse URL (database `sqdata_bench_hybrid`, dropped afterwards).
    pub clickhouse_url: String,
    /// Iterations of the hot-path scenarios.
    pub iterations: usize,
    /// Folder for the files side.
    pub data_dir: std::path::PathBuf,
}

async fn time<F, Fut>(n: usize, mut f: F) -> Result<Vec<Duration>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    for i in 0..(n / 10).clamp(1, 100) {
        f(i).await?;
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        f(n + i).await?;
        out.push(t.elapsed());
    }
    Ok(out)
}

fn ratio_note(hybrid: &Measured, alone: &Measured) -> String {
    format!(
        "hybrid / redis alone: P50 {:.2}x, P95 {:.2}x (target ≤ 1.3x)",
        hybrid.p50_us / alone.p50_us,
        hybrid.p95_us / alone.p95_us
    )
}

/// Runs the suite; cleans up the prefix and the database.
pub async fn run_hybrid_suite(o: &HybridOptions) -> Result<Vec<Scenario>> {
    let mut c = Config { tier: Tier::Mvp, ..Config::default() };
    c.file.root = o.data_dir.join("hybrid-files");
    let _ = std::fs::remove_dir_all(&c.file.root);
    c.redis.url = o.redis_url.clone();
    c.redis.prefix = format!("sqbenchh{}", std::process::id());
    c.clickhouse.url = o.clickhouse_url.clone();
    c.clickhouse.database = "sqdata_bench_hybrid".into();
    c.clickhouse.journal_dir = o.data_dir.join("hybrid-ch-journal");
    let opened = sqdata::open_all(&c)?;
    let h = opened.hybrid.clone().ok_or_else(|| sqdata::Error::Config("no hybrid".into()))?;
    let result = suite(o, &opened, &h).await;
    let redis = sqdata::RedisStore::open(c.redis.clone())?;
    redis.purge_prefix().await?;
    sqdata::ClickHouseStore::open(c.clickhouse.clone())?.drop_database().await?;
    result
}

async fn suite(o: &HybridOptions, opened: &sqdata::Opened, h: &sqdata::hybrid::Hybrid) -> Result<Vec<Scenario>> {
    let n = o.iterations;
    let hybrid = &opened.stores;
    let redis = h.primary().positions.clone();
    let files = h.secondary().positions.clone();
    let book = BookId::new("55009728", "bench_hybrid")?;
    let snap200 = data::position_snapshot(200);
    hybrid.positions.replace_book(&book, &snap200).await?;
    let codes: Vec<Code> = snap200.positions.keys().copied().collect();
    let mut out = Vec::new();

    eprintln!("running: hybrid snapshot(200)");
    let mut a = time(n, |_| async { redis.snapshot(&book).await.map(|_| ()) }).await?;
    let mut b = time(n, |_| async { hybrid.positions.snapshot(&book).await.map(|_| ()) }).await?;
    let mut f = time(n, |_| async { files.snapshot(&book).await.map(|_| ()) }).await?;
    let alone = Measured::from_samples("redis alone (same run)", &mut a, 200, "pos");
    let hy = Measured::from_samples("sqdata hybrid (redis primary, files behind)", &mut b, 200, "pos");
    let fm = Measured::from_samples("files alone (same run)", &mut f, 200, "pos");
    out.push(Scenario {
        name: "hybrid snapshot(200)".into(),
        target_p95_us: Some(alone.p95_us * 1.3),
        note: ratio_note(&hy, &alone),
        results: vec![hy, alone, fm],
    });

    eprintln!("running: hybrid held_days, one code");
    let one = [codes[0]];
    let mut a = time(n, |_| async { redis.held_days(&book, &one).await.map(|_| ()) }).await?;
    let mut b = time(n, |_| async { hybrid.positions.held_days(&book, &one).await.map(|_| ()) }).await?;
    let alone = Measured::from_samples("redis alone (same run)", &mut a, 1, "op");
    let hy = Measured::from_samples("sqdata hybrid", &mut b, 1, "op");
    out.push(Scenario {
        name: "hybrid held_days, one code".into(),
        target_p95_us: Some(alone.p95_us * 1.3),
        note: ratio_note(&hy, &alone),
        results: vec![hy, alone],
    });

    eprintln!("running: hybrid update_extremes(200)");
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
    let w = n.min(500);
    let redis_book = BookId::new("55009728", "bench_hybrid_redis_only")?;
    redis.replace_book(&redis_book, &snap200).await?;
    let mut a = time(w, |k| {
        let (t, r, b) = (ticks_for(k), &redis, &redis_book);
        async move { r.update_extremes(b, &t).await.map(|_| ()) }
    })
    .await?;
    let mut b = time(w, |k| {
        let (t, s, b) = (ticks_for(k), &hybrid.positions, &book);
        async move { s.update_extremes(b, &t).await.map(|_| ()) }
    })
    .await?;
    let files_book = BookId::new("55009728", "bench_hybrid_files_only")?;
    files.replace_book(&files_book, &snap200).await?;
    let mut f = time(w, |k| {
        let (t, s, b) = (ticks_for(k), &files, &files_book);
        async move { s.update_extremes(b, &t).await.map(|_| ()) }
    })
    .await?;
    let alone = Measured::from_samples("redis alone (same run)", &mut a, 200, "tick");
    let hy = Measured::from_samples("sqdata hybrid (redis, then the files, fsync)", &mut b, 200, "tick");
    let fm = Measured::from_samples("files alone (fsync, same run)", &mut f, 200, "tick");
    out.push(Scenario {
        name: "hybrid update_extremes(200), 20 changed".into(),
        target_p95_us: None,
        note: format!(
            "a write pays both stores: hybrid / (redis + files) P50 {:.2}x; reported, no target",
            hy.p50_us / (alone.p50_us + fm.p50_us)
        ),
        results: vec![hy, alone, fm],
    });

    eprintln!("running: rollout rollback (200 positions + a year of deals)");
    let rb = BookId::new("55009729", "bench_rollback")?;
    let rcodes: Vec<Code> = data::position_snapshot(200).positions.keys().copied().collect();
    let days = sqdata::sample::weekdays(NaiveDate::from_ymd_opt(2025, 1, 2).unwrap_or_default(), 250);
    let deals = sqdata::sample::deals(&rb, &rcodes, &days, 40, "b");
    sqdata::sample::seed_book(
        hybrid,
        &rb,
        &sqdata::sample::positions(&rcodes, days[249]),
        &deals,
        &sqdata::sample::assets(&days),
    )
    .await?;
    let account = [rb.account.to_string()];
    let mut s = Vec::new();
    for (k, code) in rcodes.iter().take(3).enumerate() {
        // the server ahead of the files by one raised stop, as after a day of dual writes
        let t = PriceTick { code: *code, high: 500.0 + k as f64, low: 1.0 };
        h.primary().positions.update_extremes(&rb, &[t]).await?;
        let t0 = Instant::now();
        h.rollback_to_files(Some(&account), false).await?;
        s.push(t0.elapsed());
        h.set_stage(Some(&account), Stage::Writes)?;
    }
    let m = Measured::from_samples("sqdata rollout rollback (verify + sync + switch)", &mut s, 1, "rollback");
    out.push(Scenario {
        name: "rollout rollback, 200 positions + 10k deals".into(),
        target_p95_us: Some(30e6),
        note: format!("{} deals over 250 days, 250 equity rows; the review's figure is 30 s", deals.len()),
        results: vec![m],
    });
    Ok(out)
}
