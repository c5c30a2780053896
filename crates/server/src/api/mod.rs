//! The REST API v1 under `/api/v1`: users, roles, JWT and API keys,
//! account isolation, audit, OpenAPI.
//!
//! - `secrets`: signing keys, tokens, API keys, password hashing.
//! - `principal`: who is calling (an access token or an API key), looked up
//!   server-side on every request (a short-lived cache, flushed by every
//!   change made here), and what they may do on an account.
//! - `reply`: the envelope `{code, data, message}`, pages, `ApiError`.
//! - `limits`: login and request rates, the access log queue.
//! - `routes/*`: the operations, each declaring its permission as the
//!   OpenAPI security scope it needs (checked by a test for every route).
//! - `doc`: the OpenAPI document and the vendored Swagger UI.

pub mod doc;
pub mod hasher;
pub mod hot;
pub mod limits;
pub mod principal;
pub mod reply;
pub mod routes;
pub mod secrets;

use std::sync::Arc;
use std::time::Duration;

use sqdata::{ApiConfig, AuthStore, Opened, RegistryStore};

pub use principal::Principal;
pub use reply::{ApiError, Envelope};

/// Everything the API's handlers share.
#[derive(Debug)]
pub struct Api {
    /// The trading stores.
    pub opened: Opened,
    /// Accounts, strategies, parameters, audit.
    pub registry: Arc<dyn RegistryStore>,
    /// Users, grants, keys, sessions, access log.
    pub auth: Arc<dyn AuthStore>,
    /// The access-token signing keys.
    pub keys: secrets::KeyRing,
    /// The `[api]` settings.
    pub cfg: ApiConfig,
    /// Password hashing on its own low-priority threads.
    pub hasher: hasher::Hasher,
    /// Login attempts per client address and per user name.
    pub login_limits: limits::Limiter,
    /// Requests per principal.
    pub request_limits: limits::Limiter,
    /// The principals' cache (users, grants, sessions, keys).
    pub cache: principal::Cache,
    /// The access log's queue.
    pub access: limits::AccessLog,
    /// The last positions answer per book.
    pub positions: hot::PositionsCache,
    /// The background prober's last snapshot (shared with `/readyz`).
    pub status: Arc<parking_lot::RwLock<Option<crate::monitor::Snapshot>>>,
}

impl Api {
    /// The API over `opened`, the registry and the auth store (the same SQL
    /// store, usually), with the keys and settings given.
    pub fn new(
        opened: Opened,
        registry: Arc<dyn RegistryStore>,
        auth: Arc<dyn AuthStore>,
        keys: secrets::KeyRing,
        cfg: ApiConfig,
        status: Arc<parking_lot::RwLock<Option<crate::monitor::Snapshot>>>,
    ) -> Arc<Api> {
        let per_minute = f64::from(cfg.login_per_minute);
        let per_second = f64::from(cfg.requests_per_second);
        let access = limits::AccessLog::start(auth.clone());
        Arc::new(Api {
            opened,
            registry,
            hasher: hasher::Hasher::start(cfg.password_hashers),
            login_limits: limits::Limiter::new(per_minute / 60.0, per_minute),
            request_limits: limits::Limiter::new(per_second, per_second),
            cache: principal::Cache::new(Duration::from_secs(1)),
            auth,
            keys,
            cfg,
            access,
            positions: hot::PositionsCache::default(),
            status,
        })
    }
}
