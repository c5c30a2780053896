//! Positions: `positions.json`, `max_price.json`, `min_price.json` of a book,
//! parsed, cached against their stamps and rewritten atomically.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sqdata_core::position::rules;
use sqdata_core::{
    BookId, Code, Error, ExtremeChange, PositionEntry, PositionSnapshot, PositionStore, PriceTick, ReconcileReport,
    Result, async_trait, validate_ticks,
};

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::fsio::{self, DirLock, Durability, Stamp};
use crate::positions::{self, Doc};
use crate::wal::{self, Record, Wal};
use crate::{failpoint, pyjson};

use super::{BookCell, FileStore, Inner, WalSlot};

#[derive(Debug)]
pub(super) struct PosCache {
    stamps: [Option<Stamp>; 3],
    docs: [Doc; 3],
    raw: [Option<Arc<Vec<u8>>>; 3],
    snapshot: PositionSnapshot,
}

impl Inner {
    /// The parsed position files, revalidated against the files' stamps
    /// (the book's log recovered first, once per process).
    fn positions_read(&self, cell: &BookCell) -> Result<Arc<PosCache>> {
        if !cell.wal_checked.load(Ordering::Acquire) {
            if cell.dir.join(wal::NAME).exists() {
                let _w = cell.write.lock();
                let _flock = DirLock::acquire(&cell.dir)?;
                self.recover(cell, &mut cell.wal.lock())?;
            } else {
                cell.wal_checked.store(true, Ordering::Release);
            }
        }
        self.positions(cell)
    }

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
        let mut slot = cell.wal.lock();
        self.recover(&cell, &mut slot)?;
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
        // Each file keeps its line endings (SilverQuant on Windows writes
        // CRLF); one with no line break yet (missing, or `{}`) takes its
        // siblings', and LF when none has one. JSON strings escape `\n`, so
        // every `\n` of the text is a line break.
        let endings = cur.raw.each_ref().map(|r| r.as_deref().and_then(|b| line_ending(b)));
        let folder_crlf = endings.contains(&Some(true));
        // Only the files that changed, all with one directory fsync; positions
        // first, so a crash between renames never leaves prices for a code
        // the positions file does not have yet.
        let mut changed: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let unchanged = *doc == cur.docs[i] && (cur.stamps[i].is_some() || doc.is_empty());
            if !unchanged {
                let text = pyjson::dumps_map(doc);
                let text = if endings[i].unwrap_or(folder_crlf) { text.replace('\n', "\r\n") } else { text };
                changed.push((i, text.into_bytes()));
            }
        }
        let all = [&p.positions, &p.max, &p.min];
        let files: Vec<(&Path, &[u8])> = changed.iter().map(|(i, t)| (all[*i].as_path(), t.as_slice())).collect();
        let mut logged = false;
        if self.cfg.uses_wal() {
            // The whole state after this write, so the last record alone says
            // what the three files must hold.
            let mut state: [Option<&[u8]>; 3] = [0, 1, 2].map(|i| cur.raw[i].as_deref().map(Vec::as_slice));
            for (i, t) in &changed {
                state[*i] = Some(t.as_slice());
            }
            logged = self.log(&cell, &mut slot, state)?;
            failpoint::hit("wal-after-append");
        }
        let new_stamps = if logged {
            // Durable in the log: the files are replaced without syncs (a
            // checkpoint syncs them), written into the versions retired by
            // the previous write, and readers see the change now.
            let replaced = if failpoint::fires("wal-replace-error") {
                Err(Error::io(&p.max, std::io::Error::other("failpoint wal-replace-error")))
            } else {
                fsio::replace_many_recycling(&files, true)
            };
            match replaced {
                Ok(st) => st,
                Err(e) => {
                    // The caller hears "failed": the log must not replay this
                    // write after a power loss. Its last record becomes the
                    // state the files still hold (best effort: the error
                    // the caller gets is the write's).
                    let old_state = [0, 1, 2].map(|i| cur.raw[i].as_deref().map(Vec::as_slice));
                    let _ = self.log(&cell, &mut slot, old_state);
                    return Err(e);
                }
            }
        } else {
            fsio::replace_many(&files, self.cfg.durability, true)?
        };
        failpoint::hit("wal-after-rename");
        for ((i, text), st) in changed.into_iter().zip(new_stamps) {
            stamps[i] = Some(st);
            raw[i] = Some(Arc::new(text));
        }
        *cell.pos.lock() = Some(Arc::new(PosCache { stamps, docs, raw, snapshot: new }));
        Ok(r)
    }
}

impl Inner {
    /// Appends the book's new state to its log (creating the log on first
    /// use, checkpointing first when it is full). `Ok(false)`: the state is
    /// larger than the whole log, so the caller syncs the files directly.
    fn log(&self, cell: &BookCell, slot: &mut WalSlot, state: [Option<&[u8]>; 3]) -> Result<bool> {
        let wal = match &mut slot.wal {
            Some(w) if w.is_current()? => {
                w.refresh()?;
                w
            }
            held => held.insert(Wal::open_or_create(&cell.dir, wal::MIN_BYTES)?),
        };
        let limit = self.cfg.wal_bytes;
        if !wal.append(state, limit)? {
            checkpoint(cell, wal)?;
            slot.dirty_since = None;
            if !wal.append(state, limit)? {
                return Ok(false);
            }
        }
        slot.dirty_since.get_or_insert_with(Instant::now);
        Ok(true)
    }

    /// Once per process and book, under the book's locks: records of an
    /// earlier boot are replayed into the files, then the log is
    /// checkpointed (which also retires a record whose writer died before
    /// its files were replaced: that write was never acknowledged).
    fn recover(&self, cell: &BookCell, slot: &mut WalSlot) -> Result<()> {
        if cell.wal_checked.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(mut w) = Wal::open_existing(&cell.dir)? {
            let records = w.records()?;
            if let Some(last) = records.last() {
                if last.boot != wal::boot_id() {
                    replay(cell, last)?;
                    *cell.pos.lock() = None;
                }
                checkpoint(cell, &mut w)?;
            }
            slot.wal = Some(w);
            slot.dirty_since = None;
        }
        cell.wal_checked.store(true, Ordering::Release);
        Ok(())
    }

    /// After a reboot, the first process to open the store brings every
    /// book's files up to its log, so SilverQuant reading the folder sees
    /// the acknowledged state as soon as any sqdata process has started. A
    /// book that fails here is left to the lazy recovery of its first use,
    /// which reports the error to that caller.
    pub(super) fn recover_after_reboot(&self) {
        let Ok(books) = self.cfg.existing_books() else { return };
        for (id, dir) in books {
            let needs = matches!(Wal::open_existing(&dir), Ok(Some(w)) if w.from_earlier_boot().unwrap_or(false));
            if needs {
                let cell = self.cell(&id);
                let _w = cell.write.lock();
                if let Ok(_flock) = DirLock::acquire(&cell.dir) {
                    let _ = self.recover(&cell, &mut cell.wal.lock());
                }
            }
        }
    }

    /// Checkpoints a book's log when this process wrote it and then left it
    /// alone for `idle`; a book busy with a writer of this process is skipped.
    pub(super) fn checkpoint_if_idle(&self, cell: &BookCell, idle: std::time::Duration) -> Result<()> {
        let due = |s: &WalSlot| s.dirty_since.is_some_and(|t| t.elapsed() >= idle);
        if !due(&cell.wal.lock()) {
            return Ok(());
        }
        let Some(_w) = cell.write.try_lock() else { return Ok(()) };
        let _flock = DirLock::acquire(&cell.dir)?;
        let mut slot = cell.wal.lock();
        if !due(&slot) {
            return Ok(());
        }
        if let Some(w) = &mut slot.wal {
            w.refresh()?;
            if !w.is_empty() {
                checkpoint(cell, w)?;
            }
        }
        slot.dirty_since = None;
        Ok(())
    }
}

/// Makes the book's files durable, then empties its log (a new generation).
fn checkpoint(cell: &BookCell, wal: &mut Wal) -> Result<()> {
    let p = &cell.paths;
    for path in [&p.positions, &p.max, &p.min] {
        match std::fs::File::open(path) {
            Ok(f) => f.sync_data().map_err(|e| Error::io(path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    sqdata_core::raw::fs::sync_dir(&cell.dir)?;
    failpoint::hit("wal-checkpoint-synced");
    wal.reset()?;
    failpoint::hit("wal-checkpoint-reset");
    Ok(())
}

/// Brings the files to the last record of a log written before this boot:
/// each file that differs from it is rewritten from it, synced. The files
/// were written without syncs, into recycled versions, so after a power loss
/// one may hold an older version, a torn one, or (its metadata reaching the
/// disk before its data) an older version with a newer mtime: no file time
/// can be trusted, the record is the truth. An absent one in the record is
/// never deleted. Positions first, as every write does.
fn replay(cell: &BookCell, last: &Record) -> Result<()> {
    let p = &cell.paths;
    for (path, want) in [&p.positions, &p.max, &p.min].into_iter().zip(&last.files) {
        let Some(want) = want else { continue };
        let keep = match std::fs::read(path) {
            Ok(bytes) => bytes == *want,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::io(path, e)),
        };
        if !keep {
            fsio::replace(path, want, Durability::Fsync, true)?;
        }
    }
    Ok(())
}

/// The line ending of a file's bytes: `Some(true)` for CRLF, `Some(false)`
/// for LF, `None` when it has no line break (decided by its first one).
fn line_ending(bytes: &[u8]) -> Option<bool> {
    let i = bytes.iter().position(|&b| b == b'\n')?;
    Some(i > 0 && bytes[i - 1] == b'\r')
}

#[async_trait]
impl PositionStore for FileStore {
    async fn snapshot(&self, book: &BookId) -> Result<PositionSnapshot> {
        // Hot path: a stat per file and a clone of the cached snapshot.
        let book = book.clone();
        self.blocking_here(move |i| Ok(i.positions_read(&i.cell(&book))?.snapshot.clone())).await
    }

    async fn held_days(&self, book: &BookId, codes: &[Code]) -> Result<BTreeMap<Code, Option<u32>>> {
        let (book, codes) = (book.clone(), codes.to_vec());
        self.blocking_here(move |i| Ok(rules::held_days(&i.positions_read(&i.cell(&book))?.snapshot, &codes))).await
    }

    async fn new_held(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        let (book, codes) = (book.clone(), codes.to_vec());
        self.blocking_here(move |i| i.mutate(&book, &codes, |s| rules::new_held(s, &codes))).await
    }

    async fn mark_sold(&self, book: &BookId, code: Code) -> Result<()> {
        let book = book.clone();
        self.blocking_here(move |i| i.mutate(&book, &[code], |s| rules::mark_sold(s, code)).map(|_| ())).await
    }

    async fn del_held_days(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        let (book, codes) = (book.clone(), codes.to_vec());
        self.blocking_here(move |i| i.mutate(&book, &codes, |s| rules::del_held_days(s, &codes)).map(|_| ())).await
    }

    async fn reconcile(&self, book: &BookId, broker_codes: &[Code]) -> Result<ReconcileReport> {
        let (book, codes) = (book.clone(), broker_codes.to_vec());
        self.blocking_here(move |i| i.mutate(&book, &codes, |s| rules::reconcile(s, &codes))).await
    }

    async fn inc_held_days(&self, book: &BookId, today: NaiveDate) -> Result<bool> {
        sqdata_core::validate::check_year("today", &today.to_string(), today)?;
        let book = book.clone();
        self.blocking_here(move |i| i.mutate(&book, &[], |s| rules::inc_held_days(s, today))).await
    }

    async fn update_extremes(&self, book: &BookId, ticks: &[PriceTick]) -> Result<Vec<ExtremeChange>> {
        validate_ticks(ticks)?;
        let (book, ticks) = (book.clone(), ticks.to_vec());
        self.blocking_here(move |i| {
            let hint: Vec<Code> = ticks.iter().map(|t| t.code).collect();
            i.mutate(&book, &hint, |s| rules::update_extremes(s, &ticks))
        })
        .await
    }

    async fn replace_book(&self, book: &BookId, snapshot: &PositionSnapshot) -> Result<()> {
        snapshot.validate()?;
        let (book, snap) = (book.clone(), snapshot.clone());
        self.blocking_here(move |i| i.mutate(&book, &[], |s| *s = snap)).await
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let book = book.clone();
        self.blocking(move |i| {
            i.remove_files(&book, &[positions::POSITIONS, positions::MAX_PRICE, positions::MIN_PRICE, wal::NAME])
        })
        .await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.blocking(|i| i.books_with(positions::POSITIONS)).await
    }
}
