//! Property tests: no parser or validator of this crate panics on any input,
//! and every rejection is a typed error naming the field. Bounded by
//! `SQDATA_PROPTEST_CASES` (default 512 cases per property).

use chrono::{NaiveDate, NaiveDateTime};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value;

use crate::validate;
use crate::{
    AccountCode, Adjust, AggregateBy, AggregateQuery, AssetRow, Bar, BarSeries, BookId, BookName, Code, Deal, DealKind,
    DealQuery, DealScope, Domain, Error, Market, Period, PositionSnapshot, PriceTick, Quote, validate_ticks,
};

fn config() -> ProptestConfig {
    let cases = std::env::var("SQDATA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512);
    // Failures are kept as unit tests by hand, not as files next to the source.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// A rejection must be `InvalidInput` naming a field (and `expect`, if given).
fn invalid(e: &Error, expect: Option<&str>) -> Result<(), TestCaseError> {
    match e {
        Error::InvalidInput { field, reason, .. } => {
            prop_assert!(!field.is_empty(), "no field named: {e}");
            prop_assert!(!reason.is_empty(), "no reason given: {e}");
            if let Some(want) = expect {
                prop_assert_eq!(field.as_str(), want);
            }
            Ok(())
        }
        other => Err(TestCaseError::fail(format!("expected InvalidInput, got {other:?}"))),
    }
}

fn check<T>(r: &crate::Result<T>, expect: Option<&str>) -> Result<(), TestCaseError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => invalid(e, expect),
    }
}

// ---- strategies ------------------------------------------------------------

/// Strings near a code: right and wrong lengths, cases, separators, full-width
/// digits, Chinese names, padding; plus anything at all.
fn code_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{6}\\.(SH|SZ|BJ|sh|sz|bj|Sh|sZ|SS|XX)",
        "(SH|SZ|BJ|sh|sz|bj|XX)[0-9]{6}",
        "[0-9]{6}",
        "[ \t]{0,2}[0-9a-z.]{0,10}[ \t\n]{0,2}",
        "[0-9０-９]{5,7}(\\.[SZHB]{2})?",
        "(上证50|中国平安|沪深300|[^\\x00-\\x7f]{1,4})",
        ".{0,10}",
        any::<String>(),
    ]
}

fn market() -> impl Strategy<Value = Market> {
    prop_oneof![Just(Market::SH), Just(Market::SZ), Just(Market::BJ)]
}

fn code() -> impl Strategy<Value = Code> {
    ("[0-9]{6}", market()).prop_map(|(d, m)| Code::new(&d, m).expect("six digits"))
}

fn field_name() -> impl Strategy<Value = String> {
    "[a-z_]{1,12}|代码|成交价"
}

/// Any f64, with the special values made frequent.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
        Just(-f64::MIN_POSITIVE),
        -1e3..1e6f64,
        any::<f64>(),
    ]
}

/// Text near a number: integers, decimals, exponents, signs, overflow, words.
fn number_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[+-]?[0-9]{0,25}(\\.[0-9]{0,4})?([eE][+-]?[0-9]{1,4})?",
        "[ \t]{0,2}[0-9]{1,20}(\\.0)?[ \t]{0,2}",
        "(NaN|nan|inf|-inf|Infinity|-Infinity|1e400|-1e400|18446744073709551615|18446744073709551616|-0|0x10|1_000)",
        ".{0,12}",
    ]
}

/// Text near a date or time in each accepted layout, and broken variants.
fn date_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}",
        "[0-9]{8}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?",
        "[0-9]{14}",
        "[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}",
        "[+-]?[0-9]{5,9}-[0-9]{2}-[0-9]{2}",
        "[ 0-9:T/.-]{0,22}",
        ".{0,20}",
    ]
}

/// A day every backend stores (the accepted years).
fn day() -> impl Strategy<Value = NaiveDate> {
    (1990i32..=validate::MAX_YEAR, 1u32..=12, 1u32..=31)
        .prop_map(|(y, m, d)| (0..4).find_map(|back| NaiveDate::from_ymd_opt(y, m, d - back)).expect("a real day"))
}

fn datetime() -> impl Strategy<Value = NaiveDateTime> {
    (day(), 0u32..24, 0u32..60, 0u32..60).prop_map(|(d, h, m, s)| d.and_hms_opt(h, m, s).expect("a real time"))
}

/// Any JSON value (floats that JSON cannot hold become null).
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,8}", inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Mostly a plausible value, sometimes any JSON value at all.
fn or_any(plausible: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![20 => plausible, 1 => json()].boxed()
}

fn s(v: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Value> {
    or_any(v.prop_map(Value::from))
}

/// A price or amount: mostly ordinary, sometimes special or integral.
fn num() -> BoxedStrategy<Value> {
    or_any(prop_oneof![
        6 => (0.0..1e4f64).prop_map(Value::from),
        2 => float().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => (0u64..1000).prop_map(Value::from),
    ])
}

/// A volume: mostly ordinary, sometimes huge, negative or fractional.
fn uint() -> BoxedStrategy<Value> {
    or_any(prop_oneof![
        6 => (0u64..1_000_000).prop_map(Value::from),
        2 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => float().prop_map(Value::from),
    ])
}

fn dt_text() -> BoxedStrategy<Value> {
    s(prop_oneof![
        8 => datetime().prop_map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
        1 => (datetime(), 1u32..1_000_000_000).prop_map(|(t, n)| format!("{}.{n:09}", t.format("%Y-%m-%dT%H:%M:%S"))),
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}",
        1 => date_like(),
    ])
}

fn date_text() -> BoxedStrategy<Value> {
    s(prop_oneof![8 => day().prop_map(|d| d.to_string()), 1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}", 1 => date_like()])
}

fn code_text() -> BoxedStrategy<Value> {
    s(prop_oneof![6 => code().prop_map(|c| c.to_string()), 1 => code_like()])
}

fn name_text() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[A-Za-z0-9][A-Za-z0-9_-]{0,12}", 1 => "[A-Za-z0-9_.\\-/ ]{0,70}", 1 => ".{0,8}"]
}

/// An object with the given fields, some dropped, sometimes one unknown key more.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> impl Strategy<Value = Value> {
    let parts: Vec<_> = fields
        .into_iter()
        .map(|(k, v)| (prop::bool::weighted(0.98), v).prop_map(move |(keep, v)| keep.then(|| (k.to_owned(), v))))
        .collect();
    (parts, prop::option::weighted(0.02, (".{0,6}", json())))
        .prop_map(|(kv, extra)| Value::Object(kv.into_iter().flatten().chain(extra).collect()))
}

/// Free text: mostly printable (Chinese included), sometimes anything, too long.
fn free_text() -> impl Strategy<Value = String> {
    prop_oneof![6 => "[\\PC]{0,20}", 1 => "[平安银行买入委托]{0,8}", 1 => ".{0,70}"]
}

fn deal_json() -> impl Strategy<Value = Value> {
    let kinds: Vec<String> = DealKind::ALL.iter().flat_map(|k| [k.as_str().to_owned(), k.ascii().to_owned()]).collect();
    object(vec![
        ("id", s(prop_oneof![4 => "[a-z0-9-]{1,20}", 1 => ".{0,140}", 1 => "[ \t]{0,3}"])),
        ("book", or_any((name_text(), name_text()).prop_map(|(a, b)| serde_json::json!({"account": a, "book": b})))),
        ("time", dt_text()),
        ("code", code_text()),
        ("name", s(free_text())),
        ("kind", s(prop_oneof![6 => prop::sample::select(kinds), 1 => ".{0,6}"])),
        ("remark", s(prop_oneof![6 => free_text(), 1 => "[a-z\\r\\n\\t\\x00]{0,10}"])),
        ("price", num()),
        ("volume", uint()),
        ("amount", num()),
        ("strategy", s(free_text())),
    ])
}

fn bar_json() -> impl Strategy<Value = Value> {
    object(vec![
        ("datetime", dt_text()),
        ("open", num()),
        ("high", num()),
        ("low", num()),
        ("close", num()),
        ("volume", uint()),
        ("amount", num()),
    ])
}

fn key_json() -> impl Strategy<Value = Value> {
    let periods: Vec<&str> = Period::ALL.iter().map(|p| p.as_str()).collect();
    let adjusts: Vec<&str> = Adjust::ALL.iter().map(|a| a.as_str()).collect();
    object(vec![
        ("code", code_text()),
        ("period", s(prop_oneof![6 => prop::sample::select(periods).prop_map(String::from), 1 => ".{0,4}"])),
        ("adjust", s(prop_oneof![6 => prop::sample::select(adjusts).prop_map(String::from), 1 => ".{0,4}"])),
    ])
}

fn entry_json() -> impl Strategy<Value = Value> {
    object(vec![
        ("day_count", or_any(prop_oneof![Just(Value::Null), any::<u32>().prop_map(Value::from)])),
        ("max_price", or_any(prop_oneof![Just(Value::Null), float().prop_map(Value::from)])),
        ("min_price", or_any(prop_oneof![Just(Value::Null), float().prop_map(Value::from)])),
    ])
}

fn snapshot_json() -> impl Strategy<Value = Value> {
    let positions =
        prop::collection::vec((prop_oneof![code().prop_map(|c| c.to_string()), code_like()], entry_json()), 0..6)
            .prop_map(|kv| Value::Object(kv.into_iter().collect()));
    object(vec![("inc_date", or_any(prop_oneof![Just(Value::Null), date_text()])), ("positions", or_any(positions))])
}

/// Deserialises `v` as `T`; what deserialises must validate or be rejected
/// with a typed error, and what validates must survive a JSON round trip.
fn deserialise_then_validate<T>(v: Value, validate: fn(&T) -> crate::Result<()>) -> Result<(), TestCaseError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(t) = serde_json::from_value::<T>(v) else { return Ok(()) };
    match validate(&t) {
        Ok(()) => {
            let back: T = serde_json::from_value(serde_json::to_value(&t).expect("serialises")).expect("reads back");
            prop_assert_eq!(back, t);
            Ok(())
        }
        Err(e) => invalid(&e, None),
    }
}

// ---- properties ------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn code_parse_never_panics_and_round_trips(s in code_like(), field in field_name()) {
        match Code::parse_field(&field, &s) {
            Ok(c) => {
                let canonical = c.to_string();
                prop_assert_eq!(canonical.len(), 9);
                prop_assert_eq!(canonical.as_bytes(), &c.to_bytes()[..]);
                prop_assert_eq!(Code::parse(&canonical).unwrap(), c);
                prop_assert_eq!(c.digits(), &canonical[..6]);
            }
            Err(e) => invalid(&e, Some(&field))?,
        }
        check(&Code::parse(&s), Some("code"))?;
        check(&s.parse::<Code>(), Some("code"))?;
        let _ = serde_json::from_value::<Code>(Value::from(s.clone()));
    }

    #[test]
    fn every_spelling_of_a_code_parses_to_it(c in code()) {
        let (d, m) = (c.digits().to_owned(), c.market().as_str());
        for spelling in [
            format!("{d}.{m}"),
            format!("{d}.{}", m.to_lowercase()),
            format!("{m}{d}"),
            format!("{}{d}", m.to_lowercase()),
            format!("  {d}.{m}\t"),
        ] {
            prop_assert_eq!(Code::parse(&spelling).unwrap(), c, "{}", spelling);
        }
        prop_assert_eq!(Code::new(&d, c.market()).unwrap(), c);
        let json = serde_json::to_string(&c).unwrap();
        prop_assert_eq!(serde_json::from_str::<Code>(&json).unwrap(), c);
        // a bare code infers its market, or is rejected naming the code
        match Code::parse(&d) {
            Ok(bare) => prop_assert_eq!(bare.digits(), c.digits()),
            Err(e) => invalid(&e, Some("code"))?,
        }
    }

    #[test]
    fn code_new_takes_exactly_six_ascii_digits(s in code_like(), m in market()) {
        let six = s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit());
        match Code::new(&s, m) {
            Ok(c) => {
                prop_assert!(six);
                prop_assert_eq!(c.digits(), s.as_str());
            }
            Err(e) => {
                prop_assert!(!six);
                invalid(&e, Some("code"))?;
            }
        }
    }

    #[test]
    fn ids_never_panic_and_round_trip(a in name_text(), b in name_text(), whole in ".{0,80}") {
        match AccountCode::new(&a) {
            Ok(acc) => {
                prop_assert_eq!(acc.as_str(), a.as_str());
                prop_assert!(!a.is_empty() && a.len() <= 64 && !a.contains(['/', '.', ' ']));
                prop_assert_eq!(a.parse::<AccountCode>().unwrap(), acc);
            }
            Err(e) => invalid(&e, Some("account"))?,
        }
        match BookName::new(&b) {
            Ok(book) => {
                prop_assert_eq!(book.as_str(), b.as_str());
                prop_assert!(!b.is_empty() && b.len() <= 64 && !b.contains(['/', ' ']) && !b.starts_with(['.', '_']));
            }
            Err(e) => invalid(&e, Some("book"))?,
        }
        for text in [format!("{a}/{b}"), whole.clone()] {
            match text.parse::<BookId>() {
                Ok(id) => {
                    prop_assert_eq!(id.to_string(), text.clone());
                    prop_assert_eq!(id.to_string().parse::<BookId>().unwrap(), id);
                }
                Err(e) => invalid(&e, None)?,
            }
        }
        let _ = serde_json::from_value::<BookId>(serde_json::json!({"account": a, "book": b}));
    }

    #[test]
    fn prices_and_amounts(v in float(), field in field_name()) {
        match validate::price(&field, v) {
            Ok(p) => prop_assert!(p.is_finite() && p >= 0.0 && p.to_bits() == v.to_bits()),
            Err(e) => {
                prop_assert!(!v.is_finite() || v < 0.0);
                invalid(&e, Some(&field))?;
            }
        }
        match validate::finite(&field, v) {
            Ok(_) => prop_assert!(v.is_finite()),
            Err(e) => invalid(&e, Some(&field))?,
        }
        let r = validate::round3(v);
        prop_assert_eq!(r.is_finite(), v.is_finite());
        if v.is_finite() {
            prop_assert!((r - v).abs() <= 0.0005 + v.abs() * 1e-15, "{} → {}", v, r);
        }
    }

    #[test]
    fn volumes(s in number_like(), v in any::<u64>(), field in field_name()) {
        match validate::volume(&field, &s) {
            Ok(n) => {
                if let Ok(exact) = s.trim().parse::<u64>() {
                    prop_assert_eq!(n, exact);
                }
            }
            Err(e) => invalid(&e, Some(&field))?,
        }
        prop_assert_eq!(validate::volume(&field, &v.to_string()).unwrap(), v);
        prop_assert_eq!(validate::volume(&field, &format!(" {v} ")).unwrap(), v);
        check(&validate::number(&field, &s), Some(&field))?;
    }

    #[test]
    fn dates_and_times(s in date_like(), d in day(), t in datetime(), field in field_name()) {
        match validate::date(&field, &s) {
            Ok(day) => prop_assert!((1990..=validate::MAX_YEAR).contains(&chrono::Datelike::year(&day))),
            Err(e) => invalid(&e, Some(&field))?,
        }
        check(&validate::time(&field, &s), Some(&field))?;
        match validate::datetime(&field, &s) {
            Ok(dt) => prop_assert!((1990..=validate::MAX_YEAR).contains(&chrono::Datelike::year(&dt.date()))),
            Err(e) => invalid(&e, Some(&field))?,
        }
        // round trips of every layout written
        prop_assert_eq!(validate::date(&field, &d.format("%Y-%m-%d").to_string()).unwrap(), d);
        prop_assert_eq!(validate::date(&field, &d.format("%Y%m%d").to_string()).unwrap(), d);
        prop_assert_eq!(validate::time(&field, &t.format("%H:%M:%S").to_string()).unwrap(), t.time());
        for layout in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y%m%d%H%M%S"] {
            prop_assert_eq!(validate::datetime(&field, &t.format(layout).to_string()).unwrap(), t);
        }
        check(&validate::ordered(Some(d), Some(t.date())), Some("from"))?;
        prop_assert_eq!(validate::ordered(Some(d), Some(t.date())).is_ok(), d <= t.date());
    }

    #[test]
    fn ticks(c in code(), high in float(), low in float(), more in prop::collection::vec((code(), float(), float()), 0..6)) {
        let valid = high.is_finite() && low.is_finite() && high >= 0.0 && low >= 0.0 && high >= low
            && high <= crate::position::MAX_TICK_PRICE;
        match PriceTick::new(c, high, low) {
            Ok(t) => {
                prop_assert!(valid);
                prop_assert!(t.validate().is_ok());
            }
            Err(e) => {
                prop_assert!(!valid);
                invalid(&e, None)?;
            }
        }
        let ticks: Vec<PriceTick> = std::iter::once((c, high, low))
            .chain(more)
            .map(|(code, high, low)| PriceTick { code, high, low })
            .collect();
        check(&validate_ticks(&ticks), None)?;
        // whatever validates can be applied to a book without panicking
        if validate_ticks(&ticks).is_ok() {
            let mut snap = PositionSnapshot::default();
            crate::position::rules::new_held(&mut snap, &ticks.iter().map(|t| t.code).collect::<Vec<_>>());
            crate::position::rules::update_extremes(&mut snap, &ticks);
            prop_assert!(snap.validate().is_ok());
        }
    }

    #[test]
    fn deals_from_json(v in deal_json()) {
        deserialise_then_validate::<Deal>(v, Deal::validate)?;
    }

    #[test]
    fn deals_from_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(d) = serde_json::from_slice::<Deal>(&bytes) {
            check(&d.validate(), None)?;
        }
    }

    #[test]
    fn quotes_from_json(v in object(vec![
        ("code", code_text()),
        ("time", dt_text()),
        ("last", num()),
        ("open", num()),
        ("high", num()),
        ("low", num()),
        ("pre_close", num()),
        ("volume", uint()),
        ("amount", num()),
    ])) {
        deserialise_then_validate::<Quote>(v, Quote::validate)?;
    }

    #[test]
    fn asset_rows_from_json(v in object(vec![("date", date_text()), ("asset", num())])) {
        deserialise_then_validate::<AssetRow>(v, AssetRow::validate)?;
    }

    #[test]
    fn bars_from_json(v in bar_json(), key in key_json(), more in prop::collection::vec(bar_json(), 0..4)) {
        deserialise_then_validate::<Bar>(v.clone(), Bar::validate)?;
        let series = serde_json::json!({"key": key, "bars": std::iter::once(v).chain(more).collect::<Vec<_>>()});
        deserialise_then_validate::<BarSeries>(series, BarSeries::validate)?;
    }

    #[test]
    fn position_snapshots_from_json(v in snapshot_json()) {
        deserialise_then_validate::<PositionSnapshot>(v, PositionSnapshot::validate)?;
    }

    #[test]
    fn enums_from_str(s in prop_oneof![
        ".{0,8}",
        prop::sample::select(DealKind::ALL.to_vec()).prop_map(|k| format!(" {} ", k.as_str())),
        prop::sample::select(Period::ALL.to_vec()).prop_map(|p| p.as_str().to_uppercase()),
        "[0-9]{1,2}[mdwh]|none|qfq|hfq|day|month|positions|quotes|deals|assets|bars",
    ]) {
        match s.parse::<DealKind>() {
            Ok(k) => prop_assert!(k.as_str() == s.trim() || k.ascii() == s.trim()),
            Err(e) => invalid(&e, Some("kind"))?,
        }
        match s.parse::<Period>() {
            Ok(p) => prop_assert_eq!(p.as_str(), s.as_str()),
            Err(e) => invalid(&e, Some("period"))?,
        }
        match s.parse::<Adjust>() {
            Ok(a) => prop_assert_eq!(a.as_str(), s.as_str()),
            Err(e) => invalid(&e, Some("adjust"))?,
        }
        match s.parse::<Domain>() {
            Ok(d) => prop_assert_eq!(d.as_str(), s.as_str()),
            Err(e) => invalid(&e, Some("domain"))?,
        }
        check(&s.parse::<AggregateBy>(), Some("by"))?;
        for v in [Value::from(s.clone()), Value::from(s.len())] {
            let _ = serde_json::from_value::<DealKind>(v.clone());
            let _ = serde_json::from_value::<Period>(v.clone());
            let _ = serde_json::from_value::<Adjust>(v.clone());
            let _ = serde_json::from_value::<Domain>(v);
        }
    }

    #[test]
    fn deal_queries(
        page in prop_oneof![Just(0u32), Just(1), Just(u32::MAX), any::<u32>()],
        page_size in prop_oneof![Just(0u32), Just(1), Just(1000), Just(1001), Just(u32::MAX), any::<u32>()],
        from in prop::option::of(day()),
        to in prop::option::of(day()),
    ) {
        let book = BookId::new("1", "b").unwrap();
        let q = DealQuery { from, to, page, page_size, ..DealQuery::book(book.clone()) };
        let ok = page >= 1 && (1..=crate::MAX_PAGE_SIZE).contains(&page_size) && !matches!((from, to), (Some(f), Some(t)) if f > t);
        match q.validate() {
            Ok(()) => prop_assert!(ok),
            Err(e) => {
                prop_assert!(!ok);
                invalid(&e, None)?;
            }
        }
        prop_assert_eq!(q.offset(), u64::from(page.saturating_sub(1)) * u64::from(page_size));
        let page_ = crate::page_of(&q, std::iter::empty());
        prop_assert_eq!(page_.total, 0);
        let _ = DealScope::Account(book.account.clone());
    }

    #[test]
    fn aggregates_of_valid_deals_never_overflow(volumes in prop::collection::vec(prop_oneof![Just(i64::MAX as u64), 0..=(i64::MAX as u64)], 1..6), by in prop_oneof![Just(AggregateBy::Day), Just(AggregateBy::Month)]) {
        let book = BookId::new("1", "b").unwrap();
        let time = NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(9, 30, 0).unwrap();
        let deals: Vec<Deal> = volumes
            .iter()
            .enumerate()
            .map(|(i, v)| Deal {
                id: format!("d{i}"),
                book: book.clone(),
                time,
                code: Code::parse("000001.SZ").unwrap(),
                name: String::new(),
                kind: if i % 2 == 0 { DealKind::BuyFill } else { DealKind::SellFill },
                remark: String::new(),
                price: 1.0,
                volume: *v,
                amount: *v as f64,
                strategy: String::new(),
            })
            .collect();
        for d in &deals {
            prop_assert!(d.validate().is_ok());
        }
        let q = AggregateQuery { account: book.account.clone(), from: None, to: None, by };
        let rows = crate::aggregate(&q, deals.iter());
        prop_assert_eq!(rows.len(), 1);
        prop_assert_eq!(rows[0].count, deals.len() as u64);
    }
}
