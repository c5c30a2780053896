//! [`Domain`]: the closed set of trading domains a store serves.
//!
//! Names for configuration, logs, metrics, journals and reports all come from
//! here (`as_str`), so a typo does not compile and a new domain shows up in
//! every match that must handle it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A trading domain: one store trait of [`Stores`](crate::Stores) each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Domain {
    /// Hot position state ([`PositionStore`](crate::PositionStore)).
    Positions,
    /// Latest quotes ([`QuoteStore`](crate::QuoteStore)).
    Quotes,
    /// Deals ([`DealStore`](crate::DealStore)).
    Deals,
    /// The equity curve ([`AssetStore`](crate::AssetStore)).
    Assets,
    /// K-lines ([`BarStore`](crate::BarStore)).
    Bars,
}

impl Domain {
    /// Every domain, in the order reports list them.
    pub const ALL: [Domain; 5] = [Domain::Positions, Domain::Quotes, Domain::Deals, Domain::Assets, Domain::Bars];

    /// The domains `verify`, `migrate` and backups compare and copy: every
    /// domain but quotes, which live seconds.
    pub const DURABLE: [Domain; 4] = [Domain::Positions, Domain::Deals, Domain::Assets, Domain::Bars];

    /// The name, as in configuration, metrics and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Domain::Positions => "positions",
            Domain::Quotes => "quotes",
            Domain::Deals => "deals",
            Domain::Assets => "assets",
            Domain::Bars => "bars",
        }
    }

    /// A dense index (0..5), for per-domain arrays.
    pub const fn index(self) -> usize {
        match self {
            Domain::Positions => 0,
            Domain::Quotes => 1,
            Domain::Deals => 2,
            Domain::Assets => 3,
            Domain::Bars => 4,
        }
    }

    /// Whether its records belong to a book (positions, deals, assets);
    /// quotes and bars are market-wide.
    pub const fn per_book(self) -> bool {
        matches!(self, Domain::Positions | Domain::Deals | Domain::Assets)
    }

    /// Whether it is kept (not a few seconds' cache): every domain but quotes.
    pub const fn durable(self) -> bool {
        !matches!(self, Domain::Quotes)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Domain {
    type Err = Error;

    fn from_str(s: &str) -> Result<Domain, Error> {
        Domain::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| Error::invalid("domain", s, "expected positions, quotes, deals, assets or bars"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_indexes_are_dense() {
        for (i, d) in Domain::ALL.into_iter().enumerate() {
            assert_eq!(d.index(), i);
            assert_eq!(d.as_str().parse::<Domain>().unwrap(), d);
            assert_eq!(serde_json::to_value(d).unwrap(), serde_json::json!(d.as_str()));
        }
        assert!("position".parse::<Domain>().is_err());
        assert_eq!(Domain::DURABLE.to_vec(), Domain::ALL.into_iter().filter(|d| d.durable()).collect::<Vec<_>>());
    }
}
