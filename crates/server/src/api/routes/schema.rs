//! One definition per kind of value the API takes — account ids, book
//! names, user names, API key ids, stock codes, days, times, timestamps,
//! the closed vocabularies (roles, rights, deal kinds, periods, …) and the
//! free-text rules — each as the schema the OpenAPI document states *and*
//! the check the handlers run, written side by side so the two say the
//! same thing: a value the schema allows passes its check, one it rules
//! out is refused with 400 naming the field. The patterns are exactly the
//! core's validators (`AccountCode`, `BookName`, `validate_user_name`,
//! `Code::parse_field`, the years of `validate::check_year`), minus the
//! leniencies the API does not offer (surrounding blanks, `YYYYMMDD`).
//!
//! What a schema cannot say — a UTF-8 byte budget beyond the character
//! count, `from` after `to`, a name that does not exist — is checked by
//! the handlers and answered 422 (or 404/409), never 400.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::json;
use sqdata::{AccountCode, BookName, Code};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::api::reply::ApiError;

/// A real day `YYYY-MM-DD` of 1990 to 2105, leap days included (2100 is no
/// leap year).
macro_rules! day_re {
    () => {
        concat!(
            "(?:(?:199[0-9]|20[0-9]{2}|210[0-5])-",
            "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)",
            "|02-(?:0[1-9]|1[0-9]|2[0-8]))",
            "|(?:199[26]|20(?:[02468][048]|[13579][26])|2104)-02-29)"
        )
    };
}

/// `HH:MM:SS`, 00:00:00 to 23:59:59.
macro_rules! clock_re {
    () => {
        "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    };
}

/// A market, any case: SH, SZ, BJ.
macro_rules! market_re {
    () => {
        "(?:[Ss][HhZz]|[Bb][Jj])"
    };
}

/// `AccountCode`: 1 to 64 ASCII letters, digits, `_`, `-`, starting with a letter or digit.
pub const ACCOUNT: &str = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$";
/// `BookName`: 1 to 64 ASCII letters, digits, `_`, `-`, `.`, starting with a letter or digit.
pub const BOOK: &str = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$";
/// `validate_user_name`: 3 to 64 of letters, digits, `_ . @ -`, starting with a letter or digit.
pub const USER: &str = "^[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}$";
/// An API key id: 8 to 32 ASCII letters and digits.
pub const KEY_ID: &str = "^[A-Za-z0-9]{8,32}$";
/// `Code::parse_field`: `000001.SZ`, `SZ000001` or a bare six digits whose first digit names the market.
pub const CODE: &str = concat!("^(?:[0234689][0-9]{5}|", market_re!(), "[0-9]{6}|[0-9]{6}\\.", market_re!(), ")$");
/// A day.
pub const DAY: &str = concat!("^", day_re!(), "$");
/// A day and a time of day.
pub const TIME: &str = concat!("^", day_re!(), " ", clock_re!(), "$");
/// A day, or a day and a time of day.
pub const DAY_OR_TIME: &str = concat!("^", day_re!(), "(?: ", clock_re!(), ")?$");

/// No control character (Unicode `Cc`).
const NO_CONTROLS: &str = "^[^\\x00-\\x1F\\x7F-\\x9F]*$";
/// No control character but tab and line feed.
const NO_CONTROLS_BUT_TAB_LF: &str = "^[^\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F]*$";
/// No control character, and something besides white space.
const NON_BLANK: &str = concat!(
    "^[^\\x00-\\x1F\\x7F-\\x9F]*",
    "[^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]",
    "[^\\x00-\\x1F\\x7F-\\x9F]*$"
);

fn string(description: &str, pattern: Option<&str>, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(pattern)
        .examples([json!(example)])
}

fn choice(description: &str, values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).enum_values(Some(values.to_vec()))
}

/// A marker type whose OpenAPI schema is `$body` (a component, referenced
/// by `value_type = …` and `params(("x" = Marker, …))`).
macro_rules! schema {
    ($(#[$doc:meta])* $name:ident => $body:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $body.into()
            }
        }
        impl ToSchema for $name {}
    };
}

schema!(
    /// An account id.
    AccountId => string("A broker account id (`AccountCode`).", Some(ACCOUNT), "55009728").min_length(Some(1)).max_length(Some(64))
);
schema!(
    /// A book name.
    BookId => string("A book (strategy) name inside an account (`BookName`).", Some(BOOK), "prod_pwc").min_length(Some(1)).max_length(Some(64))
);
schema!(
    /// A user name.
    UserName => string("A user name.", Some(USER), "trader").min_length(Some(3)).max_length(Some(64))
);
schema!(
    /// An API key id.
    ApiKeyId => string("The public id of an API key (the `<id>` of `sqk_<id>_<secret>`).", Some(KEY_ID), "Gydm7XoXddyh")
        .min_length(Some(8))
        .max_length(Some(32))
);
schema!(
    /// A stock code.
    StockCode => string("A code: `000001.SZ`, `SZ000001` (any case) or six digits whose first digit implies the market.", Some(CODE), "000001.SZ")
        .min_length(Some(6))
        .max_length(Some(9))
);
schema!(
    /// A day.
    Day => string("A day, `YYYY-MM-DD`, 1990 to 2105.", Some(DAY), "2025-01-02").format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
);
schema!(
    /// A time.
    Time => string("Exchange time `YYYY-MM-DD HH:MM:SS` (Asia/Shanghai), 1990 to 2105.", Some(TIME), "2025-01-02 09:31:00")
);
schema!(
    /// A day or a time.
    DayOrTime => string("`YYYY-MM-DD` (midnight) or `YYYY-MM-DD HH:MM:SS`, 1990 to 2105.", Some(DAY_OR_TIME), "2025-01-02")
);
schema!(
    /// A timestamp.
    Timestamp => string("An RFC 3339 date-time.", None, "2026-01-01T00:00:00Z").format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
);
schema!(
    /// An `If-Match` header.
    IfMatch => string(
        "`*`, or the `ETag` of the version edited (`\"v3\"`, weak or not). Any other value names no \
         version: the precondition fails (412), as when another version was stored since.",
        None,
        "\"v2\""
    )
);
schema!(
    /// A version of a strategy's parameters.
    Version => ObjectBuilder::new()
        .schema_type(Type::Integer)
        .description(Some("A parameter version: 1, 2, …"))
        .minimum(Some(1))
        .maximum(Some(u32::MAX))
);
schema!(
    /// A role.
    RoleName => choice("A role.", &["admin", "trader", "viewer"])
);
schema!(
    /// A user status.
    StatusName => choice("A user's status.", &["active", "disabled"])
);
schema!(
    /// A right.
    RightName => choice("A right on an account.", &["read", "write"])
);
schema!(
    /// A deal kind.
    DealKindName => choice("A deal kind: SilverQuant's label or its ASCII name.", &DEAL_KINDS)
);
schema!(
    /// How a caller authenticated.
    ViaName => choice("How the caller authenticated: an access token or an API key.", &["token", "key"])
);
schema!(
    /// How deals are totalled.
    AggregateByName => choice("Totals per day or per month.", &["day", "month"])
);
schema!(
    /// How deals are exported.
    ExportFormat => choice("NDJSON or CSV.", &["ndjson", "csv"])
);
schema!(
    /// How bars are laid out.
    Layout => choice("Rows (one object a bar) or columns (one array a field).", &["rows", "columns"])
);
schema!(
    /// A bar period.
    PeriodName => choice("A bar period.", &["1m", "5m", "15m", "30m", "60m", "1d", "1w"])
);
schema!(
    /// A price adjustment.
    AdjustName => choice("A price adjustment.", &["none", "qfq", "hfq"])
);
schema!(
    /// A price.
    Price => ObjectBuilder::new()
        .schema_type(Type::Number)
        .description(Some("A price, 0 to 1e7."))
        .minimum(Some(0))
        .maximum(Some(sqdata::position::MAX_TICK_PRICE))
);

/// Every spelling of a deal kind (`DealKind::from_str`, without trimming).
pub const DEAL_KINDS: [&str; 16] = [
    "市买委托",
    "限买委托",
    "市卖委托",
    "限卖委托",
    "买入成交",
    "卖出成交",
    "撤单",
    "废单",
    "market_buy",
    "limit_buy",
    "market_sell",
    "limit_sell",
    "buy_fill",
    "sell_fill",
    "cancel",
    "rejected",
];

/// Which characters free text may hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Chars {
    /// Anything.
    Any,
    /// No control character (`char::is_control`).
    NoControls,
    /// No control character but `\t` and `\n`.
    NoControlsButTabLf,
    /// No control character, and not only white space.
    NonBlank,
}

/// A free-text rule: characters (what JSON Schema counts), and the UTF-8
/// bytes the store allows when it counts those instead (checked apart:
/// 422, the schema cannot say it).
#[derive(Debug, Clone, Copy)]
pub struct Text {
    /// Fewest characters.
    pub min: usize,
    /// Most characters.
    pub max: usize,
    /// Most bytes of UTF-8, when the store counts bytes.
    pub bytes: Option<usize>,
    /// Which characters.
    pub chars: Chars,
}

impl Text {
    /// The schema of this rule.
    pub fn schema(&self, description: &str) -> ObjectBuilder {
        let pattern = match self.chars {
            Chars::Any => None,
            Chars::NoControls => Some(NO_CONTROLS),
            Chars::NoControlsButTabLf => Some(NO_CONTROLS_BUT_TAB_LF),
            Chars::NonBlank => Some(NON_BLANK),
        };
        let description = match self.bytes {
            Some(b) => format!("{description} At most {b} bytes of UTF-8 (more: 422)."),
            None => description.to_string(),
        };
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
            .pattern(pattern)
            .min_length((self.min > 0).then_some(self.min))
            .max_length(Some(self.max))
    }

    /// Checks `s`: 400 for what the schema rules out, 422 for the byte budget.
    pub fn check(&self, field: &str, s: &str) -> Result<(), ApiError> {
        let n = s.chars().count();
        if n < self.min || n > self.max {
            return Err(ApiError::bad(field, format!("invalid {field}: {} to {} characters", self.min, self.max)));
        }
        let ok = match self.chars {
            Chars::Any => true,
            Chars::NoControls => !s.chars().any(char::is_control),
            Chars::NoControlsButTabLf => !s.chars().any(|c| c.is_control() && c != '\t' && c != '\n'),
            Chars::NonBlank => !s.chars().any(char::is_control) && !s.trim().is_empty(),
        };
        if !ok {
            let what = if self.chars == Chars::NonBlank { "is blank or has" } else { "has" };
            return Err(ApiError::bad(field, format!("invalid {field}: {what} control characters")));
        }
        if let Some(b) = self.bytes
            && s.len() > b
        {
            return Err(ApiError::unprocessable(field, format!("{field} is longer than {b} bytes of UTF-8")));
        }
        Ok(())
    }
}

/// A free-text kind: its rule and its schema, one component each.
macro_rules! text {
    ($(#[$doc:meta])* $name:ident = $rule:expr, $desc:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;
        impl $name {
            /// The rule.
            pub const RULE: Text = $rule;
            /// Checks a value of this kind.
            pub fn check(field: &str, s: &str) -> Result<(), ApiError> {
                Self::RULE.check(field, s)
            }
        }
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                Self::RULE.schema($desc).into()
            }
        }
        impl ToSchema for $name {}
    };
}

const fn rule(min: usize, max: usize, bytes: Option<usize>, chars: Chars) -> Text {
    Text { min, max, bytes, chars }
}

text!(/// A deal id (`Deal::validate`).
    DealId = rule(1, 128, None, Chars::NonBlank), "A deal's unique id: not blank, no control characters.");
text!(/// A security's name on a deal.
    DealName = rule(0, 64, None, Chars::NoControls), "A security's name (no control characters).");
text!(/// A deal's remark.
    DealRemark = rule(0, 256, None, Chars::NoControls), "A remark (no control characters).");
text!(/// The strategy of a deal.
    DealStrategy = rule(0, 64, None, Chars::NoControls), "The strategy that placed it (no control characters).");
text!(/// An account's display name.
    AccountName = rule(0, 128, Some(128), Chars::NoControlsButTabLf), "Display name (no control characters but tab and line feed).");
text!(/// An account's broker.
    BrokerName = rule(0, 64, Some(64), Chars::NoControlsButTabLf), "Broker / gateway (no control characters but tab and line feed).");
text!(/// A strategy's description.
    StrategyDescription = rule(0, 4096, Some(4096), Chars::NoControlsButTabLf), "Description (no control characters but tab and line feed).");
text!(/// A strategy's type.
    StrategyKind = rule(0, 64, Some(64), Chars::NoControlsButTabLf), "Type (no control characters but tab and line feed).");
text!(/// Why parameters changed.
    ParamsNote = rule(0, 1024, Some(1024), Chars::Any), "Why.");
text!(/// An API key's label.
    KeyLabel = rule(1, 128, Some(128), Chars::NoControls), "What the key is for (no control characters).");
text!(/// A new password.
    NewPassword = rule(12, 256, None, Chars::Any), "A password: 12 to 256 characters.");
text!(/// A password presented to sign in.
    PresentedPassword = rule(0, 1024, None, Chars::Any), "A password as presented (at most 1024 characters).");

// ---- the checks ------------------------------------------------------------

/// An account id (400 naming `field`).
pub fn account(field: &str, s: &str) -> Result<AccountCode, ApiError> {
    AccountCode::new(s).map_err(|e| ApiError::bad(field, e.to_string().replacen("account", field, 1)))
}

/// A book name.
pub fn book(field: &str, s: &str) -> Result<BookName, ApiError> {
    BookName::new(s).map_err(|e| ApiError::bad(field, e.to_string().replacen("book", field, 1)))
}

/// A user name.
pub fn user(field: &str, s: &str) -> Result<(), ApiError> {
    sqdata::validate_user_name(s).map_err(|e| ApiError::bad(field, e.to_string().replacen("user", field, 1)))
}

/// An API key id.
pub fn key_id(field: &str, s: &str) -> Result<(), ApiError> {
    if (8..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        Err(ApiError::bad(field, format!("invalid {field}: 8 to 32 ASCII letters and digits")))
    }
}

/// A stock code, exactly as [`CODE`] spells it (no surrounding blanks).
pub fn code(field: &str, s: &str) -> Result<Code, ApiError> {
    let b = s.as_bytes();
    let digits = |x: &[u8]| x.len() == 6 && x.iter().all(u8::is_ascii_digit);
    let market = |x: &[u8]| matches!(x, [b'S' | b's', b'H' | b'h' | b'Z' | b'z'] | [b'B' | b'b', b'J' | b'j']);
    let shaped = match b.len() {
        6 => digits(b) && matches!(b[0], b'0' | b'2' | b'3' | b'4' | b'6' | b'8' | b'9'),
        8 => market(&b[..2]) && digits(&b[2..]),
        9 => digits(&b[..6]) && b[6] == b'.' && market(&b[7..]),
        _ => false,
    };
    if !shaped {
        return Err(ApiError::bad(
            field,
            format!("invalid {field}: expected a code like 000001.SZ, SZ000001 or 000001"),
        ));
    }
    Code::parse_field(field, s).map_err(|e| ApiError::bad(field, e.to_string()))
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// A day, exactly `YYYY-MM-DD`, real, 1990 to 2105.
pub fn day(field: &str, s: &str) -> Result<NaiveDate, ApiError> {
    let bad = || ApiError::bad(field, format!("invalid {field}: expected a real day YYYY-MM-DD of 1990 to 2105"));
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (y, m, d) = (digits(&s[..4]), digits(&s[5..7]), digits(&s[8..10]));
    let date = match (y, m, d) {
        (Some(y), Some(m), Some(d)) => NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if !(1990..=sqdata::validate::MAX_YEAR).contains(&date.year()) {
        return Err(bad());
    }
    Ok(date)
}

fn clock(s: &str) -> Option<NaiveTime> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&s[..2])?, digits(&s[3..5])?, digits(&s[6..8])?);
    (h < 24 && m < 60 && sec < 60).then(|| NaiveTime::from_hms_opt(h, m, sec)).flatten()
}

/// A time, exactly `YYYY-MM-DD HH:MM:SS`.
pub fn time(field: &str, s: &str) -> Result<NaiveDateTime, ApiError> {
    let bad = || ApiError::bad(field, format!("invalid {field}: expected YYYY-MM-DD HH:MM:SS of 1990 to 2105"));
    if s.len() != 19 || !s.is_char_boundary(10) || s.as_bytes()[10] != b' ' {
        return Err(bad());
    }
    let d = day(field, &s[..10]).map_err(|_| bad())?;
    Ok(d.and_time(clock(&s[11..]).ok_or_else(bad)?))
}

/// A day (midnight) or a time.
pub fn day_or_time(field: &str, s: &str) -> Result<NaiveDateTime, ApiError> {
    match s.len() {
        10 => Ok(day(field, s)?.and_time(NaiveTime::MIN)),
        _ => time(field, s).map_err(|_| {
            ApiError::bad(field, format!("invalid {field}: expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS of 1990 to 2105"))
        }),
    }
}

/// An RFC 3339 date-time as JSON Schema's `date-time` reads it: `T`/`Z` in
/// either case, an optional fraction, a leap second only at 23:59 UTC.
pub fn timestamp(field: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    rfc3339(s).ok_or_else(|| ApiError::bad(field, format!("invalid {field}: expected an RFC 3339 date-time")))
}

fn rfc3339(s: &str) -> Option<DateTime<Utc>> {
    if !s.is_ascii() || s.len() < 20 {
        return None;
    }
    let b = s.as_bytes();
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(&s[..4])? as i32, digits(&s[5..7])?, digits(&s[8..10])?)?;
    let (h, m, sec) = (digits(&s[11..13])?, digits(&s[14..16])?, digits(&s[17..19])?);
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let nine: String = f[..n].chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = nine.parse().ok()?;
        rest = &f[n..];
    }
    let offset_min: i64 = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && matches!(o.as_bytes()[0], b'+' | b'-') && o.as_bytes()[3] == b':' => {
            let (oh, om) = (digits(&o[1..3])?, digits(&o[4..6])?);
            if oh > 23 || om > 59 {
                return None;
            }
            let v = i64::from(oh * 60 + om);
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // a leap second is 23:59:60 in UTC
    let utc_minute = (i64::from(h * 60 + m) - offset_min).rem_euclid(24 * 60);
    if sec == 60 && utc_minute != 23 * 60 + 59 {
        return None;
    }
    let t = if sec == 60 {
        NaiveTime::from_hms_nano_opt(h, m, 59, 1_000_000_000 + nanos.min(999_999_999))?
    } else {
        NaiveTime::from_hms_nano_opt(h, m, sec, nanos)?
    };
    let local = date.and_time(t);
    Some(DateTime::from_naive_utc_and_offset(local - chrono::Duration::minutes(offset_min), Utc))
}

/// One of `values`, exactly.
pub fn one_of<'a>(field: &str, s: &str, values: &[&'a str]) -> Result<&'a str, ApiError> {
    values
        .iter()
        .find(|v| **v == s)
        .copied()
        .ok_or_else(|| ApiError::bad(field, format!("invalid {field} {s:?}: expected one of {}", values.join(", "))))
}

/// `from` not after `to` (422 naming `from`: each is a valid value alone).
pub fn ordered<T: PartialOrd + std::fmt::Display>(from: Option<T>, to: Option<T>) -> Result<(), ApiError> {
    match (from, to) {
        (Some(f), Some(t)) if f > t => Err(ApiError::unprocessable("from", format!("from {f} is after to {t}"))),
        _ => Ok(()),
    }
}

/// A JSON object small enough to store (`registry::validate_document`):
/// its size in bytes is no schema keyword, so 422.
pub fn document(field: &str, doc: &serde_json::Map<String, serde_json::Value>) -> Result<(), ApiError> {
    sqdata::registry::validate_document(field, doc).map_err(|e| ApiError::unprocessable(field, e.to_string()))
}

/// A whole number as JSON Schema's `integer` reads it: `3665`, and also
/// `3665.0` or `3.665e3` (numbers whose fraction is zero), not below 0.
pub fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    use serde::Deserialize;
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && (0.0..1.8e19).contains(f)).map(|f| f as u64))
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number of at least 0, got {n}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value with what the served document's schema says of it
    /// (computed with jsonschema-rs, the validator Schemathesis uses): the
    /// check must say the same.
    #[test]
    fn the_checks_agree_with_the_schemas() {
        let cases: Vec<(&str, String, bool)> = vec![
            ("AccountId", "55009728".to_string(), true),
            ("AccountId", "a".to_string(), true),
            ("AccountId", "A-_9".to_string(), true),
            ("AccountId", "-a".to_string(), false),
            ("AccountId", "_a".to_string(), false),
            ("AccountId", "a.b".to_string(), false),
            ("AccountId", "a".repeat(64), true),
            ("AccountId", "a".repeat(65), false),
            ("AccountId", "".to_string(), false),
            ("AccountId", "a b".to_string(), false),
            ("AccountId", "\u{e4}".to_string(), false),
            ("AccountId", "2b0f4c4e-8a7d-11ee-b9d1-0242ac120002".to_string(), true),
            ("AccountId", "a\u{a}".to_string(), false),
            ("BookId", "prod_pwc".to_string(), true),
            ("BookId", ".x".to_string(), false),
            ("BookId", "_x".to_string(), false),
            ("BookId", "a.b-c_d".to_string(), true),
            ("BookId", "a".repeat(64), true),
            ("BookId", "a".repeat(65), false),
            ("BookId", "".to_string(), false),
            ("BookId", "a/b".to_string(), false),
            ("BookId", "\u{4e66}".to_string(), false),
            ("BookId", "0".to_string(), true),
            ("UserName", "trader".to_string(), true),
            ("UserName", "ab".to_string(), false),
            ("UserName", "abc".to_string(), true),
            ("UserName", "a@b.c".to_string(), true),
            ("UserName", "-ab".to_string(), false),
            ("UserName", "a".repeat(64), true),
            ("UserName", "a".repeat(65), false),
            ("UserName", "ab c".to_string(), false),
            ("UserName", "000".to_string(), true),
            ("UserName", ".ab".to_string(), false),
            ("ApiKeyId", "Gydm7XoXddyh".to_string(), true),
            ("ApiKeyId", "abcdefg".to_string(), false),
            ("ApiKeyId", "abcdefgh".to_string(), true),
            ("ApiKeyId", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string(), true),
            ("ApiKeyId", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string(), false),
            ("ApiKeyId", "abc_defgh".to_string(), false),
            ("ApiKeyId", "admin".to_string(), false),
            ("StockCode", "000001.SZ".to_string(), true),
            ("StockCode", "000001.sz".to_string(), true),
            ("StockCode", "SZ000001".to_string(), true),
            ("StockCode", "sz000001".to_string(), true),
            ("StockCode", "000001".to_string(), true),
            ("StockCode", "600000".to_string(), true),
            ("StockCode", "100000".to_string(), false),
            ("StockCode", "500000".to_string(), false),
            ("StockCode", "700000".to_string(), false),
            ("StockCode", "430047.BJ".to_string(), true),
            ("StockCode", "bj430047".to_string(), true),
            ("StockCode", "000001.SH".to_string(), true),
            ("StockCode", "0000001".to_string(), false),
            ("StockCode", "000001.XX".to_string(), false),
            ("StockCode", "XX000001".to_string(), false),
            ("StockCode", "00000a".to_string(), false),
            ("StockCode", "000001.S".to_string(), false),
            ("StockCode", "SZ00001".to_string(), false),
            ("StockCode", "000001SZ".to_string(), false),
            ("StockCode", " 000001".to_string(), false),
            ("StockCode", "000001 ".to_string(), false),
            ("StockCode", "\u{ff10}\u{ff10}\u{ff10}\u{ff10}\u{ff10}\u{ff11}".to_string(), false),
            ("StockCode", "000001.Sz".to_string(), true),
            ("StockCode", "sH600000".to_string(), true),
            ("StockCode", "000001,SZ".to_string(), false),
            ("Day", "2025-01-02".to_string(), true),
            ("Day", "2025-02-29".to_string(), false),
            ("Day", "2024-02-29".to_string(), true),
            ("Day", "2000-02-29".to_string(), true),
            ("Day", "2100-02-29".to_string(), false),
            ("Day", "1989-12-31".to_string(), false),
            ("Day", "1990-01-01".to_string(), true),
            ("Day", "2105-12-31".to_string(), true),
            ("Day", "2106-01-01".to_string(), false),
            ("Day", "20250102".to_string(), false),
            ("Day", "2025-1-02".to_string(), false),
            ("Day", "2025-01-02 ".to_string(), false),
            ("Day", "2025-13-01".to_string(), false),
            ("Day", "2025-04-31".to_string(), false),
            ("Day", "0000-01-01".to_string(), false),
            ("Time", "2025-01-02 09:31:00".to_string(), true),
            ("Time", "2025-01-02 23:59:59".to_string(), true),
            ("Time", "2025-01-02 24:00:00".to_string(), false),
            ("Time", "2025-01-02 09:60:00".to_string(), false),
            ("Time", "2025-01-02 09:31:60".to_string(), false),
            ("Time", "2025-01-02T09:31:00".to_string(), false),
            ("Time", "2025-01-02 9:31:00".to_string(), false),
            ("Time", "2025-01-02".to_string(), false),
            ("Time", "2024-02-29 00:00:00".to_string(), true),
            ("Time", "2025-02-29 00:00:00".to_string(), false),
            ("DayOrTime", "2025-01-02".to_string(), true),
            ("DayOrTime", "2025-01-02 09:31:00".to_string(), true),
            ("DayOrTime", "20250102".to_string(), false),
            ("DayOrTime", "2025-01-02 09:31".to_string(), false),
            ("DayOrTime", "2025-01-02T09:31:00".to_string(), false),
            ("DayOrTime", "2025-01-02 09:31:00 ".to_string(), false),
            ("Timestamp", "2026-01-01T00:00:00Z".to_string(), true),
            ("Timestamp", "2026-01-01t00:00:00z".to_string(), true),
            ("Timestamp", "2026-01-01 00:00:00Z".to_string(), false),
            ("Timestamp", "2026-01-01T00:00:00".to_string(), false),
            ("Timestamp", "2026-01-01T00:00:00.123456789Z".to_string(), true),
            ("Timestamp", "2026-01-01T00:00:00.Z".to_string(), false),
            ("Timestamp", "2026-01-01T00:00:00+08:00".to_string(), true),
            ("Timestamp", "2026-01-01T00:00:00+24:00".to_string(), false),
            ("Timestamp", "2026-01-01T00:00:00-23:59".to_string(), true),
            ("Timestamp", "1998-12-31T23:59:60Z".to_string(), true),
            ("Timestamp", "1998-12-31T15:59:60.5-08:00".to_string(), true),
            ("Timestamp", "1998-12-31T23:58:60Z".to_string(), false),
            ("Timestamp", "2026-02-30T00:00:00Z".to_string(), false),
            ("Timestamp", "0000-01-01T00:00:00Z".to_string(), true),
            ("Timestamp", "9999-12-31T23:59:59+00:00".to_string(), true),
            ("Timestamp", "2026-01-01T24:00:00Z".to_string(), false),
            ("Timestamp", "2026-01-01T00:00:00+0800".to_string(), false),
            ("DealId", "x".to_string(), true),
            ("DealId", " ".to_string(), false),
            ("DealId", "".to_string(), false),
            ("DealId", "  a ".to_string(), true),
            ("DealId", "\u{3000}".to_string(), false),
            ("DealId", "\u{feff}".to_string(), true),
            ("DealId", "a\u{85}".to_string(), false),
            ("DealId", "\u{a0}".to_string(), false),
            ("DealId", "a\u{a0}".to_string(), true),
            ("DealId", "a\u{9}b".to_string(), false),
            ("DealId", "\u{4e2d}".to_string(), true),
            ("DealName", "".to_string(), true),
            ("DealName", "a b".to_string(), true),
            ("DealName", "a\u{9}b".to_string(), false),
            ("DealName", "a\u{7f}".to_string(), false),
            ("DealName", "a\u{9f}".to_string(), false),
            ("DealName", "\u{a0}".to_string(), true),
            ("AccountName", "".to_string(), true),
            ("AccountName", "a\u{9}b\u{a}c".to_string(), true),
            ("AccountName", "a\u{d}b".to_string(), false),
            ("AccountName", "\u{0}".to_string(), false),
        ];
        let mut wrong = Vec::new();
        for (kind, s, valid) in &cases {
            let s = s.as_str();
            let got = match *kind {
                "AccountId" => account("f", s).is_ok(),
                "BookId" => book("f", s).is_ok(),
                "UserName" => user("f", s).is_ok(),
                "ApiKeyId" => key_id("f", s).is_ok(),
                "StockCode" => code("f", s).is_ok(),
                "Day" => day("f", s).is_ok(),
                "Time" => time("f", s).is_ok(),
                "DayOrTime" => day_or_time("f", s).is_ok(),
                "Timestamp" => timestamp("f", s).is_ok(),
                "DealId" => DealId::check("f", s).is_ok(),
                "DealName" => DealName::check("f", s).is_ok(),
                "AccountName" => AccountName::check("f", s).is_ok(),
                other => panic!("no check for {other}"),
            };
            if got != *valid {
                wrong.push(format!("{kind} {s:?}: the schema says {valid}, the check {got}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
