//! [`ClickHouseStore`] and what its domains share: the client, readiness
//! (connect, version detection, migrations), the deal flusher and helpers.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clickhouse::{Client, Compression, Row};
use parking_lot::Mutex;
use serde::Deserialize;
use sqdata_core::{BookId, Deal, Error, Result};
use tokio::sync::{Notify, OnceCell};

use crate::config::ClickHouseConfig;
use crate::error::map_err;
use crate::journal::Journal;
use crate::rows::*;
use crate::schema::{self, ServerVersion};

pub(crate) const BACKEND: &str = "clickhouse";

#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) rows: Vec<(u64, Deal)>,
    pub(crate) ids: HashSet<(BookId, String)>,
}

pub(crate) struct Inner {
    pub(crate) cfg: ClickHouseConfig,
    pub(crate) base: Client,
    pub(crate) ready: OnceCell<(Client, ServerVersion)>,
    pub(crate) journal: Arc<Mutex<Journal>>,
    pub(crate) pending: Mutex<Pending>,
    pub(crate) flush_lock: tokio::sync::Mutex<()>,
    pub(crate) notify: Arc<Notify>,
    pub(crate) flusher: AtomicBool,
    pub(crate) seq: AtomicU64,
    pub(crate) flush_failures: AtomicU64,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// The ClickHouse backend. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClickHouseStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) fn now_version(seq: &AtomicU64) -> u64 {
    let ns = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    // strictly increasing within the process even if the clock stalls
    let prev = seq.fetch_max(ns, Ordering::SeqCst);
    if prev >= ns { seq.fetch_add(1, Ordering::SeqCst) + 1 } else { ns }
}

#[derive(Debug, Row, Deserialize)]
pub(crate) struct BookRow {
    pub(crate) account: String,
    pub(crate) book: String,
}

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

    pub(crate) fn start_flusher(&self) {
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
    pub(crate) async fn t<T, F>(&self, op: &'static str, fut: F) -> Result<T>
    where
        F: std::future::Future<Output = clickhouse::error::Result<T>>,
    {
        // One query's bound, with the one deadline the layers use (store
        // calls are measured by the facade's Observed layer; the background
        // flusher has its own counters).
        let after = Duration::from_millis(self.cfg.timeout_ms);
        sqdata_core::layer::deadline(BACKEND, op, after, async { fut.await.map_err(map_err) }).await
    }

    /// Connects, detects the server version, creates the database and runs
    /// the migrations (once; retried on the next call after a failure).
    pub(crate) async fn ready(&self) -> Result<&(Client, ServerVersion)> {
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
                schema::migrate(self, version).await?;
                Ok((client, version))
            })
            .await
    }

    /// Moves journaled deals into ClickHouse: skips ids it already has (a
    /// replay), inserts the rest in one INSERT, then advances the checkpoint.
    pub(crate) async fn flush(&self) -> Result<()> {
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

    /// `ALTER … DELETE` and wait until the mutation is done, so the next read
    /// no longer sees the rows.
    pub(crate) async fn delete_where(&self, c: &Client, table: &str, account: &str, book: &str) -> Result<()> {
        let db = &self.cfg.database;
        let q = c
            .query(&format!("ALTER TABLE {db}.{table} DELETE WHERE account = ? AND book = ?"))
            .bind(account)
            .bind(book);
        self.t("delete", q.execute()).await?;
        self.wait_mutations(c, table).await
    }

    /// Waits until no mutation of `table` is pending.
    pub(crate) async fn wait_mutations(&self, c: &Client, table: &str) -> Result<()> {
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
