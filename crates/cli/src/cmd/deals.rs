//! `sqdata deals …`.

use std::process::ExitCode;

use sqdata::{
    AccountCode, AggregateBy, AggregateQuery, BookId, Code, Deal, DealKind, DealQuery, DealScope, DealStoreExt, Page,
};

use super::{Ctx, parse_date};
use crate::out;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Deals {
    /// Record one order or deal (a replay with the same id is a no-op).
    Record {
        #[arg(long)]
        account: String,
        #[arg(long)]
        book: String,
        /// Unique id (the broker's order id).
        #[arg(long)]
        id: String,
        /// Exchange time, "YYYY-MM-DD HH:MM:SS" (Asia/Shanghai).
        #[arg(long)]
        time: String,
        #[arg(long)]
        code: String,
        /// Security name.
        #[arg(long, default_value = "")]
        name: String,
        /// 市买委托 限买委托 市卖委托 限卖委托 买入成交 卖出成交 撤单 废单 (or market_buy, …).
        #[arg(long)]
        kind: String,
        #[arg(long, default_value = "")]
        remark: String,
        #[arg(long)]
        price: f64,
        #[arg(long)]
        volume: u64,
        /// Default: price × volume.
        #[arg(long)]
        amount: Option<f64>,
        #[arg(long, default_value = "")]
        strategy: String,
    },
    /// Filtered, paged query of a book or a whole account.
    Query {
        #[arg(long)]
        account: String,
        /// One book (default: every book of the account).
        #[arg(long)]
        book: Option<String>,
        /// First day, inclusive.
        #[arg(long)]
        from: Option<String>,
        /// Last day, inclusive.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 1)]
        page: u32,
        #[arg(long, default_value_t = 100)]
        page_size: u32,
    },
    /// Daily or monthly totals of an account.
    Aggregate {
        #[arg(long)]
        account: String,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        /// day or month.
        #[arg(long, default_value = "day")]
        by: String,
    },
}

pub(crate) fn render(p: &Page<Deal>) -> String {
    let mut t = format!("{} deals (page {}, {} per page)\n", p.total, p.page, p.page_size);
    for d in &p.data {
        t.push_str(&format!(
            "{} {} {} {} {} {} {} x {} ({})\n",
            d.time, d.book, d.code, d.name, d.kind, d.remark, d.price, d.volume, d.id
        ));
    }
    t
}

pub(crate) async fn run(ctx: &Ctx, a: Deals) -> anyhow::Result<ExitCode> {
    let stores = ctx.stores()?;
    match a {
        Deals::Record { account, book, id, time, code, name, kind, remark, price, volume, amount, strategy } => {
            let d = Deal {
                id,
                book: BookId::new(account, book)?,
                time: sqdata::validate::datetime("time", &time)?,
                code: Code::parse(&code)?,
                name,
                kind: kind.parse()?,
                remark,
                price,
                volume,
                amount: amount.unwrap_or(price * volume as f64),
                strategy,
            };
            let o = stores.deals.record(&d).await?;
            out::emit(ctx.format, &o, || {
                if o.inserted == 1 { format!("recorded {}", d.id) } else { format!("{} was already recorded", d.id) }
            })?;
        }
        Deals::Query { account, book, from, to, code, kind, page, page_size } => {
            let scope = match book {
                Some(b) => DealScope::Book(BookId::new(&account, b)?),
                None => DealScope::Account(AccountCode::new(&account)?),
            };
            let q = DealQuery {
                scope,
                from: from.map(|s| parse_date("from", &s)).transpose()?,
                to: to.map(|s| parse_date("to", &s)).transpose()?,
                code: code.map(|s| Code::parse(&s)).transpose()?,
                kind: kind.map(|s| s.parse::<DealKind>()).transpose()?,
                page,
                page_size,
            };
            let p = stores.deals.query(&q).await?;
            out::emit(ctx.format, &p, || render(&p))?;
        }
        Deals::Aggregate { account, from, to, by } => {
            let q = AggregateQuery {
                account: AccountCode::new(&account)?,
                from: from.map(|s| parse_date("from", &s)).transpose()?,
                to: to.map(|s| parse_date("to", &s)).transpose()?,
                by: by.parse::<AggregateBy>()?,
            };
            let rows = stores.deals.aggregate(&q).await?;
            out::emit(ctx.format, &rows, || {
                let mut t = format!(
                    "{:<10} {:>6} {:>5} {:>5} {:>14} {:>14}\n",
                    "period", "count", "buys", "sells", "bought", "sold"
                );
                for r in &rows {
                    t.push_str(&format!(
                        "{:<10} {:>6} {:>5} {:>5} {:>14.2} {:>14.2}\n",
                        r.period, r.count, r.buy_count, r.sell_count, r.buy_amount, r.sell_amount
                    ));
                }
                t
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
