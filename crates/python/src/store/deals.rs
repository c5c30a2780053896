//! Deals: recording a JSON batch in a book, paged queries and per-day or
//! per-month aggregates.

use pyo3::prelude::*;
use sqdata::{AggregateBy, AggregateQuery, Code, Deal, DealKind, DealQuery, DealScope};

use super::Store;
use crate::convert::{book, date, json_to_py, to_json};
use crate::errors::{InvalidInput, err};

pub(super) fn record_deals_json<'py>(
    store: &Store,
    py: Python<'py>,
    account: &str,
    book_name: &str,
    deals: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let b = book(account, book_name)?;
    let mut raw: Vec<serde_json::Value> =
        serde_json::from_str(deals).map_err(|e| InvalidInput::new_err(format!("deals: {e}")))?;
    let bv = to_json(&b)?;
    for d in &mut raw {
        if let Some(o) = d.as_object_mut() {
            o.insert("book".into(), bv.clone());
        }
    }
    let ds: Vec<Deal> = raw
        .into_iter()
        .enumerate()
        .map(|(i, v)| serde_json::from_value(v).map_err(|e| InvalidInput::new_err(format!("deal {i}: {e}"))))
        .collect::<PyResult<_>>()?;
    let r = store.run(py, |s| Box::pin(async move { s.deals.record_batch(&ds).await }))?;
    json_to_py(py, &to_json(&r)?)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn query_deals<'py>(
    store: &Store,
    py: Python<'py>,
    account: &str,
    book_name: Option<&str>,
    start: Option<&str>,
    end: Option<&str>,
    code: Option<&str>,
    kind: Option<&str>,
    page: u32,
    page_size: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let scope = match book_name {
        Some(bn) => DealScope::Book(book(account, bn)?),
        None => DealScope::Account(sqdata::AccountCode::new(account).map_err(err)?),
    };
    let q = DealQuery {
        scope,
        from: date("start", start)?,
        to: date("end", end)?,
        code: code.map(|c| Code::parse_field("code", c).map_err(err)).transpose()?,
        kind: kind.map(|k| k.parse::<DealKind>().map_err(err)).transpose()?,
        page,
        page_size,
    };
    let p = store.run(py, |s| Box::pin(async move { s.deals.query(&q).await }))?;
    json_to_py(py, &to_json(&p)?)
}

pub(super) fn aggregate_deals<'py>(
    store: &Store,
    py: Python<'py>,
    account: &str,
    by: &str,
    start: Option<&str>,
    end: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let by = match by {
        "day" => AggregateBy::Day,
        "month" => AggregateBy::Month,
        other => return Err(InvalidInput::new_err(format!("invalid by {other:?}: expected day or month"))),
    };
    let q = AggregateQuery {
        account: sqdata::AccountCode::new(account).map_err(err)?,
        from: date("start", start)?,
        to: date("end", end)?,
        by,
    };
    let r = store.run(py, |s| Box::pin(async move { s.deals.aggregate(&q).await }))?;
    json_to_py(py, &to_json(&r)?)
}
