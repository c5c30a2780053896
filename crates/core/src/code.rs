//! Security codes: `000001.SZ`, `600000.SH`, `430047.BJ`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// The exchange a code trades on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Market {
    /// Shanghai Stock Exchange.
    SH,
    /// Shenzhen Stock Exchange.
    SZ,
    /// Beijing Stock Exchange.
    BJ,
}

impl Market {
    /// The two-letter suffix used in canonical codes.
    pub fn as_str(self) -> &'static str {
        match self {
            Market::SH => "SH",
            Market::SZ => "SZ",
            Market::BJ => "BJ",
        }
    }

    fn parse(s: &str) -> Option<Market> {
        match s {
            "SH" | "sh" | "Sh" | "sH" => Some(Market::SH),
            "SZ" | "sz" | "Sz" | "sZ" => Some(Market::SZ),
            "BJ" | "bj" | "Bj" | "bJ" => Some(Market::BJ),
            _ => None,
        }
    }

    /// Infers the market of a bare six-digit code from its first digit
    /// (6/9 → SH, 0/2/3 → SZ, 4/8 → BJ). Other leading digits are ambiguous
    /// (funds and bonds exist on both exchanges) and must carry a suffix.
    fn infer(digits: &[u8; 6]) -> Option<Market> {
        match digits[0] {
            b'6' | b'9' => Some(Market::SH),
            b'0' | b'2' | b'3' => Some(Market::SZ),
            b'4' | b'8' => Some(Market::BJ),
            _ => None,
        }
    }
}

/// A security code in canonical form: six digits and a market, `000001.SZ`.
///
/// `000001.SH` (the SSE Composite index) and `000001.SZ` (Ping An Bank) are
/// different codes. Accepted spellings: `000001.SZ`, `000001.sz`, `SZ000001`,
/// `sz000001` and a bare `000001` whose market is inferred from the first digit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code {
    // Ordering compares digits first, then market: `000001.SH` < `000001.SZ` < `000002.SZ`.
    digits: [u8; 6],
    market: Market,
}

impl Code {
    /// Builds a code from its parts; `digits` must be six ASCII digits.
    pub fn new(digits: &str, market: Market) -> Result<Code> {
        let d = six_digits(digits).ok_or_else(|| Error::invalid("code", digits, "expected six digits"))?;
        Ok(Code { digits: d, market })
    }

    /// Parses and normalises any accepted spelling. The error names the field `code`.
    pub fn parse(s: &str) -> Result<Code> {
        Self::parse_field("code", s)
    }

    /// Like [`Code::parse`], but the error names `field`.
    pub fn parse_field(field: &str, s: &str) -> Result<Code> {
        let t = s.trim();
        let bad = |reason: &str| Error::invalid(field, s, reason);
        if !t.is_ascii() {
            // 上证50, full-width digits: never sliced by bytes below.
            return Err(bad("expected a code like 000001.SZ, SZ000001 or 000001 (ASCII letters and digits)"));
        }
        match t.len() {
            6 => {
                let d = six_digits(t).ok_or_else(|| bad("expected six digits"))?;
                let market = Market::infer(&d).ok_or_else(|| {
                    bad("cannot infer the market from the first digit; write it as 000000.SH or 000000.SZ")
                })?;
                Ok(Code { digits: d, market })
            }
            8 => {
                let (m, d) = t.split_at(2);
                let market = Market::parse(m).ok_or_else(|| bad("expected SH, SZ or BJ before the digits"))?;
                let d = six_digits(d).ok_or_else(|| bad("expected six digits after the market"))?;
                Ok(Code { digits: d, market })
            }
            9 => {
                let (d, m) = t.split_at(6);
                let m = m.strip_prefix('.').ok_or_else(|| bad("expected a '.' between digits and market"))?;
                let market = Market::parse(m).ok_or_else(|| bad("expected .SH, .SZ or .BJ after the digits"))?;
                let d = six_digits(d).ok_or_else(|| bad("expected six digits"))?;
                Ok(Code { digits: d, market })
            }
            _ => Err(bad("expected a code like 000001.SZ, SZ000001 or 000001")),
        }
    }

    /// The market.
    pub fn market(&self) -> Market {
        self.market
    }

    /// The six digits, e.g. `"000001"`.
    pub fn digits(&self) -> &str {
        // Constructed only from ASCII digits.
        std::str::from_utf8(&self.digits).unwrap_or("??????")
    }

    /// The canonical form as an owned string, `000001.SZ`.
    pub fn as_canonical(&self) -> String {
        self.to_string()
    }

    /// The canonical form in a stack buffer (no allocation), for hot paths.
    pub fn to_bytes(&self) -> [u8; 9] {
        let mut b = [0u8; 9];
        b[..6].copy_from_slice(&self.digits);
        b[6] = b'.';
        b[7..].copy_from_slice(self.market.as_str().as_bytes());
        b
    }
}

fn six_digits(s: &str) -> Option<[u8; 6]> {
    let b = s.as_bytes();
    if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut d = [0u8; 6];
    d.copy_from_slice(b);
    Some(d)
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.digits())?;
        f.write_str(".")?;
        f.write_str(self.market.as_str())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({self})")
    }
}

impl FromStr for Code {
    type Err = Error;
    fn from_str(s: &str) -> Result<Code> {
        Code::parse(s)
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let b = self.to_bytes();
        s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Code, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Code::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_every_accepted_spelling() {
        for s in ["000001.SZ", "000001.sz", "SZ000001", "sz000001", "000001", " 000001.SZ "] {
            assert_eq!(Code::parse(s).unwrap().to_string(), "000001.SZ", "{s}");
        }
        assert_eq!(Code::parse("600000").unwrap().to_string(), "600000.SH");
        assert_eq!(Code::parse("900901").unwrap().to_string(), "900901.SH");
        assert_eq!(Code::parse("300750").unwrap().to_string(), "300750.SZ");
        assert_eq!(Code::parse("200001").unwrap().to_string(), "200001.SZ");
        assert_eq!(Code::parse("430047").unwrap().to_string(), "430047.BJ");
        assert_eq!(Code::parse("830799").unwrap().to_string(), "830799.BJ");
        assert_eq!(Code::parse("bj430047").unwrap().to_string(), "430047.BJ");
    }

    #[test]
    fn index_and_bank_are_different_codes() {
        let index = Code::parse("000001.SH").unwrap();
        let bank = Code::parse("000001.SZ").unwrap();
        assert_ne!(index, bank);
        assert_eq!(index.market(), Market::SH);
        assert!(index < bank);
    }

    #[test]
    fn rejects_malformed_codes_naming_the_value() {
        for s in [
            "",
            "00001",
            "0000001",
            "510300",
            "110001",
            "000001.SS",
            "XX000001",
            "00000a.SZ",
            "000001SZ",
            "000001-SZ",
            "中国平安",
        ] {
            let e = Code::parse(s).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("code"), "{msg}");
            assert!(matches!(e, Error::InvalidInput { .. }), "{s}: {e:?}");
        }
        // funds and bonds need an explicit market
        assert_eq!(Code::parse("510300.SH").unwrap().to_string(), "510300.SH");
    }

    #[test]
    fn serde_roundtrip_is_canonical() {
        let c: Code = serde_json::from_str("\"sh600000\"").unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"600000.SH\"");
        assert!(serde_json::from_str::<Code>("\"60000\"").is_err());
    }
}
