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

/// One domain's journal in this process (shared by its tasks).
#[derive(Debug)]
pub(crate) struct Journal {
    inner: Mutex<raw::Journal>,
    /// Fault injection for tests (`Hybrid::fail_journal`): appends fail.
    failing: std::sync::atomic::AtomicBool,
    /// Pending bytes, readable without the lock (status, metrics).
    pending: AtomicU64,
}

impl Journal {
    /// Claims this process's journal of `domain` in `dir` and adopts the
    /// journals of processes that are gone.
    pub(crate) fn open(dir: &Path, domain: Domain) -> Result<Journal> {
        let j = raw::Journal::open(dir, domain.as_str(), 0)?;
        Ok(Journal {
            pending: AtomicU64::new(j.pending_bytes()),
            inner: Mutex::new(j),
            failing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn update(&self, j: &raw::Journal) {
        self.pending.store(j.pending_bytes(), Ordering::SeqCst);
    }

    /// Appends durably (blocking: call from a blocking context).
    pub(crate) fn append(&self, units: &[Unit]) -> Result<()> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(sqdata_core::Error::io(
                self.inner.lock().path(),
                std::io::Error::new(std::io::ErrorKind::StorageFull, "injected journal failure"),
            ));
        }
        let mut j = self.inner.lock();
        let r = j.append(units).map(|_| ());
        self.update(&j);
        r
    }

    /// Adopts the journals of processes that died since (blocking).
    /// Returns how many units were taken over.
    pub(crate) fn adopt_orphans(&self) -> Result<usize> {
        let mut j = self.inner.lock();
        let n = j.adopt_orphans()?;
        self.update(&j);
        Ok(n)
    }

    /// The units not yet replayed, and the offset they end at (blocking).
    pub(crate) fn pending(&self) -> Result<(Vec<Unit>, u64)> {
        let j = self.inner.lock();
        let v = j.pending::<Unit>()?;
        let end = v.last().map(|(e, _)| *e).unwrap_or(j.applied());
        Ok((v.into_iter().map(|(_, u)| u).collect(), end))
    }

    /// Units appended after `offset`, and the offset they end at (blocking).
    pub(crate) fn read_after(&self, offset: u64) -> Result<(Vec<Unit>, u64)> {
        let j = self.inner.lock();
        let v = j.read_after::<Unit>(offset)?;
        let end = v.last().map(|(e, _)| *e).unwrap_or(offset);
        Ok((v.into_iter().map(|(_, u)| u).collect(), end))
    }

    /// Everything up to `offset` is in the primary (blocking).
    pub(crate) fn checkpoint(&self, offset: u64) -> Result<()> {
        let mut j = self.inner.lock();
        let r = j.checkpoint(offset);
        self.update(&j);
        r
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
