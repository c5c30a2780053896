//! The [`AssetStore`] implementation: the equity curve.

use sqdata_core::{AssetRow, AssetStore, BookId, DateRange, Result, async_trait};

use crate::core::{BookRow, ClickHouseStore, now_version};
use crate::rows::*;

#[async_trait]
impl AssetStore for ClickHouseStore {
    async fn upsert_asset(&self, book: &BookId, row: AssetRow) -> Result<()> {
        row.validate()?;
        let (c, _) = self.inner.ready().await?;
        let r = AssetDbRow {
            account: book.account.to_string(),
            book: book.book.to_string(),
            date: days(row.date),
            asset: row.asset,
            version: now_version(&self.inner.seq),
        };
        let fut = async {
            let mut ins = c.insert::<AssetDbRow>("assets").await?;
            ins.write(&r).await?;
            ins.end().await
        };
        self.inner.t("upsert_asset", fut).await
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
