//! The exception types (`SqdataError` and its subclasses) and the mapping
//! from a store's `sqdata::Error` to them.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use sqdata::Error;

create_exception!(_sqdata, SqdataError, PyException, "A store failed.");
create_exception!(_sqdata, InvalidInput, SqdataError, "Bad input, rejected before anything was stored.");
create_exception!(_sqdata, CorruptData, SqdataError, "Stored data that cannot be read back; nothing was overwritten.");
create_exception!(_sqdata, Unavailable, SqdataError, "A backend could not be reached (retryable).");

pub(crate) fn err(e: Error) -> PyErr {
    let m = e.to_string();
    match e {
        Error::InvalidInput { .. } => InvalidInput::new_err(m),
        Error::Corrupt { .. } => CorruptData::new_err(m),
        e if e.is_retryable() => Unavailable::new_err(m),
        _ => SqdataError::new_err(m),
    }
}
