//! Dump and restore of the whole registry, each in one transaction.

use serde_json::{Value, json};
use sqdata_core::registry::validate_actor;
use sqdata_core::{BookId, Error, RegistryDump, Result};

use crate::accounts::{ACCOUNT_COLUMNS, account_row};
use crate::audit::{audit, audit_row};
use crate::params::{PARAM_COLUMNS, param_row};
use crate::rows::{now_ms, text};
use crate::store::{Attempt, SqlStore};
use crate::strategies::{STRATEGY_COLUMNS, strategy_row};

pub(crate) async fn dump(db: &SqlStore) -> Result<RegistryDump> {
    db.read(async {
        // One read transaction: a consistent picture.
        let mut tx = db.pool.begin().await?;
        let rows =
            sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM sq_accounts ORDER BY id")).fetch_all(&mut *tx).await?;
        let accounts = rows.iter().map(account_row).collect::<Attempt<Vec<_>>>()?;
        let rows = sqlx::query(&format!("SELECT {STRATEGY_COLUMNS} FROM sq_strategies ORDER BY account, book"))
            .fetch_all(&mut *tx)
            .await?;
        let strategies = rows.iter().map(strategy_row).collect::<Attempt<Vec<_>>>()?;
        let rows = sqlx::query(&format!(
            "SELECT account, book, {PARAM_COLUMNS} FROM sq_params ORDER BY account, book, version"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let mut params = Vec::with_capacity(rows.len());
        for r in &rows {
            let (a, b) = (text(r, "account")?, text(r, "book")?);
            let book = BookId::new(&a, &b).map_err(|e| Error::corrupt(format!("sq_params[{a}/{b}]"), e.to_string()))?;
            params.push(param_row(&book, r)?);
        }
        let rows = sqlx::query("SELECT id, at_ms, actor, action, entity, detail FROM sq_audit ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let audit = rows.iter().map(audit_row).collect::<Attempt<Vec<_>>>()?;
        tx.commit().await?;
        Ok(RegistryDump { accounts, strategies, params, audit })
    })
    .await
}

pub(crate) async fn restore_dump(db: &SqlStore, dump: &RegistryDump, actor: &str) -> Result<()> {
    validate_actor(actor)?;
    dump.validate()?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        for table in ["sq_params", "sq_strategies", "sq_accounts", "sq_audit"] {
            sqlx::query(&format!("DELETE FROM {table}")).execute(&mut *tx).await?;
        }
        let now = now_ms();
        for a in &dump.accounts {
            sqlx::query("INSERT INTO sq_accounts (id, name, broker, meta, updated_ms) VALUES (?, ?, ?, ?, ?)")
                .bind(a.id.as_str())
                .bind(&a.name)
                .bind(&a.broker)
                .bind(Value::Object(a.meta.clone()).to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        for st in &dump.strategies {
            sqlx::query(
                "INSERT INTO sq_strategies (account, book, description, kind, enabled, updated_ms) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(st.book.account.as_str())
            .bind(st.book.book.as_str())
            .bind(&st.description)
            .bind(&st.kind)
            .bind(i64::from(st.enabled))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for p in &dump.params {
            sqlx::query(
                "INSERT INTO sq_params (account, book, version, params, actor, note, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(p.book.account.as_str())
            .bind(p.book.book.as_str())
            .bind(i64::from(p.version))
            .bind(Value::Object(p.params.clone()).to_string())
            .bind(&p.actor)
            .bind(&p.note)
            .bind(p.created_at.timestamp_millis())
            .execute(&mut *tx)
            .await?;
        }
        for e in &dump.audit {
            sqlx::query("INSERT INTO sq_audit (id, at_ms, actor, action, entity, detail) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(e.id)
                .bind(e.at.timestamp_millis())
                .bind(&e.actor)
                .bind(&e.action)
                .bind(&e.entity)
                .bind(e.detail.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let detail = json!({
            "accounts": dump.accounts.len(),
            "strategies": dump.strategies.len(),
            "params": dump.params.len(),
            "audit": dump.audit.len(),
        });
        audit(&mut tx, actor, "registry.restore", "registry", detail).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
}
