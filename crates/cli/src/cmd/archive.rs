//! `sqdata archive …`: old deals and bars to Parquet on MinIO/S3, and back.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqdata::{DateRange, Table};

use super::{Ctx, parse_date};
use crate::out;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum TableArg {
    Deals,
    Bars,
}

impl From<TableArg> for Table {
    fn from(t: TableArg) -> Table {
        match t {
            TableArg::Deals => Table::Deals,
            TableArg::Bars => Table::Bars,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Archive {
    /// Move rows older than a day to Parquet; each part is read back and
    /// checked before its rows leave the store.
    Run {
        #[arg(long, value_enum)]
        table: TableArg,
        /// Rows before this day (YYYY-MM-DD) move.
        #[arg(long)]
        older_than: String,
    },
    /// Write archived rows back into the store (idempotent; the archive keeps them).
    Restore {
        #[arg(long, value_enum)]
        table: TableArg,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
    /// Re-read every part against the manifest.
    Verify,
    /// The manifest: every part, its rows, size and time span.
    List,
}

fn bar() -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} partitions, {prefix} rows  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

fn show(pb: &ProgressBar, p: &sqdata::archive::Progress) {
    pb.set_length(p.total);
    pb.set_position(p.done);
    pb.set_prefix(p.rows.to_string());
}

pub(crate) async fn run(ctx: &Ctx, a: Archive) -> anyhow::Result<ExitCode> {
    let c = ctx.config()?;
    let archive = sqdata::open_archive(&c).context("opening the archive")?;
    let f = ctx.format;
    match a {
        Archive::Run { table, older_than } => {
            let day = parse_date("older_than", &older_than)?;
            let stores = sqdata::open(&c)?;
            let pb = bar();
            pb.set_message("archiving");
            let progress = |p: &sqdata::archive::Progress| show(&pb, p);
            let r = archive.archive(&stores, table.into(), day, &progress).await;
            pb.finish_and_clear();
            let r = r?;
            out::emit(f, &r, || {
                format!(
                    "{} rows of {} before {day} in {} parts ({} bytes) at {}; {} rows removed from the store",
                    r.rows_archived,
                    Table::from(table),
                    r.parts_written,
                    r.bytes,
                    archive.location(),
                    r.rows_deleted
                )
            })?;
        }
        Archive::Restore { table, from, to } => {
            let range = DateRange {
                from: from.map(|s| parse_date("from", &s)).transpose()?,
                to: to.map(|s| parse_date("to", &s)).transpose()?,
            };
            let stores = sqdata::open(&c)?;
            let pb = bar();
            pb.set_message("restoring");
            let progress = |p: &sqdata::archive::Progress| show(&pb, p);
            let r = archive.restore(&stores, table.into(), range, &progress).await;
            pb.finish_and_clear();
            let r = r?;
            out::emit(f, &r, || format!("{} rows restored from {} parts", r.rows_restored, r.parts_read))?;
        }
        Archive::Verify => {
            let v = archive.verify().await?;
            out::emit(f, &v, || {
                let mut s = format!("{} parts, {} rows at {}: ", v.parts, v.rows, archive.location());
                if v.problems.is_empty() {
                    s += "all match the manifest";
                }
                for p in &v.problems {
                    s += &format!("\n  {}: {}", p.path, p.problem);
                }
                s
            })?;
            return Ok(if v.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) });
        }
        Archive::List => {
            let m = archive.manifest().await?;
            out::emit(f, &m, || {
                m.parts
                    .iter()
                    .map(|(path, p)| format!("{path}  {} rows  {} B  {} .. {}", p.rows, p.bytes, p.first, p.last))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
