//! `sqdata positions …`.

use std::process::ExitCode;

use serde::Serialize;
use sqdata::{Code, PositionSnapshot, PriceTick};

use super::{BookArgs, Ctx, parse_date, today};
use crate::out;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Positions {
    /// The whole book: inc date, day counts, max/min prices.
    Show(BookArgs),
    /// Buy fill: day count 0.
    NewHeld {
        #[command(flatten)]
        book: BookArgs,
        /// Codes (000001.SZ, SZ000001 or 000001).
        #[arg(required = true)]
        codes: Vec<String>,
    },
    /// Sell fill: day count null, prices dropped.
    MarkSold {
        #[command(flatten)]
        book: BookArgs,
        /// The code sold.
        code: String,
    },
    /// Pre-market: make the book match the broker's holdings.
    Reconcile {
        #[command(flatten)]
        book: BookArgs,
        /// Every code the broker holds.
        codes: Vec<String>,
    },
    /// +1 held day for every held code, once per day.
    Inc {
        #[command(flatten)]
        book: BookArgs,
        /// The trading day (default: today in Asia/Shanghai).
        #[arg(long)]
        date: Option<String>,
    },
    /// Raise max / lower min prices from ticks CODE:HIGH:LOW.
    UpdateExtremes {
        #[command(flatten)]
        book: BookArgs,
        /// Ticks as CODE:HIGH:LOW, e.g. 000001.SZ:11.5:11.1.
        #[arg(required = true)]
        ticks: Vec<String>,
    },
}

fn codes(v: &[String]) -> anyhow::Result<Vec<Code>> {
    Ok(v.iter().map(|s| Code::parse(s)).collect::<Result<_, _>>()?)
}

fn tick(s: &str) -> anyhow::Result<PriceTick> {
    let parts: Vec<&str> = s.split(':').collect();
    let [c, h, l] = parts.as_slice() else {
        return Err(sqdata::Error::invalid("tick", s, "expected CODE:HIGH:LOW").into());
    };
    let high = sqdata::validate::number("high", h)?;
    let low = sqdata::validate::number("low", l)?;
    Ok(PriceTick::new(Code::parse(c)?, high, low)?)
}

#[derive(Serialize)]
struct Shown<'a> {
    book: String,
    #[serde(flatten)]
    snapshot: &'a PositionSnapshot,
}

pub(crate) fn render(snap: &PositionSnapshot) -> String {
    let mut t = format!(
        "inc_date: {}\n{:<10} {:>9} {:>10} {:>10}\n",
        snap.inc_date.map(|d| d.to_string()).unwrap_or_else(|| "-".into()),
        "code",
        "day_count",
        "max",
        "min"
    );
    for (c, e) in &snap.positions {
        t.push_str(&format!(
            "{:<10} {:>9} {:>10} {:>10}\n",
            c.to_string(),
            e.day_count.map(|d| d.to_string()).unwrap_or_else(|| "sold".into()),
            out::price(e.max_price),
            out::price(e.min_price)
        ));
    }
    t
}

pub(crate) async fn run(ctx: &Ctx, a: Positions) -> anyhow::Result<ExitCode> {
    let stores = ctx.stores()?;
    let p = &stores.positions;
    match a {
        Positions::Show(b) => {
            let id = b.id()?;
            let snap = p.snapshot(&id).await?;
            out::emit(ctx.format, &Shown { book: id.to_string(), snapshot: &snap }, || render(&snap))?;
        }
        Positions::NewHeld { book, codes: c } => {
            let c = codes(&c)?;
            p.new_held(&book.id()?, &c).await?;
            out::emit(ctx.format, &serde_json::json!({ "new_held": c }), || {
                format!("{} codes held with day count 0", c.len())
            })?;
        }
        Positions::MarkSold { book, code } => {
            let c = Code::parse(&code)?;
            p.mark_sold(&book.id()?, c).await?;
            out::emit(ctx.format, &serde_json::json!({ "sold": c }), || format!("{c} marked sold"))?;
        }
        Positions::Reconcile { book, codes: c } => {
            let r = p.reconcile(&book.id()?, &codes(&c)?).await?;
            out::emit(ctx.format, &r, || format!("added {:?}\nremoved {:?}", r.added, r.removed))?;
        }
        Positions::Inc { book, date } => {
            let d = match date {
                Some(s) => parse_date("date", &s)?,
                None => today(),
            };
            let ran = p.inc_held_days(&book.id()?, d).await?;
            out::emit(ctx.format, &serde_json::json!({ "date": d, "incremented": ran }), || {
                if ran { format!("held days incremented for {d}") } else { format!("already incremented for {d}") }
            })?;
        }
        Positions::UpdateExtremes { book, ticks } => {
            let t: Vec<PriceTick> = ticks.iter().map(|s| tick(s)).collect::<anyhow::Result<_>>()?;
            let ch = p.update_extremes(&book.id()?, &t).await?;
            out::emit(ctx.format, &ch, || {
                ch.iter()
                    .map(|c| format!("{} max {} min {}", c.code, out::price(c.max_price), out::price(c.min_price)))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
