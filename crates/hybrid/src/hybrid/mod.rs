//! [`Hybrid`]: every store trait over a primary and a secondary.
//!
//! - `mod.rs` (here): the type, its parts and accessors;
//! - `rules`: the read and write rules per stage and mode, read-after-write
//!   verification and the copy of one journal unit between the sides;
//! - `recovery`: the prober, orphan adoption and the replay that brings a
//!   degraded domain back;
//! - `impls`: the store traits, each call routed through the rules.
//!
//! `rollback_to_files` lives with the stages, in `crate::rollout`.

mod impls;
mod recovery;
mod rules;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqdata_core::{BookId, Deal, DealQuery, DealScope, DealStore, Domain, MAX_PAGE_SIZE, Result, Stores};

use crate::alert::{Alerter, HttpWebhook, LogAlerter};
use crate::config::{HybridConfig, Stage};
use crate::domain::{DomainState, DomainStatus};
use crate::journal::{Journal, Unit};
use crate::rollout::Rollout;
use crate::verify::{self, VerifyOptions, VerifyReport};

const BACKEND: &str = "hybrid";

/// Every store trait over a primary (the new stores) and a secondary (the
/// files), per domain. See the crate README for the rules.
#[derive(Debug)]
pub struct Hybrid {
    primary: Stores,
    secondary: Stores,
    cfg: HybridConfig,
    timeout: Duration,
    /// One per [`Domain`], at [`Domain::index`].
    lanes: Vec<DomainState>,
    rollout: Rollout,
    me: Weak<Hybrid>,
    prober: AtomicBool,
    /// The positions server's run id at the prober's last look.
    primary_instance: parking_lot::Mutex<Option<String>>,
    writes: AtomicU64,
    active: Vec<Domain>,
}

impl Hybrid {
    /// Composes `primary` and `secondary` for every domain. Domains with
    /// journaled writes from before a restart start degraded and are
    /// replayed once the primary answers.
    pub fn new(primary: Stores, secondary: Stores, cfg: HybridConfig) -> Result<Arc<Hybrid>> {
        Hybrid::compose(primary, secondary, cfg, &Domain::ALL)
    }

    /// As [`Hybrid::new`], for a subset of the domains: the others are not
    /// probed by `health` nor verified (their primary is the secondary).
    pub fn compose(primary: Stores, secondary: Stores, cfg: HybridConfig, domains: &[Domain]) -> Result<Arc<Hybrid>> {
        cfg.validate()?;
        let active: Vec<Domain> = Domain::ALL.into_iter().filter(|d| domains.contains(d)).collect();
        let alerter: Arc<dyn Alerter> = match &cfg.webhook_url {
            Some(u) => Arc::new(HttpWebhook::new(u)),
            None => Arc::new(LogAlerter),
        };
        let mut lanes = Vec::with_capacity(Domain::ALL.len());
        for d in Domain::ALL {
            // Hot position state may come back empty from a restarted server.
            let volatile = d == Domain::Positions;
            let journal = Journal::open(&cfg.journal_dir, d)?;
            lanes.push(DomainState::new(d, cfg.breaker_failures, volatile, journal, alerter.clone()));
        }
        let rollout = Rollout::new(&cfg)?;
        Ok(Arc::new_cyclic(|me| Hybrid {
            primary,
            secondary,
            timeout: Duration::from_millis(cfg.primary_timeout_ms),
            cfg,
            lanes,
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
        self.lanes.iter().map(|d| d.status()).collect()
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
    pub fn active_domains(&self) -> &[Domain] {
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
        opts.domains.retain(|d| self.active.contains(d));
        let r = verify::verify(&self.primary, &self.secondary, &opts).await?;
        for d in &r.domains {
            self.lane(d.domain).counted(d.differences, d.repaired);
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

    /// Re-reads the rollout file now (after this process changed it).
    pub(crate) fn refresh_rollout(&self) -> Result<()> {
        self.rollout.refresh()
    }

    /// What is wrong with the rollout file while it is damaged (the
    /// process keeps serving with the last good stages meanwhile).
    pub fn rollout_damage(&self) -> Option<String> {
        self.rollout.damage()
    }

    /// The stage of an account.
    pub fn stage(&self, book: Option<&BookId>) -> Stage {
        self.rollout.stage(book.map(|b| &b.account))
    }

    /// One domain's state.
    pub(crate) fn lane(&self, d: Domain) -> &DomainState {
        &self.lanes[d.index()]
    }
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
