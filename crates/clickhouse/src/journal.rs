//! The local append-only journal behind the deal inserter. A deal is
//! acknowledged once its line is fdatasync'd here; the flusher inserts
//! journaled deals into ClickHouse in batches and then advances a checkpoint.
//! After a crash, everything past the checkpoint is replayed (the flusher
//! skips ids ClickHouse already has, so a replay never duplicates).

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
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::io(path, e)
}

impl Journal {
    /// Opens (creating) `<dir>/deals.journal`, cuts a torn last line (it was
    /// never acknowledged) and returns the deals past the checkpoint with
    /// their end offsets.
    pub(crate) fn open(dir: &Path) -> Result<(Journal, Vec<(u64, Deal)>)> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let path = dir.join("deals.journal");
        let ckpt = dir.join("deals.checkpoint");
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
        Ok((Journal { path, ckpt, file, len: complete as u64, flushed }, pending))
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
