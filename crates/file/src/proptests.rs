//! Property tests: no parser of the file formats panics on any bytes, every
//! rejection is a typed error naming the file (and line and field where
//! there is one), and what the writers write parses back to the same value.
//! Bounded by `SQDATA_PROPTEST_CASES` (default 512 cases per property).

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value};
use sqdata_core::{Bar, BookId, Code, Deal, DealKind, Error, Market, Period, PositionEntry, PositionSnapshot};

use crate::deals::{self, DealEncoding, IdEntry};
use crate::positions::{self, Doc, Paths};
use crate::{assets, bars, kline, pyjson, silverquant};

fn config() -> ProptestConfig {
    let cases = std::env::var("SQDATA_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512);
    // Failures are kept as unit tests by hand, not as files next to the source.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// A rejection of stored data: `Corrupt` naming `path` (the file, maybe
/// with a line) and saying why.
fn corrupt(e: &Error, path: &Path) -> Result<(), TestCaseError> {
    match e {
        Error::Corrupt { location, reason, .. } => {
            prop_assert!(location.starts_with(&path.display().to_string()), "{e}");
            prop_assert!(!reason.is_empty(), "{e}");
            Ok(())
        }
        other => Err(TestCaseError::fail(format!("expected Corrupt naming {}, got {other:?}", path.display()))),
    }
}

fn check<T>(r: &sqdata_core::Result<T>, path: &Path) -> Result<(), TestCaseError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) => corrupt(e, path),
    }
}

// ---- strategies ------------------------------------------------------------

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn code() -> impl Strategy<Value = Code> {
    ("[0-9]{6}", prop_oneof![Just(Market::SH), Just(Market::SZ), Just(Market::BJ)])
        .prop_map(|(d, m)| Code::new(&d, m).expect("six digits"))
}

/// Keys a position file may hold: canonical codes, other spellings, `_`
/// metadata, non-ASCII, anything.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => code().prop_map(|c| c.to_string()),
        1 => "(sz|SZ|sh)[0-9]{6}|[0-9]{6}(\\.sz|\\.SS)?|[0-9]{6}\\.(SH|SZ)",
        1 => Just("_inc_date".to_owned()),
        1 => "_[a-z_]{0,8}",
        1 => "(上证50|中国平安|[^\\x00-\\x7f]{1,8})",
        1 => ".{0,10}",
    ]
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-0.0),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        -10.0..1e5f64,
        any::<f64>(),
    ]
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

fn date_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => day().prop_map(|d| d.format("%Y-%m-%d").to_string()),
        1 => "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}|[0-9]{8}|[0-9/: -]{0,12}",
        1 => ".{0,10}",
    ]
}

/// A value in positions.json: mostly `{"day_count": …}`, sometimes anything.
fn position_value() -> impl Strategy<Value = Value> {
    let day_count = prop_oneof![
        Just(Value::Null),
        any::<u32>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float().prop_map(Value::from),
        json(),
    ];
    prop_oneof![
        4 => (day_count, prop::option::of((".{0,6}", json()))).prop_map(|(d, extra)| {
            let mut m = Map::new();
            m.insert("day_count".into(), d);
            m.extend(extra);
            Value::Object(m)
        }),
        1 => Just(serde_json::json!({})),
        1 => json(),
    ]
}

fn price_value() -> impl Strategy<Value = Value> {
    prop_oneof![4 => float().prop_map(Value::from), 1 => any::<i64>().prop_map(Value::from), 1 => json()]
}

fn doc_of(values: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Doc> {
    prop::collection::vec(
        prop_oneof![
            8 => (key(), values),
            1 => (Just("_inc_date".to_owned()), prop_oneof![date_text().prop_map(Value::from), json()]),
        ],
        0..8,
    )
    .prop_map(|kv| kv.into_iter().collect())
}

fn day() -> impl Strategy<Value = NaiveDate> {
    (1990i32..=sqdata_core::validate::MAX_YEAR, 1u32..=12, 1u32..=28)
        .prop_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).expect("a real day"))
}

fn datetime() -> impl Strategy<Value = NaiveDateTime> {
    (day(), 0u32..24, 0u32..60, 0u32..60).prop_map(|(d, h, m, s)| d.and_hms_opt(h, m, s).expect("a real time"))
}

/// A non-negative finite price, ordinary or extreme.
fn price() -> impl Strategy<Value = f64> {
    prop_oneof![4 => 0.0..1e5f64, 1 => Just(0.0), 1 => 0.0..f64::MAX, 1 => Just(f64::MIN_POSITIVE)]
}

/// A bar price: any price, or one in cents or tenths of a cent as markets
/// quote them (the bar codec's scaled columns).
fn bar_price() -> impl Strategy<Value = f64> {
    prop_oneof![2 => price(), 2 => (0u64..10_000_000).prop_map(|c| c as f64 / 100.0), 1 => (0u64..1u64 << 40).prop_map(|c| c as f64 / 1000.0)]
}

/// Text SilverQuant may write in a name or remark (no control characters).
fn free_text() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[\\PC]{0,16}", 2 => "[平安银行买入委托,\" ]{0,10}", 1 => "[a-z,\"']{0,8}"]
}

fn deal() -> impl Strategy<Value = Deal> {
    (
        datetime(),
        code(),
        free_text(),
        prop::sample::select(DealKind::ALL.to_vec()),
        free_text(),
        price(),
        prop_oneof![0u64..100_000, 0..=(i64::MAX as u64)],
    )
        .prop_map(|(time, code, name, kind, remark, price, volume)| Deal {
            id: "x".into(),
            book: BookId::new("1", "b").expect("a book"),
            time,
            code,
            name,
            kind,
            remark,
            price,
            volume,
            amount: price * volume as f64,
            strategy: String::new(),
        })
}

/// One CSV field: plausible, quoted, with separators, line breaks, huge numbers.
fn csv_field() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}:[0-9]{2}:[0-9]{2}|[0-9]{6}\\.S[HZ]",
        "-?[0-9]{1,25}(\\.[0-9]{0,3})?(e[+-]?[0-9]{1,3})?|NaN|inf|-1",
        prop::sample::select(DealKind::ALL.iter().map(|k| k.as_str().to_owned()).collect::<Vec<_>>()),
        "\"[^\"]{0,6}\"|\"[a-z\"\r\n,]{0,6}\"?",
        "[a-z,\r\n\"]{0,6}",
        ".{0,8}",
    ]
}

/// Mostly `plausible`, sometimes any CSV field.
fn or_field(plausible: impl Strategy<Value = String> + 'static) -> BoxedStrategy<String> {
    prop_oneof![12 => plausible, 1 => csv_field()].boxed()
}

/// A `deal_hist.csv` row: mostly well-formed fields, some of them wrong.
fn deal_row() -> impl Strategy<Value = Vec<String>> {
    let kinds: Vec<String> = DealKind::ALL.iter().map(|k| k.as_str().to_owned()).collect();
    vec![
        or_field(day().prop_map(|d| d.format("%Y-%m-%d").to_string())),
        or_field(datetime().prop_map(|t| t.format("%H:%M:%S").to_string())),
        or_field(code().prop_map(|c| c.to_string())),
        or_field(
            free_text()
                .prop_map(|t| if t.contains([',', '"']) { format!("\"{}\"", t.replace('"', "\"\"")) } else { t }),
        ),
        or_field(prop::sample::select(kinds)),
        or_field("[a-z ]{0,6}"),
        or_field(price().prop_map(pyjson::float_repr)),
        or_field(prop_oneof![any::<u64>().prop_map(|v| v.to_string()), "[0-9]{1,6}\\.0"]),
    ]
}

/// A K-line row by column: mostly well-formed values in every layout pandas
/// writes, sometimes anything.
fn kline_row() -> impl Strategy<Value = BTreeMap<&'static str, String>> {
    let dt = prop_oneof![
        datetime().prop_map(|t| t.format("%Y%m%d").to_string()),
        datetime().prop_map(|t| t.format("%Y%m%d.0").to_string()),
        datetime().prop_map(|t| t.format("%Y-%m-%d").to_string()),
        datetime().prop_map(|t| t.format("%Y%m%d%H%M").to_string()),
        datetime().prop_map(|t| t.format("%Y%m%d%H%M%S").to_string()),
        datetime().prop_map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()),
        "[0-9]{8}|[0-9]{12}|[0-9]{14}|[^\\x00-\\x7f]{8}",
    ];
    let num = || {
        or_field(prop_oneof![price().prop_map(pyjson::float_repr), "-?[0-9]{1,22}(\\.[0-9]{0,3})?(e[+-]?[0-9]{1,3})?"])
    };
    (or_field(dt), num(), num(), num(), num(), or_field(any::<u64>().prop_map(|v| v.to_string())), num(), csv_field())
        .prop_map(|(dt, open, high, low, close, volume, amount, extra)| {
            BTreeMap::from([
                ("datetime", dt),
                ("open", open),
                ("high", high),
                ("low", low),
                ("close", close),
                ("volume", volume),
                ("amount", amount),
                ("extra", extra),
            ])
        })
}

/// CSV text of `header` and rows, plausible or not, with any line endings.
fn csv_text(header: &'static str) -> impl Strategy<Value = String> {
    let row = prop_oneof![
        2 => deal_row().prop_map(|f| f.join(",")),
        1 => prop::collection::vec(csv_field(), 0..10).prop_map(|f| f.join(",")),
    ];
    (
        prop_oneof![3 => Just(header.to_owned()), 1 => Just(format!("\u{feff}{header}")), 1 => ".{0,20}"],
        prop::collection::vec((row, prop_oneof![Just("\r\n"), Just("\n"), Just("\r"), Just("")]), 0..6),
    )
        .prop_map(|(h, rows)| {
            let mut s = h;
            s.push('\n');
            for (r, eol) in rows {
                s.push_str(&r);
                s.push_str(eol);
            }
            s
        })
}

fn bar(datetime: NaiveDateTime, low: f64, spread: f64, open: f64, close: f64, volume: u64, amount: f64) -> Bar {
    Bar { datetime, open, high: low + spread, low, close, volume, amount }
}

/// Valid bars at distinct, sorted times.
fn bars_at(times: impl Strategy<Value = Vec<NaiveDateTime>>) -> impl Strategy<Value = Vec<Bar>> {
    times.prop_flat_map(|mut ts| {
        ts.sort();
        ts.dedup();
        let n = ts.len();
        prop::collection::vec((bar_price(), 0.0..1e3f64, bar_price(), bar_price(), any::<u64>(), bar_price()), n)
            .prop_map(move |vals| {
                ts.iter()
                    .zip(vals)
                    .map(|(t, (low, spread, open, close, volume, amount))| {
                        bar(*t, low, spread, open, close, volume, amount)
                    })
                    .filter(|b| b.validate().is_ok())
                    .collect()
            })
    })
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) || a == b
}

// ---- properties ------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn position_files_parse_any_bytes(b in bytes(200), doc in doc_of(position_value())) {
        let path = Path::new("/b/positions.json");
        check(&positions::parse_doc(path, &b), path)?;
        let mut json = serde_json::to_vec(&Value::Object(doc.clone())).unwrap();
        prop_assert_eq!(&positions::parse_doc(path, &json).unwrap(), &doc);
        // truncated at every point a write could be torn
        for cut in [0, 1, json.len() / 2, json.len().saturating_sub(1)] {
            json.truncate(cut);
            check(&positions::parse_doc(path, &json), path)?;
        }
    }

    #[test]
    fn python_json_dumps_round_trips(doc in doc_of(prop_oneof![position_value(), price_value()])) {
        let text = pyjson::dumps_map(&doc);
        prop_assert!(text.is_ascii(), "ensure_ascii output: {}", text);
        prop_assert_eq!(positions::parse_doc(Path::new("p.json"), text.as_bytes()).unwrap(), doc.clone());
        prop_assert_eq!(pyjson::dumps(&Value::Object(doc)), text);
    }

    #[test]
    fn float_repr_round_trips(f in float()) {
        let s = pyjson::float_repr(f);
        let back: f64 = s.parse().unwrap_or(f64::NAN);
        prop_assert!(same_f64(f, back), "{} → {} → {}", f, s, back);
        if f.is_finite() {
            let v: Value = serde_json::from_str(&s).unwrap();
            prop_assert_eq!(v.as_f64(), Some(f));
        }
    }

    #[test]
    fn derive_any_documents(pos in doc_of(position_value()), max in doc_of(price_value()), min in doc_of(price_value())) {
        let paths = Paths::in_dir(Path::new("/b"));
        match positions::derive(&paths, &pos, &max, &min) {
            Ok(snap) => {
                let codes = pos.keys().filter(|k| !k.starts_with('_')).count();
                prop_assert_eq!(snap.positions.len(), codes);
                for (c, e) in &snap.positions {
                    prop_assert!(pos.contains_key(&c.to_string()));
                    for p in [e.max_price, e.min_price].into_iter().flatten() {
                        prop_assert!(p.is_finite() && p >= 0.0);
                    }
                }
            }
            Err(e) => {
                let Error::Corrupt { location, .. } = &e else { return Err(TestCaseError::fail(format!("{e:?}"))) };
                prop_assert!(
                    [&paths.positions, &paths.max, &paths.min].iter().any(|p| location == &p.display().to_string()),
                    "{}", e
                );
            }
        }
        let path = Path::new("/b/held_days.json");
        let legacy = positions::parse_legacy(path, &pos);
        check(&legacy, path)?;
    }

    #[test]
    fn patching_prices_equals_the_walk(
        entries in prop::collection::btree_map(
            code(),
            (prop::option::of(0u32..40), prop::option::of(price()), prop::option::of(price())),
            1..10,
        ),
        extra in doc_of(price_value()),
        moves in prop::collection::vec((0usize..20, price(), price()), 0..8),
    ) {
        // files as SilverQuant writes them, plus keys sqdata does not model in the price files
        let (mut pos, mut max, mut min) = (Doc::new(), Doc::new(), Doc::new());
        for (c, (day_count, hi, lo)) in &entries {
            pos.insert(c.to_string(), serde_json::json!({"day_count": day_count}));
            if let Some(p) = hi {
                max.insert(c.to_string(), Value::from(*p));
            }
            if let Some(p) = lo {
                min.insert(c.to_string(), Value::from(*p));
            }
        }
        for (k, v) in &extra {
            max.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let paths = Paths::in_dir(Path::new("/b"));
        let Ok(old) = positions::derive(&paths, &pos, &max, &min) else { return Ok(()) };
        let codes: Vec<Code> = old.positions.keys().copied().collect();
        let mut ticks: BTreeMap<Code, sqdata_core::PriceTick> = BTreeMap::new();
        for (i, hi, lo) in moves {
            if let Some(&c) = codes.get(i % codes.len().max(1)) {
                ticks.insert(c, sqdata_core::PriceTick { code: c, high: hi, low: lo });
            }
        }
        let ticks: Vec<_> = ticks.into_values().collect();
        let mut new = old.clone();
        sqdata_core::position::rules::update_extremes(&mut new, &ticks);
        let hint: Vec<Code> = ticks.iter().map(|t| t.code).collect();
        for (doc, pick) in [(&max, (|e: &PositionEntry| e.max_price) as fn(&PositionEntry) -> Option<f64>), (&min, |e: &PositionEntry| e.min_price)] {
            prop_assert_eq!(
                positions::rebuild_prices(doc, &old, &new, pick, &hint),
                positions::rebuild_prices_walk(doc, &old, &new, pick, &hint)
            );
        }
    }

    #[test]
    fn derive_reads_back_what_the_files_say(
        entries in prop::collection::btree_map(
            code(),
            (prop::option::of(any::<u32>()), prop::option::of(price()), prop::option::of(price())),
            0..8,
        ),
        inc in prop::option::of(day()),
    ) {
        let (mut pos, mut max, mut min) = (Doc::new(), Doc::new(), Doc::new());
        if let Some(d) = inc {
            pos.insert("_inc_date".into(), Value::from(d.format("%Y-%m-%d").to_string()));
        }
        let mut want = PositionSnapshot { inc_date: inc, ..Default::default() };
        for (c, (day_count, hi, lo)) in &entries {
            pos.insert(c.to_string(), serde_json::json!({"day_count": day_count}));
            if let Some(p) = hi {
                max.insert(c.to_string(), Value::from(*p));
            }
            if let Some(p) = lo {
                min.insert(c.to_string(), Value::from(*p));
            }
            want.positions.insert(*c, PositionEntry { day_count: *day_count, max_price: *hi, min_price: *lo });
        }
        let paths = Paths::in_dir(Path::new("/b"));
        let parse = |d: &Doc| positions::parse_doc(Path::new("x"), pyjson::dumps_map(d).as_bytes()).unwrap();
        prop_assert_eq!(positions::derive(&paths, &parse(&pos), &parse(&max), &parse(&min)).unwrap(), want);
    }

    #[test]
    fn deal_text_decodes_any_bytes(b in bytes(200), s in ".{0,40}".prop_filter(
        // Private-use code points have no stable GBK form: U+E5E5 has none, and
        // GB18030-2022 moved U+E78D… to the vertical forms U+FE10… (encoding_rs
        // decodes those bytes so). No stock name or remark uses them.
        "private use has no stable GBK form",
        |s| !s.chars().any(|c| ('\u{e000}'..='\u{f8ff}').contains(&c)),
    )) {
        let path = Path::new("/b/deal_hist.csv");
        for enc in [DealEncoding::Auto, DealEncoding::Gbk, DealEncoding::Utf8] {
            check(&deals::decode(path, &b, enc), path)?;
            let detected = deals::detect(&b, enc);
            prop_assert!(detected != DealEncoding::Auto);
            check(&deals::decode(path, &b, detected), path)?;
        }
        prop_assert_eq!(deals::decode(path, &deals::encode(&s, DealEncoding::Gbk), DealEncoding::Gbk).unwrap(), s.clone());
        let utf8 = deals::decode(path, &deals::encode(&s, DealEncoding::Utf8), DealEncoding::Utf8).unwrap();
        prop_assert_eq!(utf8.as_str(), s.strip_prefix('\u{feff}').unwrap_or(&s));
    }

    #[test]
    fn deal_rows_parse_any_text(
        text in prop_oneof![csv_text("日期,时间,代码,名称,类型,注释,成交价,成交量"), ".{0,60}", "[,\"\r\n0-9a-z]{0,40}"],
        with_header in any::<bool>(),
        first_line in 1usize..1_000_000,
    ) {
        let path = Path::new("/b/deal_hist.csv");
        match deals::parse_rows(path, &text, with_header, first_line) {
            Ok((rows, used)) => {
                prop_assert!(used <= text.len() && text.is_char_boundary(used));
                prop_assert!(rows.len() <= text[..used].matches(['\n', '\r']).count());
                for r in rows {
                    prop_assert!(r.price.is_finite() && r.price >= 0.0);
                }
            }
            Err(e) => corrupt(&e, path)?,
        }
        // the same bytes in GBK, as SilverQuant writes them
        let gbk = deals::encode(&text, DealEncoding::Gbk);
        if let Ok(t) = deals::decode(path, &gbk, deals::detect(&gbk, DealEncoding::Auto)) {
            check(&deals::parse_rows(path, &t, with_header, first_line), path)?;
        }
    }

    #[test]
    fn deal_rows_round_trip(ds in prop::collection::vec(deal(), 0..6), gbk in any::<bool>()) {
        let mut text = deals::header_line();
        for d in &ds {
            text.push_str(&deals::format_row(d));
        }
        let enc = if gbk { DealEncoding::Gbk } else { DealEncoding::Utf8 };
        let path = Path::new("/b/deal_hist.csv");
        let text = deals::decode(path, &deals::encode(&text, enc), enc).unwrap();
        let (rows, used) = deals::parse_rows(path, &text, true, 1).unwrap();
        prop_assert_eq!(used, text.len());
        prop_assert_eq!(rows.len(), ds.len());
        for (r, d) in rows.iter().zip(&ds) {
            prop_assert_eq!(r.time, d.time);
            prop_assert_eq!(r.code, d.code);
            prop_assert_eq!(&r.name, &d.name);
            prop_assert_eq!(r.kind, d.kind);
            prop_assert_eq!(&r.remark, &d.remark);
            prop_assert_eq!(r.price.to_bits(), d.price.to_bits());
            prop_assert_eq!(r.volume, d.volume);
            prop_assert_eq!(r.fp, deals::fingerprint(&deals::row_fields(d)));
        }
    }

    #[test]
    fn deal_ids_parse_any_text(
        text in prop_oneof![csv_text("fingerprint,occurrence,id,strategy,amount"), ".{0,60}"],
        entries in prop::collection::vec((any::<u64>(), any::<u32>(), free_text(), free_text(), float()), 0..6),
    ) {
        let path = Path::new("/b/deal_hist.ids.csv");
        check(&deals::parse_ids(path, &text), path)?;
        let mut file = deals::IDS_HEADER.to_owned();
        let mut want = std::collections::HashMap::new();
        for (fp, occ, id, strategy, amount) in entries {
            let e = IdEntry { id, strategy, amount };
            file.push_str(&deals::format_id_line(fp, occ, &e));
            want.insert((fp, occ), e);
        }
        let got = deals::parse_ids(path, &file).unwrap();
        prop_assert_eq!(got.len(), want.len());
        for (k, w) in &want {
            let g = &got[k];
            prop_assert!(g.id == w.id && g.strategy == w.strategy && same_f64(g.amount, w.amount), "{:?} != {:?}", g, w);
        }
    }

    #[test]
    fn assets_parse_any_bytes(
        b in bytes(120),
        text in csv_text("date,asset"),
        rows in prop::collection::btree_map(day(), price(), 0..8),
    ) {
        let path = Path::new("/b/assets.csv");
        check(&assets::parse(path, &b), path)?;
        match assets::parse(path, text.as_bytes()) {
            Ok(m) => prop_assert!(m.values().all(|v| v.is_finite() && *v >= 0.0)),
            Err(e) => corrupt(&e, path)?,
        }
        let rows: BTreeMap<NaiveDate, f64> = rows;
        prop_assert_eq!(assets::parse(path, assets::format(&rows).as_bytes()).unwrap(), rows);
    }

    #[test]
    fn kline_csv_parses_any_bytes(
        b in bytes(160),
        cols in Just(vec!["datetime", "open", "high", "low", "close", "volume", "amount", "extra"]).prop_shuffle(),
        ncols in 5usize..=8,
        rows in prop::collection::vec(kline_row(), 0..6),
        eol in prop_oneof![Just("\n"), Just("\r\n")],
    ) {
        let path = Path::new("/k/000001.SZ.csv");
        check(&kline::parse_kline_csv(path, &b), path)?;
        let mut text = cols[..ncols].join(",");
        for r in rows {
            text.push_str(eol);
            let fields: Vec<&str> = cols[..ncols].iter().map(|c| r.get(c).map(String::as_str).unwrap_or("")).collect();
            text.push_str(&fields.join(","));
        }
        match kline::parse_kline_csv(path, text.as_bytes()) {
            Ok(bars) => {
                prop_assert!(bars.windows(2).all(|w| w[0].datetime < w[1].datetime));
                for b in &bars {
                    prop_assert!(b.validate().is_ok());
                }
            }
            Err(e) => corrupt(&e, path)?,
        }
    }

    #[test]
    fn kline_csv_round_trips(
        daily in bars_at(prop::collection::vec(day().prop_map(|d| d.and_hms_opt(0, 0, 0).unwrap()), 0..8)),
        minute in bars_at(prop::collection::vec(datetime(), 0..8)),
    ) {
        let path = Path::new("k.csv");
        for (period, bars) in [(Period::Day1, daily), (Period::Min1, minute)] {
            let text = kline::format_kline_csv(period, &bars);
            prop_assert_eq!(kline::parse_kline_csv(path, text.as_bytes()).unwrap(), bars);
        }
    }

    #[test]
    fn kline_file_names(name in prop_oneof![
        code().prop_map(|c| format!("{c}.csv")),
        "(sz|SZ)[0-9]{6}\\.csv|[0-9]{6}(\\.sz)?\\.csv|[0-9]{6}\\.S[HZ]\\.(csv|bin|CSV)|[0-9]{6}\\.S[HZ]",
        "(上证50|中国平安)\\.csv|\\.csv|\\.\\.csv|csv|[0-9.]{0,12}",
        ".{0,14}",
    ], raw in bytes(16), c in code()) {
        for ext in ["csv", "bin", ""] {
            if let Some(code) = kline::code_of_file_name(std::ffi::OsStr::new(&name), ext) {
                prop_assert_eq!(format!("{code}.{ext}"), name.clone());
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let _ = kline::code_of_file_name(std::ffi::OsStr::from_bytes(&raw), "csv");
        }
        let _ = raw;
        for ext in ["csv", "bin"] {
            let n = format!("{c}.{ext}");
            prop_assert_eq!(kline::code_of_file_name(std::ffi::OsStr::new(&n), ext), Some(c));
        }
    }

    #[test]
    fn bar_files_decode_any_bytes(
        b in bytes(300),
        count in prop_oneof![Just(u64::MAX), Just(u64::MAX / 56), Just(1u64 << 58), 0u64..8, any::<u64>()],
        times in prop::collection::vec(prop_oneof![any::<i64>(), -1i64 << 40..1i64 << 40], 0..4),
        rest in bytes(200),
        first in any::<i64>(),
        last in any::<i64>(),
    ) {
        let path = Path::new("/bars/1d/qfq/000001.SZ.bin");
        check(&bars::decode(path, &b), path)?;
        // a real header with an arbitrary count, then records with arbitrary
        // times and a matching checksum (so decoding gets to the records)
        for mut file in [bars::encode_v1(&[]), bars::encode(&[])] {
            file[16..24].copy_from_slice(&count.to_le_bytes());
            file[24..32].copy_from_slice(&first.to_le_bytes());
            file[32..40].copy_from_slice(&last.to_le_bytes());
            file.extend_from_slice(&rest);
            check(&bars::decode(path, &file), path)?;
        }
        // version 2: any body with a matching length and checksum decodes to
        // exactly `count` bars or is corrupt
        let mut file = bars::encode(&[]);
        file.truncate(64);
        file[16..24].copy_from_slice(&(count % 64).to_le_bytes());
        file[48..56].copy_from_slice(&(rest.len() as u64).to_le_bytes());
        let sum = bars::v2_checksum(&file[..64], &rest);
        file[40..48].copy_from_slice(&sum.to_le_bytes());
        file.extend_from_slice(&rest);
        match bars::decode(path, &file) {
            Ok(decoded) => prop_assert_eq!(decoded.len() as u64, count % 64),
            Err(e) => corrupt(&e, path)?,
        }
        let mut body = Vec::new();
        for (i, t) in times.iter().enumerate() {
            body.extend_from_slice(&t.to_le_bytes());
            body.extend((0..48).map(|j| rest.get(i * 48 + j).copied().unwrap_or(0)));
        }
        let mut file = bars::encode_v1(&[]);
        file[16..24].copy_from_slice(&(times.len() as u64).to_le_bytes());
        file[40..48].copy_from_slice(&xxhash_rust::xxh3::xxh3_64(&body).to_le_bytes());
        file.extend_from_slice(&body);
        match bars::decode(path, &file) {
            Ok(decoded) => {
                prop_assert_eq!(decoded.len(), times.len());
                prop_assert_eq!(&bars::encode_v1(&decoded)[64..], &file[64..]);
            }
            Err(e) => corrupt(&e, path)?,
        }
        let dir = tempfile::tempdir().unwrap();
        let on_disk = dir.path().join("h.bin");
        std::fs::write(&on_disk, &file).unwrap();
        if let Ok(h) = bars::read_header(&on_disk) {
            check(&bars::header_times(&on_disk, &h), &on_disk)?;
        }
    }

    #[test]
    fn bar_files_round_trip(bars_ in bars_at(prop::collection::vec(datetime(), 0..8))) {
        let path = Path::new("x.bin");
        let enc = bars::encode(&bars_);
        let back = bars::decode(path, &enc).unwrap();
        // bit for bit (a -0.0 or a scaled price must come back as it went in)
        prop_assert_eq!(back.len(), bars_.len());
        for (a, b) in back.iter().zip(&bars_) {
            prop_assert_eq!(a.datetime, b.datetime);
            prop_assert_eq!(a.volume, b.volume);
            for (x, y) in [(a.open, b.open), (a.high, b.high), (a.low, b.low), (a.close, b.close), (a.amount, b.amount)] {
                prop_assert_eq!(x.to_bits(), y.to_bits());
            }
        }
        prop_assert_eq!(bars::decode(path, &bars::encode_v1(&bars_)).unwrap(), bars_);
    }

    #[test]
    fn legacy_books_read_any_files(
        held in prop_oneof![
            doc_of(prop_oneof![any::<u32>().prop_map(Value::from), Just(Value::Null), json()])
                .prop_map(|d| serde_json::to_vec(&d).unwrap()),
            bytes(60),
        ],
        max in prop::option::of(prop_oneof![doc_of(price_value()).prop_map(|d| serde_json::to_vec(&d).unwrap()), bytes(40)]),
        min in prop::option::of(doc_of(price_value()).prop_map(|d| serde_json::to_vec(&d).unwrap())),
    ) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("held_days.json"), &held).unwrap();
        for (name, b) in [("max_price.json", &max), ("min_price.json", &min)] {
            if let Some(b) = b {
                std::fs::write(dir.path().join(name), b).unwrap();
            }
        }
        match silverquant::read_legacy_held_days(dir.path()) {
            Ok(Some(legacy)) => {
                check(&silverquant::orphan_prices(dir.path(), &legacy.snapshot), dir.path())?;
            }
            Ok(None) => return Err(TestCaseError::fail("held_days.json exists")),
            Err(e) => corrupt(&e, dir.path())?,
        }
    }
}

/// A configured quote TTL of `u64::MAX` overflowed `now + ttl` (a panic in
/// a debug build) on the first `put_quotes`.
#[tokio::test]
async fn huge_quote_ttl_does_not_overflow() {
    use sqdata_core::{Quote, QuoteStore};
    let dir = tempfile::tempdir().unwrap();
    let store =
        crate::FileStore::open(crate::FileConfig { quote_ttl_ms: u64::MAX, ..crate::FileConfig::at(dir.path()) })
            .unwrap();
    let code = Code::parse("000001.SZ").unwrap();
    let q = Quote {
        code,
        time: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(9, 30, 0).unwrap(),
        last: 11.0,
        open: 10.0,
        high: 11.5,
        low: 9.5,
        pre_close: 10.0,
        volume: 100,
        amount: 1100.0,
    };
    store.put_quotes(std::slice::from_ref(&q)).await.unwrap();
    assert_eq!(store.get_quotes(&[code]).await.unwrap(), vec![q]);
}

/// serde_json stops at its recursion limit: a deeply nested document is
/// corrupt, not a stack overflow.
#[test]
fn deeply_nested_json_is_corrupt() {
    let path = Path::new("/b/positions.json");
    for open in ["[", "{\"a\":"] {
        let text = open.repeat(100_000);
        let e = positions::parse_doc(path, text.as_bytes()).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    }
}
