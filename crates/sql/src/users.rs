//! Users: their queries, row decoder and columns; the failed-login count and
//! the lockout. A password, role or status change moves `tokens_after` and
//! revokes the user's open sessions in the same transaction.
//!
//! The count of failed logins runs on until a successful login (or an
//! unlock) resets it: once a user has been locked, each further failure
//! locks it again.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sqdata_core::auth::validate_user_name;
use sqdata_core::registry::validate_actor;
use sqdata_core::{Error, Result, Role, User, UserChange, UserStatus};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::audit;
use crate::checks::{SYSTEM_ACTOR, check_password_hash, user_entity};
use crate::rows::{now_ms, opt_time, text, time};
use crate::store::{Attempt, SqlStore};

pub(crate) const USER_COLUMNS: &str =
    "name, role, status, password_hash, failed_logins, locked_until_ms, tokens_after_ms, created_ms";

pub(crate) fn status_str(s: UserStatus) -> &'static str {
    match s {
        UserStatus::Active => "active",
        UserStatus::Disabled => "disabled",
    }
}

fn parse_status(s: &str, location: &str) -> Result<UserStatus> {
    match s {
        "active" => Ok(UserStatus::Active),
        "disabled" => Ok(UserStatus::Disabled),
        other => Err(Error::corrupt(location, format!("status {other:?}: expected active or disabled"))),
    }
}

/// Decodes a user. A corrupt row is named by its key; the hash never
/// appears in an error.
pub(crate) fn user_row(r: &AnyRow) -> Attempt<User> {
    let name = text(r, "name")?;
    let location = format!("sq_users[{name}]");
    let role: Role = text(r, "role")?.parse().map_err(|e: Error| Error::corrupt(&location, e.to_string()))?;
    let failed: i64 = r.try_get("failed_logins")?;
    Ok(User {
        role,
        status: parse_status(&text(r, "status")?, &location)?,
        password_hash: text(r, "password_hash")?,
        failed_logins: u32::try_from(failed).map_err(|_| Error::corrupt(&location, "failed_logins out of range"))?,
        locked_until: opt_time(r, "locked_until_ms", &location)?,
        tokens_after: time(r.try_get("tokens_after_ms")?, &location)?,
        created_at: time(r.try_get("created_ms")?, &location)?,
        name,
    })
}

pub(crate) async fn user_exists(tx: &mut Transaction<'static, Any>, name: &str) -> Attempt<bool> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sq_users WHERE name = ?").bind(name).fetch_one(&mut **tx).await?;
    Ok(n > 0)
}

/// Refuses a change for a user that is not there (`field` names the input).
pub(crate) async fn require_user(tx: &mut Transaction<'static, Any>, field: &str, name: &str) -> Attempt<()> {
    if user_exists(tx, name).await? {
        Ok(())
    } else {
        Err(Error::invalid(field, name, "no such user; create it first").into())
    }
}

async fn user_in(tx: &mut Transaction<'static, Any>, name: &str) -> Attempt<Option<User>> {
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM sq_users WHERE name = ?"))
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(user_row).transpose()
}

pub(crate) async fn create_user(db: &SqlStore, user: &User, actor: &str) -> Result<()> {
    validate_actor(actor)?;
    validate_user_name(&user.name)?;
    check_password_hash(&user.password_hash)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        if user_exists(&mut tx, &user.name).await? {
            return Err(Error::invalid("user", &user.name, "already exists").into());
        }
        sqlx::query(
            "INSERT INTO sq_users (name, role, status, password_hash, failed_logins, locked_until_ms, \
             tokens_after_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(status_str(user.status))
        .bind(&user.password_hash)
        .bind(i64::from(user.failed_logins))
        .bind(user.locked_until.map(|t| t.timestamp_millis()))
        .bind(user.tokens_after.timestamp_millis())
        .bind(user.created_at.timestamp_millis())
        .execute(&mut *tx)
        .await?;
        let detail = json!({"role": user.role, "status": status_str(user.status)});
        audit(&mut tx, actor, "user.create", &user_entity(&user.name), detail).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
}

pub(crate) async fn user(db: &SqlStore, name: &str) -> Result<Option<User>> {
    if validate_user_name(name).is_err() {
        return Ok(None); // nothing can be stored under it
    }
    db.read(async {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM sq_users WHERE name = ?"))
            .bind(name)
            .fetch_optional(&db.pool)
            .await?;
        row.as_ref().map(user_row).transpose()
    })
    .await
}

pub(crate) async fn users(db: &SqlStore) -> Result<Vec<User>> {
    db.read(async {
        let rows =
            sqlx::query(&format!("SELECT {USER_COLUMNS} FROM sq_users ORDER BY name")).fetch_all(&db.pool).await?;
        rows.iter().map(user_row).collect()
    })
    .await
}

pub(crate) async fn update_user(db: &SqlStore, name: &str, change: &UserChange, actor: &str) -> Result<Option<User>> {
    validate_actor(actor)?;
    validate_user_name(name)?;
    if let Some(h) = &change.password_hash {
        check_password_hash(h)?;
    }
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        let Some(old) = user_in(&mut tx, name).await? else { return Ok(None) };
        // Only what differs is written (COALESCE keeps the rest), so two
        // admins changing different fields at once both win.
        let role = change.role.filter(|r| *r != old.role);
        let status = change.status.filter(|s| *s != old.status);
        let password = change.password_hash.as_ref().filter(|h| **h != old.password_hash);
        if role.is_none() && status.is_none() && password.is_none() {
            return Ok(Some(old));
        }
        let now = now_ms().max(old.tokens_after.timestamp_millis());
        sqlx::query(
            "UPDATE sq_users SET role = COALESCE(?, role), status = COALESCE(?, status), \
             password_hash = COALESCE(?, password_hash), tokens_after_ms = ? WHERE name = ?",
        )
        .bind(role.map(|r| r.as_str()))
        .bind(status.map(status_str))
        .bind(password.map(String::as_str))
        .bind(now)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        let revoked = sqlx::query("UPDATE sq_sessions SET revoked = 1 WHERE user_name = ? AND revoked = 0")
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let mut detail = Map::new();
        if let Some(r) = role {
            detail.insert("role".into(), json!(r));
        }
        if let Some(s) = status {
            detail.insert("status".into(), json!(status_str(s)));
        }
        detail.insert("password_changed".into(), json!(password.is_some()));
        detail.insert("sessions_revoked".into(), json!(revoked));
        audit(&mut tx, actor, "user.update", &user_entity(name), Value::Object(detail)).await?;
        let now = user_in(&mut tx, name).await?;
        tx.commit().await?;
        Ok(now)
    })
    .await
}

pub(crate) async fn login_failed(
    db: &SqlStore,
    name: &str,
    max_failures: u32,
    lock_until: DateTime<Utc>,
) -> Result<Option<User>> {
    validate_user_name(name)?;
    if max_failures == 0 {
        return Err(Error::invalid("max_failures", 0, "must be at least 1"));
    }
    let until = lock_until.timestamp_millis();
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        // Counted in place: concurrent failures each add one.
        let done = sqlx::query("UPDATE sq_users SET failed_logins = failed_logins + 1 WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let Some(mut u) = user_in(&mut tx, name).await? else { return Ok(None) };
        let later = u.locked_until.is_none_or(|t| t.timestamp_millis() < until);
        if u.failed_logins >= max_failures && later {
            sqlx::query("UPDATE sq_users SET locked_until_ms = ? WHERE name = ?")
                .bind(until)
                .bind(name)
                .execute(&mut *tx)
                .await?;
            u.locked_until = Some(time(until, "lock_until")?);
            let detail = json!({"failed_logins": u.failed_logins, "until": u.locked_until});
            audit(&mut tx, SYSTEM_ACTOR, "user.lock", &user_entity(name), detail).await?;
        }
        tx.commit().await?;
        Ok(Some(u))
    })
    .await
}

pub(crate) async fn login_succeeded(db: &SqlStore, name: &str) -> Result<()> {
    validate_user_name(name)?;
    db.retry(|| async {
        sqlx::query("UPDATE sq_users SET failed_logins = 0 WHERE name = ? AND failed_logins <> 0")
            .bind(name)
            .execute(&db.pool)
            .await?;
        Ok(())
    })
    .await
}

pub(crate) async fn unlock(db: &SqlStore, name: &str, actor: &str) -> Result<bool> {
    validate_actor(actor)?;
    validate_user_name(name)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        let Some(old) = user_in(&mut tx, name).await? else { return Ok(false) };
        sqlx::query("UPDATE sq_users SET failed_logins = 0, locked_until_ms = NULL WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let detail = json!({"failed_logins": old.failed_logins, "locked_until": old.locked_until});
        audit(&mut tx, actor, "user.unlock", &user_entity(name), detail).await?;
        tx.commit().await?;
        Ok(true)
    })
    .await
}
