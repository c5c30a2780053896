//! `sqdata migrate`: the files → Redis / ClickHouse, with a backup first, a
//! verification afterwards and a rollback.
//!
//! A migration works on a scope (every book, some books or accounts, and —
//! when moving to ClickHouse without a book filter — every bar series;
//! `--date` narrows deals, equity and bars to one day). Before anything is
//! written it makes `<file.root>/_backups/migrate-<time>-<target>/` with
//!
//! - `source.tar.gz`: the scope's files as they were (book folders, `_bars`);
//! - `target/`: the target's state of the same scope, dumped in the file
//!   format (so rollback needs no server-specific snapshot);
//! - `manifest.json`: the scope, the domains, and whether it was rolled back.
//!
//! Running processes keep writing while a migration runs. Each book is
//! copied under its hybrid lock (`sqdata_hybrid::lock_book`), and after
//! the adoption the migration waits two rollout polls (every process has
//! then seen it) and checks the adopted books again, each under its lock,
//! repairing the server from the files: a write that reached only the files
//! of a book that was still waiting (between the verification and the
//! adoption, or before a process saw it) is copied then (`settled`).
//!
//! Rollback first stops the servers serving the scope (un-adopts it, then
//! waits two polls), and only then makes the target's scope equal to
//! `target/` again (verify with the dump as the truth, repairing): what the
//! migration added is deleted, what it overwrote is restored, nothing
//! outside the scope is touched — and no process reads the target while it
//! is being restored. The files are not changed by a migration, so they are
//! not restored; the archive is there for a manual restore.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use sqdata_core::raw::{self, Durability};
use sqdata_core::{
    AssetStoreExt as _, BarKey, BarSeries, BarWriteMode, BookId, DateRange, DealQuery, DealScope, Domain, Error,
    MAX_PAGE_SIZE, Result, Stores, TimeRange,
};
use sqdata_file::{FileConfig, FileStore};
use sqdata_hybrid::{Difference, HybridConfig, Truth, VerifyMode, VerifyOptions, VerifyReport};

use crate::{Backend, Config};

/// What to migrate.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// `redis` (positions) or `clickhouse` (deals, equity, bars).
    pub target: Backend,
    /// Only this day's deals, equity and bars (positions are always whole).
    pub date: Option<NaiveDate>,
    /// Only these books.
    pub books: Option<Vec<BookId>>,
    /// Only the books of these accounts.
    pub accounts: Option<Vec<String>>,
}

/// Progress of a long copy (the CLI draws a bar; tests pass [`NoProgress`]).
pub trait Progress: Send + Sync {
    /// The phase and the units (book-domains and bar series) it will copy.
    fn begin(&self, phase: &str, units: u64);
    /// Units done and records they held.
    fn advance(&self, units: u64, records: u64);
    /// The phase is over.
    fn finish(&self);
}

/// No progress output.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}

/// A migration's backup, as written to `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `migrate-<time>-<target>`.
    pub id: String,
    /// When the migration started (local time).
    pub created: String,
    /// The target.
    pub target: Backend,
    /// The day, for an incremental migration.
    pub date: Option<NaiveDate>,
    /// The domains migrated.
    pub domains: Vec<Domain>,
    /// The books in scope.
    pub books: Vec<BookId>,
    /// The bar series in scope.
    pub series: Vec<BarKey>,
    /// Records copied per domain.
    pub copied: BTreeMap<String, u64>,
    /// Whether the migration finished its copy.
    pub completed: bool,
    /// Whether it was rolled back.
    pub rolled_back: bool,
}

/// What a migration did.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateReport {
    /// The backup folder.
    pub backup: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// The verification after the copy.
    pub verify: VerifyReport,
    /// The domains whose migrated books the servers now serve (adopted:
    /// the copy verified equal and whole — a `--date` migration moves one
    /// day of deals, equity and bars, so only positions are adopted).
    pub adopted: Vec<Domain>,
    /// The check of the adopted books once every process has seen the
    /// adoption (`None`: nothing adopted).
    pub settled: Option<Settled>,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// The second look at the adopted books, after every running process has
/// seen the adoption: differences are writes that reached only the files
/// meanwhile (the files were the truth for those books), repaired from them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settled {
    /// How long the migration waited for the processes, ms.
    pub waited_ms: u64,
    /// Books (per domain) and bar series checked.
    pub checked: u64,
    /// Differences found.
    pub differences: u64,
    /// Records repaired on the server from the files.
    pub repaired: u64,
    /// The first differences.
    pub listed: Vec<Difference>,
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackReport {
    /// The backup restored.
    pub backup: PathBuf,
    /// Its manifest (now marked rolled back).
    pub manifest: Manifest,
    /// The repair that restored the target.
    pub restore: VerifyReport,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// The durable domains a target holds (quotes live seconds: never migrated).
fn domains_of(target: Backend) -> Result<Vec<Domain>> {
    if target == Backend::File {
        return Err(Error::invalid("target", "file", "migrate moves the files to redis or clickhouse"));
    }
    Ok(target.domains().into_iter().filter(|d| d.durable()).collect())
}

/// The file store, with the target's domains taken from the target (the
/// facade's one routing function).
fn target_stores(config: &Config, target: Backend, files: Arc<FileStore>) -> Result<Stores> {
    let mut s = Stores::from_one(files);
    s.backends.clear();
    crate::route(config, target, &target.domains(), &mut s)?;
    Ok(s)
}

fn day_range(date: Option<NaiveDate>) -> (DateRange, TimeRange) {
    match date {
        None => (DateRange::all(), TimeRange::all()),
        Some(d) => {
            let from = d.and_time(NaiveTime::MIN);
            let to = d.and_hms_opt(23, 59, 59).unwrap_or(from);
            (DateRange { from: Some(d), to: Some(d) }, TimeRange { from: Some(from), to: Some(to) })
        }
    }
}

/// What a copy covers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub(crate) domains: &'a [Domain],
    pub(crate) books: &'a [BookId],
    pub(crate) series: &'a [BarKey],
    pub(crate) date: Option<NaiveDate>,
}

impl Manifest {
    fn scope(&self) -> Scope<'_> {
        Scope { domains: &self.domains, books: &self.books, series: &self.series, date: self.date }
    }
}

/// Copies the scope from `from` to `to`; returns records per domain.
pub(crate) async fn copy(
    from: &Stores,
    to: &Stores,
    m: Scope<'_>,
    replace_bars: bool,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, u64>> {
    copy_locked(from, to, m, replace_bars, progress, None).await
}

/// Takes the hybrid's lock of one book of a domain (blocking until running
/// processes finish their write of it), off the executor.
async fn lock_book(cfg: &HybridConfig, d: Domain, book: &BookId) -> Result<raw::LockFile> {
    let (cfg, book) = (cfg.clone(), book.clone());
    tokio::task::spawn_blocking(move || sqdata_hybrid::lock_book(&cfg, d, &book)).await.map_err(|e| Error::Backend {
        backend: "migrate",
        message: e.to_string(),
        retryable: false,
        source: None,
    })?
}

/// As [`copy`]; with `locks`, each book of each domain is copied holding
/// its hybrid lock, so no running process's write of it interleaves.
async fn copy_locked(
    from: &Stores,
    to: &Stores,
    m: Scope<'_>,
    replace_bars: bool,
    progress: &dyn Progress,
    locks: Option<&HybridConfig>,
) -> Result<BTreeMap<String, u64>> {
    let (days, times) = day_range(m.date);
    let mut copied: BTreeMap<String, u64> = BTreeMap::new();
    for book in m.books {
        for d in m.domains {
            let _lock = match locks {
                Some(cfg) if d.per_book() => Some(lock_book(cfg, *d, book).await?),
                _ => None,
            };
            let n = match d {
                Domain::Positions => {
                    let snap = from.positions.snapshot(book).await?;
                    if snap.positions.is_empty() && snap.inc_date.is_none() {
                        to.positions.delete_book(book).await?;
                    } else {
                        to.positions.replace_book(book, &snap).await?;
                    }
                    snap.positions.len() as u64
                }
                Domain::Deals => {
                    let mut q = DealQuery {
                        scope: DealScope::Book(book.clone()),
                        from: days.from,
                        to: days.to,
                        code: None,
                        kind: None,
                        page: 1,
                        page_size: MAX_PAGE_SIZE,
                    };
                    let mut n = 0;
                    loop {
                        let page = from.deals.query(&q).await?;
                        let len = page.data.len();
                        if len > 0 {
                            to.deals.record_batch(&page.data).await?;
                        }
                        n += len as u64;
                        if len < MAX_PAGE_SIZE as usize {
                            break;
                        }
                        q.page += 1;
                    }
                    n
                }
                Domain::Assets => {
                    let rows = from.assets.assets(book, days).await?;
                    for r in &rows {
                        to.assets.upsert_asset(book, *r).await?;
                    }
                    rows.len() as u64
                }
                // bars are market-wide (below); quotes are not copied
                _ => continue,
            };
            *copied.entry(d.as_str().into()).or_default() += n;
            progress.advance(1, n);
        }
    }
    let mode = if replace_bars && m.date.is_none() { BarWriteMode::Replace } else { BarWriteMode::Upsert };
    for chunk in m.series.chunks(100) {
        let mut n = 0;
        for s in from.bars.load_bars_batch(chunk, times).await? {
            n += s.bars.len() as u64;
            if !s.bars.is_empty() {
                to.bars.save_bars(&BarSeries { key: s.key, bars: s.bars }, mode).await?;
            }
        }
        *copied.entry(Domain::Bars.as_str().into()).or_default() += n;
        progress.advance(chunk.len() as u64, n);
    }
    Ok(copied)
}

pub(crate) fn units(m: Scope<'_>) -> u64 {
    let per_book = m.domains.iter().filter(|d| d.per_book()).count() as u64;
    m.books.len() as u64 * per_book + m.series.len() as u64
}

fn backups_root(config: &Config) -> PathBuf {
    config.file.root.join("_backups")
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let body = serde_json::to_vec_pretty(m).map_err(|e| Error::Config(e.to_string()))?;
    raw::replace_atomic(&dir.join("manifest.json"), &body, Durability::Fsync).map(|_| ())
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let b = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_slice(&b).map_err(|e| Error::corrupt(path.display().to_string(), e.to_string()))
}

/// Every migration backup, oldest first.
pub fn backups(config: &Config) -> Result<Vec<(PathBuf, Manifest)>> {
    let root = backups_root(config);
    let rd = match std::fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&root, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let p = e.map_err(|e| Error::io(&root, e))?.path();
        if p.join("manifest.json").exists() {
            out.push((p.clone(), read_manifest(&p)?));
        }
    }
    out.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    Ok(out)
}

/// Archives the scope's files (book folders as `books/<account>/<book>/`, `_bars/`).
fn archive_source(files: &FileConfig, m: &Manifest, path: &Path) -> Result<u64> {
    let f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    for book in &m.books {
        let dir = files.book_dir(book);
        if dir.is_dir() {
            let name = Path::new("books").join(book.account.as_str()).join(book.book.as_str());
            tar.append_dir_all(&name, &dir).map_err(|e| Error::io(&dir, e))?;
        }
    }
    let bars = files.bar_root();
    if !m.series.is_empty() && bars.is_dir() {
        tar.append_dir_all("_bars", &bars).map_err(|e| Error::io(&bars, e))?;
    }
    let gz = tar.into_inner().map_err(|e| Error::io(path, e))?;
    let f = gz.finish().map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))?;
    Ok(f.metadata().map(|m| m.len()).unwrap_or(0))
}

/// Migrates the files to `opts.target`: backup, copy, verify.
pub async fn migrate(config: &Config, opts: &MigrateOptions, progress: &dyn Progress) -> Result<MigrateReport> {
    let t = Instant::now();
    config.validate()?;
    let domains = domains_of(opts.target)?;
    let files = Arc::new(FileStore::open(config.file.clone())?);
    let source = Stores::from_one(files.clone());
    let target = target_stores(config, opts.target, files.clone())?;

    // the scope
    let mut books: BTreeSet<BookId> = BTreeSet::new();
    match &opts.books {
        Some(b) => books.extend(b.iter().cloned()),
        None => {
            for d in &domains {
                books.extend(source.books(*d).await?);
            }
        }
    }
    if let Some(acc) = &opts.accounts {
        books.retain(|b| acc.iter().any(|a| a == b.account.as_str()));
    }
    let mut series = Vec::new();
    if domains.contains(&Domain::Bars) && opts.books.is_none() && opts.accounts.is_none() {
        let since = opts.date.map(|d| d.and_time(NaiveTime::MIN));
        for o in source.bars.overview().await? {
            if since.is_none_or(|s| o.last >= s) {
                series.push(o.key);
            }
        }
    }
    let now = chrono::Local::now();
    let mut id = format!("migrate-{}-{}", now.format("%Y%m%d-%H%M%S-%3f"), opts.target);
    let mut dir = backups_root(config).join(&id);
    let mut k = 1;
    while dir.exists() {
        k += 1;
        id = format!("migrate-{}-{}-{k}", now.format("%Y%m%d-%H%M%S-%3f"), opts.target);
        dir = backups_root(config).join(&id);
    }
    raw::create_dir_all_synced(&dir)?;
    let mut manifest = Manifest {
        id,
        created: now.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        target: opts.target,
        date: opts.date,
        domains: domains.clone(),
        books: books.into_iter().collect(),
        series,
        copied: BTreeMap::new(),
        completed: false,
        rolled_back: false,
    };

    // 1. backups: the source's files, then the target's state of the scope
    let (fc, m2, archive) = (config.file.clone(), manifest.clone(), dir.join("source.tar.gz"));
    tokio::task::spawn_blocking(move || archive_source(&fc, &m2, &archive)).await.map_err(|e| Error::Backend {
        backend: "migrate",
        message: e.to_string(),
        retryable: false,
        source: None,
    })??;
    let dump = dump_store(&dir)?;
    progress.begin("backing up the target", units(manifest.scope()));
    copy(&target, &dump, manifest.scope(), true, progress).await?;
    progress.finish();
    write_manifest(&dir, &manifest)?;

    // 2. copy
    let cfg = config.hybrid.clone().rooted(&config.file.root);
    progress.begin("migrating", units(manifest.scope()));
    manifest.copied = copy_locked(&source, &target, manifest.scope(), true, progress, Some(&cfg)).await?;
    progress.finish();
    manifest.completed = true;
    write_manifest(&dir, &manifest)?;

    // 3. verify, then let the servers serve what they now hold whole
    let verify = sqdata_hybrid::verify(&target, &source, &scope_options(&manifest, false, Truth::Secondary)).await?;
    let mut adopted = Vec::new();
    if verify.total_differences() == 0 {
        let whole_series = opts.books.is_none() && opts.accounts.is_none() && opts.date.is_none();
        for &d in &manifest.domains {
            if d.per_book() && (d == Domain::Positions || opts.date.is_none()) {
                sqdata_hybrid::adopt(&cfg, d, Some(&manifest.books))?;
                adopted.push(d);
            } else if d == Domain::Bars && whole_series {
                sqdata_hybrid::adopt(&cfg, d, None)?;
                adopted.push(d);
            }
        }
    }
    // 4. a second look once every process has seen the adoption
    let settled =
        if adopted.is_empty() { None } else { Some(settle(&cfg, &target, &source, &manifest, &adopted).await?) };
    Ok(MigrateReport { backup: dir, manifest, verify, adopted, settled, elapsed_ms: t.elapsed().as_millis() as u64 })
}

/// Two rollout polls and a margin: by then every running process has
/// re-read the rollout file.
fn settle_time() -> std::time::Duration {
    2 * sqdata_hybrid::ROLLOUT_POLL + std::time::Duration::from_millis(50)
}

/// Waits until every process has seen the adoption, then verifies each
/// adopted book (and the bar series) again under its lock, repairing the
/// server from the files.
async fn settle(
    cfg: &HybridConfig,
    target: &Stores,
    source: &Stores,
    m: &Manifest,
    adopted: &[Domain],
) -> Result<Settled> {
    let t = Instant::now();
    tokio::time::sleep(settle_time()).await;
    let mut out = Settled { waited_ms: t.elapsed().as_millis() as u64, ..Settled::default() };
    let mut add = |r: VerifyReport, checked: u64| {
        out.checked += checked;
        out.differences += r.total_differences();
        out.repaired += r.total_repaired();
        let room = 200usize.saturating_sub(out.listed.len());
        out.listed.extend(r.differences.into_iter().take(room));
    };
    let per_book: Vec<Domain> = adopted.iter().copied().filter(|d| d.per_book()).collect();
    for book in &m.books {
        let mut held = Vec::new();
        for &d in &per_book {
            held.push(lock_book(cfg, d, book).await?);
        }
        let opts = VerifyOptions {
            domains: per_book.clone(),
            books: Some(vec![book.clone()]),
            series: Some(Vec::new()),
            ..scope_options(m, true, Truth::Secondary)
        };
        add(sqdata_hybrid::verify(target, source, &opts).await?, per_book.len() as u64);
        drop(held);
    }
    if adopted.contains(&Domain::Bars) && !m.series.is_empty() {
        let (c, keys) = (cfg.clone(), m.series.clone());
        let held =
            tokio::task::spawn_blocking(move || sqdata_hybrid::lock_series(&c, &keys)).await.map_err(|e| {
                Error::Backend { backend: "migrate", message: e.to_string(), retryable: false, source: None }
            })??;
        let opts =
            VerifyOptions { domains: vec![Domain::Bars], books: None, ..scope_options(m, true, Truth::Secondary) };
        add(sqdata_hybrid::verify(target, source, &opts).await?, m.series.len() as u64);
        drop(held);
    }
    if out.differences > 0 {
        tracing::warn!(
            differences = out.differences,
            repaired = out.repaired,
            "writes reached only the files while the processes switched to the servers; copied to the servers"
        );
    }
    Ok(out)
}

fn dump_store(dir: &Path) -> Result<Stores> {
    let cfg = FileConfig { durability: sqdata_file::Durability::Flush, ..FileConfig::at(dir.join("target")) };
    Ok(Stores::from_one(Arc::new(FileStore::open(cfg)?)))
}

fn scope_options(m: &Manifest, repair: bool, truth: Truth) -> VerifyOptions {
    VerifyOptions {
        mode: m.date.map(VerifyMode::Incremental).unwrap_or(VerifyMode::Full),
        repair,
        truth,
        domains: m.domains.clone(),
        books: Some(m.books.clone()),
        accounts: None,
        series: Some(m.series.clone()),
        ..VerifyOptions::default()
    }
}

/// Undoes a migration: the target's scope becomes what it was before
/// (`backup`: a backup folder; `None`: the latest not yet rolled back).
pub async fn rollback(config: &Config, backup: Option<&Path>) -> Result<RollbackReport> {
    let t = Instant::now();
    config.validate()?;
    let (dir, mut manifest) = match backup {
        Some(d) => (d.to_path_buf(), read_manifest(d)?),
        None => backups(config)?.into_iter().rev().find(|(_, m)| !m.rolled_back).ok_or_else(|| {
            Error::invalid("backup", backups_root(config).display(), "no migration to roll back here")
        })?,
    };
    if manifest.rolled_back {
        return Err(Error::invalid("backup", dir.display(), "this migration was already rolled back"));
    }
    let files = Arc::new(FileStore::open(config.file.clone())?);
    let target = target_stores(config, manifest.target, files)?;
    let dump = dump_store(&dir)?;
    // First the servers stop serving these books (the files serve them),
    // and every process has seen it; only then is the target restored, so
    // no process reads a book from the server while it is being emptied.
    let cfg = config.hybrid.clone().rooted(&config.file.root);
    for &d in &manifest.domains {
        let whole = d == Domain::Bars && manifest.series.is_empty();
        if d.per_book() {
            sqdata_hybrid::unadopt(&cfg, d, Some(&manifest.books))?;
        } else if !whole {
            sqdata_hybrid::unadopt(&cfg, d, None)?;
        }
    }
    tokio::time::sleep(settle_time()).await;
    let restore = sqdata_hybrid::verify(&target, &dump, &scope_options(&manifest, true, Truth::Secondary)).await?;
    manifest.rolled_back = true;
    write_manifest(&dir, &manifest)?;
    Ok(RollbackReport { backup: dir, manifest, restore, elapsed_ms: t.elapsed().as_millis() as u64 })
}
