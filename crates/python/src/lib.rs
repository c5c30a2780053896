//! `sqdata._sqdata`: the native half of the Python package. The stores are
//! opened from the same configuration as the CLI; every call releases the GIL
//! while it waits on a file or a server. Store errors become exceptions
//! (`InvalidInput`, `CorruptData`, `Unavailable`, all `SqdataError`) carrying
//! the store's message. The Python half (`python/sqdata`) adds pandas frames
//! and the SilverQuant-compatible helpers.

use std::path::PathBuf;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use sqdata::{
    AggregateBy, AggregateQuery, AssetRow, BarKey, BookId, Code, Config, DateRange, Deal, DealKind, DealQuery,
    DealScope, Error, PriceTick, Quote, RegistryStore, RegistryStoreExt, Stores, TimeRange,
};

create_exception!(_sqdata, SqdataError, PyException, "A store failed.");
create_exception!(_sqdata, InvalidInput, SqdataError, "Bad input, rejected before anything was stored.");
create_exception!(_sqdata, CorruptData, SqdataError, "Stored data that cannot be read back; nothing was overwritten.");
create_exception!(_sqdata, Unavailable, SqdataError, "A backend could not be reached (retryable).");

fn err(e: Error) -> PyErr {
    let m = e.to_string();
    match e {
        Error::InvalidInput { .. } => InvalidInput::new_err(m),
        Error::Corrupt { .. } => CorruptData::new_err(m),
        e if e.is_retryable() => Unavailable::new_err(m),
        _ => SqdataError::new_err(m),
    }
}

fn book(account: &str, book: &str) -> PyResult<BookId> {
    BookId::new(account, book).map_err(err)
}

fn codes(list: &[String]) -> PyResult<Vec<Code>> {
    list.iter().map(|c| Code::parse_field("code", c).map_err(err)).collect()
}

fn date(field: &str, s: Option<&str>) -> PyResult<Option<NaiveDate>> {
    s.map(|s| sqdata::validate::date(field, s).map_err(err)).transpose()
}

fn datetime(field: &str, s: Option<&str>) -> PyResult<Option<NaiveDateTime>> {
    s.map(|s| sqdata::validate::datetime(field, s).map_err(err)).transpose()
}

fn json_to_py<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
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

fn to_json<T: serde::Serialize>(v: &T) -> PyResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| SqdataError::new_err(e.to_string()))
}

/// `(day_count, max_price, min_price)` of one code.
type EntryTuple = (Option<u32>, Option<f64>, Option<f64>);

/// The stores of one configuration, with their own small runtime.
#[pyclass(frozen, module = "sqdata._sqdata")]
struct Store {
    opened: sqdata::Opened,
    config: Config,
    /// Opened on first use (SQLite file or MySQL).
    registry: std::sync::OnceLock<std::sync::Arc<sqdata::SqlStore>>,
    rt: tokio::runtime::Runtime,
    /// Python strings of codes seen, reused across snapshots (the sell loop
    /// reads the same 200 codes every second).
    names: std::sync::Mutex<std::collections::HashMap<Code, Py<pyo3::types::PyString>>>,
}

impl Store {
    fn s(&self) -> &Stores {
        &self.opened.stores
    }

    /// The registry, opened (and migrated) on first use; GIL released.
    fn reg(&self, py: Python<'_>) -> PyResult<std::sync::Arc<sqdata::SqlStore>> {
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
            std::sync::Arc<sqdata::SqlStore>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = sqdata::Result<T>> + Send>>
        + Send,
    ) -> PyResult<T> {
        let r = self.reg(py)?;
        py.detach(|| self.rt.block_on(f(r))).map_err(err)
    }

    /// Runs `f` on the runtime with the GIL released.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Stores) -> std::pin::Pin<Box<dyn std::future::Future<Output = sqdata::Result<T>> + Send + '_>>
        + Send,
    ) -> PyResult<T> {
        py.detach(|| self.rt.block_on(f(self.s()))).map_err(err)
    }
}

fn bars_columns<'py>(py: Python<'py>, series: &[sqdata::BarSeries]) -> PyResult<Bound<'py, PyDict>> {
    let n: usize = series.iter().map(|s| s.bars.len()).sum();
    let (mut dt, mut o, mut h, mut l, mut c, mut v, mut a) = (
        Vec::with_capacity(n * 8),
        Vec::with_capacity(n * 8),
        Vec::with_capacity(n * 8),
        Vec::with_capacity(n * 8),
        Vec::with_capacity(n * 8),
        Vec::with_capacity(n * 8),
        Vec::with_capacity(n * 8),
    );
    let (mut names, mut counts) = (Vec::with_capacity(series.len()), Vec::with_capacity(series.len()));
    for s in series {
        names.push(s.key.code.to_string());
        counts.push(s.bars.len());
        for b in &s.bars {
            let ns = b.datetime.and_utc().timestamp_nanos_opt().unwrap_or(i64::MIN);
            dt.extend_from_slice(&ns.to_le_bytes());
            o.extend_from_slice(&b.open.to_le_bytes());
            h.extend_from_slice(&b.high.to_le_bytes());
            l.extend_from_slice(&b.low.to_le_bytes());
            c.extend_from_slice(&b.close.to_le_bytes());
            v.extend_from_slice(&b.volume.to_le_bytes());
            a.extend_from_slice(&b.amount.to_le_bytes());
        }
    }
    let d = PyDict::new(py);
    d.set_item("codes", names)?;
    d.set_item("counts", counts)?;
    for (k, buf) in [("datetime", dt), ("open", o), ("high", h), ("low", l), ("close", c), ("volume", v), ("amount", a)]
    {
        d.set_item(k, PyBytes::new(py, &buf))?;
    }
    Ok(d)
}

fn key(code: &str, period: &str, adjust: &str) -> PyResult<BarKey> {
    Ok(BarKey::new(
        Code::parse_field("code", code).map_err(err)?,
        period.parse().map_err(err)?,
        adjust.parse().map_err(err)?,
    ))
}

fn range(start: Option<&str>, end: Option<&str>) -> PyResult<TimeRange> {
    let r = TimeRange { from: datetime("start", start)?, to: datetime("end", end)? };
    sqdata::validate::ordered(r.from, r.to).map_err(err)?;
    Ok(r)
}

#[pymethods]
impl Store {
    /// A book's hot state: `{"inc_date": "YYYY-MM-DD" | None, "positions":
    /// {code: {"day_count", "max_price", "min_price"}}}`.
    fn snapshot<'py>(&self, py: Python<'py>, account: &str, book_name: &str) -> PyResult<Bound<'py, PyDict>> {
        let b = book(account, book_name)?;
        let snap = self.run(py, |s| Box::pin(async move { s.positions.snapshot(&b).await }))?;
        let out = PyDict::new(py);
        out.set_item(pyo3::intern!(py, "inc_date"), snap.inc_date.map(|d| d.to_string()))?;
        let pos = PyDict::new(py);
        let (dk, mx, mn) =
            (pyo3::intern!(py, "day_count"), pyo3::intern!(py, "max_price"), pyo3::intern!(py, "min_price"));
        let mut names = self.names.lock().map_err(|_| SqdataError::new_err("code cache poisoned"))?;
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

    /// `{code: day_count | None}` for the tracked codes among `codes`.
    fn held_days<'py>(
        &self,
        py: Python<'py>,
        account: &str,
        book_name: &str,
        codes_: Vec<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let (b, cs) = (book(account, book_name)?, codes(&codes_)?);
        let m = self.run(py, |s| Box::pin(async move { s.positions.held_days(&b, &cs).await }))?;
        let d = PyDict::new(py);
        for (c, n) in m {
            d.set_item(c.to_string(), n)?;
        }
        Ok(d)
    }

    /// Day count 0 for each code (a buy fill).
    fn new_held(&self, py: Python<'_>, account: &str, book_name: &str, codes_: Vec<String>) -> PyResult<()> {
        let (b, cs) = (book(account, book_name)?, codes(&codes_)?);
        self.run(py, |s| Box::pin(async move { s.positions.new_held(&b, &cs).await }))
    }

    /// Day count None and the prices dropped (a sell fill).
    fn mark_sold(&self, py: Python<'_>, account: &str, book_name: &str, code: &str) -> PyResult<()> {
        let b = book(account, book_name)?;
        let c = Code::parse_field("code", code).map_err(err)?;
        self.run(py, |s| Box::pin(async move { s.positions.mark_sold(&b, c).await }))
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
        let (b, cs) = (book(account, book_name)?, codes(&broker_codes)?);
        let r = self.run(py, |s| Box::pin(async move { s.positions.reconcile(&b, &cs).await }))?;
        json_to_py(py, &to_json(&r)?)
    }

    /// +1 day for every held code, once per `today` (default: today in
    /// Shanghai); returns whether it ran.
    #[pyo3(signature = (account, book_name, today=None))]
    fn inc_held_days(&self, py: Python<'_>, account: &str, book_name: &str, today: Option<&str>) -> PyResult<bool> {
        let b = book(account, book_name)?;
        let day = match date("today", today)? {
            Some(d) => d,
            None => (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive(),
        };
        self.run(py, |s| Box::pin(async move { s.positions.inc_held_days(&b, day).await }))
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
        let b = book(account, book_name)?;
        let ts = ticks
            .iter()
            .map(|(c, high, low)| {
                Ok(PriceTick { code: Code::parse_field("code", c).map_err(err)?, high: *high, low: *low })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let ch = self.run(py, |s| Box::pin(async move { s.positions.update_extremes(&b, &ts).await }))?;
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
        let b = book(account, book_name)?;
        let mut snap = sqdata::PositionSnapshot { inc_date: date("inc_date", inc_date)?, ..Default::default() };
        for (c, (day_count, max_price, min_price)) in positions {
            let code = Code::parse_field("code", &c).map_err(err)?;
            snap.positions.insert(code, sqdata::PositionEntry { day_count, max_price, min_price });
        }
        self.run(py, |s| Box::pin(async move { s.positions.replace_book(&b, &snap).await }))
    }

    /// Books with position state.
    fn list_books(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let v = self.run(py, |s| Box::pin(async move { s.positions.list_books().await }))?;
        Ok(v.iter().map(|b| b.to_string()).collect())
    }

    /// Stores quotes: a JSON list of `{"code", "time", "last", "open",
    /// "high", "low", "pre_close", "volume", "amount"}`.
    fn put_quotes_json(&self, py: Python<'_>, quotes: &str) -> PyResult<()> {
        let qs: Vec<Quote> = serde_json::from_str(quotes).map_err(|e| InvalidInput::new_err(format!("quotes: {e}")))?;
        self.run(py, |s| Box::pin(async move { s.quotes.put_quotes(&qs).await }))
    }

    /// Fresh quotes of `codes` (expired or unknown codes are absent).
    fn get_quotes<'py>(&self, py: Python<'py>, codes_: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        let cs = codes(&codes_)?;
        let q = self.run(py, |s| Box::pin(async move { s.quotes.get_quotes(&cs).await }))?;
        json_to_py(py, &to_json(&q)?)
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
        let b = book(account, book_name)?;
        let mut raw: Vec<serde_json::Value> =
            serde_json::from_str(deals).map_err(|e| InvalidInput::new_err(format!("deals: {e}")))?;
        let bv = to_json(&b)?;
        for d in &mut raw {
            if let Some(o) = d.as_object_mut() {
                o.insert("book".into(), bv.clone());
            }
        }
        let ds: Vec<Deal> = raw
            .into_iter()
            .enumerate()
            .map(|(i, v)| serde_json::from_value(v).map_err(|e| InvalidInput::new_err(format!("deal {i}: {e}"))))
            .collect::<PyResult<_>>()?;
        let r = self.run(py, |s| Box::pin(async move { s.deals.record_batch(&ds).await }))?;
        json_to_py(py, &to_json(&r)?)
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
        let scope = match book_name {
            Some(bn) => DealScope::Book(book(account, bn)?),
            None => DealScope::Account(sqdata::AccountCode::new(account).map_err(err)?),
        };
        let q = DealQuery {
            scope,
            from: date("start", start)?,
            to: date("end", end)?,
            code: code.map(|c| Code::parse_field("code", c).map_err(err)).transpose()?,
            kind: kind.map(|k| k.parse::<DealKind>().map_err(err)).transpose()?,
            page,
            page_size,
        };
        let p = self.run(py, |s| Box::pin(async move { s.deals.query(&q).await }))?;
        json_to_py(py, &to_json(&p)?)
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
        let by = match by {
            "day" => AggregateBy::Day,
            "month" => AggregateBy::Month,
            other => return Err(InvalidInput::new_err(format!("invalid by {other:?}: expected day or month"))),
        };
        let q = AggregateQuery {
            account: sqdata::AccountCode::new(account).map_err(err)?,
            from: date("start", start)?,
            to: date("end", end)?,
            by,
        };
        let r = self.run(py, |s| Box::pin(async move { s.deals.aggregate(&q).await }))?;
        json_to_py(py, &to_json(&r)?)
    }

    /// Sets the equity of a day (one row per day: a restart does not duplicate it).
    fn upsert_asset(&self, py: Python<'_>, account: &str, book_name: &str, day: &str, asset: f64) -> PyResult<()> {
        let b = book(account, book_name)?;
        let row = AssetRow { date: sqdata::validate::date("date", day).map_err(err)?, asset };
        self.run(py, |s| Box::pin(async move { s.assets.upsert_asset(&b, row).await }))
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
        let b = book(account, book_name)?;
        let r = DateRange { from: date("start", start)?, to: date("end", end)? };
        let rows = self.run(py, |s| Box::pin(async move { s.assets.assets(&b, r).await }))?;
        json_to_py(py, &to_json(&rows)?)
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
        let keys = codes_.iter().map(|c| key(c, period, adjust)).collect::<PyResult<Vec<_>>>()?;
        let r = range(start, end)?;
        let series = self.run(py, |s| Box::pin(async move { s.bars.load_bars_batch(&keys, r).await }))?;
        bars_columns(py, &series)
    }

    /// Every stored series: `[{"key": {"code", "period", "adjust"}, "count", "first", "last"}]`.
    fn bars_overview<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let o = self.run(py, |s| Box::pin(async move { s.bars.overview().await }))?;
        json_to_py(py, &to_json(&o)?)
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
        let k = key(code, period, adjust)?;
        let bars: Vec<sqdata::Bar> =
            serde_json::from_str(bars).map_err(|e| InvalidInput::new_err(format!("bars: {e}")))?;
        let mode = match mode {
            "replace" => sqdata::BarWriteMode::Replace,
            "upsert" => sqdata::BarWriteMode::Upsert,
            other => return Err(InvalidInput::new_err(format!("invalid mode {other:?}: expected replace or upsert"))),
        };
        let series = sqdata::BarSeries { key: k, bars };
        self.run(py, |s| Box::pin(async move { s.bars.save_bars(&series, mode).await }))
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
        let b = book(account, book_name)?;
        let v = self.reg_run(py, move |r| Box::pin(async move { r.params(&b, version).await }))?;
        v.map(|v| to_json(&v).map(|j| j.to_string())).transpose()
    }

    /// Every version, oldest first, as JSON.
    fn param_history_json(&self, py: Python<'_>, account: &str, book_name: &str) -> PyResult<String> {
        let b = book(account, book_name)?;
        let v = self.reg_run(py, move |r| Box::pin(async move { r.param_history(&b).await }))?;
        Ok(to_json(&v)?.to_string())
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
        let b = book(account, book_name)?;
        let doc = match serde_json::from_str::<serde_json::Value>(params) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err(err(Error::invalid("params", params, "must be a JSON object"))),
        };
        let (actor, note) = (actor.to_owned(), note.to_owned());
        self.reg_run(py, move |r| {
            Box::pin(async move {
                if register {
                    r.ensure_book(&b, "", &actor).await?;
                }
                Ok(r.put_params(&b, &doc, &actor, &note).await?.version)
            })
        })
    }

    /// Liveness and latency of every backend (and the hybrid's domains).
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = &self.opened.stores;
        let h = py.detach(|| self.rt.block_on(s.health()));
        json_to_py(py, &to_json(&h)?)
    }

    /// The tier and the backend of each domain.
    fn describe<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::json!({
            "root": self.opened.files.config().root,
            "served": self.opened.served,
        });
        json_to_py(py, &v)
    }
}

/// Opens the stores of a configuration: `config_path`, else `$SQDATA_CONFIG`,
/// else `./sqdata.toml` if it exists, then `SQDATA_*` overrides — as the CLI.
#[pyfunction]
#[pyo3(signature = (config_path=None, data_dir=None))]
fn open(py: Python<'_>, config_path: Option<PathBuf>, data_dir: Option<PathBuf>) -> PyResult<Store> {
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

/// Midnight of a date string, for callers that build bar ranges.
#[pyfunction]
fn parse_date(s: &str) -> PyResult<String> {
    Ok(sqdata::validate::date("date", s).map_err(err)?.and_time(NaiveTime::MIN).format("%Y-%m-%d").to_string())
}

#[pymodule]
fn _sqdata(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(parse_date, m)?)?;
    m.add_class::<Store>()?;
    m.add("SqdataError", py.get_type::<SqdataError>())?;
    m.add("InvalidInput", py.get_type::<InvalidInput>())?;
    m.add("CorruptData", py.get_type::<CorruptData>())?;
    m.add("Unavailable", py.get_type::<Unavailable>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
