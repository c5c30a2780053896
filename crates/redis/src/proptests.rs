//! Property tests: configuration validation and key parsing never panic, a
//! prefix that `SCAN MATCH` would expand is rejected naming `redis.prefix`,
//! and a book's keys parse back to the book under their own prefix only.
//! Bounded by `SQDATA_PROPTEST_CASES` (default 512 cases per property).

use proptest::prelude::*;
use serde_json::Value;
use sqdata_core::{BookId, Error};

use crate::config::redact;
use crate::store::book_of_key;
use crate::{RedisConfig, book_keys};

fn config() -> ProptestConfig {
    let cases = std::env::var("SQDATA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512);
    // Failures are kept as unit tests by hand, not as files next to the source.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Prefixes: plain ones, ones with glob characters, braces, whitespace,
/// control characters, non-ASCII, anything.
fn prefix() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9:_.-]{1,12}",
        2 => "[a-z]{0,3}[*?\\[\\]\\\\{} \t\n\u{0}\u{7f}\u{3000}\u{85}][a-z]{0,3}",
        1 => "[^\\x00-\\x7f]{1,4}",
        1 => ".{0,10}",
        1 => any::<String>(),
    ]
}

fn valid_prefix() -> impl Strategy<Value = String> {
    "[a-z0-9_.-]{1,6}(:[a-z0-9_.-]{1,6})?"
}

fn book() -> impl Strategy<Value = BookId> {
    ("[A-Za-z0-9][A-Za-z0-9_-]{0,10}", "[A-Za-z0-9][A-Za-z0-9_.-]{0,10}")
        .prop_map(|(a, b)| BookId::new(a, b).expect("a valid book"))
}

fn millis() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(u64::MAX), 1u64..10_000, any::<u64>()]
}

/// The prefixes `validate` must accept: nothing `SCAN MATCH` expands.
fn acceptable(p: &str) -> bool {
    !p.is_empty() && !p.chars().any(|c| "*?[]\\{}".contains(c) || c.is_whitespace() || c.is_control())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn validate_never_panics_and_names_the_prefix(
        prefix in prefix(),
        connect in millis(),
        response in millis(),
        ack in millis(),
        quote_ttl in millis(),
        session_ttl in millis(),
        sentinels in prop::collection::vec(".{0,10}", 0..2),
        master in ".{0,4}",
    ) {
        let c = RedisConfig {
            prefix: prefix.clone(),
            connect_timeout_ms: connect,
            response_timeout_ms: response,
            replica_ack_timeout_ms: ack,
            quote_ttl_ms: quote_ttl,
            session_ttl_s: session_ttl,
            sentinels,
            sentinel_master: master,
            ..Default::default()
        };
        let _ = c.op_timeout();
        let _ = format!("{c:?}");
        match c.validate() {
            Ok(()) => prop_assert!(acceptable(&prefix), "{:?} accepted", prefix),
            Err(Error::Config(m)) => {
                prop_assert!(!m.is_empty());
                if !acceptable(&prefix) {
                    prop_assert!(m.contains("redis.prefix"), "{}", m);
                }
            }
            Err(other) => prop_assert!(false, "expected Error::Config, got {:?}", other),
        }
        let only_prefix = RedisConfig { prefix: prefix.clone(), ..Default::default() };
        prop_assert_eq!(only_prefix.validate().is_ok(), acceptable(&prefix));
    }

    #[test]
    fn config_from_any_json(v in prop::collection::vec((
        prop_oneof![
            Just("prefix".to_owned()),
            Just("url".to_owned()),
            Just("connect_timeout_ms".to_owned()),
            Just("quote_ttl_ms".to_owned()),
            Just("sentinels".to_owned()),
            ".{0,6}",
        ],
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            prefix().prop_map(Value::from),
            prop::collection::vec(".{0,6}", 0..3).prop_map(Value::from),
            Just(Value::Null),
        ],
    ), 0..5)) {
        let obj = Value::Object(v.into_iter().collect());
        if let Ok(c) = serde_json::from_value::<RedisConfig>(obj) {
            match c.validate() {
                Ok(()) => prop_assert!(acceptable(&c.prefix)),
                Err(e) => prop_assert!(matches!(e, Error::Config(_)), "{:?}", e),
            }
        }
    }

    #[test]
    fn book_keys_parse_back_under_their_own_prefix_only(
        p in valid_prefix(),
        other in valid_prefix(),
        b in book(),
        key in ".{0,30}",
    ) {
        let valid = RedisConfig { prefix: p.clone(), ..Default::default() }.validate();
        prop_assert!(valid.is_ok(), "{:?}", valid);
        for k in book_keys(&p, &b) {
            prop_assert_eq!(book_of_key(&p, &k), Some(b.clone()), "{}", k);
            if other != p {
                prop_assert_eq!(book_of_key(&other, &k), None, "{} read as a key of {}", k, other);
            }
        }
        let _ = book_of_key(&p, &key);
        let _ = book_of_key(&key, &key);
    }

    #[test]
    fn redact_never_panics_and_hides_passwords(
        url in prop_oneof![".{0,30}", "[a-z:/@]{0,12}", any::<String>()],
        user in "[a-z]{0,6}",
        pw in "PW[A-Z0-9]{6}",
        host in "[a-z0-9.]{1,10}(:[0-9]{1,5})?",
    ) {
        let _ = redact(&url);
        let with = format!("redis://{user}:{pw}@{host}/0");
        let shown = redact(&with);
        prop_assert!(!shown.contains(&pw), "{}", shown);
        prop_assert!(shown.contains(&host), "{}", shown);
        let c = RedisConfig { url: with, sentinels: vec![format!("redis://:{pw}@{host}")], ..Default::default() };
        let debug = format!("{c:?}");
        prop_assert!(!debug.contains(&pw), "{}", debug);
    }
}
