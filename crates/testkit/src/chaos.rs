//! A fault-injection layer (OpenDAL's chaos layer idea): wraps stores and,
//! on command, makes every call fail (a dead server), hang (a frozen one) or
//! succeed. Drives the hybrid store's tests without a real server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use sqdata_core::{
    AggregateQuery, AssetRow, AssetStore, BackendHealth, Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode,
    BookId, Code, DateRange, Deal, DealAggregate, DealQuery, DealStore, Error, ExtremeChange, HealthCheck, Page,
    PositionSnapshot, PositionStore, PriceTick, Quote, QuoteStore, ReconcileReport, RecordOutcome, Result, Stores,
    TimeRange, async_trait,
};

/// What the wrapped store does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass every call through.
    None,
    /// Fail every call with a retryable `Unavailable` error.
    Fail,
    /// Fail only writes.
    FailWrites,
    /// Hang every call (a frozen server) until the fault changes.
    Hang,
    /// Apply writes, then hang before answering (a server that took the
    /// write and froze, or a reply lost on the way: the caller times out
    /// not knowing). Reads pass.
    ApplyThenHang,
}

/// The switch, shared by every clone.
#[derive(Debug, Clone)]
pub struct Switch {
    state: Arc<AtomicU8>,
    calls: Arc<AtomicU64>,
    writes: Arc<AtomicU64>,
    /// Calls left before the switch turns to `Fail` (-1: no countdown).
    countdown: Arc<std::sync::atomic::AtomicI64>,
}

impl Default for Switch {
    fn default() -> Switch {
        Switch {
            state: Arc::default(),
            calls: Arc::default(),
            writes: Arc::default(),
            countdown: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
        }
    }
}

impl Switch {
    /// Sets the fault.
    pub fn set(&self, f: Fault) {
        self.state.store(
            match f {
                Fault::None => 0,
                Fault::Fail => 1,
                Fault::FailWrites => 2,
                Fault::Hang => 3,
                Fault::ApplyThenHang => 4,
            },
            Ordering::SeqCst,
        );
    }

    /// Lets the next `n` calls through, then fails every call (a server
    /// that dies between two calls of one operation).
    pub fn fail_after_calls(&self, n: i64) {
        self.set(Fault::None);
        self.countdown.store(n, Ordering::SeqCst);
    }

    fn get(&self) -> Fault {
        match self.state.load(Ordering::SeqCst) {
            1 => Fault::Fail,
            2 => Fault::FailWrites,
            3 => Fault::Hang,
            4 => Fault::ApplyThenHang,
            _ => Fault::None,
        }
    }

    /// Calls that reached the switch.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Write calls that reached the switch.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    async fn gate(&self, write: bool) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if write {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        if self.countdown.load(Ordering::SeqCst) >= 0 && self.countdown.fetch_sub(1, Ordering::SeqCst) <= 0 {
            self.countdown.store(-1, Ordering::SeqCst);
            self.set(Fault::Fail);
        }
        loop {
            match self.get() {
                Fault::None => return Ok(()),
                Fault::FailWrites if !write => return Ok(()),
                Fault::Fail | Fault::FailWrites => {
                    return Err(Error::Unavailable {
                        backend: "chaos",
                        message: "injected failure".into(),
                        source: None,
                    });
                }
                Fault::Hang => tokio::time::sleep(Duration::from_millis(20)).await,
                Fault::ApplyThenHang => return Ok(()),
            }
        }
    }

    /// A call through the switch: the gate, the call, and for
    /// `ApplyThenHang` writes a hang after the call took effect.
    async fn run<T>(&self, write: bool, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        self.gate(write).await?;
        let r = call.await;
        while write && self.get() == Fault::ApplyThenHang {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        r
    }
}

/// Stores behind a [`Switch`].
#[derive(Debug, Clone)]
pub struct Chaos {
    inner: Stores,
    /// The switch.
    pub switch: Switch,
}

impl Chaos {
    /// Wraps `inner`.
    pub fn wrap(inner: Stores) -> Arc<Chaos> {
        Arc::new(Chaos { inner, switch: Switch::default() })
    }

    /// As `Stores`.
    pub fn stores(self: &Arc<Self>) -> Stores {
        Stores::from_one(self.clone())
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl PositionStore for Chaos {
    async fn snapshot(&self, b: &BookId) -> Result<PositionSnapshot> {
        self.switch.run(false, self.inner.positions.snapshot(b)).await
    }
    async fn held_days(&self, b: &BookId, c: &[Code]) -> Result<BTreeMap<Code, Option<u32>>> {
        self.switch.run(false, self.inner.positions.held_days(b, c)).await
    }
    async fn new_held(&self, b: &BookId, c: &[Code]) -> Result<()> {
        self.switch.run(true, self.inner.positions.new_held(b, c)).await
    }
    async fn mark_sold(&self, b: &BookId, c: Code) -> Result<()> {
        self.switch.run(true, self.inner.positions.mark_sold(b, c)).await
    }
    async fn del_held_days(&self, b: &BookId, c: &[Code]) -> Result<()> {
        self.switch.run(true, self.inner.positions.del_held_days(b, c)).await
    }
    async fn reconcile(&self, b: &BookId, c: &[Code]) -> Result<ReconcileReport> {
        self.switch.run(true, self.inner.positions.reconcile(b, c)).await
    }
    async fn inc_held_days(&self, b: &BookId, d: NaiveDate) -> Result<bool> {
        self.switch.run(true, self.inner.positions.inc_held_days(b, d)).await
    }
    async fn update_extremes(&self, b: &BookId, t: &[PriceTick]) -> Result<Vec<ExtremeChange>> {
        self.switch.run(true, self.inner.positions.update_extremes(b, t)).await
    }
    async fn replace_book(&self, b: &BookId, s: &PositionSnapshot) -> Result<()> {
        self.switch.run(true, self.inner.positions.replace_book(b, s)).await
    }
    async fn delete_book(&self, b: &BookId) -> Result<()> {
        self.switch.run(true, self.inner.positions.delete_book(b)).await
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.switch.run(false, self.inner.positions.list_books()).await
    }
    async fn instance(&self) -> Result<Option<String>> {
        self.switch.run(false, self.inner.positions.instance()).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl QuoteStore for Chaos {
    async fn put_quotes(&self, q: &[Quote]) -> Result<()> {
        self.switch.run(true, self.inner.quotes.put_quotes(q)).await
    }
    async fn get_quotes(&self, c: &[Code]) -> Result<Vec<Quote>> {
        self.switch.run(false, self.inner.quotes.get_quotes(c)).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl DealStore for Chaos {
    async fn record_batch(&self, d: &[Deal]) -> Result<RecordOutcome> {
        self.switch.run(true, self.inner.deals.record_batch(d)).await
    }
    async fn query(&self, q: &DealQuery) -> Result<Page<Deal>> {
        self.switch.run(false, self.inner.deals.query(q)).await
    }
    async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        self.switch.run(false, self.inner.deals.aggregate(q)).await
    }
    async fn delete_book(&self, b: &BookId) -> Result<u64> {
        self.switch.run(true, self.inner.deals.delete_book(b)).await
    }
    async fn delete_deals(&self, b: &BookId, ids: &[String]) -> Result<u64> {
        self.switch.run(true, self.inner.deals.delete_deals(b, ids)).await
    }
    async fn replace_deals(&self, b: &BookId, d: &[Deal]) -> Result<u64> {
        self.switch.run(true, self.inner.deals.replace_deals(b, d)).await
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.switch.run(false, self.inner.deals.list_books()).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl AssetStore for Chaos {
    async fn upsert_assets(&self, b: &BookId, r: &[AssetRow]) -> Result<()> {
        self.switch.run(true, self.inner.assets.upsert_assets(b, r)).await
    }
    async fn delete_assets(&self, b: &BookId, d: &[NaiveDate]) -> Result<u64> {
        self.switch.run(true, self.inner.assets.delete_assets(b, d)).await
    }
    async fn assets(&self, b: &BookId, r: DateRange) -> Result<Vec<AssetRow>> {
        self.switch.run(false, self.inner.assets.assets(b, r)).await
    }
    async fn delete_book(&self, b: &BookId) -> Result<()> {
        self.switch.run(true, self.inner.assets.delete_book(b)).await
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.switch.run(false, self.inner.assets.list_books()).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl BarStore for Chaos {
    async fn save_bars(&self, s: &BarSeries, m: BarWriteMode) -> Result<u64> {
        self.switch.run(true, self.inner.bars.save_bars(s, m)).await
    }
    async fn save_bars_batch(&self, s: &[BarSeries], m: BarWriteMode) -> Result<u64> {
        self.switch.run(true, self.inner.bars.save_bars_batch(s, m)).await
    }
    async fn load_bars(&self, k: &BarKey, r: TimeRange) -> Result<Vec<Bar>> {
        self.switch.run(false, self.inner.bars.load_bars(k, r)).await
    }
    async fn load_bars_batch(&self, k: &[BarKey], r: TimeRange) -> Result<Vec<BarSeries>> {
        self.switch.run(false, self.inner.bars.load_bars_batch(k, r)).await
    }
    async fn overview(&self) -> Result<Vec<BarOverview>> {
        self.switch.run(false, self.inner.bars.overview()).await
    }
    async fn delete_bars(&self, k: &BarKey, r: TimeRange) -> Result<u64> {
        self.switch.run(true, self.inner.bars.delete_bars(k, r)).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl HealthCheck for Chaos {
    async fn health(&self) -> BackendHealth {
        BackendHealth {
            backend: "chaos".into(),
            up: self.switch.get() == Fault::None,
            latency: Duration::from_nanos(1),
            details: BTreeMap::new(),
            error: None,
        }
    }
}
