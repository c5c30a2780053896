//! `sqdata._sqdata`: the native half of the Python package. The stores are
//! opened from the same configuration as the CLI; every call releases the GIL
//! while it waits on a file or a server. Store errors become exceptions
//! (`InvalidInput`, `CorruptData`, `Unavailable`, all `SqdataError`) carrying
//! the store's message. The Python half (`python/sqdata`) adds pandas frames
//! and the SilverQuant-compatible helpers.

mod convert;
mod errors;
mod store;

use pyo3::prelude::*;

use crate::errors::{CorruptData, InvalidInput, SqdataError, Unavailable};

#[pymodule]
fn _sqdata(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(store::open, m)?)?;
    m.add_function(wrap_pyfunction!(convert::parse_date, m)?)?;
    m.add_class::<store::Store>()?;
    m.add("SqdataError", py.get_type::<SqdataError>())?;
    m.add("InvalidInput", py.get_type::<InvalidInput>())?;
    m.add("CorruptData", py.get_type::<CorruptData>())?;
    m.add("Unavailable", py.get_type::<Unavailable>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
