//! `sqdata bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use sqdata_bench::data::Spec;
use sqdata_bench::{Options, Scenario};

use super::Ctx;
use crate::out;

/// Arguments of `bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Folder for generated data (kept between runs; ~350 MB at full size).
    #[arg(long, default_value = "sqdata-bench-data")]
    bench_dir: PathBuf,
    /// Small data (50 codes, 5k deals) for a quick look.
    #[arg(long)]
    quick: bool,
    /// Iterations of the micro scenarios.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Iterations of the whole-market scenarios.
    #[arg(long, default_value_t = 5)]
    market_iterations: usize,
    /// Only scenarios whose name contains this (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Which suite: file (default), redis, clickhouse, hybrid, full (registry and archive), api
    /// (`sqdata serve` under oha), or all (but api).
    #[arg(long, default_value = "file")]
    suite: String,
    /// Keep the ClickHouse benchmark database (sqdata_bench) for inspection.
    #[arg(long)]
    keep_db: bool,
    /// ClickHouse: only ingest the bars and report storage.
    #[arg(long)]
    storage_only: bool,
    /// ClickHouse over the chdb-http shim: no compression, no kept connections.
    #[arg(long)]
    shim: bool,
    /// The ClickHouse to benchmark (database sqdata_bench, dropped afterwards).
    #[arg(long, env = "SQDATA_BENCH_CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    clickhouse_url: String,
    /// The MySQL of the full suite (tables sq_* in its database; the suite's rows are removed).
    #[arg(long, env = "SQDATA_BENCH_MYSQL_URL")]
    mysql_url: Option<String>,
    /// The S3 archive of the full suite: s3://bucket/prefix (with --s3-endpoint and keys).
    #[arg(long, env = "SQDATA_BENCH_S3_URL")]
    s3_url: Option<String>,
    #[arg(long, env = "SQDATA_BENCH_S3_ENDPOINT", default_value = "")]
    s3_endpoint: String,
    #[arg(long, env = "SQDATA_BENCH_S3_ACCESS_KEY", default_value = "")]
    s3_access_key: String,
    #[arg(long, env = "SQDATA_BENCH_S3_SECRET_KEY", default_value = "")]
    s3_secret_key: String,
    /// The api suite's load tool (`cargo install oha`; `cargo xtask bench-api` installs it).
    #[arg(long, env = "SQDATA_BENCH_OHA")]
    oha: Option<PathBuf>,
    /// The api suite: seconds per load run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The api suite: the open loop's request rate.
    #[arg(long, default_value_t = 2000)]
    rate: u32,
    /// The api suite: the closed loop's connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// The api suite: run the server and the load unpinned (default: cores 0 and 1 via taskset).
    #[arg(long)]
    no_pin: bool,
    /// The Redis to benchmark (a private key prefix is used and removed).
    #[arg(long, env = "SQDATA_BENCH_REDIS_URL", default_value = "redis://127.0.0.1:6379/0")]
    redis_url: String,
}

#[derive(Serialize)]
struct Report {
    machine: String,
    scenarios: Vec<Scenario>,
}

pub(crate) async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<ExitCode> {
    let run_file = a.suite == "file" || a.suite == "all";
    let run_redis = a.suite == "redis" || a.suite == "all";
    let run_ch = a.suite == "clickhouse" || a.suite == "all";
    let run_hybrid = a.suite == "hybrid" || a.suite == "all";
    let run_full = a.suite == "full" || a.suite == "all";
    let run_api = a.suite == "api";
    if !run_file && !run_redis && !run_ch && !run_hybrid && !run_full && !run_api {
        return Err(sqdata::Error::invalid(
            "suite",
            &a.suite,
            "expected file, redis, clickhouse, hybrid, full, api or all",
        )
        .into());
    }
    let opts = Options {
        data_dir: a.bench_dir.clone(),
        spec: if a.quick { Spec::small() } else { Spec::full() },
        iterations: a.iterations,
        market_iterations: a.market_iterations,
        only: a.only,
    };
    let mut scenarios = Vec::new();
    if run_file {
        scenarios.extend(sqdata_bench::run_file_suite(&opts).await?);
    }
    if run_redis {
        #[cfg(feature = "redis")]
        scenarios.extend(
            sqdata_bench::redis_suite::run_redis_suite(&sqdata_bench::redis_suite::RedisOptions {
                url: a.redis_url.clone(),
                iterations: a.iterations,
                data_dir: a.bench_dir.clone(),
            })
            .await?,
        );
        #[cfg(not(feature = "redis"))]
        return Err(anyhow::anyhow!("this sqdata was built without Redis; build with `cargo xtask build --tier mvp`"));
    }
    if run_ch {
        #[cfg(feature = "clickhouse")]
        scenarios.extend(
            sqdata_bench::clickhouse_suite::run_clickhouse_suite(&sqdata_bench::clickhouse_suite::ClickHouseOptions {
                url: a.clickhouse_url.clone(),
                iterations: a.iterations.min(500),
                data_dir: a.bench_dir.clone(),
                keep: a.keep_db,
                storage_only: a.storage_only,
                compression: if a.shim { "none".into() } else { "lz4".into() },
                keep_alive: !a.shim,
            })
            .await?,
        );
        #[cfg(not(feature = "clickhouse"))]
        return Err(anyhow::anyhow!(
            "this sqdata was built without ClickHouse; build with `cargo xtask build --tier mvp`"
        ));
    }
    if run_hybrid {
        #[cfg(all(feature = "redis", feature = "clickhouse"))]
        scenarios.extend(
            sqdata_bench::hybrid_suite::run_hybrid_suite(&sqdata_bench::hybrid_suite::HybridOptions {
                redis_url: a.redis_url.clone(),
                clickhouse_url: a.clickhouse_url.clone(),
                iterations: a.iterations,
                data_dir: a.bench_dir.clone(),
            })
            .await?,
        );
        #[cfg(not(all(feature = "redis", feature = "clickhouse")))]
        return Err(anyhow::anyhow!(
            "the hybrid suite needs Redis and ClickHouse built in; build with `cargo xtask build --tier mvp`"
        ));
    }
    if run_full {
        #[cfg(feature = "full")]
        scenarios.extend(
            sqdata_bench::full_suite::run_full_suite(&sqdata_bench::full_suite::FullOptions {
                mysql_url: a.mysql_url.clone(),
                s3: a.s3_url.clone().map(|url| sqdata::ArchiveConfig {
                    url,
                    endpoint: a.s3_endpoint.clone(),
                    access_key: a.s3_access_key.clone(),
                    secret_key: a.s3_secret_key.clone(),
                    ..Default::default()
                }),
                iterations: a.iterations.min(2000),
                deals: if a.quick { 10_000 } else { 100_000 },
                archive_runs: 3,
                data_dir: a.bench_dir.join("full"),
            })
            .await?,
        );
        #[cfg(not(feature = "full"))]
        return Err(anyhow::anyhow!(
            "the full suite needs MySQL and MinIO built in; build with `cargo xtask build --tier full`"
        ));
    }
    if run_api {
        let oha = match &a.oha {
            Some(p) => p.clone(),
            None => find_oha().ok_or_else(|| {
                sqdata::Error::Config(
                    "the api suite needs oha: `cargo xtask bench-api` installs it, or `cargo install oha` and \
                     pass --oha"
                        .into(),
                )
            })?,
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        scenarios.extend(
            sqdata_bench::api_suite::run_api_suite(&sqdata_bench::api_suite::ApiOptions {
                data_dir: a.bench_dir.clone(),
                sqdata: std::env::current_exe()?,
                oha,
                seconds: a.seconds,
                rate: a.rate,
                connections: a.connections,
                cores: (!a.no_pin && cores >= 2).then_some((0, 1)),
                iterations: a.iterations,
            })
            .await?,
        );
    }
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        std::env::consts::ARCH
    );
    let r = Report { machine, scenarios };
    out::emit(ctx.format, &r, || format!("sqdata bench ({})\n{}", r.machine, sqdata_bench::render(&r.scenarios)))?;
    Ok(ExitCode::SUCCESS)
}

/// oha on the PATH, or where `cargo xtask bench-api` installs it.
fn find_oha() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("oha"))
        .find(|p| p.is_file());
    on_path.or_else(|| {
        let home = PathBuf::from(std::env::var_os("HOME")?);
        let p = home.join(".cache/sqdata/tools/bin/oha");
        p.is_file().then_some(p)
    })
}
