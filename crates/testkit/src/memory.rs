//! [`MemoryStore`]: the in-memory reference implementation of every store
//! trait, built directly on `sqdata_core::position::rules`. The conformance
//! suite runs against it on every plain test run; hybrid and fault tests use
//! it as a secondary.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use parking_lot::Mutex;
use sqdata_core::position::rules;
use sqdata_core::{
    AggregateQuery, AssetRow, AssetStore, BackendHealth, Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode,
    BookId, Code, DateRange, Deal, DealAggregate, DealQuery, DealStore, ExtremeChange, HealthCheck, Page,
    PositionSnapshot, PositionStore, PriceTick, Quote, QuoteStore, ReconcileReport, RecordOutcome, Result, TimeRange,
    async_trait, validate_ticks,
};

#[derive(Debug, Default)]
struct State {
    /// Bumped by [`MemoryStore::restart_empty`].
    generation: u64,
    positions: HashMap<BookId, PositionSnapshot>,
    quotes: HashMap<Code, (Quote, Instant)>,
    deals: BTreeMap<(BookId, String), Deal>,
    assets: HashMap<BookId, BTreeMap<NaiveDate, f64>>,
    bars: BTreeMap<BarKey, Vec<Bar>>,
}

/// Every store trait in memory. Clones share state.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    quote_ttl: Duration,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(sqdata_core::DEFAULT_QUOTE_TTL)
    }
}

impl MemoryStore {
    /// An empty store whose quotes live for `quote_ttl`.
    pub fn new(quote_ttl: Duration) -> MemoryStore {
        MemoryStore { state: Arc::default(), quote_ttl }
    }

    /// Simulates a server restart without persistence: every domain empty,
    /// a new [`PositionStore::instance`] id.
    pub fn restart_empty(&self) {
        let mut s = self.state.lock();
        let generation = s.generation + 1;
        *s = State { generation, ..State::default() };
    }

    fn mutate<R>(&self, book: &BookId, f: impl FnOnce(&mut PositionSnapshot) -> R) -> R {
        let mut s = self.state.lock();
        let snap = s.positions.entry(book.clone()).or_default();
        let r = f(snap);
        if snap.positions.is_empty() && snap.inc_date.is_none() {
            s.positions.remove(book);
        }
        r
    }
}

#[async_trait]
impl PositionStore for MemoryStore {
    async fn snapshot(&self, book: &BookId) -> Result<PositionSnapshot> {
        Ok(self.state.lock().positions.get(book).cloned().unwrap_or_default())
    }
    async fn held_days(&self, book: &BookId, codes: &[Code]) -> Result<BTreeMap<Code, Option<u32>>> {
        let s = self.state.lock();
        Ok(s.positions.get(book).map(|p| rules::held_days(p, codes)).unwrap_or_default())
    }
    async fn new_held(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        self.mutate(book, |s| rules::new_held(s, codes));
        Ok(())
    }
    async fn mark_sold(&self, book: &BookId, code: Code) -> Result<()> {
        self.mutate(book, |s| rules::mark_sold(s, code));
        Ok(())
    }
    async fn del_held_days(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        self.mutate(book, |s| rules::del_held_days(s, codes));
        Ok(())
    }
    async fn reconcile(&self, book: &BookId, broker_codes: &[Code]) -> Result<ReconcileReport> {
        Ok(self.mutate(book, |s| rules::reconcile(s, broker_codes)))
    }
    async fn inc_held_days(&self, book: &BookId, today: NaiveDate) -> Result<bool> {
        sqdata_core::validate::check_year("today", &today.to_string(), today)?;
        Ok(self.mutate(book, |s| rules::inc_held_days(s, today)))
    }
    async fn update_extremes(&self, book: &BookId, ticks: &[PriceTick]) -> Result<Vec<ExtremeChange>> {
        validate_ticks(ticks)?;
        Ok(self.mutate(book, |s| rules::update_extremes(s, ticks)))
    }
    async fn replace_book(&self, book: &BookId, snapshot: &PositionSnapshot) -> Result<()> {
        snapshot.validate()?;
        self.mutate(book, |s| *s = snapshot.clone());
        Ok(())
    }
    async fn delete_book(&self, book: &BookId) -> Result<()> {
        self.state.lock().positions.remove(book);
        Ok(())
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        let mut v: Vec<_> = self.state.lock().positions.keys().cloned().collect();
        v.sort();
        Ok(v)
    }
    async fn instance(&self) -> Result<Option<String>> {
        Ok(Some(format!("memory-{}", self.state.lock().generation)))
    }
}

#[async_trait]
impl QuoteStore for MemoryStore {
    async fn put_quotes(&self, quotes: &[Quote]) -> Result<()> {
        for q in quotes {
            q.validate()?;
        }
        let exp = Instant::now() + self.quote_ttl;
        let mut s = self.state.lock();
        for q in quotes {
            s.quotes.insert(q.code, (q.clone(), exp));
        }
        Ok(())
    }
    async fn get_quotes(&self, codes: &[Code]) -> Result<Vec<Quote>> {
        let now = Instant::now();
        let s = self.state.lock();
        Ok(codes.iter().filter_map(|c| s.quotes.get(c).filter(|(_, e)| *e > now).map(|(q, _)| q.clone())).collect())
    }
}

#[async_trait]
impl DealStore for MemoryStore {
    async fn record_batch(&self, deals: &[Deal]) -> Result<RecordOutcome> {
        for d in deals {
            d.validate()?;
        }
        let mut s = self.state.lock();
        let mut out = RecordOutcome::default();
        for d in deals {
            match s.deals.entry((d.book.clone(), d.id.clone())) {
                std::collections::btree_map::Entry::Occupied(_) => out.duplicates += 1,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(d.clone());
                    out.inserted += 1;
                }
            }
        }
        Ok(out)
    }
    async fn query(&self, q: &DealQuery) -> Result<Page<Deal>> {
        q.validate()?;
        let mut all: Vec<Deal> = self.state.lock().deals.values().filter(|d| q.matches(d)).cloned().collect();
        sqdata_core::sort_deals(&mut all);
        Ok(sqdata_core::page_of(q, all.iter()))
    }
    async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        sqdata_core::validate::ordered(q.from, q.to)?;
        let s = self.state.lock();
        Ok(sqdata_core::aggregate(q, s.deals.values()))
    }
    async fn delete_book(&self, book: &BookId) -> Result<u64> {
        let mut s = self.state.lock();
        let before = s.deals.len();
        s.deals.retain(|_, d| &d.book != book);
        Ok((before - s.deals.len()) as u64)
    }
    async fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        let mut s = self.state.lock();
        Ok(ids.iter().filter(|id| s.deals.remove(&(book.clone(), (*id).clone())).is_some()).count() as u64)
    }
    async fn replace_deals(&self, book: &BookId, deals: &[Deal]) -> Result<u64> {
        sqdata_core::validate::deals_of_book(book, deals)?;
        let mut s = self.state.lock();
        Ok(deals.iter().filter(|d| s.deals.insert((book.clone(), d.id.clone()), (*d).clone()).is_some()).count() as u64)
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        let s = self.state.lock();
        let mut v: Vec<_> = s.deals.values().map(|d| d.book.clone()).collect();
        v.sort();
        v.dedup();
        Ok(v)
    }
}

#[async_trait]
impl AssetStore for MemoryStore {
    async fn upsert_assets(&self, book: &BookId, rows: &[AssetRow]) -> Result<()> {
        for r in rows {
            r.validate()?;
        }
        if rows.is_empty() {
            return Ok(());
        }
        let mut s = self.state.lock();
        let m = s.assets.entry(book.clone()).or_default();
        for r in rows {
            m.insert(r.date, r.asset);
        }
        Ok(())
    }
    async fn delete_assets(&self, book: &BookId, dates: &[NaiveDate]) -> Result<u64> {
        let mut s = self.state.lock();
        let Some(m) = s.assets.get_mut(book) else { return Ok(0) };
        let n = dates.iter().filter(|d| m.remove(d).is_some()).count() as u64;
        if m.is_empty() {
            s.assets.remove(book);
        }
        Ok(n)
    }
    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>> {
        range.validate()?;
        let s = self.state.lock();
        Ok(s.assets
            .get(book)
            .map(|m| {
                m.iter().filter(|(d, _)| range.contains(**d)).map(|(d, v)| AssetRow { date: *d, asset: *v }).collect()
            })
            .unwrap_or_default())
    }
    async fn delete_book(&self, book: &BookId) -> Result<()> {
        self.state.lock().assets.remove(book);
        Ok(())
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        let mut v: Vec<_> = self.state.lock().assets.keys().cloned().collect();
        v.sort();
        Ok(v)
    }
}

#[async_trait]
impl BarStore for MemoryStore {
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64> {
        series.validate()?;
        let mut s = self.state.lock();
        let merged = match mode {
            BarWriteMode::Replace => series.bars.clone(),
            BarWriteMode::Upsert => {
                sqdata_core::upsert_bars(s.bars.get(&series.key).map(Vec::as_slice).unwrap_or(&[]), &series.bars)
            }
        };
        if merged.is_empty() {
            s.bars.remove(&series.key);
        } else {
            s.bars.insert(series.key, merged);
        }
        Ok(series.bars.len() as u64)
    }
    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>> {
        range.validate()?;
        let s = self.state.lock();
        Ok(s.bars
            .get(key)
            .map(|b| b.iter().filter(|x| range.contains(x.datetime)).copied().collect())
            .unwrap_or_default())
    }
    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>> {
        range.validate()?;
        let s = self.state.lock();
        Ok(keys
            .iter()
            .map(|k| BarSeries {
                key: *k,
                bars: s
                    .bars
                    .get(k)
                    .map(|b| b.iter().filter(|x| range.contains(x.datetime)).copied().collect())
                    .unwrap_or_default(),
            })
            .collect())
    }
    async fn overview(&self) -> Result<Vec<BarOverview>> {
        let s = self.state.lock();
        Ok(s.bars
            .iter()
            .filter_map(|(k, b)| {
                Some(BarOverview {
                    key: *k,
                    count: b.len() as u64,
                    first: b.first()?.datetime,
                    last: b.last()?.datetime,
                })
            })
            .collect())
    }
    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64> {
        range.validate()?;
        let mut s = self.state.lock();
        let Some(b) = s.bars.get_mut(key) else { return Ok(0) };
        let before = b.len();
        b.retain(|x| !range.contains(x.datetime));
        let n = (before - b.len()) as u64;
        if b.is_empty() {
            s.bars.remove(key);
        }
        Ok(n)
    }
}

#[async_trait]
impl HealthCheck for MemoryStore {
    async fn health(&self) -> BackendHealth {
        BackendHealth {
            backend: "memory".into(),
            up: true,
            latency: Duration::from_nanos(1),
            details: BTreeMap::new(),
            error: None,
        }
    }
}
