//! Position state of a book: the hot snapshot, held days, extremes,
//! reconciliation with the broker and whole-book replacement.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use sqdata::{Code, PriceTick};

use super::Store;
use crate::convert::{book, codes, date, json_to_py, to_json};
use crate::errors::{SqdataError, err};

/// `(day_count, max_price, min_price)` of one code.
pub(super) type EntryTuple = (Option<u32>, Option<f64>, Option<f64>);

pub(super) fn snapshot<'py>(
    store: &Store,
    py: Python<'py>,
    account: &str,
    book_name: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let b = book(account, book_name)?;
    let snap = store.run(py, |s| Box::pin(async move { s.positions.snapshot(&b).await }))?;
    let out = PyDict::new(py);
    out.set_item(pyo3::intern!(py, "inc_date"), snap.inc_date.map(|d| d.to_string()))?;
    let pos = PyDict::new(py);
    let (dk, mx, mn) = (pyo3::intern!(py, "day_count"), pyo3::intern!(py, "max_price"), pyo3::intern!(py, "min_price"));
    let mut names = store.names.lock().map_err(|_| SqdataError::new_err("code cache poisoned"))?;
    if names.len() > 20_000 {
        names.clear();
    }
    for (c, e) in &snap.positions {
        let d = PyDict::new(py);
        d.set_item(dk, e.day_count)?;
        d.set_item(mx, e.max_price)?;
        d.set_item(mn, e.min_price)?;
        let name = names.entry(*c).or_insert_with(|| pyo3::types::PyString::new(py, &c.to_string()).unbind());
        pos.set_item(name.bind(py), d)?;
    }
    out.set_item(pyo3::intern!(py, "positions"), pos)?;
    Ok(out)
}

pub(super) fn held_days<'py>(
    store: &Store,
    py: Python<'py>,
    account: &str,
    book_name: &str,
    codes_: Vec<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let (b, cs) = (book(account, book_name)?, codes(&codes_)?);
    let m = store.run(py, |s| Box::pin(async move { s.positions.held_days(&b, &cs).await }))?;
    let d = PyDict::new(py);
    for (c, n) in m {
        d.set_item(c.to_string(), n)?;
    }
    Ok(d)
}

pub(super) fn new_held(
    store: &Store,
    py: Python<'_>,
    account: &str,
    book_name: &str,
    codes_: Vec<String>,
) -> PyResult<()> {
    let (b, cs) = (book(account, book_name)?, codes(&codes_)?);
    store.run(py, |s| Box::pin(async move { s.positions.new_held(&b, &cs).await }))
}

pub(super) fn mark_sold(store: &Store, py: Python<'_>, account: &str, book_name: &str, code: &str) -> PyResult<()> {
    let b = book(account, book_name)?;
    let c = Code::parse_field("code", code).map_err(err)?;
    store.run(py, |s| Box::pin(async move { s.positions.mark_sold(&b, c).await }))
}

pub(super) fn del_held_days(
    store: &Store,
    py: Python<'_>,
    account: &str,
    book_name: &str,
    codes_: Vec<String>,
) -> PyResult<()> {
    let (b, cs) = (book(account, book_name)?, codes(&codes_)?);
    store.run(py, |s| Box::pin(async move { s.positions.del_held_days(&b, &cs).await }))
}

pub(super) fn reconcile<'py>(
    store: &Store,
    py: Python<'py>,
    account: &str,
    book_name: &str,
    broker_codes: Vec<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let (b, cs) = (book(account, book_name)?, codes(&broker_codes)?);
    let r = store.run(py, |s| Box::pin(async move { s.positions.reconcile(&b, &cs).await }))?;
    json_to_py(py, &to_json(&r)?)
}

pub(super) fn inc_held_days(
    store: &Store,
    py: Python<'_>,
    account: &str,
    book_name: &str,
    today: Option<&str>,
) -> PyResult<bool> {
    let b = book(account, book_name)?;
    let day = match date("today", today)? {
        Some(d) => d,
        None => (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive(),
    };
    store.run(py, |s| Box::pin(async move { s.positions.inc_held_days(&b, day).await }))
}

pub(super) fn update_extremes<'py>(
    store: &Store,
    py: Python<'py>,
    account: &str,
    book_name: &str,
    ticks: Vec<(String, f64, f64)>,
) -> PyResult<Bound<'py, PyList>> {
    let b = book(account, book_name)?;
    let ts = ticks
        .iter()
        .map(|(c, high, low)| {
            Ok(PriceTick { code: Code::parse_field("code", c).map_err(err)?, high: *high, low: *low })
        })
        .collect::<PyResult<Vec<_>>>()?;
    let ch = store.run(py, |s| Box::pin(async move { s.positions.update_extremes(&b, &ts).await }))?;
    let out = PyList::empty(py);
    for c in ch {
        let d = PyDict::new(py);
        d.set_item("code", c.code.to_string())?;
        d.set_item("max_price", c.max_price)?;
        d.set_item("min_price", c.min_price)?;
        out.append(d)?;
    }
    Ok(out)
}

pub(super) fn replace_book(
    store: &Store,
    py: Python<'_>,
    account: &str,
    book_name: &str,
    inc_date: Option<&str>,
    positions: std::collections::BTreeMap<String, EntryTuple>,
) -> PyResult<()> {
    let b = book(account, book_name)?;
    let mut snap = sqdata::PositionSnapshot { inc_date: date("inc_date", inc_date)?, ..Default::default() };
    for (c, (day_count, max_price, min_price)) in positions {
        let code = Code::parse_field("code", &c).map_err(err)?;
        snap.positions.insert(code, sqdata::PositionEntry { day_count, max_price, min_price });
    }
    store.run(py, |s| Box::pin(async move { s.positions.replace_book(&b, &snap).await }))
}

pub(super) fn list_books(store: &Store, py: Python<'_>) -> PyResult<Vec<String>> {
    let v = store.run(py, |s| Box::pin(async move { s.positions.list_books().await }))?;
    Ok(v.iter().map(|b| b.to_string()).collect())
}
