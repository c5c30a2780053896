//! [`ClickHouseStore`]: deals, assets and bars in ClickHouse.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, NaiveDate};
use clickhouse::{Client, Compression, Row};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sqdata_core::obs::timed;
use sqdata_core::{
    AggregateBy, AggregateQuery, AssetRow, AssetStore, BackendHealth, Bar, BarKey, BarOverview, BarSeries, BarStore,
    BarWriteMode, BookId, DateRange, Deal, DealAggregate, DealQuery, DealScope, DealStore, Error, HealthCheck, Page,
    RecordOutcome, Result, TimeRange, async_trait, validate,
};
use tokio::sync::{Notify, OnceCell};

use crate::config::ClickHouseConfig;
use crate::journal::Journal;
use crate::rows::*;
use crate::schema::{self, ServerVersion};

const BACKEND: &str = "clickhouse";

/// Maps a driver error: network trouble and timeouts are retryable, so are
/// the server's overload refusals; anything else is a backend error.
fn map_err(e: clickhouse::error::Error) -> Error {
    use clickhouse::error::Error as E;
    match e {
        E::Network(_) => Error::Unavailable { backend: BACKEND, message: e.to_string(), source: Some(Box::new(e)) },
        E::TimedOut => {
            Error::Unavailable { backend: BACKEND, message: "request timed out".into(), source: Some(Box::new(e)) }
        }
        E::BadResponse(ref m) => {
            let retryable = [
                "TOO_MANY_SIMULTANEOUS_QUERIES",
                "Too many parts",
                "TIMEOUT_EXCEEDED",
                "Memory limit",
                "NETWORK_ERROR",
            ]
            .iter()
            .any(|s| m.contains(s));
            Error::Backend { backend: BACKEND, message: m.clone(), retryable, source: None }
        }
        other => Error::Backend {
            backend: BACKEND,
            message: other.to_string(),
            retryable: false,
            source: Some(Box::new(other)),
        },
    }
}

/// Storage of one table (`system.parts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Row)]
pub struct TableStats {
    /// Table.
    pub table: String,
    /// Rows in active parts.
    pub rows: u64,
    /// Bytes on disk.
    pub bytes_on_disk: u64,
    /// Uncompressed bytes.
    pub uncompressed_bytes: u64,
}

impl TableStats {
    /// Uncompressed / on-disk.
    pub fn compression_ratio(&self) -> f64 {
        if self.bytes_on_disk == 0 { 0.0 } else { self.uncompressed_bytes as f64 / self.bytes_on_disk as f64 }
    }
}

#[derive(Debug, Default)]
struct Pending {
    rows: Vec<(u64, Deal)>,
    ids: HashSet<(BookId, String)>,
}

struct Inner {
    cfg: ClickHouseConfig,
    base: Client,
    ready: OnceCell<(Client, ServerVersion)>,
    journal: Arc<Mutex<Journal>>,
    pending: Mutex<Pending>,
    flush_lock: tokio::sync::Mutex<()>,
    notify: Arc<Notify>,
    flusher: AtomicBool,
    seq: AtomicU64,
    flush_failures: AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// The ClickHouse backend. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClickHouseStore {
    inner: Arc<Inner>,
}

fn now_version(seq: &AtomicU64) -> u64 {
    let ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    // strictly increasing within the process even if the clock stalls
    let prev = seq.fetch_max(ns, Ordering::SeqCst);
    if prev >= ns { seq.fetch_add(1, Ordering::SeqCst) + 1 } else { ns }
}

#[derive(Debug, Row, Deserialize)]
struct IdRow {
    account: String,
    book: String,
    id: String,
}

#[derive(Debug, Row, Deserialize)]
struct BookRow {
    account: String,
    book: String,
}

#[derive(Debug, Row, Deserialize)]
struct AggRow {
    period: String,
    count: u64,
    buy_count: u64,
    sell_count: u64,
    buy_volume: u64,
    sell_volume: u64,
    buy_amount: f64,
    sell_amount: f64,
}

#[derive(Debug, Row, Deserialize)]
struct OverviewRow {
    code: String,
    period: String,
    adjust: String,
    count: u64,
    first: u32,
    last: u32,
}

/// Deal ids per DELETE mutation (about 30 bytes each in the SQL text).
const DELETE_IDS_PER_QUERY: usize = 4_000;

impl ClickHouseStore {
    /// Opens the store and recovers its journal (deals acknowledged before a
    /// crash are flushed again). Nothing is sent to ClickHouse yet: a server
    /// that is down now is tried again on every call.
    pub fn open(cfg: ClickHouseConfig) -> Result<ClickHouseStore> {
        cfg.validate()?;
        let (journal, recovered) = Journal::open(&cfg.journal_dir)?;
        // Bootstrap queries (version, migrations) use plain RowBinary, which
        // every server understands; the data client gets the validation the
        // detected server supports.
        let http = {
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.set_keepalive(Some(Duration::from_secs(60)));
            connector.set_connect_timeout(Some(Duration::from_millis(cfg.timeout_ms.min(5000))));
            let mut b = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new());
            b.pool_idle_timeout(Duration::from_secs(2));
            if !cfg.keep_alive {
                b.pool_max_idle_per_host(0);
            }
            b.build(connector)
        };
        let mut base =
            Client::with_http_client(http).with_url(cfg.url.clone()).with_user(cfg.user.clone()).with_validation(false);
        if !cfg.password.is_empty() {
            base = base.with_password(cfg.password.clone());
        }
        base = base.with_compression(if cfg.compression == "none" { Compression::None } else { Compression::Lz4 });
        let mut pending = Pending::default();
        for (off, d) in recovered {
            pending.ids.insert((d.book.clone(), d.id.clone()));
            pending.rows.push((off, d));
        }
        Ok(ClickHouseStore {
            inner: Arc::new(Inner {
                cfg,
                base,
                ready: OnceCell::new(),
                journal: Arc::new(Mutex::new(journal)),
                pending: Mutex::new(pending),
                flush_lock: tokio::sync::Mutex::new(()),
                notify: Arc::new(Notify::new()),
                flusher: AtomicBool::new(false),
                seq: AtomicU64::new(0),
                flush_failures: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClickHouseConfig {
        &self.inner.cfg
    }

    /// Deals acknowledged but not yet in ClickHouse.
    pub fn pending_deals(&self) -> usize {
        self.inner.pending.lock().rows.len()
    }

    /// Flushes every journaled deal into ClickHouse now.
    pub async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }

    /// The server version (connecting and migrating first if needed).
    pub async fn server_version(&self) -> Result<ServerVersion> {
        Ok(self.inner.ready().await?.1)
    }

    /// Rows, bytes on disk and compression ratio per table (`system.parts`).
    pub async fn stats(&self) -> Result<Vec<TableStats>> {
        let (c, _) = self.inner.ready().await?;
        let q = c
            .query(
                "SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes_on_disk, \
                 sum(data_uncompressed_bytes) AS uncompressed_bytes FROM system.parts \
                 WHERE database = ? AND active GROUP BY table ORDER BY table",
            )
            .bind(&self.inner.cfg.database);
        self.inner.t("stats", q.fetch_all::<TableStats>()).await
    }

    /// Drops the whole database (tests and decommissioning only).
    pub async fn drop_database(&self) -> Result<()> {
        let q = self.inner.base.query(&format!("DROP DATABASE IF EXISTS {}", self.inner.cfg.database));
        self.inner.t("drop_database", q.execute()).await
    }

    /// Appends to the operations log.
    pub async fn log_event(&self, level: &str, component: &str, message: &str) -> Result<()> {
        let (c, _) = self.inner.ready().await?;
        let row = LogRow {
            ts: secs("ts", chrono::Utc::now().naive_utc())?,
            level: level.into(),
            component: component.into(),
            message: message.into(),
        };
        let fut = async {
            let mut ins = c.insert::<LogRow>("ops_log").await?;
            ins.write(&row).await?;
            ins.end().await
        };
        self.inner.t("log_event", fut).await
    }

    fn start_flusher(&self) {
        if self.inner.flusher.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let interval = Duration::from_millis(self.inner.cfg.flush_interval_ms);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.inner.flusher.store(false, Ordering::SeqCst);
            return;
        };
        let notify = self.inner.notify.clone();
        handle.spawn(async move {
            let mut backoff = interval;
            loop {
                // Holds no strong reference while it waits: the task ends
                // once the store is dropped.
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                match inner.flush().await {
                    Ok(()) => backoff = interval,
                    Err(e) => {
                        inner.flush_failures.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("sqdata_clickhouse_flush_failures_total").increment(1);
                        tracing::warn!(error = %e, "clickhouse flush failed; deals stay journaled");
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
    }
}

impl Inner {
    async fn t<T, F>(&self, op: &'static str, fut: F) -> Result<T>
    where
        F: std::future::Future<Output = clickhouse::error::Result<T>>,
    {
        let after = Duration::from_millis(self.cfg.timeout_ms);
        timed(BACKEND, op, async {
            match tokio::time::timeout(after, fut).await {
                Ok(r) => r.map_err(map_err),
                Err(_) => Err(Error::Timeout { backend: BACKEND, op, after }),
            }
        })
        .await
    }

    /// Connects, detects the server version, creates the database and runs
    /// the migrations (once; retried on the next call after a failure).
    async fn ready(&self) -> Result<&(Client, ServerVersion)> {
        self.ready
            .get_or_try_init(|| async {
                let v: String = self.t("version", self.base.query("SELECT version()").fetch_one::<String>()).await?;
                let version = ServerVersion::parse(&v).ok_or_else(|| Error::Backend {
                    backend: BACKEND,
                    message: format!("unrecognised server version {v:?}"),
                    retryable: false,
                    source: None,
                })?;
                let validation = self.cfg.validation.unwrap_or(version.supports_validation());
                let client = self.base.clone().with_database(self.cfg.database.clone()).with_validation(validation);
                let db = &self.cfg.database;
                self.t("migrate", self.base.query(&format!("CREATE DATABASE IF NOT EXISTS {db}")).execute()).await?;
                self.t("migrate", self.base.query(&schema::ledger().replace("{db}", db)).execute()).await?;
                #[derive(Row, Deserialize)]
                struct Applied {
                    version: u32,
                }
                let applied: Vec<Applied> = self
                    .t("migrate", self.base.query(&format!("SELECT version FROM {db}.schema_migrations")).fetch_all())
                    .await?;
                let applied: HashSet<u32> = applied.into_iter().map(|a| a.version).collect();
                for m in schema::migrations(version) {
                    if applied.contains(&m.version) {
                        continue;
                    }
                    for stmt in &m.statements {
                        self.t("migrate", self.base.query(&stmt.replace("{db}", db)).execute()).await?;
                    }
                    let q = self
                        .base
                        .query(&format!(
                            "INSERT INTO {db}.schema_migrations (version, name, applied) SELECT ?, ?, now()"
                        ))
                        .bind(m.version)
                        .bind(m.name);
                    self.t("migrate", q.execute()).await?;
                }
                Ok((client, version))
            })
            .await
    }

    /// Moves journaled deals into ClickHouse: skips ids it already has (a
    /// replay), inserts the rest in one INSERT, then advances the checkpoint.
    async fn flush(&self) -> Result<()> {
        let _g = self.flush_lock.lock().await;
        let batch: Vec<(u64, Deal)> = self.pending.lock().rows.clone();
        let Some(&(last_off, _)) = batch.last() else { return Ok(()) };
        let (c, _) = self.ready().await?;
        let mut by_book: BTreeMap<&BookId, Vec<&Deal>> = BTreeMap::new();
        for (_, d) in &batch {
            by_book.entry(&d.book).or_default().push(d);
        }
        let mut have: HashSet<(String, String, String)> = HashSet::new();
        for (book, ds) in &by_book {
            for row in self.existing(c, book, ds).await? {
                have.insert((row.account, row.book, row.id));
            }
        }
        let version = now_version(&self.seq);
        let mut rows = Vec::with_capacity(batch.len());
        let mut seen = HashSet::new();
        for (_, d) in &batch {
            let key = (d.book.account.to_string(), d.book.book.to_string(), d.id.clone());
            if have.contains(&key) || !seen.insert(key) {
                continue;
            }
            rows.push(DealRow::from_deal(d, version)?);
        }
        if !rows.is_empty() {
            let fut = async {
                let mut ins = c.insert::<DealRow>("deals").await?;
                for r in &rows {
                    ins.write(r).await?;
                }
                ins.end().await
            };
            self.t("flush_deals", fut).await?;
            metrics::counter!("sqdata_clickhouse_rows_inserted_total", "table" => "deals").increment(rows.len() as u64);
        }
        let journal = self.journal.clone();
        tokio::task::spawn_blocking(move || journal.lock().checkpoint(last_off)).await.map_err(|e| {
            Error::Backend { backend: BACKEND, message: e.to_string(), retryable: true, source: None }
        })??;
        let mut p = self.pending.lock();
        let n = batch.len().min(p.rows.len());
        for (_, d) in p.rows.drain(..n).collect::<Vec<_>>() {
            p.ids.remove(&(d.book, d.id));
        }
        Ok(())
    }

    /// Which of these deals' ids the table already holds.
    async fn existing(&self, c: &Client, book: &BookId, ds: &[&Deal]) -> Result<Vec<IdRow>> {
        let mut out = Vec::new();
        for chunk in ds.chunks(5000) {
            let ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
            let from = chunk.iter().map(|d| d.time.date()).min().unwrap_or_default();
            let to = chunk.iter().map(|d| d.time.date()).max().unwrap_or_default();
            let q = c
                .query(
                    "SELECT account, book, id FROM deals WHERE account = ? AND book = ? \
                     AND date >= ? AND date <= ? AND has(?, id)",
                )
                .bind(book.account.as_str())
                .bind(book.book.as_str())
                .bind(from.to_string())
                .bind(to.to_string())
                .bind(ids);
            out.extend(self.t("dedup", q.fetch_all::<IdRow>()).await?);
        }
        Ok(out)
    }

    /// `ALTER … DELETE` and wait until the mutation is done, so the next read
    /// no longer sees the rows.
    async fn delete_where(&self, c: &Client, table: &str, account: &str, book: &str) -> Result<()> {
        let db = &self.cfg.database;
        let q = c
            .query(&format!("ALTER TABLE {db}.{table} DELETE WHERE account = ? AND book = ?"))
            .bind(account)
            .bind(book);
        self.t("delete", q.execute()).await?;
        self.wait_mutations(c, table).await
    }

    /// Replaces the daily and monthly aggregate rows of these days/months of
    /// one book by sums recomputed from the deals.
    async fn rebuild_aggregates(
        &self,
        c: &Client,
        account: &str,
        book: &str,
        days: &[String],
        months: &[String],
    ) -> Result<()> {
        let db = &self.cfg.database;
        let sums = "count() AS count, countIf(kind IN (1, 2, 5)) AS buy_count, countIf(kind IN (3, 4, 6)) AS sell_count, \
                    sumIf(volume, kind IN (1, 2, 5)) AS buy_volume, sumIf(volume, kind IN (3, 4, 6)) AS sell_volume, \
                    sumIf(amount, kind IN (1, 2, 5)) AS buy_amount, sumIf(amount, kind IN (3, 4, 6)) AS sell_amount";
        for (table, col, list) in [("deal_daily", "date", days), ("deal_monthly", "month", months)] {
            let q = c
                .query(&format!(
                    "ALTER TABLE {db}.{table} DELETE WHERE account = ? AND book = ? AND has(?, toString({col}))"
                ))
                .bind(account)
                .bind(book)
                .bind(list);
            self.t("rebuild_aggregates", q.execute()).await?;
            self.wait_mutations(c, table).await?;
        }
        let q = c
            .query(&format!(
                "INSERT INTO {db}.deal_daily SELECT account, book, date, {sums} FROM {db}.deals FINAL \
                 WHERE account = ? AND book = ? AND has(?, toString(date)) GROUP BY account, book, date"
            ))
            .bind(account)
            .bind(book)
            .bind(days);
        self.t("rebuild_aggregates", q.execute()).await?;
        let q = c
            .query(&format!(
                "INSERT INTO {db}.deal_monthly SELECT account, book, toStartOfMonth(date) AS month, {sums} \
                 FROM {db}.deals FINAL WHERE account = ? AND book = ? AND has(?, toString(toStartOfMonth(date))) \
                 GROUP BY account, book, month"
            ))
            .bind(account)
            .bind(book)
            .bind(months);
        self.t("rebuild_aggregates", q.execute()).await
    }

    /// Waits until no mutation of `table` is pending.
    async fn wait_mutations(&self, c: &Client, table: &str) -> Result<()> {
        let db = &self.cfg.database;
        let deadline = Instant::now() + Duration::from_millis(self.cfg.timeout_ms);
        loop {
            let q = c
                .query("SELECT count() FROM system.mutations WHERE database = ? AND table = ? AND is_done = 0")
                .bind(db)
                .bind(table);
            let open: u64 = self.t("delete", q.fetch_one::<u64>()).await?;
            if open == 0 {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout {
                    backend: BACKEND,
                    op: "delete",
                    after: Duration::from_millis(self.cfg.timeout_ms),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn where_deals(q: &DealQuery) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    match &q.scope {
        DealScope::Book(b) => {
            sql.push_str("account = ? AND book = ?");
            args.push(b.account.to_string());
            args.push(b.book.to_string());
        }
        DealScope::Account(a) => {
            sql.push_str("account = ?");
            args.push(a.to_string());
        }
    }
    if let Some(f) = q.from {
        sql.push_str(" AND date >= ?");
        args.push(f.to_string());
    }
    if let Some(t) = q.to {
        sql.push_str(" AND date <= ?");
        args.push(t.to_string());
    }
    if let Some(c) = q.code {
        sql.push_str(" AND code = ?");
        args.push(c.to_string());
    }
    if let Some(k) = q.kind {
        // a validated enum's number: safe to inline, and typed as UInt8
        sql.push_str(&format!(" AND kind = {}", k.as_u8()));
    }
    (sql, args)
}

#[async_trait]
impl DealStore for ClickHouseStore {
    async fn record_batch(&self, deals: &[Deal]) -> Result<RecordOutcome> {
        for d in deals {
            d.validate()?;
            DealRow::from_deal(d, 0)?;
        }
        self.start_flusher();
        let inner = &self.inner;
        let mut outcome = RecordOutcome::default();
        let mut fresh: Vec<Deal> = Vec::new();
        {
            let p = inner.pending.lock();
            let mut in_batch = HashSet::new();
            for d in deals {
                let key = (d.book.clone(), d.id.clone());
                if p.ids.contains(&key) || !in_batch.insert(key) {
                    outcome.duplicates += 1;
                } else {
                    fresh.push(d.clone());
                }
            }
        }
        // Ids ClickHouse already holds are duplicates too. If ClickHouse
        // cannot answer quickly, the deal is journaled anyway (the flusher
        // deduplicates before inserting): recording never waits on the server.
        if !fresh.is_empty() {
            let check = async {
                let (c, _) = inner.ready().await?;
                let mut by_book: BTreeMap<BookId, Vec<&Deal>> = BTreeMap::new();
                for d in &fresh {
                    by_book.entry(d.book.clone()).or_default().push(d);
                }
                let mut have = HashSet::new();
                for (book, ds) in &by_book {
                    for r in inner.existing(c, book, ds).await? {
                        have.insert((r.account, r.book, r.id));
                    }
                }
                Ok::<_, Error>(have)
            };
            if let Ok(Ok(have)) = tokio::time::timeout(Duration::from_millis(500), check).await {
                fresh.retain(|d| {
                    let dup = have.contains(&(d.book.account.to_string(), d.book.book.to_string(), d.id.clone()));
                    if dup {
                        outcome.duplicates += 1;
                    }
                    !dup
                });
            }
        }
        if fresh.is_empty() {
            return Ok(outcome);
        }
        let journal = inner.journal.clone();
        let to_append = fresh.clone();
        let ends = tokio::task::spawn_blocking(move || journal.lock().append(&to_append)).await.map_err(|e| {
            Error::Backend { backend: BACKEND, message: e.to_string(), retryable: true, source: None }
        })??;
        let full = {
            let mut p = inner.pending.lock();
            for (end, d) in ends.into_iter().zip(fresh) {
                p.ids.insert((d.book.clone(), d.id.clone()));
                p.rows.push((end, d));
                outcome.inserted += 1;
            }
            p.rows.len() >= inner.cfg.flush_rows
        };
        if full {
            inner.notify.notify_one();
        }
        Ok(outcome)
    }

    async fn query(&self, q: &DealQuery) -> Result<Page<Deal>> {
        q.validate()?;
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let (cond, args) = where_deals(q);
        let mut count = c.query(&format!("SELECT count() FROM deals FINAL WHERE {cond}"));
        for a in &args {
            count = count.bind(a.as_str());
        }
        let total: u64 = self.inner.t("query_deals", count.fetch_one::<u64>()).await?;
        let mut sel =
            c.query(&format!("SELECT ?fields FROM deals FINAL WHERE {cond} ORDER BY time, id LIMIT ? OFFSET ?"));
        for a in &args {
            sel = sel.bind(a.as_str());
        }
        sel = sel.bind(q.page_size).bind(q.offset());
        let rows: Vec<DealRow> = self.inner.t("query_deals", sel.fetch_all::<DealRow>()).await?;
        let data = rows.into_iter().map(DealRow::into_deal).collect::<Result<Vec<_>>>()?;
        Ok(Page { total, page: q.page, page_size: q.page_size, data })
    }

    async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        validate::ordered(q.from, q.to)?;
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let month_aligned =
            q.from.is_none_or(|f| f.day() == 1) && q.to.is_none_or(|t| t.succ_opt().is_none_or(|n| n.day() == 1));
        let sums = "sum(count) AS count, sum(buy_count) AS buy_count, sum(sell_count) AS sell_count, \
                    sum(buy_volume) AS buy_volume, sum(sell_volume) AS sell_volume, \
                    sum(buy_amount) AS buy_amount, sum(sell_amount) AS sell_amount";
        let (sql, col) = match (q.by, month_aligned) {
            (AggregateBy::Day, _) => {
                (format!("SELECT toString(date) AS period, {sums} FROM deal_daily WHERE account = ?"), "date")
            }
            // the monthly view when the range is whole months
            (AggregateBy::Month, true) => (
                format!(
                    "SELECT substring(toString(month), 1, 7) AS period, {sums} FROM deal_monthly WHERE account = ?"
                ),
                "month",
            ),
            (AggregateBy::Month, false) => (
                format!(
                    "SELECT substring(toString(toStartOfMonth(date)), 1, 7) AS period, {sums} FROM deal_daily WHERE account = ?"
                ),
                "date",
            ),
        };
        let mut sql = sql;
        let mut args = vec![q.account.to_string()];
        if let Some(f) = q.from {
            sql.push_str(&format!(" AND {col} >= ?"));
            args.push(if col == "month" {
                NaiveDate::from_ymd_opt(f.year(), f.month(), 1).unwrap_or(f).to_string()
            } else {
                f.to_string()
            });
        }
        if let Some(t) = q.to {
            sql.push_str(&format!(" AND {col} <= ?"));
            args.push(t.to_string());
        }
        sql.push_str(" GROUP BY period ORDER BY period");
        let mut query = c.query(&sql);
        for a in &args {
            query = query.bind(a.as_str());
        }
        let rows: Vec<AggRow> = self.inner.t("aggregate", query.fetch_all::<AggRow>()).await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.count > 0)
            .map(|r| DealAggregate {
                period: r.period,
                count: r.count,
                buy_count: r.buy_count,
                sell_count: r.sell_count,
                buy_volume: r.buy_volume,
                sell_volume: r.sell_volume,
                buy_amount: r.buy_amount,
                sell_amount: r.sell_amount,
            })
            .collect())
    }

    async fn delete_book(&self, book: &BookId) -> Result<u64> {
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let (a, b) = (book.account.as_str(), book.book.as_str());
        let q = c.query("SELECT count() FROM deals FINAL WHERE account = ? AND book = ?").bind(a).bind(b);
        let n: u64 = self.inner.t("delete_book", q.fetch_one::<u64>()).await?;
        if n == 0 {
            return Ok(0);
        }
        for table in ["deals", "deal_daily", "deal_monthly"] {
            self.inner.delete_where(c, table, a, b).await?;
        }
        Ok(n)
    }

    async fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let (a, b) = (book.account.as_str(), book.book.as_str());
        #[derive(Row, Deserialize)]
        struct DateRow {
            date: u16,
        }
        let db = &self.inner.cfg.database;
        let (mut dates, mut n) = (Vec::new(), 0u64);
        // Ids travel inside the SQL text: chunks keep it under the server's
        // max_query_size (256 KiB) whatever the caller passes.
        for ids in ids.chunks(DELETE_IDS_PER_QUERY) {
            let q = c
                .query("SELECT DISTINCT date FROM deals FINAL WHERE account = ? AND book = ? AND has(?, id)")
                .bind(a)
                .bind(b)
                .bind(ids);
            let found: Vec<DateRow> = self.inner.t("delete_deals", q.fetch_all()).await?;
            if found.is_empty() {
                continue;
            }
            dates.extend(found);
            let q = c
                .query("SELECT count() FROM deals FINAL WHERE account = ? AND book = ? AND has(?, id)")
                .bind(a)
                .bind(b)
                .bind(ids);
            n += self.inner.t("delete_deals", q.fetch_one::<u64>()).await?;
            let q = c
                .query(&format!("ALTER TABLE {db}.deals DELETE WHERE account = ? AND book = ? AND has(?, id)"))
                .bind(a)
                .bind(b)
                .bind(ids);
            self.inner.t("delete_deals", q.execute()).await?;
            self.inner.wait_mutations(c, "deals").await?;
        }
        if dates.is_empty() {
            return Ok(0);
        }
        dates.sort_by_key(|d| d.date);
        dates.dedup_by_key(|d| d.date);
        // The summing views cannot subtract: rebuild the affected days and months.
        let days: Vec<String> = dates.iter().map(|d| from_days(d.date).to_string()).collect();
        let months: Vec<String> = {
            let mut m: Vec<String> = dates
                .iter()
                .map(|d| {
                    let d = from_days(d.date);
                    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d).to_string()
                })
                .collect();
            m.sort();
            m.dedup();
            m
        };
        self.inner.rebuild_aggregates(c, a, b, &days, &months).await?;
        Ok(n)
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let rows: Vec<BookRow> = self
            .inner
            .t("list_books", c.query("SELECT DISTINCT account, book FROM deals ORDER BY account, book").fetch_all())
            .await?;
        rows.into_iter().map(|r| BookId::new(&r.account, &r.book)).collect()
    }
}

#[async_trait]
impl AssetStore for ClickHouseStore {
    async fn upsert_asset(&self, book: &BookId, row: AssetRow) -> Result<()> {
        row.validate()?;
        let (c, _) = self.inner.ready().await?;
        let r = AssetDbRow {
            account: book.account.to_string(),
            book: book.book.to_string(),
            date: days(row.date),
            asset: row.asset,
            version: now_version(&self.inner.seq),
        };
        let fut = async {
            let mut ins = c.insert::<AssetDbRow>("assets").await?;
            ins.write(&r).await?;
            ins.end().await
        };
        self.inner.t("upsert_asset", fut).await
    }

    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>> {
        range.validate()?;
        let (c, _) = self.inner.ready().await?;
        let mut sql = String::from("SELECT ?fields FROM assets FINAL WHERE account = ? AND book = ?");
        let mut args = vec![book.account.to_string(), book.book.to_string()];
        if let Some(f) = range.from {
            sql.push_str(" AND date >= ?");
            args.push(f.to_string());
        }
        if let Some(t) = range.to {
            sql.push_str(" AND date <= ?");
            args.push(t.to_string());
        }
        sql.push_str(" ORDER BY date");
        let mut q = c.query(&sql);
        for a in &args {
            q = q.bind(a.as_str());
        }
        let rows: Vec<AssetDbRow> = self.inner.t("assets", q.fetch_all()).await?;
        Ok(rows.iter().map(AssetDbRow::row).collect())
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let (c, _) = self.inner.ready().await?;
        let q = c
            .query("SELECT count() FROM assets WHERE account = ? AND book = ?")
            .bind(book.account.as_str())
            .bind(book.book.as_str());
        if self.inner.t("delete_assets", q.fetch_one::<u64>()).await? > 0 {
            self.inner.delete_where(c, "assets", book.account.as_str(), book.book.as_str()).await?;
        }
        Ok(())
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        let (c, _) = self.inner.ready().await?;
        let rows: Vec<BookRow> = self
            .inner
            .t("list_books", c.query("SELECT DISTINCT account, book FROM assets ORDER BY account, book").fetch_all())
            .await?;
        rows.into_iter().map(|r| BookId::new(&r.account, &r.book)).collect()
    }
}

impl ClickHouseStore {
    /// Writes complete series as new versions (one INSERT per
    /// `bulk_batch_rows`), then their summaries. A reader sees a series'
    /// previous version until its summary row lands.
    async fn write_series(&self, series: &[(BarKey, Vec<Bar>)]) -> Result<u64> {
        let (c, _) = self.inner.ready().await?;
        let version = now_version(&self.inner.seq);
        let mut written = 0u64;
        let mut rows: Vec<BarRow> = Vec::new();
        let mut summaries = Vec::with_capacity(series.len());
        let flush_rows = |rows: Vec<BarRow>| async move {
            let fut = async {
                let mut ins = c.insert::<BarRow>("bars").await?;
                for r in &rows {
                    ins.write(r).await?;
                }
                ins.end().await
            };
            self.inner.t("save_bars", fut).await
        };
        for (key, bars) in series {
            let (code, period, adjust) =
                (key.code.to_string(), key.period.as_str().to_owned(), key.adjust.as_str().to_owned());
            for b in bars {
                rows.push(BarRow {
                    code: code.clone(),
                    period: period.clone(),
                    adjust: adjust.clone(),
                    version,
                    datetime: secs("datetime", b.datetime)?,
                    open: scaled("open", b.open)?,
                    high: scaled("high", b.high)?,
                    low: scaled("low", b.low)?,
                    close: scaled("close", b.close)?,
                    volume: b.volume,
                    amount: b.amount,
                });
            }
            written += bars.len() as u64;
            summaries.push(SeriesRow {
                code,
                period,
                adjust,
                version,
                count: bars.len() as u64,
                first: bars.first().map(|b| secs("datetime", b.datetime)).transpose()?.unwrap_or(0),
                last: bars.last().map(|b| secs("datetime", b.datetime)).transpose()?.unwrap_or(0),
            });
            if rows.len() >= self.inner.cfg.bulk_batch_rows {
                flush_rows(std::mem::take(&mut rows)).await?;
            }
        }
        if !rows.is_empty() {
            flush_rows(rows).await?;
        }
        let fut = async {
            let mut ins = c.insert::<SeriesRow>("bar_series").await?;
            for s in &summaries {
                ins.write(s).await?;
            }
            ins.end().await
        };
        self.inner.t("save_bars", fut).await?;
        metrics::counter!("sqdata_clickhouse_rows_inserted_total", "table" => "bars").increment(written);
        Ok(written)
    }

    /// Current bars of many series (same period and adjustment), streamed.
    async fn read_series(&self, keys: &[BarKey], range: TimeRange) -> Result<HashMap<BarKey, Vec<Bar>>> {
        let (c, _) = self.inner.ready().await?;
        let mut groups: BTreeMap<(sqdata_core::Period, sqdata_core::Adjust), Vec<String>> = BTreeMap::new();
        for k in keys {
            groups.entry((k.period, k.adjust)).or_default().push(k.code.to_string());
        }
        let mut out: HashMap<BarKey, Vec<Bar>> = HashMap::new();
        for ((period, adjust), codes) in groups {
            // Codes are validated `Code`s (six digits, a dot, two letters):
            // safe to inline as a literal set, which ClickHouse turns into an
            // index-friendly IN set (a bound array would be scanned per row).
            let set = codes.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(",");
            let mut sql = format!(
                "SELECT code, datetime, open, high, low, close, volume, amount FROM bars \
                 WHERE period = ? AND adjust = ? AND code IN ({set}) AND (code, version) IN \
                 (SELECT code, max(version) FROM bar_series WHERE period = ? AND adjust = ? AND code IN ({set}) GROUP BY code)"
            );
            let from = range.from.map(|t| secs("from", t)).transpose()?;
            let to = range.to.map(|t| secs("to", t)).transpose()?;
            if from.is_some() {
                sql.push_str(" AND datetime >= toDateTime(?, 'UTC')");
            }
            if to.is_some() {
                sql.push_str(" AND datetime <= toDateTime(?, 'UTC')");
            }
            let mut q =
                c.query(&sql).bind(period.as_str()).bind(adjust.as_str()).bind(period.as_str()).bind(adjust.as_str());
            if let Some(f) = from {
                q = q.bind(f);
            }
            if let Some(t) = to {
                q = q.bind(t);
            }
            // Streamed; grouped, ordered and de-duplicated here rather than by
            // an ORDER BY / LIMIT BY over millions of rows on the server.
            let fut = async {
                let mut cursor = q.fetch::<BarRead<'_>>()?;
                let mut by_code: HashMap<String, Vec<Bar>> = HashMap::new();
                let (mut code, mut cur) = (String::new(), Vec::<Bar>::new());
                while let Some(row) = cursor.next().await? {
                    if row.code != code {
                        if !cur.is_empty() {
                            by_code.entry(std::mem::take(&mut code)).or_default().append(&mut cur);
                        }
                        code = row.code.to_owned();
                    }
                    cur.push(row.bar());
                }
                if !cur.is_empty() {
                    by_code.entry(code).or_default().append(&mut cur);
                }
                Ok::<_, clickhouse::error::Error>(by_code)
            };
            for (code, mut bars) in self.inner.t("load_bars", fut).await? {
                bars.sort_by_key(|b| b.datetime);
                bars.dedup_by_key(|b| b.datetime);
                let code = sqdata_core::Code::parse(&code)
                    .map_err(|e| Error::corrupt("clickhouse bars.code", e.to_string()))?;
                out.insert(BarKey::new(code, period, adjust), bars);
            }
        }
        Ok(out)
    }

    /// Saves many series in bulk (one version for the batch).
    pub async fn save_bars_batch(&self, series: &[BarSeries], mode: BarWriteMode) -> Result<u64> {
        for s in series {
            s.validate()?;
        }
        let input: Vec<(BarKey, Vec<Bar>)> = match mode {
            BarWriteMode::Replace => series.iter().map(|s| (s.key, s.bars.clone())).collect(),
            BarWriteMode::Upsert => {
                let keys: Vec<BarKey> = series.iter().map(|s| s.key).collect();
                let mut current = self.read_series(&keys, TimeRange::all()).await?;
                series
                    .iter()
                    .map(|s| (s.key, sqdata_core::upsert_bars(&current.remove(&s.key).unwrap_or_default(), &s.bars)))
                    .collect()
            }
        };
        self.write_series(&input).await?;
        Ok(series.iter().map(|s| s.bars.len() as u64).sum())
    }
}

#[async_trait]
impl BarStore for ClickHouseStore {
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64> {
        self.save_bars_batch(std::slice::from_ref(series), mode).await
    }

    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>> {
        range.validate()?;
        Ok(self.read_series(std::slice::from_ref(key), range).await?.remove(key).unwrap_or_default())
    }

    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>> {
        range.validate()?;
        let mut got = self.read_series(keys, range).await?;
        Ok(keys.iter().map(|k| BarSeries { key: *k, bars: got.remove(k).unwrap_or_default() }).collect())
    }

    async fn overview(&self) -> Result<Vec<BarOverview>> {
        let (c, _) = self.inner.ready().await?;
        let q = c.query(
            "SELECT code, period, adjust, argMax(count, version) AS count, argMax(first, version) AS first, \
             argMax(last, version) AS last FROM bar_series GROUP BY code, period, adjust \
             HAVING count > 0 ORDER BY code, period, adjust",
        );
        let rows: Vec<OverviewRow> = self.inner.t("overview", q.fetch_all()).await?;
        rows.into_iter()
            .map(|r| {
                let bad = |e: String| Error::corrupt("clickhouse bar_series", e);
                Ok(BarOverview {
                    key: BarKey::new(
                        sqdata_core::Code::parse(&r.code).map_err(|e| bad(e.to_string()))?,
                        r.period.parse().map_err(|e: Error| bad(e.to_string()))?,
                        r.adjust.parse().map_err(|e: Error| bad(e.to_string()))?,
                    ),
                    count: r.count,
                    first: from_secs(r.first),
                    last: from_secs(r.last),
                })
            })
            .collect()
    }

    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64> {
        range.validate()?;
        let current =
            self.read_series(std::slice::from_ref(key), TimeRange::all()).await?.remove(key).unwrap_or_default();
        let kept: Vec<Bar> = current.iter().filter(|b| !range.contains(b.datetime)).copied().collect();
        let n = (current.len() - kept.len()) as u64;
        if n > 0 {
            self.write_series(&[(*key, kept)]).await?;
        }
        Ok(n)
    }
}

#[async_trait]
impl HealthCheck for ClickHouseStore {
    async fn health(&self) -> BackendHealth {
        let t = Instant::now();
        let r = self.inner.t("health", self.inner.base.query("SELECT 1").fetch_one::<u8>()).await;
        let latency = t.elapsed().max(Duration::from_nanos(1));
        let mut details = BTreeMap::new();
        details.insert("url".into(), serde_json::json!(self.inner.cfg.url));
        details.insert("database".into(), serde_json::json!(self.inner.cfg.database));
        let (jlen, jflushed) = self.inner.journal.lock().state();
        details.insert("pending_deals".into(), serde_json::json!(self.pending_deals()));
        details.insert("journal_bytes".into(), serde_json::json!(jlen));
        details.insert("journal_flushed_bytes".into(), serde_json::json!(jflushed));
        details.insert("flush_failures".into(), serde_json::json!(self.inner.flush_failures.load(Ordering::Relaxed)));
        metrics::gauge!("sqdata_clickhouse_pending_deals").set(self.pending_deals() as f64);
        metrics::gauge!("sqdata_backend_up", "backend" => BACKEND).set(if r.is_ok() { 1.0 } else { 0.0 });
        if r.is_ok() {
            if let Ok(v) = self.server_version().await {
                details.insert("server_version".into(), serde_json::json!(v.to_string()));
            }
            if let Ok(stats) = self.stats().await {
                details.insert(
                    "tables".into(),
                    serde_json::json!(
                        stats
                            .iter()
                            .map(|s| serde_json::json!({
                                "table": s.table, "rows": s.rows, "bytes_on_disk": s.bytes_on_disk,
                                "compression_ratio": (s.compression_ratio() * 100.0).round() / 100.0
                            }))
                            .collect::<Vec<_>>()
                    ),
                );
            }
        }
        BackendHealth {
            backend: BACKEND.into(),
            up: r.is_ok(),
            latency,
            details,
            error: r.err().map(|e| e.to_string()),
        }
    }
}
