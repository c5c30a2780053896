//! Quotes: storing a JSON batch and reading fresh quotes back.

use pyo3::prelude::*;
use sqdata::Quote;

use super::Store;
use crate::convert::{codes, json_to_py, to_json};
use crate::errors::InvalidInput;

pub(super) fn put_quotes_json(store: &Store, py: Python<'_>, quotes: &str) -> PyResult<()> {
    let qs: Vec<Quote> = serde_json::from_str(quotes).map_err(|e| InvalidInput::new_err(format!("quotes: {e}")))?;
    store.run(py, |s| Box::pin(async move { s.quotes.put_quotes(&qs).await }))
}

pub(super) fn get_quotes<'py>(store: &Store, py: Python<'py>, codes_: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
    let cs = codes(&codes_)?;
    let q = store.run(py, |s| Box::pin(async move { s.quotes.get_quotes(&cs).await }))?;
    json_to_py(py, &to_json(&q)?)
}
