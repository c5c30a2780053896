//! The local append-only journal behind the deal inserter. A deal is
//! acknowledged once its line is fdatasync'd here; the flusher inserts
//! journaled deals into ClickHouse in batches and then advances a checkpoint.
//! After a crash, everything past the checkpoint is replayed (the flusher
//! skips ids ClickHouse already has, so a replay never duplicates).
//!
//! The journal itself is [`sqdata_core::raw::Journal`] with the stem
//! `deals`: one file per process under an exclusive lock, the journals of
//! processes that are gone (and the shared `deals.journal` of older
//! versions, once no process has it open) adopted at open and every few
//! seconds by the flusher, a torn tail cut. Entries carry their byte span:
//! the flusher never checkpoints past one not yet in ClickHouse.

use std::path::Path;

use sqdata_core::raw;
use sqdata_core::{Deal, Result};

/// Past this size a fully flushed journal is truncated.
const RESET_BYTES: u64 = 1 << 20;

/// A journaled deal with its bytes in the journal (`start..end`).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) deal: Deal,
}

/// Entries read after byte `from` (each with its end offset) with their spans.
fn spans(from: u64, read: Vec<(u64, Deal)>) -> Vec<Entry> {
    let mut start = from;
    read.into_iter()
        .map(|(end, deal)| {
            let e = Entry { start, end, deal };
            start = end;
            e
        })
        .collect()
}

/// Called between a journal append and the push to the pending list (tests).
#[cfg(test)]
pub(crate) type AfterAppend = std::sync::Arc<dyn Fn(&[Entry]) + Send + Sync>;

/// This store's deal journal.
pub(crate) struct Journal {
    raw: raw::Journal,
    #[cfg(test)]
    pub(crate) after_append: Option<AfterAppend>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.raw.fmt(f)
    }
}

impl Journal {
    /// Claims a journal in `dir`, adopts the journals of processes that are
    /// gone and returns the deals past the checkpoint.
    pub(crate) fn open(dir: &Path) -> Result<(Journal, Vec<Entry>)> {
        let j = raw::Journal::open(dir, "deals", RESET_BYTES)?;
        let pending = spans(j.applied(), j.pending::<Deal>()?);
        Ok((
            Journal {
                raw: j,
                #[cfg(test)]
                after_append: None,
            },
            pending,
        ))
    }

    /// Appends deals durably; returns them with their spans.
    pub(crate) fn append(&mut self, deals: Vec<Deal>) -> Result<Vec<Entry>> {
        let from = self.raw.len();
        let ends = self.raw.append(&deals)?;
        Ok(spans(from, ends.into_iter().zip(deals).collect()))
    }

    /// Adopts the journals of processes that died since (an orphan that
    /// cannot be taken is logged and left); returns the deals taken over.
    pub(crate) fn adopt(&mut self) -> Result<Vec<Entry>> {
        let from = self.raw.len();
        if self.raw.adopt()?.entries == 0 {
            return Ok(Vec::new());
        }
        Ok(spans(from, self.raw.read_after::<Deal>(from)?))
    }

    /// Called by the store right after [`append`](Journal::append), before
    /// the deals become pending: a point tests pause at (a no-op otherwise).
    pub(crate) fn appended(&self, entries: &[Entry]) {
        #[cfg(test)]
        if let Some(hook) = &self.after_append {
            hook(entries);
        }
        let _ = entries;
    }

    /// Everything up to `offset` is in ClickHouse.
    pub(crate) fn checkpoint(&mut self, offset: u64) -> Result<()> {
        self.raw.checkpoint(offset)
    }

    /// Bytes written and bytes flushed.
    pub(crate) fn state(&self) -> (u64, u64) {
        (self.raw.len(), self.raw.applied())
    }

    /// The deals past the checkpoint (tests).
    #[cfg(test)]
    pub(crate) fn pending(&self) -> Result<Vec<Deal>> {
        Ok(self.raw.pending::<Deal>()?.into_iter().map(|(_, d)| d).collect())
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
        a.append(vec![deal(1)]).unwrap();
        let entries = b.append(vec![deal(2), deal(3), deal(4)]).unwrap();
        b.checkpoint(entries[1].end).unwrap();
        drop(b); // the instance is gone with deal 4 unflushed (2 and 3 flushed)
        let (_c, pending) = Journal::open(dir.path()).unwrap();
        let ids: Vec<String> = pending.iter().map(|e| e.deal.id.clone()).collect();
        assert_eq!(ids, vec!["j4"], "exactly the gone instance's unflushed deal");
        let (_d, pending) = Journal::open(dir.path()).unwrap();
        assert!(pending.is_empty(), "nothing adopted twice, nothing taken from a live writer");
        drop(a);
        let line = serde_json::to_vec(&deal(9)).unwrap();
        std::fs::write(dir.path().join("deals.journal"), [&line[..], b"\n"].concat()).unwrap();
        let (_e, pending) = Journal::open(dir.path()).unwrap();
        let mut ids: Vec<String> = pending.iter().map(|e| e.deal.id.clone()).collect();
        ids.sort();
        assert_eq!(ids, vec!["j1", "j9"], "a's journal and the older shared one are replayed by whoever opens next");
    }
}
