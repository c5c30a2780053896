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

use super::{Body, Errors, Params, schema};
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
    /// Codes (`000001.SZ`, `SZ000001` or `000001`), at most 5000.
    #[schema(value_type = Vec<schema::StockCode>, max_items = 5000)]
    pub codes: Vec<String>,
}

/// One code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeIn {
    /// The code.
    #[schema(value_type = schema::StockCode)]
    pub code: String,
}

/// The trading day for the held-day count.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DayIn {
    /// The day.
    #[schema(value_type = schema::Day)]
    pub date: String,
}

/// One tick.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TickIn {
    /// Code.
    #[schema(value_type = schema::StockCode)]
    pub code: String,
    /// The high since the last tick (not below `low`: else 422).
    #[schema(value_type = schema::Price)]
    pub high: f64,
    /// The low since the last tick.
    #[schema(value_type = schema::Price)]
    pub low: f64,
}

/// Ticks.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicksIn {
    /// Ticks, at most 5000, each code once (else 422).
    #[schema(max_items = 5000)]
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
    list.iter().enumerate().map(|(i, c)| schema::code(&format!("{field}[{i}]"), c)).collect()
}

async fn book_of(api: &Api, p: &Principal, account: &str, name: &str, need: Right) -> Result<BookId, ApiError> {
    let account: AccountCode = p.account(api, account, need).await?;
    Ok(BookId::new(account.as_str(), name)?)
}

/// A book's positions: held days, max/min prices.
#[utoipa::path(get, path = "/accounts/{account}/books/{book}/positions", tag = "positions",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<PositionsOut>)), Errors))]
pub async fn positions(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
) -> ApiResult {
    let b = book_of(&api, &p, &account, &name, Right::Read).await?;
    let r = positions_of(&api, &b).await?;
    api.log_read(&p, "/api/v1/accounts/{account}/books/{book}/positions", Some(b.account.as_str()), 200);
    Ok(r)
}

/// The answer of [`positions`] once the caller is allowed: what `sqdata
/// bench --suite api` also times without authentication and RBAC, to
/// measure what those cost.
pub async fn positions_of(api: &Api, b: &BookId) -> ApiResult {
    let s = api.opened.stores.positions.snapshot(b).await?;
    Ok(api.positions.answer(b, s))
}

/// Buy fills: each code held with 0 days.
#[utoipa::path(post, path = "/accounts/{account}/books/{book}/positions/buys", tag = "positions",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path)), request_body = CodesIn,
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
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path)), request_body = CodeIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>)), Errors))]
pub async fn sells(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<CodeIn>,
) -> ApiResult {
    let bk = book_of(&api, &p, &account, &name, Right::Write).await?;
    let c = schema::code("code", &b.code)?;
    api.audit_first(&p, "positions.sell", &format!("book:{bk}"), serde_json::json!({ "code": b.code })).await?;
    api.opened.stores.positions.mark_sold(&bk, c).await?;
    Ok(ok(true))
}

/// Pre-market: the book made to match the broker's holdings.
#[utoipa::path(post, path = "/accounts/{account}/books/{book}/positions/reconcile", tag = "positions",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path)), request_body = CodesIn,
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
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path)), request_body = DayIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>)), Errors))]
pub async fn inc_held_days(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<DayIn>,
) -> ApiResult {
    let bk = book_of(&api, &p, &account, &name, Right::Write).await?;
    let day = schema::day("date", &b.date)?;
    api.audit_first(&p, "positions.inc", &format!("book:{bk}"), serde_json::json!({ "date": b.date })).await?;
    Ok(ok(api.opened.stores.positions.inc_held_days(&bk, day).await?))
}

/// Raises max / lowers min prices of held codes from ticks.
#[utoipa::path(post, path = "/accounts/{account}/books/{book}/positions/extremes", tag = "positions",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path)), request_body = TicksIn,
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
    let mut ticks = Vec::with_capacity(b.ticks.len());
    let mut seen = std::collections::HashSet::with_capacity(b.ticks.len());
    for (i, t) in b.ticks.iter().enumerate() {
        let code = schema::code(&format!("ticks[{i}].code"), &t.code)?;
        for (f, v) in [("high", t.high), ("low", t.low)] {
            if !(0.0..=sqdata::position::MAX_TICK_PRICE).contains(&v) {
                let at = format!("ticks[{i}].{f}");
                return Err(ApiError::bad(&at, format!("invalid {at}: 0 to {}", sqdata::position::MAX_TICK_PRICE)));
            }
        }
        if t.high < t.low {
            return Err(ApiError::unprocessable(&format!("ticks[{i}].high"), format!("{code}: high is below low")));
        }
        if !seen.insert(code) {
            return Err(ApiError::unprocessable(&format!("ticks[{i}].code"), format!("{code} is given twice")));
        }
        ticks.push(PriceTick::new(code, t.high, t.low)?);
    }
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
    #[schema(value_type = schema::AccountId)]
    pub account: String,
    /// Book (strategy).
    #[schema(value_type = schema::BookId)]
    pub book: String,
    /// Unique id (a deal already stored under it is skipped).
    #[schema(value_type = schema::DealId)]
    pub id: String,
    /// Exchange time (Asia/Shanghai).
    #[schema(value_type = schema::Time)]
    pub time: String,
    /// Code.
    #[schema(value_type = schema::StockCode)]
    pub code: String,
    /// Name (the deal log's encoding must hold it: else 422).
    #[serde(default)]
    #[schema(value_type = schema::DealName)]
    pub name: String,
    /// Kind (`市买委托`, `buy_fill`, …).
    #[schema(value_type = schema::DealKindName)]
    pub kind: String,
    /// Remark (the deal log's encoding must hold it: else 422).
    #[serde(default)]
    #[schema(value_type = schema::DealRemark)]
    pub remark: String,
    /// Price.
    #[schema(value_type = schema::Price)]
    pub price: f64,
    /// Volume, shares.
    #[serde(deserialize_with = "schema::whole")]
    #[schema(maximum = 9223372036854775807_u64)]
    pub volume: u64,
    /// Amount (default price × volume).
    #[serde(default)]
    pub amount: Option<f64>,
    /// Strategy.
    #[serde(default)]
    #[schema(value_type = schema::DealStrategy)]
    pub strategy: String,
}

/// Deals to record, of one or several accounts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealsIn {
    /// 1 to 5000.
    #[schema(min_items = 1, max_items = 5000)]
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
    let book =
        BookId { account: schema::account(&at("account"), &d.account)?, book: schema::book(&at("book"), &d.book)? };
    schema::DealId::check(&at("id"), &d.id)?;
    let time = schema::time(&at("time"), &d.time)?;
    let code = schema::code(&at("code"), &d.code)?;
    schema::DealName::check(&at("name"), &d.name)?;
    let kind = schema::one_of(&at("kind"), &d.kind, &schema::DEAL_KINDS)?
        .parse::<DealKind>()
        .map_err(|e| ApiError::bad(&at("kind"), e.to_string()))?;
    schema::DealRemark::check(&at("remark"), &d.remark)?;
    schema::DealStrategy::check(&at("strategy"), &d.strategy)?;
    if d.volume > i64::MAX as u64 {
        return Err(ApiError::bad(&at("volume"), format!("invalid {}: above {}", at("volume"), i64::MAX)));
    }
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

/// A store's refusal of deals that passed every check the document states
/// (`deal_in`): what is left is the store's own — text its deal log's
/// encoding cannot hold (GBK for SilverQuant's `deal_hist.csv`), a range
/// its columns cannot — so 422, naming the deal's field where it can be
/// found.
fn refused_by_store(deals: &[Deal], e: sqdata::Error) -> ApiError {
    match e {
        sqdata::Error::InvalidInput { ref field, ref value, .. } => {
            fn text<'a>(d: &'a Deal, field: &str) -> Option<&'a String> {
                match field {
                    "name" => Some(&d.name),
                    "remark" => Some(&d.remark),
                    "strategy" => Some(&d.strategy),
                    "id" => Some(&d.id),
                    _ => None,
                }
            }
            let at = match deals.iter().position(|d| text(d, field) == Some(value)) {
                Some(i) => format!("deals[{i}].{field}"),
                None => "deals".to_string(),
            };
            ApiError::unprocessable(&at, e.to_string())
        }
        e => ApiError::from(e),
    }
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
    let r = api.opened.stores.deals.record_batch(&deals).await.map_err(|e| refused_by_store(&deals, e))?;
    Ok(ok(RecordedOut { inserted: r.inserted, duplicates: r.duplicates }))
}

const DEAL_PARAMS: [&str; 7] = ["book", "from", "to", "code", "kind", "page", "pageSize"];

fn deal_query(account: &AccountCode, q: &Params) -> Result<DealQuery, ApiError> {
    let scope = match q.get("book", schema::book)? {
        Some(b) => DealScope::Book(BookId { account: account.clone(), book: b }),
        None => DealScope::Account(account.clone()),
    };
    let kind = match q.choice("kind", &schema::DEAL_KINDS)? {
        Some(k) => Some(k.parse::<DealKind>().map_err(|e| ApiError::bad("kind", e.to_string()))?),
        None => None,
    };
    let dq = DealQuery {
        scope,
        from: q.date("from")?,
        to: q.date("to")?,
        code: q.get("code", schema::code)?,
        kind,
        page: q.number("page", 1, 1_000_000)?.unwrap_or(1) as u32,
        page_size: q.number("pageSize", 1, u64::from(sqdata::MAX_PAGE_SIZE))?.unwrap_or(100) as u32,
    };
    schema::ordered(dq.from, dq.to)?;
    dq.validate()?;
    Ok(dq)
}

/// Deals of an account (or `?book=`), filtered and paged by (time, id).
#[utoipa::path(get, path = "/accounts/{account}/deals", tag = "deals",
    params(("account" = schema::AccountId, Path), ("book" = Option<schema::BookId>, Query, description = "Only this book"),
           ("from" = Option<schema::Day>, Query, description = "First day (after `to`: 422)"),
           ("to" = Option<schema::Day>, Query, description = "Last day"),
           ("code" = Option<schema::StockCode>, Query, description = "Only this code"),
           ("kind" = Option<schema::DealKindName>, Query, description = "Only this kind"),
           ("page" = Option<u64>, Query, minimum = 1, maximum = 1000000, description = "Page, from 1"),
           ("pageSize" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "Rows per page (default 100)")),
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
    params(("account" = schema::AccountId, Path),
           ("by" = Option<schema::AggregateByName>, Query, description = "Rows per day (default) or month"),
           ("from" = Option<schema::Day>, Query, description = "First day (after `to`: 422)"),
           ("to" = Option<schema::Day>, Query, description = "Last day")),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<AggregateOut>>)), Errors))]
pub async fn aggregate(State(api): super::State, p: Principal, Path(account): Path<String>, q: Params) -> ApiResult {
    q.only(&["by", "from", "to"])?;
    let account = p.account(&api, &account, Right::Read).await?;
    let by = match q.choice("by", &["day", "month"])?.unwrap_or("day") {
        "month" => AggregateBy::Month,
        _ => AggregateBy::Day,
    };
    let aq = AggregateQuery { account: account.clone(), from: q.date("from")?, to: q.date("to")?, by };
    schema::ordered(aq.from, aq.to)?;
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
    params(("account" = schema::AccountId, Path),
           ("format" = Option<schema::ExportFormat>, Query, description = "`ndjson` (default) or `csv`"),
           ("book" = Option<schema::BookId>, Query, description = "Only this book"),
           ("from" = Option<schema::Day>, Query, description = "First day (after `to`: 422)"),
           ("to" = Option<schema::Day>, Query, description = "Last day"),
           ("code" = Option<schema::StockCode>, Query, description = "Only this code"),
           ("kind" = Option<schema::DealKindName>, Query, description = "Only this kind")),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, description = "The deals: one JSON object a line (`format=ndjson`), or CSV with a header row (`format=csv`)",
        content((String = "application/x-ndjson"), (String = "text/csv"))), Errors))]
pub async fn export(State(api): super::State, p: Principal, Path(account): Path<String>, q: Params) -> ApiResult {
    q.only(&["format", "book", "from", "to", "code", "kind"])?;
    let account = p.account(&api, &account, Right::Read).await?;
    let csv = q.choice("format", &["ndjson", "csv"])? == Some("csv");
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
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path),
           ("from" = Option<schema::Day>, Query, description = "First day (after `to`: 422)"),
           ("to" = Option<schema::Day>, Query, description = "Last day")),
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
    schema::ordered(range.from, range.to)?;
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
