//! Reading what only SilverQuant's older versions wrote.

use std::path::Path;

use std::collections::BTreeMap;

use sqdata_core::{Code, Error, PositionSnapshot, Result};

use crate::fsio;
use crate::positions::{self, LEGACY_HELD_DAYS};

/// A v3 book: `held_days.json` with plain integers.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyPositions {
    /// The positions it describes (no prices: v3 kept them in the same price files).
    pub snapshot: PositionSnapshot,
    /// The file it came from.
    pub path: std::path::PathBuf,
}

/// Reads `<dir>/held_days.json` if there is one and no v4 `positions.json`,
/// with the max/min prices of its codes.
pub fn read_legacy_held_days(dir: &Path) -> Result<Option<LegacyPositions>> {
    if dir.join(positions::POSITIONS).exists() {
        return Ok(None);
    }
    let path = dir.join(LEGACY_HELD_DAYS);
    let Some((bytes, _)) = fsio::read_stable(&path)? else { return Ok(None) };
    let doc = positions::parse_doc(&path, &bytes)?;
    let mut snapshot = positions::parse_legacy(&path, &doc)?;
    let max = price_file(&dir.join(positions::MAX_PRICE))?;
    let min = price_file(&dir.join(positions::MIN_PRICE))?;
    for (code, e) in snapshot.positions.iter_mut() {
        e.max_price = max.get(code).copied();
        e.min_price = min.get(code).copied();
    }
    Ok(Some(LegacyPositions { snapshot, path }))
}

/// Every code in a price file with its price.
fn price_file(path: &Path) -> Result<BTreeMap<Code, f64>> {
    let Some((bytes, _)) = fsio::read_stable(path)? else { return Ok(BTreeMap::new()) };
    let doc = positions::parse_doc(path, &bytes)?;
    let mut out = BTreeMap::new();
    for (k, v) in doc {
        if k.starts_with('_') {
            continue;
        }
        let code =
            Code::parse(&k).map_err(|e| Error::corrupt(path.display().to_string(), format!("key {k:?}: {e}")))?;
        let p = v
            .as_f64()
            .filter(|p| p.is_finite() && *p >= 0.0)
            .ok_or_else(|| Error::corrupt(path.display().to_string(), format!("{k}: invalid price {v}")))?;
        out.insert(code, p);
    }
    Ok(out)
}

/// Codes that have a max or min price in `dir` but are not positions there:
/// SilverQuant leaves them behind; they are not part of the book.
pub fn orphan_prices(dir: &Path, positions: &PositionSnapshot) -> Result<Vec<Code>> {
    let mut out: std::collections::BTreeSet<Code> = Default::default();
    for f in [positions::MAX_PRICE, positions::MIN_PRICE] {
        out.extend(price_file(&dir.join(f))?.into_keys().filter(|c| !positions.positions.contains_key(c)));
    }
    Ok(out.into_iter().collect())
}
