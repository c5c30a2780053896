//! Logins (lockout, rates), the audit trail (every write and login; a
//! write it cannot record is refused), the access log, and secrets that
//! never show: not in logs, error bodies, metrics or the document.

use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_the_user_persistently_and_an_admin_unlocks() {
    let s = Srv::start_with(|c| {
        c.lockout_failures = 3;
        c.login_per_minute = 100_000;
        c.requests_per_second = 100_000;
    })
    .await;
    let wrong = s.login_full("viewer", "wrong password here").await;
    let unknown = s.login_full("nobody", "wrong password here").await;
    assert_eq!(wrong, unknown, "an unknown user and a wrong password answer alike");
    assert_eq!(wrong.0, 401);
    s.login_full("viewer", "wrong password here").await;
    s.login_full("viewer", "wrong password here").await;
    assert_eq!(s.login_full("viewer", PW).await.0, 401, "locked: the right password is refused too");
    // persisted in the registry (a restarted or second server sees it)
    let u = sqdata::AuthStore::user(&*s.reg, "viewer").await.unwrap().unwrap();
    assert!(u.locked_until.is_some_and(|t| t > chrono::Utc::now()), "{u:?}");
    let audit = s.get("/api/v1/audit?limit=500", &s.admin).await.1.to_string();
    assert!(audit.contains("login.fail") && audit.contains("lock"), "{audit:.3000}");
    assert_eq!(s.post("/api/v1/users/viewer/unlock", &s.admin, json!({})).await.0, 200);
    assert_eq!(s.login_full("viewer", PW).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_and_request_rates_are_limited() {
    let s = Srv::start_with(|c| {
        c.login_per_minute = 4;
        c.requests_per_second = 5;
    })
    .await;
    // Srv::start logged in three users already: one attempt left for this address
    let (st, _) = s.login_full("viewer", "wrong password here").await;
    assert_eq!(st, 401);
    let (st, _, _) = s
        .call_raw(
            "POST",
            "/api/v1/auth/login",
            &Who::Anonymous,
            Some(json!({"user":"viewer","password":PW}).to_string()),
            &[],
        )
        .await;
    assert_eq!(st, 429, "past the per-address rate");
    // per principal
    let mut limited = 0;
    for _ in 0..30 {
        let (st, h, _) = s.call_raw("GET", "/api/v1/auth/me", &s.trader, None, &[]).await;
        if st == 429 {
            limited += 1;
            assert!(h.get("retry-after").is_some());
        }
    }
    assert!(limited > 10, "only {limited} of 30 limited");
    assert_eq!(s.get("/api/v1/auth/me", &s.viewer).await.0, 200, "another principal is not limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_and_logins_are_audited_and_an_unauditable_write_changes_nothing() {
    let s = Srv::start().await;
    let buys = format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions/buys");
    assert_eq!(s.post(&buys, &s.trader, json!({ "codes": ["000001.SZ"] })).await.0, 200);
    let put = format!("/api/v1/accounts/{ACC_W}/strategies/{BOOK}/params");
    assert_eq!(s.call("PUT", &put, &s.trader, Some(&json!({ "params": { "a": 1 } }))).await.0, 200);
    let (_, v) = s.get("/api/v1/audit?limit=500", &s.admin).await;
    let text = v.to_string();
    for action in ["positions.buy", "login", "user.create"] {
        assert!(text.contains(action), "{action} missing: {text:.3000}");
    }
    assert!(text.contains("\"trader\""), "the actor is named");

    // the audit table refuses rows: a write is refused and nothing changes
    let db = s.dir.path().join("sqdata.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    sqlx::query("CREATE TRIGGER no_audit BEFORE INSERT ON sq_audit BEGIN SELECT RAISE(FAIL, 'audit is down'); END")
        .execute(&pool)
        .await
        .unwrap();
    let before = s.state().await;
    let (st, v) = s.post(&buys, &s.trader, json!({ "codes": ["600000.SH"] })).await;
    assert_eq!(st, 503, "{v}");
    let sells = format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions/sells");
    assert_eq!(s.post(&sells, &s.trader, json!({ "code": "000001.SZ" })).await.0, 503);
    // a registry change and its audit row are one transaction: the store refuses both
    assert!(s.call("PUT", &put, &s.trader, Some(&json!({ "params": { "a": 2 } }))).await.0 >= 500);
    assert_eq!(s.state().await, before, "an unaudited write changed something");
    sqlx::query("DROP TRIGGER no_audit").execute(&pool).await.unwrap();
    assert_eq!(s.post(&buys, &s.trader, json!({ "codes": ["600000.SH"] })).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_reach_the_access_log() {
    let s = Srv::start().await;
    for _ in 0..5 {
        assert_eq!(s.get(&format!("/api/v1/accounts/{ACC_R}/books/{BOOK}/positions"), &s.viewer).await.0, 200);
    }
    let mut rows = 0;
    for _ in 0..50 {
        let (_, v) = s.get("/api/v1/access-log?limit=100", &s.admin).await;
        rows = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["route"].as_str().unwrap().ends_with("/positions"))
            .count();
        if rows == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(rows, 5);
}

/// Everything the server logs in this process.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Writer(b.clone()))
            .finish();
        tracing::subscriber::set_global_default(sub).unwrap();
        buf
    })
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_errors_metrics_or_the_document() {
    let logs = captured();
    let s = Srv::start().await;
    let mut seen = String::new();
    // a tour: logins good and bad, a key, a password change, errors of every kind
    let (_, v) = s.login_full("viewer", PW).await;
    // (the login's answer carries its tokens by design: not part of `seen`)
    let refresh = v["data"]["refresh_token"].as_str().unwrap().to_string();
    seen.push_str(&s.login_full("viewer", "wrong password here").await.1.to_string());
    let (_, k) = s.post("/api/v1/api-keys", &s.admin, json!({ "user": "trader", "label": "k" })).await;
    let key = k["data"]["key"].as_str().unwrap().to_string();
    for p in [
        "/api/v1/users",
        "/api/v1/users/viewer",
        "/api/v1/api-keys",
        "/api/v1/audit?limit=500",
        "/api/v1/access-log",
        "/api/v1/ops/status",
        "/api/v1/auth/me",
    ] {
        seen.push_str(&s.get(p, &s.admin).await.1.to_string());
    }
    seen.push_str(&s.get("/api/v1/auth/me", &Who::Bearer("a.b.c".into())).await.1.to_string());
    seen.push_str(&s.get("/api/v1/auth/me", &Who::Key(format!("{key}x"))).await.1.to_string());
    seen.push_str(
        &s.post("/api/v1/auth/refresh", &Who::Anonymous, json!({ "refresh_token": refresh })).await.1.to_string(),
    );
    seen.push_str(
        &s.post("/api/v1/auth/refresh", &Who::Anonymous, json!({ "refresh_token": refresh })).await.1.to_string(),
    );
    seen.push_str(
        &s.post("/api/v1/auth/password", &s.viewer, json!({ "current": PW, "new": "short" })).await.1.to_string(),
    );
    seen.push_str(&s.get("/metrics", &Who::Anonymous).await.1.to_string());
    seen.push_str(&s.get("/readyz", &Who::Anonymous).await.1.to_string());
    seen.push_str(&s.get("/api/v1/openapi.json", &Who::Anonymous).await.1.to_string());
    seen.push_str(&format!("{:?}", s.api));
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(logs.len() > 100, "the tour logged nothing: the check would be vacuous");
    use base64::Engine;
    let jwt_key = base64::engine::general_purpose::STANDARD.encode(&s.key_bytes);
    let hash = sqdata::AuthStore::user(&*s.reg, "viewer").await.unwrap().unwrap().password_hash;
    // `sqk_<id>_<secret>`, the secret base64url (it may hold `_` itself)
    let secret_part = key.strip_prefix("sqk_").and_then(|r| r.split_once('_')).unwrap().1.to_string();
    assert!(secret_part.len() >= 40, "{key}");
    let refresh_secret = refresh.split('.').nth(1).unwrap().to_string();
    for (what, secret) in [
        ("the JWT key", jwt_key.as_str()),
        ("a password hash", hash.as_str()),
        ("argon2 hashes", "$argon2id$"),
        ("a key secret", secret_part.as_str()),
        ("a refresh secret", refresh_secret.as_str()),
        ("a password", PW),
    ] {
        assert!(!logs.contains(secret), "{what} in the logs");
        // (a key is shown once, in its creation's answer, which is not in `seen`)
        assert!(!seen.contains(secret), "{what} in an answer");
    }
    let v: Value = serde_json::from_str(&s.get("/api/v1/users", &s.admin).await.1.to_string()).unwrap();
    assert!(!v.to_string().contains("password_hash"), "{v}");
}
