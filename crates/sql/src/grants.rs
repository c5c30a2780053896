//! Per-account grants: a user's right (read / write) on one account, at
//! most one per (user, account). The account need not be in `sq_accounts`
//! (a book may live in the files only); the user must exist. Audited under
//! the user's entity, so a user's history shows its grants.

use serde_json::json;
use sqdata_core::auth::validate_user_name;
use sqdata_core::registry::validate_actor;
use sqdata_core::{AccountCode, Error, Grant, Result, Right};
use sqlx::any::AnyRow;

use crate::audit::audit;
use crate::checks::user_entity;
use crate::rows::{now_ms, text};
use crate::store::{Attempt, SqlStore};
use crate::users::require_user;

fn grant_row(r: &AnyRow) -> Attempt<Grant> {
    let (user, account) = (text(r, "user_name")?, text(r, "account")?);
    let location = format!("sq_grants[{user}/{account}]");
    let right: Right = text(r, "access")?.parse().map_err(|e: Error| Error::corrupt(&location, e.to_string()))?;
    Ok(Grant {
        account: AccountCode::new(&account).map_err(|e| Error::corrupt(&location, e.to_string()))?,
        user,
        right,
    })
}

pub(crate) async fn set_grant(db: &SqlStore, grant: &Grant, actor: &str) -> Result<()> {
    validate_actor(actor)?;
    validate_user_name(&grant.user)?;
    let account = grant.account.as_str();
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        require_user(&mut tx, "user", &grant.user).await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sq_grants WHERE user_name = ? AND account = ?")
            .bind(&grant.user)
            .bind(account)
            .fetch_one(&mut *tx)
            .await?;
        let sql = if n > 0 {
            "UPDATE sq_grants SET access = ?, updated_ms = ? WHERE user_name = ? AND account = ?"
        } else {
            "INSERT INTO sq_grants (access, updated_ms, user_name, account) VALUES (?, ?, ?, ?)"
        };
        sqlx::query(sql)
            .bind(grant.right.as_str())
            .bind(now_ms())
            .bind(&grant.user)
            .bind(account)
            .execute(&mut *tx)
            .await?;
        let detail = json!({"account": account, "right": grant.right});
        audit(&mut tx, actor, "grant.set", &user_entity(&grant.user), detail).await?;
        tx.commit().await?;
        Ok(())
    })
    .await
}

pub(crate) async fn revoke_grant(db: &SqlStore, user: &str, account: &AccountCode, actor: &str) -> Result<bool> {
    validate_actor(actor)?;
    validate_user_name(user)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        let done = sqlx::query("DELETE FROM sq_grants WHERE user_name = ? AND account = ?")
            .bind(user)
            .bind(account.as_str())
            .execute(&mut *tx)
            .await?;
        let revoked = done.rows_affected() > 0;
        if revoked {
            audit(&mut tx, actor, "grant.revoke", &user_entity(user), json!({"account": account})).await?;
        }
        tx.commit().await?;
        Ok(revoked)
    })
    .await
}

pub(crate) async fn grants(db: &SqlStore, user: &str) -> Result<Vec<Grant>> {
    if validate_user_name(user).is_err() {
        return Ok(Vec::new()); // nothing can be stored under it
    }
    db.read(async {
        let rows = sqlx::query("SELECT user_name, account, access FROM sq_grants WHERE user_name = ? ORDER BY account")
            .bind(user)
            .fetch_all(&db.pool)
            .await?;
        rows.iter().map(grant_row).collect()
    })
    .await
}
