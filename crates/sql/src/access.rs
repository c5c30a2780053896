//! The access log (the API requests the server logs, newest read first) and
//! the audit rows of events that change nothing stored here (a login, a
//! failed login, a write through the API about to be made).

use serde_json::Value;
use sqdata_core::registry::{MAX_AUDIT_LIMIT, MAX_DOCUMENT_BYTES, validate_actor};
use sqdata_core::{AccessEntry, Error, Result};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::audit;
use crate::checks::check_text;
use crate::rows::{opt_text, text, time};
use crate::store::{Attempt, SqlStore};

const ACCESS_COLUMNS: &str = "at_ms, principal, method, route, account, status, ip";

/// Rows per `INSERT` (7 parameters each, well under SQLite's 999).
const CHUNK: usize = 100;

fn check_entry(e: &AccessEntry) -> Result<()> {
    check_text("principal", &e.principal, 1, 160)?;
    check_text("method", &e.method, 1, 16)?;
    check_text("route", &e.route, 1, 255)?;
    if let Some(a) = &e.account {
        check_text("account", a, 1, 64)?;
    }
    check_text("ip", &e.ip, 0, 64)
}

fn access_row(r: &AnyRow) -> Attempt<AccessEntry> {
    let id: i64 = r.try_get("id")?;
    let location = format!("sq_access_log[{id}]");
    let status: i64 = r.try_get("status")?;
    Ok(AccessEntry {
        at: time(r.try_get("at_ms")?, &location)?,
        principal: text(r, "principal")?,
        method: text(r, "method")?,
        route: text(r, "route")?,
        account: opt_text(r, "account")?,
        status: u16::try_from(status).map_err(|_| Error::corrupt(&location, format!("status {status}")))?,
        ip: text(r, "ip")?,
    })
}

pub(crate) async fn log_access(db: &SqlStore, entries: &[AccessEntry]) -> Result<()> {
    entries.iter().try_for_each(check_entry)?;
    if entries.is_empty() {
        return Ok(());
    }
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        for chunk in entries.chunks(CHUNK) {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!("INSERT INTO sq_access_log ({ACCESS_COLUMNS}) VALUES {rows}");
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(e.at.timestamp_millis())
                    .bind(&e.principal)
                    .bind(&e.method)
                    .bind(&e.route)
                    .bind(e.account.as_deref())
                    .bind(i64::from(e.status))
                    .bind(&e.ip);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    })
    .await
}

pub(crate) async fn access_log(db: &SqlStore, limit: u32) -> Result<Vec<AccessEntry>> {
    if limit == 0 || limit > MAX_AUDIT_LIMIT {
        return Err(Error::invalid("limit", limit, format!("must be 1 to {MAX_AUDIT_LIMIT}")));
    }
    db.read(async {
        let rows = sqlx::query(&format!("SELECT id, {ACCESS_COLUMNS} FROM sq_access_log ORDER BY id DESC LIMIT ?"))
            .bind(i64::from(limit))
            .fetch_all(&db.pool)
            .await?;
        rows.iter().map(access_row).collect()
    })
    .await
}

/// An action name: 1 to 32 of `[a-z0-9._-]` (`user.login`).
fn check_action(action: &str) -> Result<()> {
    let ok = (1..=32).contains(&action.len())
        && action.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(Error::invalid("action", action, "1 to 32 of a-z, 0-9, '.', '_', '-'")) }
}

pub(crate) async fn audit_event(db: &SqlStore, actor: &str, action: &str, entity: &str, detail: Value) -> Result<()> {
    validate_actor(actor)?;
    check_action(action)?;
    check_text("entity", entity, 1, 160)?;
    let size = detail.to_string().len();
    if size > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid("detail", format!("{size} bytes"), format!("at most {MAX_DOCUMENT_BYTES} bytes")));
    }
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        audit(&mut tx, actor, action, entity, detail.clone()).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
}
