//! `sqdata demo`: a simulated trading day on a fresh book.

use std::process::ExitCode;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde::Serialize;
use sqdata::{
    AssetRow, AssetStoreExt as _, BookId, Code, DateRange, Deal, DealKind, DealQuery, Page, PositionSnapshot,
    PriceTick, Quote, ReconcileReport,
};

use super::{Ctx, today};
use crate::cmd::{deals, positions};
use crate::out;

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Account of the demo book.
    #[arg(long, default_value = "demo")]
    account: String,
    /// Book name (default: a fresh day-YYYYmmdd-HHMMSS-mmm).
    #[arg(long)]
    book: Option<String>,
    /// The trading day to simulate (default: today in Asia/Shanghai).
    #[arg(long)]
    date: Option<String>,
}

#[derive(Serialize)]
struct Report {
    book: String,
    date: NaiveDate,
    data_dir: String,
    reconcile: ReconcileReport,
    inc_held_days: bool,
    ticks: usize,
    extreme_changes: usize,
    positions: PositionSnapshot,
    deals: Page<Deal>,
    assets: Vec<AssetRow>,
    quotes: Vec<Quote>,
}

fn at(day: NaiveDate, h: u32, m: u32, s: u32) -> NaiveDateTime {
    day.and_time(NaiveTime::from_hms_opt(h, m, s).unwrap_or(NaiveTime::MIN))
}

#[allow(clippy::too_many_arguments)]
fn order(
    book: &BookId,
    id: &str,
    time: NaiveDateTime,
    code: Code,
    name: &str,
    kind: DealKind,
    remark: &str,
    price: f64,
    volume: u64,
) -> Deal {
    Deal {
        id: id.into(),
        book: book.clone(),
        time,
        code,
        name: name.into(),
        kind,
        remark: remark.into(),
        price,
        volume,
        amount: price * volume as f64,
        strategy: "demo".into(),
    }
}

pub(crate) async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<ExitCode> {
    let stores = ctx.stores()?;
    let cfg = ctx.config()?;
    let name =
        a.book.unwrap_or_else(|| (Utc::now() + chrono::Duration::hours(8)).format("day-%Y%m%d-%H%M%S-%3f").to_string());
    let book = BookId::new(&a.account, &name)?;
    if !stores.positions.snapshot(&book).await?.positions.is_empty() {
        return Err(sqdata::Error::invalid("book", &book, "already has positions; the demo needs a fresh book").into());
    }
    let day = match a.date {
        Some(s) => super::parse_date("date", &s)?,
        None => today(),
    };
    let pab = Code::parse("000001.SZ")?;
    let spdb = Code::parse("600000.SH")?;
    let catl = Code::parse("300750.SZ")?;

    // 08:30 pre-market: the broker holds two codes bought on earlier days.
    let reconcile = stores.positions.reconcile(&book, &[pab, spdb]).await?;
    let inc = stores.positions.inc_held_days(&book, day).await?;

    // 09:35 a limit buy of CATL, filled at once.
    stores
        .deals
        .record_batch(&[
            order(&book, "demo-1", at(day, 9, 35, 0), catl, "宁德时代", DealKind::LimitBuy, "买入委托", 215.5, 100),
            order(&book, "demo-2", at(day, 9, 35, 2), catl, "宁德时代", DealKind::BuyFill, "买入成交", 215.5, 100),
        ])
        .await?;
    stores.positions.new_held(&book, &[catl]).await?;

    // 09:30–14:57 the sell loop: quotes every tick move the extremes.
    let mut ticks = 0;
    let mut changes = 0;
    let path: [(f64, f64, f64); 6] = [
        (11.20, 8.05, 215.5),
        (11.35, 7.98, 216.1),
        (11.28, 7.91, 217.9),
        (11.52, 8.10, 214.2),
        (11.47, 8.21, 218.8),
        (11.40, 8.16, 219.3),
    ];
    let (mut hi, mut lo) = ([f64::MIN; 3], [f64::MAX; 3]);
    for (i, (a_, b_, c_)) in path.into_iter().enumerate() {
        let time = at(day, 9, 30 + i as u32 * 10, 0);
        let last = [a_, b_, c_];
        let mut quotes = Vec::new();
        let mut tk = Vec::new();
        let open = [path[0].0, path[0].1, path[0].2];
        for (j, code) in [pab, spdb, catl].into_iter().enumerate() {
            hi[j] = hi[j].max(last[j]);
            lo[j] = lo[j].min(last[j]);
            quotes.push(Quote {
                code,
                time,
                last: last[j],
                open: open[j],
                high: hi[j],
                low: lo[j],
                pre_close: open[j] - 0.05,
                volume: 1_000_000 + i as u64 * 12_345,
                amount: last[j] * (1_000_000.0 + i as f64 * 12_345.0),
            });
            tk.push(PriceTick::new(code, hi[j], lo[j])?);
        }
        stores.quotes.put_quotes(&quotes).await?;
        changes += stores.positions.update_extremes(&book, &tk).await?.len();
        ticks += 1;
    }

    // 14:50 take profit on SPDB: a market sell, filled.
    stores
        .deals
        .record_batch(&[
            order(&book, "demo-3", at(day, 14, 50, 3), spdb, "浦发银行", DealKind::MarketSell, "止盈卖出", 8.16, 1200),
            order(&book, "demo-4", at(day, 14, 50, 4), spdb, "浦发银行", DealKind::SellFill, "卖出成交", 8.16, 1200),
        ])
        .await?;
    stores.positions.mark_sold(&book, spdb).await?;

    // 15:02 the day's asset row.
    stores.assets.upsert_asset(&book, AssetRow { date: day, asset: 100_523.47 }).await?;

    let report = Report {
        book: book.to_string(),
        date: day,
        data_dir: cfg.file.root.display().to_string(),
        reconcile,
        inc_held_days: inc,
        ticks,
        extreme_changes: changes,
        positions: stores.positions.snapshot(&book).await?,
        deals: stores.deals.query(&DealQuery::book(book.clone())).await?,
        assets: stores.assets.assets(&book, DateRange::all()).await?,
        quotes: stores.quotes.get_quotes(&[pab, spdb, catl]).await?,
    };
    out::emit(ctx.format, &report, || {
        format!(
            "demo trading day {} on book {} (data in {})\n\npositions\n{}\norders and fills\n{}\nasset {}: {:.2}\nlive quotes: {}",
            report.date,
            report.book,
            report.data_dir,
            positions::render(&report.positions),
            deals::render(&report.deals),
            report.date,
            report.assets.first().map(|r| r.asset).unwrap_or_default(),
            report.quotes.len()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
