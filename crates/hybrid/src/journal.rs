//! The degraded-mode journal: which units (a book's positions, deals, an
//! asset day, a bar series) were written to the secondary only, so that the
//! primary can be brought up to date before it serves again. Durable
//! (fdatasync'd) before the write is acknowledged; survives restarts.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sqdata_core::{BarKey, BookId, Deal, Error, Result};

/// Something the primary missed.
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

/// An append-only JSON-lines file.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl Journal {
    pub(crate) fn open(dir: &Path, domain: &str) -> Result<Journal> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(format!("{domain}.journal"));
        let mut file =
            OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(|e| Error::io(&path, e))?;
        // a torn last line was never acknowledged
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| Error::io(&path, e))?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        if complete < bytes.len() {
            file.set_len(complete as u64).map_err(|e| Error::io(&path, e))?;
        }
        Ok(Journal { path, file: Arc::new(Mutex::new(file)) })
    }

    /// Appends durably (blocking; call from a blocking context or accept the fsync).
    pub(crate) fn append(&self, units: &[Unit]) -> Result<()> {
        let mut buf = Vec::new();
        for u in units {
            serde_json::to_writer(&mut buf, u)
                .map_err(|e| Error::invalid("journal", self.path.display(), e.to_string()))?;
            buf.push(b'\n');
        }
        let f = self.file.lock();
        let mut w = &*f;
        w.write_all(&buf).and_then(|_| f.sync_data()).map_err(|e| Error::io(&self.path, e))
    }

    /// Every unit, and the byte length they span.
    pub(crate) fn read(&self) -> Result<(Vec<Unit>, u64)> {
        let _g = self.file.lock();
        let bytes = std::fs::read(&self.path).map_err(|e| Error::io(&self.path, e))?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        let mut out = Vec::new();
        for (i, line) in bytes[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            out.push(
                serde_json::from_slice(line)
                    .map_err(|e| Error::corrupt(format!("{}:{}", self.path.display(), i + 1), e.to_string()))?,
            );
        }
        Ok((out, complete as u64))
    }

    /// Units appended after `offset`.
    pub(crate) fn read_from(&self, offset: u64) -> Result<Vec<Unit>> {
        let (all, _) = self.read()?;
        let bytes = std::fs::read(&self.path).map_err(|e| Error::io(&self.path, e))?;
        // count the lines before offset
        let before = bytes[..(offset as usize).min(bytes.len())].iter().filter(|b| **b == b'\n').count();
        Ok(all.into_iter().skip(before).collect())
    }

    /// Forgets everything (after a successful resync).
    pub(crate) fn clear(&self) -> Result<()> {
        let f = self.file.lock();
        f.set_len(0).and_then(|_| f.sync_data()).map_err(|e| Error::io(&self.path, e))
    }

    /// Bytes in the journal.
    pub(crate) fn len(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }
}
