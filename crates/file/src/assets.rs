//! `assets.csv`: `date,asset`, one row per day as pandas writes it. Older
//! SilverQuant versions appended a second row for the same day on restart;
//! reads tolerate that (the last row wins) and writes upsert by date.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;
use sqdata_core::{AssetRow, Error, Result, validate};

use crate::pyjson::float_repr;

pub(crate) const ASSETS: &str = "assets.csv";

/// Parses the file; duplicates by date keep the last value.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<BTreeMap<NaiveDate, f64>> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
    let headers = rdr.headers().map_err(|e| Error::corrupt(format!("{}:1", path.display()), e.to_string()))?.clone();
    let cols: Vec<&str> = headers.iter().map(|h| h.trim_start_matches('\u{feff}')).collect();
    if cols != ["date", "asset"] {
        return Err(Error::corrupt(
            format!("{}:1", path.display()),
            format!("unexpected header {:?}, expected date,asset", cols.join(",")),
        ));
    }
    let mut out = BTreeMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let loc = format!("{}:{}", path.display(), i + 2);
        let rec = rec.map_err(|e| Error::corrupt(loc.clone(), e.to_string()))?;
        if rec.len() != 2 {
            return Err(Error::corrupt(loc, format!("expected 2 fields, found {}", rec.len())));
        }
        let date = validate::date("date", &rec[0]).map_err(|e| Error::corrupt(loc.clone(), e.to_string()))?;
        let asset = validate::number("asset", &rec[1])
            .and_then(|v| validate::price("asset", v))
            .map_err(|e| Error::corrupt(loc.clone(), e.to_string()))?;
        out.insert(date, asset);
    }
    Ok(out)
}

/// Formats rows as `df.to_csv(index=False)` does.
pub(crate) fn format(rows: &BTreeMap<NaiveDate, f64>) -> String {
    let mut s = String::from("date,asset\n");
    for (d, v) in rows {
        s.push_str(&d.format("%Y-%m-%d").to_string());
        s.push(',');
        s.push_str(&float_repr(*v));
        s.push('\n');
    }
    s
}

/// Rows in the map as domain values.
pub(crate) fn rows(m: &BTreeMap<NaiveDate, f64>) -> Vec<AssetRow> {
    m.iter().map(|(d, v)| AssetRow { date: *d, asset: *v }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_tolerated_crlf_too() {
        let text = "date,asset\r\n2025-10-09,100000.0\r\n2025-10-10,100500.5\r\n2025-10-10,100600.0\r\n";
        let m = parse(Path::new("a.csv"), text.as_bytes()).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&NaiveDate::from_ymd_opt(2025, 10, 10).unwrap()], 100600.0);
        assert_eq!(format(&m), "date,asset\n2025-10-09,100000.0\n2025-10-10,100600.0\n");
    }
}
