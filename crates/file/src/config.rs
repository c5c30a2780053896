//! Configuration of the file backend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sqdata_core::{BookId, Error, Result};

use crate::deals::DealEncoding;
use crate::fsio::Durability;

/// Where the files live and how they are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Root folder. A book's files live in `<root>/<account>/<book>/` unless
    /// `books` maps it elsewhere; bars in `<root>/_bars/`.
    pub root: PathBuf,
    /// Per-book folders, `"account/book" = "path"`: point a book at a live
    /// SilverQuant cache folder such as `_cache/prod_pwc`.
    pub books: BTreeMap<String, PathBuf>,
    /// `fsync` (default): acknowledged writes survive a power loss.
    /// `flush`: atomic renames only.
    pub durability: Durability,
    /// Encoding of `deal_hist.csv` (`auto`, `gbk`, `utf8`).
    pub deal_encoding: DealEncoding,
    /// Quote lifetime in milliseconds.
    pub quote_ttl_ms: u64,
    /// With `durability = "fsync"`: position writes are made durable by one
    /// sync of a per-book write-ahead log (`.sqdata-positions.wal`) rather
    /// than by syncing every changed file and the folder (default `true`).
    pub wal: bool,
    /// The most a book's log grows to, in bytes (default 4 MiB; a log
    /// starts at 64 KiB and doubles as its records need); when it is full,
    /// the next write checkpoints first.
    pub wal_bytes: u64,
    /// A book whose log has had no write for this long is checkpointed in
    /// the background (its files synced, its log emptied); default 500.
    pub checkpoint_ms: u64,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            root: PathBuf::from("sqdata-data"),
            books: BTreeMap::new(),
            durability: Durability::Fsync,
            deal_encoding: DealEncoding::Auto,
            quote_ttl_ms: 5_000,
            wal: true,
            wal_bytes: 4 << 20,
            checkpoint_ms: 500,
        }
    }
}

impl FileConfig {
    /// A config rooted at `root` with every other setting at its default.
    pub fn at(root: impl Into<PathBuf>) -> FileConfig {
        FileConfig { root: root.into(), ..Default::default() }
    }

    /// Validates the book map.
    pub fn validate(&self) -> Result<()> {
        for k in self.books.keys() {
            k.parse::<BookId>().map_err(|e| Error::Config(format!("file.books key {k:?}: {e}")))?;
        }
        if self.quote_ttl_ms == 0 {
            return Err(Error::Config("file.quote_ttl_ms must be positive".into()));
        }
        if !(crate::wal::MIN_BYTES..=crate::wal::MAX_BYTES).contains(&self.wal_bytes) {
            return Err(Error::Config(format!(
                "file.wal_bytes must be between {} and {} (got {})",
                crate::wal::MIN_BYTES,
                crate::wal::MAX_BYTES,
                self.wal_bytes
            )));
        }
        if self.checkpoint_ms == 0 {
            return Err(Error::Config("file.checkpoint_ms must be positive".into()));
        }
        Ok(())
    }

    /// The folder of a book.
    pub fn book_dir(&self, book: &BookId) -> PathBuf {
        match self.books.get(&book.to_string()) {
            Some(p) if p.is_absolute() => p.clone(),
            Some(p) => self.root.join(p),
            None => self.root.join(book.account.as_str()).join(book.book.as_str()),
        }
    }

    /// The bar folder.
    pub fn bar_root(&self) -> PathBuf {
        self.root.join("_bars")
    }

    /// Whether position writes go through the write-ahead log.
    pub fn uses_wal(&self) -> bool {
        self.wal && self.durability == Durability::Fsync
    }

    /// The quotes file.
    pub fn quotes_path(&self) -> PathBuf {
        self.root.join("_quotes.json")
    }

    /// Every book folder that exists: `<root>/<account>/<book>/` plus the mapped ones.
    pub fn existing_books(&self) -> Result<Vec<(BookId, PathBuf)>> {
        let mut out = Vec::new();
        for k in self.books.keys() {
            if let Ok(id) = k.parse::<BookId>() {
                let dir = self.book_dir(&id);
                if dir.is_dir() {
                    out.push((id, dir));
                }
            }
        }
        for acct in read_dirs(&self.root)? {
            let Some(a) = acct.file_name().and_then(|n| n.to_str()) else { continue };
            for b in read_dirs(&acct)? {
                let Some(bn) = b.file_name().and_then(|n| n.to_str()) else { continue };
                if let Ok(id) = BookId::new(a, bn)
                    && !out.iter().any(|(o, _)| o == &id)
                {
                    out.push((id, b));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(e.path());
        }
    }
    Ok(out)
}
