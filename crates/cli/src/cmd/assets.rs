//! `sqdata assets …`.

use std::process::ExitCode;

use serde::Serialize;
use sqdata::{AssetRow, AssetStoreExt as _, DateRange};

use super::{BookArgs, Ctx, parse_date, today};
use crate::out;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Assets {
    /// The equity curve of a book.
    Show {
        #[command(flatten)]
        book: BookArgs,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
    /// Set one day's total asset (a second call for the same day replaces it).
    Upsert {
        #[command(flatten)]
        book: BookArgs,
        /// The day (default: today in Asia/Shanghai).
        #[arg(long)]
        date: Option<String>,
        /// Total asset in yuan.
        #[arg(long)]
        asset: f64,
    },
}

#[derive(Serialize)]
struct Shown {
    book: String,
    rows: Vec<AssetRow>,
}

pub(crate) async fn run(ctx: &Ctx, a: Assets) -> anyhow::Result<ExitCode> {
    let stores = ctx.stores()?;
    match a {
        Assets::Show { book, from, to } => {
            let id = book.id()?;
            let range = DateRange {
                from: from.map(|s| parse_date("from", &s)).transpose()?,
                to: to.map(|s| parse_date("to", &s)).transpose()?,
            };
            let rows = stores.assets.assets(&id, range).await?;
            let shown = Shown { book: id.to_string(), rows };
            out::emit(ctx.format, &shown, || {
                shown.rows.iter().map(|r| format!("{} {:.2}", r.date, r.asset)).collect::<Vec<_>>().join("\n")
            })?;
        }
        Assets::Upsert { book, date, asset } => {
            let date = match date {
                Some(s) => parse_date("date", &s)?,
                None => today(),
            };
            let row = AssetRow { date, asset };
            stores.assets.upsert_asset(&book.id()?, row).await?;
            out::emit(ctx.format, &row, || format!("{date} {asset:.2}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
