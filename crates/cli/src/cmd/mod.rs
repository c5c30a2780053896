//! One module per subcommand.

pub(crate) mod assets;
pub(crate) mod bars;
pub(crate) mod bench;
pub(crate) mod deals;
pub(crate) mod demo;
pub(crate) mod init;
pub(crate) mod positions;
pub(crate) mod silverquant;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use sqdata::{BookId, Config, Stores};

use crate::out::{self, Format};

/// What every command gets.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) config_path: Option<PathBuf>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) format: Format,
}

impl Ctx {
    pub(crate) fn config(&self) -> anyhow::Result<Config> {
        let mut c = Config::load(self.config_path.as_deref())?;
        if let Some(d) = &self.data_dir {
            c.file.root = d.clone();
        }
        Ok(c)
    }

    pub(crate) fn stores(&self) -> anyhow::Result<Stores> {
        let c = self.config()?;
        sqdata::open(&c).with_context(|| format!("opening the {} tier", c.tier))
    }
}

/// `--account A --book B`.
#[derive(Debug, clap::Args)]
pub(crate) struct BookArgs {
    /// Broker account id.
    #[arg(long)]
    pub(crate) account: String,
    /// Book (strategy cache folder name).
    #[arg(long)]
    pub(crate) book: String,
}

impl BookArgs {
    pub(crate) fn id(&self) -> anyhow::Result<BookId> {
        Ok(BookId::new(&self.account, &self.book)?)
    }
}

/// Today on the exchange's calendar (Asia/Shanghai, UTC+8, no DST).
pub(crate) fn today() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(8)).date_naive()
}

pub(crate) fn parse_date(field: &str, s: &str) -> anyhow::Result<NaiveDate> {
    Ok(sqdata::validate::date(field, s)?)
}

pub(crate) async fn health(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let stores = ctx.stores()?;
    let h = stores.health().await;
    let all_up = h.iter().all(|b| b.up);
    out::emit(ctx.format, &h, || {
        h.iter()
            .map(|b| {
                format!(
                    "{:<12} {:<4} {:>8} µs  {}",
                    b.backend,
                    if b.up { "up" } else { "DOWN" },
                    b.latency.as_micros(),
                    b.error.clone().unwrap_or_else(|| serde_json::to_string(&b.details).unwrap_or_default())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(if all_up { ExitCode::SUCCESS } else { ExitCode::from(4) })
}
