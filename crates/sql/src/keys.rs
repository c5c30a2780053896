//! API keys for machine clients: the key's public part and the SHA-256 of
//! its secret (the secret itself is shown once by the server and never
//! reaches the store). The account subset is a JSON array, `NULL` for all of
//! the user's accounts. The hash never goes into an audit row or an error.

use serde_json::json;
use sqdata_core::auth::validate_user_name;
use sqdata_core::registry::validate_actor;
use sqdata_core::{AccountCode, ApiKey, Error, Result};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::audit;
use crate::checks::{check_key_id, check_sha256, check_text, key_entity, scrub};
use crate::rows::{opt_text, opt_time, text, time};
use crate::store::{Attempt, SqlStore};
use crate::users::require_user;

const KEY_COLUMNS: &str = "id, user_name, label, accounts, secret_hash, created_ms, expires_ms, revoked";

/// The most accounts one key may be limited to.
const MAX_KEY_ACCOUNTS: usize = 1000;

/// The longest label.
const MAX_LABEL: usize = 128;

fn key_row(r: &AnyRow) -> Attempt<(ApiKey, String)> {
    let id = text(r, "id")?;
    let location = format!("sq_api_keys[{id}]");
    let accounts = match opt_text(r, "accounts")? {
        None => None,
        Some(list) => {
            let codes: Vec<String> =
                serde_json::from_str(&list).map_err(|e| Error::corrupt(&location, format!("accounts: {e}")))?;
            let codes = codes.iter().map(AccountCode::new).collect::<Result<Vec<_>>>();
            Some(codes.map_err(|e| Error::corrupt(&location, e.to_string()))?)
        }
    };
    let key = ApiKey {
        user: text(r, "user_name")?,
        label: text(r, "label")?,
        accounts,
        created_at: time(r.try_get("created_ms")?, &location)?,
        expires_at: opt_time(r, "expires_ms", &location)?,
        revoked: r.try_get::<i64, _>("revoked")? != 0,
        id,
    };
    Ok((key, text(r, "secret_hash")?))
}

pub(crate) async fn create_api_key(db: &SqlStore, key: &ApiKey, secret_hash: &str, actor: &str) -> Result<()> {
    validate_actor(actor)?;
    check_key_id(&key.id)?;
    validate_user_name(&key.user)?;
    check_text("label", &key.label, 0, MAX_LABEL)?;
    check_sha256("secret_hash", secret_hash)?;
    let accounts = match &key.accounts {
        Some(a) if a.len() > MAX_KEY_ACCOUNTS => {
            return Err(Error::invalid("accounts", a.len(), format!("at most {MAX_KEY_ACCOUNTS} accounts")));
        }
        Some(a) => Some(serde_json::to_string(a).map_err(|e| Error::invalid("accounts", "", e.to_string()))?),
        None => None,
    };
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        require_user(&mut tx, "user", &key.user).await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_api_keys WHERE id = ?")
            .bind(&key.id)
            .fetch_one(&mut *tx)
            .await?;
        if n > 0 {
            return Err(Error::invalid("key", &key.id, "already exists").into());
        }
        sqlx::query(&format!("INSERT INTO sq_api_keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"))
            .bind(&key.id)
            .bind(&key.user)
            .bind(&key.label)
            .bind(accounts.as_deref())
            .bind(secret_hash)
            .bind(key.created_at.timestamp_millis())
            .bind(key.expires_at.map(|t| t.timestamp_millis()))
            .bind(i64::from(key.revoked))
            .execute(&mut *tx)
            .await?;
        let detail = json!({
            "user": key.user,
            "label": key.label,
            "accounts": key.accounts,
            "expires_at": key.expires_at,
        });
        audit(&mut tx, actor, "apikey.create", &key_entity(&key.id), detail).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
    .map_err(|e| scrub(e, &[secret_hash]))
}

pub(crate) async fn api_key(db: &SqlStore, id: &str) -> Result<Option<(ApiKey, String)>> {
    if check_key_id(id).is_err() {
        return Ok(None); // nothing can be stored under it
    }
    db.read(async {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM sq_api_keys WHERE id = ?"))
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
        row.as_ref().map(key_row).transpose()
    })
    .await
}

pub(crate) async fn api_keys(db: &SqlStore, user: Option<&str>) -> Result<Vec<ApiKey>> {
    if user.is_some_and(|u| validate_user_name(u).is_err()) {
        return Ok(Vec::new());
    }
    db.read(async {
        let rows = match user {
            Some(u) => {
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM sq_api_keys WHERE user_name = ? ORDER BY user_name, created_ms, id"
                ))
                .bind(u)
                .fetch_all(&db.pool)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM sq_api_keys ORDER BY user_name, created_ms, id"))
                    .fetch_all(&db.pool)
                    .await?
            }
        };
        rows.iter().map(|r| key_row(r).map(|(k, _)| k)).collect()
    })
    .await
}

pub(crate) async fn revoke_api_key(db: &SqlStore, id: &str, actor: &str) -> Result<bool> {
    validate_actor(actor)?;
    check_key_id(id)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        let done = sqlx::query("UPDATE sq_api_keys SET revoked = 1 WHERE id = ? AND revoked = 0")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_api_keys WHERE id = ?")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            return Ok(n > 0); // already revoked: nothing to change or audit
        }
        audit(&mut tx, actor, "apikey.revoke", &key_entity(id), serde_json::Value::Null).await?;
        tx.commit().await?;
        Ok(true)
    })
    .await
}
