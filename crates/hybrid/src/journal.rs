//! The degraded-mode journal: which units (a book's positions, deals, an
//! asset day, a bar series) were written to the secondary only, so that the
//! primary can be brought up to date before it serves again. Durable
//! (fdatasync'd) before the write is acknowledged; survives restarts.
//!
//! Built on [`sqdata_core::raw::Journal`]: one file per process and domain
//! under an advisory lock, so processes sharing a data folder never cut,
//! clear or replay each other's entries; the journal of a process that died
//! is adopted by the next one to look (at open and on every prober tick).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDate;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sqdata_core::{BarKey, BookId, Deal, Domain, Result, raw};

/// Something the primary missed (or may hold while the files do not).
/// Replay is state-based: a unit names *what* to copy from the files, so
/// the primary converges to the files whatever it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "unit", rename_all = "snake_case")]
pub enum Unit {
    /// A book's whole position state.
    Book {
        /// The book.
        book: BookId,
    },
    /// Deals recorded (replayed by id, so idempotent).
    Deals {
        /// The deals.
        deals: Vec<Deal>,
    },
    /// Deals deleted.
    DealsDeleted {
        /// The book.
        book: BookId,
        /// Their ids.
        ids: Vec<String>,
    },
    /// One day of a book's equity curve.
    Asset {
        /// The book.
        book: BookId,
        /// The day.
        date: NaiveDate,
    },
    /// Days of a book's equity curve.
    AssetDays {
        /// The book.
        book: BookId,
        /// The days.
        dates: Vec<NaiveDate>,
    },
    /// A whole bar series.
    Series {
        /// The series.
        key: BarKey,
    },
    /// A whole book deleted from a domain.
    BookDeleted {
        /// The book.
        book: BookId,
    },
}

/// One journal entry as read back: a unit, or a line that is not one (a
/// torn or foreign write, an older version's unit) — kept apart so one bad
/// line cannot stop a replay (it is quarantined instead).
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// A unit.
    Unit(Unit),
    /// A line that does not parse, with the parser's complaint.
    Unreadable {
        /// The line, as text (lossy).
        line: String,
        /// Why it is not a unit.
        error: String,
    },
}

/// One domain's journal in this process (shared by its tasks); `None` for
/// a domain this process does not compose (no file opened, no orphan of it
/// adopted: the processes that do compose it replay those).
#[derive(Debug)]
pub(crate) struct Journal {
    inner: Option<Mutex<raw::Journal>>,
    /// Fault injection for tests (`Hybrid::fail_journal`): appends fail.
    failing: std::sync::atomic::AtomicBool,
    /// Pending bytes, readable without the lock (status, metrics).
    pending: AtomicU64,
}

fn inactive() -> sqdata_core::Error {
    sqdata_core::Error::Unsupported {
        backend: "hybrid",
        what: "a journal for a domain this process does not compose".into(),
    }
}

impl Journal {
    /// Claims this process's journal of `domain` in `dir` and adopts the
    /// journals of processes that are gone.
    pub(crate) fn open(dir: &Path, domain: Domain) -> Result<Journal> {
        let j = raw::Journal::open(dir, domain.as_str(), 0)?;
        Ok(Journal {
            pending: AtomicU64::new(j.pending_bytes()),
            inner: Some(Mutex::new(j)),
            failing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The journal of a domain this process does not compose: nothing on
    /// disk, nothing pending, appends refused.
    pub(crate) fn none() -> Journal {
        Journal { inner: None, failing: std::sync::atomic::AtomicBool::new(false), pending: AtomicU64::new(0) }
    }

    fn inner(&self) -> Result<&Mutex<raw::Journal>> {
        self.inner.as_ref().ok_or_else(inactive)
    }

    fn update(&self, j: &raw::Journal) {
        self.pending.store(j.pending_bytes(), Ordering::SeqCst);
    }

    /// Appends durably (blocking: call from a blocking context).
    pub(crate) fn append(&self, units: &[Unit]) -> Result<()> {
        let inner = self.inner()?;
        if self.failing.load(Ordering::SeqCst) {
            return Err(sqdata_core::Error::io(
                inner.lock().path(),
                std::io::Error::new(std::io::ErrorKind::StorageFull, "injected journal failure"),
            ));
        }
        let mut j = inner.lock();
        let r = j.append(units).map(|_| ());
        self.update(&j);
        r
    }

    /// Adopts the journals of processes that died since (blocking).
    /// Returns how many units were taken over.
    pub(crate) fn adopt_orphans(&self) -> Result<usize> {
        let Some(inner) = &self.inner else { return Ok(0) };
        let mut j = inner.lock();
        let n = j.adopt_orphans()?;
        self.update(&j);
        Ok(n)
    }

    /// The entries not yet replayed, and the offset they end at (blocking).
    pub(crate) fn pending(&self) -> Result<(Vec<Entry>, u64)> {
        let Some(inner) = &self.inner else { return Ok((Vec::new(), 0)) };
        let j = inner.lock();
        let from = j.applied();
        let v = entries_after(&j, from)?;
        let end = v.last().map(|(e, _)| *e).unwrap_or(from);
        Ok((v.into_iter().map(|(_, u)| u).collect(), end))
    }

    /// Entries appended after `offset`, and the offset they end at (blocking).
    pub(crate) fn read_after(&self, offset: u64) -> Result<(Vec<Entry>, u64)> {
        let Some(inner) = &self.inner else { return Ok((Vec::new(), offset)) };
        let j = inner.lock();
        let v = entries_after(&j, offset)?;
        let end = v.last().map(|(e, _)| *e).unwrap_or(offset);
        Ok((v.into_iter().map(|(_, u)| u).collect(), end))
    }

    /// Everything up to `offset` is in the primary: checkpoints there, then — still holding the journal, so no
    /// adoption of an orphan can append in between — runs `done` if nothing
    /// is pending any more (blocking). Returns `None` when entries are still
    /// pending (appended after `offset`), else what `done` returned.
    pub(crate) fn checkpoint_then<R>(&self, offset: u64, done: impl FnOnce() -> R) -> Result<Option<R>> {
        let Some(inner) = &self.inner else { return Ok(Some(done())) };
        let mut j = inner.lock();
        let r = j.checkpoint(offset);
        self.update(&j);
        r?;
        Ok((j.pending_bytes() == 0).then(done))
    }

    /// Makes appends fail (tests of the write rules).
    pub(crate) fn set_failing(&self, fail: bool) {
        self.failing.store(fail, Ordering::SeqCst);
    }

    /// Bytes of units the primary has not seen (no I/O).
    pub(crate) fn pending_bytes(&self) -> u64 {
        self.pending.load(Ordering::SeqCst)
    }
}

/// The complete lines of `j` after byte `from`, each parsed on its own
/// (one bad line does not hide the others), with its end offset.
fn entries_after(j: &raw::Journal, from: u64) -> Result<Vec<(u64, Entry)>> {
    use std::io::{Read, Seek, SeekFrom};
    let from = from.min(j.len());
    let path = j.path();
    let mut f = std::fs::File::open(path).map_err(|e| sqdata_core::Error::io(path, e))?;
    f.seek(SeekFrom::Start(from)).map_err(|e| sqdata_core::Error::io(path, e))?;
    let mut bytes = Vec::new();
    f.take(j.len() - from).read_to_end(&mut bytes).map_err(|e| sqdata_core::Error::io(path, e))?;
    let mut out = Vec::new();
    let mut offset = from;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        offset += line.len() as u64;
        let e = match serde_json::from_slice::<Unit>(line) {
            Ok(u) => Entry::Unit(u),
            Err(err) => Entry::Unreadable {
                line: String::from_utf8_lossy(line).trim_end().to_string(),
                error: format!("{} (entry ending at byte {offset}): {err}", path.display()),
            },
        };
        out.push((offset, e));
    }
    Ok(out)
}

/// The journals of `domain` in `dir` — every process's, this one's
/// included, and an older version's shared `<domain>.journal` — that hold
/// entries past their checkpoint, with how many bytes. Read without taking
/// any journal's lock: a look, not an adoption (blocking).
pub(crate) fn pending_journals(dir: &Path, domain: Domain) -> Result<Vec<(std::path::PathBuf, u64)>> {
    let stem = domain.as_str();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(sqdata_core::Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let fname = e.map_err(|e| sqdata_core::Error::io(dir, e))?.file_name().to_string_lossy().into_owned();
        let Some(name) = fname.strip_suffix(".journal") else { continue };
        let ours = name == stem
            || name
                .strip_prefix(stem)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit() || c == '-'));
        if !ours {
            continue;
        }
        let path = dir.join(&fname);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            // adopted and removed by its adopter a moment ago
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(sqdata_core::Error::io(&path, e)),
        };
        // complete entries only: a torn last line was never acknowledged
        let len = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i as u64 + 1);
        let applied = read_checkpoint(&dir.join(format!("{name}.checkpoint")))?;
        if len > applied {
            out.push((path, len - applied));
        }
    }
    out.sort();
    Ok(out)
}

/// A journal's checkpoint (`<name>.checkpoint`: the bytes applied, in
/// decimal; missing = 0) — the format of `sqdata_core::raw::Journal`.
fn read_checkpoint(path: &Path) -> Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| sqdata_core::Error::corrupt(path.display().to_string(), format!("bad checkpoint {s:?}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(sqdata_core::Error::io(path, e)),
    }
}

/// Where a domain's quarantined units go: `<journal_dir>/<domain>-quarantine.jsonl`.
pub(crate) fn quarantine_path(dir: &Path, domain: Domain) -> std::path::PathBuf {
    dir.join(format!("{domain}-quarantine.jsonl"))
}

/// Appends one quarantined entry (the unit or the unreadable line, and the
/// error) durably (blocking).
pub(crate) fn quarantine(dir: &Path, domain: Domain, entry: &serde_json::Value) -> Result<()> {
    let mut line = serde_json::to_vec(entry).map_err(|e| sqdata_core::Error::Config(e.to_string()))?;
    line.push(b'\n');
    raw::create_dir_all_synced(dir)?;
    raw::append(&quarantine_path(dir, domain), &line, raw::Durability::Fsync).map(|_| ())
}
