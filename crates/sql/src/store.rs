//! [`RegistryStore`] and [`AuthStore`] on sqlx's `Any` driver: the same
//! queries on MySQL / MariaDB and SQLite; only the migrations differ per
//! dialect. This file holds the store itself (connection, migrations, error
//! mapping, retries) and the trait impls, which delegate to the area modules
//! holding the queries (`accounts`, `strategies`, `params`, `audit`, `dump`;
//! for auth `users`, `grants`, `keys`, `sessions`, `access`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sqdata_core::{
    AccessEntry, Account, AccountCode, ApiKey, AuditEntry, AuditQuery, AuthStore, BackendHealth, BookId, Error, Grant,
    HealthCheck, ParamVersion, Refresh, RegistryDump, RegistryStore, Result, Session, Strategy, User, UserChange,
    async_trait,
};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

use crate::config::{SqlConfig, redact};
use crate::{access, accounts, audit, dump, grants, keys, params, sessions, strategies, users};

#[cfg(feature = "mysql")]
static MYSQL: Migrator = sqlx::migrate!("migrations/mysql");
#[cfg(feature = "sqlite")]
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// The registry on MySQL/MariaDB or SQLite.
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    backend: &'static str,
    url: String,
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore").field("backend", &self.backend).field("url", &redact(&self.url)).finish()
    }
}

/// A failed attempt: a driver error (maybe a conflict worth retrying) or a
/// final answer such as bad input.
pub(crate) enum Fail {
    Sql(sqlx::Error),
    Core(Error),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Fail {
        Fail::Sql(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Core(e)
    }
}

pub(crate) type Attempt<T> = std::result::Result<T, Fail>;

/// Concurrent writers collide on a version number or a lock: try again.
fn is_conflict(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else { return false };
    if d.is_unique_violation() {
        return true;
    }
    let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
    // MySQL deadlock / serialization (40001), lock wait timeout (1205 has
    // SQLSTATE HY000); SQLite BUSY (5), BUSY_SNAPSHOT (517), LOCKED (6).
    matches!(code.as_str(), "40001" | "5" | "517" | "6" | "262")
        || d.message().contains("database is locked")
        || d.message().contains("Lock wait timeout")
}

const RETRIES: u32 = 40;

impl SqlStore {
    /// Connects (creating a SQLite file if needed) and runs the migrations.
    pub async fn open(cfg: SqlConfig) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = cfg.backend()?;
        const BUILT: [(&str, bool); 2] = [("mysql", cfg!(feature = "mysql")), ("sqlite", cfg!(feature = "sqlite"))];
        let compiled = BUILT.iter().any(|(b, on)| *b == backend && *on);
        if !compiled {
            return Err(Error::Config(format!("this build has no {backend} driver (cargo feature `{backend}`)")));
        }
        let mut url = cfg.url.replacen("mariadb:", "mysql:", 1);
        if backend == "sqlite" {
            // A fresh data folder: create the file's directory.
            let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
            let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !path.starts_with(":memory:")) {
                let dir = dir.to_path_buf();
                tokio::task::spawn_blocking(move || std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e)))
                    .await
                    .map_err(|e| Error::Config(format!("opening the registry: {e}")))??;
            }
        }
        if backend == "sqlite" && !url.contains("mode=") {
            url.push_str(if url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
        }
        let pool = AnyPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .acquire_timeout(Duration::from_millis(cfg.connect_timeout_ms))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == "sqlite" {
                        // Readers never block the writer; wait for a lock instead
                        // of failing; enforce the account reference.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(|e| unavailable(backend, &cfg.url, e))?;
        let migrator: &Migrator = match backend {
            #[cfg(feature = "mysql")]
            "mysql" => &MYSQL,
            #[cfg(feature = "sqlite")]
            "sqlite" => &SQLITE,
            _ => unreachable!("checked above"),
        };
        migrate(&pool, backend, migrator).await?;
        Ok(SqlStore { pool, backend, url: cfg.url })
    }

    /// `mysql` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await
    }

    fn err(&self, e: sqlx::Error) -> Error {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => unavailable(self.backend, &self.url, e),
            e => {
                let retryable = is_conflict(&e);
                Error::Backend { backend: self.backend, message: e.to_string(), retryable, source: Some(Box::new(e)) }
            }
        }
    }

    fn fail(&self, f: Fail) -> Error {
        match f {
            Fail::Sql(e) => self.err(e),
            Fail::Core(e) => e,
        }
    }

    /// Runs one transaction, retrying it when concurrent writers collide.
    /// Runs a change, again after a key or lock conflict (with jitter).
    /// Latency and errors are measured by the facade's `Observed` layer.
    pub(crate) async fn retry<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let mut n = 0;
        loop {
            match attempt().await {
                Err(Fail::Sql(e)) if n < RETRIES && is_conflict(&e) => {
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(jitter_ms(5 * u64::from(n.min(8))))).await;
                }
                other => break other.map_err(|f| self.fail(f)),
            }
        }
    }

    /// Runs a read, mapping its failure.
    pub(crate) async fn read<T>(&self, fut: impl Future<Output = Attempt<T>>) -> Result<T> {
        fut.await.map_err(|f| self.fail(f))
    }
}

/// 1..=max milliseconds, so colliding writers do not collide again in step.
fn jitter_ms(max: u64) -> u64 {
    use std::hash::BuildHasher;
    1 + std::collections::hash_map::RandomState::new().hash_one(Instant::now()) % max.max(1)
}

/// Runs the migrations. On MySQL, processes opening one database at once are
/// serialized by a named lock held on the migrating connection (MySQL DDL is
/// not transactional: a second migrator would find the first one's
/// half-applied, "dirty" migration).
async fn migrate(pool: &AnyPool, backend: &'static str, migrator: &Migrator) -> Result<()> {
    let failed = |e: &dyn fmt::Display| Error::Backend {
        backend,
        message: format!("migrations failed: {e}"),
        retryable: false,
        source: None,
    };
    let mut conn = pool.acquire().await.map_err(|e| failed(&e))?;
    if backend == "mysql" {
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK('sqdata_registry_migrate', 60)")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| failed(&e))?;
        if got != Some(1) {
            return Err(failed(&"another process held the migration lock for 60 s"));
        }
    }
    let r = migrator.run(&mut *conn).await.map_err(|e| failed(&e));
    if backend == "mysql" {
        let _ = sqlx::query("SELECT RELEASE_LOCK('sqdata_registry_migrate')").execute(&mut *conn).await;
    }
    r
}

fn unavailable(backend: &'static str, url: &str, e: sqlx::Error) -> Error {
    Error::Unavailable { backend, message: format!("{}: {e}", redact(url)), source: Some(Box::new(e)) }
}

#[async_trait]
impl RegistryStore for SqlStore {
    async fn upsert_account(&self, account: &Account, actor: &str) -> Result<()> {
        accounts::upsert_account(self, account, actor).await
    }

    async fn account(&self, id: &AccountCode) -> Result<Option<Account>> {
        accounts::account(self, id).await
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        accounts::accounts(self).await
    }

    async fn delete_account(&self, id: &AccountCode, actor: &str) -> Result<bool> {
        accounts::delete_account(self, id, actor).await
    }

    async fn upsert_strategy(&self, strategy: &Strategy, actor: &str) -> Result<()> {
        strategies::upsert_strategy(self, strategy, actor).await
    }

    async fn strategy(&self, book: &BookId) -> Result<Option<Strategy>> {
        strategies::strategy(self, book).await
    }

    async fn strategies(&self, account: Option<&AccountCode>) -> Result<Vec<Strategy>> {
        strategies::strategies(self, account).await
    }

    async fn delete_strategy(&self, book: &BookId, actor: &str) -> Result<bool> {
        strategies::delete_strategy(self, book, actor).await
    }

    async fn put_params(
        &self,
        book: &BookId,
        params: &Map<String, Value>,
        actor: &str,
        note: &str,
    ) -> Result<ParamVersion> {
        params::put_params(self, book, params, actor, note, None).await
    }

    async fn put_params_if(
        &self,
        book: &BookId,
        params: &Map<String, Value>,
        actor: &str,
        note: &str,
        expected: u32,
    ) -> Result<ParamVersion> {
        params::put_params(self, book, params, actor, note, Some(expected)).await
    }

    async fn params(&self, book: &BookId, version: Option<u32>) -> Result<Option<ParamVersion>> {
        params::params(self, book, version).await
    }

    async fn param_history(&self, book: &BookId) -> Result<Vec<ParamVersion>> {
        params::param_history(self, book).await
    }

    async fn rollback_params(&self, book: &BookId, to: u32, actor: &str) -> Result<ParamVersion> {
        params::rollback_params(self, book, to, actor).await
    }

    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        audit::query(self, q).await
    }

    async fn dump(&self) -> Result<RegistryDump> {
        dump::dump(self).await
    }

    async fn restore_dump(&self, dump: &RegistryDump, actor: &str) -> Result<()> {
        dump::restore_dump(self, dump, actor).await
    }
}

#[async_trait]
impl AuthStore for SqlStore {
    async fn create_user(&self, user: &User, actor: &str) -> Result<()> {
        users::create_user(self, user, actor).await
    }

    async fn user(&self, name: &str) -> Result<Option<User>> {
        users::user(self, name).await
    }

    async fn users(&self) -> Result<Vec<User>> {
        users::users(self).await
    }

    async fn update_user(&self, name: &str, change: &UserChange, actor: &str) -> Result<Option<User>> {
        users::update_user(self, name, change, actor).await
    }

    async fn login_failed(&self, name: &str, max_failures: u32, lock_until: DateTime<Utc>) -> Result<Option<User>> {
        users::login_failed(self, name, max_failures, lock_until).await
    }

    async fn login_succeeded(&self, name: &str) -> Result<()> {
        users::login_succeeded(self, name).await
    }

    async fn unlock(&self, name: &str, actor: &str) -> Result<bool> {
        users::unlock(self, name, actor).await
    }

    async fn set_grant(&self, grant: &Grant, actor: &str) -> Result<()> {
        grants::set_grant(self, grant, actor).await
    }

    async fn revoke_grant(&self, user: &str, account: &AccountCode, actor: &str) -> Result<bool> {
        grants::revoke_grant(self, user, account, actor).await
    }

    async fn grants(&self, user: &str) -> Result<Vec<Grant>> {
        grants::grants(self, user).await
    }

    async fn create_api_key(&self, key: &ApiKey, secret_hash: &str, actor: &str) -> Result<()> {
        keys::create_api_key(self, key, secret_hash, actor).await
    }

    async fn api_key(&self, id: &str) -> Result<Option<(ApiKey, String)>> {
        keys::api_key(self, id).await
    }

    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>> {
        keys::api_keys(self, user).await
    }

    async fn revoke_api_key(&self, id: &str, actor: &str) -> Result<bool> {
        keys::revoke_api_key(self, id, actor).await
    }

    async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<()> {
        sessions::create_session(self, session, refresh_hash).await
    }

    async fn session(&self, id: &str) -> Result<Option<Session>> {
        sessions::session(self, id).await
    }

    async fn refresh(
        &self,
        session_id: &str,
        presented_hash: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Refresh> {
        sessions::refresh(self, session_id, presented_hash, new_hash, now).await
    }

    async fn revoke_session(&self, id: &str, actor: &str) -> Result<bool> {
        sessions::revoke_session(self, id, actor).await
    }

    async fn log_access(&self, entries: &[AccessEntry]) -> Result<()> {
        access::log_access(self, entries).await
    }

    async fn access_log(&self, limit: u32) -> Result<Vec<AccessEntry>> {
        access::access_log(self, limit).await
    }

    async fn audit_event(&self, actor: &str, action: &str, entity: &str, detail: Value) -> Result<()> {
        access::audit_event(self, actor, action, entity, detail).await
    }
}

#[async_trait]
impl HealthCheck for SqlStore {
    async fn health(&self) -> BackendHealth {
        let t = Instant::now();
        let r: std::result::Result<i64, sqlx::Error> =
            sqlx::query_scalar("SELECT COUNT(*) FROM sq_accounts").fetch_one(&self.pool).await;
        let latency = t.elapsed().max(Duration::from_nanos(1));
        let mut details = BTreeMap::new();
        details.insert("url".into(), json!(redact(&self.url)));
        details.insert("pool_size".into(), json!(self.pool.size()));
        if let Ok(n) = &r {
            details.insert("accounts".into(), json!(n));
        }
        metrics::gauge!("sqdata_backend_up", "backend" => self.backend).set(if r.is_ok() { 1.0 } else { 0.0 });
        BackendHealth {
            backend: self.backend.into(),
            up: r.is_ok(),
            latency,
            details,
            error: r.err().map(|e| self.err(e).to_string()),
        }
    }
}
