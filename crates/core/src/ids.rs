//! Account and book identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: impl AsRef<str>) -> Result<Self> {
                let s = s.as_ref();
                let check: fn(&str) -> std::result::Result<(), &'static str> = $check;
                check(s).map_err(|reason| Error::invalid($field, s, reason))?;
                Ok($name(s.to_owned()))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                $name::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

// Both names end up as file-path components, Redis key parts and SQL values,
// so they are restricted to a safe alphabet.
fn check_account(s: &str) -> std::result::Result<(), &'static str> {
    if s.is_empty() || s.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("must start with a letter or digit");
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err("may contain only ASCII letters, digits, '_' and '-'");
    }
    Ok(())
}

fn check_book(s: &str) -> std::result::Result<(), &'static str> {
    if s.is_empty() || s.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("must start with a letter or digit ('_' and '.' prefixes are reserved)");
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') {
        return Err("may contain only ASCII letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

name_type!(
    /// A broker account id, e.g. `55009728` (QMT) or a GM UUID.
    AccountCode,
    "account",
    check_account
);

name_type!(
    /// The name of one strategy's state inside an account, e.g. `prod_pwc`
    /// (SilverQuant's cache folder name).
    BookName,
    "book",
    check_book
);

/// The namespace of one strategy's state inside one account. Every position,
/// deal and asset row belongs to exactly one book; books never see each other.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BookId {
    /// The broker account.
    pub account: AccountCode,
    /// The book inside it.
    pub book: BookName,
}

impl BookId {
    /// Validates both parts.
    pub fn new(account: impl AsRef<str>, book: impl AsRef<str>) -> Result<BookId> {
        Ok(BookId { account: AccountCode::new(account)?, book: BookName::new(book)? })
    }
}

impl fmt::Display for BookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.account, self.book)
    }
}

impl fmt::Debug for BookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BookId({}/{})", self.account, self.book)
    }
}

impl FromStr for BookId {
    type Err = Error;
    /// Parses `account/book`.
    fn from_str(s: &str) -> Result<BookId> {
        let (a, b) = s.split_once('/').ok_or_else(|| Error::invalid("book", s, "expected account/book"))?;
        BookId::new(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_ids() {
        BookId::new("55009728", "prod_pwc").unwrap();
        BookId::new("2b0f4c4e-8a7d-11ee-b9d1-0242ac120002", "test_pwc").unwrap();
        assert_eq!("55009728/prod_pwc".parse::<BookId>().unwrap().to_string(), "55009728/prod_pwc");
    }

    #[test]
    fn rejects_path_tricks() {
        for b in ["", "..", ".hidden", "_daily_mootdx", "a/b", "a b", "书"] {
            let e = BookName::new(b).unwrap_err();
            assert!(e.to_string().contains("book"), "{e}");
        }
        for a in ["", "-x", "a.b", "a/b"] {
            assert!(AccountCode::new(a).is_err(), "{a}");
        }
    }
}
