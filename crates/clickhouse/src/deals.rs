//! The [`DealStore`] implementation: recording, queries, aggregates, deletes.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use clickhouse::{Client, Row};
use serde::Deserialize;
use sqdata_core::{
    AggregateBy, AggregateQuery, BookId, Deal, DealAggregate, DealQuery, DealScope, DealStore, Error, Page,
    RecordOutcome, Result, async_trait, validate,
};

use crate::core::{BookRow, ClickHouseStore, Inner, joined};
use crate::rows::*;

#[derive(Debug, Row, Deserialize)]
pub(crate) struct IdRow {
    pub(crate) account: String,
    pub(crate) book: String,
    pub(crate) id: String,
}

#[derive(Debug, Row, Deserialize)]
struct AggRow {
    period: String,
    count: u64,
    buy_count: u64,
    sell_count: u64,
    buy_volume: u64,
    sell_volume: u64,
    buy_amount: f64,
    sell_amount: f64,
}

/// Deal ids per DELETE mutation (about 30 bytes each in the SQL text).
const DELETE_IDS_PER_QUERY: usize = 4_000;

impl Inner {
    /// Which of these deals' ids the table already holds.
    pub(crate) async fn existing(&self, c: &Client, book: &BookId, ds: &[&Deal]) -> Result<Vec<IdRow>> {
        let mut out = Vec::new();
        for chunk in ds.chunks(5000) {
            let ids: Vec<&str> = chunk.iter().map(|d| d.id.as_str()).collect();
            let from = chunk.iter().map(|d| d.time.date()).min().unwrap_or_default();
            let to = chunk.iter().map(|d| d.time.date()).max().unwrap_or_default();
            let q = c
                .query(
                    "SELECT account, book, id FROM deals WHERE account = ? AND book = ? \
                     AND date >= ? AND date <= ? AND has(?, id)",
                )
                .bind(book.account.as_str())
                .bind(book.book.as_str())
                .bind(from.to_string())
                .bind(to.to_string())
                .bind(ids);
            out.extend(self.t("dedup", q.fetch_all::<IdRow>()).await?);
        }
        Ok(out)
    }

    /// Replaces the daily and monthly aggregate rows of these days/months of
    /// one book by sums recomputed from the deals.
    async fn rebuild_aggregates(
        &self,
        c: &Client,
        account: &str,
        book: &str,
        days: &[String],
        months: &[String],
    ) -> Result<()> {
        let db = &self.cfg.database;
        let sums = "count() AS count, countIf(kind IN (1, 2, 5)) AS buy_count, countIf(kind IN (3, 4, 6)) AS sell_count, \
                    sumIf(volume, kind IN (1, 2, 5)) AS buy_volume, sumIf(volume, kind IN (3, 4, 6)) AS sell_volume, \
                    sumIf(amount, kind IN (1, 2, 5)) AS buy_amount, sumIf(amount, kind IN (3, 4, 6)) AS sell_amount";
        for (table, col, list) in [("deal_daily", "date", days), ("deal_monthly", "month", months)] {
            let q = c
                .query(&format!(
                    "ALTER TABLE {db}.{table} DELETE WHERE account = ? AND book = ? AND has(?, toString({col}))"
                ))
                .bind(account)
                .bind(book)
                .bind(list);
            self.t("rebuild_aggregates", q.execute()).await?;
            self.wait_mutations(c, table).await?;
        }
        let q = c
            .query(&format!(
                "INSERT INTO {db}.deal_daily SELECT account, book, date, {sums} FROM {db}.deals FINAL \
                 WHERE account = ? AND book = ? AND has(?, toString(date)) GROUP BY account, book, date"
            ))
            .bind(account)
            .bind(book)
            .bind(days);
        self.t("rebuild_aggregates", q.execute()).await?;
        let q = c
            .query(&format!(
                "INSERT INTO {db}.deal_monthly SELECT account, book, toStartOfMonth(date) AS month, {sums} \
                 FROM {db}.deals FINAL WHERE account = ? AND book = ? AND has(?, toString(toStartOfMonth(date))) \
                 GROUP BY account, book, month"
            ))
            .bind(account)
            .bind(book)
            .bind(months);
        self.t("rebuild_aggregates", q.execute()).await
    }
}

fn where_deals(q: &DealQuery) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    match &q.scope {
        DealScope::Book(b) => {
            sql.push_str("account = ? AND book = ?");
            args.push(b.account.to_string());
            args.push(b.book.to_string());
        }
        DealScope::Account(a) => {
            sql.push_str("account = ?");
            args.push(a.to_string());
        }
    }
    if let Some(f) = q.from {
        sql.push_str(" AND date >= ?");
        args.push(f.to_string());
    }
    if let Some(t) = q.to {
        sql.push_str(" AND date <= ?");
        args.push(t.to_string());
    }
    if let Some(c) = q.code {
        sql.push_str(" AND code = ?");
        args.push(c.to_string());
    }
    if let Some(k) = q.kind {
        // a validated enum's number: safe to inline, and typed as UInt8
        sql.push_str(&format!(" AND kind = {}", k.as_u8()));
    }
    (sql, args)
}

#[async_trait]
impl DealStore for ClickHouseStore {
    async fn record_batch(&self, deals: &[Deal]) -> Result<RecordOutcome> {
        for d in deals {
            d.validate()?;
            DealRow::from_deal(d, 0)?;
        }
        self.start_flusher();
        let inner = &self.inner;
        let mut outcome = RecordOutcome::default();
        let mut fresh: Vec<Deal> = Vec::new();
        {
            let p = inner.pending.lock();
            let mut in_batch = HashSet::new();
            for d in deals {
                let key = (d.book.clone(), d.id.clone());
                if p.ids.contains(&key) || !in_batch.insert(key) {
                    outcome.duplicates += 1;
                } else {
                    fresh.push(d.clone());
                }
            }
        }
        // Ids ClickHouse already holds are duplicates too. If ClickHouse
        // cannot answer quickly, the deal is journaled anyway (the flusher
        // deduplicates before inserting): recording never waits on the server.
        if !fresh.is_empty() {
            let check = async {
                let (c, _) = inner.ready().await?;
                let mut by_book: BTreeMap<BookId, Vec<&Deal>> = BTreeMap::new();
                for d in &fresh {
                    by_book.entry(d.book.clone()).or_default().push(d);
                }
                let mut have = HashSet::new();
                for (book, ds) in &by_book {
                    for r in inner.existing(c, book, ds).await? {
                        have.insert((r.account, r.book, r.id));
                    }
                }
                Ok::<_, Error>(have)
            };
            if let Ok(Ok(have)) = tokio::time::timeout(Duration::from_millis(500), check).await {
                fresh.retain(|d| {
                    let dup = have.contains(&(d.book.account.to_string(), d.book.book.to_string(), d.id.clone()));
                    if dup {
                        outcome.duplicates += 1;
                    }
                    !dup
                });
            }
        }
        if fresh.is_empty() {
            return Ok(outcome);
        }
        // journaled and pending in one critical section (see journal_deals)
        let journaling = inner.clone();
        let (n, full) =
            tokio::task::spawn_blocking(move || journaling.journal_deals(fresh)).await.map_err(joined)??;
        outcome.inserted += n as u64;
        if full {
            inner.notify.notify_one();
        }
        Ok(outcome)
    }

    async fn query(&self, q: &DealQuery) -> Result<Page<Deal>> {
        q.validate()?;
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let (cond, args) = where_deals(q);
        let mut count = c.query(&format!("SELECT count() FROM deals FINAL WHERE {cond}"));
        for a in &args {
            count = count.bind(a.as_str());
        }
        let total: u64 = self.inner.t("query_deals", count.fetch_one::<u64>()).await?;
        let mut sel =
            c.query(&format!("SELECT ?fields FROM deals FINAL WHERE {cond} ORDER BY time, id LIMIT ? OFFSET ?"));
        for a in &args {
            sel = sel.bind(a.as_str());
        }
        sel = sel.bind(q.page_size).bind(q.offset());
        let rows: Vec<DealRow> = self.inner.t("query_deals", sel.fetch_all::<DealRow>()).await?;
        let data = rows.into_iter().map(DealRow::into_deal).collect::<Result<Vec<_>>>()?;
        Ok(Page { total, page: q.page, page_size: q.page_size, data })
    }

    async fn aggregate(&self, q: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        validate::ordered(q.from, q.to)?;
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let month_aligned =
            q.from.is_none_or(|f| f.day() == 1) && q.to.is_none_or(|t| t.succ_opt().is_none_or(|n| n.day() == 1));
        let sums = "sum(count) AS count, sum(buy_count) AS buy_count, sum(sell_count) AS sell_count, \
                    sum(buy_volume) AS buy_volume, sum(sell_volume) AS sell_volume, \
                    sum(buy_amount) AS buy_amount, sum(sell_amount) AS sell_amount";
        let (sql, col) = match (q.by, month_aligned) {
            (AggregateBy::Day, _) => {
                (format!("SELECT toString(date) AS period, {sums} FROM deal_daily WHERE account = ?"), "date")
            }
            // the monthly view when the range is whole months
            (AggregateBy::Month, true) => (
                format!(
                    "SELECT substring(toString(month), 1, 7) AS period, {sums} FROM deal_monthly WHERE account = ?"
                ),
                "month",
            ),
            (AggregateBy::Month, false) => (
                format!(
                    "SELECT substring(toString(toStartOfMonth(date)), 1, 7) AS period, {sums} FROM deal_daily WHERE account = ?"
                ),
                "date",
            ),
        };
        let mut sql = sql;
        let mut args = vec![q.account.to_string()];
        if let Some(f) = q.from {
            sql.push_str(&format!(" AND {col} >= ?"));
            args.push(if col == "month" {
                NaiveDate::from_ymd_opt(f.year(), f.month(), 1).unwrap_or(f).to_string()
            } else {
                f.to_string()
            });
        }
        if let Some(t) = q.to {
            sql.push_str(&format!(" AND {col} <= ?"));
            args.push(t.to_string());
        }
        sql.push_str(" GROUP BY period ORDER BY period");
        let mut query = c.query(&sql);
        for a in &args {
            query = query.bind(a.as_str());
        }
        let rows: Vec<AggRow> = self.inner.t("aggregate", query.fetch_all::<AggRow>()).await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.count > 0)
            .map(|r| DealAggregate {
                period: r.period,
                count: r.count,
                buy_count: r.buy_count,
                sell_count: r.sell_count,
                buy_volume: r.buy_volume,
                sell_volume: r.sell_volume,
                buy_amount: r.buy_amount,
                sell_amount: r.sell_amount,
            })
            .collect())
    }

    async fn delete_book(&self, book: &BookId) -> Result<u64> {
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let (a, b) = (book.account.as_str(), book.book.as_str());
        let q = c.query("SELECT count() FROM deals FINAL WHERE account = ? AND book = ?").bind(a).bind(b);
        let n: u64 = self.inner.t("delete_book", q.fetch_one::<u64>()).await?;
        if n == 0 {
            return Ok(0);
        }
        for table in ["deals", "deal_daily", "deal_monthly"] {
            self.inner.delete_where(c, table, a, b).await?;
        }
        Ok(n)
    }

    async fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let (a, b) = (book.account.as_str(), book.book.as_str());
        #[derive(Row, Deserialize)]
        struct DateRow {
            date: u16,
        }
        let db = &self.inner.cfg.database;
        let (mut dates, mut n) = (Vec::new(), 0u64);
        // Ids travel inside the SQL text: chunks keep it under the server's
        // max_query_size (256 KiB) whatever the caller passes.
        for ids in ids.chunks(DELETE_IDS_PER_QUERY) {
            let q = c
                .query("SELECT DISTINCT date FROM deals FINAL WHERE account = ? AND book = ? AND has(?, id)")
                .bind(a)
                .bind(b)
                .bind(ids);
            let found: Vec<DateRow> = self.inner.t("delete_deals", q.fetch_all()).await?;
            if found.is_empty() {
                continue;
            }
            dates.extend(found);
            let q = c
                .query("SELECT count() FROM deals FINAL WHERE account = ? AND book = ? AND has(?, id)")
                .bind(a)
                .bind(b)
                .bind(ids);
            n += self.inner.t("delete_deals", q.fetch_one::<u64>()).await?;
            let q = c
                .query(&format!("ALTER TABLE {db}.deals DELETE WHERE account = ? AND book = ? AND has(?, id)"))
                .bind(a)
                .bind(b)
                .bind(ids);
            self.inner.t("delete_deals", q.execute()).await?;
            self.inner.wait_mutations(c, "deals").await?;
        }
        if dates.is_empty() {
            return Ok(0);
        }
        dates.sort_by_key(|d| d.date);
        dates.dedup_by_key(|d| d.date);
        // The summing views cannot subtract: rebuild the affected days and months.
        let days: Vec<String> = dates.iter().map(|d| from_days(d.date).to_string()).collect();
        let months: Vec<String> = {
            let mut m: Vec<String> = dates
                .iter()
                .map(|d| {
                    let d = from_days(d.date);
                    NaiveDate::from_ymd_opt(d.year(), d.month(), 1).unwrap_or(d).to_string()
                })
                .collect();
            m.sort();
            m.dedup();
            m
        };
        self.inner.rebuild_aggregates(c, a, b, &days, &months).await?;
        Ok(n)
    }

    async fn replace_deals(&self, book: &BookId, deals: &[Deal]) -> Result<u64> {
        validate::deals_of_book(book, deals)?;
        for d in deals {
            DealRow::from_deal(d, 0)?;
        }
        if deals.is_empty() {
            return Ok(0);
        }
        // No transactions here: the stored versions go, then the new ones
        // come in through the journal (acknowledged once journaled, like
        // every record).
        let ids: Vec<String> = deals.iter().map(|d| d.id.clone()).collect();
        let replaced = self.delete_deals(book, &ids).await?;
        self.record_batch(deals).await?;
        Ok(replaced)
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.inner.flush().await?;
        let (c, _) = self.inner.ready().await?;
        let rows: Vec<BookRow> = self
            .inner
            .t("list_books", c.query("SELECT DISTINCT account, book FROM deals ORDER BY account, book").fetch_all())
            .await?;
        rows.into_iter().map(|r| BookId::new(&r.account, &r.book)).collect()
    }
}
