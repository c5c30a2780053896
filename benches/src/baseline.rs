//! The same operations done the way SilverQuant does them today, in Rust:
//! parse whole JSON files on every call, rewrite them in place, parse the
//! whole deal CSV for a daily report, one K-line CSV after another. These
//! are the same-run baselines every sqdata figure is printed next to (the
//! issue's brackets give SilverQuant's own Python figures on these machines).

use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};
use sqdata::file::kline;
use sqdata::{Bar, Code, PriceTick, validate::round3};

fn load_json(path: &Path) -> Map<String, Value> {
    match std::fs::read(path) {
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        Err(_) => Map::new(),
    }
}

/// `load_json` of positions.json, max_price.json and min_price.json — what
/// the sell loop does every second.
pub fn snapshot(dir: &Path) -> (Map<String, Value>, Map<String, Value>, Map<String, Value>) {
    (
        load_json(&dir.join("positions.json")),
        load_json(&dir.join("max_price.json")),
        load_json(&dir.join("min_price.json")),
    )
}

fn save_json(path: &Path, m: &Map<String, Value>, fsync: bool) {
    // open('w') truncates in place, then writes: no temp file, no rename.
    let text = sqdata::file::python_json_dumps(&Value::Object(m.clone()));
    if let Ok(mut f) = std::fs::File::create(path) {
        let _ = f.write_all(text.as_bytes());
        if fsync {
            let _ = f.sync_data();
        }
    }
}

/// `update_max_prices`: load all three files, raise/lower, rewrite the price
/// files that changed in place (with an fsync each when `fsync`).
pub fn update_extremes(dir: &Path, ticks: &[PriceTick], fsync: bool) -> usize {
    let (held, mut max, mut min) = snapshot(dir);
    let (mut mu, mut nu, mut changed) = (false, false, 0);
    for t in ticks {
        let key = t.code.to_string();
        let Some(day) = held.get(&key).and_then(|v| v.get("day_count")).and_then(Value::as_u64) else { continue };
        if day == 0 {
            continue;
        }
        let (hi, lo) = (round3(t.high), round3(t.low));
        if max.get(&key).and_then(Value::as_f64).is_none_or(|m| m < hi) {
            max.insert(key.clone(), Value::from(hi));
            mu = true;
            changed += 1;
        }
        if min.get(&key).and_then(Value::as_f64).is_none_or(|m| m > lo) {
            min.insert(key, Value::from(lo));
            nu = true;
            changed += 1;
        }
    }
    if mu {
        save_json(&dir.join("max_price.json"), &max, fsync);
    }
    if nu {
        save_json(&dir.join("min_price.json"), &min, fsync);
    }
    changed
}

/// `record_deal`: open for append, write one csv.writer row in GBK, close.
pub fn record_deal(path: &Path, row: &str) {
    let (bytes, _, _) = encoding_rs::GBK.encode(row);
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
        let _ = f.write_all(&bytes);
    }
}

/// The daily report: read the whole GBK CSV, parse every row, keep one day's.
pub fn deals_of_day(path: &Path, day: &str) -> usize {
    let Ok(bytes) = std::fs::read(path) else { return 0 };
    let (text, _, _) = encoding_rs::GBK.decode(&bytes);
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let mut rows: Vec<Vec<String>> = Vec::new();
    for rec in rdr.records().flatten() {
        // a DataFrame materialises every column of every row
        let row: Vec<String> = rec.iter().map(str::to_owned).collect();
        rows.push(row);
    }
    rows.iter().filter(|r| r.first().map(String::as_str) == Some(day)).count()
}

/// One K-line CSV parsed (`pd.read_csv(path)`).
pub fn load_series(path: &Path) -> Vec<Bar> {
    kline::read_kline_csv(path).unwrap_or_default()
}

/// `load_history_from_disk_to_memory`: every K-line CSV, one after another.
pub fn whole_market(dir: &Path, codes: &[Code]) -> usize {
    codes.iter().map(|c| load_series(&dir.join(format!("{c}.csv"))).len()).sum()
}
