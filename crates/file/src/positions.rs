//! `positions.json` (v4), `max_price.json`, `min_price.json`: parsing into a
//! [`PositionSnapshot`] and writing changes back while keeping everything the
//! files hold that sqdata does not model (key order, `_` metadata keys, extra
//! per-code fields, prices of codes that are not positions).

use std::path::Path;

use chrono::NaiveDate;
use serde_json::{Map, Value};
use sqdata_core::{Code, Error, PositionEntry, PositionSnapshot, Result};

/// One parsed JSON object file.
pub(crate) type Doc = Map<String, Value>;

pub(crate) const POSITIONS: &str = "positions.json";
pub(crate) const MAX_PRICE: &str = "max_price.json";
pub(crate) const MIN_PRICE: &str = "min_price.json";
pub(crate) const LEGACY_HELD_DAYS: &str = "held_days.json";
const INC_DATE: &str = "_inc_date";
const DAY_COUNT: &str = "day_count";

/// Parses a JSON object file; an empty, truncated or non-object file is corrupt.
pub(crate) fn parse_doc(path: &Path, bytes: &[u8]) -> Result<Doc> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::corrupt(path.display().to_string(), "the file is empty (an interrupted write?)"));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(Error::corrupt(
            path.display().to_string(),
            format!("expected a JSON object, found {}", kind_of(&other)),
        )),
        Err(e) => Err(Error::corrupt(path.display().to_string(), format!("invalid JSON: {e}"))),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A code key must be in canonical form (`000001.SZ`), as SilverQuant writes it.
fn code_key(path: &Path, key: &str) -> Result<Code> {
    let code = Code::parse(key)
        .map_err(|e| Error::corrupt(path.display().to_string(), format!("key {key:?} is not a code: {e}")))?;
    if code.to_bytes() != key.as_bytes() {
        return Err(Error::corrupt(path.display().to_string(), format!("key {key:?} is not in canonical form {code}")));
    }
    Ok(code)
}

fn day_count(path: &Path, key: &str, v: &Value) -> Result<Option<u32>> {
    let bad = |what: &str| Error::corrupt(path.display().to_string(), format!("{key}: {what}"));
    let obj = v.as_object().ok_or_else(|| bad("expected {\"day_count\": …}"))?;
    match obj.get(DAY_COUNT) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .map(Some)
            .ok_or_else(|| bad("day_count must be a non-negative integer")),
        Some(_) => Err(bad("day_count must be an integer or null")),
    }
}

fn price_of(path: &Path, key: &str, v: &Value) -> Result<f64> {
    let p = v
        .as_f64()
        .ok_or_else(|| Error::corrupt(path.display().to_string(), format!("{key}: price must be a number")))?;
    if !p.is_finite() || p < 0.0 {
        return Err(Error::corrupt(path.display().to_string(), format!("{key}: invalid price {p}")));
    }
    Ok(p)
}

/// The paths of one book's three files, for error messages.
#[derive(Debug, Clone)]
pub(crate) struct Paths {
    pub(crate) positions: std::path::PathBuf,
    pub(crate) max: std::path::PathBuf,
    pub(crate) min: std::path::PathBuf,
}

impl Paths {
    pub(crate) fn in_dir(dir: &Path) -> Paths {
        Paths { positions: dir.join(POSITIONS), max: dir.join(MAX_PRICE), min: dir.join(MIN_PRICE) }
    }
}

/// Builds the snapshot the files describe: every code in positions.json,
/// with its prices. Prices of codes that are not positions are not part of
/// the book (they stay in the files untouched).
pub(crate) fn derive(paths: &Paths, pos: &Doc, max: &Doc, min: &Doc) -> Result<PositionSnapshot> {
    let mut snap = PositionSnapshot::default();
    for (k, v) in pos {
        if k.starts_with('_') {
            if k == INC_DATE {
                snap.inc_date = match v {
                    Value::Null => None,
                    Value::String(s) => Some(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
                        Error::corrupt(paths.positions.display().to_string(), format!("_inc_date {s:?} is not a date"))
                    })?),
                    _ => {
                        return Err(Error::corrupt(
                            paths.positions.display().to_string(),
                            "_inc_date must be a YYYY-MM-DD string",
                        ));
                    }
                };
            }
            continue;
        }
        let code = code_key(&paths.positions, k)?;
        let entry = PositionEntry {
            day_count: day_count(&paths.positions, k, v)?,
            max_price: max.get(k).map(|p| price_of(&paths.max, k, p)).transpose()?,
            min_price: min.get(k).map(|p| price_of(&paths.min, k, p)).transpose()?,
        };
        snap.positions.insert(code, entry);
    }
    // Validate the price files fully, so a corrupt value is reported even for
    // a code that is not (or no longer) a position.
    for (path, doc) in [(&paths.max, max), (&paths.min, min)] {
        for (k, v) in doc {
            if !k.starts_with('_') {
                code_key(path, k)?;
                price_of(path, k, v)?;
            }
        }
    }
    Ok(snap)
}

/// Codes new to a file are appended in the order the operation named them
/// (as SilverQuant's dict inserts do), then any others in code order.
fn append_order<'a>(new: &'a PositionSnapshot, hint: &'a [Code]) -> impl Iterator<Item = Code> + 'a {
    hint.iter().copied().filter(|c| new.positions.contains_key(c)).chain(new.positions.keys().copied())
}

/// positions.json after `old` became `new`, keeping order and extra fields.
pub(crate) fn rebuild_positions(doc: &Doc, old: &PositionSnapshot, new: &PositionSnapshot, hint: &[Code]) -> Doc {
    let mut out = Map::with_capacity(doc.len() + 4);
    let mut had_inc = false;
    for (k, v) in doc {
        if k.starts_with('_') {
            if k == INC_DATE {
                had_inc = true;
                if new.inc_date != old.inc_date {
                    // Cleared: the key goes (SilverQuant's `del_key` of it),
                    // rather than becoming `null`.
                    if new.inc_date.is_some() {
                        out.insert(k.clone(), inc_value(new.inc_date));
                    }
                    continue;
                }
            }
            out.insert(k.clone(), v.clone());
            continue;
        }
        let Ok(code) = Code::parse(k) else {
            out.insert(k.clone(), v.clone());
            continue;
        };
        match (old.positions.get(&code), new.positions.get(&code)) {
            (_, None) => {} // dropped
            (Some(o), Some(n)) if o.day_count == n.day_count => {
                out.insert(k.clone(), v.clone());
            }
            (_, Some(n)) => {
                let mut obj = v.as_object().cloned().unwrap_or_default();
                obj.insert(DAY_COUNT.to_owned(), day_value(n.day_count));
                out.insert(k.clone(), Value::Object(obj));
            }
        }
    }
    for code in append_order(new, hint) {
        let key = code.to_string();
        if !out.contains_key(&key) && !doc.contains_key(&key) {
            let mut obj = Map::new();
            obj.insert(DAY_COUNT.to_owned(), day_value(new.positions[&code].day_count));
            out.insert(key, Value::Object(obj));
        }
    }
    if !had_inc && new.inc_date.is_some() {
        out.insert(INC_DATE.to_owned(), inc_value(new.inc_date));
    }
    out
}

fn inc_value(d: Option<NaiveDate>) -> Value {
    d.map(|d| Value::String(d.format("%Y-%m-%d").to_string())).unwrap_or(Value::Null)
}

fn day_value(d: Option<u32>) -> Value {
    d.map(Value::from).unwrap_or(Value::Null)
}

/// A price file after `old` became `new`; `pick` selects max or min.
pub(crate) fn rebuild_prices(
    doc: &Doc,
    old: &PositionSnapshot,
    new: &PositionSnapshot,
    pick: fn(&PositionEntry) -> Option<f64>,
    hint: &[Code],
) -> Doc {
    // The sell loop's case: the same codes before and after, a few prices
    // moved, each under its own key. Patch those values in a copy; anything
    // else (codes added or dropped, a price appearing or vanishing, a key
    // spelled otherwise) takes the full walk below.
    if old.positions.len() == new.positions.len() && old.positions.keys().eq(new.positions.keys()) {
        let mut out = doc.clone();
        let mut patched = true;
        for ((code, a), b) in old.positions.iter().zip(new.positions.values()) {
            let (pa, pb) = (pick(a), pick(b));
            if pa == pb {
                continue;
            }
            let slot = pa.and(pb).and_then(|_| out.get_mut(code.to_string().as_str()));
            match (slot, pb) {
                (Some(v), Some(p)) if v.as_f64() == pa => *v = Value::from(p),
                _ => {
                    patched = false;
                    break;
                }
            }
        }
        if patched {
            return out;
        }
    }
    rebuild_prices_walk(doc, old, new, pick, hint)
}

/// [`rebuild_prices`] by a walk over every key of the file.
pub(crate) fn rebuild_prices_walk(
    doc: &Doc,
    old: &PositionSnapshot,
    new: &PositionSnapshot,
    pick: fn(&PositionEntry) -> Option<f64>,
    hint: &[Code],
) -> Doc {
    let mut out = Map::with_capacity(doc.len() + 4);
    for (k, v) in doc {
        let Ok(code) = Code::parse(k) else {
            out.insert(k.clone(), v.clone());
            continue;
        };
        match (old.positions.get(&code), new.positions.get(&code)) {
            // not a position before or after: someone else's key, keep it
            (None, None) => {
                out.insert(k.clone(), v.clone());
            }
            (_, None) => {}
            (_, Some(n)) => match pick(n) {
                None => {}
                Some(p) if v.as_f64() == Some(p) => {
                    out.insert(k.clone(), v.clone());
                }
                Some(p) => {
                    out.insert(k.clone(), Value::from(p));
                }
            },
        }
    }
    for code in append_order(new, hint) {
        if let Some(p) = pick(&new.positions[&code]) {
            let key = code.to_string();
            if !doc.contains_key(&key) && !out.contains_key(&key) {
                out.insert(key, Value::from(p));
            }
        }
    }
    out
}

/// Reads SilverQuant's pre-v4 `held_days.json` (`{"_inc_date": …, "000001.SZ": 3}`).
pub(crate) fn parse_legacy(path: &Path, doc: &Doc) -> Result<PositionSnapshot> {
    let mut snap = PositionSnapshot::default();
    for (k, v) in doc {
        if k == INC_DATE {
            if let Value::String(s) = v {
                snap.inc_date = Some(
                    NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map_err(|_| Error::corrupt(path.display().to_string(), format!("_inc_date {s:?}")))?,
                );
            }
            continue;
        }
        if k.starts_with('_') {
            continue;
        }
        let code = code_key(path, k)?;
        let day = match v {
            Value::Null => None,
            Value::Number(n) => Some(
                n.as_u64()
                    .and_then(|d| u32::try_from(d).ok())
                    .ok_or_else(|| Error::corrupt(path.display().to_string(), format!("{k}: bad day count")))?,
            ),
            _ => return Err(Error::corrupt(path.display().to_string(), format!("{k}: expected an integer"))),
        };
        snap.positions.insert(code, PositionEntry { day_count: day, ..Default::default() });
    }
    Ok(snap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqdata_core::position::rules;

    fn doc(s: &str) -> Doc {
        parse_doc(Path::new("t.json"), s.as_bytes()).unwrap()
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_path() {
        for bad in ["", "  ", "{\"a\": 1", "[]", "null"] {
            let e = parse_doc(Path::new("/x/positions.json"), bad.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("/x/positions.json"), "{e}");
        }
    }

    #[test]
    fn rebuild_keeps_order_and_unknown_fields() {
        let paths = Paths::in_dir(Path::new("."));
        let pos = doc(
            r#"{"600000.SH": {"day_count": 2, "note": "x"}, "_inc_date": "2025-10-09", "_meta": 1, "000001.SZ": {"day_count": null}}"#,
        );
        let max = doc(r#"{"600000.SH": 10.5, "300750.SZ": 99.0}"#);
        let min = doc("{}");
        let old = derive(&paths, &pos, &max, &min).unwrap();
        assert_eq!(old.positions.len(), 2);
        let mut new = old.clone();
        assert!(rules::inc_held_days(&mut new, NaiveDate::from_ymd_opt(2025, 10, 10).unwrap()));
        rules::new_held(&mut new, &[Code::parse("002594.SZ").unwrap()]);
        let p = rebuild_positions(&pos, &old, &new, &[]);
        let keys: Vec<_> = p.keys().cloned().collect();
        assert_eq!(keys, ["600000.SH", "_inc_date", "_meta", "000001.SZ", "002594.SZ"]);
        assert_eq!(p["600000.SH"], serde_json::json!({"day_count": 3, "note": "x"}));
        assert_eq!(p["_inc_date"], "2025-10-10");
        // the orphan price of 300750.SZ is not a position: kept as is
        let m = rebuild_prices(&max, &old, &new, |e| e.max_price, &[]);
        assert_eq!(m, max);
    }
}
