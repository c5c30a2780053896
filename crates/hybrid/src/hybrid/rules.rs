//! The rules: reads and writes per stage and mode, read-after-write
//! verification, and the copy of one journal unit between the sides.

use std::future::Future;
use std::sync::atomic::Ordering;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use sqdata_core::{
    AssetRow, BarSeries, BarWriteMode, BookId, DateRange, Deal, DealQuery, DealStore, Domain, MAX_PAGE_SIZE, Result,
    Stores, TimeRange,
};

use super::{Hybrid, deals_by_id, group_deals};
use crate::config::{Stage, Truth};
use crate::domain::{DomainState, Mode};
use crate::journal::Unit;

impl Hybrid {
    /// Reads per stage and mode: the primary when it serves (falling back to
    /// the secondary on an error — never on "not found"), the secondary
    /// otherwise; in shadow stage both, counting differences.
    pub(super) async fn read<T: PartialEq>(
        &self,
        d: &DomainState,
        stage: Stage,
        primary: impl Future<Output = Result<T>>,
        secondary: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.ensure_prober();
        if stage == Stage::Files {
            return secondary.await;
        }
        if stage == Stage::Shadow {
            let s = secondary.await?;
            if d.mode() == Mode::Healthy {
                match self.bounded(d.name, primary).await {
                    Ok(p) if p != s => {
                        metrics::counter!("sqdata_hybrid_shadow_mismatches_total", "domain" => d.name).increment(1)
                    }
                    Ok(_) => d.primary_ok(),
                    Err(e) if !e.is_invalid_input() => d.primary_failed(&e, false),
                    Err(_) => {}
                }
            }
            return Ok(s);
        }
        if d.mode() != Mode::Healthy {
            d.fallback();
            return secondary.await;
        }
        match self.bounded(d.name, primary).await {
            Ok(v) => {
                d.primary_ok();
                Ok(v)
            }
            Err(e) if e.is_invalid_input() => Err(e),
            Err(e) => {
                d.primary_failed(&e, d.volatile);
                d.fallback();
                secondary.await
            }
        }
    }

    /// Writes per stage and mode — the rule, for every write path:
    /// **"ok"** means the write is in the files and in the primary or in
    /// the journal; **"failed"** means nothing of it remains, or the
    /// journal records what the primary may hold. Journal units are
    /// state-based (replay copies the files' current state of what they
    /// name), so journaling a write that then fails is harmless.
    ///
    /// - Primary-led (writes, full), healthy: primary, then files. Files
    ///   refuse: the primary is compensated (the units copied back from the
    ///   files); a compensation that fails is journaled.
    /// - Primary-led, the primary fails or times out (it may have applied
    ///   the write): degraded; the units are journaled *first*, then the
    ///   files answer.
    /// - Degraded: journal first, then the files — a journal that cannot be
    ///   written fails the call before anything is stored.
    /// - Files-led (shadow, reads): files, then the primary; a primary
    ///   failure is journaled (kept in memory if the journal itself fails,
    ///   so this process's recovery still replays it).
    pub(super) async fn write<T>(
        &self,
        d: &DomainState,
        stage: Stage,
        units: Vec<Unit>,
        primary: impl Future<Output = Result<T>>,
        secondary: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.ensure_prober();
        let _g = d.gate.read().await;
        if stage == Stage::Files {
            return secondary.await;
        }
        if d.mode() != Mode::Healthy {
            d.journal(units).await?;
            return secondary.await;
        }
        if !stage.primary_leads_writes() {
            let v = secondary.await?;
            match self.bounded(d.name, primary).await {
                Ok(_) => d.primary_ok(),
                Err(e) => {
                    d.primary_failed(&e, true);
                    // The files (which serve in this stage) took the write:
                    // "ok" stands; the primary catches up from the journal.
                    let _ = d.journal_or_remember(units).await;
                }
            }
            return Ok(v);
        }
        match self.bounded(d.name, primary).await {
            Ok(v) => {
                d.primary_ok();
                match secondary.await {
                    Ok(_) => {
                        self.maybe_verify(d, &units).await;
                        Ok(v)
                    }
                    Err(e) => {
                        d.dual_write_failure();
                        match self.replay(d, &units).await {
                            Ok(()) => d.compensated(true, String::new()),
                            Err(c) => {
                                d.compensated(false, c.to_string());
                                d.primary_failed(&c, true);
                                let _ = d.journal_or_remember(units).await;
                            }
                        }
                        Err(e)
                    }
                }
            }
            Err(e) if e.is_invalid_input() => Err(e),
            Err(e) => {
                d.primary_failed(&e, true);
                d.journal_or_remember(units).await?;
                secondary.await
            }
        }
    }

    /// Copies every unit's state from the files to the primary (replay and
    /// compensation are the same thing).
    pub(super) async fn replay(&self, d: &DomainState, units: &[Unit]) -> Result<()> {
        for u in units {
            self.copy_unit(d.domain, u, true).await?;
        }
        Ok(())
    }

    /// Read-after-write verification of a sample of writes.
    async fn maybe_verify(&self, d: &DomainState, units: &[Unit]) {
        let rate = self.cfg.verify_sample_rate;
        if rate <= 0.0 {
            return;
        }
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        let every = (1.0 / rate).round().max(1.0) as u64;
        if !n.is_multiple_of(every) {
            return;
        }
        for u in units {
            match self.unit_differs(d.domain, u).await {
                Ok(Some(diff)) => {
                    d.inconsistent(format!("after a write: {diff}"));
                    let to_primary = self.cfg.source_of_truth == Truth::Secondary;
                    if self.copy_unit(d.domain, u, to_primary).await.is_ok() {
                        d.repaired();
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, domain = d.name, "read-after-write verification failed"),
            }
        }
    }

    /// Whether a unit differs between the stores (a description if so).
    async fn unit_differs(&self, domain: Domain, u: &Unit) -> Result<Option<String>> {
        let (p, s) = (&self.primary, &self.secondary);
        Ok(match u {
            Unit::Book { book } if domain == Domain::Positions => {
                let (a, b) = (p.positions.snapshot(book).await?, s.positions.snapshot(book).await?);
                (a != b).then(|| format!("positions of {book} differ"))
            }
            Unit::Asset { book, date } => {
                let r = DateRange { from: Some(*date), to: Some(*date) };
                let (a, b) = (p.assets.assets(book, r).await?, s.assets.assets(book, r).await?);
                (a != b).then(|| format!("asset of {book} on {date} differs: {a:?} vs {b:?}"))
            }
            Unit::Series { key } => {
                let (a, b) =
                    (p.bars.load_bars(key, TimeRange::all()).await?, s.bars.load_bars(key, TimeRange::all()).await?);
                (a != b).then(|| format!("bars of {key} differ ({} vs {})", a.len(), b.len()))
            }
            Unit::Deals { deals } => {
                let mut diff = None;
                for (book, ds) in group_deals(deals) {
                    let (a, b) = (deals_by_id(&*p.deals, &book, &ds).await?, deals_by_id(&*s.deals, &book, &ds).await?);
                    if a != b {
                        diff = Some(format!("deals of {book} differ"));
                    }
                }
                diff
            }
            _ => None,
        })
    }

    /// Makes one unit's state on one side (the primary when `to_primary`)
    /// what it is on the other: state-based, so replaying a unit twice, or
    /// one whose write failed, converges and harms nothing.
    pub(crate) async fn copy_unit(&self, domain: Domain, u: &Unit, to_primary: bool) -> Result<()> {
        let (from, to) = if to_primary { (&self.secondary, &self.primary) } else { (&self.primary, &self.secondary) };
        match u {
            Unit::Book { book } => copy_book(from, to, book).await,
            Unit::Deals { deals } => {
                for (book, ds) in group_deals(deals) {
                    let held = deals_by_id(&*from.deals, &book, &ds).await?;
                    let ids: Vec<String> = ds.iter().map(|d| d.id.clone()).collect();
                    sync_deals(&*to.deals, &book, &ids, held).await?;
                }
                Ok(())
            }
            Unit::DealsDeleted { book, ids } => {
                let want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
                let held: BTreeMap<String, Deal> = book_deals(&*from.deals, book)
                    .await?
                    .into_iter()
                    .filter(|d| want.contains(d.id.as_str()))
                    .map(|d| (d.id.clone(), d))
                    .collect();
                sync_deals(&*to.deals, book, ids, held).await
            }
            Unit::Asset { book, date } => sync_asset_days(from, to, book, std::slice::from_ref(date)).await,
            Unit::AssetDays { book, dates } => sync_asset_days(from, to, book, dates).await,
            Unit::Series { key } => {
                let bars = from.bars.load_bars(key, TimeRange::all()).await?;
                if bars.is_empty() {
                    to.bars.delete_bars(key, TimeRange::all()).await.map(|_| ())
                } else {
                    to.bars.save_bars(&BarSeries { key: *key, bars }, BarWriteMode::Replace).await.map(|_| ())
                }
            }
            Unit::BookDeleted { book } => match domain {
                Domain::Positions => copy_book(from, to, book).await,
                Domain::Deals => {
                    let all = book_deals(&*from.deals, book).await?;
                    to.deals.delete_book(book).await?;
                    for chunk in all.chunks(MAX_PAGE_SIZE as usize) {
                        to.deals.record_batch(chunk).await?;
                    }
                    Ok(())
                }
                Domain::Assets => {
                    let rows = from.assets.assets(book, DateRange::all()).await?;
                    to.assets.delete_book(book).await?;
                    to.assets.upsert_assets(book, &rows).await
                }
                _ => Ok(()),
            },
        }
    }
}

async fn copy_book(from: &Stores, to: &Stores, book: &BookId) -> Result<()> {
    let snap = from.positions.snapshot(book).await?;
    if snap.positions.is_empty() && snap.inc_date.is_none() {
        to.positions.delete_book(book).await
    } else {
        to.positions.replace_book(book, &snap).await
    }
}

/// `ids` of `book` on `to` become `held` (the other side's versions):
/// replaced where held, deleted where not.
async fn sync_deals(to: &dyn DealStore, book: &BookId, ids: &[String], held: BTreeMap<String, Deal>) -> Result<()> {
    let gone: Vec<String> = ids.iter().filter(|i| !held.contains_key(*i)).cloned().collect();
    if !held.is_empty() {
        to.replace_deals(book, &held.into_values().collect::<Vec<_>>()).await?;
    }
    if !gone.is_empty() {
        to.delete_deals(book, &gone).await?;
    }
    Ok(())
}

/// Every deal of a book on one side.
pub(super) async fn book_deals(s: &dyn DealStore, book: &BookId) -> Result<Vec<Deal>> {
    let mut q = DealQuery { page_size: MAX_PAGE_SIZE, ..DealQuery::book(book.clone()) };
    let mut out = Vec::new();
    loop {
        let p = s.query(&q).await?;
        let n = p.data.len();
        out.extend(p.data);
        if n < MAX_PAGE_SIZE as usize {
            return Ok(out);
        }
        q.page += 1;
    }
}

/// The equity rows of these days on `to` become `from`'s.
async fn sync_asset_days(from: &Stores, to: &Stores, book: &BookId, dates: &[NaiveDate]) -> Result<()> {
    let (Some(lo), Some(hi)) = (dates.iter().min(), dates.iter().max()) else { return Ok(()) };
    let want: BTreeSet<NaiveDate> = dates.iter().copied().collect();
    let rows: Vec<AssetRow> = from
        .assets
        .assets(book, DateRange { from: Some(*lo), to: Some(*hi) })
        .await?
        .into_iter()
        .filter(|r| want.contains(&r.date))
        .collect();
    let gone: Vec<NaiveDate> = want.iter().filter(|d| !rows.iter().any(|r| r.date == **d)).copied().collect();
    if !rows.is_empty() {
        to.assets.upsert_assets(book, &rows).await?;
    }
    if !gone.is_empty() {
        to.assets.delete_assets(book, &gone).await?;
    }
    Ok(())
}
