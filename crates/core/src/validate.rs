//! Validation helpers shared by every boundary: prices, volumes, dates.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::error::{Error, Result};

/// Checks that a price is a finite, non-negative number.
pub fn price(field: &str, v: f64) -> Result<f64> {
    if !v.is_finite() {
        return Err(Error::invalid(field, v, "must be a finite number"));
    }
    if v < 0.0 {
        return Err(Error::invalid(field, v, "must not be negative"));
    }
    Ok(v)
}

/// Checks that an amount is finite (it may be negative for fees or refunds).
pub fn finite(field: &str, v: f64) -> Result<f64> {
    if !v.is_finite() {
        return Err(Error::invalid(field, v, "must be a finite number"));
    }
    Ok(v)
}

/// Rounds to three decimals the way SilverQuant's `round(x, 3)` does
/// (correctly rounded from the exact binary value).
pub fn round3(v: f64) -> f64 {
    if !v.is_finite() {
        return v;
    }
    // Fast path (the sell loop rounds every tick's high and low): v * 1000
    // is off the exact product by half an ulp at most, so unless it lies
    // within a hair of a half its nearest integer n is the correct decimal
    // rounding, and n / 1000 (one correctly rounded division, n exact) is
    // the double nearest to that decimal: what parsing the formatted text
    // gives. Near a half, or too large for exact integers, format and parse.
    // Below 1e12 half an ulp of x is under 1e-4: a margin of 1e-3 around
    // the half is safe.
    let x = v * 1000.0;
    if x.abs() < 1.0e12 {
        let frac = (x - x.trunc()).abs();
        if (frac - 0.5).abs() > 1e-3 {
            return x.round() / 1000.0;
        }
    }
    let s = format!("{v:.3}");
    s.parse().unwrap_or(v)
}

#[cfg(test)]
mod round3_tests {
    use super::round3;
    use proptest::prelude::*;

    fn slow(v: f64) -> f64 {
        format!("{v:.3}").parse().unwrap_or(v)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn the_fast_path_equals_format_and_parse(v in prop_oneof![
            0.0f64..1.0e7,
            (0u64..10_000_000_000u64).prop_map(|n| n as f64 / 10_000.0),
            (0u64..100_000_000u64).prop_map(|n| n as f64 / 1000.0 + 0.0005),
            any::<f64>(),
        ]) {
            prop_assert_eq!(round3(v).to_bits(), slow(v).to_bits(), "{}", v);
        }
    }

    #[test]
    fn halves_and_edges() {
        for v in [0.0005, 1.0005, 2.675, 1.2345, 12.3455, 0.0, -0.0, 9_999_999.999_5, 4.0e12 + 0.0005, 1e300, -3.0005] {
            assert_eq!(round3(v).to_bits(), slow(v).to_bits(), "{v}");
        }
    }
}

/// Parses a non-negative integer volume; floats with no fractional part
/// (`800.0`, as pandas writes them) are accepted, overflow is an error.
pub fn volume(field: &str, s: &str) -> Result<u64> {
    let t = s.trim();
    if let Ok(v) = t.parse::<u64>() {
        return Ok(v);
    }
    if t.starts_with('-') {
        return Err(Error::invalid(field, s, "must not be negative"));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
        return Err(Error::invalid(field, s, "does not fit in 64 bits"));
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(f as u64),
        Ok(f) if f.is_finite() && f >= 1.8e19 => Err(Error::invalid(field, s, "does not fit in 64 bits")),
        Ok(f) if f < 0.0 => Err(Error::invalid(field, s, "must not be negative")),
        _ => Err(Error::invalid(field, s, "expected a whole number")),
    }
}

/// Parses a number field.
pub fn number(field: &str, s: &str) -> Result<f64> {
    s.trim().parse::<f64>().map_err(|_| Error::invalid(field, s, "expected a number"))
}

/// Parses a date in `YYYY-MM-DD` or `YYYYMMDD`; impossible dates are errors.
pub fn date(field: &str, s: &str) -> Result<NaiveDate> {
    let t = s.trim();
    let parsed = if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
        NaiveDate::parse_from_str(t, "%Y%m%d")
    } else {
        NaiveDate::parse_from_str(t, "%Y-%m-%d")
    };
    let d = parsed.map_err(|_| Error::invalid(field, s, "expected a real date as YYYY-MM-DD or YYYYMMDD"))?;
    check_year(field, s, d)
}

/// Parses `HH:MM:SS`.
pub fn time(field: &str, s: &str) -> Result<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M:%S")
        .map_err(|_| Error::invalid(field, s, "expected a real time as HH:MM:SS"))
}

/// Parses `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS` or a date alone (midnight).
pub fn datetime(field: &str, s: &str) -> Result<NaiveDateTime> {
    let t = s.trim();
    for fmt in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
            check_year(field, s, dt.date())?;
            return Ok(dt);
        }
    }
    date(field, s).map(|d| d.and_time(NaiveTime::MIN))
}

/// `from` must not be after `to` (either may be open).
pub fn ordered<T: PartialOrd + std::fmt::Display>(from: Option<T>, to: Option<T>) -> Result<()> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        let reason = format!("is after to {t}");
        return Err(Error::invalid("from", f, reason));
    }
    Ok(())
}

/// The last year every backend stores exactly (ClickHouse's `DateTime`
/// ends in February 2106, its `Date` in 2149).
pub const MAX_YEAR: i32 = 2105;

/// Dates outside 1990 (the first A-share trading year) to [`MAX_YEAR`] are
/// typos — and past it a backend would clamp them silently.
pub fn check_year(field: &str, s: &str, d: NaiveDate) -> Result<NaiveDate> {
    use chrono::Datelike;
    if !(1990..=MAX_YEAR).contains(&d.year()) {
        return Err(Error::invalid(field, s, "year must be between 1990 and 2105"));
    }
    Ok(d)
}

/// A batch for one book: every deal valid, of `book`, its id once.
pub fn deals_of_book(book: &crate::BookId, deals: &[crate::Deal]) -> Result<()> {
    let mut seen = std::collections::HashSet::with_capacity(deals.len());
    for d in deals {
        d.validate()?;
        if &d.book != book {
            return Err(Error::invalid("deal.book", &d.book, format!("the batch is for book {book}")));
        }
        if !seen.insert(d.id.as_str()) {
            return Err(Error::invalid("deal.id", &d.id, "appears twice in the batch"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        assert!(price("price", 11.23).is_ok());
        assert!(price("price", 0.0).is_ok());
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.01] {
            let e = price("price", v).unwrap_err();
            assert!(e.to_string().starts_with("invalid price"), "{e}");
        }
    }

    #[test]
    fn rounding_matches_python() {
        // Values checked against CPython 3.11's round(x, 3): 10.0005 is
        // 10.00050000000000061107 in binary, so it rounds up.
        assert_eq!(round3(10.0005), 10.001);
        assert_eq!(round3(11.2345), 11.235);
        assert_eq!(round3(11.23), 11.23);
        assert_eq!(round3(2.675), 2.675);
        assert_eq!(round3(1.00049999), 1.0);
        assert_eq!(round3(1.0005001), 1.001);
    }

    #[test]
    fn volumes() {
        assert_eq!(volume("volume", "800").unwrap(), 800);
        assert_eq!(volume("volume", "800.0").unwrap(), 800);
        assert!(volume("volume", "-1").is_err());
        assert!(volume("volume", "99999999999999999999999").unwrap_err().to_string().contains("64 bits"));
        assert!(volume("volume", "1.5").is_err());
        assert!(volume("volume", "abc").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(date("date", "2025-10-10").unwrap().to_string(), "2025-10-10");
        assert_eq!(date("date", "20251010").unwrap().to_string(), "2025-10-10");
        for s in ["2025-02-30", "2025-13-01", "20250230", "1899-01-01", "2025/10/10", ""] {
            let e = date("date", s).unwrap_err();
            assert!(e.to_string().starts_with("invalid date"), "{e}");
        }
        assert!(datetime("time", "2025-10-10 14:50:03").is_ok());
        assert!(datetime("time", "2025-10-10 25:50:03").is_err());
    }
}
