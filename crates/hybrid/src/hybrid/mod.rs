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

use sqdata_core::{BookId, Deal, DealQuery, DealScope, DealStore, Domain, Error, MAX_PAGE_SIZE, Result, Stores};

use crate::alert::{Alerter, HttpWebhook, LogAlerter};
use crate::config::{HybridConfig, Stage};
use crate::domain::{DomainState, DomainStatus};
use crate::journal::{Journal, Unit};
use crate::locks::Locks;
use crate::rollout::{ALL_BOOKS, Rollout};
use crate::verify::{self, VerifyOptions, VerifyReport};

const BACKEND: &str = "hybrid";

/// How often every process re-reads the rollout file (stages, adoptions).
/// A tool that changes adoptions (`sqdata migrate`) waits two of these
/// before it counts on every process having seen the change.
pub const ROLLOUT_POLL: Duration = Duration::from_millis(200);

/// A store call's future owning what it needs, so a write can run to its
/// end on a task of its own (see `rules.rs`, `write`).
pub(crate) type Fut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + 'static>>;

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
    /// (domain, book) found with state in the files but not adopted: served
    /// by the files until a migration or promotion adopts them (no need to
    /// look at the files again on every write meanwhile).
    waiting: parking_lot::Mutex<std::collections::HashSet<(Domain, Option<BookId>)>>,
    /// Serialises adoption decisions in this process, so no write reaches
    /// the files of a book between its emptiness check and its adoption.
    adopting: tokio::sync::Mutex<()>,
    /// Per-book locks across processes (`crate::locks`).
    locks: Locks,
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
            // Only the composed domains journal (and adopt other processes'
            // journals): nothing here would ever replay the others.
            let journal = if active.contains(&d) { Journal::open(&cfg.journal_dir, d)? } else { Journal::none() };
            lanes.push(DomainState::new(d, cfg.breaker_failures, volatile, journal, alerter.clone()));
        }
        let rollout = Rollout::new(&cfg)?;
        let locks = Locks::new(&cfg);
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
            waiting: parking_lot::Mutex::new(std::collections::HashSet::new()),
            adopting: tokio::sync::Mutex::new(()),
            locks,
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
        let r = verify::verify_locked(&self.primary, &self.secondary, &opts, Some(&self.locks)).await?;
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

    /// As `refresh_rollout`, on the blocking pool.
    pub(crate) async fn refresh_rollout_now(&self) -> Result<()> {
        let Some(me) = self.me.upgrade() else { return Ok(()) };
        blocking(move || me.rollout.refresh()).await
    }

    /// Re-reads the rollout file if it changed (what the 200 ms poll does),
    /// now, on the blocking pool. A damaged file keeps the last good state.
    pub(crate) async fn poll_rollout(&self) {
        let Some(me) = self.me.upgrade() else { return };
        let _ = blocking(move || {
            me.rollout.poll();
            Ok(())
        })
        .await;
    }

    /// The rollout file could not be read or changed while choosing a
    /// write's stage: logged and reported (`rollout_damage`, health), and
    /// the write goes to the files — rollout damage never stops a process.
    fn rollout_trouble(&self, domain: Domain, book: Option<&BookId>, e: &Error) {
        tracing::warn!(error = %e, %domain, book = ?book, "rollout file unusable; this write goes to the files only");
        self.rollout.damaged(e);
    }

    /// Whether only adoption safety keeps this book's writes on the files
    /// (the account's stage involves the servers, the book is not adopted).
    pub(crate) fn held_back(&self, domain: Domain, book: Option<&BookId>) -> bool {
        self.stage(book) != Stage::Files && domain.durable() && !self.rollout.adopted(domain, book)
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

    /// Makes `domain`'s journal refuse appends (as a full disk would), to
    /// test the write rules. Not for production use.
    #[doc(hidden)]
    pub fn fail_journal(&self, domain: Domain, fail: bool) {
        self.lane(domain).journal.set_failing(fail);
    }

    /// Records that the servers hold these books of `domain` whole (`None`:
    /// every book, and for bars every series) — after a migration or a
    /// verified promotion. Effective here at once, elsewhere within 200 ms.
    pub fn adopt(&self, domain: Domain, books: Option<&[BookId]>) -> Result<()> {
        crate::rollout::adopt(&self.cfg, domain, books)?;
        self.waiting.lock().retain(|(d, _)| *d != domain);
        self.rollout.refresh()
    }

    /// The stage a read of `domain` (for `book`; `None`: market-wide or
    /// every book) follows: the account's stage, or the files while the
    /// servers have not received the book (adoption safety).
    pub(crate) fn read_stage(&self, domain: Domain, book: Option<&BookId>) -> Stage {
        let st = self.stage(book);
        if st == Stage::Files || !domain.durable() || self.rollout.adopted(domain, book) {
            return st;
        }
        Stage::Files
    }

    /// As [`read_stage`](Hybrid::read_stage) for a write, which may adopt:
    /// a book (or, for bars, a domain) the files hold nothing of is born on
    /// the servers, so they hold it whole from its first write on.
    pub(crate) async fn write_stage(&self, domain: Domain, book: Option<&BookId>) -> Result<Stage> {
        let st = self.stage(book);
        if st == Stage::Files || !domain.durable() || self.rollout.adopted(domain, book) {
            return Ok(st);
        }
        let key = (domain, book.cloned());
        if self.waiting.lock().contains(&key) {
            return Ok(Stage::Files);
        }
        let _g = self.adopting.lock().await;
        if self.rollout.adopted(domain, book) {
            return Ok(st);
        }
        if self.files_hold_nothing(domain, book).await? {
            // Persisted before the first write reaches the files: another
            // process that sees this book's files sees its adoption too.
            let (cfg, b) = (self.cfg.clone(), book.cloned());
            let adopted =
                blocking(move || crate::rollout::adopt(&cfg, domain, b.as_ref().map(std::slice::from_ref)).map(|_| ()))
                    .await;
            if let Err(e) = adopted {
                // Not adopted: the book is born on the files and waits for
                // a migration like any other book the files hold.
                self.rollout_trouble(domain, book, &e);
                self.waiting.lock().insert(key);
                return Ok(Stage::Files);
            }
            if let Err(e) = self.refresh_rollout_now().await {
                // The adoption is on disk; this process sees it at its next poll.
                self.rollout_trouble(domain, book, &e);
            }
            return Ok(st);
        }
        // The files hold it: adopted meanwhile by another process (look at
        // the file itself, not the cache), or waiting for a migration.
        if let Err(e) = self.refresh_rollout_now().await {
            self.rollout_trouble(domain, book, &e);
        }
        if self.rollout.adopted(domain, book) {
            return Ok(st);
        }
        self.waiting.lock().insert(key);
        Ok(Stage::Files)
    }

    /// The stage of an account-wide read: the account's, if every book of it
    /// the files hold is adopted; else the files.
    pub(crate) async fn account_stage(&self, domain: Domain, account: &sqdata_core::AccountCode) -> Result<Stage> {
        let st = self.rollout.stage(Some(account));
        if st == Stage::Files || self.rollout.adopted(domain, None) {
            return Ok(st);
        }
        for b in self.secondary.books(domain).await? {
            if &b.account == account && !self.rollout.adopted(domain, Some(&b)) {
                return Ok(Stage::Files);
            }
        }
        Ok(st)
    }

    async fn files_hold_nothing(&self, domain: Domain, book: Option<&BookId>) -> Result<bool> {
        let s = &self.secondary;
        Ok(match (domain, book) {
            (Domain::Positions, Some(b)) => {
                let snap = s.positions.snapshot(b).await?;
                snap.positions.is_empty() && snap.inc_date.is_none()
            }
            (Domain::Deals, Some(b)) => {
                s.deals.query(&DealQuery { page_size: 1, ..DealQuery::book(b.clone()) }).await?.data.is_empty()
            }
            (Domain::Assets, Some(b)) => s.assets.assets(b, sqdata_core::DateRange::all()).await?.is_empty(),
            (Domain::Bars, _) => s.bars.overview().await?.is_empty(),
            _ => false,
        })
    }

    /// Per domain, the books the files hold that the servers have not been
    /// given yet (served by the files until `sqdata migrate` or `sqdata
    /// rollout promote` adopts them).
    pub async fn waiting_books(&self) -> Result<BTreeMap<Domain, Vec<String>>> {
        let mut out = BTreeMap::new();
        for &d in &self.active {
            if !d.durable() || self.rollout.adopted(d, None) {
                continue;
            }
            let list: Vec<String> = if d.per_book() {
                self.secondary
                    .books(d)
                    .await?
                    .into_iter()
                    .filter(|b| !self.rollout.adopted(d, Some(b)))
                    .map(|b| b.to_string())
                    .collect()
            } else if self.files_hold_nothing(d, None).await? {
                Vec::new()
            } else {
                vec![ALL_BOOKS.to_string()]
            };
            if !list.is_empty() {
                out.insert(d, list);
            }
        }
        Ok(out)
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

/// `e` with `note` added to its message, of the same kind where the kind
/// has a message (a timeout, which has none, becomes "unavailable" — also
/// retryable).
pub(crate) fn with_context(e: Error, note: &str) -> Error {
    match e {
        Error::InvalidInput { field, value, reason } => {
            Error::InvalidInput { field, value, reason: format!("{reason}; {note}") }
        }
        Error::Corrupt { location, reason, last_good } => {
            Error::Corrupt { location, reason: format!("{reason}; {note}"), last_good }
        }
        Error::Unavailable { backend, message, source } => {
            Error::Unavailable { backend, message: format!("{message}; {note}"), source }
        }
        Error::Backend { backend, message, retryable, source } => {
            Error::Backend { backend, message: format!("{message}; {note}"), retryable, source }
        }
        Error::Unsupported { backend, what } => Error::Unsupported { backend, what: format!("{what}; {note}") },
        Error::Config(m) => Error::Config(format!("{m}; {note}")),
        other @ Error::Timeout { backend, .. } => {
            Error::Unavailable { backend, message: format!("{other}; {note}"), source: None }
        }
        Error::Io { path, source } => Error::Io { path: format!("{path} ({note})"), source },
        other => other,
    }
}

/// Runs blocking file work (the rollout file) on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Backend {
        backend: BACKEND,
        message: format!("worker failed: {e}"),
        retryable: false,
        source: None,
    })?
}
