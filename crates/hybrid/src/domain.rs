//! [`DomainState`]: one domain's circuit breaker, counters, journal and
//! write gate.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use serde::Serialize;
use sqdata_core::{Domain, Error, Result};

use crate::alert::{Alert, Alerter};
use crate::journal::{Journal, Unit};

/// Where a domain's reads and writes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The primary serves (stage permitting).
    Healthy,
    /// The circuit is open: the secondary serves and writes are journaled.
    Degraded,
    /// The primary answers again; the journal is being replayed into it.
    Recovering,
}

/// A domain's state for `sqdata health` and `/metrics`.
#[derive(Debug, Clone, Serialize)]
pub struct DomainStatus {
    /// The domain.
    pub domain: Domain,
    /// Current mode.
    pub mode: Mode,
    /// Milliseconds in this mode.
    pub since_ms: u64,
    /// Consecutive primary failures.
    pub consecutive_failures: u32,
    /// Bytes of journaled writes the primary has not seen.
    pub journal_bytes: u64,
    /// Units the journal refused, kept in this process's memory until replayed.
    pub unjournaled: u64,
    /// Reads answered by the secondary because the primary failed.
    pub fallbacks: u64,
    /// Writes journaled for the primary (it was down or degraded).
    pub journaled_writes: u64,
    /// Writes the secondary refused after the primary took them.
    pub dual_write_failures: u64,
    /// Primary writes undone because the secondary refused them.
    pub compensations: u64,
    /// Differences found between the stores.
    pub inconsistencies: u64,
    /// Differences repaired.
    pub repairs: u64,
    /// Journal entries set aside because they could never be replayed (a
    /// corrupt book file, an unreadable line): see
    /// `<journal_dir>/<domain>-quarantine.jsonl`.
    pub quarantined: u64,
    /// The last primary error.
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Inner {
    mode: Mode,
    since: Instant,
    failures: u32,
    last_error: Option<String>,
    fallbacks: u64,
    journaled_writes: u64,
    dual_write_failures: u64,
    compensations: u64,
    inconsistencies: u64,
    repairs: u64,
    quarantined: u64,
}

/// Breaker, counters, journal and write gate of one domain.
#[derive(Debug)]
pub(crate) struct DomainState {
    pub(crate) domain: Domain,
    /// `domain`'s name, for metric labels.
    pub(crate) name: &'static str,
    threshold: u32,
    /// The primary may lose this state on a restart (Redis without
    /// persistence): one failed read opens the breaker, so recovery compares
    /// the books before the primary serves again.
    pub(crate) volatile: bool,
    inner: Mutex<Inner>,
    pub(crate) journal: Arc<Journal>,
    /// Writes hold it shared; the switch back to healthy holds it exclusive.
    pub(crate) gate: tokio::sync::RwLock<()>,
    /// Units that should be journaled but the journal refused (disk full):
    /// this process's recovery replays them too.
    pub(crate) unjournaled: Mutex<Vec<Unit>>,
    alerter: Arc<dyn Alerter>,
}

fn gauge(name: &'static str, mode: Mode) {
    metrics::gauge!("sqdata_hybrid_state", "domain" => name).set(match mode {
        Mode::Healthy => 0.0,
        Mode::Degraded => 1.0,
        Mode::Recovering => 2.0,
    });
}

impl DomainState {
    pub(crate) fn new(
        domain: Domain,
        threshold: u32,
        volatile: bool,
        journal: Journal,
        alerter: Arc<dyn Alerter>,
    ) -> DomainState {
        // Journaled writes from before a restart (this process's or adopted
        // from one that died): the primary is stale until they are replayed.
        let name = domain.as_str();
        let mode = if journal.pending_bytes() > 0 { Mode::Degraded } else { Mode::Healthy };
        gauge(name, mode);
        DomainState {
            domain,
            name,
            threshold,
            volatile,
            inner: Mutex::new(Inner {
                mode,
                since: Instant::now(),
                failures: 0,
                last_error: None,
                fallbacks: 0,
                journaled_writes: 0,
                dual_write_failures: 0,
                compensations: 0,
                inconsistencies: 0,
                repairs: 0,
                quarantined: 0,
            }),
            journal: Arc::new(journal),
            gate: tokio::sync::RwLock::new(()),
            unjournaled: Mutex::new(Vec::new()),
            alerter,
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        self.inner.lock().mode
    }

    fn set_mode(&self, g: &mut Inner, mode: Mode) {
        if g.mode != mode {
            g.mode = mode;
            g.since = Instant::now();
            gauge(self.name, mode);
        }
    }

    pub(crate) fn primary_ok(&self) {
        self.inner.lock().failures = 0;
    }

    /// A primary failure; `force` opens the circuit at once (a write the
    /// primary may have missed).
    pub(crate) fn primary_failed(&self, e: &Error, force: bool) {
        let mut g = self.inner.lock();
        g.failures += 1;
        g.last_error = Some(e.to_string());
        metrics::counter!("sqdata_hybrid_primary_failures_total", "domain" => self.name).increment(1);
        if g.mode == Mode::Healthy && (force || g.failures >= self.threshold) {
            self.set_mode(&mut g, Mode::Degraded);
            drop(g);
            self.alert("degraded", format!("primary failing ({e}); serving from the files"));
        } else if g.mode == Mode::Recovering {
            self.set_mode(&mut g, Mode::Degraded);
        }
    }

    pub(crate) fn begin_recovery(&self) -> bool {
        let mut g = self.inner.lock();
        if g.mode != Mode::Degraded {
            return false;
        }
        self.set_mode(&mut g, Mode::Recovering);
        true
    }

    /// Recovering → healthy; returns whether it switched. A domain that
    /// degraded again meanwhile (a primary failure, an adopted orphan
    /// journal) stays degraded: the next probe recovers it again.
    pub(crate) fn recovered(&self) -> bool {
        let mut g = self.inner.lock();
        if g.mode != Mode::Recovering {
            return false;
        }
        g.failures = 0;
        self.set_mode(&mut g, Mode::Healthy);
        drop(g);
        self.alert("recovered", "primary back and brought up to date; serving from it again".into());
        true
    }

    pub(crate) fn recovery_failed(&self, e: &Error) {
        let mut g = self.inner.lock();
        g.last_error = Some(e.to_string());
        self.set_mode(&mut g, Mode::Degraded);
    }

    pub(crate) fn fallback(&self) {
        self.inner.lock().fallbacks += 1;
        metrics::counter!("sqdata_hybrid_fallbacks_total", "domain" => self.name).increment(1);
    }

    pub(crate) fn dual_write_failure(&self) {
        self.inner.lock().dual_write_failures += 1;
        metrics::counter!("sqdata_hybrid_dual_write_failures_total", "domain" => self.name).increment(1);
    }

    pub(crate) fn compensated(&self, ok: bool, detail: String) {
        if ok {
            self.inner.lock().compensations += 1;
            metrics::counter!("sqdata_hybrid_compensations_total", "domain" => self.name).increment(1);
        } else {
            self.inconsistent(format!("compensation failed: {detail}"));
        }
    }

    pub(crate) fn inconsistent(&self, detail: String) {
        self.inner.lock().inconsistencies += 1;
        metrics::counter!("sqdata_hybrid_inconsistencies_total", "domain" => self.name).increment(1);
        self.alert("inconsistency", detail);
    }

    /// Differences found and records repaired by a verification.
    pub(crate) fn counted(&self, differences: u64, repaired: u64) {
        let mut g = self.inner.lock();
        g.inconsistencies += differences;
        g.repairs += repaired;
        drop(g);
        metrics::counter!("sqdata_hybrid_inconsistencies_total", "domain" => self.name).increment(differences);
        metrics::counter!("sqdata_hybrid_repairs_total", "domain" => self.name).increment(repaired);
        if differences > 0 {
            self.alert("inconsistency", format!("verify found {differences} differences, repaired {repaired} records"));
        }
    }

    /// A journal entry set aside (see [`DomainStatus::quarantined`]).
    pub(crate) fn quarantined(&self, detail: String) {
        self.inner.lock().quarantined += 1;
        metrics::counter!("sqdata_hybrid_quarantined_total", "domain" => self.name).increment(1);
        self.alert("quarantine", detail);
    }

    pub(crate) fn repaired(&self) {
        self.inner.lock().repairs += 1;
        metrics::counter!("sqdata_hybrid_repairs_total", "domain" => self.name).increment(1);
    }

    pub(crate) fn alert(&self, kind: &str, message: String) {
        self.alerter.send(Alert { kind: kind.into(), domain: self.name.into(), message });
    }

    /// Runs a blocking journal operation on the blocking pool.
    pub(crate) async fn with_journal<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Journal) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let j = self.journal.clone();
        tokio::task::spawn_blocking(move || f(&j)).await.map_err(|e| Error::Backend {
            backend: "hybrid",
            message: format!("journal worker failed: {e}"),
            retryable: true,
            source: None,
        })?
    }

    /// Journals units the primary missed (durable before returning).
    pub(crate) async fn journal(&self, units: Vec<Unit>) -> Result<()> {
        if units.is_empty() {
            return Ok(());
        }
        self.with_journal(move |j| j.append(&units)).await?;
        self.inner.lock().journaled_writes += 1;
        metrics::counter!("sqdata_hybrid_journaled_writes_total", "domain" => self.name).increment(1);
        Ok(())
    }

    /// Journals units; when the journal itself fails, keeps them in memory
    /// (recovery in this process replays them), alerts, and returns the
    /// journal's error.
    pub(crate) async fn journal_or_remember(&self, units: Vec<Unit>) -> Result<()> {
        match self.journal(units.clone()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.unjournaled.lock().extend(units);
                self.alert(
                    "journal_failed",
                    format!("the journal refused a write ({e}); kept in memory until replayed"),
                );
                Err(e)
            }
        }
    }

    pub(crate) fn status(&self) -> DomainStatus {
        let g = self.inner.lock();
        DomainStatus {
            domain: self.domain,
            mode: g.mode,
            since_ms: g.since.elapsed().as_millis() as u64,
            consecutive_failures: g.failures,
            journal_bytes: self.journal.pending_bytes(),
            unjournaled: self.unjournaled.lock().len() as u64,
            fallbacks: g.fallbacks,
            journaled_writes: g.journaled_writes,
            dual_write_failures: g.dual_write_failures,
            compensations: g.compensations,
            inconsistencies: g.inconsistencies,
            repairs: g.repairs,
            quarantined: g.quarantined,
            last_error: g.last_error.clone(),
        }
    }
}
