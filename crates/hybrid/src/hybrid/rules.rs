//! The rules: reads and writes per stage and mode, read-after-write
//! verification, and the copy of one journal unit between the sides.

use std::future::Future;
use std::sync::atomic::Ordering;

use sqdata_core::{BarSeries, BarWriteMode, DateRange, Domain, Result, TimeRange};

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

    /// Writes per stage and mode. Primary-led (writes, full): primary, then
    /// secondary; a secondary failure compensates the primary and is
    /// returned; a primary failure degrades the domain, the write goes to the
    /// secondary and is journaled for the primary. Files-led (shadow, reads):
    /// secondary, then the primary (journaled if it fails).
    pub(super) async fn write<T>(
        &self,
        d: &DomainState,
        stage: Stage,
        units: Vec<Unit>,
        primary: impl Future<Output = Result<T>>,
        secondary: impl Future<Output = Result<T>>,
        compensate: impl Future<Output = Result<()>>,
    ) -> Result<T> {
        self.ensure_prober();
        let _g = d.gate.read().await;
        if stage == Stage::Files {
            return secondary.await;
        }
        if !stage.primary_leads_writes() {
            let v = secondary.await?;
            if d.mode() == Mode::Healthy {
                match self.bounded(d.name, primary).await {
                    Ok(_) => d.primary_ok(),
                    Err(e) => {
                        d.primary_failed(&e, true);
                        d.journal(units).await?;
                    }
                }
            } else {
                d.journal(units).await?;
            }
            return Ok(v);
        }
        if d.mode() != Mode::Healthy {
            let v = secondary.await?;
            d.journal(units).await?;
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
                        let c = compensate.await;
                        d.compensated(c.is_ok(), c.err().map(|e| e.to_string()).unwrap_or_default());
                        Err(e)
                    }
                }
            }
            Err(e) if e.is_invalid_input() => Err(e),
            Err(e) => {
                d.primary_failed(&e, true);
                let v = secondary.await?;
                d.journal(units).await?;
                Ok(v)
            }
        }
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

    /// Copies one unit from the secondary to the primary (`to_primary`) or back.
    pub(crate) async fn copy_unit(&self, domain: Domain, u: &Unit, to_primary: bool) -> Result<()> {
        let (from, to) = if to_primary { (&self.secondary, &self.primary) } else { (&self.primary, &self.secondary) };
        match u {
            Unit::Book { book } => {
                let snap = from.positions.snapshot(book).await?;
                if snap.positions.is_empty() && snap.inc_date.is_none() {
                    to.positions.delete_book(book).await
                } else {
                    to.positions.replace_book(book, &snap).await
                }
            }
            Unit::Deals { deals } => to.deals.record_batch(deals).await.map(|_| ()),
            Unit::DealsDeleted { book, ids } => to.deals.delete_deals(book, ids).await.map(|_| ()),
            Unit::Asset { book, date } => {
                for r in from.assets.assets(book, DateRange { from: Some(*date), to: Some(*date) }).await? {
                    to.assets.upsert_asset(book, r).await?;
                }
                Ok(())
            }
            Unit::Series { key } => {
                let bars = from.bars.load_bars(key, TimeRange::all()).await?;
                if bars.is_empty() {
                    to.bars.delete_bars(key, TimeRange::all()).await.map(|_| ())
                } else {
                    to.bars.save_bars(&BarSeries { key: *key, bars }, BarWriteMode::Replace).await.map(|_| ())
                }
            }
            Unit::BookDeleted { book } => match domain {
                Domain::Positions => to.positions.delete_book(book).await,
                Domain::Deals => to.deals.delete_book(book).await.map(|_| ()),
                Domain::Assets => to.assets.delete_book(book).await,
                _ => Ok(()),
            },
        }
    }
}
