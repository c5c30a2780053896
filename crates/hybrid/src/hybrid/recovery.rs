//! The way back from degraded: the prober, the adoption of journals left by
//! processes that died, and the replay that brings a primary up to date
//! before it serves again.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sqdata_core::{BarKey, BookId, Code, DateRange, DealQuery, Domain, Error, Result, TimeRange, layer};

use super::Hybrid;
use crate::config::Truth;
use crate::domain::{DomainState, Mode};
use crate::journal::Unit;
use crate::verify::{self, VerifyOptions};

fn probe_book() -> BookId {
    BookId::new("sqdata", "probe").unwrap_or_else(|_| unreachable!("a valid constant"))
}

fn probe_key() -> BarKey {
    BarKey::new(
        Code::new("000001", sqdata_core::Market::SZ).unwrap_or_else(|_| unreachable!("a valid constant")),
        sqdata_core::Period::Day1,
        sqdata_core::Adjust::Qfq,
    )
}

/// Units in order with repeated whole-state units (a book, an asset day, a
/// series, a deletion) kept once: replay copies their current state, so
/// once is enough.
fn dedup(units: Vec<Unit>) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::with_capacity(units.len());
    for u in units {
        let seen = match &u {
            Unit::Book { .. }
            | Unit::Asset { .. }
            | Unit::AssetDays { .. }
            | Unit::Series { .. }
            | Unit::BookDeleted { .. } => out.contains(&u),
            _ => false,
        };
        if !seen {
            out.push(u);
        }
    }
    out
}

impl Hybrid {
    /// Starts the prober that brings degraded domains back (lazily: it needs a runtime).
    pub(super) fn ensure_prober(&self) {
        if self.prober.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.prober.store(false, Ordering::SeqCst);
            return;
        };
        // The rollout file is re-read (when it changed) every 200 ms off the
        // executor; calls only read the cached stages.
        let weak = self.me.clone();
        handle.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let Some(h) = weak.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || h.rollout.poll()).await;
            }
        });
        let weak = self.me.clone();
        let every = Duration::from_millis(self.cfg.probe_interval_ms);
        handle.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(h) = weak.upgrade() else { return };
                h.check_primary_instance().await;
                for d in h.active.clone() {
                    h.adopt_orphans(d).await;
                    if h.lane(d).mode() == Mode::Degraded && h.probe(d).await.is_ok() {
                        let _ = h.recover(d).await;
                    }
                }
            }
        });
    }

    /// Takes over the journal of a process on this folder that died with
    /// writes its primary never saw; the domain then degrades until they
    /// are replayed (the primary is behind the files for them).
    async fn adopt_orphans(&self, d: Domain) {
        let lane = self.lane(d);
        match lane.with_journal(|j| j.adopt_orphans()).await {
            Ok(0) => {}
            Ok(n) => {
                let e = Error::Unavailable {
                    backend: "hybrid",
                    message: format!("adopted {n} journaled writes of a process that is gone; replaying them"),
                    source: None,
                };
                lane.primary_failed(&e, true);
            }
            Err(e) => tracing::warn!(error = %e, domain = %d, "could not look for orphaned journals"),
        }
    }

    /// Degrades positions when the primary's server was replaced since the
    /// last look (a restart that may have come back without its state and
    /// without any failed call in between); recovery then compares every
    /// book with the files and repairs.
    async fn check_primary_instance(&self) {
        let positions = self.lane(Domain::Positions);
        if !self.active.contains(&Domain::Positions) || positions.mode() != Mode::Healthy {
            return;
        }
        let Ok(Some(now)) = self.bounded("instance", self.primary.positions.instance()).await else {
            return;
        };
        let before = self.primary_instance.lock().replace(now.clone());
        if let Some(before) = before
            && before != now
        {
            let e = Error::Unavailable {
                backend: "hybrid",
                message: format!("the positions server restarted (run id {before} -> {now}); checking every book"),
                source: None,
            };
            positions.primary_failed(&e, true);
        }
    }

    /// A cheap primary read that must reach the server.
    pub(super) async fn probe(&self, d: Domain) -> Result<()> {
        let p = &self.primary;
        let fut = async {
            match d {
                Domain::Positions => p.positions.snapshot(&probe_book()).await.map(|_| ()),
                Domain::Quotes => p.quotes.get_quotes(&[probe_key().code]).await.map(|_| ()),
                Domain::Deals => {
                    p.deals.query(&DealQuery { page_size: 1, ..DealQuery::book(probe_book()) }).await.map(|_| ())
                }
                Domain::Assets => p.assets.assets(&probe_book(), DateRange::all()).await.map(|_| ()),
                Domain::Bars => p.bars.load_bars(&probe_key(), TimeRange::all()).await.map(|_| ()),
                other => Err(Error::Unsupported { backend: "hybrid", what: format!("probing {other}") }),
            }
        };
        self.bounded("probe", fut).await
    }

    /// The primary's time bound ([`layer::deadline`], the one timeout
    /// mechanism): a frozen server must not freeze the caller.
    pub(super) async fn bounded<T>(
        &self,
        op: &'static str,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        layer::deadline("primary", op, self.timeout, fut).await
    }

    async fn replay_deduped(&self, lane: &DomainState, units: Vec<Unit>) -> Result<()> {
        self.replay(lane, &dedup(units)).await
    }

    /// Brings a degraded domain's primary up to date from the secondary and
    /// switches it back to healthy. Returns whether it did.
    pub async fn recover(&self, d: Domain) -> Result<bool> {
        let lane = self.lane(d);
        if !lane.begin_recovery() {
            return Ok(false);
        }
        let t = Instant::now();
        let run = async {
            let (units, mut upto) = lane.with_journal(|j| j.pending()).await?;
            self.replay_deduped(lane, units).await?;
            if d == Domain::Positions {
                // The hot state is small and a restarted Redis may have come
                // back without it (no persistence, a lost AOF tail): compare
                // every book and repair from the files, not only the journal.
                // First a read-only pass; writes still arriving (journaled)
                // can make it differ, so repair and count only under the gate.
                let mut opts = VerifyOptions {
                    truth: Truth::Secondary,
                    domains: vec![Domain::Positions],
                    max_listed: 20,
                    ..VerifyOptions::default()
                };
                let quick = verify::verify(&self.primary, &self.secondary, &opts).await?;
                if quick.total_differences() > 0 {
                    let _g = lane.gate.write().await;
                    let (units, end) = lane.with_journal(move |j| j.read_after(upto)).await?;
                    self.replay_deduped(lane, units).await?;
                    upto = end;
                    opts.repair = true;
                    let r = verify::verify(&self.primary, &self.secondary, &opts).await?;
                    if r.total_differences() > 0 {
                        tracing::warn!(
                            differences = r.total_differences(),
                            "the primary lost position state while it was away; restored from the files"
                        );
                        lane.counted(r.total_differences(), r.total_repaired());
                    }
                }
            }
            // Writes that arrived meanwhile, under the gate: none can slip by.
            let _g = lane.gate.write().await;
            let (units, end) = lane.with_journal(move |j| j.read_after(upto)).await?;
            self.replay_deduped(lane, units).await?;
            let kept = std::mem::take(&mut *lane.unjournaled.lock());
            if let Err(e) = self.replay_deduped(lane, kept.clone()).await {
                lane.unjournaled.lock().extend(kept);
                return Err(e);
            }
            lane.with_journal(move |j| j.checkpoint(end)).await?;
            lane.recovered();
            Ok::<_, Error>(())
        };
        match run.await {
            Ok(()) => {
                metrics::histogram!("sqdata_hybrid_resync_seconds", "domain" => lane.name)
                    .record(t.elapsed().as_secs_f64());
                Ok(true)
            }
            Err(e) => {
                lane.recovery_failed(&e);
                Err(e)
            }
        }
    }
}
