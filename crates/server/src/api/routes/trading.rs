//! Positions (reads; trader writes: buys, sells, reconcile, held days,
//! extremes), deals (filtered, paged, aggregated, exported as a stream) and
//! the equity curve. Every write's audit row is stored first: a write that
//! cannot be audited is refused and nothing changes.

use axum::body::Body as HttpBody;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use sqdata::{
    AccountCode, AggregateBy, AggregateQuery, BookId, Code, DateRange, Deal, DealKind, DealQuery, DealScope, PriceTick,
    Right,
};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Body, Errors, Params};
use crate::api::reply::{ApiError, ApiResult, PageOut, ok};
use crate::api::{Api, Principal};

/// One position.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionOut {
    /// Code (`000001.SZ`).
    pub code: String,
    /// Held days (null: sold).
    pub day_count: Option<u32>,
    /// Highest price since the buy.
    pub max_price: Option<f64>,
    /// Lowest price since the buy.
    pub min_price: Option<f64>,
}

/// A book's positions.
#[derive(Debug, Serialize, ToSchema)]
pub struct PositionsOut {
    /// The last day held days were counted (YYYY-MM-DD).
    pub inc_date: Option<String>,
    /// Every tracked code.
    pub positions: Vec<PositionOut>,
}

/// Codes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodesIn {
    /// Codes (`000001.SZ`, `SZ000001` or `000001`).
    pub codes: Vec<String>,
}

/// One code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeIn {
    /// The code.
    pub code: String,
}

/// The trading day for the held-day count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayIn {
    /// YYYY-MM-DD.
    pub date: String,
}

/// One tick.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TickIn {
    /// Code.
    pub code: String,
    /// The high since the last tick.
    pub high: f64,
    /// The low since the last tick.
    pub low: f64,
}

/// Ticks.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicksIn {
    /// Ticks.
    pub ticks: Vec<TickIn>,
}

/// What changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtremeOut {
    /// Code.
    pub code: String,
    /// New max (when raised).
    pub max_price: Option<f64>,
    /// New min (when lowered).
    pub min_price: Option<f64>,
}

/// What a reconcile did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileOut {
    /// Codes added with 0 days.
    pub added: Vec<String>,
    /// Codes dropped.
    pub removed: Vec<String>,
}

/// A deal.
#[derive(Debug, Serialize, ToSchema)]
pub struct DealOut {
    /// Unique id.
    pub id: String,
    /// Book.
    pub book: String,
    /// Exchange time (`YYYY-MM-DD HH:MM:SS`).
    pub time: String,
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind (`市买委托`, …).
    pub kind: String,
    /// Remark.
    pub remark: String,
    /// Price.
    pub price: f64,
    /// Volume.
    pub volume: u64,
    /// Amount.
    pub amount: f64,
    /// Strategy.
    pub strategy: String,
}

fn deal_out(d: &Deal) -> DealOut {
    DealOut {
        id: d.id.clone(),
        book: d.book.book.to_string(),
        time: d.time.format("%Y-%m-%d %H:%M:%S").to_string(),
        code: d.code.to_string(),
        name: d.name.clone(),
        kind: d.kind.as_str().to_string(),
        remark: d.remark.clone(),
        price: d.price,
        volume: d.volume,
        amount: d.amount,
        strategy: d.strategy.clone(),
    }
}

/// Totals of one day or month.
#[derive(Debug, Serialize, ToSchema)]
pub struct AggregateOut {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    /// Deals.
    pub count: u64,
    /// Buys.
    pub buy_count: u64,
    /// Sells.
    pub sell_count: u64,
    /// Bought volume.
    pub buy_volume: u64,
    /// Sold volume.
    pub sell_volume: u64,
    /// Bought amount.
    pub buy_amount: f64,
    /// Sold amount.
    pub sell_amount: f64,
}

/// One equity row.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssetOut {
    /// Day.
    pub date: String,
    /// Total asset.
    pub asset: f64,
}

fn codes(list: &[String], field: &str) -> Result<Vec<Code>, ApiError> {
    if list.len() > 5000 {
        return Err(ApiError::bad(field, "at most 5000 codes"));
    }
    list.iter().map(|c| Code::parse_field(field, c).map_err(ApiError::from)).collect()
}

async fn book_of(api: &Api, p: &Principal, account: &str, name: &str, need: Right) -> Result<BookId, ApiError> {
    let account: AccountCode = p.account(api, account, need).await?;
    Ok(BookId::new(account.as_str(), name)?)
}

/// A book's positions: held days, max/min prices.
#[utoipa::path(get, path = "/accounts/{account}/books/{book}/positions", tag = "positions",
    params(("account" = String, Path), ("book" = String, Path)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<PositionsOut>)), Errors))]
pub async fn positions(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
) -> ApiResult {
    let b = book_of(&api, &p, &account, &name, Right::Read).await?;
    let s = api.opened.stores.positions.snapshot(&b).await?;
    api.log_read(&p, "/api/v1/accounts/{account}/books/{book}/positions", Some(b.account.as_str()), 200);
    Ok(ok(PositionsOut {
        inc_date: s.inc_date.map(|d| d.to_string()),
        positions: s
            .positions
            .iter()
            .map(|(c, e)| PositionOut {
                code: c.to_string(),
                day_count: e.day_count,
                max_price: e.max_price,
                min_price: e.min_price,
            })
            .collect(),
    }))
}

/// Buy fills: each code held with 0 days.
#[utoipa::path(post, path = "/accounts/{account}/books/{book}/positions/buys", tag = "positions",
    params(("account" = String, Path), ("book" = String, Path)), request_body = CodesIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>)), Errors))]
pub async fn buys(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<CodesIn>,
) -> ApiResult {
    let bk = book_of(&api, &p, &account, &name, Right::Write).await?;
    let c = codes(&b.codes, "codes")?;
    api.audit_first(&p, "positions.buy", &format!("book:{bk}"), serde_json::json!({ "codes": b.codes })).await?;
    api.opened.stores.positions.new_held(&bk, &c).await?;
    Ok(ok(true))
}

/// A sell fill: the code sold, its prices dropped.
#[utoipa::path(post, path = "/accounts/{account}/books/{book}/positions/sells", tag = "positions",
    params(("account" = String, Path), ("book" = String, Path)), request_body = CodeIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>)), Errors))]
pub async fn sells(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<CodeIn>,
) -> ApiResult {
    let bk = book_of(&api, &p, &account, &name, Right::Write).await?;
    let c = Code::parse_field("code", &b.code)?;
    api.audit_first(&p, "positions.sell", &format!("book:{bk}"), serde_json::json!({ "code": b.code })).await?;
    api.opened.stores.positions.mark_sold(&bk, c).await?;
    Ok(ok(true))
}

/// Pre-market: the book made to match the broker's holdings.
#[utoipa::path(post, path = "/accounts/{account}/books/{book}/positions/reconcile", tag = "positions",
    params(("account" = String, Path), ("book" = String, Path)), request_body = CodesIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<ReconcileOut>)), Errors))]
pub async fn reconcile(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<CodesIn>,
) -> ApiResult {
    let bk = book_of(&api, &p, &account, &name, Right::Write).await?;
    let c = codes(&b.codes, "codes")?;
    api.audit_first(&p, "positions.reconcile", &format!("book:{bk}"), serde_json::json!({ "codes": b.codes })).await?;
    let r = api.opened.stores.positions.reconcile(&bk, &c).await?;
    Ok(ok(ReconcileOut {
        added: r.added.iter().map(|c| c.to_string()).collect(),
        removed: r.removed.iter().map(|c| c.to_string()).collect(),
    }))
}

/// +1 held day for every held code, once per trading day.
#[utoipa::path(post, path = "/accounts/{account}/books/{book}/positions/inc-held-days", tag = "positions",
    params(("account" = String, Path), ("book" = String, Path)), request_body = DayIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>)), Errors))]
pub async fn inc_held_days(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<DayIn>,
) -> ApiResult {
    let bk = book_of(&api, &p, &account, &name, Right::Write).await?;
    let day = sqdata::validate::date("date", &b.date)?;
    api.audit_first(&p, "positions.inc", &format!("book:{bk}"), serde_json::json!({ "date": b.date })).await?;
    Ok(ok(api.opened.stores.positions.inc_held_days(&bk, day).await?))
}

/// Raises max / lowers min prices of held codes from ticks.
#[utoipa::path(post, path = "/accounts/{account}/books/{book}/positions/extremes", tag = "positions",
    params(("account" = String, Path), ("book" = String, Path)), request_body = TicksIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<ExtremeOut>>)), Errors))]
pub async fn extremes(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<TicksIn>,
) -> ApiResult {
    let bk = book_of(&api, &p, &account, &name, Right::Write).await?;
    if b.ticks.len() > 5000 {
        return Err(ApiError::bad("ticks", "at most 5000 ticks"));
    }
    let ticks = b
        .ticks
        .iter()
        .map(|t| PriceTick::new(Code::parse_field("ticks.code", &t.code)?, t.high, t.low))
        .collect::<sqdata::Result<Vec<_>>>()?;
    sqdata::validate_ticks(&ticks)?;
    api.audit_first(&p, "positions.extremes", &format!("book:{bk}"), serde_json::json!({ "ticks": ticks.len() }))
        .await?;
    let changed = api.opened.stores.positions.update_extremes(&bk, &ticks).await?;
    Ok(ok(changed
        .iter()
        .map(|c| ExtremeOut { code: c.code.to_string(), max_price: c.max_price, min_price: c.min_price })
        .collect::<Vec<_>>()))
}

/// A deal to record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealIn {
    /// Account.
    pub account: String,
    /// Book (strategy).
    pub book: String,
    /// Unique id (a deal already stored under it is skipped).
    pub id: String,
    /// Exchange time, `YYYY-MM-DD HH:MM:SS` (Asia/Shanghai).
    pub time: String,
    /// Code.
    pub code: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Kind (`市买委托`, `buy_trade`, …).
    pub kind: String,
    /// Remark.
    #[serde(default)]
    pub remark: String,
    /// Price.
    pub price: f64,
    /// Volume, shares.
    pub volume: u64,
    /// Amount (default price × volume).
    #[serde(default)]
    pub amount: Option<f64>,
    /// Strategy.
    #[serde(default)]
    pub strategy: String,
}

/// Deals to record, of one or several accounts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealsIn {
    /// At most 5000.
    pub deals: Vec<DealIn>,
}

/// What a batch stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedOut {
    /// Newly stored.
    pub inserted: u64,
    /// Already stored (skipped).
    pub duplicates: u64,
}

fn deal_in(i: usize, d: &DealIn) -> Result<Deal, ApiError> {
    let at = |f: &str| format!("deals[{i}].{f}");
    let book = BookId::new(&d.account, &d.book).map_err(|e| ApiError::bad(&at("book"), e.to_string()))?;
    let time = chrono::NaiveDateTime::parse_from_str(&d.time, "%Y-%m-%d %H:%M:%S")
        .map_err(|_| ApiError::bad(&at("time"), format!("invalid {}: expected YYYY-MM-DD HH:MM:SS", at("time"))))?;
    let code = Code::parse_field(&at("code"), &d.code)?;
    let kind = d.kind.parse::<DealKind>().map_err(|e| ApiError::bad(&at("kind"), e.to_string()))?;
    if d.price > sqdata::position::MAX_TICK_PRICE {
        return Err(ApiError::bad(
            &at("price"),
            format!("invalid {}: above {}", at("price"), sqdata::position::MAX_TICK_PRICE),
        ));
    }
    let deal = Deal {
        id: d.id.clone(),
        book,
        time,
        code,
        name: d.name.clone(),
        kind,
        remark: d.remark.clone(),
        price: d.price,
        volume: d.volume,
        amount: d.amount.unwrap_or(d.price * d.volume as f64),
        strategy: d.strategy.clone(),
    };
    deal.validate().map_err(|e| match e {
        sqdata::Error::InvalidInput { ref field, .. } => ApiError::bad(&at(field), e.to_string()),
        e => ApiError::from(e),
    })?;
    Ok(deal)
}

/// Records deals of one or several accounts: all or nothing — a batch
/// with any account the caller may not write stores nothing (404 for an
/// account they may not see, 403 for one they may only read).
#[utoipa::path(post, path = "/deals", tag = "deals", request_body = DealsIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<RecordedOut>)), Errors))]
pub async fn record(State(api): super::State, p: Principal, Body(b): Body<DealsIn>) -> ApiResult {
    if b.deals.is_empty() || b.deals.len() > 5000 {
        return Err(ApiError::bad("deals", "1 to 5000 deals"));
    }
    let mut accounts: Vec<&str> = b.deals.iter().map(|d| d.account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    // every account first: nothing is stored unless every one is writable
    for a in &accounts {
        p.account(&api, a, Right::Write).await?;
    }
    let deals = b.deals.iter().enumerate().map(|(i, d)| deal_in(i, d)).collect::<Result<Vec<_>, _>>()?;
    api.audit_first(&p, "deals.record", "deals", serde_json::json!({ "accounts": accounts, "deals": deals.len() }))
        .await?;
    let r = api.opened.stores.deals.record_batch(&deals).await?;
    Ok(ok(RecordedOut { inserted: r.inserted, duplicates: r.duplicates }))
}

const DEAL_PARAMS: [&str; 7] = ["book", "from", "to", "code", "kind", "page", "pageSize"];

fn deal_query(account: &AccountCode, q: &Params) -> Result<DealQuery, ApiError> {
    let scope = match q.text("book") {
        Some(b) => DealScope::Book(BookId::new(account.as_str(), b)?),
        None => DealScope::Account(account.clone()),
    };
    let dq = DealQuery {
        scope,
        from: q.date("from")?,
        to: q.date("to")?,
        code: q.parse("code", |v| Code::parse_field("code", v))?,
        kind: q.parse("kind", |v| v.parse::<DealKind>())?,
        page: q.number("page", 1, 1_000_000)?.unwrap_or(1) as u32,
        page_size: q.number("pageSize", 1, u64::from(sqdata::MAX_PAGE_SIZE))?.unwrap_or(100) as u32,
    };
    dq.validate()?;
    Ok(dq)
}

/// Deals of an account (or `?book=`), filtered and paged by (time, id).
#[utoipa::path(get, path = "/accounts/{account}/deals", tag = "deals",
    params(("account" = String, Path), ("book" = Option<String>, Query), ("from" = Option<String>, Query),
           ("to" = Option<String>, Query), ("code" = Option<String>, Query), ("kind" = Option<String>, Query),
           ("page" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<PageOut<DealOut>>)), Errors))]
pub async fn deals(State(api): super::State, p: Principal, Path(account): Path<String>, q: Params) -> ApiResult {
    q.only(&DEAL_PARAMS)?;
    let account = p.account(&api, &account, Right::Read).await?;
    let dq = deal_query(&account, &q)?;
    let page = api.opened.stores.deals.query(&dq).await?;
    api.log_read(&p, "/api/v1/accounts/{account}/deals", Some(account.as_str()), 200);
    Ok(ok(PageOut {
        total: page.total,
        page: page.page,
        page_size: page.page_size,
        data: page.data.iter().map(deal_out).collect(),
    }))
}

/// Per-day or per-month totals of an account.
#[utoipa::path(get, path = "/accounts/{account}/deals/aggregate", tag = "deals",
    params(("account" = String, Path), ("by" = Option<String>, Query), ("from" = Option<String>, Query),
           ("to" = Option<String>, Query)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<AggregateOut>>)), Errors))]
pub async fn aggregate(State(api): super::State, p: Principal, Path(account): Path<String>, q: Params) -> ApiResult {
    q.only(&["by", "from", "to"])?;
    let account = p.account(&api, &account, Right::Read).await?;
    let by = match q.text("by").unwrap_or("day") {
        "day" => AggregateBy::Day,
        "month" => AggregateBy::Month,
        other => return Err(ApiError::bad("by", format!("invalid by {other:?}: expected day or month"))),
    };
    let aq = AggregateQuery { account: account.clone(), from: q.date("from")?, to: q.date("to")?, by };
    sqdata::validate::ordered(aq.from, aq.to)?;
    let rows = api.opened.stores.deals.aggregate(&aq).await?;
    api.log_read(&p, "/api/v1/accounts/{account}/deals/aggregate", Some(account.as_str()), 200);
    Ok(ok(rows
        .into_iter()
        .map(|r| AggregateOut {
            period: r.period,
            count: r.count,
            buy_count: r.buy_count,
            sell_count: r.sell_count,
            buy_volume: r.buy_volume,
            sell_volume: r.sell_volume,
            buy_amount: r.buy_amount,
            sell_amount: r.sell_amount,
        })
        .collect::<Vec<_>>()))
}

/// Every matching deal, streamed page by page: NDJSON (`format=ndjson`,
/// the default) or CSV (`format=csv`). Never truncated.
#[utoipa::path(get, path = "/accounts/{account}/deals/export", tag = "deals",
    params(("account" = String, Path), ("format" = Option<String>, Query), ("book" = Option<String>, Query),
           ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("code" = Option<String>, Query),
           ("kind" = Option<String>, Query)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, description = "NDJSON or CSV", content_type = "application/x-ndjson"), Errors))]
pub async fn export(State(api): super::State, p: Principal, Path(account): Path<String>, q: Params) -> ApiResult {
    q.only(&["format", "book", "from", "to", "code", "kind"])?;
    let account = p.account(&api, &account, Right::Read).await?;
    let csv = match q.text("format").unwrap_or("ndjson") {
        "ndjson" => false,
        "csv" => true,
        other => return Err(ApiError::bad("format", format!("invalid format {other:?}: expected ndjson or csv"))),
    };
    let mut dq = deal_query(&account, &q)?;
    dq.page_size = sqdata::MAX_PAGE_SIZE;
    api.log_read(&p, "/api/v1/accounts/{account}/deals/export", Some(account.as_str()), 200);
    let deals = api.opened.stores.deals.clone();
    let stream = futures_util::stream::unfold((dq, false, csv), move |(mut dq, done, csv)| {
        let deals = deals.clone();
        async move {
            if done {
                return None;
            }
            let first = dq.page == 1;
            let page = match deals.query(&dq).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "deal export failed mid-stream");
                    return Some((
                        Err(std::io::Error::other("the store failed; the export is incomplete")),
                        (dq, true, csv),
                    ));
                }
            };
            let mut out = String::new();
            if csv && first {
                out.push_str("id,book,time,code,name,kind,remark,price,volume,amount,strategy\n");
            }
            for d in &page.data {
                let o = deal_out(d);
                if csv {
                    let f = |s: &str| {
                        if s.contains([',', '"', '\n', '\r']) {
                            format!("\"{}\"", s.replace('"', "\"\""))
                        } else {
                            s.to_string()
                        }
                    };
                    out.push_str(&format!(
                        "{},{},{},{},{},{},{},{},{},{},{}\n",
                        f(&o.id),
                        f(&o.book),
                        o.time,
                        o.code,
                        f(&o.name),
                        f(&o.kind),
                        f(&o.remark),
                        o.price,
                        o.volume,
                        o.amount,
                        f(&o.strategy)
                    ));
                } else {
                    out.push_str(&serde_json::to_string(&o).unwrap_or_default());
                    out.push('\n');
                }
            }
            let done = page.data.len() < dq.page_size as usize;
            dq.page += 1;
            Some((Ok::<_, std::io::Error>(out), (dq, done, csv)))
        }
    });
    let mut r = HttpBody::from_stream(stream).into_response();
    let ct = if csv { "text/csv; charset=utf-8" } else { "application/x-ndjson" };
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    Ok(r)
}

/// A book's equity curve.
#[utoipa::path(get, path = "/accounts/{account}/books/{book}/assets", tag = "assets",
    params(("account" = String, Path), ("book" = String, Path), ("from" = Option<String>, Query),
           ("to" = Option<String>, Query)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<AssetOut>>)), Errors))]
pub async fn assets(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    q: Params,
) -> ApiResult {
    q.only(&["from", "to"])?;
    let b = book_of(&api, &p, &account, &name, Right::Read).await?;
    let range = DateRange { from: q.date("from")?, to: q.date("to")? };
    range.validate()?;
    let rows = api.opened.stores.assets.assets(&b, range).await?;
    api.log_read(&p, "/api/v1/accounts/{account}/books/{book}/assets", Some(b.account.as_str()), 200);
    Ok(ok(rows.iter().map(|r| AssetOut { date: r.date.to_string(), asset: r.asset }).collect::<Vec<_>>()))
}

/// The routes of this area.
pub fn router() -> OpenApiRouter<std::sync::Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(positions))
        .routes(routes!(buys))
        .routes(routes!(sells))
        .routes(routes!(reconcile))
        .routes(routes!(inc_held_days))
        .routes(routes!(extremes))
        .routes(routes!(deals))
        .routes(routes!(record))
        .routes(routes!(aggregate))
        .routes(routes!(export))
        .routes(routes!(assets))
}
