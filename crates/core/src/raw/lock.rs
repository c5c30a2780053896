//! Advisory locks (`flock`) on std's `File::lock` / `File::try_lock`.
//!
//! A lock lives as long as its [`LockFile`]; the kernel drops it when the
//! process dies, which is how a journal's owner is known to be gone. Locks
//! are advisory: they order sqdata processes among themselves. SilverQuant
//! takes none, which is why every file it reads is also replaced atomically.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An exclusive lock on a file, held until dropped.
#[derive(Debug)]
pub struct LockFile {
    file: File,
    path: PathBuf,
}

impl LockFile {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the locked file is still the one at its path. A lock file
    /// removed (or replaced) between its open and the lock guards nothing:
    /// whoever removed it held the lock and may have left the name to a new
    /// file that another process locks. Callers that remove lock files
    /// check this after locking and start over when it is false.
    pub fn is_current(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match (self.file.metadata(), std::fs::metadata(&self.path)) {
                (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
                _ => false,
            }
        }
        #[cfg(not(unix))]
        {
            self.path.exists()
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(|e| Error::io(path, e))
}

/// Blocks until `path` (created if missing) is locked exclusively.
pub fn lock_exclusive(path: &Path) -> Result<LockFile> {
    let file = open(path)?;
    file.lock().map_err(|e| Error::io(path, e))?;
    Ok(LockFile { file, path: path.to_path_buf() })
}

/// Locks `path` (created if missing) exclusively without waiting; `None`
/// when another holder has it.
pub fn try_lock_exclusive(path: &Path) -> Result<Option<LockFile>> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(LockFile { file, path: path.to_path_buf() })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_until_dropped() {
        let p = std::env::temp_dir().join(format!("sqdata-raw-lock-{}.lock", std::process::id()));
        let a = try_lock_exclusive(&p).unwrap().expect("free");
        assert!(try_lock_exclusive(&p).unwrap().is_none(), "flock is per open file: a second open is refused");
        drop(a);
        let b = lock_exclusive(&p).unwrap();
        assert_eq!(b.path(), p);
        assert!(b.is_current());
        std::fs::remove_file(&p).unwrap();
        assert!(!b.is_current(), "a removed lock file guards nothing");
        drop(b);
        let _ = std::fs::remove_file(&p);
    }
}
