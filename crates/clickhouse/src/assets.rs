//! The [`AssetStore`] implementation: the equity curve.

use chrono::NaiveDate;
use sqdata_core::{AssetRow, AssetStore, BookId, DateRange, Result, async_trait};

use crate::core::{BookRow, ClickHouseStore, now_version};
use crate::rows::*;

#[async_trait]
impl AssetStore for ClickHouseStore {
    async fn upsert_assets(&self, book: &BookId, rows: &[AssetRow]) -> Result<()> {
        for r in rows {
            r.validate()?;
        }
        if rows.is_empty() {
            return Ok(());
        }
        let (c, _) = self.inner.ready().await?;
        let version = now_version(&self.inner.seq);
        let db: Vec<AssetDbRow> = rows
            .iter()
            .map(|r| AssetDbRow {
                account: book.account.to_string(),
                book: book.book.to_string(),
                date: days(r.date),
                asset: r.asset,
                version,
            })
            .collect();
        // One INSERT: the rows land together (ReplacingMergeTree keeps the
        // newest version of a date).
        let fut = async {
            let mut ins = c.insert::<AssetDbRow>("assets").await?;
            for r in &db {
                ins.write(r).await?;
            }
            ins.end().await
        };
        self.inner.t("upsert_assets", fut).await
    }

    async fn delete_assets(&self, book: &BookId, dates: &[NaiveDate]) -> Result<u64> {
        if dates.is_empty() {
            return Ok(0);
        }
        let (c, _) = self.inner.ready().await?;
        let (a, b) = (book.account.as_str(), book.book.as_str());
        let dates: Vec<String> = dates.iter().map(|d| d.to_string()).collect();
        let q = c
            .query("SELECT count() FROM assets FINAL WHERE account = ? AND book = ? AND has(?, toString(date))")
            .bind(a)
            .bind(b)
            .bind(&dates);
        let n: u64 = self.inner.t("delete_assets", q.fetch_one::<u64>()).await?;
        if n == 0 {
            return Ok(0);
        }
        let db = &self.inner.cfg.database;
        let q = c
            .query(&format!("ALTER TABLE {db}.assets DELETE WHERE account = ? AND book = ? AND has(?, toString(date))"))
            .bind(a)
            .bind(b)
            .bind(&dates);
        self.inner.t("delete_assets", q.execute()).await?;
        self.inner.wait_mutations(c, "assets").await?;
        Ok(n)
    }

    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>> {
        range.validate()?;
        let (c, _) = self.inner.ready().await?;
        let mut sql = String::from("SELECT ?fields FROM assets FINAL WHERE account = ? AND book = ?");
        let mut args = vec![book.account.to_string(), book.book.to_string()];
        if let Some(f) = range.from {
            sql.push_str(" AND date >= ?");
            args.push(f.to_string());
        }
        if let Some(t) = range.to {
            sql.push_str(" AND date <= ?");
            args.push(t.to_string());
        }
        sql.push_str(" ORDER BY date");
        let mut q = c.query(&sql);
        for a in &args {
            q = q.bind(a.as_str());
        }
        let rows: Vec<AssetDbRow> = self.inner.t("assets", q.fetch_all()).await?;
        Ok(rows.iter().map(AssetDbRow::row).collect())
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let (c, _) = self.inner.ready().await?;
        let q = c
            .query("SELECT count() FROM assets WHERE account = ? AND book = ?")
            .bind(book.account.as_str())
            .bind(book.book.as_str());
        if self.inner.t("delete_assets", q.fetch_one::<u64>()).await? > 0 {
            self.inner.delete_where(c, "assets", book.account.as_str(), book.book.as_str()).await?;
        }
        Ok(())
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        let (c, _) = self.inner.ready().await?;
        let rows: Vec<BookRow> = self
            .inner
            .t("list_books", c.query("SELECT DISTINCT account, book FROM assets ORDER BY account, book").fetch_all())
            .await?;
        rows.into_iter().map(|r| BookId::new(&r.account, &r.book)).collect()
    }
}
