//! [`Hybrid`]: every store trait over a primary and a secondary.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqdata_core::{
    AggregateQuery, AssetRow, AssetStore, BackendHealth, Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode,
    BookId, Code, DateRange, Deal, DealAggregate, DealQuery, DealScope, DealStore, Error, ExtremeChange, HealthCheck,
    MAX_PAGE_SIZE, Page, PositionSnapshot, PositionStore, PriceTick, Quote, QuoteStore, ReconcileReport, RecordOutcome,
    Result, Stores, TimeRange, async_trait, validate_ticks,
};

use crate::alert::{Alerter, HttpWebhook, LogAlerter};
use crate::config::{HybridConfig, Stage, Truth};
use crate::domain::{Domain, DomainStatus, Mode};
use crate::journal::{Journal, Unit};
use crate::rollout::Rollout;
use crate::verify::{self, VerifyDomain, VerifyMode, VerifyOptions, VerifyReport};

const BACKEND: &str = "hybrid";

/// The domains, in order.
pub const DOMAINS: [&str; 5] = ["positions", "quotes", "deals", "assets", "bars"];

/// What `rollback_to_files` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackReport {
    /// The copy from the primary into the files (`None`: skipped).
    pub synced: Option<VerifyReport>,
    /// What was skipped and why.
    pub notes: Vec<String>,
    /// The rollout state written.
    pub state: crate::rollout::RolloutState,
    /// Wall time, sync included.
    pub elapsed_ms: u64,
}

/// Every store trait over a primary (the new stores) and a secondary (the
/// files), per domain. See the crate README for the rules.
#[derive(Debug)]
pub struct Hybrid {
    primary: Stores,
    secondary: Stores,
    cfg: HybridConfig,
    timeout: Duration,
    positions: Domain,
    quotes: Domain,
    deals: Domain,
    assets: Domain,
    bars: Domain,
    rollout: Rollout,
    me: Weak<Hybrid>,
    prober: AtomicBool,
    /// The positions server's run id at the prober's last look.
    primary_instance: parking_lot::Mutex<Option<String>>,
    writes: AtomicU64,
    active: Vec<&'static str>,
}

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

impl Hybrid {
    /// Composes `primary` and `secondary`. Domains with journaled writes from
    /// before a restart start degraded and are replayed once the primary answers.
    pub fn new(primary: Stores, secondary: Stores, cfg: HybridConfig) -> Result<Arc<Hybrid>> {
        Hybrid::compose(primary, secondary, cfg, &DOMAINS)
    }

    /// As [`Hybrid::new`], for a subset of the domains: the others are not
    /// probed by `health` nor verified (their primary is the secondary).
    pub fn compose(primary: Stores, secondary: Stores, cfg: HybridConfig, domains: &[&str]) -> Result<Arc<Hybrid>> {
        cfg.validate()?;
        let active: Vec<&'static str> = DOMAINS.iter().copied().filter(|d| domains.contains(d)).collect();
        let alerter: Arc<dyn Alerter> = match &cfg.webhook_url {
            Some(u) => Arc::new(HttpWebhook::new(u)),
            None => Arc::new(LogAlerter),
        };
        let dom = |name: &'static str, volatile: bool| -> Result<Domain> {
            let journal = Journal::open(&cfg.journal_dir, name)?;
            Ok(Domain::new(name, cfg.breaker_failures, volatile, journal, alerter.clone()))
        };
        // Hot position state may come back empty from a restarted server.
        let (positions, quotes, deals, assets, bars) = (
            dom("positions", true)?,
            dom("quotes", false)?,
            dom("deals", false)?,
            dom("assets", false)?,
            dom("bars", false)?,
        );
        let rollout = Rollout::new(&cfg)?;
        Ok(Arc::new_cyclic(|me| Hybrid {
            primary,
            secondary,
            timeout: Duration::from_millis(cfg.primary_timeout_ms),
            cfg,
            positions,
            quotes,
            deals,
            assets,
            bars,
            rollout,
            me: me.clone(),
            prober: AtomicBool::new(false),
            primary_instance: parking_lot::Mutex::new(None),
            writes: AtomicU64::new(0),
            active,
        }))
    }

    /// The composed stores: the hybrid for every domain, and every backend's health.
    pub fn stores(self: &Arc<Self>) -> Stores {
        let mut s = Stores::from_one(self.clone());
        s.backends.extend(self.primary.backends.iter().cloned());
        s.backends.extend(self.secondary.backends.iter().cloned());
        s
    }

    /// Mode and counters per domain.
    pub fn status(&self) -> Vec<DomainStatus> {
        self.domains().iter().map(|d| d.status()).collect()
    }

    /// The primary stores (the new ones).
    pub fn primary(&self) -> &Stores {
        &self.primary
    }

    /// The secondary stores (the files).
    pub fn secondary(&self) -> &Stores {
        &self.secondary
    }

    /// The domains this hybrid composes.
    pub fn active_domains(&self) -> &[&'static str] {
        &self.active
    }

    /// The configuration.
    pub fn config(&self) -> &HybridConfig {
        &self.cfg
    }

    /// Verifies (and repairs) the composed domains, counting what it finds in
    /// the domains' inconsistency and repair counters.
    pub async fn verify(&self, opts: &VerifyOptions) -> Result<VerifyReport> {
        let mut opts = opts.clone();
        opts.domains.retain(|d| self.active.contains(&d.as_str()));
        let r = verify::verify(&self.primary, &self.secondary, &opts).await?;
        for d in &r.domains {
            if let Some(dom) = self.domain(d.domain) {
                dom.counted(d.differences, d.repaired);
            }
        }
        Ok(r)
    }

    /// Sets the stage of `accounts` (`None`: everyone) in the rollout file,
    /// effective in this process at once and in others within 200 ms.
    pub fn set_stage(&self, accounts: Option<&[String]>, stage: Stage) -> Result<crate::rollout::RolloutState> {
        let st = crate::rollout::set_stage(&self.cfg, accounts, stage)?;
        self.rollout.refresh()?;
        Ok(st)
    }

    /// `sqdata rollout rollback`: brings the files up to date from the
    /// primary (where the primary has nothing journaled, i.e. is not behind),
    /// then returns `accounts` (`None`: everyone) to the files stage.
    /// Every acknowledged write is already in the files (writes succeed
    /// only when the files took them), so a primary that cannot be reached
    /// does not stop the rollback: it is reported and skipped.
    pub async fn rollback_to_files(&self, accounts: Option<&[String]>) -> Result<RollbackReport> {
        let t = Instant::now();
        let mut domains = Vec::new();
        let mut notes = Vec::new();
        for d in VerifyDomain::ALL {
            let Some(dom) = self.domain(d.as_str()).filter(|_| self.active.contains(&d.as_str())) else { continue };
            let pending = dom.journal.len();
            if pending > 0 {
                notes.push(format!(
                    "{}: {pending} journaled bytes, the files are ahead of the primary; nothing to copy back",
                    d.as_str()
                ));
            } else {
                domains.push(d);
            }
        }
        let opts = VerifyOptions {
            mode: VerifyMode::Full,
            repair: true,
            truth: Truth::Primary,
            domains,
            accounts: accounts.map(|a| a.to_vec()),
            ..VerifyOptions::default()
        };
        let synced = match self.verify(&opts).await {
            Ok(r) => Some(r),
            Err(e) if e.is_retryable() => {
                notes.push(format!(
                    "primary unreachable ({e}); the files hold every acknowledged write, switching without a copy"
                ));
                None
            }
            Err(e) => return Err(e),
        };
        let state = crate::rollout::set_stage(&self.cfg, accounts, Stage::Files)?;
        self.rollout.refresh()?;
        Ok(RollbackReport { synced, notes, state, elapsed_ms: t.elapsed().as_millis() as u64 })
    }

    /// The stage of an account.
    pub fn stage(&self, book: Option<&BookId>) -> Stage {
        self.rollout.stage(book.map(|b| &b.account))
    }

    fn domains(&self) -> [&Domain; 5] {
        [&self.positions, &self.quotes, &self.deals, &self.assets, &self.bars]
    }

    fn domain(&self, name: &str) -> Option<&Domain> {
        self.domains().into_iter().find(|d| d.name == name)
    }

    /// Starts the prober that brings degraded domains back (lazily: it needs a runtime).
    fn ensure_prober(&self) {
        if self.prober.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.prober.store(false, Ordering::SeqCst);
            return;
        };
        let weak = self.me.clone();
        let every = Duration::from_millis(self.cfg.probe_interval_ms);
        handle.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(h) = weak.upgrade() else { return };
                h.check_primary_instance().await;
                for name in DOMAINS {
                    if h.domain(name).is_some_and(|d| d.mode() == Mode::Degraded) && h.probe(name).await.is_ok() {
                        let _ = h.recover(name).await;
                    }
                }
            }
        });
    }

    /// Degrades positions when the primary's server was replaced since the
    /// last look (a restart that may have come back without its state and
    /// without any failed call in between); recovery then compares every
    /// book with the files and repairs.
    async fn check_primary_instance(&self) {
        if !self.active.contains(&"positions") || self.positions.mode() != Mode::Healthy {
            return;
        }
        let Ok(Ok(Some(now))) =
            tokio::time::timeout(Duration::from_millis(self.cfg.primary_timeout_ms), self.primary.positions.instance())
                .await
        else {
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
            self.positions.primary_failed(&e, true);
        }
    }

    /// A cheap primary read that must reach the server.
    async fn probe(&self, domain: &str) -> Result<()> {
        let p = &self.primary;
        let fut = async {
            match domain {
                "positions" => p.positions.snapshot(&probe_book()).await.map(|_| ()),
                "quotes" => p.quotes.get_quotes(&[probe_key().code]).await.map(|_| ()),
                "deals" => {
                    p.deals.query(&DealQuery { page_size: 1, ..DealQuery::book(probe_book()) }).await.map(|_| ())
                }
                "assets" => p.assets.assets(&probe_book(), DateRange::all()).await.map(|_| ()),
                _ => p.bars.load_bars(&probe_key(), TimeRange::all()).await.map(|_| ()),
            }
        };
        self.bounded(domain, fut).await
    }

    /// Brings a degraded domain's primary up to date from the secondary and
    /// switches it back to healthy. Returns whether it did.
    pub async fn recover(&self, name: &str) -> Result<bool> {
        let Some(d) = self.domain(name) else { return Ok(false) };
        if !d.begin_recovery() {
            return Ok(false);
        }
        let t = Instant::now();
        let run = async {
            let (units, len) = d.journal.read()?;
            for u in dedup(units) {
                self.copy_unit(name, &u, true).await?;
            }
            if name == "positions" {
                // The hot state is small and a restarted Redis may have come
                // back without it (no persistence, a lost AOF tail): compare
                // every book and repair from the files, not only the journal.
                // First a read-only pass; writes still arriving (journaled)
                // can make it differ, so repair and count only under the gate.
                let mut opts = VerifyOptions {
                    truth: Truth::Secondary,
                    domains: vec![VerifyDomain::Positions],
                    max_listed: 20,
                    ..VerifyOptions::default()
                };
                let quick = verify::verify(&self.primary, &self.secondary, &opts).await?;
                if quick.total_differences() > 0 {
                    let _g = d.gate.write().await;
                    for u in dedup(d.journal.read_from(len)?) {
                        self.copy_unit(name, &u, true).await?;
                    }
                    opts.repair = true;
                    let r = verify::verify(&self.primary, &self.secondary, &opts).await?;
                    if r.total_differences() > 0 {
                        tracing::warn!(
                            differences = r.total_differences(),
                            "the primary lost position state while it was away; restored from the files"
                        );
                        d.counted(r.total_differences(), r.total_repaired());
                    }
                }
            }
            // Writes that arrived meanwhile, under the gate: none can slip by.
            let _g = d.gate.write().await;
            for u in dedup(d.journal.read_from(len)?) {
                self.copy_unit(name, &u, true).await?;
            }
            d.journal.clear()?;
            d.recovered();
            Ok::<_, Error>(())
        };
        match run.await {
            Ok(()) => {
                metrics::histogram!("sqdata_hybrid_resync_seconds", "domain" => d.name)
                    .record(t.elapsed().as_secs_f64());
                Ok(true)
            }
            Err(e) => {
                d.recovery_failed(&e);
                Err(e)
            }
        }
    }

    async fn bounded<T>(&self, op: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable {
                backend: "primary",
                message: format!("{op}: no answer within {:?}", self.timeout),
                source: None,
            }),
        }
    }

    /// Reads per stage and mode: the primary when it serves (falling back to
    /// the secondary on an error — never on "not found"), the secondary
    /// otherwise; in shadow stage both, counting differences.
    async fn read<T: PartialEq>(
        &self,
        d: &Domain,
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
    async fn write<T>(
        &self,
        d: &Domain,
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
    async fn maybe_verify(&self, d: &Domain, units: &[Unit]) {
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
            match self.unit_differs(d.name, u).await {
                Ok(Some(diff)) => {
                    d.inconsistent(format!("after a write: {diff}"));
                    let to_primary = self.cfg.source_of_truth == Truth::Secondary;
                    if self.copy_unit(d.name, u, to_primary).await.is_ok() {
                        d.repaired();
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, domain = d.name, "read-after-write verification failed"),
            }
        }
    }

    /// Whether a unit differs between the stores (a description if so).
    async fn unit_differs(&self, domain: &str, u: &Unit) -> Result<Option<String>> {
        let (p, s) = (&self.primary, &self.secondary);
        Ok(match u {
            Unit::Book { book } if domain == "positions" => {
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
    pub(crate) async fn copy_unit(&self, domain: &str, u: &Unit, to_primary: bool) -> Result<()> {
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
                "positions" => to.positions.delete_book(book).await,
                "deals" => to.deals.delete_book(book).await.map(|_| ()),
                "assets" => to.assets.delete_book(book).await,
                _ => Ok(()),
            },
        }
    }
}

fn dedup(units: Vec<Unit>) -> Vec<Unit> {
    let mut out: Vec<Unit> = Vec::with_capacity(units.len());
    for u in units {
        let seen = match &u {
            Unit::Book { .. } | Unit::Asset { .. } | Unit::Series { .. } | Unit::BookDeleted { .. } => out.contains(&u),
            _ => false,
        };
        if !seen {
            out.push(u);
        }
    }
    out
}

fn group_deals(deals: &[Deal]) -> BTreeMap<BookId, Vec<&Deal>> {
    let mut m: BTreeMap<BookId, Vec<&Deal>> = BTreeMap::new();
    for d in deals {
        m.entry(d.book.clone()).or_default().push(d);
    }
    m
}

/// The stored versions of these deals (by id), from one store.
pub(crate) async fn deals_by_id(s: &dyn DealStore, book: &BookId, ds: &[&Deal]) -> Result<BTreeMap<String, Deal>> {
    let want: std::collections::HashSet<&str> = ds.iter().map(|d| d.id.as_str()).collect();
    let from = ds.iter().map(|d| d.time.date()).min();
    let to = ds.iter().map(|d| d.time.date()).max();
    let mut q = DealQuery {
        scope: DealScope::Book(book.clone()),
        from,
        to,
        code: None,
        kind: None,
        page: 1,
        page_size: MAX_PAGE_SIZE,
    };
    let mut out = BTreeMap::new();
    loop {
        let p = s.query(&q).await?;
        let n = p.data.len();
        for d in p.data {
            if want.contains(d.id.as_str()) {
                out.insert(d.id.clone(), d);
            }
        }
        if n < MAX_PAGE_SIZE as usize {
            return Ok(out);
        }
        q.page += 1;
    }
}

fn book_unit(book: &BookId) -> Vec<Unit> {
    vec![Unit::Book { book: book.clone() }]
}

#[async_trait]
impl PositionStore for Hybrid {
    async fn snapshot(&self, book: &BookId) -> Result<PositionSnapshot> {
        let st = self.stage(Some(book));
        self.read(&self.positions, st, self.primary.positions.snapshot(book), self.secondary.positions.snapshot(book))
            .await
    }

    async fn held_days(&self, book: &BookId, codes: &[Code]) -> Result<BTreeMap<Code, Option<u32>>> {
        let st = self.stage(Some(book));
        self.read(
            &self.positions,
            st,
            self.primary.positions.held_days(book, codes),
            self.secondary.positions.held_days(book, codes),
        )
        .await
    }

    async fn new_held(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        let st = self.stage(Some(book));
        let (p, s) = (&self.primary.positions, &self.secondary.positions);
        self.write(
            &self.positions,
            st,
            book_unit(book),
            p.new_held(book, codes),
            s.new_held(book, codes),
            self.restore(book),
        )
        .await
    }

    async fn mark_sold(&self, book: &BookId, code: Code) -> Result<()> {
        let st = self.stage(Some(book));
        let (p, s) = (&self.primary.positions, &self.secondary.positions);
        self.write(
            &self.positions,
            st,
            book_unit(book),
            p.mark_sold(book, code),
            s.mark_sold(book, code),
            self.restore(book),
        )
        .await
    }

    async fn reconcile(&self, book: &BookId, broker_codes: &[Code]) -> Result<ReconcileReport> {
        let st = self.stage(Some(book));
        let (p, s) = (&self.primary.positions, &self.secondary.positions);
        self.write(
            &self.positions,
            st,
            book_unit(book),
            p.reconcile(book, broker_codes),
            s.reconcile(book, broker_codes),
            self.restore(book),
        )
        .await
    }

    async fn inc_held_days(&self, book: &BookId, today: NaiveDate) -> Result<bool> {
        let st = self.stage(Some(book));
        let (p, s) = (&self.primary.positions, &self.secondary.positions);
        self.write(
            &self.positions,
            st,
            book_unit(book),
            p.inc_held_days(book, today),
            s.inc_held_days(book, today),
            self.restore(book),
        )
        .await
    }

    async fn update_extremes(&self, book: &BookId, ticks: &[PriceTick]) -> Result<Vec<ExtremeChange>> {
        validate_ticks(ticks)?;
        let st = self.stage(Some(book));
        let (p, s) = (&self.primary.positions, &self.secondary.positions);
        self.write(
            &self.positions,
            st,
            book_unit(book),
            p.update_extremes(book, ticks),
            s.update_extremes(book, ticks),
            self.restore(book),
        )
        .await
    }

    async fn replace_book(&self, book: &BookId, snapshot: &PositionSnapshot) -> Result<()> {
        snapshot.validate()?;
        let st = self.stage(Some(book));
        let (p, s) = (&self.primary.positions, &self.secondary.positions);
        self.write(
            &self.positions,
            st,
            book_unit(book),
            p.replace_book(book, snapshot),
            s.replace_book(book, snapshot),
            self.restore(book),
        )
        .await
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let st = self.stage(Some(book));
        let (p, s) = (&self.primary.positions, &self.secondary.positions);
        let unit = vec![Unit::BookDeleted { book: book.clone() }];
        self.write(&self.positions, st, unit, p.delete_book(book), s.delete_book(book), self.restore(book)).await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        let st = self.stage(None);
        self.read(&self.positions, st, self.primary.positions.list_books(), self.secondary.positions.list_books()).await
    }

    async fn instance(&self) -> Result<Option<String>> {
        self.primary.positions.instance().await
    }
}

impl Hybrid {
    /// Compensation for positions: the secondary still holds the book as it
    /// was before the write; copy it back over the primary.
    async fn restore(&self, book: &BookId) -> Result<()> {
        self.copy_unit("positions", &Unit::Book { book: book.clone() }, true).await
    }
}

#[async_trait]
impl QuoteStore for Hybrid {
    async fn put_quotes(&self, quotes: &[Quote]) -> Result<()> {
        for q in quotes {
            q.validate()?;
        }
        // Ephemeral: no journal, no compensation; the files get them best-effort.
        self.ensure_prober();
        let d = &self.quotes;
        let st = self.stage(None);
        if st == Stage::Files || d.mode() != Mode::Healthy {
            return self.secondary.quotes.put_quotes(quotes).await;
        }
        match self.bounded(d.name, self.primary.quotes.put_quotes(quotes)).await {
            Ok(()) => {
                d.primary_ok();
                if self.secondary.quotes.put_quotes(quotes).await.is_err() {
                    d.dual_write_failure();
                }
                Ok(())
            }
            Err(e) if e.is_invalid_input() => Err(e),
            Err(e) => {
                d.primary_failed(&e, false);
                self.secondary.quotes.put_quotes(quotes).await
            }
        }
    }

    async fn get_quotes(&self, codes: &[Code]) -> Result<Vec<Quote>> {
        let st = self.stage(None);
        self.read(&self.quotes, st, self.primary.quotes.get_quotes(codes), self.secondary.quotes.get_quotes(codes))
            .await
    }
}

#[async_trait]
impl DealStore for Hybrid {
    async fn record_batch(&self, deals: &[Deal]) -> Result<RecordOutcome> {
        for d in deals {
            d.validate()?;
        }
        let Some(first) = deals.first() else { return Ok(RecordOutcome::default()) };
        let st = self.stage(Some(&first.book));
        let unit = vec![Unit::Deals { deals: deals.to_vec() }];
        let compensate = async {
            // Undo on the primary what the secondary does not hold.
            for (book, ds) in group_deals(deals) {
                let held = deals_by_id(&*self.secondary.deals, &book, &ds).await?;
                let extra: Vec<String> =
                    ds.iter().filter(|d| !held.contains_key(&d.id)).map(|d| d.id.clone()).collect();
                self.primary.deals.delete_deals(&book, &extra).await?;
            }
            Ok(())
        };
        self.write(
            &self.deals,
            st,
            unit,
            self.primary.deals.record_batch(deals),
            self.secondary.deals.record_batch(deals),
            compensate,
        )
        .await
    }

    async fn query(&self, q: &DealQuery) -> Result<Page<Deal>> {
        q.validate()?;
        let st = match &q.scope {
            DealScope::Book(b) => self.stage(Some(b)),
            DealScope::Account(a) => self.rollout.stage(Some(a)),
        };
        self.read(&self.deals, st, self.primary.deals.query(q), self.secondary.deals.query(q)).await
    }

    async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        let st = self.rollout.stage(Some(&q.account));
        self.read(&self.deals, st, self.primary.deals.aggregate(q), self.secondary.deals.aggregate(q)).await
    }

    async fn delete_book(&self, book: &BookId) -> Result<u64> {
        let st = self.stage(Some(book));
        let unit = vec![Unit::BookDeleted { book: book.clone() }];
        let compensate = async {
            let mut q = DealQuery { page_size: MAX_PAGE_SIZE, ..DealQuery::book(book.clone()) };
            loop {
                let p = self.secondary.deals.query(&q).await?;
                let n = p.data.len();
                self.primary.deals.record_batch(&p.data).await?;
                if n < MAX_PAGE_SIZE as usize {
                    return Ok(());
                }
                q.page += 1;
            }
        };
        self.write(
            &self.deals,
            st,
            unit,
            self.primary.deals.delete_book(book),
            self.secondary.deals.delete_book(book),
            compensate,
        )
        .await
    }

    async fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        let st = self.stage(Some(book));
        let unit = vec![Unit::DealsDeleted { book: book.clone(), ids: ids.to_vec() }];
        let compensate = async {
            // What the secondary still holds goes back to the primary.
            let held: Vec<Deal> = {
                let mut q = DealQuery { page_size: MAX_PAGE_SIZE, ..DealQuery::book(book.clone()) };
                let mut out = Vec::new();
                loop {
                    let p = self.secondary.deals.query(&q).await?;
                    let n = p.data.len();
                    out.extend(p.data.into_iter().filter(|d| ids.contains(&d.id)));
                    if n < MAX_PAGE_SIZE as usize {
                        break out;
                    }
                    q.page += 1;
                }
            };
            self.primary.deals.record_batch(&held).await.map(|_| ())
        };
        self.write(
            &self.deals,
            st,
            unit,
            self.primary.deals.delete_deals(book, ids),
            self.secondary.deals.delete_deals(book, ids),
            compensate,
        )
        .await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        let st = self.stage(None);
        self.read(&self.deals, st, self.primary.deals.list_books(), self.secondary.deals.list_books()).await
    }
}

#[async_trait]
impl AssetStore for Hybrid {
    async fn upsert_asset(&self, book: &BookId, row: AssetRow) -> Result<()> {
        row.validate()?;
        let st = self.stage(Some(book));
        let unit = Unit::Asset { book: book.clone(), date: row.date };
        let compensate = async {
            let before =
                self.secondary.assets.assets(book, DateRange { from: Some(row.date), to: Some(row.date) }).await?;
            match before.first() {
                Some(r) => self.primary.assets.upsert_asset(book, *r).await,
                None => Err(Error::Backend {
                    backend: BACKEND,
                    message: format!("no earlier asset of {book} on {} to restore; verify will repair", row.date),
                    retryable: false,
                    source: None,
                }),
            }
        };
        self.write(
            &self.assets,
            st,
            vec![unit],
            self.primary.assets.upsert_asset(book, row),
            self.secondary.assets.upsert_asset(book, row),
            compensate,
        )
        .await
    }

    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>> {
        let st = self.stage(Some(book));
        self.read(&self.assets, st, self.primary.assets.assets(book, range), self.secondary.assets.assets(book, range))
            .await
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let st = self.stage(Some(book));
        let unit = vec![Unit::BookDeleted { book: book.clone() }];
        let compensate = async {
            for r in self.secondary.assets.assets(book, DateRange::all()).await? {
                self.primary.assets.upsert_asset(book, r).await?;
            }
            Ok(())
        };
        self.write(
            &self.assets,
            st,
            unit,
            self.primary.assets.delete_book(book),
            self.secondary.assets.delete_book(book),
            compensate,
        )
        .await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        let st = self.stage(None);
        self.read(&self.assets, st, self.primary.assets.list_books(), self.secondary.assets.list_books()).await
    }
}

#[async_trait]
impl BarStore for Hybrid {
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64> {
        series.validate()?;
        let st = self.stage(None);
        let unit = Unit::Series { key: series.key };
        let compensate = self.copy_unit("bars", &unit, true);
        self.write(
            &self.bars,
            st,
            vec![unit.clone()],
            self.primary.bars.save_bars(series, mode),
            self.secondary.bars.save_bars(series, mode),
            compensate,
        )
        .await
    }

    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>> {
        let st = self.stage(None);
        self.read(&self.bars, st, self.primary.bars.load_bars(key, range), self.secondary.bars.load_bars(key, range))
            .await
    }

    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>> {
        let st = self.stage(None);
        self.read(
            &self.bars,
            st,
            self.primary.bars.load_bars_batch(keys, range),
            self.secondary.bars.load_bars_batch(keys, range),
        )
        .await
    }

    async fn overview(&self) -> Result<Vec<BarOverview>> {
        let st = self.stage(None);
        self.read(&self.bars, st, self.primary.bars.overview(), self.secondary.bars.overview()).await
    }

    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64> {
        let st = self.stage(None);
        let unit = Unit::Series { key: *key };
        let compensate = self.copy_unit("bars", &unit, true);
        self.write(
            &self.bars,
            st,
            vec![unit.clone()],
            self.primary.bars.delete_bars(key, range),
            self.secondary.bars.delete_bars(key, range),
            compensate,
        )
        .await
    }
}

#[async_trait]
impl HealthCheck for Hybrid {
    async fn health(&self) -> BackendHealth {
        // An active probe, so a fresh process (`sqdata health`) tells the truth.
        for name in &self.active {
            let Some(d) = self.domain(name) else { continue };
            match self.probe(name).await {
                Ok(()) if d.mode() == Mode::Degraded => {
                    let _ = self.recover(name).await;
                }
                Ok(()) => d.primary_ok(),
                Err(e) => d.primary_failed(&e, true),
            }
        }
        let status: Vec<DomainStatus> = self.status().into_iter().filter(|s| self.active.contains(&s.domain)).collect();
        let mut details = BTreeMap::new();
        details.insert("domains".into(), serde_json::to_value(&status).unwrap_or_default());
        details.insert("stage".into(), serde_json::json!(self.stage(None).as_str()));
        let degraded: Vec<&str> = status.iter().filter(|s| s.mode != Mode::Healthy).map(|s| s.domain).collect();
        BackendHealth {
            backend: BACKEND.into(),
            // The hybrid answers even when degraded: that is its point.
            up: true,
            latency: Duration::from_nanos(1),
            details,
            error: (!degraded.is_empty()).then(|| format!("degraded: {}", degraded.join(", "))),
        }
    }
}
