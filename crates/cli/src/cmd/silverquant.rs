//! `sqdata import silverquant` and `sqdata export silverquant`.

use std::path::PathBuf;
use std::process::ExitCode;

use sqdata::silverquant::{self, ImportOptions};

use super::{BookArgs, Ctx};
use crate::out;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Import {
    /// Positions, prices, deals, assets and K-lines of one SilverQuant cache folder.
    Silverquant {
        /// The strategy's cache folder, e.g. SilverQuant/_cache/prod_pwc.
        #[arg(long)]
        cache_dir: PathBuf,
        #[command(flatten)]
        book: BookArgs,
        /// K-line folder(s); default: _daily_*/kline in and above the cache folder.
        #[arg(long)]
        kline_dir: Vec<PathBuf>,
        /// Skip K-lines.
        #[arg(long)]
        no_bars: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Export {
    /// Write a book as files SilverQuant reads unchanged.
    Silverquant {
        #[command(flatten)]
        book: BookArgs,
        /// The folder to write (existing files are updated in place).
        #[arg(long)]
        out: PathBuf,
        /// Also write daily qfq K-lines as <code>.csv into this folder.
        #[arg(long)]
        kline_dir: Option<PathBuf>,
    },
}

pub(crate) async fn import(ctx: &Ctx, a: Import) -> anyhow::Result<ExitCode> {
    let Import::Silverquant { cache_dir, book, kline_dir, no_bars } = a;
    let stores = ctx.stores()?;
    let opts = ImportOptions {
        cache_dir,
        book: book.id()?,
        kline_dirs: (!kline_dir.is_empty()).then_some(kline_dir),
        skip_bars: no_bars,
    };
    let r = silverquant::import(&stores, &opts).await?;
    out::emit(ctx.format, &r, || {
        let mut t = format!(
            "imported into {}\npositions: {} ({} held) from {}\ndeals: {} new, {} already there\nassets: {} rows\nbars: {} series, {} bars from {:?}",
            r.book,
            r.positions,
            r.held,
            r.positions_source.as_deref().unwrap_or("(no positions file)"),
            r.deals_inserted,
            r.deals_duplicate,
            r.assets,
            r.bar_series,
            r.bars,
            r.kline_dirs
        );
        if !r.orphan_prices.is_empty() {
            t.push_str(&format!(
                "\nnot imported: prices of {} codes that are not positions: {:?}",
                r.orphan_prices.len(),
                r.orphan_prices.iter().map(|c| c.to_string()).collect::<Vec<_>>()
            ));
        }
        for (p, e) in &r.bar_errors {
            t.push_str(&format!("\nskipped {p}: {e}"));
        }
        t
    })?;
    Ok(if r.bar_errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) })
}

pub(crate) async fn export(ctx: &Ctx, a: Export) -> anyhow::Result<ExitCode> {
    let Export::Silverquant { book, out: dir, kline_dir } = a;
    let stores = ctx.stores()?;
    let r = silverquant::export(&stores, &book.id()?, &dir, kline_dir.as_deref()).await?;
    out::emit(ctx.format, &r, || {
        format!(
            "wrote {}\npositions: {}\ndeal rows appended: {}\nassets: {}\nkline files: {}",
            r.out, r.positions, r.deals_written, r.assets, r.kline_files
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
