//! Admin: users, grants, API keys, the audit trail and the access log.
//! Every change is audited by the store in its transaction and flushes the
//! principals' cache, so it acts on the next request.

use axum::extract::{Path, State};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sqdata::{ApiKey, AuditQuery, Grant, Right, Role, User, UserChange, UserStatus};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Body, Errors, Params, schema};
use crate::api::reply::{ApiError, ApiResult, ok};
use crate::api::{Api, Principal, secrets};

/// Most accounts an API key may be limited to (the store's bound).
const MAX_KEY_ACCOUNTS: usize = 1000;

/// A user as the API shows it (never its hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// Name.
    pub name: String,
    /// admin, trader or viewer.
    #[schema(value_type = schema::RoleName)]
    pub role: Role,
    /// active or disabled.
    #[schema(value_type = schema::StatusName)]
    pub status: UserStatus,
    /// Failed logins in a row.
    pub failed_logins: u32,
    /// Locked until (RFC 3339), if locked.
    pub locked_until: Option<String>,
    /// Created at (RFC 3339).
    pub created_at: String,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> UserOut {
        UserOut {
            name: u.name.clone(),
            role: u.role,
            status: u.status,
            failed_logins: u.failed_logins,
            locked_until: u.locked_until.map(|t| t.to_rfc3339()),
            created_at: u.created_at.to_rfc3339(),
        }
    }
}

/// A new user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserIn {
    /// Name: 3 to 64 of letters, digits, `_ . @ -`.
    #[schema(value_type = schema::UserName)]
    pub name: String,
    /// admin, trader or viewer.
    #[schema(value_type = schema::RoleName)]
    pub role: Role,
    /// 12 to 256 characters.
    #[schema(value_type = schema::NewPassword)]
    pub password: String,
}

/// A change of a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchIn {
    /// New role.
    #[serde(default)]
    #[schema(value_type = Option<schema::RoleName>)]
    pub role: Option<Role>,
    /// New status.
    #[serde(default)]
    #[schema(value_type = Option<schema::StatusName>)]
    pub status: Option<UserStatus>,
    /// New password (12 to 256 characters).
    #[serde(default)]
    #[schema(value_type = Option<schema::NewPassword>)]
    pub password: Option<String>,
}

/// A grant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantOut {
    /// The account.
    #[schema(value_type = schema::AccountId)]
    pub account: String,
    /// read or write.
    #[schema(value_type = schema::RightName)]
    pub right: Right,
}

/// The right to grant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantIn {
    /// read or write.
    #[schema(value_type = schema::RightName)]
    pub right: Right,
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyIn {
    /// The user it acts as (422 when there is no such user).
    #[schema(value_type = schema::UserName)]
    pub user: String,
    /// What it is for.
    #[schema(value_type = schema::KeyLabel)]
    pub label: String,
    /// Only these accounts (at most 1000; the user's grants still apply).
    #[serde(default)]
    #[schema(value_type = Option<Vec<schema::AccountId>>, max_items = 1000)]
    pub accounts: Option<Vec<String>>,
    /// Refused after this (RFC 3339; 422 unless in the future).
    #[serde(default)]
    #[schema(value_type = Option<schema::Timestamp>)]
    pub expires_at: Option<String>,
}

/// An API key (its secret only in the answer that created it).
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyOut {
    /// Public id.
    pub id: String,
    /// The user.
    pub user: String,
    /// Label.
    pub label: String,
    /// Accounts it is limited to.
    pub accounts: Option<Vec<String>>,
    /// Created at (RFC 3339).
    pub created_at: String,
    /// Expires at (RFC 3339).
    pub expires_at: Option<String>,
    /// Revoked.
    pub revoked: bool,
    /// The whole key, `sqk_<id>_<secret>`: shown this once, never stored.
    pub key: Option<String>,
}

fn key_out(k: &ApiKey, secret: Option<String>) -> KeyOut {
    KeyOut {
        id: k.id.clone(),
        user: k.user.clone(),
        label: k.label.clone(),
        accounts: k.accounts.as_ref().map(|a| a.iter().map(|x| x.to_string()).collect()),
        created_at: k.created_at.to_rfc3339(),
        expires_at: k.expires_at.map(|t| t.to_rfc3339()),
        revoked: k.revoked,
        key: secret,
    }
}

/// Every user.
#[utoipa::path(get, path = "/users", tag = "admin",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<UserOut>>)), Errors))]
pub async fn list_users(State(api): super::State, p: Principal) -> ApiResult {
    p.admin()?;
    let users: Vec<UserOut> = api.auth.users().await?.iter().map(UserOut::from).collect();
    api.log_read(&p, "/api/v1/users", None, 200);
    Ok(ok(users))
}

/// Creates a user.
#[utoipa::path(post, path = "/users", tag = "admin", request_body = NewUserIn,
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<UserOut>)), Errors))]
pub async fn create_user(State(api): super::State, p: Principal, Body(b): Body<NewUserIn>) -> ApiResult {
    p.admin()?;
    schema::user("name", &b.name)?;
    schema::NewPassword::check("password", &b.password)?;
    if api.auth.user(&b.name).await?.is_some() {
        return Err(ApiError::conflict("name", "a user of this name exists"));
    }
    let hash = api.hash_password(&b.password).await?;
    let now = Utc::now();
    let user = User {
        name: b.name,
        role: b.role,
        status: UserStatus::Active,
        password_hash: hash,
        failed_logins: 0,
        locked_until: None,
        tokens_after: now,
        created_at: now,
    };
    api.auth.create_user(&user, &p.actor()).await?;
    api.cache.flush();
    Ok(ok(UserOut::from(&user)))
}

/// One user.
#[utoipa::path(get, path = "/users/{user}", tag = "admin", params(("user" = schema::UserName, Path)),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<UserOut>)), Errors))]
pub async fn get_user(State(api): super::State, p: Principal, Path(user): Path<String>) -> ApiResult {
    p.admin()?;
    schema::user("user", &user)?;
    let u = api.auth.user(&user).await?.ok_or_else(|| ApiError::not_found("user"))?;
    api.log_read(&p, "/api/v1/users/{user}", None, 200);
    Ok(ok(UserOut::from(&u)))
}

/// Changes a user's role, status or password (its tokens stop working).
/// Not one's own (403): one's password through `/auth/password`, with the
/// current one; one's role or status only by another admin.
#[utoipa::path(patch, path = "/users/{user}", tag = "admin", params(("user" = schema::UserName, Path)), request_body = UserPatchIn,
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<UserOut>)), Errors))]
pub async fn patch_user(
    State(api): super::State,
    p: Principal,
    Path(user): Path<String>,
    Body(b): Body<UserPatchIn>,
) -> ApiResult {
    p.admin()?;
    schema::user("user", &user)?;
    if let Some(pw) = &b.password {
        schema::NewPassword::check("password", pw)?;
    }
    // not on oneself: a stolen token must not reset the password without
    // the current one, nor the last admin disable or demote itself
    let changes_self = user == p.user.name
        && (b.password.is_some()
            || b.role.is_some_and(|r| r != p.user.role)
            || b.status.is_some_and(|s| s != p.user.status));
    if changes_self {
        return Err(ApiError::forbidden(
            "changing your own role, status or password here (use POST /auth/password; another admin changes a role)",
        ));
    }
    let password_hash = match &b.password {
        Some(pw) => Some(api.hash_password(pw).await?),
        None => None,
    };
    let change = UserChange { role: b.role, status: b.status, password_hash };
    let u = api.auth.update_user(&user, &change, &p.actor()).await?.ok_or_else(|| ApiError::not_found("user"))?;
    api.cache.flush();
    Ok(ok(UserOut::from(&u)))
}

/// Lifts a user's lockout.
#[utoipa::path(post, path = "/users/{user}/unlock", tag = "admin", params(("user" = schema::UserName, Path)),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>)), Errors))]
pub async fn unlock_user(State(api): super::State, p: Principal, Path(user): Path<String>) -> ApiResult {
    p.admin()?;
    schema::user("user", &user)?;
    if !api.auth.unlock(&user, &p.actor()).await? {
        return Err(ApiError::not_found("user"));
    }
    api.cache.flush();
    Ok(ok(true))
}

/// A user's grants.
#[utoipa::path(get, path = "/users/{user}/grants", tag = "admin", params(("user" = schema::UserName, Path)),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<GrantOut>>)), Errors))]
pub async fn list_grants(State(api): super::State, p: Principal, Path(user): Path<String>) -> ApiResult {
    p.admin()?;
    schema::user("user", &user)?;
    api.auth.user(&user).await?.ok_or_else(|| ApiError::not_found("user"))?;
    let g: Vec<GrantOut> = api
        .auth
        .grants(&user)
        .await?
        .into_iter()
        .map(|g| GrantOut { account: g.account.to_string(), right: g.right })
        .collect();
    api.log_read(&p, "/api/v1/users/{user}/grants", None, 200);
    Ok(ok(g))
}

/// Grants a user a right on an account (replacing an earlier grant).
#[utoipa::path(put, path = "/users/{user}/grants/{account}", tag = "admin",
    params(("user" = schema::UserName, Path), ("account" = schema::AccountId, Path)), request_body = GrantIn,
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<GrantOut>)), Errors))]
pub async fn put_grant(
    State(api): super::State,
    p: Principal,
    Path((user, account)): Path<(String, String)>,
    Body(b): Body<GrantIn>,
) -> ApiResult {
    p.admin()?;
    schema::user("user", &user)?;
    let account = schema::account("account", &account)?;
    api.auth.user(&user).await?.ok_or_else(|| ApiError::not_found("user"))?;
    if !api.account_exists(&account).await? {
        return Err(ApiError::no_account());
    }
    api.auth.set_grant(&Grant { user, account: account.clone(), right: b.right }, &p.actor()).await?;
    api.cache.flush();
    Ok(ok(GrantOut { account: account.to_string(), right: b.right }))
}

/// Removes a user's grant on an account.
#[utoipa::path(delete, path = "/users/{user}/grants/{account}", tag = "admin",
    params(("user" = schema::UserName, Path), ("account" = schema::AccountId, Path)),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>)), Errors))]
pub async fn delete_grant(
    State(api): super::State,
    p: Principal,
    Path((user, account)): Path<(String, String)>,
) -> ApiResult {
    p.admin()?;
    schema::user("user", &user)?;
    let account = schema::account("account", &account)?;
    let removed = api.auth.revoke_grant(&user, &account, &p.actor()).await?;
    api.cache.flush();
    Ok(ok(removed))
}

/// API keys (of one user with `?user=`).
#[utoipa::path(get, path = "/api-keys", tag = "admin", params(("user" = Option<schema::UserName>, Query)),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<KeyOut>>)), Errors))]
pub async fn list_keys(State(api): super::State, p: Principal, q: Params) -> ApiResult {
    p.admin()?;
    q.only(&["user"])?;
    q.get("user", schema::user)?;
    let keys: Vec<KeyOut> = api.auth.api_keys(q.text("user")).await?.iter().map(|k| key_out(k, None)).collect();
    api.log_read(&p, "/api/v1/api-keys", None, 200);
    Ok(ok(keys))
}

/// Creates an API key; the answer holds its secret, shown this once.
#[utoipa::path(post, path = "/api-keys", tag = "admin", request_body = NewKeyIn,
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<KeyOut>)), Errors))]
pub async fn create_key(State(api): super::State, p: Principal, Body(b): Body<NewKeyIn>) -> ApiResult {
    p.admin()?;
    schema::user("user", &b.user)?;
    schema::KeyLabel::check("label", &b.label)?;
    let accounts = match &b.accounts {
        Some(list) if list.len() > MAX_KEY_ACCOUNTS => {
            return Err(ApiError::bad("accounts", format!("at most {MAX_KEY_ACCOUNTS} accounts")));
        }
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(i, a)| schema::account(&format!("accounts[{i}]"), a))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let expires_at = b.expires_at.as_deref().map(|t| schema::timestamp("expires_at", t)).transpose()?;
    if expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::unprocessable("expires_at", "must be in the future"));
    }
    api.auth.user(&b.user).await?.ok_or_else(|| ApiError::unprocessable("user", "no such user"))?;
    let (whole, id, hash) = secrets::new_api_key()?;
    let key = ApiKey { id, user: b.user, label: b.label, accounts, created_at: Utc::now(), expires_at, revoked: false };
    api.auth.create_api_key(&key, &hash, &p.actor()).await?;
    api.cache.flush();
    Ok(ok(key_out(&key, Some(whole))))
}

/// Revokes an API key.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "admin", params(("id" = schema::ApiKeyId, Path)),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>)), Errors))]
pub async fn revoke_key(State(api): super::State, p: Principal, Path(id): Path<String>) -> ApiResult {
    p.admin()?;
    schema::key_id("id", &id)?;
    if !api.auth.revoke_api_key(&id, &p.actor()).await? {
        return Err(ApiError::not_found("api key"));
    }
    api.cache.flush();
    Ok(ok(true))
}

/// An audit row.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    /// Increasing id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What (`login`, `params.put`, `grant.set`, …).
    pub action: String,
    /// On what.
    pub entity: String,
    /// The detail (any JSON value).
    #[schema(value_type = Value)]
    pub detail: serde_json::Value,
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/audit", tag = "admin",
    params(("entity" = Option<String>, Query, description = "Only rows about this entity (`user:trader`, `book:55009728/prod_pwc`, …)"),
           ("actor" = Option<String>, Query, description = "Only changes by this actor"),
           ("since" = Option<schema::Timestamp>, Query, description = "Only rows at or after this time"),
           ("limit" = Option<u64>, Query, minimum = 1, maximum = 10000, description = "At most this many rows (default 100)")),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<AuditOut>>)), Errors))]
pub async fn audit(State(api): super::State, p: Principal, q: Params) -> ApiResult {
    p.admin()?;
    q.only(&["entity", "actor", "since", "limit"])?;
    let query = AuditQuery {
        entity: q.text("entity").map(String::from),
        actor: q.text("actor").map(String::from),
        since: q.get("since", schema::timestamp)?,
        limit: q.number("limit", 1, u64::from(sqdata::registry::MAX_AUDIT_LIMIT))?.unwrap_or(100) as u32,
    };
    let rows: Vec<AuditOut> = api
        .registry
        .audit(&query)
        .await?
        .into_iter()
        .map(|e| AuditOut {
            id: e.id,
            at: e.at.to_rfc3339(),
            actor: e.actor,
            action: e.action,
            entity: e.entity,
            detail: e.detail,
        })
        .collect();
    api.log_read(&p, "/api/v1/audit", None, 200);
    Ok(ok(rows))
}

/// An access-log row.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessOut {
    /// When (RFC 3339).
    pub at: String,
    /// `user:<name>` or `key:<id>`.
    pub principal: String,
    /// Method.
    pub method: String,
    /// Route template.
    pub route: String,
    /// Account, if any.
    pub account: Option<String>,
    /// Status.
    pub status: u16,
    /// Client address.
    pub ip: String,
}

/// The access log of reads, newest first.
#[utoipa::path(get, path = "/access-log", tag = "admin", params(("limit" = Option<u64>, Query, minimum = 1, maximum = 10000, description = "At most this many rows (default 100)")),
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<Vec<AccessOut>>)), Errors))]
pub async fn access_log(State(api): super::State, p: Principal, q: Params) -> ApiResult {
    p.admin()?;
    q.only(&["limit"])?;
    let limit = q.number("limit", 1, 10_000)?.unwrap_or(100) as u32;
    let rows: Vec<AccessOut> = api
        .auth
        .access_log(limit)
        .await?
        .into_iter()
        .map(|e| AccessOut {
            at: e.at.to_rfc3339(),
            principal: e.principal,
            method: e.method,
            route: e.route,
            account: e.account,
            status: e.status,
            ip: e.ip,
        })
        .collect();
    Ok(ok(rows))
}

/// The routes of this area.
pub fn router() -> OpenApiRouter<std::sync::Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, patch_user))
        .routes(routes!(unlock_user))
        .routes(routes!(list_grants))
        .routes(routes!(put_grant, delete_grant))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
        .routes(routes!(audit))
        .routes(routes!(access_log))
}
