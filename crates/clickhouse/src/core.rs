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
use crate::journal::{Entry, Journal};
use crate::rows::*;
use crate::schema::{self, ServerVersion};

pub(crate) const BACKEND: &str = "clickhouse";

/// How often the flusher looks for the journals of processes that are gone
/// (a strategy that died leaves acknowledged deals behind).
const ADOPT_EVERY: Duration = Duration::from_secs(5);

/// The journaled deals not yet in ClickHouse, in journal order: they are
/// pushed under the journal's lock, in the critical section that appends
/// them.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) rows: Vec<Entry>,
    pub(crate) ids: HashSet<(BookId, String)>,
}

impl Pending {
    fn push(&mut self, entries: Vec<Entry>) {
        for e in entries {
            self.ids.insert((e.deal.book.clone(), e.deal.id.clone()));
            self.rows.push(e);
        }
    }
}

/// A blocking task that did not finish (panicked or cancelled).
pub(crate) fn joined(e: tokio::task::JoinError) -> Error {
    Error::Backend { backend: BACKEND, message: e.to_string(), retryable: true, source: None }
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
    /// that is down now is tried again on every call. Within a Tokio
    /// runtime the flusher starts at once (it also adopts the journals of
    /// processes on this folder that die later); otherwise on the first
    /// record. `journal_dir` is taken as given: the facade roots a relative
    /// one under the files' root ([`ClickHouseConfig::rooted`]).
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
        pending.push(recovered);
        let store = ClickHouseStore {
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
        };
        store.start_flusher();
        Ok(store)
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
            let mut adopted = Instant::now();
            loop {
                // Holds no strong reference while it waits: the task ends
                // once the store is dropped.
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                if adopted.elapsed() >= ADOPT_EVERY {
                    adopted = Instant::now();
                    inner.adopt_orphans().await;
                }
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

    /// Journals deals and makes them pending in one critical section (under
    /// the journal's lock): the pending list stays in journal order, so the
    /// flusher never sees a deal without the ones journaled before it.
    /// Blocking. Returns how many and whether the buffer is full.
    pub(crate) fn journal_deals(&self, deals: Vec<Deal>) -> Result<(usize, bool)> {
        let mut j = self.journal.lock();
        let entries = j.append(deals)?;
        j.appended(&entries);
        let mut p = self.pending.lock();
        let n = entries.len();
        p.push(entries);
        Ok((n, p.rows.len() >= self.cfg.flush_rows))
    }

    /// Takes over the journals of processes on this folder that are gone:
    /// their deals become pending here (logged, never fatal).
    pub(crate) async fn adopt_orphans(self: &Arc<Self>) {
        let inner = self.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut j = inner.journal.lock();
            let entries = j.adopt()?;
            let n = entries.len();
            inner.pending.lock().push(entries);
            Ok::<_, Error>(n)
        })
        .await
        .map_err(joined)
        .and_then(|r| r);
        match r {
            Ok(0) => {}
            Ok(n) => tracing::info!(deals = n, "adopted the deal journal of a process that is gone"),
            Err(e) => tracing::warn!(error = %e, "could not look for orphaned deal journals"),
        }
    }

    /// Moves journaled deals into ClickHouse: skips ids it already has (a
    /// replay), inserts the rest in one INSERT, then advances the checkpoint
    /// (never past a deal not yet in ClickHouse).
    pub(crate) async fn flush(self: &Arc<Self>) -> Result<()> {
        let _g = self.flush_lock.lock().await;
        let batch: Vec<Entry> = self.pending.lock().rows.clone();
        let Some(last_end) = batch.last().map(|e| e.end) else { return Ok(()) };
        let (c, _) = self.ready().await?;
        let mut by_book: BTreeMap<&BookId, Vec<&Deal>> = BTreeMap::new();
        for e in &batch {
            by_book.entry(&e.deal.book).or_default().push(&e.deal);
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
        for Entry { deal: d, .. } in &batch {
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
        let inner = self.clone();
        let flushed = batch.len();
        tokio::task::spawn_blocking(move || inner.settle(flushed, last_end)).await.map_err(joined)?
    }

    /// After the first `flushed` pending deals (ending at `last_end`) reached
    /// ClickHouse: checkpoints and drops them from the pending list. The
    /// checkpoint stops at the start of the first deal still pending, if
    /// any starts earlier, so it never passes one that is not in ClickHouse
    /// (the journal's lock keeps appends out meanwhile). Blocking.
    fn settle(&self, flushed: usize, last_end: u64) -> Result<()> {
        let mut j = self.journal.lock();
        let upto = {
            let p = self.pending.lock();
            p.rows.iter().skip(flushed).map(|e| e.start).min().map_or(last_end, |s| s.min(last_end))
        };
        j.checkpoint(upto)?;
        let mut p = self.pending.lock();
        let n = flushed.min(p.rows.len());
        for e in p.rows.drain(..n).collect::<Vec<_>>() {
            p.ids.remove(&(e.deal.book, e.deal.id));
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use sqdata_core::{Code, DealKind, DealStoreExt};

    use super::*;

    fn deal(id: &str) -> Deal {
        Deal {
            id: id.into(),
            book: BookId::new("55009728", "ckpt").unwrap(),
            time: chrono::NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(9, 30, 0).unwrap(),
            code: Code::parse("000001.SZ").unwrap(),
            name: String::new(),
            kind: DealKind::MarketBuy,
            remark: String::new(),
            price: 10.0,
            volume: 100,
            amount: 1000.0,
            strategy: String::new(),
        }
    }

    /// Whatever order the pending list is in, the checkpoint stops at the
    /// first deal not flushed.
    #[test]
    fn the_checkpoint_stops_at_the_first_deal_not_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ClickHouseConfig { journal_dir: dir.path().into(), ..Default::default() };
        let s = ClickHouseStore::open(cfg).unwrap(); // no runtime: no flusher, nothing contacted
        s.inner.journal_deals(vec![deal("a")]).unwrap();
        s.inner.journal_deals(vec![deal("b")]).unwrap();
        let a_start = {
            let mut p = s.inner.pending.lock();
            p.rows.swap(0, 1); // b first: as if it had overtaken a
            p.rows[1].start
        };
        let b_end = s.inner.pending.lock().rows[0].end;
        s.inner.settle(1, b_end).unwrap();
        assert_eq!(s.inner.journal.lock().state().1, a_start, "checkpointed past a");
        assert_eq!(s.pending_deals(), 1);
    }

    /// Two records race: A is journaled first, B second, and the flusher
    /// runs while A is between its append and the pending list. The
    /// checkpoint must not pass A (a crash would lose an acknowledged deal).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpoint_never_passes_a_deal_not_yet_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let s = ClickHouseStore::open(ClickHouseConfig {
            url: sqdata_testkit::env("SQDATA_TEST_CLICKHOUSE_URL"),
            database: format!("sqtest_{:x}", sqdata_testkit::random_u64()),
            journal_dir: dir.path().into(),
            flush_interval_ms: 3_600_000, // the test flushes
            ..Default::default()
        })
        .unwrap();
        s.server_version().await.unwrap();
        let (paused, on_pause) = mpsc::channel();
        let (resume, on_resume) = mpsc::channel::<()>();
        let on_resume = std::sync::Mutex::new(on_resume);
        s.inner.journal.lock().after_append = Some(Arc::new(move |entries: &[Entry]| {
            if entries[0].deal.id == "a" {
                paused.send(()).unwrap();
                on_resume.lock().unwrap().recv().unwrap();
            }
        }));
        let a = tokio::spawn({
            let s = s.clone();
            async move { s.record(&deal("a")).await }
        });
        tokio::task::spawn_blocking(move || on_pause.recv_timeout(Duration::from_secs(20)).unwrap()).await.unwrap();
        let mut b = tokio::spawn({
            let s = s.clone();
            async move { s.record(&deal("b")).await }
        });
        // B is acknowledged unless it waits for A (it may)
        let b_first = tokio::time::timeout(Duration::from_secs(2), &mut b).await.ok();
        s.flush().await.unwrap();
        resume.send(()).unwrap();
        a.await.unwrap().unwrap();
        match b_first {
            Some(r) => r.unwrap().unwrap(),
            None => b.await.unwrap().unwrap(),
        };
        // A is acknowledged and not known to be in ClickHouse: a crash now
        // must replay it
        let replayed: Vec<String> = s.inner.journal.lock().pending().unwrap().into_iter().map(|d| d.id).collect();
        let in_pending: Vec<String> = s.inner.pending.lock().rows.iter().map(|e| e.deal.id.clone()).collect();
        for id in &in_pending {
            assert!(replayed.contains(id), "{id} is pending but past the checkpoint: {replayed:?}");
        }
        assert!(in_pending.contains(&"a".to_string()), "A was not flushed yet: {in_pending:?}");
        s.flush().await.unwrap();
        assert_eq!(s.pending_deals(), 0);
        assert!(s.inner.journal.lock().pending().unwrap().is_empty());
        s.drop_database().await.unwrap();
    }
}
