//! Conversions shared by the bindings: Python arguments into store types
//! (books, codes, dates, bar keys and ranges), store results into Python
//! objects (JSON values, bars as column buffers), and `parse_date`.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
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

/// The bars of many series as little-endian column buffers, written straight
/// into the Python bytes objects (no intermediate copy: the whole market is
/// ~150 MB of columns).
pub(crate) fn bars_columns<'py>(py: Python<'py>, series: &[sqdata::BarSeries]) -> PyResult<Bound<'py, PyDict>> {
    let n: usize = series.iter().map(|s| s.bars.len()).sum();
    let column = |get: &dyn Fn(&sqdata::Bar) -> [u8; 8]| {
        PyBytes::new_with(py, n * 8, |buf: &mut [u8]| {
            let mut words = buf.chunks_exact_mut(8);
            for b in series.iter().flat_map(|s| &s.bars) {
                if let Some(w) = words.next() {
                    w.copy_from_slice(&get(b));
                }
            }
            Ok(())
        })
    };
    let d = PyDict::new(py);
    d.set_item("codes", series.iter().map(|s| s.key.code.to_string()).collect::<Vec<_>>())?;
    d.set_item("counts", series.iter().map(|s| s.bars.len()).collect::<Vec<_>>())?;
    d.set_item("datetime", column(&|b| b.datetime.and_utc().timestamp_nanos_opt().unwrap_or(i64::MIN).to_le_bytes())?)?;
    d.set_item("open", column(&|b| b.open.to_le_bytes())?)?;
    d.set_item("high", column(&|b| b.high.to_le_bytes())?)?;
    d.set_item("low", column(&|b| b.low.to_le_bytes())?)?;
    d.set_item("close", column(&|b| b.close.to_le_bytes())?)?;
    d.set_item("volume", column(&|b| b.volume.to_le_bytes())?)?;
    d.set_item("amount", column(&|b| b.amount.to_le_bytes())?)?;
    Ok(d)
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
