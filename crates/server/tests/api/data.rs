//! The data endpoints do what they say: positions through their life,
//! deals paged and exported whole, K-lines never cut silently, parameters
//! with ETag/If-Match, the envelope, the document and its UI.

use serde_json::{Value, json};
use sqdata::{Adjust, Bar, BarKey, BarSeries, BarWriteMode, BookId, Code, Period, sample};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_through_a_trading_day() {
    let s = Srv::start().await;
    let base = format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions");
    let ok = |r: (u16, Value)| {
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(r.1["code"], 0);
        r.1["data"].clone()
    };
    ok(s.post(&format!("{base}/buys"), &s.trader, json!({ "codes": ["000001.SZ", "SH600000"] })).await);
    ok(s.post(&format!("{base}/inc-held-days"), &s.trader_key, json!({ "date": "2025-01-03" })).await);
    let changed = ok(s
        .post(
            &format!("{base}/extremes"),
            &s.trader,
            json!({ "ticks": [{ "code": "000001.SZ", "high": 11.0, "low": 9.0 }] }),
        )
        .await);
    assert_eq!(changed[0]["code"], "000001.SZ");
    ok(s.post(&format!("{base}/sells"), &s.trader, json!({ "code": "600000.SH" })).await);
    let p = ok(s.get(&base, &s.viewer).await);
    assert_eq!(p["inc_date"], "2025-01-03");
    let by: std::collections::BTreeMap<String, Value> = p["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["code"].as_str().unwrap().to_string(), x.clone()))
        .collect();
    assert_eq!(by["000001.SZ"]["day_count"], 1);
    assert_eq!(by["000001.SZ"]["max_price"], 11.0);
    // the same as the store says (the API is a view, not a copy)
    let snap = s.opened.stores.positions.snapshot(&BookId::new(ACC_W, BOOK).unwrap()).await.unwrap();
    assert_eq!(snap.positions.len(), p["positions"].as_array().unwrap().len());
    let r = ok(s.post(&format!("{base}/reconcile"), &s.trader, json!({ "codes": ["000001.SZ", "000002.SZ"] })).await);
    assert_eq!(r["added"], json!(["000002.SZ"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deals_page_aggregate_and_export_whole() {
    let s = Srv::start().await;
    let book = BookId::new(ACC_R, BOOK).unwrap();
    let days = sample::weekdays(chrono::NaiveDate::from_ymd_opt(2025, 3, 3).unwrap(), 30);
    let codes = sample::fresh_codes(5);
    let mut deals = sample::deals(&book, &codes, &days, 50, "e");
    deals[0].name = "a,\"quoted\" name".into();
    s.opened.stores.deals.record_batch(&deals).await.unwrap();
    let base = format!("/api/v1/accounts/{ACC_R}/deals");
    let (st, v) = s.get(&format!("{base}?pageSize=100&page=3"), &s.viewer).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["total"], 1500);
    assert_eq!(v["data"]["page"], 3);
    assert_eq!(v["data"]["pageSize"], 100);
    assert_eq!(v["data"]["data"].as_array().unwrap().len(), 100);
    let (_, v) = s.get(&format!("{base}?from=2025-03-03&to=2025-03-03&kind=限买委托"), &s.viewer).await;
    assert_eq!(v["data"]["total"], 25, "{v:.300}");
    let (_, v) = s.get(&format!("{base}/aggregate?by=month"), &s.viewer).await;
    let months = v["data"].as_array().unwrap();
    assert_eq!(months.iter().map(|m| m["count"].as_u64().unwrap()).sum::<u64>(), 1500);
    // the export streams every deal, past any page size
    let (st, h, text) = s.call_raw("GET", &format!("{base}/export"), &s.viewer, None, &[]).await;
    assert_eq!(st, 200);
    assert_eq!(h["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1500);
    let ids: std::collections::BTreeSet<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1500, "no duplicates");
    let (_, _, csv) = s.call_raw("GET", &format!("{base}/export?format=csv"), &s.viewer, None, &[]).await;
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1500);
    assert!(rows.iter().any(|r| &r[4] == "a,\"quoted\" name"), "CSV quoting round-trips");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klines_continue_with_next_from_and_never_truncate_silently() {
    let s = Srv::start().await;
    let code: Code = "000001.SZ".parse().unwrap();
    let key = BarKey::new(code, Period::Day1, Adjust::Qfq);
    let bars: Vec<Bar> = sample::weekdays(chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(), 250)
        .iter()
        .enumerate()
        .map(|(i, d)| Bar {
            datetime: d.and_hms_opt(0, 0, 0).unwrap(),
            open: 10.0 + i as f64 / 100.0,
            high: 11.0 + i as f64 / 100.0,
            low: 9.0,
            close: 10.5,
            volume: 1000 + i as u64,
            amount: 10_000.0,
        })
        .collect();
    s.opened.stores.bars.save_bars(&BarSeries { key, bars: bars.clone() }, BarWriteMode::Replace).await.unwrap();
    let mut from = String::new();
    let mut got = Vec::new();
    for _ in 0..10 {
        let q = if from.is_empty() {
            "?limit=100".to_string()
        } else {
            format!("?limit=100&from={}", from.replace(' ', "%20"))
        };
        let (st, v) = s.get(&format!("/api/v1/klines/000001.SZ{q}"), &s.viewer).await;
        assert_eq!(st, 200, "{v}");
        got.extend(v["data"]["bars"].as_array().unwrap().iter().map(|b| b["volume"].as_u64().unwrap()));
        match v["data"]["next_from"].as_str() {
            Some(n) => from = n.to_string(),
            None => break,
        }
    }
    assert_eq!(got, bars.iter().map(|b| b.volume).collect::<Vec<_>>(), "every bar once, in order");
    let (_, v) = s.get("/api/v1/klines/000001.SZ?layout=columns&limit=5", &s.trader_key).await;
    assert_eq!(v["data"]["columns"]["volume"], json!([1000, 1001, 1002, 1003, 1004]));
    assert!(v["data"]["next_from"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_versions_diff_rollback_and_lost_updates() {
    let s = Srv::start().await;
    let url = format!("/api/v1/accounts/{ACC_W}/strategies/{BOOK}/params");
    let put = |body: Value, etag: Option<String>| {
        let s = &s;
        let url = url.clone();
        async move {
            let h: Vec<(&str, &str)> = etag.as_deref().map(|e| vec![("if-match", e)]).unwrap_or_default();
            s.call_raw("PUT", &url, &s.trader, Some(body.to_string()), &h).await
        }
    };
    let (st, h, b) = put(json!({ "params": { "stop": 0.05, "grid": { "n": 5 } }, "note": "first" }), None).await;
    assert_eq!(st, 200, "{b}");
    let etag1 = h["etag"].to_str().unwrap().to_string();
    let (_, h, _) = s.call_raw("GET", &url, &s.viewer, None, &[]).await;
    assert_eq!(h["etag"].to_str().unwrap(), etag1);
    // two editors from version 1: the second is refused (412), nothing stored
    let (st, _, _) = put(json!({ "params": { "stop": 0.06, "grid": { "n": 5 } } }), Some(etag1.clone())).await;
    assert_eq!(st, 200);
    let (st, _, b) = put(json!({ "params": { "stop": 0.07, "grid": { "n": 5 } } }), Some(etag1.clone())).await;
    assert_eq!(st, 412, "{b}");
    let (_, v) = s.get(&format!("{url}/versions"), &s.viewer).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = s.get(&format!("{url}/diff?from=1&to=2"), &s.viewer).await;
    assert!(v["data"].to_string().contains("stop"), "{v}");
    let (st, v) = s.post(&format!("{url}/rollback"), &s.trader, json!({ "to": 1 })).await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = s.get(&url, &s.viewer).await;
    assert_eq!(v["data"]["params"]["stop"], 0.05, "{v}");
    // no such version: valid input that cannot be carried out (422), named
    let (st, v) = s.post(&format!("{url}/rollback"), &s.trader, json!({ "to": 99 })).await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["data"]["field"], "to", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_the_document_and_its_ui() {
    let s = Srv::start().await;
    let (st, v) = s.get("/api/v1/nope", &s.viewer).await;
    assert_eq!((st, v["code"].as_u64()), (404, Some(404)), "{v}");
    let (st, v) = s.get(&format!("/api/v1/accounts/{ACC_R}/deals?pagesize=5"), &s.viewer).await;
    assert_eq!(st, 400);
    assert_eq!(v["data"]["field"], "pagesize", "a typo names the parameter: {v}");
    let (st, v) = s.get("/api/v1/openapi.json", &Who::Anonymous).await;
    assert_eq!(st, 200);
    assert_eq!(v["openapi"].as_str().map(|x| &x[..2]), Some("3."));
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(v, committed);
    let (st, h, html) = s.call_raw("GET", "/api/v1/docs/", &Who::Anonymous, None, &[]).await;
    assert_eq!(st, 200);
    assert!(html.contains("swagger-ui-bundle.js") && !html.contains("http"), "local assets only");
    assert!(h["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    for f in ["swagger-ui-bundle.js", "swagger-ui.css", "init.js"] {
        let (st, _, body) = s.call_raw("GET", &format!("/api/v1/docs/{f}"), &Who::Anonymous, None, &[]).await;
        assert_eq!(st, 200, "{f}");
        assert!(body.len() > 100, "{f}");
    }
    assert_eq!(s.call_raw("GET", "/api/v1/docs/../openapi.json", &Who::Anonymous, None, &[]).await.0 / 100, 2);
    assert_eq!(s.call_raw("GET", "/api/v1/docs/%2e%2e%2fCargo.toml", &Who::Anonymous, None, &[]).await.0, 404);
    // no CORS unless allow-listed
    let (_, h, _) = s.call_raw("GET", "/api/v1/auth/me", &s.viewer, None, &[("origin", "https://evil.example")]).await;
    assert!(h.get("access-control-allow-origin").is_none());
    let (_, h, _) = s.call_raw("GET", "/api/v1/auth/me", &s.viewer, None, &[]).await;
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_only_the_allowed_origin() {
    let s = Srv::start_with(|c| {
        c.cors_origins = vec!["https://desk.example".into()];
        c.login_per_minute = 1000;
    })
    .await;
    let pre = |o: &'static str| {
        let s = &s;
        async move {
            s.call_raw(
                "OPTIONS",
                "/api/v1/auth/me",
                &Who::Anonymous,
                None,
                &[
                    ("origin", o),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "authorization"),
                ],
            )
            .await
        }
    };
    let (_, h, _) = pre("https://desk.example").await;
    assert_eq!(h["access-control-allow-origin"], "https://desk.example");
    let (_, h, _) = pre("https://evil.example").await;
    assert!(h.get("access-control-allow-origin").is_none());
}
