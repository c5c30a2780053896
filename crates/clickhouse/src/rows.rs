//! Rows as they travel in RowBinary, and their conversions. Prices are
//! integers scaled by 10^6 (exact: 11.23 is stored as 11230000 and reads back
//! as 11.23; they also compress far better than floats); dates are days and
//! times seconds since the epoch of the exchange-local (Asia/Shanghai) wall
//! clock, stored as `DateTime('UTC')` so no server time zone can shift them.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use sqdata_core::{AssetRow, Bar, BookId, Code, Deal, DealKind, Error, Result};

/// Price scale.
pub(crate) const SCALE: f64 = 1_000_000.0;

pub(crate) fn scaled(field: &str, p: f64) -> Result<i64> {
    let v = (p * SCALE).round();
    if !v.is_finite() || v.abs() > 9.0e18 {
        return Err(Error::invalid(field, p, "is too large to store"));
    }
    Ok(v as i64)
}

pub(crate) fn unscaled(v: i64) -> f64 {
    v as f64 / SCALE
}

pub(crate) fn days(d: NaiveDate) -> u16 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days().clamp(0, u16::MAX as i64) as u16
}

pub(crate) fn from_days(d: u16) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default() + chrono::Duration::days(d as i64)
}

pub(crate) fn secs(field: &str, t: NaiveDateTime) -> Result<u32> {
    u32::try_from(t.and_utc().timestamp())
        .map_err(|_| Error::invalid(field, t, "is outside 1970..2106, which ClickHouse DateTime holds"))
}

pub(crate) fn from_secs(s: u32) -> NaiveDateTime {
    DateTime::from_timestamp(s as i64, 0).map(|d| d.naive_utc()).unwrap_or_default()
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::corrupt(format!("clickhouse {what}"), detail.to_string())
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct DealRow {
    pub(crate) account: String,
    pub(crate) book: String,
    pub(crate) date: u16,
    pub(crate) time: u32,
    pub(crate) id: String,
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) kind: u8,
    pub(crate) remark: String,
    pub(crate) price: i64,
    pub(crate) volume: u64,
    pub(crate) amount: f64,
    pub(crate) strategy: String,
    pub(crate) version: u64,
}

impl DealRow {
    pub(crate) fn from_deal(d: &Deal, version: u64) -> Result<DealRow> {
        Ok(DealRow {
            account: d.book.account.to_string(),
            book: d.book.book.to_string(),
            date: days(d.time.date()),
            time: secs("time", d.time)?,
            id: d.id.clone(),
            code: d.code.to_string(),
            name: d.name.clone(),
            kind: d.kind.as_u8(),
            remark: d.remark.clone(),
            price: scaled("price", d.price)?,
            volume: d.volume,
            amount: d.amount,
            strategy: d.strategy.clone(),
            version,
        })
    }

    pub(crate) fn into_deal(self) -> Result<Deal> {
        Ok(Deal {
            book: BookId::new(&self.account, &self.book).map_err(|e| corrupt("deals.book", e))?,
            time: from_secs(self.time),
            code: Code::parse(&self.code).map_err(|e| corrupt("deals.code", e))?,
            kind: DealKind::from_u8(self.kind).ok_or_else(|| corrupt("deals.kind", self.kind))?,
            price: unscaled(self.price),
            id: self.id,
            name: self.name,
            remark: self.remark,
            volume: self.volume,
            amount: self.amount,
            strategy: self.strategy,
        })
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct BarRow {
    pub(crate) code: String,
    pub(crate) period: String,
    pub(crate) adjust: String,
    pub(crate) version: u64,
    pub(crate) datetime: u32,
    pub(crate) close: i64,
    /// open − close, scaled (small: compresses to a fraction of a price).
    pub(crate) open_d: i64,
    /// high − close, scaled.
    pub(crate) high_d: i64,
    /// low − close, scaled.
    pub(crate) low_d: i64,
    pub(crate) volume: u64,
    pub(crate) amount: f64,
}

impl BarRow {
    /// A bar of a series as stored: scaled close, the other prices as
    /// exact integer differences from it.
    pub(crate) fn new(code: &str, period: &str, adjust: &str, version: u64, b: &Bar) -> Result<BarRow> {
        let close = scaled("close", b.close)?;
        let diff = |field: &str, p: f64| -> Result<i64> {
            scaled(field, p)?
                .checked_sub(close)
                .ok_or_else(|| Error::invalid(field, p, "is too far from close to store"))
        };
        Ok(BarRow {
            code: code.to_owned(),
            period: period.to_owned(),
            adjust: adjust.to_owned(),
            version,
            datetime: secs("datetime", b.datetime)?,
            close,
            open_d: diff("open", b.open)?,
            high_d: diff("high", b.high)?,
            low_d: diff("low", b.low)?,
            volume: b.volume,
            amount: b.amount,
        })
    }
}

/// A bar as read back (the series is known from the query, the code per row).
#[derive(Debug, Clone, Row, Deserialize)]
pub(crate) struct BarRead<'a> {
    pub(crate) code: &'a str,
    pub(crate) datetime: u32,
    pub(crate) open: i64,
    pub(crate) high: i64,
    pub(crate) low: i64,
    pub(crate) close: i64,
    pub(crate) volume: u64,
    pub(crate) amount: f64,
}

impl BarRead<'_> {
    pub(crate) fn bar(&self) -> Bar {
        Bar {
            datetime: from_secs(self.datetime),
            open: unscaled(self.open),
            high: unscaled(self.high),
            low: unscaled(self.low),
            close: unscaled(self.close),
            volume: self.volume,
            amount: self.amount,
        }
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct SeriesRow {
    pub(crate) code: String,
    pub(crate) period: String,
    pub(crate) adjust: String,
    pub(crate) version: u64,
    pub(crate) count: u64,
    pub(crate) first: u32,
    pub(crate) last: u32,
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct AssetDbRow {
    pub(crate) account: String,
    pub(crate) book: String,
    pub(crate) date: u16,
    pub(crate) asset: f64,
    pub(crate) version: u64,
}

impl AssetDbRow {
    pub(crate) fn row(&self) -> AssetRow {
        AssetRow { date: from_days(self.date), asset: self.asset }
    }
}

#[derive(Debug, Clone, Row, Serialize, Deserialize)]
pub(crate) struct LogRow {
    pub(crate) ts: u32,
    pub(crate) level: String,
    pub(crate) component: String,
    pub(crate) message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_roundtrip_exactly() {
        for p in [11.23, 0.001, 215.5, 3456.789, 0.0, 99999.999, 1e-6, 10.29 - 1e-12] {
            let back = unscaled(scaled("p", p).unwrap());
            assert_eq!(back, (p * 1e6).round() / 1e6, "{p}");
        }
        assert_eq!(unscaled(scaled("p", 11.23).unwrap()), 11.23);
        let d = NaiveDate::from_ymd_opt(2025, 10, 10).unwrap();
        assert_eq!(from_days(days(d)), d);
    }
}
