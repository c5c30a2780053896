//! Helpers shared by the row decoders of every registry area: clock,
//! timestamps, JSON objects and (nullable) text columns.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqdata_core::{Error, Result};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::Attempt;

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(crate) fn time(ms: i64, location: &str) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| Error::corrupt(location, format!("timestamp {ms} out of range")))
}

pub(crate) fn object(text: &str, location: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::corrupt(location, "not a JSON object")),
        Err(e) => Err(Error::corrupt(location, e.to_string())),
    }
}

/// A text column. MySQL reports TEXT columns as BLOB through the `Any`
/// driver, so they arrive as bytes there and as text on SQLite.
pub(crate) fn text(r: &AnyRow, col: &str) -> Attempt<String> {
    match r.try_get::<String, _>(col) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes: Vec<u8> = r.try_get(col)?;
            String::from_utf8(bytes).map_err(|e| Error::corrupt(col, format!("not UTF-8: {e}")).into())
        }
    }
}

/// A nullable text column (see [`text`]).
pub(crate) fn opt_text(r: &AnyRow, col: &str) -> Attempt<Option<String>> {
    match r.try_get::<Option<String>, _>(col) {
        Ok(s) => Ok(s),
        Err(_) => match r.try_get::<Option<Vec<u8>>, _>(col)? {
            None => Ok(None),
            Some(bytes) => {
                String::from_utf8(bytes).map(Some).map_err(|e| Error::corrupt(col, format!("not UTF-8: {e}")).into())
            }
        },
    }
}

/// A nullable millisecond timestamp column.
pub(crate) fn opt_time(r: &AnyRow, col: &str, location: &str) -> Attempt<Option<DateTime<Utc>>> {
    let ms: Option<i64> = r.try_get(col)?;
    Ok(ms.map(|ms| time(ms, location)).transpose()?)
}
