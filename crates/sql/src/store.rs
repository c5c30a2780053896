//! [`RegistryStore`] on sqlx's `Any` driver: the same queries on MySQL /
//! MariaDB and SQLite; only the migrations differ per dialect.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sqdata_core::registry::{account_entity, book_entity, validate_actor, validate_document};
use sqdata_core::{
    Account, AccountCode, AuditEntry, AuditQuery, BackendHealth, BookId, Error, HealthCheck, ParamVersion,
    RegistryDump, RegistryStore, Result, Strategy, async_trait,
};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Row, Transaction};

#[cfg(feature = "mysql")]
static MYSQL: Migrator = sqlx::migrate!("migrations/mysql");
#[cfg(feature = "sqlite")]
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// Where the registry lives (`[registry]` in sqdata.toml).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqlConfig {
    /// `mysql://user:password@host:3306/db` or `sqlite:///path/registry.db`
    /// (created if missing).
    pub url: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long to wait for a connection.
    pub connect_timeout_ms: u64,
}

impl Default for SqlConfig {
    fn default() -> Self {
        SqlConfig { url: "sqlite://sqdata.db".into(), max_connections: 4, connect_timeout_ms: 5_000 }
    }
}

impl SqlConfig {
    /// A relative SQLite path (`sqlite://sqdata.db`) made relative to `root`.
    pub fn rooted(mut self, root: &std::path::Path) -> SqlConfig {
        if let Some(rest) = self.url.strip_prefix("sqlite://")
            && !rest.starts_with('/')
            && !rest.starts_with(":memory:")
        {
            self.url = format!("sqlite://{}", root.join(rest).display());
        }
        self
    }

    /// `mysql` or `sqlite`, or a configuration error.
    pub fn backend(&self) -> Result<&'static str> {
        if self.url.starts_with("mysql:") || self.url.starts_with("mariadb:") {
            Ok("mysql")
        } else if self.url.starts_with("sqlite:") {
            Ok("sqlite")
        } else {
            Err(Error::Config(format!(
                "registry url {:?}: expected mysql://user:password@host:3306/db or sqlite://path",
                redact(&self.url)
            )))
        }
    }
}

impl fmt::Debug for SqlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConfig")
            .field("url", &redact(&self.url))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish()
    }
}

/// `scheme://user:***@host/…`: the password never reaches a log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// The registry on MySQL/MariaDB or SQLite.
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
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
enum Fail {
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

type Attempt<T> = std::result::Result<T, Fail>;

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

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn time(ms: i64, location: &str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| Error::corrupt(location, format!("timestamp {ms} out of range")))
}

fn object(text: &str, location: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::corrupt(location, "not a JSON object")),
        Err(e) => Err(Error::corrupt(location, e.to_string())),
    }
}

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
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
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
    async fn retry<T, F, Fut>(&self, op: &'static str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        sqdata_core::obs::timed(self.backend, op, async {
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
        })
        .await
    }

    async fn read<T>(&self, op: &'static str, fut: impl Future<Output = Attempt<T>>) -> Result<T> {
        sqdata_core::obs::timed(self.backend, op, async { fut.await.map_err(|f| self.fail(f)) }).await
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

async fn audit(
    tx: &mut Transaction<'static, Any>,
    actor: &str,
    action: &str,
    entity: &str,
    detail: Value,
) -> Attempt<()> {
    sqlx::query("INSERT INTO sq_audit (at_ms, actor, action, entity, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(now_ms())
        .bind(actor)
        .bind(action)
        .bind(entity)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A text column. MySQL reports TEXT columns as BLOB through the `Any`
/// driver, so they arrive as bytes there and as text on SQLite.
fn text(r: &AnyRow, col: &str) -> Attempt<String> {
    match r.try_get::<String, _>(col) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes: Vec<u8> = r.try_get(col)?;
            String::from_utf8(bytes).map_err(|e| Error::corrupt(col, format!("not UTF-8: {e}")).into())
        }
    }
}

fn account_row(r: &AnyRow) -> Attempt<Account> {
    let id: String = r.try_get("id")?;
    let location = format!("sq_accounts[{id}]");
    Ok(Account {
        id: AccountCode::new(&id).map_err(|e| Error::corrupt(&location, e.to_string()))?,
        name: r.try_get("name")?,
        broker: r.try_get("broker")?,
        meta: object(&text(r, "meta")?, &location)?,
    })
}

fn strategy_row(r: &AnyRow) -> Attempt<Strategy> {
    let (a, b): (String, String) = (r.try_get("account")?, r.try_get("book")?);
    let location = format!("sq_strategies[{a}/{b}]");
    Ok(Strategy {
        book: BookId::new(&a, &b).map_err(|e| Error::corrupt(&location, e.to_string()))?,
        description: text(r, "description")?,
        kind: text(r, "kind")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
    })
}

fn param_row(book: &BookId, r: &AnyRow) -> Attempt<ParamVersion> {
    let version: i64 = r.try_get("version")?;
    let location = format!("sq_params[{book} v{version}]");
    Ok(ParamVersion {
        book: book.clone(),
        version: u32::try_from(version).map_err(|_| Error::corrupt(&location, "version out of range"))?,
        params: object(&text(r, "params")?, &location)?,
        actor: r.try_get("actor")?,
        note: text(r, "note")?,
        created_at: time(r.try_get("created_ms")?, &location)?,
    })
}

fn audit_row(r: &AnyRow) -> Attempt<AuditEntry> {
    let id: i64 = r.try_get("id")?;
    let location = format!("sq_audit[{id}]");
    let detail = text(r, "detail")?;
    Ok(AuditEntry {
        id,
        at: time(r.try_get("at_ms")?, &location)?,
        actor: text(r, "actor")?,
        action: text(r, "action")?,
        entity: text(r, "entity")?,
        detail: serde_json::from_str(&detail).map_err(|e| Error::corrupt(&location, e.to_string()))?,
    })
}

const ACCOUNT_COLUMNS: &str = "id, name, broker, meta";
const STRATEGY_COLUMNS: &str = "account, book, description, kind, enabled";
const PARAM_COLUMNS: &str = "version, params, actor, note, created_ms";

async fn account_exists(tx: &mut Transaction<'static, Any>, id: &AccountCode) -> Attempt<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_accounts WHERE id = ?")
        .bind(id.as_str())
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

async fn strategy_exists(tx: &mut Transaction<'static, Any>, book: &BookId) -> Attempt<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_strategies WHERE account = ? AND book = ?")
        .bind(book.account.as_str())
        .bind(book.book.as_str())
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

/// Appends the next version inside `tx`.
async fn append_params(
    tx: &mut Transaction<'static, Any>,
    book: &BookId,
    params: &Map<String, Value>,
    actor: &str,
    note: &str,
) -> Attempt<ParamVersion> {
    let last: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM sq_params WHERE account = ? AND book = ?")
            .bind(book.account.as_str())
            .bind(book.book.as_str())
            .fetch_one(&mut **tx)
            .await?;
    let created = now_ms();
    let version =
        u32::try_from(last + 1).map_err(|_| Error::corrupt(format!("sq_params[{book}]"), "too many versions"))?;
    sqlx::query(
        "INSERT INTO sq_params (account, book, version, params, actor, note, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(book.account.as_str())
    .bind(book.book.as_str())
    .bind(i64::from(version))
    .bind(Value::Object(params.clone()).to_string())
    .bind(actor)
    .bind(note)
    .bind(created)
    .execute(&mut **tx)
    .await?;
    Ok(ParamVersion {
        book: book.clone(),
        version,
        params: params.clone(),
        actor: actor.to_owned(),
        note: note.to_owned(),
        created_at: time(created, "now")?,
    })
}

fn check_note(note: &str) -> Result<()> {
    if note.len() > 1024 {
        return Err(Error::invalid("note", note, "at most 1024 bytes"));
    }
    Ok(())
}

#[async_trait]
impl RegistryStore for SqlStore {
    async fn upsert_account(&self, account: &Account, actor: &str) -> Result<()> {
        validate_actor(actor)?;
        account.validate()?;
        let meta = Value::Object(account.meta.clone()).to_string();
        self.retry("upsert_account", || async {
            let mut tx = self.pool.begin().await?;
            let sql = if account_exists(&mut tx, &account.id).await? {
                "UPDATE sq_accounts SET name = ?, broker = ?, meta = ?, updated_ms = ? WHERE id = ?"
            } else {
                "INSERT INTO sq_accounts (name, broker, meta, updated_ms, id) VALUES (?, ?, ?, ?, ?)"
            };
            sqlx::query(sql)
                .bind(&account.name)
                .bind(&account.broker)
                .bind(&meta)
                .bind(now_ms())
                .bind(account.id.as_str())
                .execute(&mut *tx)
                .await?;
            let detail = serde_json::to_value(account).map_err(|e| Error::invalid("account", "", e.to_string()))?;
            audit(&mut tx, actor, "account.upsert", &account_entity(&account.id), detail).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn account(&self, id: &AccountCode) -> Result<Option<Account>> {
        self.read("account", async {
            let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM sq_accounts WHERE id = ?"))
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map(account_row).transpose()
        })
        .await
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        self.read("accounts", async {
            let rows = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM sq_accounts ORDER BY id"))
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(account_row).collect()
        })
        .await
    }

    async fn delete_account(&self, id: &AccountCode, actor: &str) -> Result<bool> {
        validate_actor(actor)?;
        self.retry("delete_account", || async {
            let mut tx = self.pool.begin().await?;
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_strategies WHERE account = ?")
                .bind(id.as_str())
                .fetch_one(&mut *tx)
                .await?;
            if n > 0 {
                return Err(
                    Error::invalid("account", id, format!("still has {n} strategies; delete them first")).into()
                );
            }
            let done = sqlx::query("DELETE FROM sq_accounts WHERE id = ?").bind(id.as_str()).execute(&mut *tx).await?;
            let deleted = done.rows_affected() > 0;
            if deleted {
                audit(&mut tx, actor, "account.delete", &account_entity(id), Value::Null).await?;
            }
            tx.commit().await?;
            Ok(deleted)
        })
        .await
    }

    async fn upsert_strategy(&self, strategy: &Strategy, actor: &str) -> Result<()> {
        validate_actor(actor)?;
        strategy.validate()?;
        let book = &strategy.book;
        self.retry("upsert_strategy", || async {
            let mut tx = self.pool.begin().await?;
            if !account_exists(&mut tx, &book.account).await? {
                return Err(Error::invalid("account", &book.account, "no such account; create it first").into());
            }
            let sql = if strategy_exists(&mut tx, book).await? {
                "UPDATE sq_strategies SET description = ?, kind = ?, enabled = ?, updated_ms = ? WHERE account = ? AND book = ?"
            } else {
                "INSERT INTO sq_strategies (description, kind, enabled, updated_ms, account, book) VALUES (?, ?, ?, ?, ?, ?)"
            };
            sqlx::query(sql)
                .bind(&strategy.description)
                .bind(&strategy.kind)
                .bind(i64::from(strategy.enabled))
                .bind(now_ms())
                .bind(book.account.as_str())
                .bind(book.book.as_str())
                .execute(&mut *tx)
                .await?;
            let detail = serde_json::to_value(strategy).map_err(|e| Error::invalid("strategy", "", e.to_string()))?;
            audit(&mut tx, actor, "strategy.upsert", &book_entity(book), detail).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn strategy(&self, book: &BookId) -> Result<Option<Strategy>> {
        self.read("strategy", async {
            let row =
                sqlx::query(&format!("SELECT {STRATEGY_COLUMNS} FROM sq_strategies WHERE account = ? AND book = ?"))
                    .bind(book.account.as_str())
                    .bind(book.book.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
            row.as_ref().map(strategy_row).transpose()
        })
        .await
    }

    async fn strategies(&self, account: Option<&AccountCode>) -> Result<Vec<Strategy>> {
        self.read("strategies", async {
            let rows = match account {
                Some(a) => {
                    sqlx::query(&format!(
                        "SELECT {STRATEGY_COLUMNS} FROM sq_strategies WHERE account = ? ORDER BY account, book"
                    ))
                    .bind(a.as_str())
                    .fetch_all(&self.pool)
                    .await?
                }
                None => {
                    sqlx::query(&format!("SELECT {STRATEGY_COLUMNS} FROM sq_strategies ORDER BY account, book"))
                        .fetch_all(&self.pool)
                        .await?
                }
            };
            rows.iter().map(strategy_row).collect()
        })
        .await
    }

    async fn delete_strategy(&self, book: &BookId, actor: &str) -> Result<bool> {
        validate_actor(actor)?;
        self.retry("delete_strategy", || async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM sq_params WHERE account = ? AND book = ?")
                .bind(book.account.as_str())
                .bind(book.book.as_str())
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM sq_strategies WHERE account = ? AND book = ?")
                .bind(book.account.as_str())
                .bind(book.book.as_str())
                .execute(&mut *tx)
                .await?;
            let deleted = done.rows_affected() > 0;
            if deleted {
                audit(&mut tx, actor, "strategy.delete", &book_entity(book), Value::Null).await?;
            }
            tx.commit().await?;
            Ok(deleted)
        })
        .await
    }

    async fn put_params(
        &self,
        book: &BookId,
        params: &Map<String, Value>,
        actor: &str,
        note: &str,
    ) -> Result<ParamVersion> {
        validate_actor(actor)?;
        validate_document("params", params)?;
        check_note(note)?;
        self.retry("put_params", || async {
            let mut tx = self.pool.begin().await?;
            if !strategy_exists(&mut tx, book).await? {
                return Err(Error::invalid("book", book, "no such strategy; create it first").into());
            }
            let v = append_params(&mut tx, book, params, actor, note).await?;
            audit(&mut tx, actor, "params.put", &book_entity(book), json!({"version": v.version, "note": note}))
                .await?;
            tx.commit().await?;
            Ok(v)
        })
        .await
    }

    async fn params(&self, book: &BookId, version: Option<u32>) -> Result<Option<ParamVersion>> {
        self.read("params", async {
            let row = match version {
                Some(v) => {
                    sqlx::query(&format!(
                        "SELECT {PARAM_COLUMNS} FROM sq_params WHERE account = ? AND book = ? AND version = ?"
                    ))
                    .bind(book.account.as_str())
                    .bind(book.book.as_str())
                    .bind(i64::from(v))
                    .fetch_optional(&self.pool)
                    .await?
                }
                None => sqlx::query(&format!(
                    "SELECT {PARAM_COLUMNS} FROM sq_params WHERE account = ? AND book = ? ORDER BY version DESC LIMIT 1"
                ))
                .bind(book.account.as_str())
                .bind(book.book.as_str())
                .fetch_optional(&self.pool)
                .await?,
            };
            row.as_ref().map(|r| param_row(book, r)).transpose()
        })
        .await
    }

    async fn param_history(&self, book: &BookId) -> Result<Vec<ParamVersion>> {
        self.read("param_history", async {
            let rows = sqlx::query(&format!(
                "SELECT {PARAM_COLUMNS} FROM sq_params WHERE account = ? AND book = ? ORDER BY version"
            ))
            .bind(book.account.as_str())
            .bind(book.book.as_str())
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(|r| param_row(book, r)).collect()
        })
        .await
    }

    async fn rollback_params(&self, book: &BookId, to: u32, actor: &str) -> Result<ParamVersion> {
        validate_actor(actor)?;
        self.retry("rollback_params", || async {
            let mut tx = self.pool.begin().await?;
            let row = sqlx::query(&format!(
                "SELECT {PARAM_COLUMNS} FROM sq_params WHERE account = ? AND book = ? AND version = ?"
            ))
            .bind(book.account.as_str())
            .bind(book.book.as_str())
            .bind(i64::from(to))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(Error::invalid("version", to, format!("{book} has no such parameter version")).into());
            };
            let old = param_row(book, &row)?;
            let note = format!("rollback to v{to}");
            let v = append_params(&mut tx, book, &old.params, actor, &note).await?;
            audit(&mut tx, actor, "params.rollback", &book_entity(book), json!({"version": v.version, "from": to}))
                .await?;
            tx.commit().await?;
            Ok(v)
        })
        .await
    }

    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        q.validate()?;
        self.read("audit", async {
            let mut sql = "SELECT id, at_ms, actor, action, entity, detail FROM sq_audit WHERE 1 = 1".to_owned();
            if q.entity.is_some() {
                sql.push_str(" AND entity = ?");
            }
            if q.actor.is_some() {
                sql.push_str(" AND actor = ?");
            }
            if q.since.is_some() {
                sql.push_str(" AND at_ms >= ?");
            }
            sql.push_str(" ORDER BY id DESC LIMIT ?");
            let mut query = sqlx::query(&sql);
            if let Some(e) = &q.entity {
                query = query.bind(e);
            }
            if let Some(a) = &q.actor {
                query = query.bind(a);
            }
            if let Some(s) = q.since {
                query = query.bind(s.timestamp_millis());
            }
            let rows = query.bind(i64::from(q.limit)).fetch_all(&self.pool).await?;
            rows.iter().map(audit_row).collect()
        })
        .await
    }

    async fn dump(&self) -> Result<RegistryDump> {
        self.read("dump", async {
            // One read transaction: a consistent picture.
            let mut tx = self.pool.begin().await?;
            let rows = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM sq_accounts ORDER BY id"))
                .fetch_all(&mut *tx)
                .await?;
            let accounts = rows.iter().map(account_row).collect::<Attempt<Vec<_>>>()?;
            let rows = sqlx::query(&format!("SELECT {STRATEGY_COLUMNS} FROM sq_strategies ORDER BY account, book"))
                .fetch_all(&mut *tx)
                .await?;
            let strategies = rows.iter().map(strategy_row).collect::<Attempt<Vec<_>>>()?;
            let rows = sqlx::query(&format!(
                "SELECT account, book, {PARAM_COLUMNS} FROM sq_params ORDER BY account, book, version"
            ))
            .fetch_all(&mut *tx)
            .await?;
            let mut params = Vec::with_capacity(rows.len());
            for r in &rows {
                let (a, b) = (text(r, "account")?, text(r, "book")?);
                let book =
                    BookId::new(&a, &b).map_err(|e| Error::corrupt(format!("sq_params[{a}/{b}]"), e.to_string()))?;
                params.push(param_row(&book, r)?);
            }
            let rows = sqlx::query("SELECT id, at_ms, actor, action, entity, detail FROM sq_audit ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
            let audit = rows.iter().map(audit_row).collect::<Attempt<Vec<_>>>()?;
            tx.commit().await?;
            Ok(RegistryDump { accounts, strategies, params, audit })
        })
        .await
    }

    async fn restore_dump(&self, dump: &RegistryDump, actor: &str) -> Result<()> {
        validate_actor(actor)?;
        dump.validate()?;
        self.retry("restore_dump", || async {
            let mut tx = self.pool.begin().await?;
            for table in ["sq_params", "sq_strategies", "sq_accounts", "sq_audit"] {
                sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
            }
            let now = now_ms();
            for a in &dump.accounts {
                sqlx::query("INSERT INTO sq_accounts (id, name, broker, meta, updated_ms) VALUES (?, ?, ?, ?, ?)")
                    .bind(a.id.as_str())
                    .bind(&a.name)
                    .bind(&a.broker)
                    .bind(Value::Object(a.meta.clone()).to_string())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            for st in &dump.strategies {
                sqlx::query(
                    "INSERT INTO sq_strategies (account, book, description, kind, enabled, updated_ms) VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(st.book.account.as_str())
                .bind(st.book.book.as_str())
                .bind(&st.description)
                .bind(&st.kind)
                .bind(i64::from(st.enabled))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            for p in &dump.params {
                sqlx::query(
                    "INSERT INTO sq_params (account, book, version, params, actor, note, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(p.book.account.as_str())
                .bind(p.book.book.as_str())
                .bind(i64::from(p.version))
                .bind(Value::Object(p.params.clone()).to_string())
                .bind(&p.actor)
                .bind(&p.note)
                .bind(p.created_at.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            }
            for e in &dump.audit {
                sqlx::query("INSERT INTO sq_audit (id, at_ms, actor, action, entity, detail) VALUES (?, ?, ?, ?, ?, ?)")
                    .bind(e.id)
                    .bind(e.at.timestamp_millis())
                    .bind(&e.actor)
                    .bind(&e.action)
                    .bind(&e.entity)
                    .bind(e.detail.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            let detail = json!({
                "accounts": dump.accounts.len(),
                "strategies": dump.strategies.len(),
                "params": dump.params.len(),
                "audit": dump.audit.len(),
            });
            audit(&mut tx, actor, "registry.restore", "registry", detail).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact("mysql://root:pw@127.0.0.1:3306/test"), "mysql://root:***@127.0.0.1:3306/test");
        assert_eq!(redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
        let c = SqlConfig { url: "mysql://u:secret@h/db".into(), ..Default::default() };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
