//! The audit log: the entry every change writes in its transaction, the
//! audit query and the row decoder.

use serde_json::Value;
use sqdata_core::{AuditEntry, AuditQuery, Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::rows::{now_ms, text, time};
use crate::store::{Attempt, SqlStore};

pub(crate) async fn audit(
    tx: &mut Transaction<'static, Any>,
    actor: &str,
    action: &str,
    entity: &str,
    detail: Value,
) -> Attempt<()> {
    sqlx::query("INSERT INTO sq_audit (at_ms, actor, action, entity, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(now_ms())
        .bind(actor)
        .bind(action)
        .bind(entity)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) fn audit_row(r: &AnyRow) -> Attempt<AuditEntry> {
    let id: i64 = r.try_get("id")?;
    let location = format!("sq_audit[{id}]");
    let detail = text(r, "detail")?;
    Ok(AuditEntry {
        id,
        at: time(r.try_get("at_ms")?, &location)?,
        actor: text(r, "actor")?,
        action: text(r, "action")?,
        entity: text(r, "entity")?,
        detail: serde_json::from_str(&detail).map_err(|e| Error::corrupt(&location, e.to_string()))?,
    })
}

pub(crate) async fn query(db: &SqlStore, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    q.validate()?;
    db.read(async {
        let mut sql = "SELECT id, at_ms, actor, action, entity, detail FROM sq_audit WHERE 1 = 1".to_owned();
        if q.entity.is_some() {
            sql.push_str(" AND entity = ?");
        }
        if q.actor.is_some() {
            sql.push_str(" AND actor = ?");
        }
        if q.since.is_some() {
            sql.push_str(" AND at_ms >= ?");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query(&sql);
        if let Some(e) = &q.entity {
            query = query.bind(e);
        }
        if let Some(a) = &q.actor {
            query = query.bind(a);
        }
        if let Some(s) = q.since {
            query = query.bind(s.timestamp_millis());
        }
        let rows = query.bind(i64::from(q.limit)).fetch_all(&db.pool).await?;
        rows.iter().map(audit_row).collect()
    })
    .await
}
