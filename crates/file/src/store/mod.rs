//! [`FileStore`]: every store trait over SilverQuant-compatible files.
//!
//! `mod.rs` (here) holds the store, its per-book cells and what every
//! domain shares; one module per domain holds that domain's caches, file
//! logic and trait impl: `positions`, `deals`, `quotes`, `assets`, `bars`.

mod assets;
mod bars;
mod deals;
mod positions;
mod quotes;

use deals::DealCache;
use positions::PosCache;
use quotes::QuoteCache;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use sqdata_core::{BackendHealth, BookId, Error, HealthCheck, Result, async_trait};

use crate::config::FileConfig;
use crate::fsio::{self, DirLock, Durability};
use crate::positions::Paths;
use crate::wal::Wal;

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
    /// Whether this process has looked at the book's write-ahead log yet
    /// (recovery runs once per process and book).
    wal_checked: AtomicBool,
    /// The book's write-ahead log, taken after `write` and the folder lock.
    wal: Mutex<WalSlot>,
}

/// A book's log as this process holds it.
#[derive(Debug, Default)]
struct WalSlot {
    wal: Option<Wal>,
    /// When this process last appended a record not yet checkpointed.
    dirty_since: Option<Instant>,
}

impl FileStore {
    /// Opens (creating the root folder if needed).
    pub fn open(cfg: FileConfig) -> Result<FileStore> {
        cfg.validate()?;
        fsio::ensure_dir(&cfg.root)?;
        let wal = cfg.uses_wal();
        let inner = Arc::new(Inner {
            cfg,
            books: Mutex::new(HashMap::new()),
            quotes: Mutex::new(None),
            quotes_write: Mutex::new(()),
            bars_write: Mutex::new(()),
        });
        if wal {
            spawn_checkpointer(Arc::downgrade(&inner))?;
        }
        inner.recover_after_reboot();
        Ok(FileStore { inner })
    }

    /// The configuration in use.
    pub fn config(&self) -> &FileConfig {
        &self.inner.cfg
    }

    /// The folder holding a book's files.
    pub fn book_dir(&self, book: &BookId) -> PathBuf {
        self.inner.cfg.book_dir(book)
    }

    /// Runs blocking work off the async executor without a thread hop where
    /// the runtime allows: `block_in_place` on a multi-threaded runtime (the
    /// worker hands its other tasks over first), the blocking pool on a
    /// current-thread one. Reads and the position writes (a log sync: the
    /// two hops of the pool cost a fair part of it) go this way; like the
    /// pool, it cannot be cancelled half way: the closure runs to its end
    /// inside one poll.
    async fn blocking_here<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&Inner) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(|| f(&self.inner)),
            _ => self.blocking(f).await,
        }
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
                    wal_checked: AtomicBool::new(false),
                    wal: Mutex::new(WalSlot::default()),
                })
            })
            .clone()
    }

    pub(super) fn books_with(&self, file: &str) -> Result<Vec<BookId>> {
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
            for spare in sqdata_core::raw::fs::spare_paths(&p) {
                fsio::remove(&spare)?;
            }
        }
        if names.contains(&crate::wal::NAME) {
            // The log goes with the files, durably: a replay after a power
            // loss must not bring a deleted book back.
            *cell.wal.lock() = WalSlot::default();
            sqdata_core::raw::fs::sync_dir(&cell.dir)?;
        }
        *cell.pos.lock() = None;
        *cell.deals.lock() = None;
        Ok(())
    }
}

/// The background checkpointer of a store: every so often, each book whose
/// log this process wrote and then left alone for `checkpoint_ms` has its
/// files synced and its log emptied. It holds the store weakly and ends
/// with it; a book busy with a writer is left for the next round.
fn spawn_checkpointer(inner: Weak<Inner>) -> Result<()> {
    std::thread::Builder::new()
        .name("sqdata-file-checkpoint".into())
        .spawn(move || {
            loop {
                let Some(every) =
                    inner.upgrade().map(|i| Duration::from_millis((i.cfg.checkpoint_ms / 2).clamp(5, 1000)))
                else {
                    return;
                };
                std::thread::sleep(every);
                let Some(i) = inner.upgrade() else { return };
                let idle = Duration::from_millis(i.cfg.checkpoint_ms);
                let cells: Vec<Arc<BookCell>> = i.books.lock().values().cloned().collect();
                for cell in cells {
                    // A failed checkpoint leaves the log as it was: the records
                    // stay and the next round (or recovery) tries again.
                    let _ = i.checkpoint_if_idle(&cell, idle);
                }
            }
        })
        .map(|_| ())
        .map_err(|e| Error::Backend {
            backend: BACKEND,
            message: format!("cannot start the checkpoint thread: {e}"),
            retryable: false,
            source: None,
        })
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle of the store: leave every log this process wrote empty.
        let cells: Vec<Arc<BookCell>> = self.books.get_mut().values().cloned().collect();
        for cell in cells {
            let _ = self.checkpoint_if_idle(&cell, Duration::ZERO);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[async_trait]
impl HealthCheck for FileStore {
    async fn health(&self) -> BackendHealth {
        let root = self.inner.cfg.root.clone();
        let start = Instant::now();
        let probe = root.join(".sqdata-health");
        let r = self
            .blocking(move |_| {
                fsio::replace(&probe, b"ok", Durability::Flush, false).and_then(|_| fsio::remove(&probe))
            })
            .await;
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
