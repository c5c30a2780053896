//! Health and description of the opened stores: backend liveness and the
//! backend serving each domain.

use pyo3::prelude::*;

use super::Store;
use crate::convert::{json_to_py, to_json};

pub(super) fn health<'py>(store: &Store, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
    let s = &store.opened.stores;
    let h = py.detach(|| store.rt.block_on(s.health()));
    json_to_py(py, &to_json(&h)?)
}

pub(super) fn describe<'py>(store: &Store, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
    let v = serde_json::json!({
        "root": store.opened.files.config().root,
        "served": store.opened.served,
    });
    json_to_py(py, &v)
}
