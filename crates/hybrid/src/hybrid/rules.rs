//! The rules: reads and writes per stage and mode, read-after-write
//! verification, and the copy of one journal unit between the sides.

use std::future::Future;
use std::sync::atomic::Ordering;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use sqdata_core::{
    AssetRow, BarSeries, BarWriteMode, BookId, DateRange, Deal, DealQuery, DealStore, Domain, Error, MAX_PAGE_SIZE,
    Result, Stores, TimeRange,
};

use super::{Fut, Hybrid, deals_by_id, group_deals};
use crate::config::{Stage, Truth};
use crate::domain::{DomainState, Mode};
use crate::journal::Unit;
use crate::locks;

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

    /// A write of `domain` (for `book`; `None`: bars) touching `units`:
    /// `op` makes the call on one side's stores, once for the primary and
    /// once for the files. The stage is chosen here (it may adopt a new
    /// book); the rest runs to its end on a task of its own, so a caller
    /// that stops waiting (a dropped future, a timeout around the call)
    /// cannot cut the sequence between the primary and the files: the
    /// write completes, is compensated or is journaled as if it had waited.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        domain: Domain,
        book: Option<&BookId>,
        units: Vec<Unit>,
        op: impl Fn(&Stores) -> Fut<T>,
    ) -> Result<T> {
        self.ensure_prober();
        let stage = self.write_stage(domain, book).await?;
        let (p, s) = (op(&self.primary), op(&self.secondary));
        let book = book.cloned();
        match (self.me.upgrade(), tokio::runtime::Handle::try_current()) {
            (Some(me), Ok(rt)) => rt
                .spawn(async move { me.write_unit(domain, book, stage, units, p, s).await })
                .await
                .map_err(|e| Error::Backend {
                    backend: "hybrid",
                    message: format!("write task failed: {e}"),
                    retryable: false,
                    source: None,
                })?,
            // No runtime to spawn on (or the hybrid is being dropped): inline.
            _ => self.write_unit(domain, book, stage, units, p, s).await,
        }
    }

    /// Writes per stage and mode — the rule, for every write path:
    /// **"ok"** means the write is in the files and in the primary or in
    /// the journal; **"failed"** means nothing of it remains, or the
    /// journal records what the primary may hold. Journal units are
    /// state-based (replay copies the files' current state of what they
    /// name), so journaling a write that then fails is harmless.
    ///
    /// Every write that involves the primary holds the units' book locks
    /// (`crate::locks`) from before the primary to after the files (and
    /// any compensation), so another process's copy of the same book
    /// cannot interleave.
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
    /// - Held back by adoption safety (a book the servers do not hold
    ///   whole): the files, under the book's lock, after one more look at
    ///   the rollout file — `sqdata migrate` re-verifies each book it
    ///   adopted under the same lock, so a write that chose the files just
    ///   before the adoption is either seen by that check or sees the
    ///   adoption itself.
    async fn write_unit<T>(
        &self,
        domain: Domain,
        book: Option<BookId>,
        mut stage: Stage,
        units: Vec<Unit>,
        primary: Fut<T>,
        secondary: Fut<T>,
    ) -> Result<T> {
        let d = self.lane(domain);
        let _g = d.gate.read().await;
        let held_back = stage == Stage::Files && self.held_back(domain, book.as_ref());
        if stage == Stage::Files && !held_back {
            return secondary.await;
        }
        let _locks = self.locks.lock(locks::keys(domain, &units)).await?;
        if held_back {
            self.poll_rollout().await;
            stage = self.read_stage(domain, book.as_ref());
            if stage == Stage::Files {
                return secondary.await;
            }
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
                        match self.replay_held(d, &units).await {
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

    /// Copies every unit's state from the files to the primary (a
    /// compensation: the caller holds the units' locks).
    async fn replay_held(&self, d: &DomainState, units: &[Unit]) -> Result<()> {
        for u in units {
            self.bounded(d.name, self.copy_unit(d.domain, u, Towards::Primary)).await?;
        }
        Ok(())
    }

    /// As [`copy_unit`](Hybrid::copy_unit), under the unit's book locks
    /// (replay by recovery).
    pub(super) async fn copy_unit_locked(&self, domain: Domain, u: &Unit, to: Towards) -> Result<()> {
        let _locks = self.locks.lock(locks::keys(domain, std::slice::from_ref(u))).await?;
        self.copy_unit(domain, u, to).await
    }

    /// Read-after-write verification of a sample of writes (the caller
    /// holds the units' locks). A difference is counted and alerted, and
    /// repaired from `source_of_truth` — towards the files only by adding
    /// and updating (nothing is ever deleted from the files on a sample),
    /// and never for positions: a server that restarted empty would
    /// otherwise take the book out of the files. `sqdata verify --repair`
    /// (or recovery) sets such a book right.
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
        let to = match self.cfg.source_of_truth {
            Truth::Secondary => Towards::Primary,
            Truth::Primary => Towards::Files,
        };
        for u in units {
            match self.bounded(d.name, self.unit_differs(d.domain, u)).await {
                Ok(Some(diff)) => {
                    d.inconsistent(format!("after a write: {diff}"));
                    if to == Towards::Files && d.domain == Domain::Positions {
                        continue;
                    }
                    if self.bounded(d.name, self.copy_unit(d.domain, u, to)).await.is_ok() {
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

    /// Makes one unit's state on one side what it is on the other:
    /// state-based, so replaying a unit twice, or one whose write failed,
    /// converges and harms nothing. Towards the primary it is an exact copy
    /// (deleting what the files no longer hold); towards the files it only
    /// adds and updates (the rule: repairs of the files never delete
    /// without `--prune`, which only `verify` offers). No locks taken: see
    /// [`copy_unit_locked`](Hybrid::copy_unit_locked).
    pub(crate) async fn copy_unit(&self, domain: Domain, u: &Unit, to: Towards) -> Result<()> {
        let (from, into) = match to {
            Towards::Primary => (&self.secondary, &self.primary),
            Towards::Files => (&self.primary, &self.secondary),
        };
        let deletes = to == Towards::Primary;
        match u {
            Unit::Book { book } => copy_book(from, into, book, deletes).await,
            Unit::Deals { deals } => {
                for (book, ds) in group_deals(deals) {
                    let held = deals_by_id(&*from.deals, &book, &ds).await?;
                    let ids: Vec<String> = ds.iter().map(|d| d.id.clone()).collect();
                    sync_deals(&*into.deals, &book, &ids, held, deletes).await?;
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
                sync_deals(&*into.deals, book, ids, held, deletes).await
            }
            Unit::Asset { book, date } => sync_asset_days(from, into, book, std::slice::from_ref(date), deletes).await,
            Unit::AssetDays { book, dates } => sync_asset_days(from, into, book, dates, deletes).await,
            Unit::Series { key } => {
                let bars = from.bars.load_bars(key, TimeRange::all()).await?;
                match (bars.is_empty(), deletes) {
                    (true, true) => into.bars.delete_bars(key, TimeRange::all()).await.map(|_| ()),
                    (true, false) => Ok(()),
                    (false, true) => {
                        into.bars.save_bars(&BarSeries { key: *key, bars }, BarWriteMode::Replace).await.map(|_| ())
                    }
                    (false, false) => {
                        into.bars.save_bars(&BarSeries { key: *key, bars }, BarWriteMode::Upsert).await.map(|_| ())
                    }
                }
            }
            Unit::BookDeleted { book } => match domain {
                Domain::Positions => copy_book(from, into, book, deletes).await,
                Domain::Deals => {
                    let all = book_deals(&*from.deals, book).await?;
                    if deletes {
                        into.deals.delete_book(book).await?;
                    }
                    for chunk in all.chunks(MAX_PAGE_SIZE as usize) {
                        if deletes {
                            into.deals.record_batch(chunk).await?;
                        } else {
                            into.deals.replace_deals(book, chunk).await?;
                        }
                    }
                    Ok(())
                }
                Domain::Assets => {
                    let rows = from.assets.assets(book, DateRange::all()).await?;
                    if deletes {
                        into.assets.delete_book(book).await?;
                    }
                    if rows.is_empty() { Ok(()) } else { into.assets.upsert_assets(book, &rows).await }
                }
                _ => Ok(()),
            },
        }
    }
}

/// Which side a copy writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Towards {
    /// The primary becomes the files' state exactly.
    Primary,
    /// The files take the primary's records (added or updated, never deleted).
    Files,
}

/// A book's positions on `to` become `from`'s; without `deletes` the codes
/// only `to` holds stay (and an empty `from` changes nothing).
async fn copy_book(from: &Stores, to: &Stores, book: &BookId, deletes: bool) -> Result<()> {
    let mut snap = from.positions.snapshot(book).await?;
    if !deletes {
        let theirs = to.positions.snapshot(book).await?;
        for (code, e) in theirs.positions {
            snap.positions.entry(code).or_insert(e);
        }
        snap.inc_date = snap.inc_date.or(theirs.inc_date);
    }
    if snap.positions.is_empty() && snap.inc_date.is_none() {
        if deletes { to.positions.delete_book(book).await } else { Ok(()) }
    } else {
        to.positions.replace_book(book, &snap).await
    }
}

/// `ids` of `book` on `to` become `held` (the other side's versions):
/// replaced where held, deleted where not (with `deletes`).
async fn sync_deals(
    to: &dyn DealStore,
    book: &BookId,
    ids: &[String],
    held: BTreeMap<String, Deal>,
    deletes: bool,
) -> Result<()> {
    let gone: Vec<String> =
        if deletes { ids.iter().filter(|i| !held.contains_key(*i)).cloned().collect() } else { Vec::new() };
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

/// The equity rows of these days on `to` become `from`'s (days `from`
/// lacks deleted only with `deletes`).
async fn sync_asset_days(from: &Stores, to: &Stores, book: &BookId, dates: &[NaiveDate], deletes: bool) -> Result<()> {
    let (Some(lo), Some(hi)) = (dates.iter().min(), dates.iter().max()) else { return Ok(()) };
    let want: BTreeSet<NaiveDate> = dates.iter().copied().collect();
    let rows: Vec<AssetRow> = from
        .assets
        .assets(book, DateRange { from: Some(*lo), to: Some(*hi) })
        .await?
        .into_iter()
        .filter(|r| want.contains(&r.date))
        .collect();
    let gone: Vec<NaiveDate> = if deletes {
        want.iter().filter(|d| !rows.iter().any(|r| r.date == **d)).copied().collect()
    } else {
        Vec::new()
    };
    if !rows.is_empty() {
        to.assets.upsert_assets(book, &rows).await?;
    }
    if !gone.is_empty() {
        to.assets.delete_assets(book, &gone).await?;
    }
    Ok(())
}
