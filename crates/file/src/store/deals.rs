//! Deals: `deal_hist.csv` (GBK, appended) and its id sidecar, parsed
//! incrementally as they grow.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use sqdata_core::{
    AggregateQuery, BookId, Deal, DealAggregate, DealQuery, DealScope, DealStore, Error, Page, RecordOutcome, Result,
    async_trait,
};

use crate::deals::{self, DealEncoding, IdEntry, RawRow};
use crate::fsio::{self, DirLock, Stamp};

use super::{BACKEND, BookCell, FileStore, Inner};

impl Inner {
    // ---- deals -----------------------------------------------------------

    /// The parsed deal log of a book, brought up to date with the files.
    fn with_deals<R>(&self, cell: &BookCell, f: impl FnOnce(&DealCache) -> R) -> Result<R> {
        let mut guard = cell.deals.lock();
        let csv_path = cell.dir.join(deals::DEAL_HIST);
        let ids_path = cell.dir.join(deals::DEAL_IDS);
        let csv_stamp = fsio::stamp(&csv_path)?;
        let ids_stamp = fsio::stamp(&ids_path)?;
        let fresh = match guard.take() {
            Some(c) if c.csv_stamp == csv_stamp && c.ids_stamp == ids_stamp => c,
            Some(mut c)
                if c.ids_stamp == ids_stamp
                    && matches!((c.csv_stamp, csv_stamp), (Some(a), Some(b)) if a.grew_to(&b)) =>
            {
                c.read_tail(&cell.id, &csv_path, self.cfg.deal_encoding)?;
                c
            }
            _ => DealCache::load(&cell.id, &csv_path, &ids_path, self.cfg.deal_encoding)?,
        };
        let r = f(&fresh);
        *guard = Some(fresh);
        Ok(r)
    }

    fn record_book(&self, book: &BookId, batch: &[&Deal]) -> Result<RecordOutcome> {
        let cell = self.cell(book);
        let _w = cell.write.lock();
        let _flock = DirLock::acquire(&cell.dir)?;
        let csv_path = cell.dir.join(deals::DEAL_HIST);
        let ids_path = cell.dir.join(deals::DEAL_IDS);
        // Bring the cache up to date, then work out what is new.
        self.with_deals(&cell, |_| ())?;
        let mut guard = cell.deals.lock();
        let Some(cache) = guard.as_mut() else {
            return Err(Error::Backend {
                backend: BACKEND,
                message: "deal cache missing".into(),
                retryable: true,
                source: None,
            });
        };
        let mut outcome = RecordOutcome::default();
        let mut csv_text = String::new();
        let mut ids_text = String::new();
        let mut pending: Vec<(RawRow, u32, IdEntry)> = Vec::new();
        let mut adopted: Vec<(u64, u32, IdEntry)> = Vec::new();
        let mut counts = cache.counts.clone();
        let mut seen_in_batch = std::collections::HashSet::new();
        for d in batch {
            if cache.id_index.contains_key(&d.id) || !seen_in_batch.insert(d.id.as_str()) {
                outcome.duplicates += 1;
                continue;
            }
            let fields = deals::row_fields(d);
            let fp = deals::fingerprint(&fields);
            let entry = IdEntry { id: d.id.clone(), strategy: d.strategy.clone(), amount: d.amount };
            // A row with this content but no id of ours: an append whose
            // sidecar line was lost (a crash between the two). Adopt it.
            if let Some(occ) = cache.unclaimed(fp, &adopted) {
                ids_text.push_str(&deals::format_id_line(fp, occ, &entry));
                adopted.push((fp, occ, entry));
                outcome.duplicates += 1;
                continue;
            }
            let occ = {
                let c = counts.entry(fp).or_insert(0);
                let o = *c;
                *c += 1;
                o
            };
            csv_text.push_str(&deals::format_row(d));
            ids_text.push_str(&deals::format_id_line(fp, occ, &entry));
            let raw = RawRow {
                fp,
                time: d.time,
                code: d.code,
                name: d.name.clone(),
                kind: d.kind,
                remark: d.remark.clone(),
                price: d.price,
                volume: d.volume,
            };
            pending.push((raw, occ, entry));
            outcome.inserted += 1;
        }
        if csv_text.is_empty() && ids_text.is_empty() {
            return Ok(outcome);
        }
        let dur = self.cfg.durability;
        let mut new_csv_stamp = cache.csv_stamp;
        if !csv_text.is_empty() {
            let header =
                if cache.csv_stamp.is_none_or(|s| s.size() == 0) { deals::header_line() } else { String::new() };
            let bytes = deals::encode(&format!("{header}{csv_text}"), cache.encoding_for_write());
            let expected = cache.csv_stamp.map(|s| s.size()).unwrap_or(0) + bytes.len() as u64;
            let st = fsio::append(&csv_path, &bytes, dur)?;
            if st.size() != expected {
                // Someone else appended meanwhile: reload from scratch next time.
                *guard = None;
                if fsio::stamp(&ids_path)?.is_none() {
                    fsio::append(&ids_path, deals::IDS_HEADER.as_bytes(), dur)?;
                }
                fsio::append(&ids_path, ids_text.as_bytes(), dur)?;
                return Ok(outcome);
            }
            new_csv_stamp = Some(st);
            cache.consumed = expected as usize;
            if cache.encoding.is_none() {
                cache.encoding = Some(cache.encoding_for_write());
            }
        }
        let ids_prefix = if cache.ids_stamp.is_none() { deals::IDS_HEADER } else { "" };
        let ids_st = fsio::append(&ids_path, format!("{ids_prefix}{ids_text}").as_bytes(), dur)?;
        cache.csv_stamp = new_csv_stamp;
        cache.ids_stamp = Some(ids_st);
        if !adopted.is_empty() {
            for (fp, occ, entry) in adopted {
                cache.ids.insert((fp, occ), entry);
            }
            cache.rebuild_ids_for_adopted(&cell.id);
        }
        if !pending.is_empty() {
            cache.lines += pending.len() + usize::from(cache.lines == 0);
        }
        for (raw, occ, entry) in pending {
            cache.ids.insert((raw.fp, occ), entry);
            cache.push(&cell.id, raw, occ);
        }
        cache.counts = counts;
        cache.sort_if_needed();
        Ok(outcome)
    }

    /// Rewrites the book's deal log without these ids (both files, one
    /// directory fsync), keeping every other row as SilverQuant wrote it.
    fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        let drop: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        Ok(self.rewrite_deals(book, &drop, &[])?.0)
    }

    /// Stores `deals` replacing any stored deal with the same id: an append
    /// when none is stored, else one rewrite of both files (one atomic
    /// replace each, one directory fsync) with each replaced row in its
    /// place and the new ones after. Returns how many were replaced.
    fn replace_deals(&self, book: &BookId, deals: &[Deal]) -> Result<u64> {
        let cell = self.cell(book);
        let stored = self.with_deals(&cell, |c| deals.iter().any(|d| c.id_index.contains_key(&d.id)))?;
        if !stored {
            let batch: Vec<&Deal> = deals.iter().collect();
            self.record_book(book, &batch)?;
            return Ok(0);
        }
        Ok(self.rewrite_deals(book, &std::collections::HashSet::new(), deals)?.1)
    }

    /// The deal log rewritten: rows of `drop` left out, rows whose id is in
    /// `put` replaced in place, the rest of `put` appended. Returns (removed,
    /// replaced).
    fn rewrite_deals(&self, book: &BookId, drop: &std::collections::HashSet<&str>, put: &[Deal]) -> Result<(u64, u64)> {
        let cell = self.cell(book);
        let _w = cell.write.lock();
        let csv_path = cell.dir.join(deals::DEAL_HIST);
        if put.is_empty() && (drop.is_empty() || !csv_path.exists()) {
            return Ok((0, 0));
        }
        let _flock = DirLock::acquire(&cell.dir)?;
        let by_id: HashMap<&str, &Deal> = put.iter().map(|d| (d.id.as_str(), d)).collect();
        let rebuilt = self.with_deals(&cell, |c| {
            let mut rows: Vec<&Deal> = Vec::with_capacity(c.deals.len() + put.len());
            let (mut removed, mut replaced) = (0u64, 0u64);
            let mut placed = std::collections::HashSet::new();
            for d in &c.deals {
                if drop.contains(d.id.as_str()) {
                    removed += 1;
                } else if let Some(n) = by_id.get(d.id.as_str()) {
                    rows.push(n);
                    placed.insert(d.id.as_str());
                    replaced += 1;
                } else {
                    rows.push(d);
                }
            }
            rows.extend(put.iter().filter(|d| !placed.contains(d.id.as_str())));
            let mut csv = c.header_line();
            let mut side = String::from(deals::IDS_HEADER);
            let mut counts: HashMap<u64, u32> = HashMap::new();
            for d in rows {
                let fp = deals::fingerprint(&deals::row_fields(d));
                let occ = counts.entry(fp).or_insert(0);
                csv.push_str(&deals::format_row(d));
                let entry = IdEntry { id: d.id.clone(), strategy: d.strategy.clone(), amount: d.amount };
                side.push_str(&deals::format_id_line(fp, *occ, &entry));
                *occ += 1;
            }
            (removed, replaced, csv, side, c.encoding_for_write())
        })?;
        let (removed, replaced, csv, side, enc) = rebuilt;
        if removed == 0 && put.is_empty() {
            return Ok((0, 0));
        }
        let csv = deals::encode(&csv, enc);
        let ids_path = cell.dir.join(deals::DEAL_IDS);
        fsio::replace_many(&[(&csv_path, &csv), (&ids_path, side.as_bytes())], self.cfg.durability, true)?;
        *cell.deals.lock() = None;
        Ok((removed, replaced))
    }

    fn deal_cells(&self, scope: &DealScope) -> Result<Vec<Arc<BookCell>>> {
        Ok(match scope {
            DealScope::Book(b) => vec![self.cell(b)],
            DealScope::Account(a) => self
                .books_with(deals::DEAL_HIST)?
                .into_iter()
                .filter(|b| &b.account == a)
                .map(|b| self.cell(&b))
                .collect(),
        })
    }
}

#[derive(Debug, Default)]
pub(super) struct DealCache {
    /// The file's header line as it is (its line ending kept on a rewrite).
    header: Option<String>,
    csv_stamp: Option<Stamp>,
    ids_stamp: Option<Stamp>,
    /// Encoding of the existing file (None while there is no file).
    encoding: Option<DealEncoding>,
    configured: DealEncoding,
    /// Bytes of the CSV parsed so far (complete lines only).
    consumed: usize,
    /// Lines parsed so far (for error messages).
    lines: usize,
    rows: Vec<RawRow>,
    occ: Vec<u32>,
    counts: HashMap<u64, u32>,
    ids: HashMap<(u64, u32), IdEntry>,
    deals: Vec<Deal>,
    id_index: HashMap<String, u32>,
    /// Indices into `deals`, sorted by (time, id).
    order: Vec<u32>,
    sorted_upto: usize,
}

impl DealCache {
    fn load(book: &BookId, csv_path: &Path, ids_path: &Path, configured: DealEncoding) -> Result<DealCache> {
        let mut c = DealCache { configured, ..Default::default() };
        if let Some((bytes, st)) = fsio::read_stable(ids_path)? {
            let text = String::from_utf8(bytes)
                .map_err(|e| Error::corrupt(ids_path.display().to_string(), format!("not UTF-8: {e}")))?;
            c.ids = deals::parse_ids(ids_path, &text)?;
            c.ids_stamp = Some(st);
        }
        if let Some((bytes, st)) = fsio::read_stable(csv_path)? {
            let enc = deals::detect(&bytes, configured);
            let text = deals::decode(csv_path, &bytes, enc)?;
            let (rows, _) = deals::parse_rows(csv_path, &text, true, 1)?;
            c.header = text.find('\n').map(|i| text[..=i].to_owned());
            c.encoding = Some(enc);
            c.consumed = sqdata_core::raw::fs::complete_lines(&bytes);
            c.lines = 1 + rows.len();
            c.csv_stamp = Some(st);
            for r in rows {
                let occ = {
                    let e = c.counts.entry(r.fp).or_insert(0);
                    let o = *e;
                    *e += 1;
                    o
                };
                c.push(book, r, occ);
            }
        }
        c.sort_if_needed();
        Ok(c)
    }

    fn read_tail(&mut self, book: &BookId, csv_path: &Path, _configured: DealEncoding) -> Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(csv_path).map_err(|e| Error::io(csv_path, e))?;
        f.seek(SeekFrom::Start(self.consumed as u64)).map_err(|e| Error::io(csv_path, e))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|e| Error::io(csv_path, e))?;
        let st = fsio::stamp(csv_path)?;
        let enc = self.encoding.unwrap_or_else(|| deals::detect(&bytes, self.configured));
        let text = deals::decode(csv_path, &bytes, enc)?;
        let (rows, _) = deals::parse_rows(csv_path, &text, false, self.lines + 1)?;
        self.consumed += sqdata_core::raw::fs::complete_lines(&bytes);
        self.lines += rows.len();
        self.csv_stamp = st;
        for r in rows {
            let occ = {
                let e = self.counts.entry(r.fp).or_insert(0);
                let o = *e;
                *e += 1;
                o
            };
            self.push(book, r, occ);
        }
        self.sort_if_needed();
        Ok(())
    }

    /// The header line for a rewrite: the file's own, else SilverQuant's.
    fn header_line(&self) -> String {
        self.header.clone().unwrap_or_else(deals::header_line)
    }

    fn encoding_for_write(&self) -> DealEncoding {
        match self.encoding.unwrap_or(self.configured) {
            DealEncoding::Auto => DealEncoding::Gbk,
            e => e,
        }
    }

    fn push(&mut self, book: &BookId, r: RawRow, occ: u32) {
        let d = deals::to_deal(book, &r, occ, &self.ids);
        let idx = self.deals.len() as u32;
        self.id_index.insert(d.id.clone(), idx);
        self.deals.push(d);
        self.rows.push(r);
        self.occ.push(occ);
        self.order.push(idx);
    }

    /// A row occurrence with this fingerprint that has no sidecar id yet.
    fn unclaimed(&self, fp: u64, adopted: &[(u64, u32, IdEntry)]) -> Option<u32> {
        let n = *self.counts.get(&fp)?;
        (0..n).find(|o| !self.ids.contains_key(&(fp, *o)) && !adopted.iter().any(|(f, oo, _)| *f == fp && oo == o))
    }

    /// Re-derives deals whose sidecar entry was just added (adopted rows).
    fn rebuild_ids_for_adopted(&mut self, book: &BookId) {
        for i in 0..self.deals.len() {
            let key = (self.rows[i].fp, self.occ[i]);
            if let Some(e) = self.ids.get(&key)
                && self.deals[i].id != e.id
            {
                self.id_index.remove(&self.deals[i].id);
                self.deals[i] = deals::to_deal(book, &self.rows[i], self.occ[i], &self.ids);
                self.id_index.insert(e.id.clone(), i as u32);
            }
        }
        self.sorted_upto = 0;
    }

    fn sort_if_needed(&mut self) {
        let deals = &self.deals;
        let key = |i: &u32| (deals[*i as usize].time, deals[*i as usize].id.as_str());
        let tail_sorted =
            self.order.windows(2).skip(self.sorted_upto.saturating_sub(1)).all(|w| key(&w[0]) <= key(&w[1]));
        if !tail_sorted || self.sorted_upto == 0 {
            self.order.sort_by(|a, b| key(a).cmp(&key(b)));
        }
        self.sorted_upto = self.order.len();
    }

    /// Deals in (time, id) order within a day range.
    fn in_range(&self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> &[u32] {
        let day = |i: &u32| self.deals[*i as usize].time.date();
        let lo = match from {
            Some(f) => self.order.partition_point(|i| day(i) < f),
            None => 0,
        };
        let hi = match to {
            Some(t) => self.order.partition_point(|i| day(i) <= t),
            None => self.order.len(),
        };
        &self.order[lo..hi.max(lo)]
    }
}

// ---- trait impls ----------------------------------------------------------

impl FileStore {
    /// A deal's checks beyond its own: the log's encoding must hold its text.
    fn check_deal(&self, d: &Deal) -> Result<()> {
        d.validate()?;
        if self.inner.cfg.deal_encoding != DealEncoding::Utf8 {
            // SilverQuant's daily report reads deal_hist.csv as GBK.
            for (field, text) in [("name", &d.name), ("remark", &d.remark)] {
                if encoding_rs::GBK.encode(text).2 {
                    return Err(Error::invalid(
                        field,
                        text,
                        "has characters GBK cannot encode (deal_hist.csv is GBK; set file.deal_encoding = \"utf8\" to allow them)",
                    ));
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl DealStore for FileStore {
    async fn record_batch(&self, batch: &[Deal]) -> Result<RecordOutcome> {
        for d in batch {
            self.check_deal(d)?;
        }
        let batch = batch.to_vec();
        self.blocking(move |i| {
            let mut by_book: BTreeMap<&BookId, Vec<&Deal>> = BTreeMap::new();
            for d in &batch {
                by_book.entry(&d.book).or_default().push(d);
            }
            let mut total = RecordOutcome::default();
            for (book, ds) in by_book {
                let o = i.record_book(book, &ds)?;
                total.inserted += o.inserted;
                total.duplicates += o.duplicates;
            }
            Ok(total)
        })
        .await
    }

    async fn query(&self, q: &DealQuery) -> Result<Page<Deal>> {
        q.validate()?;
        let q = q.clone();
        self.blocking(move |i| {
            let cells = i.deal_cells(&q.scope)?;
            if cells.len() == 1 {
                return i.with_deals(&cells[0], |c| {
                    sqdata_core::page_of(&q, c.in_range(q.from, q.to).iter().map(|ix| &c.deals[*ix as usize]))
                });
            }
            let mut all: Vec<Deal> = Vec::new();
            for cell in &cells {
                i.with_deals(cell, |c| {
                    all.extend(
                        c.in_range(q.from, q.to)
                            .iter()
                            .map(|ix| &c.deals[*ix as usize])
                            .filter(|d| q.matches(d))
                            .cloned(),
                    )
                })?;
            }
            sqdata_core::sort_deals(&mut all);
            Ok(sqdata_core::page_of(&q, all.iter()))
        })
        .await
    }

    async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        sqdata_core::validate::ordered(q.from, q.to)?;
        let q = q.clone();
        self.blocking(move |i| {
            let cells = i.deal_cells(&DealScope::Account(q.account.clone()))?;
            let mut out: BTreeMap<String, DealAggregate> = BTreeMap::new();
            for cell in &cells {
                let part = i.with_deals(cell, |c| {
                    sqdata_core::aggregate(&q, c.in_range(q.from, q.to).iter().map(|ix| &c.deals[*ix as usize]))
                })?;
                for a in part {
                    let e = out.entry(a.period.clone()).or_insert_with(|| DealAggregate::empty(a.period.clone()));
                    e.count += a.count;
                    e.buy_count += a.buy_count;
                    e.sell_count += a.sell_count;
                    e.buy_volume += a.buy_volume;
                    e.sell_volume += a.sell_volume;
                    e.buy_amount += a.buy_amount;
                    e.sell_amount += a.sell_amount;
                }
            }
            Ok(out.into_values().collect())
        })
        .await
    }

    async fn delete_book(&self, book: &BookId) -> Result<u64> {
        let book = book.clone();
        self.blocking(move |i| {
            let cell = i.cell(&book);
            let n = if cell.dir.join(deals::DEAL_HIST).exists() {
                i.with_deals(&cell, |c| c.deals.len() as u64)?
            } else {
                0
            };
            i.remove_files(&book, &[deals::DEAL_HIST, deals::DEAL_IDS])?;
            Ok(n)
        })
        .await
    }

    async fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        let (book, ids) = (book.clone(), ids.to_vec());
        self.blocking(move |i| i.delete_deals(&book, &ids)).await
    }

    async fn replace_deals(&self, book: &BookId, deals: &[Deal]) -> Result<u64> {
        sqdata_core::validate::deals_of_book(book, deals)?;
        for d in deals {
            self.check_deal(d)?;
        }
        if deals.is_empty() {
            return Ok(0);
        }
        let (book, deals) = (book.clone(), deals.to_vec());
        self.blocking(move |i| i.replace_deals(&book, &deals)).await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.blocking(|i| i.books_with(deals::DEAL_HIST)).await
    }
}
