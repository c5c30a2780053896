//! Accounts, strategies and their versioned parameters. Lists show only
//! what the caller may read; parameter writes carry `If-Match` (the
//! version's `ETag`) so two editors never lose each other's changes.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqdata::{Account, AccountCode, BookId, ParamVersion, Right, Strategy};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Body, Errors, Params, schema};
use crate::api::reply::{ApiError, ApiResult, ok};
use crate::api::{Api, Principal};

/// An account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountOut {
    /// The broker's account code.
    #[schema(value_type = schema::AccountId)]
    pub id: String,
    /// Display name.
    pub name: String,
    /// Broker / gateway.
    pub broker: String,
    /// Anything else.
    #[schema(value_type = Object)]
    pub meta: Map<String, Value>,
}

fn account_out(a: &Account) -> AccountOut {
    AccountOut { id: a.id.to_string(), name: a.name.clone(), broker: a.broker.clone(), meta: a.meta.clone() }
}

/// An account's fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountIn {
    /// Display name.
    #[serde(default)]
    #[schema(value_type = schema::AccountName)]
    pub name: String,
    /// Broker / gateway.
    #[serde(default)]
    #[schema(value_type = schema::BrokerName)]
    pub broker: String,
    /// Anything else (a JSON object of at most 64 KiB as JSON; more: 422).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub meta: Map<String, Value>,
}

/// A strategy (a book).
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategyOut {
    /// Account.
    pub account: String,
    /// Book.
    pub book: String,
    /// Display name.
    pub description: String,
    /// Type.
    pub kind: String,
    /// May it trade.
    pub enabled: bool,
}

fn strategy_out(s: &Strategy) -> StrategyOut {
    StrategyOut {
        account: s.book.account.to_string(),
        book: s.book.book.to_string(),
        description: s.description.clone(),
        kind: s.kind.clone(),
        enabled: s.enabled,
    }
}

/// A strategy's fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StrategyIn {
    /// Display name.
    #[serde(default)]
    #[schema(value_type = schema::StrategyDescription)]
    pub description: String,
    /// Type.
    #[serde(default)]
    #[schema(value_type = schema::StrategyKind)]
    pub kind: String,
    /// May it trade.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// One version of a strategy's parameters.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParamsOut {
    /// Version (1, 2, …).
    pub version: u32,
    /// The parameters.
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Who stored it.
    pub actor: String,
    /// Why.
    pub note: String,
    /// When (RFC 3339).
    pub created_at: String,
}

fn params_out(p: &ParamVersion) -> ParamsOut {
    ParamsOut {
        version: p.version,
        params: p.params.clone(),
        actor: p.actor.clone(),
        note: p.note.clone(),
        created_at: p.created_at.to_rfc3339(),
    }
}

/// New parameters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamsIn {
    /// The parameters (a JSON object of at most 64 KiB as JSON; more: 422).
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Why.
    #[serde(default)]
    #[schema(value_type = schema::ParamsNote)]
    pub note: String,
}

/// A rollback.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackIn {
    /// The version whose parameters become the newest version (422 when
    /// there is no such version).
    #[serde(deserialize_with = "schema::whole")]
    #[schema(value_type = u64, minimum = 1, maximum = 4294967295_u64)]
    pub to: u64,
}

/// One change between two versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeOut {
    /// Key path (`trail.back`).
    pub path: String,
    /// Before (absent: added).
    #[schema(value_type = Option<Value>)]
    pub before: Option<Value>,
    /// After (absent: removed).
    #[schema(value_type = Option<Value>)]
    pub after: Option<Value>,
}

fn book(account: &AccountCode, name: &str) -> Result<BookId, ApiError> {
    Ok(BookId::new(account.as_str(), name)?)
}

/// The version an `If-Match` names (`None`: `*`). Anything else — another
/// entity tag, a list, a malformed value — matches no version: 412, the
/// answer RFC 9110 gives to a tag that does not match.
fn if_match(v: &str) -> Result<Option<u32>, ApiError> {
    let v = v.trim();
    if v == "*" {
        return Ok(None);
    }
    v.strip_prefix("W/")
        .unwrap_or(v)
        .strip_prefix("\"v")
        .and_then(|r| r.strip_suffix('"'))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<u32>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::new(StatusCode::PRECONDITION_FAILED, "If-Match names no version of these parameters"))
}

fn etag(v: u32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"v{v}\"")).unwrap_or(HeaderValue::from_static("\"v0\""))
}

/// Accounts the caller may read.
#[utoipa::path(get, path = "/accounts", tag = "accounts",
    security(("bearer" = ["authenticated"]), ("api_key" = ["authenticated"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<AccountOut>>)), Errors))]
pub async fn list_accounts(State(api): super::State, p: Principal) -> ApiResult {
    let all = api.registry.accounts().await?;
    let list: Vec<AccountOut> = all.iter().filter(|a| p.right_on(&a.id).is_some()).map(account_out).collect();
    api.log_read(&p, "/api/v1/accounts", None, 200);
    Ok(ok(list))
}

/// One account.
#[utoipa::path(get, path = "/accounts/{account}", tag = "accounts", params(("account" = schema::AccountId, Path)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<AccountOut>)), Errors))]
pub async fn get_account(State(api): super::State, p: Principal, Path(account): Path<String>) -> ApiResult {
    let account = p.account(&api, &account, Right::Read).await?;
    let a = api.registry.account(&account).await?.ok_or_else(ApiError::no_account)?;
    api.log_read(&p, "/api/v1/accounts/{account}", Some(account.as_str()), 200);
    Ok(ok(account_out(&a)))
}

/// Creates or changes an account (admin).
#[utoipa::path(put, path = "/accounts/{account}", tag = "accounts", params(("account" = schema::AccountId, Path)),
    request_body = AccountIn,
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<AccountOut>)), Errors))]
pub async fn put_account(
    State(api): super::State,
    p: Principal,
    Path(account): Path<String>,
    Body(b): Body<AccountIn>,
) -> ApiResult {
    p.admin()?;
    let id = schema::account("account", &account)?;
    schema::AccountName::check("name", &b.name)?;
    schema::BrokerName::check("broker", &b.broker)?;
    schema::document("meta", &b.meta)?;
    let a = Account { id, name: b.name, broker: b.broker, meta: b.meta };
    a.validate()?;
    api.registry.upsert_account(&a, &p.actor()).await?;
    api.cache.flush();
    Ok(ok(account_out(&a)))
}

/// The strategies of an account.
#[utoipa::path(get, path = "/accounts/{account}/strategies", tag = "accounts", params(("account" = schema::AccountId, Path)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<StrategyOut>>)), Errors))]
pub async fn list_strategies(State(api): super::State, p: Principal, Path(account): Path<String>) -> ApiResult {
    let account = p.account(&api, &account, Right::Read).await?;
    let list: Vec<StrategyOut> = api.registry.strategies(Some(&account)).await?.iter().map(strategy_out).collect();
    api.log_read(&p, "/api/v1/accounts/{account}/strategies", Some(account.as_str()), 200);
    Ok(ok(list))
}

/// Creates or changes a strategy.
#[utoipa::path(put, path = "/accounts/{account}/strategies/{book}", tag = "accounts",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path)), request_body = StrategyIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<StrategyOut>)), Errors))]
pub async fn put_strategy(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<StrategyIn>,
) -> ApiResult {
    let account = p.account(&api, &account, Right::Write).await?;
    let bk = book(&account, &name)?;
    schema::StrategyDescription::check("description", &b.description)?;
    schema::StrategyKind::check("kind", &b.kind)?;
    let s = Strategy { book: bk, description: b.description, kind: b.kind, enabled: b.enabled };
    s.validate()?;
    api.registry.upsert_strategy(&s, &p.actor()).await?;
    Ok(ok(strategy_out(&s)))
}

/// The active parameters (or `?version=`), with the version as `ETag`.
#[utoipa::path(get, path = "/accounts/{account}/strategies/{book}/params", tag = "params",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path),
           ("version" = Option<schema::Version>, Query, description = "That version (default: the newest)")),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<ParamsOut>), headers(("ETag" = String, description = "The version, `\"v<n>\"`: send it back as `If-Match`"))), Errors))]
pub async fn get_params(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    q: Params,
) -> ApiResult {
    q.only(&["version"])?;
    let account = p.account(&api, &account, Right::Read).await?;
    let b = book(&account, &name)?;
    let version = q.number("version", 1, u64::from(u32::MAX))?.map(|v| v as u32);
    let v = api.registry.params(&b, version).await?.ok_or_else(|| ApiError::not_found("parameters"))?;
    api.log_read(&p, "/api/v1/accounts/{account}/strategies/{book}/params", Some(account.as_str()), 200);
    let mut r = ok(params_out(&v));
    r.headers_mut().insert(header::ETAG, etag(v.version));
    Ok(r)
}

/// Stores new parameters as the newest version. `If-Match` with the ETag
/// of the version edited refuses (412) when someone stored another since.
#[utoipa::path(put, path = "/accounts/{account}/strategies/{book}/params", tag = "params",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path),
           ("If-Match" = Option<schema::IfMatch>, Header, description = "Store only over this version (else 412)")),
    request_body = ParamsIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<ParamsOut>), headers(("ETag" = String, description = "The version, `\"v<n>\"`: send it back as `If-Match`"))), Errors))]
pub async fn put_params(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    headers: HeaderMap,
    Body(b): Body<ParamsIn>,
) -> ApiResult {
    let account = p.account(&api, &account, Right::Write).await?;
    let bk = book(&account, &name)?;
    // the request first (400 for what the document rules out), then what
    // it names (404), then the precondition (412)
    schema::ParamsNote::check("note", &b.note)?;
    schema::document("params", &b.params)?;
    if api.registry.strategy(&bk).await?.is_none() {
        return Err(ApiError::not_found_at("book", "strategy"));
    }
    // `If-Match: "v<version>"` stores only if that is still the latest
    // (atomically, in the store); `*` or no header: unconditionally
    let expected = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => if_match(v.to_str().unwrap_or("?"))?,
    };
    let v = match expected {
        None => api.registry.put_params(&bk, &b.params, &p.actor(), &b.note).await?,
        Some(want) => api.registry.put_params_if(&bk, &b.params, &p.actor(), &b.note, want).await?,
    };
    let mut r = ok(params_out(&v));
    r.headers_mut().insert(header::ETAG, etag(v.version));
    Ok(r)
}

/// Every version, oldest first.
#[utoipa::path(get, path = "/accounts/{account}/strategies/{book}/params/versions", tag = "params",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<ParamsOut>>)), Errors))]
pub async fn param_versions(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
) -> ApiResult {
    let account = p.account(&api, &account, Right::Read).await?;
    let list: Vec<ParamsOut> =
        api.registry.param_history(&book(&account, &name)?).await?.iter().map(params_out).collect();
    api.log_read(&p, "/api/v1/accounts/{account}/strategies/{book}/params/versions", Some(account.as_str()), 200);
    Ok(ok(list))
}

/// What changed between two versions (`from` → `to`).
#[utoipa::path(get, path = "/accounts/{account}/strategies/{book}/params/diff", tag = "params",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path),
           ("from" = schema::Version, Query, description = "The version before (404 when there is none)"),
           ("to" = schema::Version, Query, description = "The version after (404 when there is none)")),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<ChangeOut>>)), Errors))]
pub async fn param_diff(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    q: Params,
) -> ApiResult {
    q.only(&["from", "to"])?;
    let account = p.account(&api, &account, Right::Read).await?;
    let b = book(&account, &name)?;
    let from = q.number("from", 1, u64::from(u32::MAX))?.ok_or_else(|| ApiError::bad("from", "from is required"))?;
    let to = q.number("to", 1, u64::from(u32::MAX))?.ok_or_else(|| ApiError::bad("to", "to is required"))?;
    let a =
        api.registry.params(&b, Some(from as u32)).await?.ok_or_else(|| ApiError::not_found_at("from", "version"))?;
    let z = api.registry.params(&b, Some(to as u32)).await?.ok_or_else(|| ApiError::not_found_at("to", "version"))?;
    let changes: Vec<ChangeOut> = sqdata::diff_params(&a.params, &z.params)
        .into_iter()
        .map(|c| ChangeOut { path: c.path, before: c.before, after: c.after })
        .collect();
    api.log_read(&p, "/api/v1/accounts/{account}/strategies/{book}/params/diff", Some(account.as_str()), 200);
    Ok(ok(changes))
}

/// Stores an earlier version's parameters again as the newest version.
#[utoipa::path(post, path = "/accounts/{account}/strategies/{book}/params/rollback", tag = "params",
    params(("account" = schema::AccountId, Path), ("book" = schema::BookId, Path)), request_body = RollbackIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<ParamsOut>), headers(("ETag" = String, description = "The version, `\"v<n>\"`: send it back as `If-Match`"))), Errors))]
pub async fn rollback_params(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<RollbackIn>,
) -> ApiResult {
    let account = p.account(&api, &account, Right::Write).await?;
    let bk = book(&account, &name)?;
    let to = u32::try_from(b.to)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| ApiError::bad("to", format!("invalid to: versions are 1 to {}", u32::MAX)))?;
    if api.registry.strategy(&bk).await?.is_none() {
        return Err(ApiError::not_found_at("book", "strategy"));
    }
    if api.registry.params(&bk, Some(to)).await?.is_none() {
        return Err(ApiError::unprocessable("to", format!("{bk} has no version {to}")));
    }
    let v = api.registry.rollback_params(&bk, to, &p.actor()).await?;
    let mut r = ok(params_out(&v));
    r.headers_mut().insert(header::ETAG, etag(v.version));
    Ok(r)
}

/// The routes of this area.
pub fn router() -> OpenApiRouter<std::sync::Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(list_accounts))
        .routes(routes!(get_account, put_account))
        .routes(routes!(list_strategies))
        .routes(routes!(put_strategy))
        .routes(routes!(get_params, put_params))
        .routes(routes!(param_versions))
        .routes(routes!(param_diff))
        .routes(routes!(rollback_params))
}
