//! K-line bars.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDateTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::code::Code;
use crate::error::{Error, Result};
use crate::validate;

/// Bar length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Period {
    /// 1 minute.
    Min1,
    /// 5 minutes.
    Min5,
    /// 15 minutes.
    Min15,
    /// 30 minutes.
    Min30,
    /// 60 minutes.
    Min60,
    /// 1 day.
    Day1,
    /// 1 week.
    Week1,
}

impl Period {
    /// Every period.
    pub const ALL: [Period; 7] =
        [Period::Min1, Period::Min5, Period::Min15, Period::Min30, Period::Min60, Period::Day1, Period::Week1];

    /// `1m`, `5m`, `15m`, `30m`, `60m`, `1d`, `1w`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Min1 => "1m",
            Period::Min5 => "5m",
            Period::Min15 => "15m",
            Period::Min30 => "30m",
            Period::Min60 => "60m",
            Period::Day1 => "1d",
            Period::Week1 => "1w",
        }
    }

    /// Whether bars carry only a date (day and longer).
    pub fn is_daily(self) -> bool {
        matches!(self, Period::Day1 | Period::Week1)
    }
}

impl FromStr for Period {
    type Err = Error;
    fn from_str(s: &str) -> Result<Period> {
        Period::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::invalid("period", s, "expected one of 1m 5m 15m 30m 60m 1d 1w"))
    }
}

/// Price adjustment for ex-rights events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Adjust {
    /// Raw prices.
    None,
    /// Forward-adjusted (前复权), SilverQuant's default.
    Qfq,
    /// Backward-adjusted (后复权).
    Hfq,
}

impl Adjust {
    /// Every adjustment.
    pub const ALL: [Adjust; 3] = [Adjust::None, Adjust::Qfq, Adjust::Hfq];

    /// `none`, `qfq`, `hfq`.
    pub fn as_str(self) -> &'static str {
        match self {
            Adjust::None => "none",
            Adjust::Qfq => "qfq",
            Adjust::Hfq => "hfq",
        }
    }
}

impl FromStr for Adjust {
    type Err = Error;
    fn from_str(s: &str) -> Result<Adjust> {
        Adjust::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::invalid("adjust", s, "expected none, qfq or hfq"))
    }
}

macro_rules! str_serde {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<$t, D::Error> {
                let s = std::borrow::Cow::<str>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
str_serde!(Period);
str_serde!(Adjust);

/// Identifies one bar series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BarKey {
    /// The code.
    pub code: Code,
    /// The period.
    pub period: Period,
    /// The adjustment.
    pub adjust: Adjust,
}

impl BarKey {
    /// Builds a key.
    pub fn new(code: Code, period: Period, adjust: Adjust) -> BarKey {
        BarKey { code, period, adjust }
    }
}

impl fmt::Display for BarKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.code, self.period, self.adjust)
    }
}

/// One bar. Daily bars have a midnight time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bar {
    /// Bar time (Asia/Shanghai).
    pub datetime: NaiveDateTime,
    /// Open.
    pub open: f64,
    /// High.
    pub high: f64,
    /// Low.
    pub low: f64,
    /// Close.
    pub close: f64,
    /// Volume.
    pub volume: u64,
    /// Amount (turnover).
    pub amount: f64,
}

impl Bar {
    /// Prices finite and non-negative, high ≥ low, amount finite.
    pub fn validate(&self) -> Result<()> {
        let at = |e: Error| match e {
            Error::InvalidInput { field, value, reason } => {
                Error::InvalidInput { field, value, reason: format!("{reason} (bar at {})", self.datetime) }
            }
            other => other,
        };
        for (f, v) in [("open", self.open), ("high", self.high), ("low", self.low), ("close", self.close)] {
            validate::price(f, v).map_err(at)?;
        }
        validate::finite("amount", self.amount).map_err(at)?;
        if self.high < self.low {
            return Err(at(Error::invalid("high", self.high, format!("is below low {}", self.low))));
        }
        validate::check_year("datetime", &self.datetime.to_string(), self.datetime.date()).map_err(at)?;
        Ok(())
    }
}

/// A whole series: key and bars in strictly increasing time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarSeries {
    /// Which series.
    pub key: BarKey,
    /// The bars.
    pub bars: Vec<Bar>,
}

impl BarSeries {
    /// Validates every bar and the time order (no duplicates).
    pub fn validate(&self) -> Result<()> {
        for w in self.bars.windows(2) {
            if w[1].datetime <= w[0].datetime {
                return Err(Error::invalid(
                    "datetime",
                    w[1].datetime,
                    format!("bars of {} must be in strictly increasing time (after {})", self.key, w[0].datetime),
                ));
            }
        }
        for b in &self.bars {
            b.validate()?;
        }
        Ok(())
    }
}

/// Validates a batch of series for [`crate::BarStore::save_bars_batch`]:
/// every series, and no key twice (an upsert of the same key twice in one
/// batch would otherwise depend on the order a backend applies them).
pub fn validate_batch(series: &[BarSeries]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(series.len());
    for (i, s) in series.iter().enumerate() {
        if !seen.insert(s.key) {
            return Err(Error::invalid(format!("series[{i}].key"), s.key, "the same series twice in one batch"));
        }
        s.validate()?;
    }
    Ok(())
}

/// How [`crate::BarStore::save_bars`] treats bars already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BarWriteMode {
    /// The series becomes exactly the given bars (an ex-rights re-download).
    Replace,
    /// Bars at the given times are replaced, the others kept (a daily append).
    Upsert,
}

/// An inclusive time range; `None` ends are open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TimeRange {
    /// First bar time.
    pub from: Option<NaiveDateTime>,
    /// Last bar time.
    pub to: Option<NaiveDateTime>,
}

impl TimeRange {
    /// Everything.
    pub fn all() -> TimeRange {
        TimeRange::default()
    }

    /// Whether a time is inside.
    pub fn contains(&self, t: NaiveDateTime) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|e| t <= e)
    }

    /// from ≤ to.
    pub fn validate(&self) -> Result<()> {
        validate::ordered(self.from, self.to)
    }
}

/// Per-series statistics (vn.py's `get_bar_overview`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BarOverview {
    /// Which series.
    pub key: BarKey,
    /// Number of bars.
    pub count: u64,
    /// First bar time.
    pub first: NaiveDateTime,
    /// Last bar time.
    pub last: NaiveDateTime,
}

/// Merges `new` into `old` (both sorted): bars at equal times are replaced.
pub fn upsert_bars(old: &[Bar], new: &[Bar]) -> Vec<Bar> {
    let mut out = Vec::with_capacity(old.len() + new.len());
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        match old[i].datetime.cmp(&new[j].datetime) {
            std::cmp::Ordering::Less => {
                out.push(old[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(new[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(new[j]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&old[i..]);
    out.extend_from_slice(&new[j..]);
    out
}
