//! An append-only JSON-lines journal, safe with many processes on one folder.
//!
//! - **One file per process.** [`Journal::open`] claims
//!   `<stem>-<pid>-<n>.journal` under an exclusive lock on
//!   `<stem>-<pid>-<n>.lock` (taken before the journal file exists, so no
//!   other process can mistake a new journal for an orphan). Nobody else
//!   ever writes, cuts or clears it while its owner lives.
//! - **Orphans are adopted.** A journal of the same stem whose lock is free
//!   belonged to a process that is gone (or closed it): its complete entries
//!   past its checkpoint are appended to the adopter's journal durably, and
//!   only then is it removed. `<stem>.journal` (the name older versions
//!   shared) is adopted the same way.
//! - **A torn tail is cut.** A last line without its newline was being
//!   written when its writer died and was never acknowledged.
//! - **Durable.** Entries are fdatasync'd before [`Journal::append`]
//!   returns; the folder is fsync'd before the first entry of a new journal
//!   is acknowledged; the checkpoint is replaced atomically. A failed append
//!   cuts the file back.
//! - **No litter.** A journal dropped with everything applied removes its
//!   files; one left by a killed process is removed by its adopter.
//! - **A checkpoint** records how far the entries were applied; once
//!   everything is applied the file starts over.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::fs::{Durability, complete_lines, create_dir_all_synced, cut_back, remove_if_exists, replace_atomic};
use super::lock::{LockFile, try_lock_exclusive};
use crate::error::{Error, Result};

/// One journal file owned by this process.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    stem: String,
    name: String,
    path: PathBuf,
    ckpt: PathBuf,
    file: File,
    len: u64,
    applied: u64,
    /// Past this size a fully applied journal is cut to zero.
    reset_bytes: u64,
    /// Whether the folder entry of the file is known durable.
    dir_synced: bool,
    lock: Option<LockFile>,
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Everything applied: nothing to adopt, so leave nothing behind
        // (journal and checkpoint first, the lock last, while still held).
        if self.applied == self.len {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(&self.ckpt);
            if let Some(l) = self.lock.take() {
                let _ = std::fs::remove_file(l.path());
            }
        }
    }
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path, e)
}

impl Journal {
    /// Claims a journal of `stem` in `dir` (created durably if missing) and
    /// adopts the orphans of that stem. A fully applied journal is cut to
    /// zero at once (`reset_bytes` = 0) or once it exceeds `reset_bytes`.
    pub fn open(dir: &Path, stem: &str, reset_bytes: u64) -> Result<Journal> {
        if stem.is_empty() || !stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid("journal stem", stem, "letters, digits and '_' only"));
        }
        create_dir_all_synced(dir)?;
        let pid = std::process::id();
        let mut n = 0u32;
        let (name, lock) = loop {
            let name = format!("{stem}-{pid}-{n}");
            if let Some(l) = try_lock_exclusive(&dir.join(format!("{name}.lock")))? {
                break (name, l);
            }
            n += 1;
        };
        let mut j = Journal::open_file(dir, stem, &name, lock, reset_bytes)?;
        j.adopt_orphans()?;
        Ok(j)
    }

    fn open_file(dir: &Path, stem: &str, name: &str, lock: LockFile, reset_bytes: u64) -> Result<Journal> {
        let path = dir.join(format!("{name}.journal"));
        let ckpt = dir.join(format!("{name}.checkpoint"));
        let existed = path.exists();
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(|e| io(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io(&path, e))?;
        let complete = complete_lines(&bytes) as u64;
        if complete < bytes.len() as u64 {
            file.set_len(complete).and_then(|_| file.sync_data()).map_err(|e| io(&path, e))?;
        }
        let applied = read_checkpoint(&ckpt)?.min(complete);
        file.seek(SeekFrom::End(0)).map_err(|e| io(&path, e))?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            name: name.to_string(),
            path,
            ckpt,
            file,
            len: complete,
            applied,
            reset_bytes,
            dir_synced: existed,
            lock: Some(lock),
        })
    }

    /// Takes over the journals of this stem whose owner is gone: their
    /// entries past their checkpoint are appended here (durably), then they
    /// are removed. Returns how many entries were adopted. Cheap when there
    /// are none (one folder listing); call it again to catch processes that
    /// died since.
    pub fn adopt_orphans(&mut self) -> Result<usize> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))?;
        let mut adopted = 0;
        for e in entries {
            let fname = e.map_err(|e| io(&self.dir, e))?.file_name().to_string_lossy().into_owned();
            let Some(other) = fname.strip_suffix(".journal") else { continue };
            let ours = other == self.stem
                || other
                    .strip_prefix(self.stem.as_str())
                    .and_then(|r| r.strip_prefix('-'))
                    .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit() || c == '-'));
            if !ours || other == self.name {
                continue;
            }
            let lock_path = self.dir.join(format!("{other}.lock"));
            let Some(l) = try_lock_exclusive(&lock_path)? else { continue };
            let orphan_path = self.dir.join(&fname);
            if !orphan_path.exists() {
                // adopted and removed by another process a moment ago
                drop(l);
                continue;
            }
            let orphan = Journal::open_file(&self.dir, &self.stem, other, l, 0)?;
            let lines = orphan.pending_lines()?;
            if !lines.is_empty() {
                self.append_raw(&lines.concat())?;
                tracing::info!(
                    journal = %orphan.path.display(),
                    entries = lines.len(),
                    "adopted the journal of a process that is gone"
                );
                adopted += lines.len();
            }
            remove_if_exists(&orphan.path)?;
            remove_if_exists(&orphan.ckpt)?;
            remove_if_exists(&lock_path)?;
            super::fs::sync_dir(&self.dir)?;
        }
        Ok(adopted)
    }

    /// This process's journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file (complete entries).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes of entries not yet applied (past the checkpoint).
    pub fn pending_bytes(&self) -> u64 {
        self.len - self.applied
    }

    /// The checkpoint: bytes applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Appends entries durably (one JSON line each); returns each entry's
    /// end offset. Nothing is appended when one fails to serialise; a
    /// failed write or sync is cut back.
    pub fn append<T: Serialize>(&mut self, entries: &[T]) -> Result<Vec<u64>> {
        let mut buf = Vec::with_capacity(entries.len() * 128);
        let mut ends = Vec::with_capacity(entries.len());
        for e in entries {
            serde_json::to_writer(&mut buf, e)
                .map_err(|err| Error::invalid("journal entry", self.path.display(), err.to_string()))?;
            buf.push(b'\n');
            ends.push(self.len + buf.len() as u64);
        }
        self.append_raw(&buf)?;
        Ok(ends)
    }

    fn append_raw(&mut self, buf: &[u8]) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(buf).and_then(|_| self.file.sync_data());
        if let Err(e) = r {
            cut_back(&self.file, self.len);
            return Err(io(&self.path, e));
        }
        if !self.dir_synced {
            if let Err(e) = super::fs::sync_dir(&self.dir) {
                cut_back(&self.file, self.len);
                return Err(e);
            }
            self.dir_synced = true;
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    fn pending_lines(&self) -> Result<Vec<Vec<u8>>> {
        let bytes = self.read_range(self.applied)?;
        Ok(bytes.split_inclusive(|b| *b == b'\n').map(<[u8]>::to_vec).collect())
    }

    fn read_range(&self, from: u64) -> Result<Vec<u8>> {
        let mut f = File::open(&self.path).map_err(|e| io(&self.path, e))?;
        f.seek(SeekFrom::Start(from)).map_err(|e| io(&self.path, e))?;
        let mut bytes = Vec::with_capacity((self.len.saturating_sub(from)) as usize);
        f.take(self.len.saturating_sub(from)).read_to_end(&mut bytes).map_err(|e| io(&self.path, e))?;
        Ok(bytes)
    }

    /// The entries after byte `from` (an end offset this journal returned,
    /// or [`applied`](Journal::applied)), each with its end offset.
    pub fn read_after<T: DeserializeOwned>(&self, from: u64) -> Result<Vec<(u64, T)>> {
        let from = from.min(self.len);
        let bytes = self.read_range(from)?;
        let mut out = Vec::new();
        let mut offset = from;
        for (n, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            offset += line.len() as u64;
            let v = serde_json::from_slice(line).map_err(|e| {
                Error::corrupt(format!("{} (entry {} after byte {from})", self.path.display(), n + 1), e.to_string())
            })?;
            out.push((offset, v));
        }
        Ok(out)
    }

    /// The entries not yet applied, each with its end offset.
    pub fn pending<T: DeserializeOwned>(&self) -> Result<Vec<(u64, T)>> {
        self.read_after(self.applied)
    }

    /// Everything up to `offset` is applied (durably recorded). When that is
    /// everything and the file is past its reset size, it starts over
    /// (checkpoint first, so a crash in between replays nothing).
    pub fn checkpoint(&mut self, offset: u64) -> Result<()> {
        let offset = offset.min(self.len);
        if offset == self.applied {
            return Ok(());
        }
        replace_atomic(&self.ckpt, offset.to_string().as_bytes(), Durability::Fsync)?;
        self.applied = offset;
        if self.applied == self.len && self.len > self.reset_bytes {
            replace_atomic(&self.ckpt, b"0", Durability::Fsync)?;
            self.file.set_len(0).and_then(|_| self.file.sync_data()).map_err(|e| io(&self.path, e))?;
            self.file.seek(SeekFrom::Start(0)).map_err(|e| io(&self.path, e))?;
            self.len = 0;
            self.applied = 0;
        }
        Ok(())
    }
}

fn read_checkpoint(path: &Path) -> Result<u64> {
    match std::fs::read_to_string(path) {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| Error::corrupt(path.display().to_string(), format!("bad checkpoint {s:?}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "sqdata-journal-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn two_writers_never_share_a_file_and_a_gone_one_is_adopted_once() {
        let dir = tmp("adopt");
        let mut a = Journal::open(&dir, "deals", 0).unwrap();
        let mut b = Journal::open(&dir, "deals", 0).unwrap();
        assert_ne!(a.path(), b.path());
        a.append(&["a1"]).unwrap();
        let ends = b.append(&["b1", "b2"]).unwrap();
        b.checkpoint(ends[0]).unwrap(); // b1 applied, b2 not
        // a live writer's journal is never taken
        let c = Journal::open(&dir, "deals", 0).unwrap();
        assert!(c.pending::<String>().unwrap().is_empty());
        drop(b);
        let mut d = Journal::open(&dir, "deals", 0).unwrap();
        let got: Vec<String> = d.pending::<String>().unwrap().into_iter().map(|(_, s)| s).collect();
        assert_eq!(got, vec!["b2"], "exactly the gone writer's unapplied entry");
        assert_eq!(d.adopt_orphans().unwrap(), 0, "nothing adopted twice");
        // an older version's shared journal (no lock file) is adopted too
        std::fs::write(dir.join("deals.journal"), b"\"old\"\n\"tor").unwrap();
        assert_eq!(d.adopt_orphans().unwrap(), 1, "the torn tail is not an entry");
        assert!(!dir.join("deals.journal").exists());
        drop((a, c, d));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn checkpoint_resets_and_read_after_offsets() {
        let dir = tmp("ckpt");
        let mut j = Journal::open(&dir, "positions", 0).unwrap();
        let ends = j.append(&[1u32, 2, 3]).unwrap();
        assert_eq!(j.read_after::<u32>(ends[0]).unwrap().into_iter().map(|(_, v)| v).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(j.pending_bytes(), j.len());
        j.checkpoint(*ends.last().unwrap()).unwrap();
        assert_eq!((j.len(), j.pending_bytes()), (0, 0), "fully applied: starts over");
        j.append(&[4u32]).unwrap();
        let path = j.path().to_path_buf();
        drop(j);
        // another stem's orphan is not ours
        let k = Journal::open(&dir, "deals", 0).unwrap();
        assert!(k.pending::<u32>().unwrap().is_empty());
        assert!(path.exists());
        drop(k);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
