//! The store traits of [`Hybrid`]: each call picks its domain's lane and
//! stage and goes through the rules (`rules.rs`) with the primary's and the
//! secondary's futures, the journal units it touches and its compensation.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use sqdata_core::{
    AggregateQuery, AssetRow, AssetStore, BackendHealth, Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode,
    BookId, Code, DateRange, Deal, DealAggregate, DealQuery, DealScope, DealStore, Domain, Error, ExtremeChange,
    HealthCheck, MAX_PAGE_SIZE, Page, PositionSnapshot, PositionStore, PriceTick, Quote, QuoteStore, ReconcileReport,
    RecordOutcome, Result, TimeRange, async_trait, validate_ticks,
};

use super::{BACKEND, Hybrid, book_unit, deals_by_id, group_deals};
use crate::config::Stage;
use crate::domain::{DomainStatus, Mode};
use crate::journal::Unit;

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl PositionStore for Hybrid {
    async fn snapshot(&self, book: &BookId) -> Result<PositionSnapshot> {
        let st = self.stage(Some(book));
        self.read(
            self.lane(Domain::Positions),
            st,
            self.primary.positions.snapshot(book),
            self.secondary.positions.snapshot(book),
        )
        .await
    }

    async fn held_days(&self, book: &BookId, codes: &[Code]) -> Result<BTreeMap<Code, Option<u32>>> {
        let st = self.stage(Some(book));
        self.read(
            self.lane(Domain::Positions),
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
            self.lane(Domain::Positions),
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
            self.lane(Domain::Positions),
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
            self.lane(Domain::Positions),
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
            self.lane(Domain::Positions),
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
            self.lane(Domain::Positions),
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
            self.lane(Domain::Positions),
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
        self.write(self.lane(Domain::Positions), st, unit, p.delete_book(book), s.delete_book(book), self.restore(book))
            .await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        let st = self.stage(None);
        self.read(
            self.lane(Domain::Positions),
            st,
            self.primary.positions.list_books(),
            self.secondary.positions.list_books(),
        )
        .await
    }

    async fn instance(&self) -> Result<Option<String>> {
        self.primary.positions.instance().await
    }
}

impl Hybrid {
    /// Compensation for positions: the secondary still holds the book as it
    /// was before the write; copy it back over the primary.
    async fn restore(&self, book: &BookId) -> Result<()> {
        self.copy_unit(Domain::Positions, &Unit::Book { book: book.clone() }, true).await
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
        let st = self.stage(None);
        self.read(
            self.lane(Domain::Quotes),
            st,
            self.primary.quotes.get_quotes(codes),
            self.secondary.quotes.get_quotes(codes),
        )
        .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
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
            self.lane(Domain::Deals),
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
        self.read(self.lane(Domain::Deals), st, self.primary.deals.query(q), self.secondary.deals.query(q)).await
    }

    async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        let st = self.rollout.stage(Some(&q.account));
        self.read(self.lane(Domain::Deals), st, self.primary.deals.aggregate(q), self.secondary.deals.aggregate(q))
            .await
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
            self.lane(Domain::Deals),
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
            self.lane(Domain::Deals),
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
        self.read(self.lane(Domain::Deals), st, self.primary.deals.list_books(), self.secondary.deals.list_books())
            .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
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
            self.lane(Domain::Assets),
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
        self.read(
            self.lane(Domain::Assets),
            st,
            self.primary.assets.assets(book, range),
            self.secondary.assets.assets(book, range),
        )
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
            self.lane(Domain::Assets),
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
        self.read(self.lane(Domain::Assets), st, self.primary.assets.list_books(), self.secondary.assets.list_books())
            .await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl BarStore for Hybrid {
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64> {
        series.validate()?;
        let st = self.stage(None);
        let unit = Unit::Series { key: series.key };
        let compensate = self.copy_unit(Domain::Bars, &unit, true);
        self.write(
            self.lane(Domain::Bars),
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
        self.read(
            self.lane(Domain::Bars),
            st,
            self.primary.bars.load_bars(key, range),
            self.secondary.bars.load_bars(key, range),
        )
        .await
    }

    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>> {
        let st = self.stage(None);
        self.read(
            self.lane(Domain::Bars),
            st,
            self.primary.bars.load_bars_batch(keys, range),
            self.secondary.bars.load_bars_batch(keys, range),
        )
        .await
    }

    async fn overview(&self) -> Result<Vec<BarOverview>> {
        let st = self.stage(None);
        self.read(self.lane(Domain::Bars), st, self.primary.bars.overview(), self.secondary.bars.overview()).await
    }

    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64> {
        let st = self.stage(None);
        let unit = Unit::Series { key: *key };
        let compensate = self.copy_unit(Domain::Bars, &unit, true);
        self.write(
            self.lane(Domain::Bars),
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
