//! Reading what only SilverQuant's older versions wrote.

use std::path::Path;

use sqdata_core::{PositionSnapshot, Result};

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

/// Reads `<dir>/held_days.json` if there is one and no v4 `positions.json`.
pub fn read_legacy_held_days(dir: &Path) -> Result<Option<LegacyPositions>> {
    if dir.join(positions::POSITIONS).exists() {
        return Ok(None);
    }
    let path = dir.join(LEGACY_HELD_DAYS);
    let Some((bytes, _)) = fsio::read_stable(&path)? else { return Ok(None) };
    let doc = positions::parse_doc(&path, &bytes)?;
    let snapshot = positions::parse_legacy(&path, &doc)?;
    Ok(Some(LegacyPositions { snapshot, path }))
}
