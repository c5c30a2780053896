//! Market data any signed-in caller may read: K-lines (rows, or columns for
//! pandas; never silently truncated — a longer range answers `next_from` to
//! continue from) and the latest quotes.

use axum::extract::{Path, State};
use chrono::NaiveDateTime;
use serde::Serialize;
use sqdata::{Adjust, BarKey, Period, TimeRange};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Errors, Params, schema};
use crate::api::reply::{ApiError, ApiResult, ok};
use crate::api::{Api, Principal};

/// Most codes one quote request names: 1000 of the longest spelling with
/// their commas fit the request head's 16 KiB (`listen::Limits`); more
/// would be refused with 431 before any check.
pub const MAX_QUOTES: usize = 1000;

/// Most bars one answer carries.
pub const MAX_BARS: u64 = 20_000;

/// One bar.
#[derive(Debug, Serialize, ToSchema)]
pub struct BarOut {
    /// `YYYY-MM-DD HH:MM:SS`.
    pub datetime: String,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume.
    pub volume: u64,
    /// Amount.
    pub amount: f64,
}

/// The same bars as columns (pandas: `DataFrame(columns)`).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ColumnsOut {
    /// Times.
    pub datetime: Vec<String>,
    /// Opens.
    pub open: Vec<f64>,
    /// Highs.
    pub high: Vec<f64>,
    /// Lows.
    pub low: Vec<f64>,
    /// Closes.
    pub close: Vec<f64>,
    /// Volumes.
    pub volume: Vec<u64>,
    /// Amounts.
    pub amount: Vec<f64>,
}

/// A K-line answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct KlinesOut {
    /// Code.
    pub code: String,
    /// Period.
    pub period: String,
    /// Adjustment.
    pub adjust: String,
    /// Bars in this answer.
    pub count: u64,
    /// Rows (layout=rows).
    pub bars: Option<Vec<BarOut>>,
    /// Columns (layout=columns).
    pub columns: Option<ColumnsOut>,
    /// More bars follow: ask again with `from` = this time. Null: that was all.
    pub next_from: Option<String>,
}

/// A quote.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteOut {
    /// Code.
    pub code: String,
    /// The quote's fields.
    #[schema(value_type = Object)]
    pub quote: serde_json::Value,
}

/// A series' bars in a range (`from`/`to`: a day or a time), at most `limit`
/// (default and ceiling 20000) per answer, `next_from` when more follow.
#[utoipa::path(get, path = "/klines/{code}", tag = "market",
    params(("code" = schema::StockCode, Path),
           ("period" = Option<schema::PeriodName>, Query, description = "Default `1d`"),
           ("adjust" = Option<schema::AdjustName>, Query, description = "Default `qfq`"),
           ("from" = Option<schema::DayOrTime>, Query, description = "First bar time (after `to`: 422)"),
           ("to" = Option<schema::DayOrTime>, Query, description = "Last bar time"),
           ("limit" = Option<u64>, Query, minimum = 1, maximum = 20000, description = "Most bars in this answer (default 20000)"),
           ("layout" = Option<schema::Layout>, Query, description = "Default `rows`")),
    security(("bearer" = ["authenticated"]), ("api_key" = ["authenticated"])),
    responses((status = 200, body = inline(crate::api::Envelope<KlinesOut>)), Errors))]
pub async fn klines(State(api): super::State, p: Principal, Path(code): Path<String>, q: Params) -> ApiResult {
    q.only(&["period", "adjust", "from", "to", "limit", "layout"])?;
    let code = schema::code("code", &code)?;
    let pick = |name: &str, values: &[&str]| -> Result<Option<String>, ApiError> {
        Ok(q.choice(name, values)?.map(String::from))
    };
    let period: Period = match pick("period", &["1m", "5m", "15m", "30m", "60m", "1d", "1w"])? {
        Some(v) => v.parse().map_err(|e: sqdata::Error| ApiError::bad("period", e.to_string()))?,
        None => Period::Day1,
    };
    let adjust: Adjust = match pick("adjust", &["none", "qfq", "hfq"])? {
        Some(v) => v.parse().map_err(|e: sqdata::Error| ApiError::bad("adjust", e.to_string()))?,
        None => Adjust::Qfq,
    };
    let range = TimeRange { from: q.get("from", schema::day_or_time)?, to: q.get("to", schema::day_or_time)? };
    schema::ordered(range.from, range.to)?;
    range.validate()?;
    let limit = q.number("limit", 1, MAX_BARS)?.unwrap_or(MAX_BARS) as usize;
    let columns = q.choice("layout", &["rows", "columns"])? == Some("columns");
    let mut bars = api.opened.stores.bars.load_bars(&BarKey::new(code, period, adjust), range).await?;
    let next_from = (bars.len() > limit).then(|| bars[limit].datetime.format("%Y-%m-%d %H:%M:%S").to_string());
    bars.truncate(limit);
    let fmt = |t: &NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
    let (rows, cols) = if columns {
        let mut c = ColumnsOut::default();
        for b in &bars {
            c.datetime.push(fmt(&b.datetime));
            c.open.push(b.open);
            c.high.push(b.high);
            c.low.push(b.low);
            c.close.push(b.close);
            c.volume.push(b.volume);
            c.amount.push(b.amount);
        }
        (None, Some(c))
    } else {
        let rows = bars
            .iter()
            .map(|b| BarOut {
                datetime: fmt(&b.datetime),
                open: b.open,
                high: b.high,
                low: b.low,
                close: b.close,
                volume: b.volume,
                amount: b.amount,
            })
            .collect();
        (Some(rows), None)
    };
    api.log_read(&p, "/api/v1/klines/{code}", None, 200);
    Ok(ok(KlinesOut {
        code: code.to_string(),
        period: period.to_string(),
        adjust: adjust.to_string(),
        count: bars.len() as u64,
        bars: rows,
        columns: cols,
        next_from,
    }))
}

/// The live quotes of `codes` (comma-separated); expired or unknown codes are left out.
#[utoipa::path(get, path = "/quotes", tag = "market",
    params(("codes" = Vec<schema::StockCode>, Query, style = Form, explode = false, min_items = 1, max_items = 1000,
            description = "1 to 1000 codes, comma-separated (the most a request head of 16 KiB carries)")),
    security(("bearer" = ["authenticated"]), ("api_key" = ["authenticated"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<QuoteOut>>)), Errors))]
pub async fn quotes(State(api): super::State, p: Principal, q: Params) -> ApiResult {
    q.only(&["codes"])?;
    let raw = q.text("codes").ok_or_else(|| ApiError::bad("codes", "codes is required"))?;
    let list: Vec<&str> = raw.split(',').collect();
    if list.len() > MAX_QUOTES {
        return Err(ApiError::bad("codes", format!("at most {MAX_QUOTES} codes")));
    }
    let codes = list.iter().map(|c| schema::code("codes", c)).collect::<Result<Vec<_>, _>>()?;
    let got = api.opened.stores.quotes.get_quotes(&codes).await?;
    api.log_read(&p, "/api/v1/quotes", None, 200);
    Ok(ok(got
        .iter()
        .map(|q| QuoteOut { code: q.code.to_string(), quote: serde_json::to_value(q).unwrap_or_default() })
        .collect::<Vec<_>>()))
}

/// The routes of this area.
pub fn router() -> OpenApiRouter<std::sync::Arc<Api>> {
    OpenApiRouter::new().routes(routes!(klines)).routes(routes!(quotes))
}
