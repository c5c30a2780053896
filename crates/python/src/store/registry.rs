//! The registry: a strategy's versioned parameters, read and written as JSON.

use pyo3::prelude::*;
use sqdata::{Error, RegistryStore, RegistryStoreExt};

use super::Store;
use crate::convert::{book, to_json};
use crate::errors::err;

pub(super) fn params_json(
    store: &Store,
    py: Python<'_>,
    account: &str,
    book_name: &str,
    version: Option<u32>,
) -> PyResult<Option<String>> {
    let b = book(account, book_name)?;
    let v = store.reg_run(py, move |r| Box::pin(async move { r.params(&b, version).await }))?;
    v.map(|v| to_json(&v).map(|j| j.to_string())).transpose()
}

pub(super) fn param_history_json(store: &Store, py: Python<'_>, account: &str, book_name: &str) -> PyResult<String> {
    let b = book(account, book_name)?;
    let v = store.reg_run(py, move |r| Box::pin(async move { r.param_history(&b).await }))?;
    Ok(to_json(&v)?.to_string())
}

#[allow(clippy::too_many_arguments)] // Python's keyword arguments, one each
pub(super) fn put_params_json(
    store: &Store,
    py: Python<'_>,
    account: &str,
    book_name: &str,
    params: &str,
    actor: &str,
    note: &str,
    register: bool,
) -> PyResult<u32> {
    let b = book(account, book_name)?;
    let doc = match serde_json::from_str::<serde_json::Value>(params) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Err(err(Error::invalid("params", params, "must be a JSON object"))),
    };
    let (actor, note) = (actor.to_owned(), note.to_owned());
    store.reg_run(py, move |r| {
        Box::pin(async move {
            if register {
                r.ensure_book(&b, "", &actor).await?;
            }
            Ok(r.put_params(&b, &doc, &actor, &note).await?.version)
        })
    })
}
