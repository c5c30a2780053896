//! `/api/v1/auth`: login, refresh, logout, who am I, password change.
//!
//! A login checks the password with Argon2id off the executor behind the
//! hashing semaphore (unknown users cost the same as wrong passwords, with
//! one answer for both), counts failures and locks the user after
//! `api.lockout_failures` in a row; logins are rate-limited per client
//! address and per user name. It answers a short-lived access token and an
//! opaque refresh token (also as an HttpOnly cookie) that rotates on every
//! use within the session's 24 h; presenting a rotated-away refresh token
//! ends the session. Every login, failure, lockout, reuse and password
//! change is in the audit trail.

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use sqdata::{Refresh, Right, Role, Session, UserChange, UserStatus};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Body, Errors, schema};
use crate::api::reply::{ApiError, ApiResult, ok};
use crate::api::{Api, Principal, principal::Via, secrets};

/// Login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    /// User name (one no user can have is refused like a wrong password: 401).
    #[schema(value_type = schema::UserName)]
    pub user: String,
    /// Password.
    #[schema(value_type = schema::PresentedPassword)]
    pub password: String,
}

/// Tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokensOut {
    /// The access token (JWT, HS256) for `Authorization: Bearer`.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// The refresh token (also set as an HttpOnly cookie); rotates on every use.
    pub refresh_token: String,
    /// When the session ends whatever happens (RFC 3339).
    pub session_expires_at: String,
}

/// A refresh (the token in the body, or the `sqdata_refresh` cookie).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshIn {
    /// The refresh token (optional when the cookie carries it).
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// A password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordIn {
    /// The current password.
    #[schema(value_type = schema::PresentedPassword)]
    pub current: String,
    /// The new one (12 to 256 characters).
    #[schema(value_type = schema::NewPassword)]
    pub new: String,
}

/// Who is calling.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    /// User name.
    pub user: String,
    /// Role.
    #[schema(value_type = schema::RoleName)]
    pub role: Role,
    /// `token` or `key`.
    #[schema(value_type = schema::ViaName)]
    pub via: String,
    /// Accounts and the effective right on each (`read`/`write`); admins see `*`.
    pub accounts: Vec<AccountRight>,
}

/// An account and the effective right on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountRight {
    /// Account code (`*`: every account, for admins).
    pub account: String,
    /// `read` or `write`.
    #[schema(value_type = schema::RightName)]
    pub right: Right,
}

const COOKIE: &str = "sqdata_refresh";

fn invalid_login() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid user or password, or the user is locked")
}

impl Api {
    /// Argon2id on the hashing threads; a full queue is 503 (retry), never
    /// a failed attempt.
    async fn check_password(&self, password: &str, phc: &str) -> Result<bool, ApiError> {
        self.hasher.verify(password, phc).await.map_err(|_| {
            let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy checking passwords; retry");
            e.headers.push((header::RETRY_AFTER, HeaderValue::from_static("1")));
            e
        })
    }

    /// Hashes a new password on the hashing threads.
    pub async fn hash_password(&self, password: &str) -> Result<String, ApiError> {
        secrets::check_password(password)?;
        self.hasher
            .hash(password)
            .await
            .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy hashing passwords; retry"))?
            .map_err(ApiError::from)
    }

    /// A new access token for a session.
    fn access_token(&self, user: &str, session: &str) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let claims = secrets::Claims {
            iss: self.cfg.issuer.clone(),
            aud: self.cfg.issuer.clone(),
            sub: user.to_string(),
            sid: session.to_string(),
            jti: secrets::random_token(12)?,
            iat: now,
            nbf: now,
            exp: now + self.cfg.access_ttl_s as i64,
        };
        Ok(self.keys.sign(&claims)?)
    }

    fn tokens(&self, user: &str, session: &Session, refresh: String) -> ApiResult {
        let out = TokensOut {
            access_token: self.access_token(user, &session.id)?,
            token_type: "Bearer".into(),
            expires_in: self.cfg.access_ttl_s,
            refresh_token: refresh.clone(),
            session_expires_at: session.expires_at.to_rfc3339(),
        };
        let max_age = (session.expires_at - Utc::now()).num_seconds().max(0);
        let cookie =
            format!("{COOKIE}={refresh}; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age={max_age}");
        let mut r = ok(out);
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(r)
    }
}

/// Signs in.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginIn,
    security(()),
    responses((status = 200, body = inline(crate::api::Envelope<TokensOut>),
        headers(("Set-Cookie" = String, description = "The refresh token, `sqdata_refresh`, HttpOnly"))), Errors))]
pub async fn login(
    State(api): super::State,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    Body(b): Body<LoginIn>,
) -> ApiResult {
    let ip = addr.ip().to_string();
    // per client address and per user name, before any hashing
    for key in [format!("ip:{ip}"), format!("user:{}", b.user.chars().take(64).collect::<String>())] {
        if let Err(wait) = api.login_limits.take(&key) {
            return Err(ApiError::too_many(wait));
        }
    }
    // an overlong name or password: the same answer as a wrong one, nothing
    // hashed (a name outside the pattern is looked up, found by no one and
    // audited like any unknown user)
    if b.user.len() > 64 || schema::PresentedPassword::check("password", &b.password).is_err() {
        return Err(invalid_login());
    }
    let user = api.auth.user(&b.user).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone()).unwrap_or_else(|| secrets::decoy_hash().to_string());
    let good = api.check_password(&b.password, &hash).await?;
    let now = Utc::now();
    let entity = format!("user:{}", b.user.chars().take(64).collect::<String>());
    let Some(user) = user else {
        let _ = api.auth.audit_event("anonymous", "login.fail", &entity, serde_json::json!({ "ip": ip })).await;
        return Err(invalid_login());
    };
    let locked = user.locked_until.is_some_and(|t| t > now);
    if !good || locked || user.status != UserStatus::Active {
        if !good && !locked {
            let until = now + Duration::seconds(api.cfg.lockout_s as i64);
            api.auth.login_failed(&user.name, api.cfg.lockout_failures, until).await?;
        }
        let why = if locked {
            "locked"
        } else if !good {
            "password"
        } else {
            "disabled"
        };
        let _ =
            api.auth.audit_event(&user.name, "login.fail", &entity, serde_json::json!({ "ip": ip, "why": why })).await;
        // no cache flush: a failed login changes nothing a principal is
        // checked against (a storm of them must not slow everyone's reads)
        return Err(invalid_login());
    }
    api.auth.login_succeeded(&user.name).await?;
    let sid = secrets::random_token(16)?;
    let (refresh, refresh_hash) = secrets::new_refresh(&sid)?;
    let session = Session {
        id: sid,
        user: user.name.clone(),
        created_at: now,
        expires_at: now + Duration::seconds(api.cfg.session_ttl_s as i64),
        revoked: false,
    };
    api.auth.create_session(&session, &refresh_hash).await?;
    api.auth.audit_event(&user.name, "login", &entity, serde_json::json!({ "ip": ip, "session": session.id })).await?;
    // a new session id was never cached: nothing to flush
    api.tokens(&user.name, &session, refresh)
}

/// Trades a refresh token for new tokens (the old refresh token is spent).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshIn,
    security(()),
    responses((status = 200, body = inline(crate::api::Envelope<TokensOut>),
        headers(("Set-Cookie" = String, description = "The refresh token, `sqdata_refresh`, HttpOnly"))), Errors))]
pub async fn refresh(State(api): super::State, headers: HeaderMap, Body(b): Body<RefreshIn>) -> ApiResult {
    let from_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")).map(String::from));
    let token = b.refresh_token.or(from_cookie).ok_or_else(ApiError::unauthenticated)?;
    let (sid, hash) = secrets::parse_refresh(&token).ok_or_else(ApiError::unauthenticated)?;
    // a session id no session can have: as unknown as any other (not 400)
    if !(8..=64).contains(&sid.len()) || !sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ApiError::unauthenticated());
    }
    let (next, next_hash) = secrets::new_refresh(sid)?;
    match api.auth.refresh(sid, &hash, &next_hash, Utc::now()).await? {
        Refresh::Rotated(session) => {
            let user = api.auth.user(&session.user).await?.filter(|u| u.status == UserStatus::Active);
            let Some(user) = user else { return Err(ApiError::unauthenticated()) };
            api.tokens(&user.name, &session, next)
        }
        Refresh::Reused(_) => {
            // the store revoked the session and audited the reuse
            api.cache.flush();
            Err(ApiError::unauthenticated())
        }
        Refresh::Invalid => Err(ApiError::unauthenticated()),
    }
}

/// Ends the caller's session (its access and refresh tokens stop working).
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    security(("bearer" = ["authenticated"]), ("api_key" = ["authenticated"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>),
        headers(("Set-Cookie" = String, description = "Clears `sqdata_refresh`"))), Errors))]
pub async fn logout(State(api): super::State, p: Principal) -> ApiResult {
    let Via::Token { session } = &p.via else { return Err(ApiError::forbidden("an API key has no session")) };
    let ended = api.auth.revoke_session(session, &p.actor()).await?;
    api.cache.flush();
    let mut r = ok(ended);
    let clear = format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// The caller: user, role, and the accounts it may use.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    security(("bearer" = ["authenticated"]), ("api_key" = ["authenticated"])),
    responses((status = 200, body = inline(crate::api::Envelope<MeOut>)), Errors))]
pub async fn me(State(api): super::State, p: Principal) -> ApiResult {
    let accounts = if p.role() == Role::Admin && !matches!(p.via, Via::Key { accounts: Some(_), .. }) {
        vec![AccountRight { account: "*".into(), right: Right::Write }]
    } else {
        let mut list: Vec<_> = p.grants.keys().cloned().collect();
        if let Via::Key { accounts: Some(k), .. } = &p.via {
            list.extend(k.iter().cloned());
        }
        list.sort();
        list.dedup();
        list.into_iter()
            .filter_map(|a| p.right_on(&a).map(|right| AccountRight { account: a.to_string(), right }))
            .collect()
    };
    api.log_read(&p, "/api/v1/auth/me", None, 200);
    Ok(ok(MeOut {
        user: p.user.name.clone(),
        role: p.role(),
        via: if matches!(p.via, Via::Token { .. }) { "token".into() } else { "key".into() },
        accounts,
    }))
}

/// Changes the caller's password; every token of the user stops working
/// (sign in again).
#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = PasswordIn,
    security(("bearer" = ["authenticated"]), ("api_key" = ["authenticated"])),
    responses((status = 200, body = inline(crate::api::Envelope<bool>)), Errors))]
pub async fn password(State(api): super::State, p: Principal, Body(b): Body<PasswordIn>) -> ApiResult {
    if matches!(p.via, Via::Key { .. }) {
        return Err(ApiError::forbidden("an API key cannot change a password"));
    }
    schema::PresentedPassword::check("current", &b.current)?;
    schema::NewPassword::check("new", &b.new)?;
    if !api.check_password(&b.current, &p.user.password_hash).await? {
        return Err(ApiError::unprocessable("current", "the current password does not match"));
    }
    let hash = api.hash_password(&b.new).await?;
    let change = UserChange { password_hash: Some(hash), ..UserChange::default() };
    api.auth.update_user(&p.user.name, &change, &p.actor()).await?;
    api.cache.flush();
    Ok(ok(true))
}

/// The routes of this area.
pub fn router() -> OpenApiRouter<std::sync::Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(password))
}
