//! The way back from degraded: the prober, the adoption of journals left by
//! processes that died, and the replay that brings a primary up to date
//! before it serves again.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sqdata_core::{BarKey, BookId, Code, DateRange, DealQuery, Domain, Error, Result, TimeRange, layer};

use super::Hybrid;
use super::rules::Towards;
use crate::config::Truth;
use crate::domain::{DomainState, Mode};
use crate::journal::{Entry, Unit};
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
                tokio::time::sleep(super::ROLLOUT_POLL).await;
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
    pub(crate) async fn probe(&self, d: Domain) -> Result<()> {
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

    /// Replays journal entries into the primary, each unit under its book
    /// locks and within the primary's deadline. An entry that can never
    /// replay — a line that is not a unit, a unit whose copy fails with
    /// invalid input or corrupt data (a damaged book file) — is
    /// quarantined instead of blocking the domain; any other failure (the
    /// primary unreachable or slow) ends the replay, to be tried again.
    async fn replay_entries(&self, lane: &DomainState, entries: Vec<Entry>, q: &mut BTreeSet<String>) -> Result<()> {
        let mut units = Vec::with_capacity(entries.len());
        for e in entries {
            match e {
                Entry::Unit(u) => units.push(u),
                Entry::Unreadable { line, error } => self.quarantine(lane, None, Some(line), error, q).await?,
            }
        }
        for u in dedup(units) {
            match self.bounded("replay", self.copy_unit_locked(lane.domain, &u, Towards::Primary)).await {
                Ok(()) => {}
                Err(e) if poison(&e) => self.quarantine(lane, Some(&u), None, e.to_string(), q).await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sets one journal entry aside: appended to
    /// `<journal_dir>/<domain>-quarantine.jsonl` with its error, counted
    /// (`sqdata_hybrid_quarantined_total`, `quarantined` in the status),
    /// logged and alerted; the books it names are no longer adopted, so
    /// their reads come from the files (the truth) until they are migrated
    /// again. `q` holds what this recovery quarantined already.
    async fn quarantine(
        &self,
        lane: &DomainState,
        unit: Option<&Unit>,
        line: Option<String>,
        error: String,
        q: &mut BTreeSet<String>,
    ) -> Result<()> {
        let d = lane.domain;
        let (books, whole) = match (unit, &line) {
            (Some(u), _) => unit_books(u),
            (None, Some(l)) => {
                serde_json::from_str::<serde_json::Value>(l).map(|v| value_books(&v)).unwrap_or_default()
            }
            (None, None) => (Vec::new(), false),
        };
        let tag = format!("{unit:?}{line:?}");
        if !q.insert(tag) {
            return Ok(());
        }
        let entry = serde_json::json!({
            "time": chrono::Local::now().to_rfc3339(),
            "domain": d,
            "unit": unit,
            "line": line,
            "error": error,
        });
        let dir = self.cfg.journal_dir.clone();
        super::blocking(move || crate::journal::quarantine(&dir, d, &entry)).await?;
        let names: Vec<String> = books.iter().map(ToString::to_string).collect();
        if whole || !books.is_empty() {
            let cfg = self.cfg.clone();
            super::blocking(move || {
                let list = (!whole).then_some(books);
                crate::rollout::unadopt(&cfg, d, list.as_deref()).map(|_| ())
            })
            .await?;
            self.refresh_rollout_now().await?;
        }
        let path = crate::journal::quarantine_path(&self.cfg.journal_dir, d);
        tracing::error!(
            domain = %d, books = ?names, error = %error, quarantine = %path.display(),
            "a journal entry that can never be replayed was quarantined; its books are served by the files"
        );
        lane.quarantined(format!(
            "a journal entry could not be replayed ({error}); set aside in {}; books served by the files \
             until migrated again: {names:?}",
            path.display()
        ));
        Ok(())
    }

    /// Books of the positions domain whose files cannot be read (a corrupt
    /// book file): left out of recovery's comparison (which would fail on
    /// them every time) and, if adopted, quarantined — their reads then
    /// come from the files, which report the damage.
    async fn unreadable_books(&self, lane: &DomainState, q: &mut BTreeSet<String>) -> Result<Vec<BookId>> {
        let mut bad = Vec::new();
        for b in self.secondary.books(Domain::Positions).await? {
            match self.secondary.positions.snapshot(&b).await {
                Err(e) if poison(&e) => {
                    if self.rollout.adopted(Domain::Positions, Some(&b)) {
                        let u = Unit::Book { book: b.clone() };
                        self.quarantine(lane, Some(&u), None, e.to_string(), q).await?;
                    }
                    bad.push(b);
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        Ok(bad)
    }

    /// Positions: compares every readable book with the files and repairs
    /// the primary (a restarted Redis may have come back without its state:
    /// no persistence, a lost AOF tail), not only the journaled books.
    /// First a read-only pass; writes still arriving (journaled) can make
    /// it differ, so the books that differ are repaired and counted only
    /// under the gate, each under its book lock (another process's dual
    /// write of it cannot interleave) and within the primary's deadline.
    /// Returns the journal offset replayed up to.
    async fn recover_positions(&self, lane: &DomainState, mut upto: u64, q: &mut BTreeSet<String>) -> Result<u64> {
        let bad = self.unreadable_books(lane, q).await?;
        let mut books: BTreeSet<BookId> = BTreeSet::new();
        for side in [&self.primary, &self.secondary] {
            books.extend(side.books(Domain::Positions).await?);
        }
        books.retain(|b| !bad.contains(b));
        let opts = VerifyOptions {
            truth: Truth::Secondary,
            domains: vec![Domain::Positions],
            books: Some(books.into_iter().collect()),
            max_listed: usize::MAX,
            ..VerifyOptions::default()
        };
        let quick = verify::verify(&self.primary, &self.secondary, &opts).await?;
        if quick.total_differences() == 0 {
            return Ok(upto);
        }
        let differing: BTreeSet<BookId> = quick.differences.iter().filter_map(|d| d.partition.parse().ok()).collect();
        let _g = lane.gate.write().await;
        let (entries, end) = lane.with_journal(move |j| j.read_after(upto)).await?;
        self.replay_entries(lane, entries, q).await?;
        upto = end;
        let (mut differences, mut repaired) = (0, 0);
        for b in differing {
            match self.bounded("repair", self.repair_book(&b)).await {
                Ok(Some((d, r))) => (differences, repaired) = (differences + d, repaired + r),
                Ok(None) => {}
                Err(e) if poison(&e) => {
                    self.quarantine(lane, Some(&Unit::Book { book: b }), None, e.to_string(), q).await?
                }
                Err(e) => return Err(e),
            }
        }
        if differences > 0 {
            tracing::warn!(differences, "the primary lost position state while it was away; restored from the files");
            lane.counted(differences, repaired);
        }
        Ok(upto)
    }

    /// Makes the primary's positions of `book` the files', under the book's
    /// lock, if they differ: `Some((fields that differed, positions
    /// written))`.
    async fn repair_book(&self, book: &BookId) -> Result<Option<(u64, u64)>> {
        let u = Unit::Book { book: book.clone() };
        let _locks = self.locks.lock(crate::locks::keys(Domain::Positions, std::slice::from_ref(&u))).await?;
        let (p, s) = (self.primary.positions.snapshot(book).await?, self.secondary.positions.snapshot(book).await?);
        if p == s {
            return Ok(None);
        }
        let codes: BTreeSet<_> = p.positions.keys().chain(s.positions.keys()).collect();
        let differ = codes.into_iter().filter(|c| p.positions.get(*c) != s.positions.get(*c)).count() as u64
            + u64::from(p.inc_date != s.inc_date);
        self.copy_unit(Domain::Positions, &u, Towards::Primary).await?;
        Ok(Some((differ, s.positions.len().max(1) as u64)))
    }

    /// Brings a degraded domain's primary up to date from the secondary and
    /// switches it back to healthy. Returns whether it did (`false`: it was
    /// not degraded, or it degraded again meanwhile — the next probe
    /// retries).
    pub async fn recover(&self, d: Domain) -> Result<bool> {
        let lane = self.lane(d);
        if !lane.begin_recovery() {
            return Ok(false);
        }
        let t = Instant::now();
        let run = async {
            let mut q = BTreeSet::new();
            let (entries, mut upto) = lane.with_journal(|j| j.pending()).await?;
            self.replay_entries(lane, entries, &mut q).await?;
            if d == Domain::Positions {
                upto = self.recover_positions(lane, upto, &mut q).await?;
            }
            // Writes that arrived meanwhile, under the gate: none can slip
            // by. The checkpoint and the switch to healthy happen holding
            // the journal, and only when nothing is pending: an orphan
            // adopted meanwhile is replayed in the next round, not stranded.
            let _g = lane.gate.write().await;
            for _ in 0..5 {
                let (entries, end) = lane.with_journal(move |j| j.read_after(upto)).await?;
                self.replay_entries(lane, entries, &mut q).await?;
                let kept = std::mem::take(&mut *lane.unjournaled.lock());
                let entries = kept.iter().cloned().map(Entry::Unit).collect();
                if let Err(e) = self.replay_entries(lane, entries, &mut q).await {
                    lane.unjournaled.lock().extend(kept);
                    return Err(e);
                }
                let Some(me) = self.me.upgrade() else { return Ok(false) };
                let done = super::blocking(move || {
                    let lane = me.lane(d);
                    lane.journal.checkpoint_then(end, || lane.recovered())
                })
                .await?;
                match done {
                    Some(switched) => return Ok(switched),
                    None => upto = end,
                }
            }
            Err(Error::Unavailable {
                backend: "hybrid",
                message: "the journal kept growing during recovery (orphans adopted); trying again".into(),
                source: None,
            })
        };
        match run.await {
            Ok(switched) => {
                if switched {
                    metrics::histogram!("sqdata_hybrid_resync_seconds", "domain" => lane.name)
                        .record(t.elapsed().as_secs_f64());
                }
                Ok(switched)
            }
            Err(e) => {
                lane.recovery_failed(&e);
                Err(e)
            }
        }
    }
}

/// Whether a replay failure can never succeed by trying again.
fn poison(e: &Error) -> bool {
    matches!(e, Error::InvalidInput { .. } | Error::Corrupt { .. })
}

/// The books a unit names, and whether it is the whole domain (bars).
fn unit_books(u: &Unit) -> (Vec<BookId>, bool) {
    match u {
        Unit::Book { book }
        | Unit::DealsDeleted { book, .. }
        | Unit::Asset { book, .. }
        | Unit::AssetDays { book, .. }
        | Unit::BookDeleted { book } => (vec![book.clone()], false),
        Unit::Deals { deals } => {
            let set: BTreeSet<BookId> = deals.iter().map(|d| d.book.clone()).collect();
            (set.into_iter().collect(), false)
        }
        Unit::Series { .. } => (Vec::new(), true),
    }
}

/// The books an unreadable entry still names, as far as it parses.
fn value_books(v: &serde_json::Value) -> (Vec<BookId>, bool) {
    let book = |x: &serde_json::Value| serde_json::from_value::<BookId>(x.clone()).ok();
    let mut out: BTreeSet<BookId> = v.get("book").and_then(book).into_iter().collect();
    if let Some(ds) = v.get("deals").and_then(|d| d.as_array()) {
        out.extend(ds.iter().filter_map(|d| d.get("book").and_then(book)));
    }
    (out.into_iter().collect(), v.get("key").is_some())
}
