//! The RBAC matrix, generated from the served OpenAPI document: every
//! operation × {anonymous, viewer, trader, admin, the trader's API key} ×
//! {granted read, granted write, not granted, missing account} gets
//! exactly the answer its declared scope implies. A new operation without
//! a row in `body_of` fails here.

use serde_json::{Value, json};

use crate::common::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Read,
    Write,
    NotGranted,
    Missing,
    /// The operation names no account.
    NoAccount,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum P {
    Anonymous,
    Viewer,
    Trader,
    Admin,
    TraderKey,
}

#[derive(Debug, PartialEq)]
enum Want {
    Ok,
    Status(u16),
    /// Admin on a missing account: created (PUT) or not found.
    OkOrNotFound,
}

/// A valid request for each operation: (query, body). `None`: unknown
/// operation (the test fails: add it).
pub(crate) fn body_of(op: &str, n: usize) -> Option<(String, Option<Value>)> {
    let none = |q: &str| Some((q.to_string(), None));
    let body = |v: Value| Some((String::new(), Some(v)));
    match op {
        "me" | "list_accounts" | "get_account" | "list_strategies" | "get_params" | "param_versions" | "positions"
        | "deals" | "aggregate" | "assets" | "status" | "list_users" | "get_user" | "list_grants" | "list_keys"
        | "audit" | "access_log" | "export" => none(""),
        "param_diff" => none("?from=1&to=2"),
        "klines" => none("?period=1d"),
        "quotes" => none("?codes=000001.SZ"),
        "logout" => body(json!({})),
        "rollout" => none(""),
        "check" | "promote" | "rollback" => body(json!({})),
        "record" => body(json!({ "deals": [] })), // filled per account by the matrix
        "password" => body(json!({ "current": "not the password", "new": "another long passphrase" })),
        "put_account" => body(json!({ "name": "x", "broker": "qmt" })),
        "put_strategy" => body(json!({ "description": "d", "kind": "grid", "enabled": true })),
        "put_params" => body(json!({ "params": { "n": n }, "note": "matrix" })),
        "rollback_params" => body(json!({ "to": 1 })),
        "buys" | "reconcile" => body(json!({ "codes": ["000001.SZ"] })),
        "sells" => body(json!({ "code": "000001.SZ" })),
        "inc_held_days" => body(json!({ "date": "2025-01-02" })),
        "extremes" => body(json!({ "ticks": [{ "code": "000001.SZ", "high": 10.5, "low": 9.5 }] })),
        "create_user" => {
            body(json!({ "name": format!("new{n}"), "role": "viewer", "password": "a long enough passphrase" }))
        }
        "patch_user" => body(json!({ "role": "viewer" })),
        "unlock_user" => body(json!({})),
        "put_grant" => body(json!({ "right": "read" })),
        "delete_grant" | "revoke_key" => none(""),
        "create_key" => body(json!({ "user": "mxu", "label": "matrix" })),
        _ => None,
    }
}

fn want(scope: &str, op: &str, p: P, c: Case) -> Want {
    if p == P::Anonymous {
        return Want::Status(401);
    }
    match scope {
        "authenticated" => {
            if p == P::TraderKey && (op == "logout" || op == "password") {
                Want::Status(403) // a key has no session or password
            } else if op == "password" {
                Want::Status(422) // the wrong current password, after the checks (named: `current`)
            } else {
                Want::Ok
            }
        }
        // the embedded tier has no rollout: an admin gets 409, after the checks
        "admin" if p == P::Admin && ["rollout", "check", "promote", "rollback"].contains(&op) => Want::Status(409),
        "admin" => match (p, c) {
            (P::Admin, Case::Missing) => Want::OkOrNotFound,
            (P::Admin, _) => Want::Ok,
            _ => Want::Status(403),
        },
        "account:read" | "account:write" => {
            let write = scope == "account:write";
            match (p, c) {
                (P::Admin, Case::Missing) => Want::Status(404),
                (P::Admin, _) => Want::Ok,
                (_, Case::NotGranted | Case::Missing) => Want::Status(404),
                (_, Case::Read) => {
                    if write {
                        Want::Status(403)
                    } else {
                        Want::Ok
                    }
                }
                (P::Viewer, Case::Write) => {
                    if write {
                        Want::Status(403) // granted write, capped at read by the role
                    } else {
                        Want::Ok
                    }
                }
                (_, Case::Write) => Want::Ok,
                (_, Case::NoAccount) => unreachable!(),
            }
        }
        other => panic!("unknown scope {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_every_principal_every_account() {
    let s = Srv::start().await;
    // versions 1 and 2 of every book's parameters; a throwaway user for the user operations
    for a in [ACC_R, ACC_W, ACC_N] {
        let b = sqdata::BookId::new(a, BOOK).unwrap();
        for n in 0..2 {
            let mut m = serde_json::Map::new();
            m.insert("n".into(), json!(n));
            sqdata::RegistryStore::put_params(&*s.reg, &b, &m, "seed", "").await.unwrap();
        }
    }
    let (st, v) = s
        .post(
            "/api/v1/users",
            &s.admin,
            json!({ "name": "mxu", "role": "viewer", "password": "a long enough passphrase" }),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    let doc: Value = s.get("/api/v1/openapi.json", &Who::Anonymous).await.1;
    let mut checked = 0;
    let mut n = 0;
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            let sec = &op["security"][0];
            let scope = sec.as_object().and_then(|o| o.values().next()).and_then(|v| v[0].as_str()).unwrap_or("public");
            if scope == "public" {
                continue; // login and refresh: their own tests
            }
            let cases: &[Case] = if path.contains("{account}") || id == "record" {
                &[Case::Read, Case::Write, Case::NotGranted, Case::Missing]
            } else {
                &[Case::NoAccount]
            };
            for &c in cases {
                for p in [P::Anonymous, P::Viewer, P::Trader, P::Admin, P::TraderKey] {
                    n += 1;
                    let account = match c {
                        Case::Read => ACC_R.to_string(),
                        Case::Write => ACC_W.to_string(),
                        Case::NotGranted => ACC_N.to_string(),
                        Case::Missing | Case::NoAccount => format!("MISSING{n}"),
                    };
                    // a fresh session for logout (it ends the session), else the seeded ones
                    let fresh = |u: &str| Who::Bearer(u.to_string());
                    let who = match (p, id == "logout") {
                        (P::Anonymous, _) => Who::Anonymous,
                        (P::TraderKey, _) => s.trader_key.clone(),
                        (P::Viewer, true) => fresh(&s.login("viewer", PW).await),
                        (P::Trader, true) => fresh(&s.login("trader", PW).await),
                        (P::Admin, true) => fresh(&s.login("admin", PW).await),
                        (P::Viewer, false) => s.viewer.clone(),
                        (P::Trader, false) => s.trader.clone(),
                        (P::Admin, false) => s.admin.clone(),
                    };
                    let (q, mut body) =
                        body_of(id, n).unwrap_or_else(|| panic!("no request for {id}: add it to body_of"));
                    if id == "record" {
                        body = Some(json!({ "deals": [{
                            "account": account, "book": BOOK, "id": format!("d{n}"), "time": "2025-01-02 09:31:00",
                            "code": "000001.SZ", "kind": "buy_fill", "price": 10.0, "volume": 100
                        }] }));
                    }
                    let key_id = if id == "revoke_key" {
                        let (_, v) = s.post("/api/v1/api-keys", &s.admin, json!({ "user": "mxu", "label": "x" })).await;
                        v["data"]["id"].as_str().unwrap().to_string()
                    } else {
                        String::new()
                    };
                    let url = path
                        .replace("{account}", &account)
                        .replace("{book}", BOOK)
                        .replace("{user}", "mxu")
                        .replace("{id}", &key_id)
                        .replace("{code}", "000001.SZ");
                    let (st, v) = s.call(&method.to_uppercase(), &format!("{url}{q}"), &who, body.as_ref()).await;
                    let w = want(scope, id, p, c);
                    let good = match w {
                        Want::Ok => (200..300).contains(&st),
                        Want::OkOrNotFound => (200..300).contains(&st) || st == 404,
                        Want::Status(x) => st == x,
                    };
                    if !good {
                        failures.push(format!(
                            "{method} {url}{q} as {p:?} on {c:?} ({scope}): got {st}, want {w:?}: {v:.300}"
                        ));
                    }
                    // a hidden account answers byte for byte like a missing one
                    if st == 404 && matches!(c, Case::NotGranted) && p != P::Admin {
                        let missing = url.replace(ACC_N, "NOSUCHACCOUNT");
                        let (st2, v2) =
                            s.call(&method.to_uppercase(), &format!("{missing}{q}"), &who, body.as_ref()).await;
                        if (st2, &v2) != (st, &v) {
                            failures.push(format!("{method} {url}: hidden {st} {v} vs missing {st2} {v2}"));
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} cases wrong:\n{}", failures.len(), failures.join("\n"));
    assert!(checked > 400, "only {checked} cases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_by_grants_and_mixed_batches_store_nothing() {
    let s = Srv::start().await;
    let names = |v: &Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
    };
    let (_, v) = s.get("/api/v1/accounts", &s.viewer).await;
    assert_eq!(names(&v), vec![ACC_R, ACC_W], "the viewer sees its grants only: {v}");
    let (_, v) = s.get("/api/v1/accounts", &s.admin).await;
    assert_eq!(names(&v), vec![ACC_N, ACC_R, ACC_W]);

    let deal = |a: &str, id: &str| {
        json!({ "account": a, "book": BOOK, "id": id, "time": "2025-01-02 09:31:00", "code": "000001.SZ",
                "kind": "buy_fill", "price": 10.0, "volume": 100 })
    };
    let before = s.state().await;
    for other in [ACC_R, ACC_N, "NOSUCH"] {
        let (st, v) =
            s.post("/api/v1/deals", &s.trader, json!({ "deals": [deal(ACC_W, "w1"), deal(other, "x1")] })).await;
        assert!(st == 403 || st == 404, "{other}: {st} {v}");
        assert_eq!(s.state().await, before, "a mixed batch with {other} stored something");
    }
    let (st, v) = s.post("/api/v1/deals", &s.trader, json!({ "deals": [deal(ACC_W, "w1"), deal(ACC_W, "w2")] })).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["inserted"], 2);
    let (_, v) = s.get(&format!("/api/v1/accounts/{ACC_W}/deals"), &s.viewer).await;
    assert_eq!(v["data"]["total"], 2, "{v}");
}
