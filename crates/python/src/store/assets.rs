//! Assets: a book's daily equity, written one row per day and read as a curve.

use pyo3::prelude::*;
use sqdata::{AssetRow, AssetStoreExt as _, DateRange};

use super::Store;
use crate::convert::{book, date, json_to_py, to_json};
use crate::errors::err;

pub(super) fn upsert_asset(
    store: &Store,
    py: Python<'_>,
    account: &str,
    book_name: &str,
    day: &str,
    asset: f64,
) -> PyResult<()> {
    let b = book(account, book_name)?;
    let row = AssetRow { date: sqdata::validate::date("date", day).map_err(err)?, asset };
    store.run(py, |s| Box::pin(async move { s.assets.upsert_asset(&b, row).await }))
}

pub(super) fn assets<'py>(
    store: &Store,
    py: Python<'py>,
    account: &str,
    book_name: &str,
    start: Option<&str>,
    end: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let b = book(account, book_name)?;
    let r = DateRange { from: date("start", start)?, to: date("end", end)? };
    let rows = store.run(py, |s| Box::pin(async move { s.assets.assets(&b, r).await }))?;
    json_to_py(py, &to_json(&rows)?)
}
