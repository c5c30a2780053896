//! Conversions shared by the bindings: Python arguments into store types
//! (books, codes, dates, bar keys and ranges), store results into Python
//! objects (JSON values, bars as column buffers), and `parse_date`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use sqdata::{BarKey, BookId, Code, TimeRange};

use crate::errors::{SqdataError, err};

pub(crate) fn book(account: &str, book: &str) -> PyResult<BookId> {
    BookId::new(account, book).map_err(err)
}

pub(crate) fn codes(list: &[String]) -> PyResult<Vec<Code>> {
    list.iter().map(|c| Code::parse_field("code", c).map_err(err)).collect()
}

pub(crate) fn date(field: &str, s: Option<&str>) -> PyResult<Option<NaiveDate>> {
    s.map(|s| sqdata::validate::date(field, s).map_err(err)).transpose()
}

pub(crate) fn datetime(field: &str, s: Option<&str>) -> PyResult<Option<NaiveDateTime>> {
    s.map(|s| sqdata::validate::datetime(field, s).map_err(err)).transpose()
}

pub(crate) fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use pyo3::IntoPyObjectExt;
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_bound_py_any(py)?,
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_bound_py_any(py)?,
            (_, Some(u)) => u.into_bound_py_any(py)?,
            _ => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?,
        },
        Value::String(s) => s.into_bound_py_any(py)?,
        Value::Array(a) => {
            let items = a.iter().map(|x| json_to_py(py, x)).collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> PyResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| SqdataError::new_err(e.to_string()))
}

pub(crate) fn key(code: &str, period: &str, adjust: &str) -> PyResult<BarKey> {
    Ok(BarKey::new(
        Code::parse_field("code", code).map_err(err)?,
        period.parse().map_err(err)?,
        adjust.parse().map_err(err)?,
    ))
}

pub(crate) fn range(start: Option<&str>, end: Option<&str>) -> PyResult<TimeRange> {
    let r = TimeRange { from: datetime("start", start)?, to: datetime("end", end)? };
    sqdata::validate::ordered(r.from, r.to).map_err(err)?;
    Ok(r)
}

/// Midnight of a date string, for callers that build bar ranges.
#[pyfunction]
pub(crate) fn parse_date(s: &str) -> PyResult<String> {
    Ok(sqdata::validate::date("date", s).map_err(err)?.and_time(NaiveTime::MIN).format("%Y-%m-%d").to_string())
}
