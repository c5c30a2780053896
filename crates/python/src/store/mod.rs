//! The `Store` pyclass: the stores of one configuration with their own
//! runtime, `open`, and the one `#[pymethods]` block whose methods delegate
//! to the domain files (positions, quotes, deals, assets, bars, registry,
//! health).

mod assets;
mod bars;
mod deals;
mod health;
mod positions;
mod quotes;
mod registry;

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use sqdata::{Code, Config, Stores};

use crate::errors::{SqdataError, err};
use positions::EntryTuple;

/// The stores of one configuration, with their own small runtime.
#[pyclass(frozen, module = "sqdata._sqdata")]
pub(crate) struct Store {
    opened: sqdata::Opened,
    config: Config,
    /// Opened on first use (SQLite file or MySQL).
    registry: std::sync::OnceLock<std::sync::Arc<sqdata::Registry>>,
    rt: tokio::runtime::Runtime,
    /// Python strings of codes seen, reused across snapshots (the sell loop
    /// reads the same 200 codes every second).
    names: std::sync::Mutex<rustc_hash::FxHashMap<Code, Py<pyo3::types::PyString>>>,
}

impl Store {
    fn s(&self) -> &Stores {
        &self.opened.stores
    }

    /// The registry, opened (and migrated) on first use; GIL released.
    fn reg(&self, py: Python<'_>) -> PyResult<std::sync::Arc<sqdata::Registry>> {
        if let Some(r) = self.registry.get() {
            return Ok(r.clone());
        }
        let r = py.detach(|| self.rt.block_on(sqdata::open_registry(&self.config))).map_err(err)?;
        Ok(self.registry.get_or_init(|| r).clone())
    }

    fn reg_run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(
            std::sync::Arc<sqdata::Registry>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = sqdata::Result<T>> + Send>>
        + Send,
    ) -> PyResult<T> {
        let r = self.reg(py)?;
        py.detach(|| self.rt.block_on(f(r))).map_err(err)
    }

    /// Runs `f` on the runtime with the GIL released, on the caller's
    /// thread: reads may block in place there (`sqdata::inline`) instead of
    /// hopping to a worker thread and back.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Stores) -> std::pin::Pin<Box<dyn std::future::Future<Output = sqdata::Result<T>> + Send + '_>>
        + Send,
    ) -> PyResult<T> {
        py.detach(|| sqdata::inline::run(|| self.rt.block_on(f(self.s())))).map_err(err)
    }
}

#[pymethods]
impl Store {
    /// A book's hot state: `{"inc_date": "YYYY-MM-DD" | None, "positions":
    /// {code: {"day_count", "max_price", "min_price"}}}`.
    fn snapshot<'py>(&self, py: Python<'py>, account: &str, book_name: &str) -> PyResult<Bound<'py, PyDict>> {
        positions::snapshot(self, py, account, book_name)
    }

    /// `{code: day_count | None}` for the tracked codes among `codes`.
    fn held_days<'py>(
        &self,
        py: Python<'py>,
        account: &str,
        book_name: &str,
        codes_: Vec<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        positions::held_days(self, py, account, book_name, codes_)
    }

    /// Day count 0 for each code (a buy fill).
    fn new_held(&self, py: Python<'_>, account: &str, book_name: &str, codes_: Vec<String>) -> PyResult<()> {
        positions::new_held(self, py, account, book_name, codes_)
    }

    /// Day count None and the prices dropped (a sell fill).
    fn mark_sold(&self, py: Python<'_>, account: &str, book_name: &str, code: &str) -> PyResult<()> {
        positions::mark_sold(self, py, account, book_name, code)
    }

    /// Day count None for each code (a code not tracked is added so), the
    /// prices kept: SilverQuant's `del_held_day`.
    fn del_held_days(&self, py: Python<'_>, account: &str, book_name: &str, codes_: Vec<String>) -> PyResult<()> {
        positions::del_held_days(self, py, account, book_name, codes_)
    }

    /// Adds the broker's codes with day count 0, drops codes it no longer
    /// holds: `{"added": [...], "removed": [...]}`.
    fn reconcile<'py>(
        &self,
        py: Python<'py>,
        account: &str,
        book_name: &str,
        broker_codes: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        positions::reconcile(self, py, account, book_name, broker_codes)
    }

    /// +1 day for every held code, once per `today` (default: today in
    /// Shanghai); returns whether it ran.
    #[pyo3(signature = (account, book_name, today=None))]
    fn inc_held_days(&self, py: Python<'_>, account: &str, book_name: &str, today: Option<&str>) -> PyResult<bool> {
        positions::inc_held_days(self, py, account, book_name, today)
    }

    /// Widens max/min for held codes in one atomic step. `ticks`: a list of
    /// `(code, high, low)`. Returns what changed: `[{"code", "max_price",
    /// "min_price"}]` (None where that side did not move).
    fn update_extremes<'py>(
        &self,
        py: Python<'py>,
        account: &str,
        book_name: &str,
        ticks: Vec<(String, f64, f64)>,
    ) -> PyResult<Bound<'py, PyList>> {
        positions::update_extremes(self, py, account, book_name, ticks)
    }

    /// Replaces a book's whole position state (one atomic write):
    /// `positions` maps code → `(day_count, max_price, min_price)`.
    #[pyo3(signature = (account, book_name, inc_date, positions))]
    fn replace_book(
        &self,
        py: Python<'_>,
        account: &str,
        book_name: &str,
        inc_date: Option<&str>,
        positions: std::collections::BTreeMap<String, EntryTuple>,
    ) -> PyResult<()> {
        positions::replace_book(self, py, account, book_name, inc_date, positions)
    }

    /// Books with position state.
    fn list_books(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        positions::list_books(self, py)
    }

    /// Stores quotes: a JSON list of `{"code", "time", "last", "open",
    /// "high", "low", "pre_close", "volume", "amount"}`.
    fn put_quotes_json(&self, py: Python<'_>, quotes: &str) -> PyResult<()> {
        quotes::put_quotes_json(self, py, quotes)
    }

    /// Fresh quotes of `codes` (expired or unknown codes are absent).
    fn get_quotes<'py>(&self, py: Python<'py>, codes_: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        quotes::get_quotes(self, py, codes_)
    }

    /// Records deals given as a JSON list (`id`, `time`, `code`, `name`,
    /// `kind`, `remark`, `price`, `volume`, `amount`, `strategy`) in a book;
    /// ids already stored are duplicates. `{"inserted", "duplicates"}`.
    fn record_deals_json<'py>(
        &self,
        py: Python<'py>,
        account: &str,
        book_name: &str,
        deals: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        deals::record_deals_json(self, py, account, book_name, deals)
    }

    /// One page of deals, ordered by (time, id): `{"total", "page",
    /// "pageSize", "data": [deal dicts]}`.
    #[pyo3(signature = (account, book_name=None, start=None, end=None, code=None, kind=None, page=1, page_size=1000))]
    #[allow(clippy::too_many_arguments)]
    fn query_deals<'py>(
        &self,
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
        deals::query_deals(self, py, account, book_name, start, end, code, kind, page, page_size)
    }

    /// Per day or month of an account: count, buys, sells, volumes, amounts.
    #[pyo3(signature = (account, by="day", start=None, end=None))]
    fn aggregate_deals<'py>(
        &self,
        py: Python<'py>,
        account: &str,
        by: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        deals::aggregate_deals(self, py, account, by, start, end)
    }

    /// Sets the equity of a day (one row per day: a restart does not duplicate it).
    fn upsert_asset(&self, py: Python<'_>, account: &str, book_name: &str, day: &str, asset: f64) -> PyResult<()> {
        assets::upsert_asset(self, py, account, book_name, day, asset)
    }

    /// The equity curve: `[{"date", "asset"}]`.
    #[pyo3(signature = (account, book_name, start=None, end=None))]
    fn assets<'py>(
        &self,
        py: Python<'py>,
        account: &str,
        book_name: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        assets::assets(self, py, account, book_name, start, end)
    }

    /// Bars of many codes as little-endian column buffers (the Python side
    /// wraps them in numpy without copying): `{"codes", "counts", "datetime"
    /// (int64 ns), "open", "high", "low", "close", "amount" (float64),
    /// "volume" (uint64)}`.
    #[pyo3(signature = (codes_, period="1d", adjust="qfq", start=None, end=None))]
    fn load_bars_columns<'py>(
        &self,
        py: Python<'py>,
        codes_: Vec<String>,
        period: &str,
        adjust: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        bars::load_bars_columns(self, py, codes_, period, adjust, start, end)
    }

    /// Every stored series: `[{"key": {"code", "period", "adjust"}, "count", "first", "last"}]`.
    fn bars_overview<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        bars::bars_overview(self, py)
    }

    /// Replaces (or upserts) a series from a JSON list of bars
    /// (`datetime`, `open`, `high`, `low`, `close`, `volume`, `amount`).
    #[pyo3(signature = (code, bars, period="1d", adjust="qfq", mode="replace"))]
    fn save_bars_json(
        &self,
        py: Python<'_>,
        code: &str,
        bars: &str,
        period: &str,
        adjust: &str,
        mode: &str,
    ) -> PyResult<u64> {
        bars::save_bars_json(self, py, code, bars, period, adjust, mode)
    }

    /// Saves many codes' series from little-endian column buffers (the
    /// pandas path): `codes` with their row `counts`, `cols` = `{"datetime",
    /// "open", "high", "low", "close", "volume", "amount"}` as bytes.
    /// `time_unit` is `"s"` (seconds since the epoch) or `"digits"`
    /// (`YYYYMMDD[hhmm[ss]]`); `volume_float` says the volume is float64.
    #[pyo3(signature = (codes_, counts, cols, time_unit="s", volume_float=false, period="1d", adjust="qfq", mode="replace"))]
    #[allow(clippy::too_many_arguments)]
    fn save_bars_columns(
        &self,
        py: Python<'_>,
        codes_: Vec<String>,
        counts: Vec<usize>,
        cols: &Bound<'_, PyDict>,
        time_unit: &str,
        volume_float: bool,
        period: &str,
        adjust: &str,
        mode: &str,
    ) -> PyResult<u64> {
        bars::save_bars_columns(self, py, codes_, counts, cols, time_unit, volume_float, period, adjust, mode)
    }

    /// A strategy's parameters (the latest version, or `version`) as JSON, or
    /// None when there are none.
    #[pyo3(signature = (account, book_name, version=None))]
    fn params_json(
        &self,
        py: Python<'_>,
        account: &str,
        book_name: &str,
        version: Option<u32>,
    ) -> PyResult<Option<String>> {
        registry::params_json(self, py, account, book_name, version)
    }

    /// Every version, oldest first, as JSON.
    fn param_history_json(&self, py: Python<'_>, account: &str, book_name: &str) -> PyResult<String> {
        registry::param_history_json(self, py, account, book_name)
    }

    /// Stores a new version (the JSON of one object); registers the account
    /// and strategy first when `register` and they are missing. Returns the version.
    #[pyo3(signature = (account, book_name, params, actor, note, register))]
    #[allow(clippy::too_many_arguments)] // Python's keyword arguments, one each
    fn put_params_json(
        &self,
        py: Python<'_>,
        account: &str,
        book_name: &str,
        params: &str,
        actor: &str,
        note: &str,
        register: bool,
    ) -> PyResult<u32> {
        registry::put_params_json(self, py, account, book_name, params, actor, note, register)
    }

    /// Liveness and latency of every backend (and the hybrid's domains).
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        health::health(self, py)
    }

    /// The tier and the backend of each domain.
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        health::describe(self, py)
    }
}

/// Opens the stores of a configuration: `config_path`, else `$SQDATA_CONFIG`,
/// else `./sqdata.toml` if it exists, then `SQDATA_*` overrides — as the CLI.
#[pyfunction]
#[pyo3(signature = (config_path=None, data_dir=None))]
pub(crate) fn open(py: Python<'_>, config_path: Option<PathBuf>, data_dir: Option<PathBuf>) -> PyResult<Store> {
    py.detach(|| {
        let path = config_path.or_else(|| std::env::var_os("SQDATA_CONFIG").map(PathBuf::from));
        let mut c = Config::load(path.as_deref()).map_err(err)?;
        if let Some(d) = data_dir {
            c.file.root = d;
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| SqdataError::new_err(format!("cannot start the runtime: {e}")))?;
        let opened = {
            let _g = rt.enter();
            sqdata::open_all(&c).map_err(err)?
        };
        Ok(Store { opened, config: c, registry: Default::default(), rt, names: Default::default() })
    })
}
