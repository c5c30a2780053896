//! Bars: loading many series as column buffers, the overview of stored
//! series, and saving series from JSON or from column buffers (the pandas
//! path: numpy arrays cross as bytes, no object per row).

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::Store;
use crate::convert::{json_to_py, key, range, to_json};
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
    // Loaded a chunk of codes at a time into the columns, each chunk's bars
    // dropped once copied; the columns become Python bytes one at a time.
    // Peak for the whole market: the columns plus one column, not every bar twice.
    let mut cols = Columns::default();
    for (i, chunk) in keys.chunks(LOAD_CHUNK).enumerate() {
        let chunk = chunk.to_vec();
        let series = store.run(py, |s| Box::pin(async move { s.bars.load_bars_batch(&chunk, r).await }))?;
        if i == 0 {
            // reserve for all codes at the first chunk's average (+5%)
            let rows: usize = series.iter().map(|s| s.bars.len()).sum();
            cols.reserve(rows.saturating_mul(keys.len()) / series.len().max(1) * 21 / 20);
        }
        cols.push(&series);
    }
    cols.into_py(py)
}

/// Codes per load when a whole market is read.
const LOAD_CHUNK: usize = 256;

/// Little-endian column buffers being filled.
#[derive(Default)]
struct Columns {
    codes: Vec<String>,
    counts: Vec<usize>,
    cols: [Vec<u8>; 7],
}

impl Columns {
    fn reserve(&mut self, rows: usize) {
        for c in &mut self.cols {
            c.reserve_exact(rows.saturating_mul(8));
        }
    }

    fn push(&mut self, series: &[sqdata::BarSeries]) {
        for s in series {
            self.codes.push(s.key.code.to_string());
            self.counts.push(s.bars.len());
            for b in &s.bars {
                let words = [
                    b.datetime.and_utc().timestamp_nanos_opt().unwrap_or(i64::MIN).to_le_bytes(),
                    b.open.to_le_bytes(),
                    b.high.to_le_bytes(),
                    b.low.to_le_bytes(),
                    b.close.to_le_bytes(),
                    b.volume.to_le_bytes(),
                    b.amount.to_le_bytes(),
                ];
                for (c, w) in self.cols.iter_mut().zip(words) {
                    c.extend_from_slice(&w);
                }
            }
        }
    }

    fn into_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("codes", self.codes)?;
        d.set_item("counts", self.counts)?;
        for (name, col) in ["datetime", "open", "high", "low", "close", "volume", "amount"].into_iter().zip(self.cols) {
            d.set_item(name, PyBytes::new(py, &col))?;
            drop(col);
        }
        Ok(d)
    }
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
    let mode = write_mode(mode)?;
    let series = sqdata::BarSeries { key: k, bars };
    store.run(py, |s| Box::pin(async move { s.bars.save_bars(&series, mode).await }))
}

fn write_mode(mode: &str) -> PyResult<sqdata::BarWriteMode> {
    match mode {
        "replace" => Ok(sqdata::BarWriteMode::Replace),
        "upsert" => Ok(sqdata::BarWriteMode::Upsert),
        other => Err(InvalidInput::new_err(format!("invalid mode {other:?}: expected replace or upsert"))),
    }
}

/// One column buffer of `n` little-endian 8-byte values.
fn column<'py>(cols: &Bound<'py, PyDict>, name: &str, n: usize) -> PyResult<Bound<'py, PyBytes>> {
    let v = cols.get_item(name)?.ok_or_else(|| InvalidInput::new_err(format!("bars: missing column {name:?}")))?;
    let b =
        v.cast_into::<PyBytes>().map_err(|_| InvalidInput::new_err(format!("bars: column {name:?} is not bytes")))?;
    let len = b.as_bytes().len();
    if Some(len) != n.checked_mul(8) {
        return Err(InvalidInput::new_err(format!(
            "bars: column {name:?} holds {len} bytes, expected 8 per row for {n} rows"
        )));
    }
    Ok(b)
}

fn words(b: &[u8]) -> impl Iterator<Item = [u8; 8]> + '_ {
    b.chunks_exact(8).map(|c| <[u8; 8]>::try_from(c).unwrap_or_default())
}

/// A bar time from an integer column: seconds since the epoch (`unit = "s"`,
/// Asia/Shanghai wall time as stored), or the digits K-line CSVs carry
/// (`unit = "digits"`): `YYYYMMDD`, `YYYYMMDDhhmm` or `YYYYMMDDhhmmss`.
fn bar_time(unit: &str, v: i64) -> Result<NaiveDateTime, String> {
    let bad = |what: &str| format!("{v} is not {what}");
    match unit {
        "s" => DateTime::from_timestamp(v, 0).map(|d| d.naive_utc()).ok_or_else(|| bad("a time")),
        "digits" => {
            let (day, hms) = match v {
                10_000_000..=99_999_999 => (v, 0),
                100_000_000_000..=999_999_999_999 => (v / 10_000, (v % 10_000) * 100),
                10_000_000_000_000..=99_999_999_999_999 => (v / 1_000_000, v % 1_000_000),
                _ => return Err(bad("a date (YYYYMMDD, YYYYMMDDhhmm or YYYYMMDDhhmmss)")),
            };
            NaiveDate::from_ymd_opt((day / 10_000) as i32, (day / 100 % 100) as u32, (day % 100) as u32)
                .and_then(|d| d.and_hms_opt((hms / 10_000) as u32, (hms / 100 % 100) as u32, (hms % 100) as u32))
                .ok_or_else(|| bad("a real date and time"))
        }
        other => Err(format!("unknown time unit {other:?}")),
    }
}

/// Saves the series of many codes from column buffers: `codes` and their
/// row `counts` in order, and `cols` = `{"datetime": int64 (see
/// [`bar_time`]), "open", "high", "low", "close", "amount": float64,
/// "volume": int64 or float64 (`volume_float`, whole numbers only)}`. Rows of
/// a code are sorted by time; a bad value is refused naming the code, row
/// and field, before anything is written.
#[allow(clippy::too_many_arguments)]
pub(super) fn save_bars_columns(
    store: &Store,
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
    let mode = write_mode(mode)?;
    if codes_.len() != counts.len() {
        return Err(InvalidInput::new_err(format!("bars: {} codes but {} counts", codes_.len(), counts.len())));
    }
    let n = counts
        .iter()
        .try_fold(0usize, |a, c| a.checked_add(*c))
        .ok_or_else(|| InvalidInput::new_err("bars: counts overflow"))?;
    let names = ["datetime", "open", "high", "low", "close", "volume", "amount"];
    let owned = names.iter().map(|name| column(cols, name, n)).collect::<PyResult<Vec<_>>>()?;
    let bufs: Vec<&[u8]> = owned.iter().map(|b| b.as_bytes()).collect();
    let keys = codes_.iter().map(|c| key(c, period, adjust)).collect::<PyResult<Vec<_>>>()?;
    let series =
        py.detach(|| build_series(&keys, &counts, &bufs, time_unit, volume_float)).map_err(InvalidInput::new_err)?;
    // Every series was checked by `build_series` before the first write; a
    // code twice would land in two groups, so it is refused here. The writes
    // go in groups so that each call stays well inside the stores' per-call timeouts.
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    if let Some((i, k)) = keys.iter().enumerate().find(|(_, k)| !seen.insert(**k)) {
        return Err(InvalidInput::new_err(format!("bars[{i}]: {} given twice", k.code)));
    }
    let (mut written, mut rest) = (0, series);
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(LOAD_CHUNK));
        let group = std::mem::replace(&mut rest, tail);
        written += store.run(py, |s| Box::pin(async move { s.bars.save_bars_batch(&group, mode).await }))?;
    }
    Ok(written)
}

fn build_series(
    keys: &[sqdata::BarKey],
    counts: &[usize],
    bufs: &[&[u8]],
    time_unit: &str,
    volume_float: bool,
) -> Result<Vec<sqdata::BarSeries>, String> {
    let mut cols = bufs.iter().map(|b| words(b));
    let mut next = || cols.next().ok_or_else(|| "bars: a column is missing".to_string());
    let (mut t, mut o, mut h, mut l, mut c, mut v, mut a) =
        (next()?, next()?, next()?, next()?, next()?, next()?, next()?);
    let f = |w: Option<[u8; 8]>| f64::from_le_bytes(w.unwrap_or_default());
    let mut out = Vec::with_capacity(keys.len());
    for (key, count) in keys.iter().zip(counts) {
        let mut bars = Vec::with_capacity(*count);
        for row in 0..*count {
            let at = |field: &str, why: String| format!("bars[{}][{row}].{field}: {why}", key.code);
            let ti = i64::from_le_bytes(t.next().unwrap_or_default());
            let datetime = bar_time(time_unit, ti).map_err(|e| at("datetime", e))?;
            let vw = v.next().unwrap_or_default();
            let volume = if volume_float {
                let x = f64::from_le_bytes(vw);
                if !(x >= 0.0 && x.fract() == 0.0 && x < 1.8e19) {
                    return Err(at("volume", format!("{x} is not a whole number of shares")));
                }
                x as u64
            } else {
                let x = i64::from_le_bytes(vw);
                u64::try_from(x).map_err(|_| at("volume", format!("{x} is negative")))?
            };
            bars.push(sqdata::Bar {
                datetime,
                open: f(o.next()),
                high: f(h.next()),
                low: f(l.next()),
                close: f(c.next()),
                volume,
                amount: f(a.next()),
            });
        }
        if !bars.is_sorted_by_key(|b| b.datetime) {
            bars.sort_by_key(|b| b.datetime);
        }
        let s = sqdata::BarSeries { key: *key, bars };
        s.validate().map_err(|e| format!("bars[{}]: {e}", key.code))?;
        out.push(s);
    }
    Ok(out)
}
