//! File primitives of the file store: stamps for cache revalidation and
//! stable reads of files an outside writer rewrites in place. Writing
//! (atomic replace with a last-good copy, appends, the book lock) is the
//! shared toolkit's, [`sqdata_core::raw`], wrapped here to return stamps.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RACY_WINDOW_NS: i128 = 30_000_000;

pub use sqdata_core::raw::Durability;
pub use sqdata_core::raw::fs::last_good_path;
use sqdata_core::raw::{self, LockFile};
use sqdata_core::{Error, Result};

/// Identity of one version of a file: a rename gives a new inode, an
/// in-place rewrite a new size or mtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    ino: u64,
    dev: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            ino: m.ino(),
            dev: m.dev(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }

    /// Whether the file changed so recently that a same-size rewrite in the
    /// same clock tick could go unnoticed (file times are coarse: ~4 ms).
    /// Such a cache entry is re-read rather than trusted ("racy git").
    pub fn is_racy(&self) -> bool {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
        now - self.mtime_ns.max(self.ctime_ns) < RACY_WINDOW_NS
    }

    /// Whether the file changed within the last second (an outside writer
    /// may be between its truncate and its write).
    pub fn is_fresh(&self) -> bool {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
        now - self.mtime_ns < 1_000_000_000
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether `later` is the same inode grown by appends only (no rewrite
    /// in place that changed the size downwards).
    pub fn grew_to(&self, later: &Stamp) -> bool {
        self.ino == later.ino && self.dev == later.dev && later.size > self.size
    }
}

/// The stamp of a path, `None` when it does not exist.
pub fn stamp(path: &Path) -> Result<Option<Stamp>> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(Stamp::of(&m))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Reads a file whose stamp did not change while it was read, retrying a few
/// times when an outside writer (SilverQuant rewrites in place) is mid-write.
/// Returns `None` when the file does not exist.
pub fn read_stable(path: &Path) -> Result<Option<(Vec<u8>, Stamp)>> {
    for attempt in 0..20 {
        let before = match stamp(path)? {
            Some(s) => s,
            None => return Ok(None),
        };
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        let after = stamp(path)?;
        if after == Some(before) && bytes.len() as u64 == before.size {
            return Ok(Some((bytes, before)));
        }
        std::thread::sleep(Duration::from_micros(200 << attempt.min(5)));
    }
    Err(Error::Io {
        path: path.display().to_string(),
        source: io::Error::new(io::ErrorKind::WouldBlock, "file kept changing while being read"),
    })
}

/// Replaces `path` with `data` atomically ([`raw::replace_many`]): readers
/// see the old or the new file, never a mix; with [`Durability::Fsync`] the
/// new one survives a power loss once this returns. Returns its stamp.
pub fn replace(path: &Path, data: &[u8], durability: Durability, keep_last_good: bool) -> Result<Stamp> {
    Ok(replace_many(&[(path, data)], durability, keep_last_good)?[0])
}

/// [`replace`] for several files with one folder fsync.
pub fn replace_many(files: &[(&Path, &[u8])], durability: Durability, keep_last_good: bool) -> Result<Vec<Stamp>> {
    Ok(raw::replace_many(files, durability, keep_last_good)?.iter().map(Stamp::of).collect())
}

/// [`raw::replace_many_recycling`]: an atomic replace that writes into the
/// version the previous replace retired (for writes a log makes durable).
pub fn replace_many_recycling(files: &[(&Path, &[u8])], keep_last_good: bool) -> Result<Vec<Stamp>> {
    Ok(raw::replace_many_recycling(files, keep_last_good)?.iter().map(Stamp::of).collect())
}

/// Appends `data` to `path` ([`raw::append`]: a failed write leaves no
/// partial row). Returns the new stamp.
pub fn append(path: &Path, data: &[u8], durability: Durability) -> Result<Stamp> {
    raw::append(path, data, durability).map(|m| Stamp::of(&m))
}

/// Creates a directory and its parents.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Removes a file if it exists.
pub fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// An exclusive advisory lock (flock) on `<dir>/.sqdata.lock`, held until
/// dropped. It serialises sqdata processes sharing a folder; SilverQuant
/// itself takes no lock, which is why every write is also an atomic rename.
#[derive(Debug)]
pub struct DirLock {
    _lock: LockFile,
}

impl DirLock {
    /// Blocks until the lock is held.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        ensure_dir(dir)?;
        Ok(DirLock { _lock: raw::lock_exclusive(&dir.join(".sqdata.lock"))? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_last_good_and_changes_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        let s1 = replace(&p, b"{\"v\": 1}", Durability::Fsync, true).unwrap();
        assert!(!last_good_path(&p).exists());
        let s2 = replace(&p, b"{\"v\": 2}", Durability::Fsync, true).unwrap();
        assert_ne!(s1, s2);
        assert_eq!(fs::read(&p).unwrap(), b"{\"v\": 2}");
        assert_eq!(fs::read(last_good_path(&p)).unwrap(), b"{\"v\": 1}");
        assert_eq!(stamp(&p).unwrap(), Some(s2));
        // no temp files left behind
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn read_stable_of_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_stable(&dir.path().join("nope")).unwrap().is_none());
    }
}
