//! The store traits of [`Hybrid`]: each call finds its domain's lane and
//! stage (the account's stage, or the files while the servers have not
//! received the book) and goes through the rules (`rules.rs`) with the
//! primary's and the secondary's futures and the journal units it touches.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use sqdata_core::{
    AggregateQuery, AssetRow, AssetStore, BackendHealth, Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode,
    BookId, Code, DateRange, Deal, DealAggregate, DealQuery, DealScope, DealStore, Domain, ExtremeChange, HealthCheck,
    Page, PositionSnapshot, PositionStore, PriceTick, Quote, QuoteStore, ReconcileReport, RecordOutcome, Result,
    Stores, TimeRange, async_trait, validate_ticks,
};

use super::{BACKEND, Fut, Hybrid, book_unit};
use crate::config::Stage;
use crate::domain::{DomainStatus, Mode};
use crate::journal::Unit;

/// A write's call on one side: `op!(field, |s, args…| body)` takes the
/// arguments as owned values, and gives each side's future its own copy
/// and that side's store `s`, so the futures own everything (`rules.rs`,
/// `write`: a write runs to its end on a task of its own).
macro_rules! op {
    ($field:ident, |$s:ident $(, $arg:ident)*| $body:expr) => {{
        $(let $arg = $arg.to_owned();)*
        move |st: &Stores| -> Fut<_> {
            let $s = st.$field.clone();
            $(let $arg = $arg.clone();)*
            Box::pin(async move { $body })
        }
    }};
}

impl Hybrid {
    /// A position write of one book.
    async fn position_write<T: Send + 'static>(
        &self,
        book: &BookId,
        units: Vec<Unit>,
        op: impl Fn(&Stores) -> Fut<T>,
    ) -> Result<T> {
        self.write(Domain::Positions, Some(book), units, op).await
    }

    /// A position read of one book.
    async fn position_read<T: PartialEq>(
        &self,
        book: &BookId,
        p: impl Future<Output = Result<T>>,
        s: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let st = self.read_stage(Domain::Positions, Some(book));
        self.read(self.lane(Domain::Positions), st, p, s).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl PositionStore for Hybrid {
    async fn snapshot(&self, book: &BookId) -> Result<PositionSnapshot> {
        self.position_read(book, self.primary.positions.snapshot(book), self.secondary.positions.snapshot(book)).await
    }

    async fn held_days(&self, book: &BookId, codes: &[Code]) -> Result<BTreeMap<Code, Option<u32>>> {
        let (p, s) = (&self.primary.positions, &self.secondary.positions);
        self.position_read(book, p.held_days(book, codes), s.held_days(book, codes)).await
    }

    async fn new_held(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        let op = op!(positions, |s, book, codes| s.new_held(&book, &codes).await);
        self.position_write(book, book_unit(book), op).await
    }

    async fn mark_sold(&self, book: &BookId, code: Code) -> Result<()> {
        let op = op!(positions, |s, book, code| s.mark_sold(&book, code).await);
        self.position_write(book, book_unit(book), op).await
    }

    async fn del_held_days(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        let op = op!(positions, |s, book, codes| s.del_held_days(&book, &codes).await);
        self.position_write(book, book_unit(book), op).await
    }

    async fn reconcile(&self, book: &BookId, broker_codes: &[Code]) -> Result<ReconcileReport> {
        let op = op!(positions, |s, book, broker_codes| s.reconcile(&book, &broker_codes).await);
        self.position_write(book, book_unit(book), op).await
    }

    async fn inc_held_days(&self, book: &BookId, today: NaiveDate) -> Result<bool> {
        let op = op!(positions, |s, book, today| s.inc_held_days(&book, today).await);
        self.position_write(book, book_unit(book), op).await
    }

    async fn update_extremes(&self, book: &BookId, ticks: &[PriceTick]) -> Result<Vec<ExtremeChange>> {
        validate_ticks(ticks)?;
        let op = op!(positions, |s, book, ticks| s.update_extremes(&book, &ticks).await);
        self.position_write(book, book_unit(book), op).await
    }

    async fn replace_book(&self, book: &BookId, snapshot: &PositionSnapshot) -> Result<()> {
        snapshot.validate()?;
        let op = op!(positions, |s, book, snapshot| s.replace_book(&book, &snapshot).await);
        self.position_write(book, book_unit(book), op).await
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let unit = vec![Unit::BookDeleted { book: book.clone() }];
        let op = op!(positions, |s, book| s.delete_book(&book).await);
        self.position_write(book, unit, op).await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        // The files hold every acknowledged write, so their list is whole
        // (the servers lack the books they were never given).
        self.secondary.positions.list_books().await
    }

    async fn instance(&self) -> Result<Option<String>> {
        self.primary.positions.instance().await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl QuoteStore for Hybrid {
    async fn put_quotes(&self, quotes: &[Quote]) -> Result<()> {
        for q in quotes {
            q.validate()?;
        }
        // Ephemeral: no journal, no compensation; the files get them best-effort.
        self.ensure_prober();
        let d = self.lane(Domain::Quotes);
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
        let (p, s) = (&self.primary.quotes, &self.secondary.quotes);
        self.read(self.lane(Domain::Quotes), self.stage(None), p.get_quotes(codes), s.get_quotes(codes)).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl DealStore for Hybrid {
    async fn record_batch(&self, deals: &[Deal]) -> Result<RecordOutcome> {
        for d in deals {
            d.validate()?;
        }
        // Each book follows its own stage: a batch spanning accounts in
        // different stages is written book by book (one unit each). A
        // failure part way names the books already stored; deals are
        // recorded by id, so the caller may retry the whole batch.
        let mut out = RecordOutcome::default();
        let mut stored: Vec<String> = Vec::new();
        for (book, ds) in super::group_deals(deals) {
            let ds: Vec<Deal> = ds.into_iter().cloned().collect();
            let unit = vec![Unit::Deals { deals: ds.clone() }];
            let op = op!(deals, |s, ds| s.record_batch(&ds).await);
            let o = match self.write(Domain::Deals, Some(&book), unit, op).await {
                Ok(o) => o,
                Err(e) if stored.is_empty() => return Err(e),
                Err(e) => {
                    let note = format!(
                        "deals of {book} not recorded; those of {} were (retrying the whole batch is safe: deals are recorded by id)",
                        stored.join(", ")
                    );
                    return Err(super::with_context(e, &note));
                }
            };
            stored.push(book.to_string());
            out.inserted += o.inserted;
            out.duplicates += o.duplicates;
        }
        Ok(out)
    }

    async fn query(&self, q: &DealQuery) -> Result<Page<Deal>> {
        q.validate()?;
        let st = match &q.scope {
            DealScope::Book(b) => self.read_stage(Domain::Deals, Some(b)),
            DealScope::Account(a) => self.account_stage(Domain::Deals, a).await?,
        };
        self.read(self.lane(Domain::Deals), st, self.primary.deals.query(q), self.secondary.deals.query(q)).await
    }

    async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        let st = self.account_stage(Domain::Deals, &q.account).await?;
        let (p, s) = (&self.primary.deals, &self.secondary.deals);
        self.read(self.lane(Domain::Deals), st, p.aggregate(q), s.aggregate(q)).await
    }

    async fn delete_book(&self, book: &BookId) -> Result<u64> {
        let unit = vec![Unit::BookDeleted { book: book.clone() }];
        let op = op!(deals, |s, book| s.delete_book(&book).await);
        self.write(Domain::Deals, Some(book), unit, op).await
    }

    async fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        let unit = vec![Unit::DealsDeleted { book: book.clone(), ids: ids.to_vec() }];
        let op = op!(deals, |s, book, ids| s.delete_deals(&book, &ids).await);
        self.write(Domain::Deals, Some(book), unit, op).await
    }

    async fn replace_deals(&self, book: &BookId, deals: &[Deal]) -> Result<u64> {
        sqdata_core::validate::deals_of_book(book, deals)?;
        let unit = vec![Unit::Deals { deals: deals.to_vec() }];
        let op = op!(deals, |s, book, deals| s.replace_deals(&book, &deals).await);
        self.write(Domain::Deals, Some(book), unit, op).await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.secondary.deals.list_books().await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl AssetStore for Hybrid {
    async fn upsert_assets(&self, book: &BookId, rows: &[AssetRow]) -> Result<()> {
        for r in rows {
            r.validate()?;
        }
        if rows.is_empty() {
            return Ok(());
        }
        let unit = match rows {
            [r] => Unit::Asset { book: book.clone(), date: r.date },
            _ => Unit::AssetDays { book: book.clone(), dates: rows.iter().map(|r| r.date).collect() },
        };
        let op = op!(assets, |s, book, rows| s.upsert_assets(&book, &rows).await);
        self.write(Domain::Assets, Some(book), vec![unit], op).await
    }

    async fn delete_assets(&self, book: &BookId, dates: &[NaiveDate]) -> Result<u64> {
        if dates.is_empty() {
            return Ok(0);
        }
        let unit = vec![Unit::AssetDays { book: book.clone(), dates: dates.to_vec() }];
        let op = op!(assets, |s, book, dates| s.delete_assets(&book, &dates).await);
        self.write(Domain::Assets, Some(book), unit, op).await
    }

    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>> {
        let st = self.read_stage(Domain::Assets, Some(book));
        let (p, s) = (&self.primary.assets, &self.secondary.assets);
        self.read(self.lane(Domain::Assets), st, p.assets(book, range), s.assets(book, range)).await
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let unit = vec![Unit::BookDeleted { book: book.clone() }];
        let op = op!(assets, |s, book| s.delete_book(&book).await);
        self.write(Domain::Assets, Some(book), unit, op).await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.secondary.assets.list_books().await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl BarStore for Hybrid {
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64> {
        series.validate()?;
        let unit = vec![Unit::Series { key: series.key }];
        let op = op!(bars, |s, series, mode| s.save_bars(&series, mode).await);
        self.write(Domain::Bars, None, unit, op).await
    }

    async fn save_bars_batch(&self, series: &[BarSeries], mode: BarWriteMode) -> Result<u64> {
        sqdata_core::validate_batch(series)?;
        let units = series.iter().map(|s| Unit::Series { key: s.key }).collect();
        let series = series.to_vec();
        let op = op!(bars, |s, series, mode| s.save_bars_batch(&series, mode).await);
        self.write(Domain::Bars, None, units, op).await
    }

    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>> {
        let st = self.read_stage(Domain::Bars, None);
        let (p, s) = (&self.primary.bars, &self.secondary.bars);
        self.read(self.lane(Domain::Bars), st, p.load_bars(key, range), s.load_bars(key, range)).await
    }

    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>> {
        let st = self.read_stage(Domain::Bars, None);
        let (p, s) = (&self.primary.bars, &self.secondary.bars);
        self.read(self.lane(Domain::Bars), st, p.load_bars_batch(keys, range), s.load_bars_batch(keys, range)).await
    }

    async fn overview(&self) -> Result<Vec<BarOverview>> {
        let st = self.read_stage(Domain::Bars, None);
        self.read(self.lane(Domain::Bars), st, self.primary.bars.overview(), self.secondary.bars.overview()).await
    }

    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64> {
        let unit = vec![Unit::Series { key: *key }];
        let op = op!(bars, |s, key, range| s.delete_bars(&key, range).await);
        self.write(Domain::Bars, None, unit, op).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl HealthCheck for Hybrid {
    async fn health(&self) -> BackendHealth {
        // An active probe, so a fresh process (`sqdata health`) tells the truth.
        for &name in &self.active {
            let d = self.lane(name);
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
        match self.waiting_books().await {
            Ok(w) if !w.is_empty() => {
                details.insert("waiting".into(), serde_json::to_value(&w).unwrap_or_default());
            }
            Ok(_) => {}
            Err(e) => {
                details.insert("waiting_error".into(), serde_json::json!(e.to_string()));
            }
        }
        if let Some(d) = self.rollout_damage() {
            details.insert("rollout_damaged".into(), serde_json::json!(d));
        }
        let degraded: Vec<&str> =
            status.iter().filter(|s| s.mode != Mode::Healthy).map(|s| s.domain.as_str()).collect();
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
