//! Accounts: their queries, row decoder and columns.

use serde_json::Value;
use sqdata_core::registry::{account_entity, validate_actor};
use sqdata_core::{Account, AccountCode, Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::audit;
use crate::rows::{now_ms, object, text};
use crate::store::{Attempt, SqlStore};

pub(crate) const ACCOUNT_COLUMNS: &str = "id, name, broker, meta";

pub(crate) fn account_row(r: &AnyRow) -> Attempt<Account> {
    let id: String = r.try_get("id")?;
    let location = format!("sq_accounts[{id}]");
    Ok(Account {
        id: AccountCode::new(&id).map_err(|e| Error::corrupt(&location, e.to_string()))?,
        name: r.try_get("name")?,
        broker: r.try_get("broker")?,
        meta: object(&text(r, "meta")?, &location)?,
    })
}

pub(crate) async fn account_exists(tx: &mut Transaction<'static, Any>, id: &AccountCode) -> Attempt<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_accounts WHERE id = ?")
        .bind(id.as_str())
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

pub(crate) async fn upsert_account(db: &SqlStore, account: &Account, actor: &str) -> Result<()> {
    validate_actor(actor)?;
    account.validate()?;
    let meta = Value::Object(account.meta.clone()).to_string();
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        let sql = if account_exists(&mut tx, &account.id).await? {
            "UPDATE sq_accounts SET name = ?, broker = ?, meta = ?, updated_ms = ? WHERE id = ?"
        } else {
            "INSERT INTO sq_accounts (name, broker, meta, updated_ms, id) VALUES (?, ?, ?, ?, ?)"
        };
        sqlx::query(sql)
            .bind(&account.name)
            .bind(&account.broker)
            .bind(&meta)
            .bind(now_ms())
            .bind(account.id.as_str())
            .execute(&mut *tx)
            .await?;
        let detail = serde_json::to_value(account).map_err(|e| Error::invalid("account", "", e.to_string()))?;
        audit(&mut tx, actor, "account.upsert", &account_entity(&account.id), detail).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
}

pub(crate) async fn account(db: &SqlStore, id: &AccountCode) -> Result<Option<Account>> {
    db.read(async {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM sq_accounts WHERE id = ?"))
            .bind(id.as_str())
            .fetch_optional(&db.pool)
            .await?;
        row.as_ref().map(account_row).transpose()
    })
    .await
}

pub(crate) async fn accounts(db: &SqlStore) -> Result<Vec<Account>> {
    db.read(async {
        let rows =
            sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM sq_accounts ORDER BY id")).fetch_all(&db.pool).await?;
        rows.iter().map(account_row).collect()
    })
    .await
}

pub(crate) async fn delete_account(db: &SqlStore, id: &AccountCode, actor: &str) -> Result<bool> {
    validate_actor(actor)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_strategies WHERE account = ?")
            .bind(id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if n > 0 {
            return Err(Error::invalid("account", id, format!("still has {n} strategies; delete them first")).into());
        }
        let done = sqlx::query("DELETE FROM sq_accounts WHERE id = ?").bind(id.as_str()).execute(&mut *tx).await?;
        let deleted = done.rows_affected() > 0;
        if deleted {
            audit(&mut tx, actor, "account.delete", &account_entity(id), Value::Null).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    })
    .await
}
