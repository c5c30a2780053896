//! An append-only JSON-lines journal, safe with many processes on one folder.
//!
//! - **One file per process.** [`Journal::open`] claims
//!   `<stem>-<pid>-<n>.journal` under an exclusive lock on
//!   `<stem>-<pid>-<n>.lock` (taken before the journal file exists, so no
//!   other process can mistake a new journal for an orphan; a lock file
//!   removed between its open and the lock is not trusted, see
//!   [`LockFile::is_current`]). Nobody else ever writes, cuts or clears it
//!   while its owner lives. A name that cannot be claimed (a file of
//!   another user: the same pid in another container) is skipped.
//! - **Orphans are adopted.** A journal of the same stem whose lock is free
//!   belonged to a process that is gone (or closed it): its complete entries
//!   past its checkpoint are appended to the adopter's journal durably, and
//!   only then is it removed (checkpoint, journal, lock). Each orphan is on
//!   its own: one that cannot be taken (a lock file another user owns) is
//!   logged once, reported in the [`Adoption`] and left for a later round;
//!   the others are adopted, and opening a journal never fails because of
//!   someone else's orphan.
//! - **The legacy journal** `<stem>.journal` (the name older versions
//!   shared, written without a lock and read by path) is adopted only when
//!   no process has it open (Linux: `/proc/*/fd`); while one has, or when
//!   that cannot be known, it is kept and a warning names it once.
//! - **A torn tail is cut.** A last line without its newline was being
//!   written when its writer died and was never acknowledged.
//! - **Durable.** Entries are fdatasync'd before [`Journal::append`]
//!   returns; the folder is fsync'd before the first entry of a new journal
//!   is acknowledged; the checkpoint is replaced atomically. A failed append
//!   cuts the file back.
//! - **No litter.** A journal dropped with everything applied removes its
//!   files; one left by a killed process is removed by its adopter, which
//!   also removes lock and checkpoint files with no journal beside them
//!   (once their lock can be taken) and checkpoint temp files older than a
//!   minute.
//! - **A checkpoint** records how far the entries were applied; once
//!   everything is applied the file starts over. A checkpoint is never
//!   trusted past its journal: opening persists it clamped to the journal's
//!   length (0 for a new journal), so a journal that takes over a name (pid
//!   reuse) never inherits a stale one. A crash between any two steps leaves
//!   at worst entries already applied to be applied again, never one counted
//!   applied that was not: entries must be safe to apply twice (state-based
//!   units; deals deduplicated by id).

use std::collections::{BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::fs::{
    Durability, complete_lines, create_dir_all_synced, cut_back, remove_if_exists, replace_atomic, sync_dir,
};
use super::lock::{LockFile, try_lock_exclusive};
use crate::error::{Error, Result};

mod adopt;
#[cfg(test)]
mod tests;

/// Names tried by [`Journal::open`] before it gives up.
const MAX_CLAIMS: u32 = 1024;

/// What one round of [`Journal::adopt`] did.
#[derive(Debug, Default)]
pub struct Adoption {
    /// Entries appended to the adopter's journal.
    pub entries: usize,
    /// Orphaned journals taken over and removed.
    pub journals: usize,
    /// What could not be handled, each with its path; it stays for a later
    /// round (each is also logged as a warning, once).
    pub errors: Vec<(PathBuf, Error)>,
}

impl Adoption {
    fn fail(&mut self, path: &Path, e: Error) {
        adopt::warn_once(path, &format!("journal adoption skipped this file: {e}"));
        self.errors.push((path.to_path_buf(), e));
    }
}

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
        // (the checkpoint first: one left without its journal would be
        // inherited by the next journal of this name; the lock last, while
        // still held). Without its lock (an adopted orphan, already
        // removed) the names may belong to someone else by now.
        if self.applied == self.len
            && let Some(l) = self.lock.take()
        {
            let _ = std::fs::remove_file(&self.ckpt);
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(l.path());
        }
    }
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path, e)
}

impl Journal {
    /// Claims a journal of `stem` in `dir` (created durably if missing) and
    /// adopts the orphans of that stem (an orphan that cannot be taken is
    /// logged and left). A fully applied journal is cut to zero at once
    /// (`reset_bytes` = 0) or once it exceeds `reset_bytes`.
    pub fn open(dir: &Path, stem: &str, reset_bytes: u64) -> Result<Journal> {
        if stem.is_empty() || !stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::invalid("journal stem", stem, "letters, digits and '_' only"));
        }
        create_dir_all_synced(dir)?;
        let (name, lock) = claim(dir, stem)?;
        let mut j = Journal::open_file(dir, stem, &name, lock, reset_bytes)?;
        if let Err(e) = j.adopt() {
            adopt::warn_once(dir, &format!("could not look for orphaned journals: {e}"));
        }
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
        let stored = read_checkpoint(&ckpt)?;
        let applied = stored.min(complete);
        if stored > applied {
            // Past its journal (a new journal, or one cut after the
            // checkpoint; a crash between two removals, then this name
            // again): persisted clamped before anything is appended, or the
            // next entries would count as applied.
            replace_atomic(&ckpt, applied.to_string().as_bytes(), Durability::Fsync)?;
        }
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
    /// are removed; clears litter on the way (module docs). Each orphan is
    /// handled on its own: what could not be taken is in
    /// [`Adoption::errors`] and stays for a later call. An error only when
    /// the folder cannot be listed. Cheap when there is nothing to do (one
    /// folder listing); call it again to catch processes that died since.
    pub fn adopt(&mut self) -> Result<Adoption> {
        let names: Vec<String> = std::fs::read_dir(&self.dir)
            .map_err(|e| io(&self.dir, e))?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        let journals: HashSet<&str> = names.iter().filter_map(|n| n.strip_suffix(".journal")).collect();
        let mut report = Adoption::default();
        let mut litter = BTreeSet::new();
        for fname in &names {
            if let Some(other) = fname.strip_suffix(".journal") {
                if self.is_ours(other)
                    && other != self.name
                    && let Err(e) = self.adopt_one(other, &mut report)
                {
                    report.fail(&self.dir.join(fname), e);
                }
            } else if let Some(other) = fname.strip_suffix(".lock").or_else(|| fname.strip_suffix(".checkpoint")) {
                if self.is_ours(other) && other != self.name && !journals.contains(other) {
                    litter.insert(other);
                }
            } else if let Some(other) = adopt::checkpoint_temp_of(fname)
                && self.is_ours(other)
            {
                let path = self.dir.join(fname);
                if let Err(e) = adopt::remove_if_stale(&path) {
                    report.fail(&path, e);
                }
            }
        }
        for other in litter {
            if let Err(e) = self.clear_litter(other) {
                report.fail(&self.dir.join(format!("{other}.lock")), e);
            }
        }
        Ok(report)
    }

    /// [`adopt`](Journal::adopt), returning how many entries were adopted
    /// (counted even when another orphan could not be taken: that one is
    /// logged and left for a later call).
    pub fn adopt_orphans(&mut self) -> Result<usize> {
        self.adopt().map(|r| r.entries)
    }

    /// Whether `other` (a file name without its extension) is a journal of
    /// this stem: `<stem>` (legacy) or `<stem>-<pid>-<n>`.
    fn is_ours(&self, other: &str) -> bool {
        other == self.stem
            || other
                .strip_prefix(self.stem.as_str())
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit() || c == '-'))
    }

    fn adopt_one(&mut self, other: &str, report: &mut Adoption) -> Result<()> {
        let lock_path = self.dir.join(format!("{other}.lock"));
        let orphan_path = self.dir.join(format!("{other}.journal"));
        let Some(l) = try_lock_exclusive(&lock_path)? else { return Ok(()) }; // its owner lives
        if !l.is_current() {
            return Ok(()); // adopted and removed by another process a moment ago
        }
        if !orphan_path.exists() {
            // adopted by another process a moment ago: the lock file is
            // the one this attempt created
            return remove_if_exists(&lock_path);
        }
        if other == self.stem && !adopt::legacy_unused(&orphan_path) {
            return Ok(());
        }
        let mut orphan = Journal::open_file(&self.dir, &self.stem, other, l, 0)?;
        let lines = orphan.pending_lines()?;
        if !lines.is_empty() {
            self.append_raw(&lines.concat())?;
            tracing::info!(
                journal = %orphan.path.display(),
                entries = lines.len(),
                "adopted the journal of a process that is gone"
            );
            report.entries += lines.len();
        }
        report.journals += 1;
        // The entries are safe here. The checkpoint goes first (one left
        // without its journal would be inherited by the next of its name);
        // a journal left without its checkpoint is adopted again later,
        // which only applies entries twice. The lock is held to the end and
        // taken from the orphan, whose drop then removes nothing (the names
        // may be claimed anew the moment they are gone).
        let _held = orphan.lock.take();
        remove_if_exists(&orphan.ckpt)?;
        if let Err(e) = remove_if_exists(&orphan.path) {
            let _ = replace_atomic(&orphan.ckpt, orphan.len.to_string().as_bytes(), Durability::Fsync);
            return Err(e);
        }
        remove_if_exists(&lock_path)?;
        sync_dir(&self.dir)
    }

    /// A lock or checkpoint file of `other` with no journal beside it: gone
    /// once its lock can be taken (a process claiming the name holds it
    /// until its journal exists).
    fn clear_litter(&self, other: &str) -> Result<()> {
        let lock_path = self.dir.join(format!("{other}.lock"));
        let Some(l) = try_lock_exclusive(&lock_path)? else { return Ok(()) };
        if !l.is_current() || self.dir.join(format!("{other}.journal")).exists() {
            return Ok(()); // changed since the listing: the next round looks again
        }
        remove_if_exists(&self.dir.join(format!("{other}.checkpoint")))?;
        remove_if_exists(&lock_path)?;
        drop(l);
        Ok(())
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
            if let Err(e) = sync_dir(&self.dir) {
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
    /// everything and the file is past its reset size, it starts over: the
    /// checkpoint "0" first, then the cut. A crash in between leaves every
    /// entry (all applied) to be applied again on the next open — the only
    /// outcome of a crash here, harmless for entries safe to apply twice;
    /// the other order could leave a checkpoint past an empty file.
    pub fn checkpoint(&mut self, offset: u64) -> Result<()> {
        let offset = offset.min(self.len);
        if offset == self.applied {
            return Ok(());
        }
        if offset == self.len && self.len > self.reset_bytes {
            replace_atomic(&self.ckpt, b"0", Durability::Fsync)?;
            let cut = self.file.set_len(0).and_then(|_| self.file.sync_data());
            // what the file holds now decides the offsets of the next entries
            if self.file.metadata().map(|m| m.len()).unwrap_or(self.len) == 0 {
                self.len = 0;
                self.applied = 0;
                let _ = self.file.seek(SeekFrom::Start(0));
            } else {
                self.applied = offset;
            }
            return cut.map_err(|e| io(&self.path, e));
        }
        replace_atomic(&self.ckpt, offset.to_string().as_bytes(), Durability::Fsync)?;
        self.applied = offset;
        Ok(())
    }
}

/// Locks the first free `<stem>-<pid>-<n>.lock`.
fn claim(dir: &Path, stem: &str) -> Result<(String, LockFile)> {
    let pid = std::process::id();
    let mut n = 0u32;
    let mut last = None;
    for _ in 0..MAX_CLAIMS {
        let name = format!("{stem}-{pid}-{n}");
        match try_lock_exclusive(&dir.join(format!("{name}.lock"))) {
            // removed by an adopter between the open and the lock: again
            Ok(Some(l)) if !l.is_current() => continue,
            Ok(Some(l)) => return Ok((name, l)),
            Ok(None) => {}
            // not ours to open (another user's file of this name): the next
            Err(e) => last = Some(e),
        }
        n += 1;
    }
    Err(last.unwrap_or_else(|| io(dir, std::io::Error::other("no free journal name"))))
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
