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

use super::{Body, Errors, Params};
use crate::api::reply::{ApiError, ApiResult, ok};
use crate::api::{Api, Principal};

/// An account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccountOut {
    /// The broker's account code.
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
    pub name: String,
    /// Broker / gateway.
    #[serde(default)]
    pub broker: String,
    /// Anything else (a JSON object).
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
    pub description: String,
    /// Type.
    #[serde(default)]
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
    /// The parameters (a JSON object).
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
    /// Why.
    #[serde(default)]
    pub note: String,
}

/// A rollback.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackIn {
    /// The version whose parameters become the newest version.
    pub to: u32,
}

/// One change between two versions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeOut {
    /// Key path (`trail.back`).
    pub path: String,
    /// Before (absent: added).
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    /// After (absent: removed).
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

fn book(account: &AccountCode, name: &str) -> Result<BookId, ApiError> {
    Ok(BookId::new(account.as_str(), name)?)
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
#[utoipa::path(get, path = "/accounts/{account}", tag = "accounts", params(("account" = String, Path)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<AccountOut>)), Errors))]
pub async fn get_account(State(api): super::State, p: Principal, Path(account): Path<String>) -> ApiResult {
    let account = p.account(&api, &account, Right::Read).await?;
    let a = api.registry.account(&account).await?.ok_or_else(ApiError::no_account)?;
    api.log_read(&p, "/api/v1/accounts/{account}", Some(account.as_str()), 200);
    Ok(ok(account_out(&a)))
}

/// Creates or changes an account (admin).
#[utoipa::path(put, path = "/accounts/{account}", tag = "accounts", params(("account" = String, Path)),
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
    let a = Account { id: AccountCode::new(&account)?, name: b.name, broker: b.broker, meta: b.meta };
    a.validate()?;
    api.registry.upsert_account(&a, &p.actor()).await?;
    api.cache.flush();
    Ok(ok(account_out(&a)))
}

/// The strategies of an account.
#[utoipa::path(get, path = "/accounts/{account}/strategies", tag = "accounts", params(("account" = String, Path)),
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
    params(("account" = String, Path), ("book" = String, Path)), request_body = StrategyIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<StrategyOut>)), Errors))]
pub async fn put_strategy(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<StrategyIn>,
) -> ApiResult {
    let account = p.account(&api, &account, Right::Write).await?;
    let s = Strategy { book: book(&account, &name)?, description: b.description, kind: b.kind, enabled: b.enabled };
    s.validate()?;
    api.registry.upsert_strategy(&s, &p.actor()).await?;
    Ok(ok(strategy_out(&s)))
}

/// The active parameters (or `?version=`), with the version as `ETag`.
#[utoipa::path(get, path = "/accounts/{account}/strategies/{book}/params", tag = "params",
    params(("account" = String, Path), ("book" = String, Path), ("version" = Option<u32>, Query)),
    security(("bearer" = ["account:read"]), ("api_key" = ["account:read"])),
    responses((status = 200, body = inline(crate::api::Envelope<ParamsOut>)), Errors))]
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
    params(("account" = String, Path), ("book" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body = ParamsIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<ParamsOut>)), Errors))]
pub async fn put_params(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    headers: HeaderMap,
    Body(b): Body<ParamsIn>,
) -> ApiResult {
    let account = p.account(&api, &account, Right::Write).await?;
    let bk = book(&account, &name)?;
    // `If-Match: "<version>"` stores only if that is still the latest
    // (atomically, in the store); `*` or no header: unconditionally
    let expected = match headers.get(header::IF_MATCH).map(|v| v.to_str().unwrap_or("?").trim()) {
        None | Some("*") => None,
        Some(tag) => Some(
            tag.strip_prefix("W/")
                .unwrap_or(tag)
                .trim_matches('"')
                .strip_prefix('v')
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| ApiError::new(StatusCode::PRECONDITION_FAILED, "If-Match names no version of these parameters"))?,
        ),
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
    params(("account" = String, Path), ("book" = String, Path)),
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
    params(("account" = String, Path), ("book" = String, Path), ("from" = u32, Query), ("to" = u32, Query)),
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
        api.registry.params(&b, Some(from as u32)).await?.ok_or_else(|| ApiError::bad("from", "no such version"))?;
    let z = api.registry.params(&b, Some(to as u32)).await?.ok_or_else(|| ApiError::bad("to", "no such version"))?;
    let changes: Vec<ChangeOut> = sqdata::diff_params(&a.params, &z.params)
        .into_iter()
        .map(|c| ChangeOut { path: c.path, before: c.before, after: c.after })
        .collect();
    api.log_read(&p, "/api/v1/accounts/{account}/strategies/{book}/params/diff", Some(account.as_str()), 200);
    Ok(ok(changes))
}

/// Stores an earlier version's parameters again as the newest version.
#[utoipa::path(post, path = "/accounts/{account}/strategies/{book}/params/rollback", tag = "params",
    params(("account" = String, Path), ("book" = String, Path)), request_body = RollbackIn,
    security(("bearer" = ["account:write"]), ("api_key" = ["account:write"])),
    responses((status = 200, body = inline(crate::api::Envelope<ParamsOut>)), Errors))]
pub async fn rollback_params(
    State(api): super::State,
    p: Principal,
    Path((account, name)): Path<(String, String)>,
    Body(b): Body<RollbackIn>,
) -> ApiResult {
    let account = p.account(&api, &account, Right::Write).await?;
    let v = api.registry.rollback_params(&book(&account, &name)?, b.to, &p.actor()).await?;
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
