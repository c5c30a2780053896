//! [`FileStore`]: every store trait over SilverQuant-compatible files.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sqdata_core::position::rules;
use sqdata_core::{
    AggregateQuery, AssetRow, AssetStore, BackendHealth, Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode,
    BookId, Code, DateRange, Deal, DealAggregate, DealQuery, DealScope, DealStore, Error, ExtremeChange, HealthCheck,
    Page, PositionEntry, PositionSnapshot, PositionStore, PriceTick, Quote, QuoteStore, ReconcileReport, RecordOutcome,
    Result, TimeRange, async_trait, validate_ticks,
};

use crate::config::FileConfig;
use crate::deals::{self, DealEncoding, IdEntry, RawRow};
use crate::fsio::{self, DirLock, Durability, Stamp};
use crate::positions::{self, Doc, Paths};
use crate::{assets, bars, pyjson};

const BACKEND: &str = "file";

/// The file backend. Cheap to clone; clones share caches.
#[derive(Clone, Debug)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: FileConfig,
    books: Mutex<HashMap<BookId, Arc<BookCell>>>,
    quotes: Mutex<Option<QuoteCache>>,
    quotes_write: Mutex<()>,
    bars_write: Mutex<()>,
}

/// Per-book state: the folder, a writer lock and the parsed-file caches.
#[derive(Debug)]
struct BookCell {
    id: BookId,
    dir: PathBuf,
    paths: Paths,
    write: Mutex<()>,
    pos: Mutex<Option<Arc<PosCache>>>,
    deals: Mutex<Option<DealCache>>,
}

#[derive(Debug)]
struct PosCache {
    stamps: [Option<Stamp>; 3],
    docs: [Doc; 3],
    raw: [Option<Arc<Vec<u8>>>; 3],
    snapshot: PositionSnapshot,
}

impl FileStore {
    /// Opens (creating the root folder if needed).
    pub fn open(cfg: FileConfig) -> Result<FileStore> {
        cfg.validate()?;
        fsio::ensure_dir(&cfg.root)?;
        Ok(FileStore {
            inner: Arc::new(Inner {
                cfg,
                books: Mutex::new(HashMap::new()),
                quotes: Mutex::new(None),
                quotes_write: Mutex::new(()),
                bars_write: Mutex::new(()),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FileConfig {
        &self.inner.cfg
    }

    /// The folder holding a book's files.
    pub fn book_dir(&self, book: &BookId) -> PathBuf {
        self.inner.cfg.book_dir(book)
    }

    async fn blocking<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Inner) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(|e| Error::Backend {
            backend: BACKEND,
            message: format!("worker failed: {e}"),
            retryable: false,
            source: None,
        })?
    }
}

impl Inner {
    fn cell(&self, book: &BookId) -> Arc<BookCell> {
        let mut books = self.books.lock();
        books
            .entry(book.clone())
            .or_insert_with(|| {
                let dir = self.cfg.book_dir(book);
                Arc::new(BookCell {
                    id: book.clone(),
                    paths: Paths::in_dir(&dir),
                    dir,
                    write: Mutex::new(()),
                    pos: Mutex::new(None),
                    deals: Mutex::new(None),
                })
            })
            .clone()
    }

    // ---- positions -------------------------------------------------------

    /// The parsed position files, revalidated against the files' stamps.
    fn positions(&self, cell: &BookCell) -> Result<Arc<PosCache>> {
        let p = &cell.paths;
        let stamps = [fsio::stamp(&p.positions)?, fsio::stamp(&p.max)?, fsio::stamp(&p.min)?];
        let previous = cell.pos.lock().clone();
        if let Some(c) = &previous
            && c.stamps == stamps
        {
            if !stamps.iter().flatten().any(Stamp::is_racy) {
                return Ok(c.clone());
            }
            // Changed within the last clock tick: an outside same-size rewrite
            // could hide behind an equal stamp, so compare the bytes (cheap)
            // instead of trusting it, and only re-parse if they differ.
            if self.same_bytes(cell, c)? {
                return Ok(c.clone());
            }
        }
        let fresh = Arc::new(self.load_positions(cell, previous.as_deref())?);
        *cell.pos.lock() = Some(fresh.clone());
        Ok(fresh)
    }

    fn same_bytes(&self, cell: &BookCell, c: &PosCache) -> Result<bool> {
        let p = &cell.paths;
        for (i, path) in [&p.positions, &p.max, &p.min].into_iter().enumerate() {
            let now = fsio::read_stable(path)?;
            let same = match (&now, &c.raw[i]) {
                (None, None) => true,
                (Some((bytes, st)), Some(raw)) => Some(*st) == c.stamps[i] && bytes.as_slice() == raw.as_slice(),
                _ => false,
            };
            if !same {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn load_positions(&self, cell: &BookCell, previous: Option<&PosCache>) -> Result<PosCache> {
        let p = &cell.paths;
        let mut stamps = [None; 3];
        let mut docs: [Doc; 3] = Default::default();
        let mut raw: [Option<Arc<Vec<u8>>>; 3] = Default::default();
        for (i, path) in [&p.positions, &p.max, &p.min].into_iter().enumerate() {
            let mut attempt = 0;
            loop {
                let Some((bytes, st)) = fsio::read_stable(path)? else { break };
                match positions::parse_doc(path, &bytes) {
                    Ok(d) => {
                        docs[i] = d;
                        stamps[i] = Some(st);
                        raw[i] = Some(Arc::new(bytes));
                        break;
                    }
                    // SilverQuant rewrites in place (truncate, then write): a
                    // file changed a moment ago may be mid-write. Look again.
                    Err(_) if st.is_fresh() && attempt < 6 => {
                        std::thread::sleep(Duration::from_millis(1 << attempt));
                        attempt += 1;
                    }
                    Err(e) => return Err(self.corrupt(path, e, previous.and_then(|c| c.raw[i].clone()))),
                }
            }
        }
        let snapshot = positions::derive(p, &docs[0], &docs[1], &docs[2])?;
        Ok(PosCache { stamps, docs, raw, snapshot })
    }

    /// A corrupt file: keep the last good version we saw beside it and say where.
    fn corrupt(&self, path: &Path, err: Error, last_seen: Option<Arc<Vec<u8>>>) -> Error {
        let lg = fsio::last_good_path(path);
        if let Some(bytes) = last_seen {
            let _ = fsio::replace(&lg, &bytes, Durability::Fsync, false);
        }
        match err {
            Error::Corrupt { location, reason, .. } => {
                Error::Corrupt { location, reason, last_good: lg.exists().then(|| lg.display().to_string()) }
            }
            other => other,
        }
    }

    /// Read-modify-write of one book's position files under both locks.
    fn mutate<R>(&self, book: &BookId, hint: &[Code], f: impl FnOnce(&mut PositionSnapshot) -> R) -> Result<R> {
        let cell = self.cell(book);
        let _w = cell.write.lock();
        let _flock = DirLock::acquire(&cell.dir)?;
        let cur = self.positions(&cell)?;
        let mut new = cur.snapshot.clone();
        let r = f(&mut new);
        if new == cur.snapshot {
            return Ok(r);
        }
        let old = &cur.snapshot;
        // Rebuild only the files whose part of the book changed (a tick that
        // moves only maxima leaves positions.json and min_price.json alone).
        let differs = |f: fn(&PositionEntry) -> Option<f64>| {
            old.positions.len() != new.positions.len()
                || old.positions.iter().zip(&new.positions).any(|((ca, a), (cb, b))| ca != cb || f(a) != f(b))
        };
        let pos_changed = old.inc_date != new.inc_date
            || old.positions.len() != new.positions.len()
            || old
                .positions
                .iter()
                .zip(&new.positions)
                .any(|((ca, a), (cb, b))| ca != cb || a.day_count != b.day_count);
        let docs = [
            if pos_changed { positions::rebuild_positions(&cur.docs[0], old, &new, hint) } else { cur.docs[0].clone() },
            if differs(|e| e.max_price) {
                positions::rebuild_prices(&cur.docs[1], old, &new, |e| e.max_price, hint)
            } else {
                cur.docs[1].clone()
            },
            if differs(|e| e.min_price) {
                positions::rebuild_prices(&cur.docs[2], old, &new, |e| e.min_price, hint)
            } else {
                cur.docs[2].clone()
            },
        ];
        let p = &cell.paths;
        let mut stamps = cur.stamps;
        let mut raw = cur.raw.clone();
        // Only the files that changed, all with one directory fsync; positions
        // first, so a crash between renames never leaves prices for a code
        // the positions file does not have yet.
        let mut changed: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let unchanged = *doc == cur.docs[i] && (cur.stamps[i].is_some() || doc.is_empty());
            if !unchanged {
                changed.push((i, pyjson::dumps_map(doc).into_bytes()));
            }
        }
        let all = [&p.positions, &p.max, &p.min];
        let files: Vec<(&Path, &[u8])> = changed.iter().map(|(i, t)| (all[*i].as_path(), t.as_slice())).collect();
        let new_stamps = fsio::replace_many(&files, self.cfg.durability, true)?;
        for ((i, text), st) in changed.into_iter().zip(new_stamps) {
            stamps[i] = Some(st);
            raw[i] = Some(Arc::new(text));
        }
        *cell.pos.lock() = Some(Arc::new(PosCache { stamps, docs, raw, snapshot: new }));
        Ok(r)
    }

    fn books_with(&self, file: &str) -> Result<Vec<BookId>> {
        Ok(self
            .cfg
            .existing_books()?
            .into_iter()
            .filter(|(_, dir)| dir.join(file).exists())
            .map(|(id, _)| id)
            .collect())
    }

    fn remove_files(&self, book: &BookId, names: &[&str]) -> Result<()> {
        let cell = self.cell(book);
        let _w = cell.write.lock();
        if !cell.dir.exists() {
            return Ok(());
        }
        let _flock = DirLock::acquire(&cell.dir)?;
        for n in names {
            let p = cell.dir.join(n);
            fsio::remove(&p)?;
            fsio::remove(&fsio::last_good_path(&p))?;
        }
        *cell.pos.lock() = None;
        *cell.deals.lock() = None;
        Ok(())
    }

    // ---- deals -----------------------------------------------------------

    /// The parsed deal log of a book, brought up to date with the files.
    fn with_deals<R>(&self, cell: &BookCell, f: impl FnOnce(&DealCache) -> R) -> Result<R> {
        let mut guard = cell.deals.lock();
        let csv_path = cell.dir.join(deals::DEAL_HIST);
        let ids_path = cell.dir.join(deals::DEAL_IDS);
        let csv_stamp = fsio::stamp(&csv_path)?;
        let ids_stamp = fsio::stamp(&ids_path)?;
        let fresh = match guard.take() {
            Some(c) if c.csv_stamp == csv_stamp && c.ids_stamp == ids_stamp => c,
            Some(mut c)
                if c.ids_stamp == ids_stamp
                    && matches!((c.csv_stamp, csv_stamp), (Some(a), Some(b)) if a.grew_to(&b)) =>
            {
                c.read_tail(&cell.id, &csv_path, self.cfg.deal_encoding)?;
                c
            }
            _ => DealCache::load(&cell.id, &csv_path, &ids_path, self.cfg.deal_encoding)?,
        };
        let r = f(&fresh);
        *guard = Some(fresh);
        Ok(r)
    }

    fn record_book(&self, book: &BookId, batch: &[&Deal]) -> Result<RecordOutcome> {
        let cell = self.cell(book);
        let _w = cell.write.lock();
        let _flock = DirLock::acquire(&cell.dir)?;
        let csv_path = cell.dir.join(deals::DEAL_HIST);
        let ids_path = cell.dir.join(deals::DEAL_IDS);
        // Bring the cache up to date, then work out what is new.
        self.with_deals(&cell, |_| ())?;
        let mut guard = cell.deals.lock();
        let Some(cache) = guard.as_mut() else {
            return Err(Error::Backend {
                backend: BACKEND,
                message: "deal cache missing".into(),
                retryable: true,
                source: None,
            });
        };
        let mut outcome = RecordOutcome::default();
        let mut csv_text = String::new();
        let mut ids_text = String::new();
        let mut pending: Vec<(RawRow, u32, IdEntry)> = Vec::new();
        let mut adopted: Vec<(u64, u32, IdEntry)> = Vec::new();
        let mut counts = cache.counts.clone();
        let mut seen_in_batch = std::collections::HashSet::new();
        for d in batch {
            if cache.id_index.contains_key(&d.id) || !seen_in_batch.insert(d.id.as_str()) {
                outcome.duplicates += 1;
                continue;
            }
            let fields = deals::row_fields(d);
            let fp = deals::fingerprint(&fields);
            let entry = IdEntry { id: d.id.clone(), strategy: d.strategy.clone(), amount: d.amount };
            // A row with this content but no id of ours: an append whose
            // sidecar line was lost (a crash between the two). Adopt it.
            if let Some(occ) = cache.unclaimed(fp, &adopted) {
                ids_text.push_str(&deals::format_id_line(fp, occ, &entry));
                adopted.push((fp, occ, entry));
                outcome.duplicates += 1;
                continue;
            }
            let occ = {
                let c = counts.entry(fp).or_insert(0);
                let o = *c;
                *c += 1;
                o
            };
            csv_text.push_str(&deals::format_row(d));
            ids_text.push_str(&deals::format_id_line(fp, occ, &entry));
            let raw = RawRow {
                fp,
                time: d.time,
                code: d.code,
                name: d.name.clone(),
                kind: d.kind,
                remark: d.remark.clone(),
                price: d.price,
                volume: d.volume,
            };
            pending.push((raw, occ, entry));
            outcome.inserted += 1;
        }
        if csv_text.is_empty() && ids_text.is_empty() {
            return Ok(outcome);
        }
        let dur = self.cfg.durability;
        let mut new_csv_stamp = cache.csv_stamp;
        if !csv_text.is_empty() {
            let header =
                if cache.csv_stamp.is_none_or(|s| s.size() == 0) { deals::header_line() } else { String::new() };
            let bytes = deals::encode(&format!("{header}{csv_text}"), cache.encoding_for_write());
            let expected = cache.csv_stamp.map(|s| s.size()).unwrap_or(0) + bytes.len() as u64;
            let st = fsio::append(&csv_path, &bytes, dur)?;
            if st.size() != expected {
                // Someone else appended meanwhile: reload from scratch next time.
                *guard = None;
                if fsio::stamp(&ids_path)?.is_none() {
                    fsio::append(&ids_path, deals::IDS_HEADER.as_bytes(), dur)?;
                }
                fsio::append(&ids_path, ids_text.as_bytes(), dur)?;
                return Ok(outcome);
            }
            new_csv_stamp = Some(st);
            cache.consumed = expected as usize;
            if cache.encoding.is_none() {
                cache.encoding = Some(cache.encoding_for_write());
            }
        }
        let ids_prefix = if cache.ids_stamp.is_none() { deals::IDS_HEADER } else { "" };
        let ids_st = fsio::append(&ids_path, format!("{ids_prefix}{ids_text}").as_bytes(), dur)?;
        cache.csv_stamp = new_csv_stamp;
        cache.ids_stamp = Some(ids_st);
        if !adopted.is_empty() {
            for (fp, occ, entry) in adopted {
                cache.ids.insert((fp, occ), entry);
            }
            cache.rebuild_ids_for_adopted(&cell.id);
        }
        if !pending.is_empty() {
            cache.lines += pending.len() + usize::from(cache.lines == 0);
        }
        for (raw, occ, entry) in pending {
            cache.ids.insert((raw.fp, occ), entry);
            cache.push(&cell.id, raw, occ);
        }
        cache.counts = counts;
        cache.sort_if_needed();
        Ok(outcome)
    }

    /// Rewrites the book's deal log without these ids (both files, one
    /// directory fsync), keeping every other row as SilverQuant wrote it.
    fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        let cell = self.cell(book);
        let _w = cell.write.lock();
        let csv_path = cell.dir.join(deals::DEAL_HIST);
        if ids.is_empty() || !csv_path.exists() {
            return Ok(0);
        }
        let _flock = DirLock::acquire(&cell.dir)?;
        let drop: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let rebuilt = self.with_deals(&cell, |c| {
            let keep: Vec<&Deal> = c.deals.iter().filter(|d| !drop.contains(d.id.as_str())).collect();
            let removed = c.deals.len() - keep.len();
            let mut csv = deals::header_line();
            let mut side = String::from(deals::IDS_HEADER);
            let mut counts: HashMap<u64, u32> = HashMap::new();
            for d in keep {
                let fp = deals::fingerprint(&deals::row_fields(d));
                let occ = counts.entry(fp).or_insert(0);
                csv.push_str(&deals::format_row(d));
                let entry = IdEntry { id: d.id.clone(), strategy: d.strategy.clone(), amount: d.amount };
                side.push_str(&deals::format_id_line(fp, *occ, &entry));
                *occ += 1;
            }
            (removed, csv, side, c.encoding_for_write())
        })?;
        let (removed, csv, side, enc) = rebuilt;
        if removed == 0 {
            return Ok(0);
        }
        let csv = deals::encode(&csv, enc);
        let ids_path = cell.dir.join(deals::DEAL_IDS);
        fsio::replace_many(&[(&csv_path, &csv), (&ids_path, side.as_bytes())], self.cfg.durability, true)?;
        *cell.deals.lock() = None;
        Ok(removed as u64)
    }

    fn deal_cells(&self, scope: &DealScope) -> Result<Vec<Arc<BookCell>>> {
        Ok(match scope {
            DealScope::Book(b) => vec![self.cell(b)],
            DealScope::Account(a) => self
                .books_with(deals::DEAL_HIST)?
                .into_iter()
                .filter(|b| &b.account == a)
                .map(|b| self.cell(&b))
                .collect(),
        })
    }

    // ---- quotes ----------------------------------------------------------

    fn quotes_fresh(&self) -> Result<HashMap<Code, QuoteRecord>> {
        let path = self.cfg.quotes_path();
        let st = fsio::stamp(&path)?;
        let mut guard = self.quotes.lock();
        if let Some(c) = guard.as_ref()
            && c.stamp == st
        {
            return Ok(c.map.clone());
        }
        let map = match fsio::read_stable(&path)? {
            None => HashMap::new(),
            Some((bytes, _)) => serde_json::from_slice::<HashMap<Code, QuoteRecord>>(&bytes)
                .map_err(|e| Error::corrupt(path.display().to_string(), format!("invalid quotes file: {e}")))?,
        };
        *guard = Some(QuoteCache { stamp: st, map: map.clone() });
        Ok(map)
    }

    // ---- bars ------------------------------------------------------------

    fn read_series(&self, key: &BarKey) -> Result<Vec<Bar>> {
        let path = bars::series_path(&self.cfg.bar_root(), key);
        match fsio::read_stable(&path)? {
            None => Ok(Vec::new()),
            Some((bytes, _)) => bars::decode(&path, &bytes),
        }
    }

    fn write_series(&self, key: &BarKey, bars_: &[Bar]) -> Result<()> {
        let path = bars::series_path(&self.cfg.bar_root(), key);
        if bars_.is_empty() {
            return fsio::remove(&path);
        }
        if let Some(dir) = path.parent() {
            fsio::ensure_dir(dir)?;
        }
        fsio::replace(&path, &bars::encode(bars_), self.cfg.durability, false)?;
        Ok(())
    }
}

/// Bytes up to and including the last newline: the complete lines. A `\n`
/// byte never occurs inside a GBK or UTF-8 multi-byte character.
fn complete_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct QuoteRecord {
    quote: Quote,
    expires_at_ms: u64,
}

#[derive(Debug)]
struct QuoteCache {
    stamp: Option<Stamp>,
    map: HashMap<Code, QuoteRecord>,
}

/// The parsed deal log of one book.
#[derive(Debug, Default)]
struct DealCache {
    csv_stamp: Option<Stamp>,
    ids_stamp: Option<Stamp>,
    /// Encoding of the existing file (None while there is no file).
    encoding: Option<DealEncoding>,
    configured: DealEncoding,
    /// Bytes of the CSV parsed so far (complete lines only).
    consumed: usize,
    /// Lines parsed so far (for error messages).
    lines: usize,
    rows: Vec<RawRow>,
    occ: Vec<u32>,
    counts: HashMap<u64, u32>,
    ids: HashMap<(u64, u32), IdEntry>,
    deals: Vec<Deal>,
    id_index: HashMap<String, u32>,
    /// Indices into `deals`, sorted by (time, id).
    order: Vec<u32>,
    sorted_upto: usize,
}

impl DealCache {
    fn load(book: &BookId, csv_path: &Path, ids_path: &Path, configured: DealEncoding) -> Result<DealCache> {
        let mut c = DealCache { configured, ..Default::default() };
        if let Some((bytes, st)) = fsio::read_stable(ids_path)? {
            let text = String::from_utf8(bytes)
                .map_err(|e| Error::corrupt(ids_path.display().to_string(), format!("not UTF-8: {e}")))?;
            c.ids = deals::parse_ids(ids_path, &text)?;
            c.ids_stamp = Some(st);
        }
        if let Some((bytes, st)) = fsio::read_stable(csv_path)? {
            let enc = deals::detect(&bytes, configured);
            let text = deals::decode(csv_path, &bytes, enc)?;
            let (rows, _) = deals::parse_rows(csv_path, &text, true, 1)?;
            c.encoding = Some(enc);
            c.consumed = complete_len(&bytes);
            c.lines = 1 + rows.len();
            c.csv_stamp = Some(st);
            for r in rows {
                let occ = {
                    let e = c.counts.entry(r.fp).or_insert(0);
                    let o = *e;
                    *e += 1;
                    o
                };
                c.push(book, r, occ);
            }
        }
        c.sort_if_needed();
        Ok(c)
    }

    fn read_tail(&mut self, book: &BookId, csv_path: &Path, _configured: DealEncoding) -> Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(csv_path).map_err(|e| Error::io(csv_path, e))?;
        f.seek(SeekFrom::Start(self.consumed as u64)).map_err(|e| Error::io(csv_path, e))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|e| Error::io(csv_path, e))?;
        let st = fsio::stamp(csv_path)?;
        let enc = self.encoding.unwrap_or_else(|| deals::detect(&bytes, self.configured));
        let text = deals::decode(csv_path, &bytes, enc)?;
        let (rows, _) = deals::parse_rows(csv_path, &text, false, self.lines + 1)?;
        self.consumed += complete_len(&bytes);
        self.lines += rows.len();
        self.csv_stamp = st;
        for r in rows {
            let occ = {
                let e = self.counts.entry(r.fp).or_insert(0);
                let o = *e;
                *e += 1;
                o
            };
            self.push(book, r, occ);
        }
        self.sort_if_needed();
        Ok(())
    }

    fn encoding_for_write(&self) -> DealEncoding {
        match self.encoding.unwrap_or(self.configured) {
            DealEncoding::Auto => DealEncoding::Gbk,
            e => e,
        }
    }

    fn push(&mut self, book: &BookId, r: RawRow, occ: u32) {
        let d = deals::to_deal(book, &r, occ, &self.ids);
        let idx = self.deals.len() as u32;
        self.id_index.insert(d.id.clone(), idx);
        self.deals.push(d);
        self.rows.push(r);
        self.occ.push(occ);
        self.order.push(idx);
    }

    /// A row occurrence with this fingerprint that has no sidecar id yet.
    fn unclaimed(&self, fp: u64, adopted: &[(u64, u32, IdEntry)]) -> Option<u32> {
        let n = *self.counts.get(&fp)?;
        (0..n).find(|o| !self.ids.contains_key(&(fp, *o)) && !adopted.iter().any(|(f, oo, _)| *f == fp && oo == o))
    }

    /// Re-derives deals whose sidecar entry was just added (adopted rows).
    fn rebuild_ids_for_adopted(&mut self, book: &BookId) {
        for i in 0..self.deals.len() {
            let key = (self.rows[i].fp, self.occ[i]);
            if let Some(e) = self.ids.get(&key)
                && self.deals[i].id != e.id
            {
                self.id_index.remove(&self.deals[i].id);
                self.deals[i] = deals::to_deal(book, &self.rows[i], self.occ[i], &self.ids);
                self.id_index.insert(e.id.clone(), i as u32);
            }
        }
        self.sorted_upto = 0;
    }

    fn sort_if_needed(&mut self) {
        let deals = &self.deals;
        let key = |i: &u32| (deals[*i as usize].time, deals[*i as usize].id.as_str());
        let tail_sorted =
            self.order.windows(2).skip(self.sorted_upto.saturating_sub(1)).all(|w| key(&w[0]) <= key(&w[1]));
        if !tail_sorted || self.sorted_upto == 0 {
            self.order.sort_by(|a, b| key(a).cmp(&key(b)));
        }
        self.sorted_upto = self.order.len();
    }

    /// Deals in (time, id) order within a day range.
    fn in_range(&self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> &[u32] {
        let day = |i: &u32| self.deals[*i as usize].time.date();
        let lo = match from {
            Some(f) => self.order.partition_point(|i| day(i) < f),
            None => 0,
        };
        let hi = match to {
            Some(t) => self.order.partition_point(|i| day(i) <= t),
            None => self.order.len(),
        };
        &self.order[lo..hi.max(lo)]
    }
}

// ---- trait impls ----------------------------------------------------------

#[async_trait]
impl PositionStore for FileStore {
    async fn snapshot(&self, book: &BookId) -> Result<PositionSnapshot> {
        // Hot path: a stat per file and a clone of the cached snapshot.
        let cell = self.inner.cell(book);
        Ok(self.inner.positions(&cell)?.snapshot.clone())
    }

    async fn held_days(&self, book: &BookId, codes: &[Code]) -> Result<BTreeMap<Code, Option<u32>>> {
        let cell = self.inner.cell(book);
        Ok(rules::held_days(&self.inner.positions(&cell)?.snapshot, codes))
    }

    async fn new_held(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        let (book, codes) = (book.clone(), codes.to_vec());
        self.blocking(move |i| i.mutate(&book, &codes, |s| rules::new_held(s, &codes))).await
    }

    async fn mark_sold(&self, book: &BookId, code: Code) -> Result<()> {
        let book = book.clone();
        self.blocking(move |i| i.mutate(&book, &[code], |s| rules::mark_sold(s, code)).map(|_| ())).await
    }

    async fn reconcile(&self, book: &BookId, broker_codes: &[Code]) -> Result<ReconcileReport> {
        let (book, codes) = (book.clone(), broker_codes.to_vec());
        self.blocking(move |i| i.mutate(&book, &codes, |s| rules::reconcile(s, &codes))).await
    }

    async fn inc_held_days(&self, book: &BookId, today: NaiveDate) -> Result<bool> {
        sqdata_core::validate::check_year("today", &today.to_string(), today)?;
        let book = book.clone();
        self.blocking(move |i| i.mutate(&book, &[], |s| rules::inc_held_days(s, today))).await
    }

    async fn update_extremes(&self, book: &BookId, ticks: &[PriceTick]) -> Result<Vec<ExtremeChange>> {
        validate_ticks(ticks)?;
        let (book, ticks) = (book.clone(), ticks.to_vec());
        self.blocking(move |i| {
            let hint: Vec<Code> = ticks.iter().map(|t| t.code).collect();
            i.mutate(&book, &hint, |s| rules::update_extremes(s, &ticks))
        })
        .await
    }

    async fn replace_book(&self, book: &BookId, snapshot: &PositionSnapshot) -> Result<()> {
        snapshot.validate()?;
        let (book, snap) = (book.clone(), snapshot.clone());
        self.blocking(move |i| i.mutate(&book, &[], |s| *s = snap)).await
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let book = book.clone();
        self.blocking(move |i| {
            i.remove_files(&book, &[positions::POSITIONS, positions::MAX_PRICE, positions::MIN_PRICE])
        })
        .await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.blocking(|i| i.books_with(positions::POSITIONS)).await
    }
}

#[async_trait]
impl QuoteStore for FileStore {
    async fn put_quotes(&self, quotes: &[Quote]) -> Result<()> {
        for q in quotes {
            q.validate()?;
        }
        let quotes = quotes.to_vec();
        self.blocking(move |i| {
            let _w = i.quotes_write.lock();
            let _flock = DirLock::acquire(&i.cfg.root)?;
            let now = now_ms();
            let mut map = i.quotes_fresh()?;
            map.retain(|_, r| r.expires_at_ms > now);
            let expires_at_ms = now + i.cfg.quote_ttl_ms;
            for q in quotes {
                map.insert(q.code, QuoteRecord { quote: q, expires_at_ms });
            }
            let path = i.cfg.quotes_path();
            let bytes = serde_json::to_vec(&map).map_err(|e| Error::Backend {
                backend: BACKEND,
                message: e.to_string(),
                retryable: false,
                source: None,
            })?;
            // Quotes are ephemeral: atomic, but not worth an fsync.
            let st = fsio::replace(&path, &bytes, Durability::Flush, false)?;
            *i.quotes.lock() = Some(QuoteCache { stamp: Some(st), map });
            Ok(())
        })
        .await
    }

    async fn get_quotes(&self, codes: &[Code]) -> Result<Vec<Quote>> {
        let map = self.inner.quotes_fresh()?;
        let now = now_ms();
        Ok(codes.iter().filter_map(|c| map.get(c).filter(|r| r.expires_at_ms > now).map(|r| r.quote.clone())).collect())
    }
}

#[async_trait]
impl DealStore for FileStore {
    async fn record_batch(&self, batch: &[Deal]) -> Result<RecordOutcome> {
        for d in batch {
            d.validate()?;
            if self.inner.cfg.deal_encoding != DealEncoding::Utf8 {
                // SilverQuant's daily report reads deal_hist.csv as GBK.
                for (field, text) in [("name", &d.name), ("remark", &d.remark)] {
                    if encoding_rs::GBK.encode(text).2 {
                        return Err(Error::invalid(
                            field,
                            text,
                            "has characters GBK cannot encode (deal_hist.csv is GBK; set file.deal_encoding = \"utf8\" to allow them)",
                        ));
                    }
                }
            }
        }
        let batch = batch.to_vec();
        self.blocking(move |i| {
            let mut by_book: BTreeMap<&BookId, Vec<&Deal>> = BTreeMap::new();
            for d in &batch {
                by_book.entry(&d.book).or_default().push(d);
            }
            let mut total = RecordOutcome::default();
            for (book, ds) in by_book {
                let o = i.record_book(book, &ds)?;
                total.inserted += o.inserted;
                total.duplicates += o.duplicates;
            }
            Ok(total)
        })
        .await
    }

    async fn query(&self, q: &DealQuery) -> Result<Page<Deal>> {
        q.validate()?;
        let q = q.clone();
        self.blocking(move |i| {
            let cells = i.deal_cells(&q.scope)?;
            if cells.len() == 1 {
                return i.with_deals(&cells[0], |c| {
                    sqdata_core::page_of(&q, c.in_range(q.from, q.to).iter().map(|ix| &c.deals[*ix as usize]))
                });
            }
            let mut all: Vec<Deal> = Vec::new();
            for cell in &cells {
                i.with_deals(cell, |c| {
                    all.extend(
                        c.in_range(q.from, q.to)
                            .iter()
                            .map(|ix| &c.deals[*ix as usize])
                            .filter(|d| q.matches(d))
                            .cloned(),
                    )
                })?;
            }
            sqdata_core::sort_deals(&mut all);
            Ok(sqdata_core::page_of(&q, all.iter()))
        })
        .await
    }

    async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        sqdata_core::validate::ordered(q.from, q.to)?;
        let q = q.clone();
        self.blocking(move |i| {
            let cells = i.deal_cells(&DealScope::Account(q.account.clone()))?;
            let mut out: BTreeMap<String, DealAggregate> = BTreeMap::new();
            for cell in &cells {
                let part = i.with_deals(cell, |c| {
                    sqdata_core::aggregate(&q, c.in_range(q.from, q.to).iter().map(|ix| &c.deals[*ix as usize]))
                })?;
                for a in part {
                    let e = out.entry(a.period.clone()).or_insert_with(|| DealAggregate::empty(a.period.clone()));
                    e.count += a.count;
                    e.buy_count += a.buy_count;
                    e.sell_count += a.sell_count;
                    e.buy_volume += a.buy_volume;
                    e.sell_volume += a.sell_volume;
                    e.buy_amount += a.buy_amount;
                    e.sell_amount += a.sell_amount;
                }
            }
            Ok(out.into_values().collect())
        })
        .await
    }

    async fn delete_book(&self, book: &BookId) -> Result<u64> {
        let book = book.clone();
        self.blocking(move |i| {
            let cell = i.cell(&book);
            let n = if cell.dir.join(deals::DEAL_HIST).exists() {
                i.with_deals(&cell, |c| c.deals.len() as u64)?
            } else {
                0
            };
            i.remove_files(&book, &[deals::DEAL_HIST, deals::DEAL_IDS])?;
            Ok(n)
        })
        .await
    }

    async fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        let (book, ids) = (book.clone(), ids.to_vec());
        self.blocking(move |i| i.delete_deals(&book, &ids)).await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.blocking(|i| i.books_with(deals::DEAL_HIST)).await
    }
}

#[async_trait]
impl AssetStore for FileStore {
    async fn upsert_asset(&self, book: &BookId, row: AssetRow) -> Result<()> {
        row.validate()?;
        let book = book.clone();
        self.blocking(move |i| {
            let cell = i.cell(&book);
            let _w = cell.write.lock();
            let _flock = DirLock::acquire(&cell.dir)?;
            let path = cell.dir.join(assets::ASSETS);
            let mut rows = match fsio::read_stable(&path)? {
                None => BTreeMap::new(),
                Some((bytes, _)) => assets::parse(&path, &bytes)?,
            };
            rows.insert(row.date, row.asset);
            fsio::replace(&path, assets::format(&rows).as_bytes(), i.cfg.durability, true)?;
            Ok(())
        })
        .await
    }

    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>> {
        range.validate()?;
        let book = book.clone();
        self.blocking(move |i| {
            let path = i.cfg.book_dir(&book).join(assets::ASSETS);
            let rows = match fsio::read_stable(&path)? {
                None => BTreeMap::new(),
                Some((bytes, _)) => assets::parse(&path, &bytes)?,
            };
            Ok(assets::rows(&rows).into_iter().filter(|r| range.contains(r.date)).collect())
        })
        .await
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let book = book.clone();
        self.blocking(move |i| i.remove_files(&book, &[assets::ASSETS])).await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.blocking(|i| i.books_with(assets::ASSETS)).await
    }
}

#[async_trait]
impl BarStore for FileStore {
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64> {
        series.validate()?;
        let series = series.clone();
        self.blocking(move |i| {
            let _w = i.bars_write.lock();
            let root = i.cfg.bar_root();
            let _flock = DirLock::acquire(&root)?;
            let merged = match mode {
                BarWriteMode::Replace => series.bars.clone(),
                BarWriteMode::Upsert => sqdata_core::upsert_bars(&i.read_series(&series.key)?, &series.bars),
            };
            i.write_series(&series.key, &merged)?;
            Ok(series.bars.len() as u64)
        })
        .await
    }

    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>> {
        range.validate()?;
        let key = *key;
        self.blocking(move |i| {
            let mut b = i.read_series(&key)?;
            b.retain(|x| range.contains(x.datetime));
            Ok(b)
        })
        .await
    }

    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>> {
        use rayon::prelude::*;
        range.validate()?;
        let keys = keys.to_vec();
        self.blocking(move |i| {
            keys.par_iter()
                .map(|k| {
                    let mut b = i.read_series(k)?;
                    if range != TimeRange::all() {
                        b.retain(|x| range.contains(x.datetime));
                    }
                    Ok(BarSeries { key: *k, bars: b })
                })
                .collect()
        })
        .await
    }

    async fn overview(&self) -> Result<Vec<BarOverview>> {
        self.blocking(|i| {
            let mut out = Vec::new();
            for (key, path) in bars::list_series(&i.cfg.bar_root())? {
                let h = bars::read_header(&path)?;
                if h.count == 0 {
                    continue;
                }
                let (first, last) = bars::header_times(&path, &h)?;
                out.push(BarOverview { key, count: h.count, first, last });
            }
            Ok(out)
        })
        .await
    }

    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64> {
        range.validate()?;
        let key = *key;
        self.blocking(move |i| {
            let _w = i.bars_write.lock();
            let root = i.cfg.bar_root();
            if !root.exists() {
                return Ok(0);
            }
            let _flock = DirLock::acquire(&root)?;
            let mut b = i.read_series(&key)?;
            let before = b.len();
            b.retain(|x| !range.contains(x.datetime));
            let n = (before - b.len()) as u64;
            if n > 0 {
                i.write_series(&key, &b)?;
            }
            Ok(n)
        })
        .await
    }
}

#[async_trait]
impl HealthCheck for FileStore {
    async fn health(&self) -> BackendHealth {
        let root = self.inner.cfg.root.clone();
        let start = Instant::now();
        let probe = root.join(".sqdata-health");
        let r = fsio::replace(&probe, b"ok", Durability::Flush, false).and_then(|_| fsio::remove(&probe));
        let mut details = BTreeMap::new();
        details.insert("root".to_owned(), serde_json::Value::String(root.display().to_string()));
        details.insert(
            "durability".to_owned(),
            serde_json::to_value(self.inner.cfg.durability).unwrap_or(serde_json::Value::Null),
        );
        BackendHealth {
            backend: BACKEND.to_owned(),
            up: r.is_ok(),
            latency: start.elapsed().max(Duration::from_nanos(1)),
            details,
            error: r.err().map(|e| e.to_string()),
        }
    }
}
