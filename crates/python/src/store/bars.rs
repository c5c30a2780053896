//! Bars: loading many series as column buffers, the overview of stored
//! series, and saving a series from JSON.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::Store;
use crate::convert::{bars_columns, json_to_py, key, range, to_json};
use crate::errors::InvalidInput;

pub(super) fn load_bars_columns<'py>(
    store: &Store,
    py: Python<'py>,
    codes_: Vec<String>,
    period: &str,
    adjust: &str,
    start: Option<&str>,
    end: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let keys = codes_.iter().map(|c| key(c, period, adjust)).collect::<PyResult<Vec<_>>>()?;
    let r = range(start, end)?;
    let series = store.run(py, |s| Box::pin(async move { s.bars.load_bars_batch(&keys, r).await }))?;
    bars_columns(py, &series)
}

pub(super) fn bars_overview<'py>(store: &Store, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
    let o = store.run(py, |s| Box::pin(async move { s.bars.overview().await }))?;
    json_to_py(py, &to_json(&o)?)
}

pub(super) fn save_bars_json(
    store: &Store,
    py: Python<'_>,
    code: &str,
    bars: &str,
    period: &str,
    adjust: &str,
    mode: &str,
) -> PyResult<u64> {
    let k = key(code, period, adjust)?;
    let bars: Vec<sqdata::Bar> = serde_json::from_str(bars).map_err(|e| InvalidInput::new_err(format!("bars: {e}")))?;
    let mode = match mode {
        "replace" => sqdata::BarWriteMode::Replace,
        "upsert" => sqdata::BarWriteMode::Upsert,
        other => return Err(InvalidInput::new_err(format!("invalid mode {other:?}: expected replace or upsert"))),
    };
    let series = sqdata::BarSeries { key: k, bars };
    store.run(py, |s| Box::pin(async move { s.bars.save_bars(&series, mode).await }))
}
