//! Versioned strategy parameters: their queries, row decoder and columns.

use serde_json::{Map, Value, json};
use sqdata_core::registry::{book_entity, validate_actor, validate_document};
use sqdata_core::{BookId, Error, ParamVersion, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::audit;
use crate::rows::{now_ms, object, text, time};
use crate::store::{Attempt, SqlStore};
use crate::strategies::strategy_exists;

pub(crate) const PARAM_COLUMNS: &str = "version, params, actor, note, created_ms";

pub(crate) fn param_row(book: &BookId, r: &AnyRow) -> Attempt<ParamVersion> {
    let version: i64 = r.try_get("version")?;
    let location = format!("sq_params[{book} v{version}]");
    Ok(ParamVersion {
        book: book.clone(),
        version: u32::try_from(version).map_err(|_| Error::corrupt(&location, "version out of range"))?,
        params: object(&text(r, "params")?, &location)?,
        actor: r.try_get("actor")?,
        note: text(r, "note")?,
        created_at: time(r.try_get("created_ms")?, &location)?,
    })
}

/// Appends the next version inside `tx`.
async fn append_params(
    tx: &mut Transaction<'static, Any>,
    book: &BookId,
    params: &Map<String, Value>,
    actor: &str,
    note: &str,
    expected: Option<u32>,
) -> Attempt<ParamVersion> {
    let last: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM sq_params WHERE account = ? AND book = ?")
            .bind(book.account.as_str())
            .bind(book.book.as_str())
            .fetch_one(&mut **tx)
            .await?;
    if let Some(want) = expected
        && i64::from(want) != last
    {
        return Err(Error::Conflict {
            what: format!("parameters of {book}"),
            reason: format!("the latest version is {last}, not {want}"),
        }
        .into());
    }
    let created = now_ms();
    let version =
        u32::try_from(last + 1).map_err(|_| Error::corrupt(format!("sq_params[{book}]"), "too many versions"))?;
    sqlx::query(
        "INSERT INTO sq_params (account, book, version, params, actor, note, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(book.account.as_str())
    .bind(book.book.as_str())
    .bind(i64::from(version))
    .bind(Value::Object(params.clone()).to_string())
    .bind(actor)
    .bind(note)
    .bind(created)
    .execute(&mut **tx)
    .await?;
    Ok(ParamVersion {
        book: book.clone(),
        version,
        params: params.clone(),
        actor: actor.to_owned(),
        note: note.to_owned(),
        created_at: time(created, "now")?,
    })
}

fn check_note(note: &str) -> Result<()> {
    if note.len() > 1024 {
        return Err(Error::invalid("note", note, "at most 1024 bytes"));
    }
    Ok(())
}

pub(crate) async fn put_params(
    db: &SqlStore,
    book: &BookId,
    params: &Map<String, Value>,
    actor: &str,
    note: &str,
    expected: Option<u32>,
) -> Result<ParamVersion> {
    validate_actor(actor)?;
    validate_document("params", params)?;
    check_note(note)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        if !strategy_exists(&mut tx, book).await? {
            return Err(Error::invalid("book", book, "no such strategy; create it first").into());
        }
        // the condition is read in the transaction that writes: a concurrent
        // writer that got in first makes this insert collide on the version
        // key, and the retry then sees its version and refuses
        let v = append_params(&mut tx, book, params, actor, note, expected).await?;
        audit(&mut tx, actor, "params.put", &book_entity(book), json!({"version": v.version, "note": note})).await?;
        tx.commit().await?;
        Ok(v)
    })
    .await
}

pub(crate) async fn params(db: &SqlStore, book: &BookId, version: Option<u32>) -> Result<Option<ParamVersion>> {
    db.read(async {
        let row =
            match version {
                Some(v) => {
                    sqlx::query(&format!(
                        "SELECT {PARAM_COLUMNS} FROM sq_params WHERE account = ? AND book = ? AND version = ?"
                    ))
                    .bind(book.account.as_str())
                    .bind(book.book.as_str())
                    .bind(i64::from(v))
                    .fetch_optional(&db.pool)
                    .await?
                }
                None => sqlx::query(&format!(
                    "SELECT {PARAM_COLUMNS} FROM sq_params WHERE account = ? AND book = ? ORDER BY version DESC LIMIT 1"
                ))
                .bind(book.account.as_str())
                .bind(book.book.as_str())
                .fetch_optional(&db.pool)
                .await?,
            };
        row.as_ref().map(|r| param_row(book, r)).transpose()
    })
    .await
}

pub(crate) async fn param_history(db: &SqlStore, book: &BookId) -> Result<Vec<ParamVersion>> {
    db.read(async {
        let rows = sqlx::query(&format!(
            "SELECT {PARAM_COLUMNS} FROM sq_params WHERE account = ? AND book = ? ORDER BY version"
        ))
        .bind(book.account.as_str())
        .bind(book.book.as_str())
        .fetch_all(&db.pool)
        .await?;
        rows.iter().map(|r| param_row(book, r)).collect()
    })
    .await
}

pub(crate) async fn rollback_params(db: &SqlStore, book: &BookId, to: u32, actor: &str) -> Result<ParamVersion> {
    validate_actor(actor)?;
    db.retry(|| async {
        let mut tx = db.pool.begin().await?;
        let row = sqlx::query(&format!(
            "SELECT {PARAM_COLUMNS} FROM sq_params WHERE account = ? AND book = ? AND version = ?"
        ))
        .bind(book.account.as_str())
        .bind(book.book.as_str())
        .bind(i64::from(to))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(Error::invalid("version", to, format!("{book} has no such parameter version")).into());
        };
        let old = param_row(book, &row)?;
        let note = format!("rollback to v{to}");
        let v = append_params(&mut tx, book, &old.params, actor, &note, None).await?;
        audit(&mut tx, actor, "params.rollback", &book_entity(book), json!({"version": v.version, "from": to})).await?;
        tx.commit().await?;
        Ok(v)
    })
    .await
}
