//! The write-ahead log of a book's position files: `<book>/.sqdata-positions.wal`.
//!
//! A durable position write costs one `fdatasync` of this log instead of a
//! synced temp file, a rename and a synced folder per changed file. The log
//! is one preallocated file (its blocks written once, so a sync flushes data
//! only: no size change, no filesystem journal commit) holding a header and
//! records appended after it. Each record is the book's *whole* state after a
//! write — the bytes of `positions.json`, `max_price.json` and `min_price.json`
//! (or their absence) — so the last record alone says what the files must be;
//! a write that reached the log but not the files (its process died in
//! between, so it was never acknowledged) is superseded by the next one.
//!
//! The files themselves are still replaced at once (readers, SilverQuant
//! included, see the new state immediately) but without syncs; a checkpoint
//! makes them durable (a sync of each file and of the folder) and starts a
//! new generation of the log, which forgets the records before it.
//!
//! Recovery: the records carry the boot id of the machine. A process that
//! died (even by SIGKILL) loses nothing the kernel already holds, so records
//! of the current boot need no replay. Records of an earlier boot mean the
//! machine went down with files perhaps not yet on disk: each file whose
//! bytes differ from the last record, and which no one rewrote since (its
//! mtime is older than the record), is rewritten from the record, synced.
//!
//! Every call happens under the book's folder lock ([`crate::fsio::DirLock`]):
//! processes share the log, each keeping where it believes the end is and
//! reading on from there when another process appended.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use sqdata_core::raw::fs::{sync_dir, temp_path};
use sqdata_core::{Error, Result};

use crate::failpoint;

/// The log's file name in a book folder (a dot file: SilverQuant never reads it).
pub const NAME: &str = ".sqdata-positions.wal";

const MAGIC: &[u8; 8] = b"SQDWAL01";
/// The header's slot: a whole page, so a header write never shares a page with records.
const HEADER_LEN: u64 = 4096;
const REC_MAGIC: u32 = 0x5351_5752;
/// magic u32, payload length u32, generation u64, seq u64, wall ns i64, boot id 16, checksum u64
const REC_HEAD: usize = 4 + 4 + 8 + 8 + 8 + 16 + 8;
/// The smallest and largest log a config may ask for.
pub const MIN_BYTES: u64 = 64 * 1024;
/// See [`MIN_BYTES`].
pub const MAX_BYTES: u64 = 1 << 30;

/// One record: the book's three files after a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its place in the log.
    pub seq: u64,
    /// When it was written (ns since the epoch).
    pub wall_ns: i64,
    /// The boot it was written in.
    pub boot: [u8; 16],
    /// `positions.json`, `max_price.json`, `min_price.json`: bytes, or `None` when absent.
    pub files: [Option<Vec<u8>>; 3],
}

/// An open log.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    capacity: u64,
    generation: u64,
    /// Offset after the last record of the generation, as far as this handle knows.
    end: u64,
    seq: u64,
}

impl Wal {
    /// Opens the log of `dir`, `None` when there is none.
    pub fn open_existing(dir: &Path) -> Result<Option<Wal>> {
        let path = dir.join(NAME);
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut wal = Wal { path, file, capacity: 0, generation: 0, end: HEADER_LEN, seq: 0 };
        wal.read_header()?;
        wal.scan()?;
        Ok(Some(wal))
    }

    /// Opens the log of `dir`, creating it (`capacity` bytes, written and
    /// synced once, then renamed into place) when there is none. A log
    /// starts at [`MIN_BYTES`] and grows as its records need.
    pub fn open_or_create(dir: &Path, capacity: u64) -> Result<Wal> {
        if let Some(w) = Wal::open_existing(dir)? {
            return Ok(w);
        }
        let path = dir.join(NAME);
        let tmp = temp_path(&path, "create");
        let capacity = capacity.clamp(MIN_BYTES, MAX_BYTES);
        let made = (|| -> io::Result<()> {
            let f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all_at(&header_bytes(1, capacity), 0)?;
            // Real zeros, not a hole or fallocate's unwritten extents: a later
            // sync then flushes data only.
            let zeros = vec![0u8; 1 << 20];
            let mut off = HEADER_LEN;
            while off < capacity {
                let n = (capacity - off).min(zeros.len() as u64) as usize;
                f.write_all_at(&zeros[..n], off)?;
                off += n as u64;
            }
            f.sync_all()
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(&tmp, e));
        }
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        sync_dir(dir)?;
        Wal::open_existing(dir)?.ok_or_else(|| Error::io(&path, io::Error::other("the log vanished after creation")))
    }

    /// Whether the log holds records of an earlier boot of the machine (a
    /// generation never spans boots: every process recovers, and so
    /// checkpoints, before its first write).
    pub fn from_earlier_boot(&self) -> Result<bool> {
        Ok(self.read_at(HEADER_LEN)?.is_some_and(|(r, _)| r.boot != boot_id()))
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the current generation holds no record.
    pub fn is_empty(&self) -> bool {
        self.end == HEADER_LEN
    }

    /// Whether the log this handle has open is still the one at its path:
    /// another process that deleted the book removed it (a handle on the
    /// removed file would acknowledge writes no recovery can read).
    pub fn is_current(&self) -> Result<bool> {
        let open = self.file.metadata().map_err(|e| Error::io(&self.path, e))?;
        match std::fs::metadata(&self.path) {
            Ok(m) => Ok(m.ino() == open.ino() && m.dev() == open.dev()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(&self.path, e)),
        }
    }

    /// Catches up with what other processes did since this handle last
    /// looked: a new generation (a checkpoint), or records appended.
    pub fn refresh(&mut self) -> Result<()> {
        let before = self.generation;
        self.read_header()?;
        if self.generation != before {
            self.end = HEADER_LEN;
        }
        self.scan()
    }

    /// Appends a record of the book's state and syncs it, growing the log
    /// (doubling, up to `limit` bytes) when it is full. `Ok(false)` when it
    /// does not fit even so (checkpoint, then retry). Call [`Wal::refresh`]
    /// first, under the folder lock.
    pub fn append(&mut self, files: [Option<&[u8]>; 3], limit: u64) -> Result<bool> {
        let rec = encode(self.generation, self.seq + 1, wall_ns(), boot_id(), files);
        let need = self.end + rec.len() as u64;
        if need > self.capacity {
            let limit = limit.clamp(MIN_BYTES, MAX_BYTES);
            if need > limit {
                return Ok(false);
            }
            self.grow((self.capacity * 2).max(need.next_multiple_of(HEADER_LEN)).min(limit))?;
        }
        if failpoint::fires("wal-torn-record") {
            // A crash in the middle of the write: half a record on disk.
            let _ = self.file.write_all_at(&rec[..rec.len() / 2], self.end);
            let _ = self.file.sync_data();
            failpoint::abort("wal-torn-record");
        }
        self.file
            .write_all_at(&rec, self.end)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| Error::io(&self.path, e))?;
        self.end += rec.len() as u64;
        self.seq += 1;
        Ok(true)
    }

    /// Extends the log with written zeros, synced, then records the new
    /// capacity in the header: a crash in between leaves a longer file with
    /// the old capacity, which is fine.
    fn grow(&mut self, capacity: u64) -> Result<()> {
        let zeros = vec![0u8; 1 << 20];
        let mut off = self.capacity;
        while off < capacity {
            let n = (capacity - off).min(zeros.len() as u64) as usize;
            self.file.write_all_at(&zeros[..n], off).map_err(|e| Error::io(&self.path, e))?;
            off += n as u64;
        }
        self.file.sync_data().map_err(|e| Error::io(&self.path, e))?;
        self.file
            .write_all_at(&header_bytes(self.generation, capacity), 0)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| Error::io(&self.path, e))?;
        self.capacity = capacity;
        Ok(())
    }

    /// The records of the current generation, oldest first.
    pub fn records(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut off = HEADER_LEN;
        while let Some((rec, len)) = self.read_at(off)? {
            out.push(rec);
            off += len;
        }
        Ok(out)
    }

    /// Starts a new generation: every record before it is forgotten. The
    /// caller has made the files durable first.
    pub fn reset(&mut self) -> Result<()> {
        let generation = self.generation + 1;
        self.file
            .write_all_at(&header_bytes(generation, self.capacity), 0)
            .and_then(|_| self.file.sync_data())
            .map_err(|e| Error::io(&self.path, e))?;
        self.generation = generation;
        self.end = HEADER_LEN;
        Ok(())
    }

    fn read_header(&mut self) -> Result<()> {
        let mut h = [0u8; 28];
        self.file.read_exact_at(&mut h, 0).map_err(|e| Error::io(&self.path, e))?;
        let len = self.file.metadata().map_err(|e| Error::io(&self.path, e))?.size();
        let generation = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
        let capacity = u64::from_le_bytes(h[16..24].try_into().unwrap_or_default());
        let sum = u32::from_le_bytes(h[24..28].try_into().unwrap_or_default());
        if &h[..8] != MAGIC || sum != (xxhash_rust::xxh3::xxh3_64(&h[..24]) as u32) || capacity > len {
            return Err(Error::Corrupt {
                location: self.path.display().to_string(),
                reason: "the write-ahead log's header is damaged (move the file away to start a new log)".into(),
                last_good: None,
            });
        }
        self.generation = generation;
        self.capacity = capacity;
        Ok(())
    }

    /// Moves `end` past every valid record of the generation from where it is.
    fn scan(&mut self) -> Result<()> {
        while let Some((rec, len)) = self.read_at(self.end)? {
            self.seq = self.seq.max(rec.seq);
            self.end += len;
        }
        Ok(())
    }

    /// The record at `off` if a whole one of this generation is there.
    fn read_at(&self, off: u64) -> Result<Option<(Record, u64)>> {
        if off + REC_HEAD as u64 > self.capacity {
            return Ok(None);
        }
        let mut head = [0u8; REC_HEAD];
        self.file.read_exact_at(&mut head, off).map_err(|e| Error::io(&self.path, e))?;
        let u32_at = |i: usize| u32::from_le_bytes(head[i..i + 4].try_into().unwrap_or_default());
        let u64_at = |i: usize| u64::from_le_bytes(head[i..i + 8].try_into().unwrap_or_default());
        let len = u32_at(4) as u64;
        if u32_at(0) != REC_MAGIC || u64_at(8) != self.generation || off + REC_HEAD as u64 + len > self.capacity {
            return Ok(None);
        }
        let mut body = vec![0u8; len as usize];
        self.file.read_exact_at(&mut body, off + REC_HEAD as u64).map_err(|e| Error::io(&self.path, e))?;
        if checksum(&head[..REC_HEAD - 8], &body) != u64_at(REC_HEAD - 8) {
            return Ok(None); // a torn tail: the write that made it never finished
        }
        let Some(files) = decode_files(&body) else { return Ok(None) };
        let mut boot = [0u8; 16];
        boot.copy_from_slice(&head[32..48]);
        let rec = Record { seq: u64_at(16), wall_ns: u64_at(24) as i64, boot, files };
        Ok(Some((rec, REC_HEAD as u64 + len)))
    }
}

fn header_bytes(generation: u64, capacity: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(28);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&generation.to_le_bytes());
    h.extend_from_slice(&capacity.to_le_bytes());
    let sum = xxhash_rust::xxh3::xxh3_64(&h) as u32;
    h.extend_from_slice(&sum.to_le_bytes());
    h
}

fn checksum(head: &[u8], body: &[u8]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(head);
    h.update(body);
    h.digest()
}

fn encode(generation: u64, seq: u64, wall: i64, boot: [u8; 16], files: [Option<&[u8]>; 3]) -> Vec<u8> {
    let body_len: usize = files.iter().map(|f| 5 + f.map_or(0, <[u8]>::len)).sum();
    let mut out = Vec::with_capacity(REC_HEAD + body_len);
    out.extend_from_slice(&REC_MAGIC.to_le_bytes());
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&wall.to_le_bytes());
    out.extend_from_slice(&boot);
    let head_end = out.len();
    out.extend_from_slice(&[0u8; 8]);
    for f in files {
        out.push(u8::from(f.is_some()));
        let b = f.unwrap_or_default();
        out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        out.extend_from_slice(b);
    }
    let sum = checksum(&out[..head_end], &out[REC_HEAD..]);
    out[head_end..REC_HEAD].copy_from_slice(&sum.to_le_bytes());
    out
}

fn decode_files(mut body: &[u8]) -> Option<[Option<Vec<u8>>; 3]> {
    let mut files: [Option<Vec<u8>>; 3] = Default::default();
    for f in &mut files {
        let (&present, rest) = body.split_first()?;
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let bytes = rest.get(4..4 + len)?;
        *f = (present == 1).then(|| bytes.to_vec());
        body = &rest[4 + len..];
    }
    body.is_empty().then_some(files)
}

fn wall_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// This boot of the machine (`/proc/sys/kernel/random/boot_id`; the tests
/// pretend a reboot through `SQDATA_TEST_BOOT_ID`). Where it cannot be read,
/// a random id per process: every process then checks the files against
/// the log, which is slower but never wrong.
pub fn boot_id() -> [u8; 16] {
    static BOOT: OnceLock<[u8; 16]> = OnceLock::new();
    *BOOT.get_or_init(|| {
        let text = std::env::var("SQDATA_TEST_BOOT_ID")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok());
        let mut id = [0u8; 16];
        match text {
            Some(t) => {
                let h = xxhash_rust::xxh3::xxh3_128(t.trim().as_bytes());
                id.copy_from_slice(&h.to_le_bytes());
            }
            None => {
                let h = xxhash_rust::xxh3::xxh3_128(format!("{}-{}", std::process::id(), wall_ns()).as_bytes());
                id.copy_from_slice(&h.to_le_bytes());
            }
        }
        id
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_generations_forget() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::open_or_create(dir.path(), MIN_BYTES).unwrap();
        assert!(w.is_empty());
        assert!(w.append([Some(b"{}"), None, Some(b"{\"a\": 1}")], MIN_BYTES).unwrap());
        assert!(w.append([Some(b"{\"x\": 2}"), Some(b""), None], MIN_BYTES).unwrap());
        let recs = w.records().unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].files, [Some(b"{\"x\": 2}".to_vec()), Some(Vec::new()), None]);
        assert_eq!(recs[0].boot, boot_id());
        // a second handle (another process) sees them and appends after them
        let mut other = Wal::open_existing(dir.path()).unwrap().unwrap();
        assert_eq!(other.records().unwrap(), recs);
        assert!(other.append([None, None, None], MIN_BYTES).unwrap());
        w.refresh().unwrap();
        assert_eq!(w.records().unwrap().len(), 3);
        // a checkpoint by one is seen by the other
        other.reset().unwrap();
        w.refresh().unwrap();
        assert!(w.is_empty() && w.records().unwrap().is_empty());
    }

    #[test]
    fn a_torn_tail_is_not_a_record_and_a_full_log_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Wal::open_or_create(dir.path(), MIN_BYTES).unwrap();
        assert!(w.append([Some(b"one"), None, None], MIN_BYTES).unwrap());
        let end = w.end;
        let rec = encode(w.generation, 9, 1, boot_id(), [Some(b"two"), None, Some(b"zz")]);
        w.file.write_all_at(&rec[..rec.len() - 2], end).unwrap();
        let again = Wal::open_existing(dir.path()).unwrap().unwrap();
        assert_eq!(again.records().unwrap().len(), 1);
        assert_eq!(again.end, end);
        let big = vec![b'x'; MIN_BYTES as usize];
        assert!(!w.append([Some(&big), None, None], MIN_BYTES).unwrap());
        // with room to grow, it grows (and another handle sees the new size)
        assert!(w.append([Some(&big), None, None], 4 * MIN_BYTES).unwrap());
        let again = Wal::open_existing(dir.path()).unwrap().unwrap();
        assert_eq!(again.capacity, 2 * MIN_BYTES);
        assert_eq!(again.records().unwrap().len(), 2);
    }

    #[test]
    fn a_damaged_header_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        drop(Wal::open_or_create(dir.path(), MIN_BYTES).unwrap());
        let p = dir.path().join(NAME);
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(b"X", 3).unwrap();
        let e = Wal::open_existing(dir.path()).unwrap_err().to_string();
        assert!(e.contains(NAME), "{e}");
    }
}
