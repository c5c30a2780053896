//! Login sessions and their refresh tokens. A session has one `current`
//! token; each refresh marks it `used` and stores the next one, and the used
//! ones stay (while the session lives) so that a replay is recognised: the
//! session is then revoked, so neither the thief nor the owner goes on.
//!
//! The rotation is one conditional `UPDATE … WHERE state = 'current'` as the
//! transaction's first statement: of concurrent presentations of one token,
//! exactly one matches the row; the others wait for its lock (MySQL) or the
//! write lock (SQLite) and then see it `used`. Their later reads start after
//! that commit, so they see it too (InnoDB takes a transaction's snapshot at
//! its first plain read, not at `BEGIN`).
//!
//! The tokens of a user's finished (expired or revoked) sessions can never be
//! presented successfully again; they are deleted at the user's next login.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqdata_core::auth::validate_user_name;
use sqdata_core::registry::validate_actor;
use sqdata_core::{Error, Refresh, Result, Session};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::audit;
use crate::checks::{REDACTED, SYSTEM_ACTOR, check_session_id, check_sha256, scrub, session_entity};
use crate::rows::{now_ms, text, time};
use crate::store::{Attempt, SqlStore};
use crate::users::require_user;

const SESSION_COLUMNS: &str = "id, user_name, created_ms, expires_ms, revoked";

fn session_row(r: &AnyRow) -> Attempt<Session> {
    let id = text(r, "id")?;
    let location = format!("sq_sessions[{id}]");
    Ok(Session {
        user: text(r, "user_name")?,
        created_at: time(r.try_get("created_ms")?, &location)?,
        expires_at: time(r.try_get("expires_ms")?, &location)?,
        revoked: r.try_get::<i64, _>("revoked")? != 0,
        id,
    })
}

async fn session_in(tx: &mut Transaction<'static, Any>, id: &str) -> Attempt<Option<Session>> {
    let row = sqlx::query(&format!("SELECT {SESSION_COLUMNS} FROM sq_sessions WHERE id = ?"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(session_row).transpose()
}

async fn token_known(tx: &mut Transaction<'static, Any>, field: &str, hash: &str) -> Attempt<()> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_refresh_tokens WHERE token_hash = ?")
        .bind(hash)
        .fetch_one(&mut **tx)
        .await?;
    if n > 0 { Err(Error::invalid(field, REDACTED, "already a refresh token").into()) } else { Ok(()) }
}

async fn insert_token(tx: &mut Transaction<'static, Any>, session: &str, hash: &str) -> Attempt<()> {
    sqlx::query(
        "INSERT INTO sq_refresh_tokens (token_hash, session_id, state, created_ms) VALUES (?, ?, 'current', ?)",
    )
    .bind(hash)
    .bind(session)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn create_session(db: &SqlStore, session: &Session, refresh_hash: &str) -> Result<()> {
    check_session_id(&session.id)?;
    validate_user_name(&session.user)?;
    check_sha256("refresh_hash", refresh_hash)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        require_user(&mut tx, "user", &session.user).await?;
        if session_in(&mut tx, &session.id).await?.is_some() {
            return Err(Error::invalid("session", &session.id, "already exists").into());
        }
        token_known(&mut tx, "refresh_hash", refresh_hash).await?;
        sqlx::query(
            "DELETE FROM sq_refresh_tokens WHERE session_id IN \
             (SELECT id FROM sq_sessions WHERE user_name = ? AND (revoked <> 0 OR expires_ms <= ?))",
        )
        .bind(&session.user)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("INSERT INTO sq_sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)"))
            .bind(&session.id)
            .bind(&session.user)
            .bind(session.created_at.timestamp_millis())
            .bind(session.expires_at.timestamp_millis())
            .bind(i64::from(session.revoked))
            .execute(&mut *tx)
            .await?;
        insert_token(&mut tx, &session.id, refresh_hash).await?;
        let detail = json!({"user": session.user, "expires_at": session.expires_at});
        audit(&mut tx, &session.user, "session.create", &session_entity(&session.id), detail).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
    .map_err(|e| scrub(e, &[refresh_hash]))
}

pub(crate) async fn session(db: &SqlStore, id: &str) -> Result<Option<Session>> {
    if check_session_id(id).is_err() {
        return Ok(None); // nothing can be stored under it
    }
    db.read(async {
        let row = sqlx::query(&format!("SELECT {SESSION_COLUMNS} FROM sq_sessions WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
        row.as_ref().map(session_row).transpose()
    })
    .await
}

pub(crate) async fn refresh(
    db: &SqlStore,
    session_id: &str,
    presented: &str,
    new: &str,
    now: DateTime<Utc>,
) -> Result<Refresh> {
    check_session_id(session_id)?;
    check_sha256("presented_hash", presented)?;
    check_sha256("new_hash", new)?;
    if presented == new {
        return Err(Error::invalid("new_hash", REDACTED, "must differ from the presented token's"));
    }
    let now = now.timestamp_millis();
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        // First: the row lock (or the write lock) that orders presentations.
        let rotated = sqlx::query(
            "UPDATE sq_refresh_tokens SET state = 'used' WHERE token_hash = ? AND session_id = ? AND state = 'current'",
        )
        .bind(presented)
        .bind(session_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        // A session that is gone, ended or expired refreshes nothing (the
        // transaction is dropped: its token stays as it was).
        let Some(mut session) = session_in(&mut tx, session_id).await? else { return Ok(Refresh::Invalid) };
        if session.revoked || session.expires_at.timestamp_millis() <= now {
            return Ok(Refresh::Invalid);
        }
        if rotated {
            token_known(&mut tx, "new_hash", new).await?;
            insert_token(&mut tx, session_id, new).await?;
            tx.commit().await?;
            return Ok(Refresh::Rotated(session));
        }
        let row = sqlx::query("SELECT state FROM sq_refresh_tokens WHERE token_hash = ? AND session_id = ?")
            .bind(presented)
            .bind(session_id)
            .fetch_optional(&mut *tx)
            .await?;
        let state = row.as_ref().map(|r| text(r, "state")).transpose()?;
        if state.as_deref() != Some("used") {
            return Ok(Refresh::Invalid); // not one of this session's tokens
        }
        sqlx::query("UPDATE sq_sessions SET revoked = 1 WHERE id = ?").bind(session_id).execute(&mut *tx).await?;
        let detail = json!({"user": session.user, "reason": "a rotated refresh token was presented again"});
        audit(&mut tx, SYSTEM_ACTOR, "session.reuse", &session_entity(session_id), detail).await?;
        tx.commit().await?;
        session.revoked = true;
        Ok(Refresh::Reused(session))
    })
    .await
    .map_err(|e| scrub(e, &[presented, new]))
}

pub(crate) async fn revoke_session(db: &SqlStore, id: &str, actor: &str) -> Result<bool> {
    validate_actor(actor)?;
    check_session_id(id)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        let done = sqlx::query("UPDATE sq_sessions SET revoked = 1 WHERE id = ? AND revoked = 0")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        audit(&mut tx, actor, "session.revoke", &session_entity(id), Value::Null).await?;
        tx.commit().await?;
        Ok(true)
    })
    .await
}
