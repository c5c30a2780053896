//! Property tests: a configuration from any TOML text or `SQDATA_*`
//! environment is read and validated into a `Config` or a typed
//! `Error::Config` — never a panic — and a valid one can be used (routes,
//! timeouts, the default TOML) without panicking. Bounded by
//! `SQDATA_PROPTEST_CASES` (default 512 cases per property).

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sqdata_core::{Domain, Error};
use toml::{Table, Value};

use crate::Config;

fn config() -> ProptestConfig {
    let cases = std::env::var("SQDATA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512);
    // Failures are kept as unit tests by hand, not as files next to the source.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Any TOML value (tables kept small).
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        prop_oneof![Just(0i64), Just(1), Just(-1), Just(i64::MAX)].prop_map(Value::Integer),
        prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(0.5), Just(-1.0), any::<f64>()].prop_map(Value::Float),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..3).prop_map(|kv| Value::Table(kv.into_iter().collect())),
        ]
    })
}

/// A string from `known`, or anything.
fn one_of(known: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        24 => prop::sample::select(known).prop_map(|s| Value::String(s.to_owned())),
        2 => ".{0,8}".prop_map(Value::String),
        1 => value(),
    ]
    .boxed()
}

/// A count or duration: mostly ordinary, sometimes zero, negative or huge.
fn int() -> BoxedStrategy<Value> {
    prop_oneof![
        24 => (1i64..100_000).prop_map(Value::Integer),
        4 => prop_oneof![Just(0i64), Just(-1), Just(i64::MAX), Just(u32::MAX as i64 + 1)].prop_map(Value::Integer),
        1 => value(),
    ]
    .boxed()
}

fn text(re: &'static str) -> BoxedStrategy<Value> {
    prop_oneof![24 => re.prop_map(Value::String), 1 => value()].boxed()
}

/// A section: each key present or not, sometimes an unknown key more.
fn section(keys: Vec<(&'static str, BoxedStrategy<Value>)>) -> impl Strategy<Value = Value> {
    let parts: Vec<_> = keys
        .into_iter()
        .map(|(k, v)| (prop::bool::weighted(0.5), v).prop_map(move |(keep, v)| keep.then(|| (k.to_owned(), v))))
        .collect();
    (parts, prop::option::weighted(0.05, ("[a-z_]{1,8}", value())))
        .prop_map(|(kv, extra)| Value::Table(kv.into_iter().flatten().chain(extra).collect()))
}

const BACKENDS: &[&str] = &["file", "redis", "clickhouse"];
const DOMAINS: &[&str] = &["positions", "quotes", "deals", "assets", "bars"];

/// A configuration document near the real one: every section and key, with
/// plausible, wrong and hostile values.
fn document() -> impl Strategy<Value = Table> {
    let stores = section(DOMAINS.iter().map(|d| (*d, one_of(BACKENDS))).collect());
    let books =
        prop::collection::vec((prop_oneof!["[a-z0-9]{1,4}/[a-z0-9_.]{1,4}", ".{0,8}"], text("[a-z/._]{0,10}")), 0..3)
            .prop_map(|kv| Value::Table(kv.into_iter().collect()));
    let file = section(vec![
        ("root", text("[a-z/._]{0,10}")),
        ("books", prop_oneof![12 => books, 1 => value()].boxed()),
        ("durability", one_of(&["fsync", "flush"])),
        ("deal_encoding", one_of(&["auto", "gbk", "utf8"])),
        ("quote_ttl_ms", int()),
    ]);
    let redis = section(vec![
        ("url", text("redis://[a-z:@0-9.]{0,12}(/[0-9])?")),
        (
            "cluster",
            prop::collection::vec(".{0,8}", 0..2)
                .prop_map(|v| Value::Array(v.into_iter().map(Value::String).collect()))
                .boxed(),
        ),
        (
            "sentinels",
            prop::collection::vec(".{0,8}", 0..2)
                .prop_map(|v| Value::Array(v.into_iter().map(Value::String).collect()))
                .boxed(),
        ),
        ("sentinel_master", text("[a-z]{0,6}")),
        ("prefix", text("[a-z]{0,3}[a-z*?\\[\\]{} \t\\\\:]{0,3}")),
        ("connect_timeout_ms", int()),
        ("response_timeout_ms", int()),
        ("replica_acks", int()),
        ("replica_ack_timeout_ms", int()),
        ("quote_ttl_ms", int()),
        ("session_ttl_s", int()),
    ]);
    let clickhouse = section(vec![
        ("url", text("http://[a-z0-9.:]{0,12}")),
        ("database", text("[a-z_\\-0-9]{0,8}")),
        ("user", text("[a-z]{0,6}")),
        ("password", text(".{0,6}")),
        ("validation", prop_oneof![12 => any::<bool>().prop_map(Value::Boolean), 1 => value()].boxed()),
        ("compression", one_of(&["lz4", "none", "zstd"])),
        ("journal_dir", text("[a-z/._]{0,10}")),
        ("flush_rows", int()),
        ("flush_interval_ms", int()),
        ("timeout_ms", int()),
        ("bulk_batch_rows", int()),
        ("keep_alive", prop_oneof![12 => any::<bool>().prop_map(Value::Boolean), 1 => value()].boxed()),
    ]);
    let stages = &["files", "shadow", "reads", "writes", "full"];
    let hybrid = section(vec![
        ("stage", one_of(stages)),
        (
            "accounts",
            prop::collection::vec((".{0,6}", one_of(stages)), 0..3)
                .prop_map(|kv| Value::Table(kv.into_iter().collect()))
                .boxed(),
        ),
        ("breaker_failures", int()),
        ("probe_interval_ms", int()),
        ("primary_timeout_ms", int()),
        (
            "verify_sample_rate",
            prop_oneof![(-0.5..1.5f64).prop_map(Value::Float), Just(Value::Float(f64::NAN)), value()].boxed(),
        ),
        ("source_of_truth", one_of(&["secondary", "primary"])),
        ("journal_dir", text("[a-z/._]{0,10}")),
        ("webhook_url", text("(http|https)://[a-z.:0-9]{0,10}")),
        ("rollout_file", text("[a-z/._]{0,10}")),
    ]);
    let registry = section(vec![
        ("url", text("(sqlite|mysql|mariadb|postgres):(//)?[a-z:@/.0-9]{0,12}")),
        ("max_connections", int()),
        ("connect_timeout_ms", int()),
    ]);
    let archive = section(vec![
        ("url", text("(s3://[a-z/]{0,8}|[a-z/]{0,8})")),
        ("endpoint", text("http://[a-z.:0-9]{0,10}")),
        ("access_key", text("[A-Z]{0,6}")),
        ("secret_key", text(".{0,6}")),
        ("region", text("[a-z-0-9]{0,8}")),
    ]);
    let api = section(vec![("probe_interval_ms", int()), ("metrics_token", text(".{0,20}"))]);
    let top = section(vec![
        ("tier", one_of(&["embedded", "mvp", "full"])),
        ("stores", prop_oneof![12 => stores, 1 => value()].boxed()),
        ("file", file.boxed()),
        ("redis", redis.boxed()),
        ("clickhouse", clickhouse.boxed()),
        ("hybrid", hybrid.boxed()),
        ("registry", registry.boxed()),
        ("archive", archive.boxed()),
        ("api", api.boxed()),
    ]);
    top.prop_map(|v| match v {
        Value::Table(t) => t,
        _ => Table::new(),
    })
}

/// Extracts and validates; a failure must be `Error::Config` with a message.
fn read(figment: Figment) -> Result<Option<Config>, TestCaseError> {
    let Ok(c) = figment.extract::<Config>() else { return Ok(None) };
    match c.validate() {
        Ok(()) => {
            // a valid configuration can be used
            let routes = c.routes();
            for d in Domain::ALL {
                prop_assert!(routes.backend(d).serves(d));
            }
            let _ = routes.served();
            #[cfg(feature = "redis")]
            let _ = c.redis.op_timeout();
            let _ = format!("{c:?}");
            Ok(Some(c))
        }
        Err(Error::Config(m)) => {
            prop_assert!(!m.is_empty());
            Ok(None)
        }
        Err(other) => Err(TestCaseError::fail(format!("expected Error::Config, got {other:?}"))),
    }
}

/// Sections of backends this build lacks are accepted, ignored and not
/// written back: `None` after a round trip.
#[allow(unused_mut)]
fn built_only(mut c: Config) -> Config {
    #[cfg(not(feature = "redis"))]
    {
        c.redis = None;
    }
    #[cfg(not(feature = "clickhouse"))]
    {
        c.clickhouse = None;
    }
    #[cfg(not(feature = "hybrid"))]
    {
        c.hybrid = None;
    }
    #[cfg(not(feature = "minio"))]
    {
        c.archive = None;
    }
    c
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_from_any_toml(doc in document(), junk in prop_oneof![".{0,40}", "[a-z_\\[\\]= \"\n0-9.]{0,40}", any::<String>()]) {
        let text = toml::to_string(&doc).unwrap_or_default();
        for t in [&text, &junk] {
            let layered = Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(t));
            read(layered)?;
            read(Figment::from(Toml::string(t)))?;
        }
        // a valid configuration survives its own serialisation
        let layered = Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(&text));
        if let Some(c) = read(layered)? {
            let again = Figment::from(Serialized::defaults(Config::default())).merge(Serialized::defaults(&c));
            prop_assert_eq!(again.extract::<Config>().ok(), Some(built_only(c)));
        }
    }
}

/// Overrides from the environment. Each case runs in a `figment::Jail`
/// (a process-wide lock, a fresh working folder), so fewer cases.
#[test]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
fn config_from_any_environment() {
    use proptest::test_runner::TestRunner;
    let mut cfg = config();
    cfg.cases = cfg.cases.div_ceil(8);
    let var = (
        prop::sample::select(vec![
            "TIER",
            "STORES__POSITIONS",
            "FILE__ROOT",
            "FILE__QUOTE_TTL_MS",
            "FILE__BOOKS",
            "FILE__DEAL_ENCODING",
            "REDIS__PREFIX",
            "REDIS__CONNECT_TIMEOUT_MS",
            "REDIS__SENTINELS",
            "CLICKHOUSE__TIMEOUT_MS",
            "HYBRID__VERIFY_SAMPLE_RATE",
            "HYBRID__ACCOUNTS",
            "REGISTRY__URL",
            "API__PROBE_INTERVAL_MS",
            "NOPE",
        ]),
        prop_oneof![
            "[0-9]{1,20}|-[0-9]{1,3}|true|nan|inf|mvp|redis|file|sq\\*|\\[1, 2\\]|\\{a=1\\}|\\[|\\{|\"|''",
            "[^\\x00=]{0,12}",
        ],
    );
    TestRunner::new(cfg)
        .run(&prop::collection::vec(var, 0..4), |vars| {
            let mut out = Ok(());
            figment::Jail::expect_with(|jail| {
                for (k, v) in &vars {
                    jail.set_env(format!("SQDATA_{k}"), v);
                }
                out = match Config::load(None) {
                    Ok(c) => read(Figment::from(Serialized::defaults(&c))).map(|_| ()),
                    Err(Error::Config(m)) if !m.is_empty() => Ok(()),
                    Err(other) => Err(TestCaseError::fail(format!("expected Error::Config, got {other:?}"))),
                };
                Ok(())
            });
            out
        })
        .unwrap();
}
