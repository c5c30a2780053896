//! Hostile input in every parameter of every operation (path, query and
//! body fields, taken from the OpenAPI document), as an admin so the
//! checks behind authentication are reached: never a server error, and a
//! refused request changes nothing — every registry table, the audit
//! trail and every file of the data folder stay byte for byte. Free-text
//! fields may store such text (as data: it round-trips); identifiers must
//! refuse it. Then bodies: deep nesting, duplicate keys, huge numbers,
//! oversized bodies and headers, a slow client.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::rbac::body_of;

const HOSTILE: &[&str] = &[
    "' OR '1'='1",
    "1; DROP TABLE sq_users; --",
    "admin'--",
    "\" OR \"\"=\"",
    "') UNION ALL SELECT * FROM system.users --",
    "{name:String}",
    "1 FORMAT JSON",
    "{\"$gt\":\"\"}",
    "\"}],\"x\":{\"",
    "a\u{0}b",
    "99999999999999999999999999999",
    "-1",
    "1e309",
    "NaN",
    "../../etc/passwd",
    "..",
    "./.",
    "ACC_R/../ACC_N",
    "%2e%2e%2f",
    "/etc/passwd",
    "\u{202e}gnp.exe",
    "line\nbreak",
    "",
    " ",
];

/// Free text: stored as given (the test checks it round-trips), never executed.
const FREE_TEXT: &[&str] =
    &["name", "note", "description", "kind", "label", "broker", "remark", "strategy", "password", "current", "new"];

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_in_every_parameter_change_nothing() {
    let s = Srv::start().await;
    let (st, _) = s
        .post(
            "/api/v1/users",
            &s.admin,
            json!({ "name": "mxu", "role": "viewer", "password": "a long enough passphrase" }),
        )
        .await;
    assert_eq!(st, 200);
    let doc: Value = s.get("/api/v1/openapi.json", &Who::Anonymous).await.1;
    let schemas = doc["components"]["schemas"].clone();
    let mut failures = Vec::new();
    let mut sent = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            let (_, body) = body_of(id, 0).unwrap_or((String::new(), Some(json!({}))));
            let audited_anyway = id == "login" || id == "refresh";
            // the targets: path parameters, query parameters, top-level body fields
            let mut targets: Vec<(&str, String)> = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let place = match p["in"].as_str().unwrap() {
                    "path" => "path",
                    "header" => "header",
                    _ => "query",
                };
                targets.push((place, p["name"].as_str().unwrap().to_string()));
            }
            let body_schema = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .map(|r| schemas[r.rsplit('/').next().unwrap()].clone());
            if let Some(sch) = &body_schema {
                for (k, _) in sch["properties"].as_object().into_iter().flatten() {
                    targets.push(("body", k.clone()));
                }
            }
            for (place, name) in &targets {
                for h in HOSTILE {
                    let mut url = path
                        .replace("{account}", ACC_W)
                        .replace("{book}", BOOK)
                        .replace("{user}", "mxu")
                        .replace("{id}", "nokey")
                        .replace("{code}", "000001.SZ");
                    let mut query = String::new();
                    let mut headers: Vec<(&str, &str)> = Vec::new();
                    let mut b = body.clone();
                    match *place {
                        "path" => url = url.replace(&enc(&param_value(name)), &enc(h)),
                        "query" => query = format!("?{}={}", enc(name), enc(h)),
                        "header" => {
                            if reqwest::header::HeaderValue::from_str(h).is_err() {
                                continue; // not sendable as a header at all
                            }
                            headers.push((name.as_str(), h));
                        }
                        _ => {
                            let mut o = b.clone().unwrap_or(json!({}));
                            // a string field gets the string; a list of strings gets it as an element
                            o[name] = if o[name].is_array() { json!([h]) } else { json!(h) };
                            b = Some(o);
                        }
                    }
                    let before = s.state().await;
                    let (st, _, text) = s
                        .call_raw(
                            &method.to_uppercase(),
                            &format!("{url}{query}"),
                            &s.admin,
                            b.as_ref().map(Value::to_string),
                            &headers,
                        )
                        .await;
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                    sent += 1;
                    let what = format!("{method} {path} {place} {name}={h:?}");
                    if st >= 500 {
                        failures.push(format!("{what}: {st} {v:.200}"));
                        continue;
                    }
                    let ok = (200..300).contains(&st);
                    let free = *place == "body" && FREE_TEXT.contains(&name.as_str());
                    // `NaN` or `99999…` are fine account or user names: data, not an attack
                    let plain = !h.is_empty() && h.bytes().all(|c| c.is_ascii_alphanumeric());
                    if ok && method != "get" && !free && !plain {
                        failures.push(format!("{what}: accepted ({st}) an identifier {v:.200}"));
                    }
                    if !ok && !audited_anyway && s.state().await != before {
                        failures.push(format!("{what}: refused ({st}) but something changed"));
                    }
                    if st == 400 && v["data"]["field"].as_str().is_none_or(str::is_empty) {
                        failures.push(format!("{what}: 400 without the field: {v:.200}"));
                    }
                }
            }
        }
    }
    // the tables are all there and whole
    assert!(sqdata::AuthStore::users(&*s.reg).await.unwrap().len() >= 4);
    sqdata::RegistryStore::dump(&*s.reg).await.unwrap().validate().unwrap();
    assert!(failures.is_empty(), "{} of {sent} wrong:\n{}", failures.len(), failures.join("\n"));
    assert!(sent > 1000, "only {sent} requests");
}

fn param_value(name: &str) -> String {
    match name {
        "account" => ACC_W.into(),
        "book" => BOOK.into(),
        "user" => "mxu".into(),
        "id" => "nokey".into(),
        "code" => "000001.SZ".into(),
        other => panic!("unknown path parameter {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_refused_without_changes() {
    let s = Srv::start().await;
    let buys = format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions/buys");
    let extremes = format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions/extremes");
    let before = s.state().await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!("{{\"codes\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, String)> = vec![
        (&buys, deep),
        (&buys, deep_obj),
        (&buys, r#"{"codes":["000001.SZ"],"codes":["600000.SH"]}"#.into()),
        (&buys, r#"{"codes":["000001.SZ"],"extra":1}"#.into()),
        (&buys, r#"{"codes":"000001.SZ"}"#.into()),
        (&buys, "not json".into()),
        (&buys, "".into()),
        (&buys, "\u{0}".into()),
        (&buys, r#"{"codes":["000001.SZ"]"#.into()),
        (&extremes, r#"{"ticks":[{"code":"000001.SZ","high":1e400,"low":1}]}"#.into()),
        (&extremes, r#"{"ticks":[{"code":"000001.SZ","high":-1,"low":1}]}"#.into()),
        (&extremes, r#"{"ticks":[{"code":"000001.SZ","high":99999999999999999999999999999999999,"low":1}]}"#.into()),
        (&extremes, r#"{"ticks":[{"code":"000001.SZ","high":"NaN","low":1}]}"#.into()),
        ("/api/v1/deals", r#"{"deals":[{"account":"ACC_W","book":"b1","id":"x","time":"2025-01-02 09:31:00","code":"000001.SZ","kind":"buy_fill","price":10,"volume":1180591620717411303424}]}"#.into()),
        ("/api/v1/deals", r#"{"deals":[{"account":"ACC_W","book":"b1","id":"x\u0000","time":"2025-01-02 09:31:00","code":"000001.SZ","kind":"buy_fill","price":10,"volume":1}]}"#.into()),
    ];
    for (path, body) in &cases {
        let (st, _, text) = s.call_raw("POST", path, &s.trader, Some(body.clone()), &[]).await;
        assert!(st == 400 || st == 413, "{path} {body:.80}: {st} {text:.300}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["data"]["field"].is_string() || st == 413, "the field is named: {text}");
    }
    assert_eq!(s.state().await, before, "a refused body changed something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_headers_and_slow_clients() {
    let s = Srv::start_with(|c| {
        c.max_body_bytes = 64 * 1024;
        c.login_per_minute = 100_000;
        c.requests_per_second = 100_000;
    })
    .await;
    let buys = format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions/buys");
    let before = s.state().await;
    let big = json!({ "codes": vec!["000001.SZ"; 10_000] }).to_string();
    assert!(big.len() > 64 * 1024);
    let (st, _, text) = s.call_raw("POST", &buys, &s.trader, Some(big), &[]).await;
    assert_eq!(st, 413, "{text:.200}");
    assert_eq!(s.state().await, before);
    // a header past the head's cap: 431, and the server goes on
    let huge = "x".repeat(64 * 1024);
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(format!("GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = c.read(&mut buf).await.unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
    // many headers
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes()).await.unwrap();
    let n = c.read(&mut buf).await.unwrap_or(0);
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.is_empty() || head.starts_with("HTTP/1.1 431") || head.starts_with("HTTP/1.1 400"), "{head}");
    // a client that never finishes its head is cut off (slowloris)
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(std::time::Duration::from_secs(30), c.read(&mut buf)).await;
    assert!(r.is_ok(), "the connection was held past 30 s");
    assert!(started.elapsed() >= std::time::Duration::from_secs(5), "cut off after {:?}", started.elapsed());
    assert_eq!(s.get("/healthz", &Who::Anonymous).await.0, 200);
}

/// 400 is for what the document rules out — also what the core alone
/// would take (`YYYYMMDD`, blanks around a code, `+2`) — and names the
/// field; what the document allows but cannot be carried out — `from`
/// after `to`, a high below its low, a code twice, a name taken, a user
/// that does not exist — is 422 (409 for the name), named too, and
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_decides_400_and_what_it_cannot_say_is_422() {
    let s = Srv::start().await;
    let deals = format!("/api/v1/accounts/{ACC_W}/deals");
    for (path, field) in [
        (format!("{deals}?from=20250101"), "from"),
        (format!("{deals}?from=2025-02-30"), "from"),
        (format!("{deals}?code=%20000001.SZ"), "code"),
        (format!("{deals}?code=100000"), "code"),
        (format!("{deals}?kind=%20buy_fill"), "kind"),
        (format!("{deals}?page=%2B2"), "page"),
        (format!("{deals}?page=2.5"), "page"),
        ("/api/v1/klines/000001.SZ?from=2025-01-02T09:30:00".to_string(), "from"),
        ("/api/v1/quotes?codes=000001.SZ,,600000.SH".to_string(), "codes"),
        ("/api/v1/audit?since=2025-01-02%2000:00:00Z".to_string(), "since"),
    ] {
        let (st, v) = s.get(&path, &s.admin).await;
        assert_eq!((st, v["data"]["field"].as_str()), (400, Some(field)), "{path}: {v}");
    }
    // `2.0` is the integer 2 (what JSON Schema's `integer` allows)
    assert_eq!(s.get(&format!("{deals}?page=2.0"), &s.viewer).await.0, 200);

    let before = s.state().await;
    // a struct is an object, never the array of its fields
    for body in ["[null, null]", "[\"viewer\", \"active\"]"] {
        let (st, _, text) = s.call_raw("PATCH", "/api/v1/users/viewer", &s.admin, Some(body.into()), &[]).await;
        assert_eq!(st, 400, "{body}: {text}");
        assert!(text.contains("\"field\":\"body\""), "{text}");
    }
    let extremes = format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions/extremes");
    let tick = |code: &str, high: f64, low: f64| json!({ "code": code, "high": high, "low": low });
    for (path, who, body, want, field) in [
        (extremes.clone(), &s.trader, json!({ "ticks": [tick("000001.SZ", 9.0, 10.0)] }), 422, "ticks[0].high"),
        (
            extremes.clone(),
            &s.trader,
            json!({ "ticks": [tick("000001.SZ", 10.0, 9.0), tick("SZ000001", 10.0, 9.0)] }),
            422,
            "ticks[1].code",
        ),
        (
            "/api/v1/users".to_string(),
            &s.admin,
            json!({ "name": "viewer", "role": "viewer", "password": PW }),
            409,
            "name",
        ),
        ("/api/v1/api-keys".to_string(), &s.admin, json!({ "user": "nobody", "label": "x" }), 422, "user"),
    ] {
        let (st, v) = s.post(&path, who, body.clone()).await;
        assert_eq!((st, v["data"]["field"].as_str()), (want, Some(field)), "{path} {body}: {v}");
    }
    assert_eq!(s.state().await, before, "a refused request changed something");
    for (path, field) in [
        (format!("{deals}?from=2025-02-01&to=2025-01-01"), "from"),
        (format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/assets?from=2025-02-01&to=2025-01-01"), "from"),
        ("/api/v1/klines/000001.SZ?from=2025-01-02%2010:00:00&to=2025-01-02".to_string(), "from"),
    ] {
        let (st, v) = s.get(&path, &s.trader).await;
        assert_eq!((st, v["data"]["field"].as_str()), (422, Some(field)), "{path}: {v}");
    }
}
