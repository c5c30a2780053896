//! SilverQuant's K-line CSVs: `<cache>/_daily_<source>/kline/<code>.csv`,
//! columns `datetime,open,high,low,close,volume,amount`, `datetime` an
//! integer `YYYYMMDD` (minute files: `YYYYMMDDHHMM[SS]`), written by pandas.

use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use rayon::prelude::*;
use sqdata_core::{Adjust, Bar, BarKey, BarSeries, Code, Error, Period, Result, validate};

use crate::pyjson::float_repr;

const COLUMNS: [&str; 7] = ["datetime", "open", "high", "low", "close", "volume", "amount"];

fn parse_dt(s: &str) -> Option<NaiveDateTime> {
    let t = s.trim();
    let t = t.strip_suffix(".0").unwrap_or(t);
    match t.len() {
        8 => NaiveDate::parse_from_str(t, "%Y%m%d").ok().map(|d| d.and_time(NaiveTime::MIN)),
        10 => NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().map(|d| d.and_time(NaiveTime::MIN)),
        12 => NaiveDateTime::parse_from_str(t, "%Y%m%d%H%M").ok(),
        14 => NaiveDateTime::parse_from_str(t, "%Y%m%d%H%M%S").ok(),
        19 => NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").ok(),
        _ => None,
    }
}

/// Reads one K-line CSV. Rows are sorted by time; a duplicate time, a bad
/// number or an impossible bar is an error naming the file, line and field.
pub fn read_kline_csv(path: &Path) -> Result<Vec<Bar>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_kline_csv(path, &bytes)
}

/// Parses K-line CSV bytes (see [`read_kline_csv`]).
pub fn parse_kline_csv(path: &Path, bytes: &[u8]) -> Result<Vec<Bar>> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
    let headers =
        rdr.byte_headers().map_err(|e| Error::corrupt(format!("{}:1", path.display()), e.to_string()))?.clone();
    let mut idx = [usize::MAX; 7];
    for (i, h) in headers.iter().enumerate() {
        let h = std::str::from_utf8(h).unwrap_or("").trim().trim_start_matches('\u{feff}');
        if let Some(c) = COLUMNS.iter().position(|c| *c == h) {
            idx[c] = i;
        }
    }
    if let Some(missing) = idx.iter().position(|i| *i == usize::MAX) {
        return Err(Error::corrupt(format!("{}:1", path.display()), format!("missing column {}", COLUMNS[missing])));
    }
    let mut bars = Vec::with_capacity(600);
    let mut rec = csv::ByteRecord::new();
    let mut line = 1usize;
    loop {
        let more = rdr
            .read_byte_record(&mut rec)
            .map_err(|e| Error::corrupt(format!("{}:{}", path.display(), line + 1), e.to_string()))?;
        if !more {
            break;
        }
        line += 1;
        let loc = || format!("{}:{line}", path.display());
        let get = |c: usize| std::str::from_utf8(rec.get(idx[c]).unwrap_or(b"")).unwrap_or("");
        let num = |c: usize| -> Result<f64> {
            validate::number(COLUMNS[c], get(c)).map_err(|e| Error::corrupt(loc(), e.to_string()))
        };
        let datetime =
            parse_dt(get(0)).ok_or_else(|| Error::corrupt(loc(), format!("invalid datetime {:?}", get(0))))?;
        let bar = Bar {
            datetime,
            open: num(1)?,
            high: num(2)?,
            low: num(3)?,
            close: num(4)?,
            volume: validate::volume("volume", get(5)).map_err(|e| Error::corrupt(loc(), e.to_string()))?,
            amount: num(6)?,
        };
        bar.validate().map_err(|e| Error::corrupt(loc(), e.to_string()))?;
        bars.push(bar);
    }
    if !bars.windows(2).all(|w| w[0].datetime < w[1].datetime) {
        bars.sort_by_key(|b| b.datetime);
        if let Some(w) = bars.windows(2).find(|w| w[0].datetime == w[1].datetime) {
            return Err(Error::corrupt(path.display().to_string(), format!("duplicate bar at {}", w[0].datetime)));
        }
    }
    Ok(bars)
}

/// Formats a series as pandas' `to_csv(index=False)` writes SilverQuant's frames.
pub fn format_kline_csv(period: Period, bars: &[Bar]) -> String {
    let mut out = String::with_capacity(64 + bars.len() * 64);
    out.push_str(&COLUMNS.join(","));
    out.push('\n');
    for b in bars {
        let dt = if period.is_daily() {
            b.datetime.format("%Y%m%d").to_string()
        } else {
            b.datetime.format("%Y%m%d%H%M%S").to_string()
        };
        out.push_str(&dt);
        for v in [b.open, b.high, b.low, b.close] {
            out.push(',');
            out.push_str(&float_repr(v));
        }
        out.push(',');
        out.push_str(&b.volume.to_string());
        out.push(',');
        out.push_str(&float_repr(b.amount));
        out.push('\n');
    }
    out
}

/// The `kline` folders of a SilverQuant cache: `<dir>/_daily_*/kline`,
/// also looking one level up (when `dir` is a book folder inside `_cache`).
pub fn find_kline_dirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for base in [Some(dir), dir.parent()].into_iter().flatten() {
        let Ok(rd) = std::fs::read_dir(base) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(source) = name.strip_prefix("_daily_") {
                let k = e.path().join("kline");
                if k.is_dir() && !out.iter().any(|(_, p): &(String, PathBuf)| p == &k) {
                    out.push((source.to_owned(), k));
                }
            }
        }
    }
    out.sort();
    out
}

/// The code a per-code file is named for: `<code>.<ext>` with the code in
/// canonical form (`000001.SZ.csv`). Any other name (not UTF-8, another
/// spelling of a code, another extension) is not such a file: `None`.
pub fn code_of_file_name(name: &std::ffi::OsStr, ext: &str) -> Option<Code> {
    let stem = name.to_str()?.strip_suffix(ext)?.strip_suffix('.')?;
    let code = Code::parse(stem).ok()?;
    (code.to_bytes() == stem.as_bytes()).then_some(code)
}

/// One file's outcome when loading a folder.
pub type KlineLoad = (PathBuf, Result<BarSeries>);

/// Loads every `<code>.csv` of a kline folder in parallel, as daily
/// forward-adjusted series (what SilverQuant stores there).
pub fn load_kline_dir(dir: &Path) -> Result<Vec<KlineLoad>> {
    let mut files: Vec<(Code, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        if let Some(code) = code_of_file_name(&e.file_name(), "csv") {
            files.push((code, e.path()));
        }
    }
    files.sort();
    Ok(files
        .into_par_iter()
        .map(|(code, path)| {
            let r =
                read_kline_csv(&path).map(|bars| BarSeries { key: BarKey::new(code, Period::Day1, Adjust::Qfq), bars });
            (path, r)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pandas_output_and_roundtrips() {
        let text = "datetime,open,high,low,close,volume,amount\n20250102,10.23,10.5,10.1,10.4,123456.0,1284000.5\n20250103,10.4,10.9,10.3,10.8,99,1.0\n";
        let bars = parse_kline_csv(Path::new("k.csv"), text.as_bytes()).unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].volume, 123456);
        let out = format_kline_csv(Period::Day1, &bars);
        assert_eq!(parse_kline_csv(Path::new("k.csv"), out.as_bytes()).unwrap(), bars);
        assert!(out.starts_with(
            "datetime,open,high,low,close,volume,amount\n20250102,10.23,10.5,10.1,10.4,123456,1284000.5\n"
        ));
    }

    #[test]
    fn bad_rows_are_errors_with_line() {
        let text = "datetime,open,high,low,close,volume,amount\n20250102,10.23,10.0,10.1,10.4,1,1\n";
        let e = parse_kline_csv(Path::new("/k/000001.SZ.csv"), text.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("/k/000001.SZ.csv:2") && e.contains("high"), "{e}");
        let text = "datetime,open,high,low,close,volume,amount\n20250230,1,1,1,1,1,1\n";
        assert!(parse_kline_csv(Path::new("k"), text.as_bytes()).is_err());
    }
}
