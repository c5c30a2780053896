//! Latest quote snapshots (short TTL).

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use crate::code::Code;
use crate::error::{Error, Result};
use crate::validate;

/// How long a quote lives unless a backend is configured otherwise.
pub const DEFAULT_QUOTE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The latest snapshot of one code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quote {
    /// The code.
    pub code: Code,
    /// Exchange time (Asia/Shanghai).
    pub time: NaiveDateTime,
    /// Last price.
    pub last: f64,
    /// Open.
    pub open: f64,
    /// Day high.
    pub high: f64,
    /// Day low.
    pub low: f64,
    /// Previous close.
    pub pre_close: f64,
    /// Volume traded today.
    pub volume: u64,
    /// Amount traded today.
    pub amount: f64,
}

impl Quote {
    /// Prices finite and non-negative, high ≥ low.
    pub fn validate(&self) -> Result<()> {
        for (f, v) in [
            ("last", self.last),
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("pre_close", self.pre_close),
        ] {
            validate::price(f, v)?;
        }
        validate::finite("amount", self.amount)?;
        if self.high < self.low {
            return Err(Error::invalid("high", self.high, format!("is below low {} for {}", self.low, self.code)));
        }
        Ok(())
    }
}
