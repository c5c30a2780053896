//! `verify`, `migrate` and `rollout`: moving a live setup from the files to
//! the servers and back.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqdata::Domain;
use sqdata::hybrid::{Hybrid, Promotion, Stage, Truth, VerifyMode, VerifyOptions, VerifyReport};
use sqdata::migrate::{self, MigrateOptions, Progress};
use sqdata::{Backend, BookId, HealthCheck};

use super::{Ctx, parse_date, today};
use crate::out;

/// Exit code when a verification found differences it did not repair.
const DIFFERENCES: u8 = 5;

fn hybrid(ctx: &Ctx) -> anyhow::Result<Arc<Hybrid>> {
    let c = ctx.config()?;
    let opened = sqdata::open_all(&c).with_context(|| format!("opening the {} tier", c.tier))?;
    opened.hybrid.ok_or_else(|| {
        anyhow::anyhow!(
            "nothing is routed to a server (tier {}): there is nothing to compare the files with; \
             set tier = \"mvp\" or route domains in [stores]",
            c.tier
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TruthArg {
    /// The files.
    File,
    /// The server (Redis / ClickHouse).
    Primary,
}

/// `sqdata verify`.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// Compare everything: per-partition digests, field diffs where they differ (the default).
    #[arg(long, conflicts_with = "incremental")]
    full: bool,
    /// Compare today's changes (or --date's) field by field, and positions.
    #[arg(long)]
    incremental: bool,
    /// The day of an incremental verification (YYYYMMDD or YYYY-MM-DD).
    #[arg(long, requires = "incremental")]
    date: Option<String>,
    /// Rewrite what differs on the side that is not the source of truth.
    #[arg(long)]
    repair: bool,
    /// Which side is right.
    #[arg(long, value_enum, default_value_t = TruthArg::File)]
    source_of_truth: TruthArg,
    /// Only these accounts (repeatable).
    #[arg(long)]
    account: Vec<String>,
    /// Only these books, as ACCOUNT/BOOK (repeatable).
    #[arg(long)]
    book: Vec<String>,
    /// Only these domains: positions, deals, assets, bars (repeatable).
    #[arg(long)]
    domain: Vec<String>,
    /// Differences listed (all are counted).
    #[arg(long, default_value_t = 200)]
    max_listed: usize,
    /// With `--repair --source-of-truth primary`: also delete from the files
    /// what only they hold (listed before anything is deleted). Without it
    /// a repair of the files only adds and updates.
    #[arg(long)]
    prune: bool,
}

fn books(list: &[String]) -> anyhow::Result<Option<Vec<BookId>>> {
    if list.is_empty() {
        return Ok(None);
    }
    Ok(Some(list.iter().map(|b| b.parse::<BookId>()).collect::<sqdata::Result<Vec<_>>>()?))
}

fn domains(list: &[String]) -> anyhow::Result<Vec<Domain>> {
    if list.is_empty() {
        return Ok(Domain::DURABLE.to_vec());
    }
    list.iter()
        .map(|d| match d.parse::<Domain>() {
            Ok(d) if d.durable() => Ok(d),
            _ => Err(sqdata::Error::invalid("domain", d, "expected positions, deals, assets or bars").into()),
        })
        .collect()
}

fn print_verify(ctx: &Ctx, r: &VerifyReport) -> anyhow::Result<ExitCode> {
    out::emit(ctx.format, r, || r.render_text())?;
    Ok(if r.consistent() { ExitCode::SUCCESS } else { ExitCode::from(DIFFERENCES) })
}

pub(crate) async fn verify(ctx: &Ctx, a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let _ = a.full;
    let mode = if a.incremental {
        VerifyMode::Incremental(match &a.date {
            Some(d) => parse_date("date", d)?,
            None => today(),
        })
    } else {
        VerifyMode::Full
    };
    let opts = VerifyOptions {
        mode,
        repair: a.repair,
        truth: match a.source_of_truth {
            TruthArg::File => Truth::Secondary,
            TruthArg::Primary => Truth::Primary,
        },
        domains: domains(&a.domain)?,
        books: books(&a.book)?,
        accounts: (!a.account.is_empty()).then(|| a.account.clone()),
        series: None,
        max_listed: a.max_listed,
        prune: a.prune,
    };
    let h = hybrid(ctx)?;
    if opts.repair && opts.prune && opts.truth == Truth::Primary {
        list_prunes(&h, &opts).await?;
    }
    let r = h.verify(&opts).await?;
    print_verify(ctx, &r)
}

/// Before a pruning repair of the files: what it will delete, on stderr.
async fn list_prunes(h: &Hybrid, opts: &VerifyOptions) -> anyhow::Result<()> {
    let dry = h.verify(&VerifyOptions { repair: false, max_listed: usize::MAX, ..opts.clone() }).await?;
    let gone: Vec<_> = dry.differences.iter().filter(|d| d.primary.is_none() && d.field == "(record)").collect();
    eprintln!("--prune: deleting {} records only the files hold:", gone.len());
    for d in gone {
        eprintln!("  {} {} {}", d.domain, d.partition, d.key);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SourceArg {
    /// SilverQuant-compatible files.
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TargetArg {
    /// Positions.
    Redis,
    /// Deals, equity curve and bars.
    Clickhouse,
}

/// `sqdata migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// Where the data is now.
    #[arg(long, value_enum, default_value_t = SourceArg::File)]
    source: SourceArg,
    /// Where it goes.
    #[arg(long, value_enum, required_unless_present_any = ["rollback", "list"])]
    target: Option<TargetArg>,
    /// Only this day's deals, equity and bars (YYYYMMDD); positions are always whole.
    #[arg(long)]
    date: Option<String>,
    /// Only this account's books.
    #[arg(long)]
    account: Option<String>,
    /// Only this book (with --account).
    #[arg(long, requires = "account")]
    book: Option<String>,
    /// Undo the latest migration (or --backup's): the target's scope becomes what it was before.
    #[arg(long, conflicts_with_all = ["target", "date", "account", "book"])]
    rollback: bool,
    /// The backup folder to roll back to.
    #[arg(long, requires = "rollback")]
    backup: Option<PathBuf>,
    /// List the migration backups.
    #[arg(long)]
    list: bool,
}

/// A progress bar on stderr with rate and ETA; indicatif draws nothing
/// when stderr is not a terminal.
#[derive(Debug)]
struct Bar(ProgressBar);

impl Progress for Bar {
    fn begin(&self, phase: &str, units: u64) {
        self.0.reset();
        self.0.set_length(units);
        self.0.set_position(0);
        self.0.set_message(phase.to_string());
    }
    fn advance(&self, units: u64, _records: u64) {
        self.0.inc(units);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

pub(crate) async fn migrate(ctx: &Ctx, a: MigrateArgs) -> anyhow::Result<ExitCode> {
    let _ = a.source;
    let c = ctx.config()?;
    if a.list {
        let list = migrate::backups(&c)?;
        let rows: Vec<_> = list.iter().map(|(p, m)| serde_json::json!({ "path": p, "manifest": m })).collect();
        out::emit(ctx.format, &rows, || {
            list.iter()
                .map(|(p, m)| {
                    format!(
                        "{}  {}  {} books, {} series, {}{}",
                        m.id,
                        m.target,
                        m.books.len(),
                        m.series.len(),
                        if m.completed { "completed" } else { "INCOMPLETE" },
                        if m.rolled_back { ", rolled back" } else { "" }
                    ) + &format!("  ({})", p.display())
                })
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if a.rollback {
        let r = migrate::rollback(&c, a.backup.as_deref()).await?;
        out::emit(ctx.format, &r, || {
            format!(
                "rolled back {} in {} ms: {} records restored in the target\n{}",
                r.manifest.id,
                r.elapsed_ms,
                r.restore.total_repaired(),
                r.restore.render_text()
            )
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let target = match a.target {
        Some(TargetArg::Redis) => Backend::Redis,
        Some(TargetArg::Clickhouse) => Backend::Clickhouse,
        None => bail!("--target is required"),
    };
    let opts = MigrateOptions {
        target,
        date: a.date.as_deref().map(|d| parse_date("date", d)).transpose()?,
        books: match (&a.account, &a.book) {
            (Some(acc), Some(b)) => Some(vec![BookId::new(acc, b)?]),
            _ => None,
        },
        accounts: a.account.clone().map(|a| vec![a]),
    };
    let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{msg:>22} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    let r = migrate::migrate(&c, &opts, &Bar(pb)).await?;
    out::emit(ctx.format, &r, || {
        let copied: Vec<String> = r.manifest.copied.iter().map(|(d, n)| format!("{n} {d}")).collect();
        let settled = match &r.settled {
            Some(s) if s.differences > 0 => format!(
                "after the adoption: {} differences (writes that reached only the files while the processes \
                 switched), {} records copied to the server\n",
                s.differences, s.repaired
            ),
            Some(s) => format!("after the adoption: {} books and series checked again, consistent\n", s.checked),
            None => String::new(),
        };
        format!(
            "migrated {} books, {} bar series to {} in {} ms: {}\nbackup: {}\n{}{settled}",
            r.manifest.books.len(),
            r.manifest.series.len(),
            r.manifest.target,
            r.elapsed_ms,
            if copied.is_empty() { "nothing to copy".into() } else { copied.join(", ") },
            r.backup.display(),
            r.verify.render_text()
        )
    })?;
    Ok(if r.verify.total_differences() == 0 { ExitCode::SUCCESS } else { ExitCode::from(DIFFERENCES) })
}

/// `sqdata rollout`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Rollout {
    /// Stage of every account, and the state of every server-backed domain.
    Status,
    /// Move accounts one stage on (files → shadow → reads → writes → full),
    /// after checking that the server holds what the files hold.
    Promote {
        /// Accounts (repeatable; none: everyone).
        #[arg(long)]
        account: Vec<String>,
        /// Go to this stage instead of the next.
        #[arg(long)]
        to: Option<Stage>,
        /// Promote even when verification finds differences.
        #[arg(long)]
        force: bool,
    },
    /// Back to the files in one command, after bringing them up to date from the server.
    Rollback {
        /// Accounts (repeatable; none: everyone).
        #[arg(long)]
        account: Vec<String>,
        /// Also delete from the files what only they hold (listed first).
        /// Without it the files only gain and update what the server has.
        #[arg(long)]
        prune: bool,
    },
}

pub(crate) async fn rollout(ctx: &Ctx, r: Rollout) -> anyhow::Result<ExitCode> {
    let h = hybrid(ctx)?;
    match r {
        Rollout::Status => {
            let stages = sqdata::hybrid::effective_stages(h.config())?;
            let health = h.health().await;
            let v = serde_json::json!({ "stages": stages, "hybrid": health });
            out::emit(ctx.format, &v, || {
                let mut s = String::from("stages:\n");
                for (a, st) in &stages {
                    s += &format!("  {:<16} {}\n", if a == "*" { "(everyone else)" } else { a }, st.as_str());
                }
                s + &super::domain_table(&h.status(), h.active_domains())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Rollout::Promote { account, to, force } => {
            let accounts = (!account.is_empty()).then_some(account);
            let who = accounts.as_ref().map(|a| a.join(", ")).unwrap_or_else(|| "everyone".into());
            match h.promote(accounts.as_deref(), to, force).await.context("promoting")? {
                Promotion::Differs { check } => {
                    out::emit(ctx.format, &check, || check.render_text())?;
                    bail!(
                        "not promoted: the server differs from the files in {} places; \
                         run `sqdata migrate` or `sqdata verify --repair`, or pass --force",
                        check.total_differences()
                    );
                }
                Promotion::Promoted { from, to, state, .. } => {
                    out::emit(ctx.format, &state, || format!("{} → {}: {who}", from.as_str(), to.as_str()))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Rollout::Rollback { account, prune } => {
            let accounts = (!account.is_empty()).then_some(account);
            if prune {
                let opts = VerifyOptions {
                    truth: Truth::Primary,
                    repair: true,
                    prune: true,
                    accounts: accounts.clone(),
                    ..VerifyOptions::default()
                };
                list_prunes(&h, &opts).await?;
            }
            let r = h.rollback_to_files(accounts.as_deref(), prune).await?;
            out::emit(ctx.format, &r, || {
                let mut s = format!(
                    "back on the files ({}) in {} ms\n",
                    accounts.map(|a| a.join(", ")).unwrap_or_else(|| "everyone".into()),
                    r.elapsed_ms
                );
                if let Some(v) = &r.synced {
                    s += &format!(
                        "brought the files up to date: {} differences, {} records rewritten from the server\n",
                        v.total_differences(),
                        v.total_repaired()
                    );
                }
                for n in &r.notes {
                    s += &format!("note: {n}\n");
                }
                s
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `sqdata backup`.
#[derive(Debug, clap::Args)]
pub(crate) struct BackupArgs {
    /// Where archives go (default: <file.root>/_backups/daily); the newest of each of the last 7 days is kept.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// List the archives instead.
    #[arg(long)]
    list: bool,
}

pub(crate) async fn backup(ctx: &Ctx, a: BackupArgs) -> anyhow::Result<ExitCode> {
    let c = ctx.config()?;
    let dir = a.dir.unwrap_or_else(|| sqdata::backup::default_dir(&c));
    if a.list {
        let list = sqdata::backup::list(&dir)?;
        out::emit(ctx.format, &list, || list.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join("\n"))?;
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let r = sqdata::backup::backup(&c, &dir).await?;
    out::emit(ctx.format, &r, || {
        let parts: Vec<String> = r
            .manifest
            .parts
            .iter()
            .map(|p| {
                let recs: Vec<String> = p.records.iter().map(|(d, n)| format!("{n} {d}")).collect();
                format!("  {:<10} {} books, {} series: {}", p.backend.to_string(), p.books, p.series, recs.join(", "))
            })
            .collect();
        format!(
            "backup {} ({} bytes, sha256 {}) in {} ms\n{}{}",
            r.archive.display(),
            r.bytes,
            r.sha256,
            r.elapsed_ms,
            parts.join("\n"),
            if r.pruned.is_empty() { String::new() } else { format!("\nremoved {} older archives", r.pruned.len()) }
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `sqdata restore`.
#[derive(Debug, clap::Args)]
pub(crate) struct RestoreArgs {
    /// The archive (sqdata-backup-….tar.gz; its .sha256 beside it is checked).
    archive: PathBuf,
    /// Only these backends: file, redis, clickhouse (repeatable).
    #[arg(long)]
    only: Vec<String>,
}

pub(crate) async fn restore(ctx: &Ctx, a: RestoreArgs) -> anyhow::Result<ExitCode> {
    let c = ctx.config()?;
    let only: Vec<Backend> = a
        .only
        .iter()
        .map(|b| match b.as_str() {
            "file" => Ok(Backend::File),
            "redis" => Ok(Backend::Redis),
            "clickhouse" => Ok(Backend::Clickhouse),
            other => Err(sqdata::Error::invalid("only", other, "expected file, redis or clickhouse")),
        })
        .collect::<sqdata::Result<_>>()?;
    let r = sqdata::backup::restore(&c, &a.archive, (!only.is_empty()).then_some(&only[..])).await?;
    out::emit(ctx.format, &r, || {
        let mut s = format!("restored {} in {} ms\n", r.archive.display(), r.elapsed_ms);
        for (b, v) in &r.restored {
            s +=
                &format!("  {:<10} {} records rewritten; verified: 0 differences\n", b.to_string(), v.total_repaired());
        }
        s
    })?;
    Ok(ExitCode::SUCCESS)
}
