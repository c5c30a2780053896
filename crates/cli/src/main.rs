//! `sqdata`: the command line of sqdata.

mod cmd;
mod out;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::out::Format;

/// sqdata — the data module of SilverQuant.
#[derive(Debug, Parser)]
#[command(name = "sqdata", version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: ./sqdata.toml if it exists).
    #[arg(long, global = true, env = "SQDATA_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder of the file backend (overrides file.root).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Output format of read commands.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a default sqdata.toml and create the data folder.
    Init(cmd::init::Args),
    /// Import a SilverQuant cache folder.
    #[command(subcommand)]
    Import(cmd::silverquant::Import),
    /// Export a book as a SilverQuant cache folder.
    #[command(subcommand)]
    Export(cmd::silverquant::Export),
    /// Hot position state of a book.
    #[command(subcommand)]
    Positions(cmd::positions::Positions),
    /// Order and deal records.
    #[command(subcommand)]
    Deals(cmd::deals::Deals),
    /// The equity curve.
    #[command(subcommand)]
    Assets(cmd::assets::Assets),
    /// K-line history.
    #[command(subcommand)]
    Bars(cmd::bars::Bars),
    /// Accounts, strategies, versioned parameters and the audit trail (SQLite, or MySQL on the full tier).
    #[command(subcommand)]
    Registry(cmd::registry::Registry),
    /// Old deals and bars to Parquet on MinIO/S3 (or a directory), and back.
    #[cfg(feature = "minio")]
    #[command(subcommand)]
    Archive(cmd::archive::Archive),
    /// A simulated trading day on a fresh book, then the resulting state.
    Demo(cmd::demo::Args),
    /// Liveness and latency of every configured backend, and each domain's state.
    Health,
    /// Compare the files with the servers (and repair).
    #[cfg(feature = "hybrid")]
    Verify(cmd::hybrid::VerifyArgs),
    /// Move the files' data to Redis or ClickHouse (backup, copy, verify; --rollback).
    #[cfg(feature = "hybrid")]
    Migrate(cmd::hybrid::MigrateArgs),
    /// A logical backup of every configured store in one checksummed archive (7 daily kept).
    #[cfg(feature = "hybrid")]
    Backup(cmd::hybrid::BackupArgs),
    /// Restore every configured store from a backup, verified before success is reported.
    #[cfg(feature = "hybrid")]
    Restore(cmd::hybrid::RestoreArgs),
    /// Gray release: per-account stages from the files to the servers, and back.
    #[cfg(feature = "hybrid")]
    #[command(subcommand)]
    Rollout(cmd::hybrid::Rollout),
    /// Each backend up or down, latency, memory, disk, degrade state, failures
    /// (`--format text|json|prometheus`).
    Monitor,
    /// The HTTP server: the REST API v1 under /api/v1 (docs at /api/v1/docs/), /healthz, /readyz, /metrics.
    Serve(cmd::serve::Args),
    /// The REST API's users: add, list, passwd, disable, enable, role, grant, grants, unlock.
    #[command(subcommand)]
    User(cmd::users::Users),
    /// The REST API's keys for machine clients: create (shown once), list, revoke.
    #[command(subcommand)]
    ApiKey(cmd::users::ApiKeys),
    /// Benchmarks: P50/P95/P99 and throughput next to the SilverQuant-way baseline.
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.format;
    // one worker per core this process may run on (a `taskset` or a
    // container's CPU limit counts), two at most: more only contend
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 2);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sqdata: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => out::report_error(format, &e),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = cmd::Ctx { config_path: cli.config, data_dir: cli.data_dir, format: cli.format };
    match cli.command {
        Command::Init(a) => cmd::init::run(&ctx, a),
        Command::Import(a) => cmd::silverquant::import(&ctx, a).await,
        Command::Export(a) => cmd::silverquant::export(&ctx, a).await,
        Command::Positions(a) => cmd::positions::run(&ctx, a).await,
        Command::Deals(a) => cmd::deals::run(&ctx, a).await,
        Command::Assets(a) => cmd::assets::run(&ctx, a).await,
        Command::Bars(a) => cmd::bars::run(&ctx, a).await,
        Command::Registry(a) => cmd::registry::run(&ctx, a).await,
        #[cfg(feature = "minio")]
        Command::Archive(a) => cmd::archive::run(&ctx, a).await,
        Command::Demo(a) => cmd::demo::run(&ctx, a).await,
        Command::Health => cmd::health(&ctx).await,
        #[cfg(feature = "hybrid")]
        Command::Verify(a) => cmd::hybrid::verify(&ctx, a).await,
        #[cfg(feature = "hybrid")]
        Command::Migrate(a) => cmd::hybrid::migrate(&ctx, a).await,
        #[cfg(feature = "hybrid")]
        Command::Rollout(a) => cmd::hybrid::rollout(&ctx, a).await,
        #[cfg(feature = "hybrid")]
        Command::Backup(a) => cmd::hybrid::backup(&ctx, a).await,
        #[cfg(feature = "hybrid")]
        Command::Restore(a) => cmd::hybrid::restore(&ctx, a).await,
        Command::Bench(a) => cmd::bench::run(&ctx, a).await,
        Command::Monitor => cmd::serve::monitor(&ctx).await,
        Command::Serve(a) => cmd::serve::serve(&ctx, a).await,
        Command::User(a) => cmd::users::users(&ctx, a).await,
        Command::ApiKey(a) => cmd::users::api_keys(&ctx, a).await,
    }
}
