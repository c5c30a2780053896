//! Hot position state of one book: held days and max/min prices since buy.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::code::Code;
use crate::error::{Error, Result};
use crate::validate;

/// One code's state inside a book.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionEntry {
    /// Trading days held; `None` means sold (SilverQuant's `null`).
    pub day_count: Option<u32>,
    /// Highest price since the buy (3 decimals), if tracked.
    pub max_price: Option<f64>,
    /// Lowest price since the buy (3 decimals), if tracked.
    pub min_price: Option<f64>,
}

impl PositionEntry {
    /// Whether the code is still held (day_count is not null).
    pub fn is_held(&self) -> bool {
        self.day_count.is_some()
    }
}

/// Everything the sell loop reads once a second, in one call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionSnapshot {
    /// The last day held days were incremented (`_inc_date`).
    pub inc_date: Option<NaiveDate>,
    /// Every tracked code, held or sold, in code order.
    pub positions: BTreeMap<Code, PositionEntry>,
}

impl PositionSnapshot {
    /// Codes still held.
    pub fn held_codes(&self) -> impl Iterator<Item = Code> + '_ {
        self.positions.iter().filter(|(_, e)| e.is_held()).map(|(c, _)| *c)
    }

    /// Validates a snapshot given from outside (import, repair): prices must
    /// be valid and sold codes carry no prices.
    pub fn validate(&self) -> Result<()> {
        for (code, e) in &self.positions {
            if let Some(p) = e.max_price {
                validate::price("max_price", p).map_err(|err| with_code(err, code))?;
            }
            if let Some(p) = e.min_price {
                validate::price("min_price", p).map_err(|err| with_code(err, code))?;
            }
            if let (Some(hi), Some(lo)) = (e.max_price, e.min_price)
                && hi < lo
            {
                return Err(Error::invalid("max_price", hi, format!("is below min_price {lo} for {code}")));
            }
        }
        Ok(())
    }
}

fn with_code(err: Error, code: &Code) -> Error {
    match err {
        Error::InvalidInput { field, value, reason } => {
            Error::InvalidInput { field, value, reason: format!("{reason} (code {code})") }
        }
        other => other,
    }
}

/// One quote's high and low for [`crate::PositionStore::update_extremes`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTick {
    /// The code.
    pub code: Code,
    /// The day's high so far.
    pub high: f64,
    /// The day's low so far.
    pub low: f64,
}

/// The highest price a tick may carry (no listed security comes near; a
/// larger number is a unit or parsing error upstream).
pub const MAX_TICK_PRICE: f64 = 1e7;

impl PriceTick {
    /// Builds a validated tick.
    pub fn new(code: Code, high: f64, low: f64) -> Result<PriceTick> {
        let t = PriceTick { code, high, low };
        t.validate()?;
        Ok(t)
    }

    /// Prices finite and non-negative, high ≥ low.
    pub fn validate(&self) -> Result<()> {
        validate::price("high", self.high).map_err(|e| with_code(e, &self.code))?;
        validate::price("low", self.low).map_err(|e| with_code(e, &self.code))?;
        if self.high > MAX_TICK_PRICE {
            return Err(Error::invalid("high", self.high, format!("is above {MAX_TICK_PRICE} for {}", self.code)));
        }
        if self.high < self.low {
            return Err(Error::invalid("high", self.high, format!("is below low {} for {}", self.low, self.code)));
        }
        Ok(())
    }
}

/// Validates every tick and rejects a code given twice.
pub fn validate_ticks(ticks: &[PriceTick]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(ticks.len());
    for t in ticks {
        t.validate()?;
        if !seen.insert(t.code) {
            return Err(Error::invalid("code", t.code, "given twice in one update"));
        }
    }
    Ok(())
}

/// A code whose max or min price changed in one update.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExtremeChange {
    /// The code.
    pub code: Code,
    /// The new max price, if it changed.
    pub max_price: Option<f64>,
    /// The new min price, if it changed.
    pub min_price: Option<f64>,
}

/// What [`crate::PositionStore::reconcile`] did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReconcileReport {
    /// Codes the broker holds that were not tracked (added with day_count 0).
    pub added: Vec<Code>,
    /// Codes tracked that the broker no longer holds (dropped with their prices).
    pub removed: Vec<Code>,
}

/// The reference semantics of every position operation, on an in-memory
/// snapshot. Backends that can hold the whole book in one place (memory,
/// files) call these; server backends implement the same rules server-side
/// and the conformance suite holds them to it.
pub mod rules {
    use super::*;

    /// Buy fill: day_count = 0 (prices kept: adding to a position keeps its history).
    pub fn new_held(s: &mut PositionSnapshot, codes: &[Code]) {
        for c in codes {
            s.positions.entry(*c).or_default().day_count = Some(0);
        }
    }

    /// Sell fill: day_count = None and the price keys dropped. Returns whether
    /// anything changed.
    pub fn mark_sold(s: &mut PositionSnapshot, code: Code) -> bool {
        let e = s.positions.entry(code).or_default();
        let changed = e.day_count.is_some() || e.max_price.is_some() || e.min_price.is_some();
        *e = PositionEntry::default();
        changed
    }

    /// SilverQuant's `del_held_day`: day_count = None (the code added if
    /// absent), prices kept. Returns whether anything changed.
    pub fn del_held_days(s: &mut PositionSnapshot, codes: &[Code]) -> bool {
        let mut changed = false;
        for c in codes {
            let e = s.positions.entry(*c).or_insert_with(|| {
                changed = true;
                PositionEntry::default()
            });
            changed |= e.day_count.take().is_some();
        }
        changed
    }

    /// Pre-market reconcile: add broker codes not tracked with day_count 0,
    /// drop tracked codes the broker no longer holds.
    pub fn reconcile(s: &mut PositionSnapshot, broker: &[Code]) -> ReconcileReport {
        let broker: std::collections::BTreeSet<Code> = broker.iter().copied().collect();
        let mut report = ReconcileReport::default();
        s.positions.retain(|c, _| {
            let keep = broker.contains(c);
            if !keep {
                report.removed.push(*c);
            }
            keep
        });
        for c in &broker {
            if !s.positions.contains_key(c) {
                s.positions.insert(*c, PositionEntry { day_count: Some(0), ..Default::default() });
                report.added.push(*c);
            }
        }
        report
    }

    /// +1 for every held code, once per day. Returns whether it ran. A date
    /// not after the last increment is a no-op, so a replay never double counts.
    pub fn inc_held_days(s: &mut PositionSnapshot, today: NaiveDate) -> bool {
        if matches!(s.inc_date, Some(d) if d >= today) {
            return false;
        }
        s.inc_date = Some(today);
        for e in s.positions.values_mut() {
            if let Some(d) = e.day_count.as_mut() {
                *d = d.saturating_add(1);
            }
        }
        true
    }

    /// max = max(old, round3(high)), min = min(old, round3(low)) for held
    /// codes; codes not held (absent or sold) are skipped.
    pub fn update_extremes(s: &mut PositionSnapshot, ticks: &[PriceTick]) -> Vec<ExtremeChange> {
        let mut changes = Vec::new();
        for t in ticks {
            let Some(e) = s.positions.get_mut(&t.code) else { continue };
            if e.day_count.is_none() {
                continue;
            }
            let hi = validate::round3(t.high);
            let lo = validate::round3(t.low);
            let mut ch = ExtremeChange { code: t.code, max_price: None, min_price: None };
            if e.max_price.is_none_or(|m| hi > m) {
                e.max_price = Some(hi);
                ch.max_price = Some(hi);
            }
            if e.min_price.is_none_or(|m| lo < m) {
                e.min_price = Some(lo);
                ch.min_price = Some(lo);
            }
            if ch.max_price.is_some() || ch.min_price.is_some() {
                changes.push(ch);
            }
        }
        changes
    }

    /// Day counts of the given codes that are tracked.
    pub fn held_days(s: &PositionSnapshot, codes: &[Code]) -> BTreeMap<Code, Option<u32>> {
        codes.iter().filter_map(|c| s.positions.get(c).map(|e| (*c, e.day_count))).collect()
    }
}
