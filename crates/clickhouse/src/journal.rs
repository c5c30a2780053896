//! The local append-only journal behind the deal inserter. A deal is
//! acknowledged once its line is fdatasync'd here; the flusher inserts
//! journaled deals into ClickHouse in batches and then advances a checkpoint.
//! After a crash, everything past the checkpoint is replayed (the flusher
//! skips ids ClickHouse already has, so a replay never duplicates).
//!
//! One writer per file: each store instance holds an exclusive `flock` on
//! its journal. The first takes `deals.journal`; another process (or
//! instance) sharing the folder gets a private `deals-<pid>-<n>.journal`.
//! Journals whose lock is free belonged to a process that is gone: the next
//! instance to open adopts what they hold past their checkpoint (appending
//! it to its own journal, durably) and removes them.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sqdata_core::{Deal, Error, Result};

/// Past this size a fully flushed journal is truncated.
const RESET_BYTES: u64 = 1 << 20;

/// The journal file and its checkpoint.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    ckpt: PathBuf,
    file: File,
    len: u64,
    flushed: u64,
    /// Held for the journal's lifetime (the flock is released on drop).
    _lock: File,
}

/// Takes `path`'s exclusive lock without waiting; `None` when someone holds it.
fn try_lock(path: &Path) -> Result<Option<File>> {
    let f =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(|e| io(path, e))?;
    match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(f)),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(None),
        Err(e) => Err(io(path, e.into())),
    }
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path, e)
}

impl Journal {
    /// Claims a journal in `dir` (the shared one if free, else a private
    /// one), adopts the journals of processes that are gone, cuts a torn
    /// last line (it was never acknowledged) and returns the deals past the
    /// checkpoint with their end offsets.
    pub(crate) fn open(dir: &Path) -> Result<(Journal, Vec<(u64, Deal)>)> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let (stem, lock) = match try_lock(&dir.join("deals.lock"))? {
            Some(l) => ("deals".to_string(), l),
            None => {
                let mut n = 0u32;
                loop {
                    let stem = format!("deals-{}-{n}", std::process::id());
                    if let Some(l) = try_lock(&dir.join(format!("{stem}.lock")))? {
                        break (stem, l);
                    }
                    n += 1;
                }
            }
        };
        let (mut journal, mut pending) = Journal::open_file(dir, &stem, lock)?;
        let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
        for e in entries {
            let name = e.map_err(|e| io(dir, e))?.file_name().to_string_lossy().into_owned();
            let Some(other) = name.strip_suffix(".journal") else { continue };
            if other == stem {
                continue;
            }
            let Some(l) = try_lock(&dir.join(format!("{other}.lock")))? else { continue };
            let (orphan, theirs) = Journal::open_file(dir, other, l)?;
            if !theirs.is_empty() {
                let deals: Vec<Deal> = theirs.into_iter().map(|(_, d)| d).collect();
                let ends = journal.append(&deals)?;
                tracing::info!(journal = %orphan.path.display(), deals = deals.len(), "adopted the journal of a process that is gone");
                pending.extend(ends.into_iter().zip(deals));
            }
            for f in [&orphan.path, &orphan.ckpt] {
                match std::fs::remove_file(f) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(f, e)),
                }
            }
            let _ = std::fs::remove_file(dir.join(format!("{other}.lock")));
        }
        Ok((journal, pending))
    }

    fn open_file(dir: &Path, stem: &str, lock: File) -> Result<(Journal, Vec<(u64, Deal)>)> {
        let path = dir.join(format!("{stem}.journal"));
        let ckpt = dir.join(format!("{stem}.checkpoint"));
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(|e| io(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| io(&path, e))?;
        let complete = bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0);
        if complete < bytes.len() {
            file.set_len(complete as u64).map_err(|e| io(&path, e))?;
            file.sync_data().map_err(|e| io(&path, e))?;
        }
        let flushed = match std::fs::read_to_string(&ckpt) {
            Ok(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| Error::corrupt(ckpt.display().to_string(), format!("bad checkpoint {s:?}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&ckpt, e)),
        };
        let flushed = flushed.min(complete as u64);
        let mut pending = Vec::new();
        let mut offset = flushed as usize;
        for (n, line) in bytes[flushed as usize..complete].split_inclusive(|b| *b == b'\n').enumerate() {
            offset += line.len();
            let deal: Deal = serde_json::from_slice(line).map_err(|e| {
                Error::corrupt(format!("{} (entry {} after the checkpoint)", path.display(), n + 1), e.to_string())
            })?;
            pending.push((offset as u64, deal));
        }
        file.seek(SeekFrom::End(0)).map_err(|e| io(&path, e))?;
        Ok((Journal { path, ckpt, file, len: complete as u64, flushed, _lock: lock }, pending))
    }

    /// Appends deals durably; returns each one's end offset.
    pub(crate) fn append(&mut self, deals: &[Deal]) -> Result<Vec<u64>> {
        let mut buf = Vec::with_capacity(deals.len() * 256);
        let mut ends = Vec::with_capacity(deals.len());
        for d in deals {
            serde_json::to_writer(&mut buf, d).map_err(|e| Error::invalid("deal", &d.id, e.to_string()))?;
            buf.push(b'\n');
            ends.push(self.len + buf.len() as u64);
        }
        let r = self.file.write_all(&buf).and_then(|_| self.file.sync_data());
        if let Err(e) = r {
            // Leave no partial line behind for the next append.
            let _ = self.file.set_len(self.len);
            return Err(io(&self.path, e));
        }
        self.len += buf.len() as u64;
        Ok(ends)
    }

    /// Everything up to `offset` is in ClickHouse.
    pub(crate) fn checkpoint(&mut self, offset: u64) -> Result<()> {
        let tmp = self.ckpt.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(offset.to_string().as_bytes())?;
            f.sync_data()?;
            std::fs::rename(&tmp, &self.ckpt)?;
            if let Some(dir) = self.ckpt.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| io(&self.ckpt, e))?;
        self.flushed = offset;
        if self.flushed == self.len && self.len > RESET_BYTES {
            // Fully flushed and large: start over (checkpoint first, so a
            // crash in between replays nothing).
            let zero = || -> std::io::Result<()> {
                let mut f = File::create(&tmp)?;
                f.write_all(b"0")?;
                f.sync_data()?;
                std::fs::rename(&tmp, &self.ckpt)
            };
            zero().map_err(|e| io(&self.ckpt, e))?;
            self.file.set_len(0).map_err(|e| io(&self.path, e))?;
            self.file.sync_data().map_err(|e| io(&self.path, e))?;
            self.file.seek(SeekFrom::Start(0)).map_err(|e| io(&self.path, e))?;
            self.len = 0;
            self.flushed = 0;
            return Ok(());
        }
        Ok(())
    }

    /// Bytes written and bytes flushed.
    pub(crate) fn state(&self) -> (u64, u64) {
        (self.len, self.flushed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqdata_core::{BookId, Code, DealKind};

    fn deal(i: u32) -> Deal {
        Deal {
            id: format!("j{i}"),
            book: BookId::new("55009728", "journal").unwrap(),
            time: chrono::NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(9, 30, 0).unwrap(),
            code: Code::parse("000001.SZ").unwrap(),
            name: String::new(),
            kind: DealKind::MarketBuy,
            remark: String::new(),
            price: 10.0,
            volume: 100,
            amount: 1000.0,
            strategy: String::new(),
        }
    }

    /// Two instances never write one file; a gone instance's unflushed deals
    /// are taken over by the next one to open, once.
    #[test]
    fn one_writer_per_file_and_orphans_are_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, _) = Journal::open(dir.path()).unwrap();
        let (mut b, _) = Journal::open(dir.path()).unwrap();
        assert!(a.path.ends_with("deals.journal"));
        assert_ne!(a.path, b.path, "the second instance gets a private journal");
        a.append(&[deal(1)]).unwrap();
        b.append(&[deal(2), deal(3)]).unwrap();
        let ends = b.append(&[deal(4)]).unwrap();
        b.checkpoint(ends[0] - 1 - serde_json::to_vec(&deal(4)).unwrap().len() as u64).unwrap();
        drop(b); // the instance is gone with deal 4 unflushed (2 and 3 flushed)
        let (_c, pending) = Journal::open(dir.path()).unwrap();
        let ids: Vec<String> = pending.iter().map(|(_, d)| d.id.clone()).collect();
        assert_eq!(ids, vec!["j4"], "exactly the gone instance's unflushed deal");
        // a's journal is still a's, untouched
        let (_d, pending) = Journal::open(dir.path()).unwrap();
        assert!(pending.is_empty(), "nothing adopted twice, nothing taken from a live writer");
        drop(a);
        let (_e, pending) = Journal::open(dir.path()).unwrap();
        let ids: Vec<String> = pending.iter().map(|(_, d)| d.id.clone()).collect();
        assert!(ids.contains(&"j1".to_string()), "the shared journal is replayed by whoever takes it next: {ids:?}");
    }
}

#[cfg(test)]
mod adoption {
    use super::*;

    /// A private journal left by another process (another pid) is adopted:
    /// its unflushed lines move into the adopter's journal and it is removed.
    #[test]
    fn a_gone_process_journal_is_adopted_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (_a, _) = Journal::open(dir.path()).unwrap(); // holds deals.journal
        let line = br#"{"id":"o1","book":{"account":"55009728","book":"journal"},"time":"2025-10-10T09:30:00","code":"000001.SZ","name":"","kind":"market_buy","remark":"","price":10.0,"volume":100,"amount":1000.0,"strategy":""}"#;
        let orphan = dir.path().join("deals-999999-0.journal");
        std::fs::write(&orphan, [&line[..], b"\n"].concat()).unwrap();
        let (b, pending) = Journal::open(dir.path()).unwrap();
        assert_eq!(pending.iter().map(|(_, d)| d.id.as_str()).collect::<Vec<_>>(), vec!["o1"]);
        assert!(!orphan.exists(), "the orphan is removed once adopted");
        let own = std::fs::read_to_string(&b.path).unwrap();
        assert!(own.contains("\"o1\""), "adopted durably into the adopter's journal");
    }
}
