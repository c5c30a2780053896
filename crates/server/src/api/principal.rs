//! Who is calling and what they may do.
//!
//! A request carries an access token (`Authorization: Bearer <jwt>`) or an
//! API key (`Authorization: Bearer sqk_…` or `X-Api-Key`) — one of them:
//! a request carrying two is refused (401). Every request
//! looks the principal up server-side: the user must be active and its
//! tokens not older than its last password/role/status change, the session
//! open, the key neither revoked nor expired. Grants are read per request
//! too. The lookups go through a one-second cache that every change made
//! through this API flushes at once (so a revoked grant acts on the next
//! request here; a change made by the CLI in another process within a
//! second).
//!
//! The effective right on an account is the lesser of the role's ceiling
//! and the grant (admins need none); an API key narrows it to its accounts.
//! An account the caller may not read is answered exactly like one that
//! does not exist.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use parking_lot::Mutex;
use sqdata::{AccountCode, ApiKey, Right, Role, Session, User, UserStatus};

use super::reply::ApiError;
use super::{Api, secrets};

/// Entries kept for `ttl`.
#[derive(Debug)]
struct TtlMap<K, V> {
    ttl: Duration,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    fn new(ttl: Duration) -> Self {
        TtlMap { ttl, map: Mutex::new(HashMap::new()) }
    }

    fn get(&self, k: &K) -> Option<V> {
        let m = self.map.lock();
        m.get(k).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    fn put(&self, k: K, v: V) {
        let mut m = self.map.lock();
        if m.len() > 50_000 {
            let ttl = self.ttl;
            m.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        m.insert(k, (Instant::now(), v));
    }

    fn clear(&self) {
        self.map.lock().clear();
    }
}

/// The principals' cache.
#[derive(Debug)]
pub struct Cache {
    users: TtlMap<String, Option<Arc<User>>>,
    grants: TtlMap<String, Arc<BTreeMap<AccountCode, Right>>>,
    sessions: TtlMap<String, Option<Session>>,
    keys: TtlMap<String, Option<(ApiKey, String)>>,
    accounts: TtlMap<AccountCode, bool>,
}

impl Cache {
    /// Entries live `ttl`.
    pub fn new(ttl: Duration) -> Cache {
        Cache {
            users: TtlMap::new(ttl),
            grants: TtlMap::new(ttl),
            sessions: TtlMap::new(ttl),
            keys: TtlMap::new(ttl),
            accounts: TtlMap::new(ttl),
        }
    }

    /// Forgets everything (after any change of users, grants, keys, sessions, accounts).
    pub fn flush(&self) {
        self.users.clear();
        self.grants.clear();
        self.sessions.clear();
        self.keys.clear();
        self.accounts.clear();
    }
}

impl Api {
    async fn cached_user(&self, name: &str) -> Result<Option<Arc<User>>, ApiError> {
        if let Some(u) = self.cache.users.get(&name.to_string()) {
            return Ok(u);
        }
        let u = self.auth.user(name).await?.map(Arc::new);
        self.cache.users.put(name.to_string(), u.clone());
        Ok(u)
    }

    async fn cached_grants(&self, name: &str) -> Result<Arc<BTreeMap<AccountCode, Right>>, ApiError> {
        if let Some(g) = self.cache.grants.get(&name.to_string()) {
            return Ok(g);
        }
        let g: BTreeMap<AccountCode, Right> =
            self.auth.grants(name).await?.into_iter().map(|g| (g.account, g.right)).collect();
        let g = Arc::new(g);
        self.cache.grants.put(name.to_string(), g.clone());
        Ok(g)
    }

    async fn cached_session(&self, id: &str) -> Result<Option<Session>, ApiError> {
        if let Some(s) = self.cache.sessions.get(&id.to_string()) {
            return Ok(s);
        }
        let s = self.auth.session(id).await?;
        self.cache.sessions.put(id.to_string(), s.clone());
        Ok(s)
    }

    async fn cached_key(&self, id: &str) -> Result<Option<(ApiKey, String)>, ApiError> {
        if let Some(k) = self.cache.keys.get(&id.to_string()) {
            return Ok(k);
        }
        let k = self.auth.api_key(id).await?;
        self.cache.keys.put(id.to_string(), k.clone());
        Ok(k)
    }

    /// Whether the account is registered (cached).
    pub async fn account_exists(&self, account: &AccountCode) -> Result<bool, ApiError> {
        if let Some(b) = self.cache.accounts.get(account) {
            return Ok(b);
        }
        let b = self.registry.account(account).await?.is_some();
        self.cache.accounts.put(account.clone(), b);
        Ok(b)
    }
}

/// How the principal proved itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Via {
    /// An access token of a session.
    Token {
        /// The session.
        session: String,
    },
    /// An API key.
    Key {
        /// Its id.
        id: String,
        /// The accounts it is limited to.
        accounts: Option<Vec<AccountCode>>,
    },
}

/// The caller, as checked on this request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user (an API key acts as its user).
    pub user: Arc<User>,
    /// The user's grants.
    pub grants: Arc<BTreeMap<AccountCode, Right>>,
    /// Token or key.
    pub via: Via,
    /// The client address.
    pub ip: String,
}

impl Principal {
    /// `user:<name>` or `key:<id>`, for the audit trail and the access log.
    pub fn name(&self) -> String {
        match &self.via {
            Via::Token { .. } => format!("user:{}", self.user.name),
            Via::Key { id, .. } => format!("key:{id}"),
        }
    }

    /// The actor recorded in the registry's audit trail (64 chars max).
    pub fn actor(&self) -> String {
        match &self.via {
            Via::Token { .. } => self.user.name.clone(),
            Via::Key { id, .. } => format!("{}+key:{id}", self.user.name).chars().take(64).collect(),
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.user.role
    }

    /// The effective right on an account: min(role, grant); admins need no
    /// grant; a key narrows to its accounts.
    pub fn right_on(&self, account: &AccountCode) -> Option<Right> {
        if let Via::Key { accounts: Some(list), .. } = &self.via
            && !list.contains(account)
        {
            return None;
        }
        match self.user.role {
            Role::Admin => Some(Right::Write),
            role => self.grants.get(account).map(|g| (*g).min(role.ceiling())),
        }
    }

    /// Requires the admin role.
    pub fn admin(&self) -> Result<(), ApiError> {
        if self.user.role == Role::Admin { Ok(()) } else { Err(ApiError::forbidden("admin only")) }
    }

    /// The account of a path, if the caller may use it for `need`: 404 (the
    /// same as a missing account) when they may not read it, 403 when they
    /// may read but need to write.
    pub async fn account(&self, api: &Api, raw: &str, need: Right) -> Result<AccountCode, ApiError> {
        let Ok(account) = AccountCode::new(raw) else { return Err(ApiError::no_account()) };
        let right = self.right_on(&account);
        if right.is_none() || !api.account_exists(&account).await? {
            return Err(ApiError::no_account());
        }
        if need == Right::Write && right != Some(Right::Write) {
            return Err(ApiError::forbidden("write access to this account"));
        }
        Ok(account)
    }

    /// The accounts the caller may read, among `all`.
    pub fn readable<'a>(&self, all: impl IntoIterator<Item = &'a AccountCode>) -> Vec<AccountCode> {
        all.into_iter().filter(|a| self.right_on(a).is_some()).cloned().collect()
    }
}

fn client_ip(parts: &Parts) -> String {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// The credential a request presents, if any. A request presenting more
/// than one (`X-Api-Key` and `Authorization`, or either twice) is refused:
/// which one acts would be a guess, and a bad credential must never be
/// ignored because a good one rides along.
fn credential(parts: &Parts) -> Result<Option<String>, ApiError> {
    let keys = parts.headers.get_all("x-api-key").iter().count();
    let auths = parts.headers.get_all(header::AUTHORIZATION).iter().count();
    if keys + auths > 1 {
        return Err(ApiError::unauthenticated());
    }
    if let Some(k) = parts.headers.get("x-api-key") {
        return Ok(k.to_str().ok().map(|k| k.trim().to_string()));
    }
    let Some(v) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return Ok(None) };
    let Some((scheme, token)) = v.split_once(' ') else { return Ok(None) };
    Ok(scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string()))
}

impl Api {
    /// Checks the request's credential; `None` when it carries none.
    pub async fn principal(&self, parts: &Parts) -> Result<Option<Principal>, ApiError> {
        let Some(cred) = credential(parts)? else { return Ok(None) };
        let ip = client_ip(parts);
        let now = chrono::Utc::now();
        let p = if let Some((id, secret)) = secrets::parse_api_key(&cred) {
            let Some((key, hash)) = self.cached_key(id).await? else { return Err(ApiError::unauthenticated()) };
            let expired = key.expires_at.is_some_and(|e| e <= now);
            if key.revoked || expired || !secrets::same(&secrets::sha256_hex(secret), &hash) {
                return Err(ApiError::unauthenticated());
            }
            let Some(user) = self.cached_user(&key.user).await? else { return Err(ApiError::unauthenticated()) };
            if user.status != UserStatus::Active {
                return Err(ApiError::unauthenticated());
            }
            let grants = self.cached_grants(&user.name).await?;
            Principal { user, grants, via: Via::Key { id: key.id, accounts: key.accounts }, ip }
        } else {
            let claims = self.keys.verify(&cred, &self.cfg.issuer).map_err(|_| ApiError::unauthenticated())?;
            let Some(user) = self.cached_user(&claims.sub).await? else { return Err(ApiError::unauthenticated()) };
            // tokens issued before the last password/role/status change are void
            if user.status != UserStatus::Active || claims.iat < user.tokens_after.timestamp() {
                return Err(ApiError::unauthenticated());
            }
            let Some(session) = self.cached_session(&claims.sid).await? else {
                return Err(ApiError::unauthenticated());
            };
            if session.revoked || session.expires_at <= now || session.user != user.name {
                return Err(ApiError::unauthenticated());
            }
            let grants = self.cached_grants(&user.name).await?;
            Principal { user, grants, via: Via::Token { session: claims.sid }, ip }
        };
        if let Err(wait) = self.request_limits.take(&p.name()) {
            return Err(ApiError::too_many(wait));
        }
        Ok(Some(p))
    }
}

impl FromRequestParts<Arc<Api>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Principal, ApiError> {
        api.principal(parts).await?.ok_or_else(ApiError::unauthenticated)
    }
}
