//! The store traits: small, batch-first, one per domain.
//!
//! Every method validates its input before touching storage and returns a
//! typed [`Error`](crate::Error) when the backend fails; "not found" is an
//! empty map, an empty vector or `None`, never an error.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::asset::{AssetRow, DateRange};
use crate::bar::{Bar, BarKey, BarOverview, BarSeries, BarWriteMode, TimeRange};
use crate::code::Code;
use crate::deal::{AggregateQuery, Deal, DealAggregate, DealQuery, Page, RecordOutcome};
use crate::domain::Domain;
use crate::error::Result;
use crate::ids::BookId;
use crate::position::{ExtremeChange, PositionSnapshot, PriceTick, ReconcileReport};
use crate::quote::Quote;

/// Hot position state, per book.
#[async_trait]
pub trait PositionStore: Send + Sync + fmt::Debug {
    /// The whole book in one call: `_inc_date`, every day count, max/min prices.
    async fn snapshot(&self, book: &BookId) -> Result<PositionSnapshot>;
    /// Day counts of the codes that are tracked (absent codes are left out;
    /// sold codes map to `None`).
    async fn held_days(&self, book: &BookId, codes: &[Code]) -> Result<BTreeMap<Code, Option<u32>>>;
    /// Buy fill: day_count = 0.
    async fn new_held(&self, book: &BookId, codes: &[Code]) -> Result<()>;
    /// Sell fill: day_count = None and the max/min prices dropped.
    async fn mark_sold(&self, book: &BookId, code: Code) -> Result<()>;
    /// SilverQuant's `del_held_day`: day_count = None for each code (a code
    /// not tracked is added so), the max/min prices kept — the strategy
    /// removes those itself (`del_key`).
    async fn del_held_days(&self, book: &BookId, codes: &[Code]) -> Result<()>;
    /// Pre-market: add codes the broker holds with day_count 0, drop codes it no longer holds.
    async fn reconcile(&self, book: &BookId, broker_codes: &[Code]) -> Result<ReconcileReport>;
    /// +1 for every held code, at most once per day. Returns whether it ran.
    async fn inc_held_days(&self, book: &BookId, today: NaiveDate) -> Result<bool>;
    /// Atomic conditional max/min for held codes; returns what changed.
    async fn update_extremes(&self, book: &BookId, ticks: &[PriceTick]) -> Result<Vec<ExtremeChange>>;
    /// Replaces the whole book (import, repair, resync).
    async fn replace_book(&self, book: &BookId, snapshot: &PositionSnapshot) -> Result<()>;
    /// Deletes the book's position state.
    async fn delete_book(&self, book: &BookId) -> Result<()>;
    /// Books that have position state.
    async fn list_books(&self) -> Result<Vec<BookId>>;
    /// An identifier of the server process holding the state (Redis's
    /// `run_id`), when the backend has one. It changes when the server
    /// restarts — which may have lost state (no persistence, a lost AOF
    /// tail) — so the hybrid compares every book when it changes.
    async fn instance(&self) -> Result<Option<String>> {
        Ok(None)
    }
}

/// Latest quotes with a short TTL (5 s by default).
#[async_trait]
pub trait QuoteStore: Send + Sync + fmt::Debug {
    /// Stores quotes; each expires after the store's TTL.
    async fn put_quotes(&self, quotes: &[Quote]) -> Result<()>;
    /// Live quotes of the given codes, in the order asked; expired or unknown codes are left out.
    async fn get_quotes(&self, codes: &[Code]) -> Result<Vec<Quote>>;
}

/// Order and deal records.
#[async_trait]
pub trait DealStore: Send + Sync + fmt::Debug {
    /// Records many deals; the whole batch is validated before anything is stored.
    async fn record_batch(&self, deals: &[Deal]) -> Result<RecordOutcome>;
    /// Filtered, paged, ordered by (time, id).
    async fn query(&self, query: &DealQuery) -> Result<Page<Deal>>;
    /// Per-day or per-month totals of an account.
    async fn aggregate(&self, query: &AggregateQuery) -> Result<Vec<DealAggregate>>;
    /// Deletes the book's deals; returns how many.
    async fn delete_book(&self, book: &BookId) -> Result<u64>;
    /// Deletes these deals of a book (compensation and repair); returns how
    /// many existed. Unknown ids are not an error.
    async fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64>;
    /// Stores these deals of one book, replacing any stored deal with the
    /// same id (repair: one atomic step where the store has one, never a
    /// delete followed by an insert a crash could split). Returns how many
    /// replaced a stored deal.
    async fn replace_deals(&self, book: &BookId, deals: &[Deal]) -> Result<u64>;
    /// Books that have deals.
    async fn list_books(&self) -> Result<Vec<BookId>>;
}

/// Compositions of [`DealStore`] calls: every deal store gets them, no
/// implementor writes them (object_store's `ObjectStoreExt` idea).
#[async_trait]
pub trait DealStoreExt: DealStore {
    /// Records one deal; an id already stored is a duplicate, not an error.
    async fn record(&self, deal: &Deal) -> Result<RecordOutcome> {
        self.record_batch(std::slice::from_ref(deal)).await
    }
}

impl<T: DealStore + ?Sized> DealStoreExt for T {}

/// The equity curve.
#[async_trait]
pub trait AssetStore: Send + Sync + fmt::Debug {
    /// One row per (book, date): a row for a date already stored replaces
    /// its value. All rows in one step (the file store: one atomic replace).
    async fn upsert_assets(&self, book: &BookId, rows: &[AssetRow]) -> Result<()>;
    /// Deletes the rows of these dates; returns how many existed.
    async fn delete_assets(&self, book: &BookId, dates: &[NaiveDate]) -> Result<u64>;
    /// Rows in the range, by date.
    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>>;
    /// Deletes the book's rows.
    async fn delete_book(&self, book: &BookId) -> Result<()>;
    /// Books that have rows.
    async fn list_books(&self) -> Result<Vec<BookId>>;
}

/// Compositions of [`AssetStore`] calls.
#[async_trait]
pub trait AssetStoreExt: AssetStore {
    /// One row per (book, date): a second call for the same date replaces the value.
    async fn upsert_asset(&self, book: &BookId, row: AssetRow) -> Result<()> {
        self.upsert_assets(book, std::slice::from_ref(&row)).await
    }
}

impl<T: AssetStore + ?Sized> AssetStoreExt for T {}

/// K-line history.
#[async_trait]
pub trait BarStore: Send + Sync + fmt::Debug {
    /// Saves a series (replace or upsert); returns the bars written.
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64>;
    /// Saves many series in one call (a whole market's import); returns the
    /// bars written. Every series is validated before any is written
    /// ([`crate::validate_batch`]). Backends write in bulk; the default
    /// saves one series after the other.
    async fn save_bars_batch(&self, series: &[BarSeries], mode: BarWriteMode) -> Result<u64> {
        crate::validate_batch(series)?;
        let mut n = 0;
        for s in series {
            n += self.save_bars(s, mode).await?;
        }
        Ok(n)
    }
    /// One series in a range; empty when there is none.
    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>>;
    /// Many series in one call (the whole market at start-up); one entry per
    /// key asked, in order, with empty bars where there are none.
    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>>;
    /// Count, first and last per stored series.
    async fn overview(&self) -> Result<Vec<BarOverview>>;
    /// Deletes the bars of a series in a range; returns how many.
    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64>;
}

/// Liveness and latency of one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendHealth {
    /// Backend name.
    pub backend: String,
    /// Whether it answered.
    pub up: bool,
    /// How long the probe took.
    #[serde(with = "micros")]
    pub latency: Duration,
    /// Backend-specific facts (paths, memory, server version, …).
    pub details: BTreeMap<String, serde_json::Value>,
    /// The error, when down.
    pub error: Option<String>,
}

mod micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

/// A backend that can report its health.
#[async_trait]
pub trait HealthCheck: Send + Sync + fmt::Debug {
    /// Probes the backend; never fails — a failure is reported as `up: false`.
    async fn health(&self) -> BackendHealth;
}

/// One store per domain, as built from configuration.
#[derive(Clone, Debug)]
pub struct Stores {
    /// Hot position state.
    pub positions: Arc<dyn PositionStore>,
    /// Latest quotes.
    pub quotes: Arc<dyn QuoteStore>,
    /// Deals.
    pub deals: Arc<dyn DealStore>,
    /// Equity curve.
    pub assets: Arc<dyn AssetStore>,
    /// K-lines.
    pub bars: Arc<dyn BarStore>,
    /// Every backend in use.
    pub backends: Vec<Arc<dyn HealthCheck>>,
}

impl Stores {
    /// Every store from one backend that implements them all.
    pub fn from_one<S>(s: Arc<S>) -> Stores
    where
        S: PositionStore + QuoteStore + DealStore + AssetStore + BarStore + HealthCheck + 'static,
    {
        Stores {
            positions: s.clone(),
            quotes: s.clone(),
            deals: s.clone(),
            assets: s.clone(),
            bars: s.clone(),
            backends: vec![s],
        }
    }

    /// Serves `domain` from `other`'s store for it (routing: the facade
    /// builds a tier's stores by taking each domain from its backend).
    pub fn take(&mut self, domain: Domain, other: &Stores) {
        match domain {
            Domain::Positions => self.positions = other.positions.clone(),
            Domain::Quotes => self.quotes = other.quotes.clone(),
            Domain::Deals => self.deals = other.deals.clone(),
            Domain::Assets => self.assets = other.assets.clone(),
            Domain::Bars => self.bars = other.bars.clone(),
        }
    }

    /// The books that have records in `domain` (none for quotes and bars,
    /// which belong to no book).
    pub async fn books(&self, domain: Domain) -> Result<Vec<BookId>> {
        match domain {
            Domain::Positions => self.positions.list_books().await,
            Domain::Deals => self.deals.list_books().await,
            Domain::Assets => self.assets.list_books().await,
            Domain::Quotes | Domain::Bars => Ok(Vec::new()),
        }
    }

    /// Health of every backend.
    pub async fn health(&self) -> Vec<BackendHealth> {
        let mut out = Vec::with_capacity(self.backends.len());
        for b in &self.backends {
            out.push(b.health().await);
        }
        out
    }
}
