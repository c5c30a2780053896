//! Moving old deals and bars to Parquet on object storage, and back.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sqdata_core::{
    Bar, BarKey, BarSeries, BarWriteMode, BookId, DateRange, Deal, DealQuery, DealScope, Error, MAX_PAGE_SIZE, Result,
    Stores, TimeRange, sort_deals,
};
use tokio::sync::Mutex;
use xxhash_rust::xxh3::Xxh3;

use crate::columns;
use crate::config::ArchiveConfig;

const BACKEND: &str = "archive";
const MANIFEST: &str = "manifest.json";
/// Deals restored per `record_batch`.
const RESTORE_CHUNK: usize = 5_000;

/// What can be archived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// Deals and orders, partitioned by account, book and month.
    Deals,
    /// K-lines, partitioned by period, adjustment, code and year.
    Bars,
}

impl Table {
    /// `deals` or `bars`.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Deals => "deals",
            Table::Bars => "bars",
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Table {
    type Err = Error;
    fn from_str(s: &str) -> Result<Table> {
        match s {
            "deals" => Ok(Table::Deals),
            "bars" => Ok(Table::Bars),
            _ => Err(Error::invalid("table", s, "expected deals or bars")),
        }
    }
}

/// One Parquet object, as recorded in the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// Which table.
    pub table: Table,
    /// Rows in it.
    pub rows: u64,
    /// Object size.
    pub bytes: u64,
    /// xxh3-64 (hex) of the rows' canonical JSON, in key order.
    pub digest: String,
    /// Earliest row time.
    pub first: NaiveDateTime,
    /// Latest row time.
    pub last: NaiveDateTime,
    /// When the object was (re)written.
    pub written_at: DateTime<Utc>,
}

/// Every part, by object path under the archive's prefix.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Layout version (1).
    pub format: u32,
    /// Parts by path.
    pub parts: BTreeMap<String, Part>,
}

/// Where an archive or restore run is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Which table.
    pub table: Table,
    /// Partitions done.
    pub done: u64,
    /// Partitions in all (0 while still unknown).
    pub total: u64,
    /// Rows so far.
    pub rows: u64,
}

/// What one `archive` run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveReport {
    /// Parquet objects written (new or merged).
    pub parts_written: u64,
    /// Rows written to them (including rows merged from earlier runs).
    pub rows_archived: u64,
    /// Rows removed from the source after their part was verified.
    pub rows_deleted: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// What one `restore` run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    /// Parts read.
    pub parts_read: u64,
    /// Rows written back to the store (idempotent: by id / by time).
    pub rows_restored: u64,
}

/// A part that is missing or does not match its manifest entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartProblem {
    /// The object path.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// The outcome of re-reading every part.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ArchiveVerify {
    /// Parts checked.
    pub parts: u64,
    /// Rows in them.
    pub rows: u64,
    /// Problems found.
    pub problems: Vec<PartProblem>,
}

/// Parquet archives of deals and bars on object storage.
pub struct Archive {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    label: String,
    /// One manifest writer per process.
    manifest_lock: Mutex<()>,
    /// An advisory lock file shared by the processes of one data folder:
    /// the manifest's read-modify-write is theirs one at a time, so two
    /// `archive run`s never lose each other's entries.
    lock_file: Option<std::path::PathBuf>,
}

impl fmt::Debug for Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Archive").field("at", &self.label).finish_non_exhaustive()
    }
}

fn digest<T: Serialize>(rows: &[T]) -> String {
    let mut h = Xxh3::new();
    for r in rows {
        // Serializing plain data structs cannot fail.
        h.update(&serde_json::to_vec(r).unwrap_or_default());
        h.update(b"\n");
    }
    format!("{:016x}", h.digest())
}

fn day_start(d: NaiveDate) -> NaiveDateTime {
    d.and_hms_opt(0, 0, 0).unwrap_or_default()
}

fn deals_path(book: &BookId, year: i32, month: u32) -> String {
    format!("deals/account={}/book={}/month={year:04}-{month:02}.parquet", book.account, book.book)
}

fn bars_path(key: &BarKey, year: i32) -> String {
    format!("bars/period={}/adjust={}/code={}/year={year:04}.parquet", key.period, key.adjust, key.code)
}

/// The series key of a bar part's path.
fn key_of(path: &str) -> Result<BarKey> {
    let mut kv = BTreeMap::new();
    for seg in path.split('/') {
        if let Some((k, v)) = seg.split_once('=') {
            kv.insert(k, v);
        }
    }
    let get = |k: &str| kv.get(k).copied().ok_or_else(|| Error::corrupt(path, format!("no {k}= in the path")));
    columns::bar_key(get("code")?, get("period")?, get("adjust")?).map_err(|e| Error::corrupt(path, e.to_string()))
}

impl Archive {
    /// Opens the archive (nothing is read until it is used).
    pub fn open(cfg: &ArchiveConfig) -> Result<Archive> {
        let (store, prefix, label) = cfg.build()?;
        Ok(Archive { store, prefix, label, manifest_lock: Mutex::new(()), lock_file: None })
    }

    /// Serialises manifest updates across processes with an advisory lock
    /// on `path` (the facade uses `<file.root>/_archive.lock`). Object
    /// stores have no lock of their own that every one of them supports;
    /// archivers on different machines must not run at once.
    pub fn with_lock_file(mut self, path: std::path::PathBuf) -> Archive {
        self.lock_file = Some(path);
        self
    }

    /// Where it is (`s3://bucket/prefix` or a directory), for messages.
    pub fn location(&self) -> &str {
        &self.label
    }

    fn path(&self, rel: &str) -> Path {
        let mut p = self.prefix.clone();
        for part in rel.split('/') {
            p = p.join(part);
        }
        p
    }

    fn err(&self, op: &str, rel: &str, e: object_store::Error) -> Error {
        let message = format!("{op} {}/{rel}: {e}", self.label);
        match e {
            object_store::Error::NotFound { .. } => Error::corrupt(format!("{}/{rel}", self.label), "object missing"),
            e => Error::Unavailable { backend: BACKEND, message, source: Some(Box::new(e)) },
        }
    }

    async fn get(&self, rel: &str) -> Result<Option<Bytes>> {
        match self.store.get(&self.path(rel)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| self.err("reading", rel, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err("reading", rel, e)),
        }
    }

    async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(rel), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.err("writing", rel, e))
    }

    /// The manifest (empty when nothing was archived yet).
    pub async fn manifest(&self) -> Result<Manifest> {
        match self.get(MANIFEST).await? {
            None => Ok(Manifest { format: 1, parts: BTreeMap::new() }),
            Some(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::corrupt(format!("{}/{MANIFEST}", self.label), e.to_string())),
        }
    }

    /// Records written and checked parts in the manifest: one
    /// read-modify-write per book or series, not per partition.
    async fn record_parts(&self, parts: Vec<(String, Part)>) -> Result<()> {
        if parts.is_empty() {
            return Ok(());
        }
        let _g = self.manifest_lock.lock().await;
        let _flock = match self.lock_file.clone() {
            Some(p) => Some(tokio::task::spawn_blocking(move || sqdata_core::raw::lock_exclusive(&p)).await.map_err(
                |e| Error::Backend {
                    backend: BACKEND,
                    message: format!("lock worker: {e}"),
                    retryable: true,
                    source: None,
                },
            )??),
            None => None,
        };
        let mut m = self.manifest().await?;
        m.format = 1;
        m.parts.extend(parts);
        let text = serde_json::to_vec_pretty(&m).map_err(|e| Error::invalid("manifest", "", e.to_string()))?;
        self.put(MANIFEST, text).await
    }

    /// Writes one partition, reads it back and checks it; returns its
    /// manifest entry (recorded by the caller before the rows leave the store).
    async fn write_part<T: Serialize>(
        &self,
        table: Table,
        rel: &str,
        rows: &[T],
        bytes: Vec<u8>,
        span: (NaiveDateTime, NaiveDateTime),
        decode: impl Fn(Bytes) -> Result<Vec<T>>,
    ) -> Result<Part> {
        let want = digest(rows);
        let size = bytes.len() as u64;
        self.put(rel, bytes).await?;
        let back = self.get(rel).await?.ok_or_else(|| Error::corrupt(rel, "object vanished after it was written"))?;
        let got = decode(back)?;
        if got.len() != rows.len() || digest(&got) != want {
            return Err(Error::corrupt(format!("{}/{rel}", self.label), "read back differs from what was written"));
        }
        let part = Part {
            table,
            rows: rows.len() as u64,
            bytes: size,
            digest: want,
            first: span.0,
            last: span.1,
            written_at: Utc::now(),
        };
        metrics::counter!("sqdata_archive_rows_total", "table" => table.as_str()).increment(rows.len() as u64);
        Ok(part)
    }

    /// Moves rows older than `older_than` (a day, exclusive) from the store
    /// to Parquet. Each partition is merged with what an earlier run left,
    /// written, read back and compared before its rows leave the store, so an
    /// interrupted run loses nothing and a rerun finishes it.
    pub async fn archive(
        &self,
        stores: &Stores,
        table: Table,
        older_than: NaiveDate,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<ArchiveReport> {
        sqdata_core::obs::timed(BACKEND, "archive", async {
            match table {
                Table::Deals => self.archive_deals(stores, older_than, progress).await,
                Table::Bars => self.archive_bars(stores, older_than, progress).await,
            }
        })
        .await
    }

    async fn archive_deals(
        &self,
        stores: &Stores,
        older_than: NaiveDate,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<ArchiveReport> {
        let mut report = ArchiveReport::default();
        let Some(last_day) = older_than.pred_opt() else { return Ok(report) };
        let books = stores.deals.list_books().await?;
        let mut p = Progress { table: Table::Deals, done: 0, total: books.len() as u64, rows: 0 };
        for book in books {
            let mut old = Vec::new();
            let mut page = 1;
            loop {
                let q = DealQuery {
                    scope: DealScope::Book(book.clone()),
                    to: Some(last_day),
                    page,
                    page_size: MAX_PAGE_SIZE,
                    ..DealQuery::book(book.clone())
                };
                let got = stores.deals.query(&q).await?;
                let n = got.data.len();
                old.extend(got.data);
                if n < MAX_PAGE_SIZE as usize {
                    break;
                }
                page += 1;
            }
            let mut months: BTreeMap<(i32, u32), Vec<Deal>> = BTreeMap::new();
            for d in old {
                months.entry((d.time.year(), d.time.month())).or_default().push(d);
            }
            let (mut verified, mut parts) = (Vec::new(), Vec::new());
            for ((y, m), deals) in months {
                let rel = deals_path(&book, y, m);
                let ids: Vec<String> = deals.iter().map(|d| d.id.clone()).collect();
                let mut by_id: BTreeMap<String, Deal> = BTreeMap::new();
                if let Some(prev) = self.get(&rel).await? {
                    for d in columns::decode_deals(prev, &rel)? {
                        by_id.insert(d.id.clone(), d);
                    }
                }
                for d in deals {
                    by_id.insert(d.id.clone(), d);
                }
                let mut rows: Vec<Deal> = by_id.into_values().collect();
                sort_deals(&mut rows);
                let span = (rows[0].time, rows[rows.len() - 1].time);
                let bytes = columns::encode_deals(&rows, &rel)?;
                let part =
                    self.write_part(Table::Deals, &rel, &rows, bytes, span, |b| columns::decode_deals(b, &rel)).await?;
                report.bytes += part.bytes;
                parts.push((rel, part));
                report.parts_written += 1;
                report.rows_archived += rows.len() as u64;
                verified.extend(ids);
                p.rows += rows.len() as u64;
                progress(&p);
            }
            // Every month of the book is in the archive, checked and in the
            // manifest: its rows leave the store in one call (a file store
            // rewrites the book's CSV once, not once per chunk).
            self.record_parts(parts).await?;
            report.rows_deleted += stores.deals.delete_deals(&book, &verified).await?;
            p.done += 1;
            progress(&p);
        }
        Ok(report)
    }

    async fn archive_bars(
        &self,
        stores: &Stores,
        older_than: NaiveDate,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<ArchiveReport> {
        let mut report = ArchiveReport::default();
        let cutoff = day_start(older_than) - Duration::seconds(1);
        let series: Vec<_> = stores.bars.overview().await?.into_iter().filter(|o| o.first <= cutoff).collect();
        let mut p = Progress { table: Table::Bars, done: 0, total: series.len() as u64, rows: 0 };
        for o in series {
            let range = TimeRange { from: None, to: Some(cutoff) };
            let old = stores.bars.load_bars(&o.key, range).await?;
            let mut years: BTreeMap<i32, Vec<Bar>> = BTreeMap::new();
            for b in &old {
                years.entry(b.datetime.year()).or_default().push(*b);
            }
            let mut parts = Vec::new();
            for (y, bars) in years {
                let rel = bars_path(&o.key, y);
                let prev = match self.get(&rel).await? {
                    Some(b) => columns::decode_bars(b, &o.key, &rel)?,
                    None => Vec::new(),
                };
                let rows = sqdata_core::upsert_bars(&prev, &bars);
                let span = (rows[0].datetime, rows[rows.len() - 1].datetime);
                let bytes = columns::encode_bars(&o.key, &rows, &rel)?;
                let key = o.key;
                let part = self
                    .write_part(Table::Bars, &rel, &rows, bytes, span, |b| columns::decode_bars(b, &key, &rel))
                    .await?;
                report.bytes += part.bytes;
                parts.push((rel, part));
                report.parts_written += 1;
                report.rows_archived += rows.len() as u64;
                p.rows += rows.len() as u64;
                progress(&p);
            }
            self.record_parts(parts).await?;
            if !old.is_empty() {
                let archived = TimeRange { from: Some(old[0].datetime), to: Some(old[old.len() - 1].datetime) };
                report.rows_deleted += stores.bars.delete_bars(&o.key, archived).await?;
            }
            p.done += 1;
            progress(&p);
        }
        Ok(report)
    }

    /// Writes archived rows inside `range` back into the store. Idempotent:
    /// deals are recorded by id, bars upserted by time. The archive keeps
    /// its copy.
    pub async fn restore(
        &self,
        stores: &Stores,
        table: Table,
        range: DateRange,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<RestoreReport> {
        sqdata_core::obs::timed(BACKEND, "restore", self.restore_parts(stores, table, range, progress)).await
    }

    async fn restore_parts(
        &self,
        stores: &Stores,
        table: Table,
        range: DateRange,
        progress: &(dyn Fn(&Progress) + Send + Sync),
    ) -> Result<RestoreReport> {
        range.validate()?;
        let from = range.from.map(day_start);
        let to = range.to.and_then(|d| d.succ_opt()).map(|d| day_start(d) - Duration::seconds(1));
        let span = TimeRange { from, to };
        let parts: Vec<(String, Part)> = self
            .manifest()
            .await?
            .parts
            .into_iter()
            .filter(|(_, p)| p.table == table)
            .filter(|(_, p)| from.is_none_or(|f| p.last >= f) && to.is_none_or(|t| p.first <= t))
            .collect();
        let mut report = RestoreReport::default();
        let mut prog = Progress { table, done: 0, total: parts.len() as u64, rows: 0 };
        for (rel, part) in parts {
            let bytes = self
                .get(&rel)
                .await?
                .ok_or_else(|| Error::corrupt(format!("{}/{rel}", self.label), "object missing"))?;
            let n = match table {
                Table::Deals => {
                    let all = columns::decode_deals(bytes, &rel)?;
                    check_digest(&rel, &part, &all)?;
                    let rows: Vec<Deal> = all.into_iter().filter(|d| span.contains(d.time)).collect();
                    for chunk in rows.chunks(RESTORE_CHUNK) {
                        stores.deals.record_batch(chunk).await?;
                    }
                    rows.len()
                }
                Table::Bars => {
                    let key = key_of(&rel)?;
                    let all = columns::decode_bars(bytes, &key, &rel)?;
                    check_digest(&rel, &part, &all)?;
                    let bars: Vec<Bar> = all.into_iter().filter(|b| span.contains(b.datetime)).collect();
                    if !bars.is_empty() {
                        stores.bars.save_bars(&BarSeries { key, bars: bars.clone() }, BarWriteMode::Upsert).await?;
                    }
                    bars.len()
                }
            };
            report.parts_read += 1;
            report.rows_restored += n as u64;
            prog.done += 1;
            prog.rows += n as u64;
            progress(&prog);
        }
        Ok(report)
    }

    /// Re-reads every part in the manifest and compares rows and digest;
    /// also reports Parquet objects the manifest does not know.
    pub async fn verify(&self) -> Result<ArchiveVerify> {
        use futures_util::TryStreamExt;
        let m = self.manifest().await?;
        let mut out = ArchiveVerify::default();
        for (rel, part) in &m.parts {
            out.parts += 1;
            let Some(bytes) = self.get(rel).await? else {
                out.problems.push(PartProblem { path: rel.clone(), problem: "object missing".into() });
                continue;
            };
            let got = match part.table {
                Table::Deals => columns::decode_deals(bytes, rel).map(|r| (r.len(), digest(&r))),
                Table::Bars => {
                    key_of(rel).and_then(|k| columns::decode_bars(bytes, &k, rel)).map(|r| (r.len(), digest(&r)))
                }
            };
            match got {
                Err(e) => out.problems.push(PartProblem { path: rel.clone(), problem: e.to_string() }),
                Ok((n, d)) if n as u64 != part.rows || d != part.digest => out.problems.push(PartProblem {
                    path: rel.clone(),
                    problem: format!(
                        "{n} rows, digest {d}; the manifest says {} rows, digest {}",
                        part.rows, part.digest
                    ),
                }),
                Ok((n, _)) => out.rows += n as u64,
            }
        }
        let known: BTreeSet<&str> = m.parts.keys().map(String::as_str).collect();
        let listed: Vec<_> =
            self.store.list(Some(&self.prefix)).try_collect().await.map_err(|e| self.err("listing", "", e))?;
        for obj in listed {
            let full = obj.location.to_string();
            let rel = full.strip_prefix(&format!("{}/", self.prefix)).unwrap_or(&full);
            if rel.ends_with(".parquet") && !known.contains(rel) {
                out.problems.push(PartProblem { path: rel.to_owned(), problem: "not in the manifest".into() });
            }
        }
        Ok(out)
    }
}

/// A part is checked against its manifest entry before any of it is restored.
fn check_digest<T: Serialize>(rel: &str, part: &Part, rows: &[T]) -> Result<()> {
    if rows.len() as u64 != part.rows || digest(rows) != part.digest {
        return Err(Error::corrupt(rel, "does not match its manifest entry (rows or digest)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(i: u32) -> (String, Part) {
        let t = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default().and_hms_opt(0, 0, 0).unwrap_or_default();
        let p = Part {
            table: Table::Deals,
            rows: u64::from(i),
            bytes: 1,
            digest: format!("{i:016x}"),
            first: t,
            last: t,
            written_at: Utc::now(),
        };
        (format!("deals/account=a/book=b/month=2024-{i:03}.parquet"), p)
    }

    /// Two archivers (two processes' worth: separate instances) record
    /// parts at once: with the shared lock file no entry is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_manifest_updates_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ArchiveConfig { url: dir.path().join("arch").display().to_string(), ..ArchiveConfig::default() };
        std::fs::create_dir_all(dir.path().join("arch")).unwrap();
        let lock = dir.path().join("_archive.lock");
        let a = Arc::new(Archive::open(&cfg).unwrap().with_lock_file(lock.clone()));
        let b = Arc::new(Archive::open(&cfg).unwrap().with_lock_file(lock));
        let mut tasks = Vec::new();
        for i in 0..40u32 {
            let x = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move { x.record_parts(vec![part(i)]).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(a.manifest().await.unwrap().parts.len(), 40, "a manifest entry was lost");
    }
}
