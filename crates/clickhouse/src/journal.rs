//! The local append-only journal behind the deal inserter. A deal is
//! acknowledged once its line is fdatasync'd here; the flusher inserts
//! journaled deals into ClickHouse in batches and then advances a checkpoint.
//! After a crash, everything past the checkpoint is replayed (the flusher
//! skips ids ClickHouse already has, so a replay never duplicates).
//!
//! The journal itself is [`sqdata_core::raw::Journal`] with the stem
//! `deals`: one file per process under an exclusive lock, the journals of
//! processes that are gone (and the shared `deals.journal` of older
//! versions) adopted at open, a torn tail cut.

use std::path::Path;

use sqdata_core::raw;
use sqdata_core::{Deal, Result};

/// Past this size a fully flushed journal is truncated.
const RESET_BYTES: u64 = 1 << 20;

/// This store's deal journal.
#[derive(Debug)]
pub(crate) struct Journal(raw::Journal);

impl Journal {
    /// Claims a journal in `dir`, adopts the journals of processes that are
    /// gone and returns the deals past the checkpoint with their end offsets.
    pub(crate) fn open(dir: &Path) -> Result<(Journal, Vec<(u64, Deal)>)> {
        let j = raw::Journal::open(dir, "deals", RESET_BYTES)?;
        let pending = j.pending::<Deal>()?;
        Ok((Journal(j), pending))
    }

    /// Appends deals durably; returns each one's end offset.
    pub(crate) fn append(&mut self, deals: &[Deal]) -> Result<Vec<u64>> {
        self.0.append(deals)
    }

    /// Everything up to `offset` is in ClickHouse.
    pub(crate) fn checkpoint(&mut self, offset: u64) -> Result<()> {
        self.0.checkpoint(offset)
    }

    /// Bytes written and bytes flushed.
    pub(crate) fn state(&self) -> (u64, u64) {
        (self.0.len(), self.0.applied())
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
    /// are taken over by the next one to open, once; the shared journal of
    /// an older version is adopted too.
    #[test]
    fn one_writer_per_file_and_orphans_are_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, _) = Journal::open(dir.path()).unwrap();
        let (mut b, _) = Journal::open(dir.path()).unwrap();
        a.append(&[deal(1)]).unwrap();
        let ends = b.append(&[deal(2), deal(3), deal(4)]).unwrap();
        b.checkpoint(ends[1]).unwrap();
        drop(b); // the instance is gone with deal 4 unflushed (2 and 3 flushed)
        let (_c, pending) = Journal::open(dir.path()).unwrap();
        let ids: Vec<String> = pending.iter().map(|(_, d)| d.id.clone()).collect();
        assert_eq!(ids, vec!["j4"], "exactly the gone instance's unflushed deal");
        let (_d, pending) = Journal::open(dir.path()).unwrap();
        assert!(pending.is_empty(), "nothing adopted twice, nothing taken from a live writer");
        drop(a);
        let line = serde_json::to_vec(&deal(9)).unwrap();
        std::fs::write(dir.path().join("deals.journal"), [&line[..], b"\n"].concat()).unwrap();
        let (_e, pending) = Journal::open(dir.path()).unwrap();
        let mut ids: Vec<String> = pending.iter().map(|(_, d)| d.id.clone()).collect();
        ids.sort();
        assert_eq!(ids, vec!["j1", "j9"], "a's journal and the older shared one are replayed by whoever opens next");
    }
}
