//! File primitives: stamps for cache revalidation, atomic replacement with a
//! last-good copy, stable reads, and the cross-process book lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RACY_WINDOW_NS: i128 = 30_000_000;

use sqdata_core::{Error, Result};

/// How hard writes try to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fdatasync the new file and fsync the directory after the rename:
    /// an acknowledged write survives a power loss.
    #[default]
    Fsync,
    /// Atomic rename only: survives a crash of any process, not a power loss.
    Flush,
}

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

/// How often the `.last-good` copy is refreshed per file. Replacing it
/// frees the previous copy's blocks, which costs as much as a write; once in
/// this interval keeps a recent good version without taxing every tick.
const LAST_GOOD_EVERY: Duration = Duration::from_secs(10);

/// Whether `path` exists and its last-good copy is missing or older than
/// [`LAST_GOOD_EVERY`].
fn last_good_due(path: &Path) -> bool {
    if !path.exists() {
        return false;
    }
    match fs::metadata(last_good_path(path)).and_then(|m| m.modified()) {
        Ok(t) => t.elapsed().map(|e| e >= LAST_GOOD_EVERY).unwrap_or(true),
        Err(_) => true,
    }
}

/// The path of the last good version kept beside a file.
pub fn last_good_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".last-good");
    PathBuf::from(s)
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

fn tmp_path(path: &Path, tag: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{tag}.{}.{}.tmp", std::process::id(), TMP_SEQ.fetch_add(1, Ordering::Relaxed)));
    PathBuf::from(s)
}

/// Replaces `path` with `data` atomically: write a temp file in the same
/// directory, fdatasync it, keep the current version as `<path>.last-good`
/// (a hard link, no copy), rename over, fsync the directory. Readers see the
/// old or the new file, never a mix; with [`Durability::Fsync`] the new one
/// survives a power loss once this returns. Returns the new file's stamp.
pub fn replace(path: &Path, data: &[u8], durability: Durability, keep_last_good: bool) -> Result<Stamp> {
    Ok(replace_many(&[(path, data)], durability, keep_last_good)?[0])
}

/// [`replace`] for several files of one directory with a single directory
/// fsync: all temp files are written and synced first, then renamed in the
/// order given. Each file is replaced atomically; a crash between two
/// renames leaves the earlier files new and the later ones old.
pub fn replace_many(files: &[(&Path, &[u8])], durability: Durability, keep_last_good: bool) -> Result<Vec<Stamp>> {
    let mut staged: Vec<(PathBuf, File)> = Vec::with_capacity(files.len());
    let cleanup = |staged: &[(PathBuf, File)]| {
        for (t, _) in staged {
            let _ = fs::remove_file(t);
        }
    };
    for (path, data) in files {
        let tmp = tmp_path(path, "sqdata");
        let r = (|| -> io::Result<File> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(data)?;
            Ok(f)
        })();
        match r {
            Ok(f) => staged.push((tmp, f)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                cleanup(&staged);
                return Err(Error::io(path, e));
            }
        }
    }
    if durability == Durability::Fsync {
        for ((_, f), (path, _)) in staged.iter().zip(files) {
            if let Err(e) = f.sync_data() {
                cleanup(&staged);
                return Err(Error::io(path, e));
            }
        }
    }
    let mut stamps = Vec::with_capacity(files.len());
    let mut dirs: Vec<&Path> = Vec::new();
    for (i, ((tmp, f), (path, _))) in staged.iter().zip(files).enumerate() {
        let r = (|| -> io::Result<Stamp> {
            if keep_last_good && last_good_due(path) {
                let lg_tmp = tmp_path(path, "lastgood");
                match fs::hard_link(path, &lg_tmp) {
                    Ok(()) => fs::rename(&lg_tmp, last_good_path(path))?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            fs::rename(tmp, path)?;
            Ok(Stamp::of(&f.metadata()?))
        })();
        match r {
            Ok(st) => stamps.push(st),
            Err(e) => {
                cleanup(&staged[i..]);
                return Err(Error::io(path, e));
            }
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    if durability == Durability::Fsync {
        for dir in dirs {
            sync_dir(dir).map_err(|e| Error::io(dir, e))?;
        }
    }
    Ok(stamps)
}

/// Appends `data` to `path` (created if missing), fdatasync'd with
/// [`Durability::Fsync`]. Returns the new stamp.
pub fn append(path: &Path, data: &[u8], durability: Durability) -> Result<Stamp> {
    let existed = path.exists();
    let mut f = OpenOptions::new().append(true).create(true).open(path).map_err(|e| Error::io(path, e))?;
    f.write_all(data).map_err(|e| Error::io(path, e))?;
    if durability == Durability::Fsync {
        f.sync_data().map_err(|e| Error::io(path, e))?;
        if !existed {
            sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(|e| Error::io(path, e))?;
        }
    }
    Ok(Stamp::of(&f.metadata().map_err(|e| Error::io(path, e))?))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
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
    file: File,
}

impl DirLock {
    /// Blocks until the lock is held.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        ensure_dir(dir)?;
        let path = dir.join(".sqdata.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.lock().map_err(|e| Error::io(&path, e))?;
        Ok(DirLock { file })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
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
