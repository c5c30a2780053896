//! Strategies (books): their queries, row decoder and columns.

use serde_json::Value;
use sqdata_core::registry::{book_entity, validate_actor};
use sqdata_core::{AccountCode, BookId, Error, Result, Strategy};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::accounts::account_exists;
use crate::audit::audit;
use crate::rows::{now_ms, text};
use crate::store::{Attempt, SqlStore};

pub(crate) const STRATEGY_COLUMNS: &str = "account, book, description, kind, enabled";

pub(crate) fn strategy_row(r: &AnyRow) -> Attempt<Strategy> {
    let (a, b): (String, String) = (r.try_get("account")?, r.try_get("book")?);
    let location = format!("sq_strategies[{a}/{b}]");
    Ok(Strategy {
        book: BookId::new(&a, &b).map_err(|e| Error::corrupt(&location, e.to_string()))?,
        description: text(r, "description")?,
        kind: text(r, "kind")?,
        enabled: r.try_get::<i64, _>("enabled")? != 0,
    })
}

pub(crate) async fn strategy_exists(tx: &mut Transaction<'static, Any>, book: &BookId) -> Attempt<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_strategies WHERE account = ? AND book = ?")
        .bind(book.account.as_str())
        .bind(book.book.as_str())
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

pub(crate) async fn upsert_strategy(db: &SqlStore, strategy: &Strategy, actor: &str) -> Result<()> {
    validate_actor(actor)?;
    strategy.validate()?;
    let book = &strategy.book;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        if !account_exists(&mut tx, &book.account).await? {
            return Err(Error::invalid("account", &book.account, "no such account; create it first").into());
        }
        let sql = if strategy_exists(&mut tx, book).await? {
            "UPDATE sq_strategies SET description = ?, kind = ?, enabled = ?, updated_ms = ? WHERE account = ? AND book = ?"
        } else {
            "INSERT INTO sq_strategies (description, kind, enabled, updated_ms, account, book) VALUES (?, ?, ?, ?, ?, ?)"
        };
        sqlx::query(sql)
            .bind(&strategy.description)
            .bind(&strategy.kind)
            .bind(i64::from(strategy.enabled))
            .bind(now_ms())
            .bind(book.account.as_str())
            .bind(book.book.as_str())
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::to_value(strategy).map_err(|e| Error::invalid("strategy", "", e.to_string()))?;
        audit(&mut tx, actor, "strategy.upsert", &book_entity(book), detail).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
}

pub(crate) async fn strategy(db: &SqlStore, book: &BookId) -> Result<Option<Strategy>> {
    db.read(async {
        let row = sqlx::query(&format!("SELECT {STRATEGY_COLUMNS} FROM sq_strategies WHERE account = ? AND book = ?"))
            .bind(book.account.as_str())
            .bind(book.book.as_str())
            .fetch_optional(&db.pool)
            .await?;
        row.as_ref().map(strategy_row).transpose()
    })
    .await
}

pub(crate) async fn strategies(db: &SqlStore, account: Option<&AccountCode>) -> Result<Vec<Strategy>> {
    db.read(async {
        let rows = match account {
            Some(a) => {
                sqlx::query(&format!(
                    "SELECT {STRATEGY_COLUMNS} FROM sq_strategies WHERE account = ? ORDER BY account, book"
                ))
                .bind(a.as_str())
                .fetch_all(&db.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {STRATEGY_COLUMNS} FROM sq_strategies ORDER BY account, book"))
                    .fetch_all(&db.pool)
                    .await?
            }
        };
        rows.iter().map(strategy_row).collect()
    })
    .await
}

pub(crate) async fn delete_strategy(db: &SqlStore, book: &BookId, actor: &str) -> Result<bool> {
    validate_actor(actor)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        sqlx::query("DELETE FROM sq_params WHERE account = ? AND book = ?")
            .bind(book.account.as_str())
            .bind(book.book.as_str())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM sq_strategies WHERE account = ? AND book = ?")
            .bind(book.account.as_str())
            .bind(book.book.as_str())
            .execute(&mut *tx)
            .await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            audit(&mut tx, actor, "strategy.delete", &book_entity(book), Value::Null).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    })
    .await
}
