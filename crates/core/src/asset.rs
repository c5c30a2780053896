//! The equity curve: one total-asset value per book and day.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::validate;

/// One day's total asset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetRow {
    /// The day.
    pub date: NaiveDate,
    /// Total asset in yuan.
    pub asset: f64,
}

impl AssetRow {
    /// Finite, non-negative, a plausible year.
    pub fn validate(&self) -> Result<()> {
        validate::price("asset", self.asset)?;
        validate::check_year("date", &self.date.to_string(), self.date)?;
        Ok(())
    }
}

/// An inclusive date range; `None` ends are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DateRange {
    /// First day.
    pub from: Option<NaiveDate>,
    /// Last day.
    pub to: Option<NaiveDate>,
}

impl DateRange {
    /// Everything.
    pub fn all() -> DateRange {
        DateRange::default()
    }

    /// Whether a day is inside.
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d <= t)
    }

    /// from ≤ to.
    pub fn validate(&self) -> Result<()> {
        validate::ordered(self.from, self.to)
    }
}
