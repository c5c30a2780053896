//! `sqdata bars …`.

use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use sqdata::{Adjust, BarKey, BarSeries, BarWriteMode, Code, Period, TimeRange, kline};

use super::Ctx;
use crate::out;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Bars {
    /// Import SilverQuant K-line CSVs (a kline folder, or single files).
    Import {
        /// A folder of <code>.csv files (daily, forward-adjusted).
        #[arg(long)]
        kline_dir: Option<PathBuf>,
        /// One CSV file; the code is taken from the file name unless --code is given.
        #[arg(long)]
        file: Vec<PathBuf>,
        #[arg(long)]
        code: Option<String>,
        #[arg(long, default_value = "1d")]
        period: String,
        #[arg(long, default_value = "qfq")]
        adjust: String,
        /// Merge into stored bars instead of replacing the series.
        #[arg(long)]
        upsert: bool,
    },
    /// One series.
    Load {
        #[arg(long)]
        code: String,
        #[arg(long, default_value = "1d")]
        period: String,
        #[arg(long, default_value = "qfq")]
        adjust: String,
        /// First bar time (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS).
        #[arg(long)]
        from: Option<String>,
        /// Last bar time.
        #[arg(long)]
        to: Option<String>,
    },
    /// Count, first and last of every stored series.
    Overview,
}

#[derive(Serialize, Default)]
struct ImportReport {
    series: usize,
    bars: u64,
    errors: Vec<(String, String)>,
}

pub(crate) async fn run(ctx: &Ctx, a: Bars) -> anyhow::Result<ExitCode> {
    let stores = ctx.stores()?;
    match a {
        Bars::Import { kline_dir, file, code, period, adjust, upsert } => {
            let period: Period = period.parse()?;
            let adjust: Adjust = adjust.parse()?;
            let mode = if upsert { BarWriteMode::Upsert } else { BarWriteMode::Replace };
            let mut r = ImportReport::default();
            let mut series: Vec<(String, sqdata::Result<BarSeries>)> = Vec::new();
            if let Some(dir) = kline_dir {
                let loaded = tokio::task::spawn_blocking(move || kline::load_kline_dir(&dir)).await??;
                for (p, s) in loaded {
                    series.push((
                        p.display().to_string(),
                        s.map(|s| BarSeries { key: BarKey { period, adjust, ..s.key }, ..s }),
                    ));
                }
            }
            for f in file {
                let c = match &code {
                    Some(c) => Code::parse(c)?,
                    None => Code::parse(f.file_stem().and_then(|s| s.to_str()).unwrap_or_default())?,
                };
                let s = kline::read_kline_csv(&f).map(|bars| BarSeries { key: BarKey::new(c, period, adjust), bars });
                series.push((f.display().to_string(), s));
            }
            // Bad files are skipped with their reason; the good ones go in
            // one bulk write (the file store syncs them in groups).
            let mut good: Vec<BarSeries> = Vec::with_capacity(series.len());
            let mut seen = std::collections::HashSet::new();
            for (path, s) in series {
                match s.and_then(|s| s.validate().map(|()| s)) {
                    Ok(s) if !seen.insert(s.key) => {
                        r.errors.push((path, format!("{} given twice; the first file was imported", s.key)))
                    }
                    Ok(s) => good.push(s),
                    Err(e) => r.errors.push((path, e.to_string())),
                }
            }
            // in groups, so each call stays well inside the stores' per-call timeouts
            for group in good.chunks(256) {
                r.bars += stores.bars.save_bars_batch(group, mode).await?;
                r.series += group.len();
            }
            out::emit(ctx.format, &r, || {
                let mut t = format!("{} series, {} bars", r.series, r.bars);
                for (p, e) in &r.errors {
                    t.push_str(&format!("\nskipped {p}: {e}"));
                }
                t
            })?;
            return Ok(if r.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(3) });
        }
        Bars::Load { code, period, adjust, from, to } => {
            let key = BarKey::new(Code::parse(&code)?, period.parse()?, adjust.parse()?);
            let range = TimeRange {
                from: from.map(|s| sqdata::validate::datetime("from", &s)).transpose()?,
                to: to.map(|s| sqdata::validate::datetime("to", &s)).transpose()?,
            };
            let bars = stores.bars.load_bars(&key, range).await?;
            let s = BarSeries { key, bars };
            out::emit(ctx.format, &s, || {
                let mut t = format!("{} {} bars\n", s.key, s.bars.len());
                for b in &s.bars {
                    t.push_str(&format!(
                        "{} {} {} {} {} {} {}\n",
                        b.datetime, b.open, b.high, b.low, b.close, b.volume, b.amount
                    ));
                }
                t
            })?;
        }
        Bars::Overview => {
            let ov = stores.bars.overview().await?;
            out::emit(ctx.format, &ov, || {
                ov.iter()
                    .map(|o| format!("{} {} bars {} .. {}", o.key, o.count, o.first, o.last))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
