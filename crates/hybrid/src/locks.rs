//! Per-book locks across processes: what orders one process's dual write
//! of a book (server, then files) against another's copy of the same book
//! (replay, compensation, repair: read the files, then write the server),
//! so neither lands the other's stale state.
//!
//! One `flock` per (domain, book) on `<journal_dir>/locks/<domain>-<account>-<book>.lock`
//! (bar series, which belong to no book, hash into 64 lock files of their
//! own). These are the hybrid's own files, not the file store's
//! `<book>/.sqdata.lock`: the file store takes that one inside each of its
//! writes, and a second `flock` on it from the same process (another open
//! file) would wait for itself. Inside one process an async mutex per key
//! comes first, so the `flock` is only ever contended by other processes;
//! keys are taken in sorted order, so two holders of several never wait
//! for each other.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use sqdata_core::raw::{self, LockFile};
use sqdata_core::{BarKey, BookId, Domain, Error, Result};

use crate::config::HybridConfig;
use crate::journal::Unit;

/// The folder of the lock files (under the journal folder every process
/// on the data folder shares).
fn lock_dir(cfg: &HybridConfig) -> PathBuf {
    cfg.journal_dir.join("locks")
}

/// The lock file name of one book of a domain.
pub(crate) fn book_key(domain: Domain, book: &BookId) -> String {
    format!("{domain}-{}-{}", book.account, book.book)
}

pub(crate) fn series_key(key: &BarKey) -> String {
    let h = xxhash_rust::xxh3::xxh3_64(key.to_string().as_bytes());
    format!("bars-series-{:02}", h % 64)
}

/// The lock keys a write or a copy of these units takes.
pub(crate) fn keys(domain: Domain, units: &[Unit]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for u in units {
        match u {
            Unit::Book { book }
            | Unit::DealsDeleted { book, .. }
            | Unit::Asset { book, .. }
            | Unit::AssetDays { book, .. }
            | Unit::BookDeleted { book } => {
                out.insert(book_key(domain, book));
            }
            Unit::Deals { deals } => out.extend(deals.iter().map(|d| book_key(domain, &d.book))),
            Unit::Series { key } => {
                out.insert(series_key(key));
            }
        }
    }
    out.into_iter().collect()
}

/// Takes the lock of one book of `domain` (blocking until free) — what a
/// tool that writes the servers outside the hybrid (`sqdata migrate`)
/// holds while it copies or repairs that book. Call it from a blocking
/// context; the lock is released when the returned file is dropped.
pub fn lock_book(cfg: &HybridConfig, domain: Domain, book: &BookId) -> Result<LockFile> {
    let dir = lock_dir(cfg);
    raw::create_dir_all_synced(&dir)?;
    raw::lock_exclusive(&dir.join(format!("{}.lock", book_key(domain, book))))
}

/// Takes the locks of these bar series (blocking, as [`lock_book`]).
pub fn lock_series(cfg: &HybridConfig, keys: &[BarKey]) -> Result<Vec<LockFile>> {
    let keys: BTreeSet<String> = keys.iter().map(series_key).collect();
    flock_all(&lock_dir(cfg), true, &keys.into_iter().collect::<Vec<_>>())
}

/// This process's side of the locks.
#[derive(Debug)]
pub(crate) struct Locks {
    dir: PathBuf,
    local: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    dir_made: std::sync::atomic::AtomicBool,
}

/// Locks held until dropped (fields drop in order: the `flock`s first,
/// then the in-process ones).
#[derive(Debug, Default)]
pub(crate) struct Held {
    files: Vec<LockFile>,
    _local: Vec<tokio::sync::OwnedMutexGuard<()>>,
}

impl Locks {
    pub(crate) fn new(cfg: &HybridConfig) -> Locks {
        Locks {
            dir: lock_dir(cfg),
            local: Mutex::new(HashMap::new()),
            dir_made: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Takes `keys` (sorted, as [`keys`] returns them): in this process,
    /// then across processes.
    pub(crate) async fn lock(&self, keys: Vec<String>) -> Result<Held> {
        let mut held = Held::default();
        if keys.is_empty() {
            return Ok(held);
        }
        for k in &keys {
            let m = self.local.lock().entry(k.clone()).or_default().clone();
            held._local.push(m.lock_owned().await);
        }
        let dir = self.dir.clone();
        let make = !self.dir_made.load(std::sync::atomic::Ordering::Relaxed);
        held.files =
            tokio::task::spawn_blocking(move || flock_all(&dir, make, &keys)).await.map_err(|e| Error::Backend {
                backend: "hybrid",
                message: format!("lock worker failed: {e}"),
                retryable: true,
                source: None,
            })??;
        self.dir_made.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(held)
    }
}

fn flock_all(dir: &Path, make: bool, keys: &[String]) -> Result<Vec<LockFile>> {
    if make {
        raw::create_dir_all_synced(dir)?;
    }
    keys.iter().map(|k| raw::lock_exclusive(&dir.join(format!("{k}.lock")))).collect()
}
