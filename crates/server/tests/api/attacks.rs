//! Tokens under attack: every forged, altered, stale or revoked credential
//! gets the same 401; a correctly signed token for a live session passes
//! (so each refusal is the protection's doing, not the harness's).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::common::*;

const ME: &str = "/api/v1/auth/me";

fn payload(token: &str) -> Value {
    let p = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(p).unwrap()).unwrap()
}

fn token_of(w: &Who) -> String {
    match w {
        Who::Bearer(t) => t.clone(),
        _ => unreachable!(),
    }
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &[u8]) -> String {
    let h = Header { kid: kid.map(String::from), ..Header::new(alg) };
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_secret(key)).unwrap()
}

fn raw(header: &Value, claims: &Value, sig: &str) -> String {
    format!("{}.{}.{sig}", B64.encode(header.to_string()), B64.encode(claims.to_string()))
}

/// Claims for the viewer's live session, valid now.
fn claims(s: &Srv) -> Value {
    let mut c = payload(&token_of(&s.viewer));
    let now = chrono::Utc::now().timestamp();
    c["iat"] = json!(now);
    c["nbf"] = json!(now);
    c["exp"] = json!(now + 300);
    c
}

async fn status(s: &Srv, token: &str) -> u16 {
    s.get(ME, &Who::Bearer(token.to_string())).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_altered_tokens_are_refused() {
    let s = Srv::start().await;
    let good = claims(&s);
    // the control: our own signature over the live session's claims passes
    assert_eq!(status(&s, &sign(Algorithm::HS256, Some("t1"), &good, &s.key_bytes)).await, 200);

    // alg none, with and without a signature
    let none = json!({ "alg": "none", "typ": "JWT", "kid": "t1" });
    assert_eq!(status(&s, &raw(&none, &good, "")).await, 401, "alg none");
    let sig = sign(Algorithm::HS256, Some("t1"), &good, &s.key_bytes).rsplit('.').next().unwrap().to_string();
    assert_eq!(status(&s, &raw(&none, &good, &sig)).await, 401, "alg none with a signature");
    for alg in ["None", "NONE", "nOnE"] {
        assert_eq!(status(&s, &raw(&json!({ "alg": alg, "kid": "t1" }), &good, "")).await, 401, "{alg}");
    }
    // other HMAC algorithms with the right key
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        assert_eq!(status(&s, &sign(alg, Some("t1"), &good, &s.key_bytes)).await, 401, "{alg:?}");
    }
    // an asymmetric algorithm named over an HMAC made with the key (key confusion)
    let hs = sign(Algorithm::HS256, Some("t1"), &good, &s.key_bytes);
    let sig = hs.rsplit('.').next().unwrap();
    for alg in ["RS256", "ES256", "PS256", "EdDSA"] {
        assert_eq!(status(&s, &raw(&json!({ "alg": alg, "typ": "JWT", "kid": "t1" }), &good, sig)).await, 401, "{alg}");
    }
    // a wrong key, an unknown kid, no kid
    assert_eq!(status(&s, &sign(Algorithm::HS256, Some("t1"), &good, &[7u8; 32])).await, 401, "wrong key");
    assert_eq!(status(&s, &sign(Algorithm::HS256, Some("t2"), &good, &s.key_bytes)).await, 401, "unknown kid");
    assert_eq!(status(&s, &sign(Algorithm::HS256, None, &good, &s.key_bytes)).await, 401, "no kid");

    // tampered payload: viewer → admin, signature kept
    let viewer = token_of(&s.viewer);
    let parts: Vec<&str> = viewer.split('.').collect();
    let mut p = payload(&viewer);
    p["sub"] = json!("admin");
    let forged = format!("{}.{}.{}", parts[0], B64.encode(p.to_string()), parts[2]);
    assert_eq!(status(&s, &forged).await, 401, "tampered sub");
    assert_eq!(s.get("/api/v1/users", &Who::Bearer(forged)).await.0, 401);
    // and signed correctly, another user's name on the viewer's session is refused too
    let mut c = good.clone();
    c["sub"] = json!("admin");
    assert_eq!(status(&s, &sign(Algorithm::HS256, Some("t1"), &c, &s.key_bytes)).await, 401, "session of another user");

    // time: expired, not yet valid (beyond the 5 s leeway)
    let now = chrono::Utc::now().timestamp();
    let mut c = good.clone();
    c["exp"] = json!(now - 60);
    assert_eq!(status(&s, &sign(Algorithm::HS256, Some("t1"), &c, &s.key_bytes)).await, 401, "expired");
    let mut c = good.clone();
    c["nbf"] = json!(now + 60);
    assert_eq!(status(&s, &sign(Algorithm::HS256, Some("t1"), &c, &s.key_bytes)).await, 401, "not yet valid");
    // issued before the user's last change
    let mut c = good.clone();
    c["iat"] = json!(now - 3600);
    assert_eq!(
        status(&s, &sign(Algorithm::HS256, Some("t1"), &c, &s.key_bytes)).await,
        401,
        "issued before tokens_after"
    );
    // wrong issuer or audience
    for (k, v) in [("iss", "evil"), ("aud", "evil")] {
        let mut c = good.clone();
        c[k] = json!(v);
        assert_eq!(status(&s, &sign(Algorithm::HS256, Some("t1"), &c, &s.key_bytes)).await, 401, "{k}");
    }
    // every claim required
    for k in ["iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp"] {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(k);
        assert_eq!(status(&s, &sign(Algorithm::HS256, Some("t1"), &c, &s.key_bytes)).await, 401, "missing {k}");
    }
    // garbage
    for t in ["", "a", "a.b", "a.b.c", "..", "e30.e30.", &"x".repeat(5000)] {
        assert_eq!(status(&s, t).await, 401, "{t:.20}");
    }
    for h in ["Basic YWRtaW46eA==", "Bearer", "Token abc", "bearer  "] {
        assert_eq!(s.get(ME, &Who::Raw(h.into())).await.0, 401, "{h}");
    }
    // one body whatever the reason (no oracle)
    let (_, a) = s.get(ME, &Who::Bearer("a.b.c".into())).await;
    let (_, b) = s.get(ME, &Who::Bearer(sign(Algorithm::HS256, Some("t1"), &c_expired(&good), &s.key_bytes))).await;
    assert_eq!(a, b);
}

fn c_expired(good: &Value) -> Value {
    let mut c = good.clone();
    c["exp"] = json!(chrono::Utc::now().timestamp() - 60);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_password_role_and_status_changes_end_tokens() {
    let s = Srv::start().await;
    // logout: the access token and the refresh token both stop
    let (st, v) = s.login_full("viewer", PW).await;
    assert_eq!(st, 200);
    let t = Who::Bearer(v["data"]["access_token"].as_str().unwrap().into());
    let refresh = v["data"]["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(s.get(ME, &t).await.0, 200);
    assert_eq!(s.post("/api/v1/auth/logout", &t, json!({})).await.0, 200);
    assert_eq!(s.get(ME, &t).await.0, 401, "token after logout");
    assert_eq!(s.post("/api/v1/auth/refresh", &Who::Anonymous, json!({ "refresh_token": refresh })).await.0, 401);

    // password change: every session of the user ends, the old password fails
    let other = Who::Bearer(s.login("trader", PW).await);
    let (st, v) =
        s.post("/api/v1/auth/password", &s.trader, json!({ "current": PW, "new": "a brand new passphrase" })).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.get(ME, &s.trader).await.0, 401, "token after a password change");
    assert_eq!(s.get(ME, &other).await.0, 401, "another session after a password change");
    assert_eq!(s.login_full("trader", PW).await.0, 401);
    let trader = Who::Bearer(s.login("trader", "a brand new passphrase").await);
    assert_eq!(s.get(ME, &trader).await.0, 200);

    // role change by an admin
    let (st, v) = s.call("PATCH", "/api/v1/users/trader", &s.admin, Some(&json!({ "role": "viewer" }))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.get(ME, &trader).await.0, 401, "token after a role change");
    let as_viewer = Who::Bearer(s.login("trader", "a brand new passphrase").await);
    let path = format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions/buys");
    assert_eq!(s.post(&path, &as_viewer, json!({ "codes": ["000001.SZ"] })).await.0, 403, "the new role applies");

    // disable: tokens and API keys stop at the next request
    assert_eq!(s.get(ME, &s.trader_key).await.0, 200);
    let (st, _) = s.call("PATCH", "/api/v1/users/trader", &s.admin, Some(&json!({ "status": "disabled" }))).await;
    assert_eq!(st, 200);
    assert_eq!(s.get(ME, &as_viewer).await.0, 401, "token of a disabled user");
    assert_eq!(s.get(ME, &s.trader_key).await.0, 401, "key of a disabled user");
    assert_eq!(s.login_full("trader", "a brand new passphrase").await.0, 401, "login of a disabled user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_a_replayed_refresh_token_kills_the_session() {
    let s = Srv::start().await;
    let (_, v) = s.login_full("viewer", PW).await;
    let r1 = v["data"]["refresh_token"].as_str().unwrap().to_string();
    let (st, v2) = s.post("/api/v1/auth/refresh", &Who::Anonymous, json!({ "refresh_token": r1 })).await;
    assert_eq!(st, 200, "{v2}");
    let r2 = v2["data"]["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "rotated");
    let t2 = Who::Bearer(v2["data"]["access_token"].as_str().unwrap().into());
    assert_eq!(s.get(ME, &t2).await.0, 200);
    // the cookie works as well as the body
    let (st, _, body) = s
        .call_raw(
            "POST",
            "/api/v1/auth/refresh",
            &Who::Anonymous,
            Some("{}".into()),
            &[("cookie", &format!("sqdata_refresh={r2}"))],
        )
        .await;
    assert_eq!(st, 200, "{body}");
    let r3 = serde_json::from_str::<Value>(&body).unwrap()["data"]["refresh_token"].as_str().unwrap().to_string();
    // replaying r2 (rotated away): refused, and the whole session ends
    assert_eq!(s.post("/api/v1/auth/refresh", &Who::Anonymous, json!({ "refresh_token": r2 })).await.0, 401);
    assert_eq!(
        s.post("/api/v1/auth/refresh", &Who::Anonymous, json!({ "refresh_token": r3 })).await.0,
        401,
        "the thief's and the owner's"
    );
    assert_eq!(s.get(ME, &t2).await.0, 401, "access tokens of the session");
    let audit = s.get("/api/v1/audit?limit=500", &s.admin).await.1.to_string();
    assert!(audit.contains("reuse"), "the reuse is audited: {audit:.2000}");
    // a forged refresh token for a live session
    let (_, v) = s.login_full("viewer", PW).await;
    let r = v["data"]["refresh_token"].as_str().unwrap();
    let sid = r.split('.').next().unwrap();
    assert_eq!(
        s.post("/api/v1/auth/refresh", &Who::Anonymous, json!({ "refresh_token": format!("{sid}.guess") })).await.0,
        401
    );
    assert_eq!(
        s.post("/api/v1/auth/refresh", &Who::Anonymous, json!({ "refresh_token": r })).await.0,
        200,
        "a guess does not end it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_wrong_revoked_expired_and_narrowed() {
    let s = Srv::start().await;
    let Who::Key(k) = &s.trader_key else { unreachable!() };
    assert_eq!(s.get(ME, &s.trader_key).await.0, 200);
    let wrong = format!("{}x", &k[..k.len() - 1]);
    assert_eq!(s.get(ME, &Who::Key(wrong)).await.0, 401, "a wrong secret");
    assert_eq!(s.get(ME, &Who::Raw(format!("Bearer {k}"))).await.0, 200, "a key as a bearer token");
    // a key narrowed to one account, created through the API (shown once)
    let (st, v) =
        s.post("/api/v1/api-keys", &s.admin, json!({ "user": "trader", "label": "narrow", "accounts": [ACC_R] })).await;
    assert_eq!(st, 200, "{v}");
    let narrow = Who::Key(v["data"]["key"].as_str().unwrap().into());
    let id = v["data"]["id"].as_str().unwrap().to_string();
    let listed = s.get("/api/v1/api-keys", &s.admin).await.1.to_string();
    assert!(!listed.contains(v["data"]["key"].as_str().unwrap()), "the secret is shown once");
    let pos = |a: &str| format!("/api/v1/accounts/{a}/books/{BOOK}/positions");
    assert_eq!(s.get(&pos(ACC_R), &narrow).await.0, 200);
    assert_eq!(s.get(&pos(ACC_W), &narrow).await.0, 404, "outside the key's accounts: as if missing");
    assert_eq!(s.get(&pos(ACC_W), &s.trader_key).await.0, 200);
    // revoked
    assert_eq!(s.call("DELETE", &format!("/api/v1/api-keys/{id}"), &s.admin, None).await.0, 200);
    assert_eq!(s.get(ME, &narrow).await.0, 401, "revoked");
    // expired
    let (_, v) = s
        .post(
            "/api/v1/api-keys",
            &s.admin,
            json!({ "user": "trader", "label": "old", "expires_at": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert_eq!(v["code"], 422, "an expiry in the past is refused: {v}");
    assert_eq!(v["data"]["field"], "expires_at", "{v}");
    let (full, id, hash) = sqdata_server::api::secrets::new_api_key().unwrap();
    let key = sqdata::ApiKey {
        id,
        user: "trader".into(),
        label: "expired".into(),
        accounts: None,
        created_at: chrono::Utc::now() - chrono::Duration::days(2),
        expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        revoked: false,
    };
    sqdata::AuthStore::create_api_key(&*s.reg, &key, &hash, "test").await.unwrap();
    assert_eq!(s.get(ME, &Who::Key(full)).await.0, 401, "expired");
}

/// A request presenting two credentials is refused whichever of them is
/// good: a bad one is never ignored because a good one rides along. An
/// admin cannot change its own role, status or password through `/users`
/// (a stolen token must not reset the password without the current one,
/// nor the last admin disable or demote itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_credentials_and_changes_of_oneself_are_refused() {
    let s = Srv::start().await;
    let token = token_of(&s.admin);
    let Who::Key(key) = s.trader_key.clone() else { unreachable!() };
    assert_eq!(s.get(ME, &s.trader_key).await.0, 200);
    assert_eq!(s.get(ME, &s.admin).await.0, 200);
    for (who, name, value) in [
        (&s.trader_key, "authorization", "Bearer not-a-token".to_string()),
        (&s.trader_key, "authorization", format!("Bearer {token}")),
        (&s.admin, "x-api-key", "sqk_nokey123_x".to_string()),
        (&s.admin, "x-api-key", key.clone()),
        (&s.trader_key, "x-api-key", key.clone()),
    ] {
        let (st, _, body) = s.call_raw("GET", ME, who, None, &[(name, &value)]).await;
        assert_eq!(st, 401, "{who:?} and {name}: {body}");
    }

    let before = s.state().await;
    let me = "/api/v1/users/admin";
    for change in [json!({ "role": "viewer" }), json!({ "status": "disabled" }), json!({ "password": PW.repeat(2) })] {
        let (st, v) = s.call("PATCH", me, &s.admin, Some(&change)).await;
        assert_eq!(st, 403, "{change}: {v}");
    }
    let (st, v) = s.call("PATCH", me, &s.admin, Some(&json!({ "role": "admin", "status": "active" }))).await;
    assert_eq!(st, 200, "changing nothing harms nothing: {v}");
    assert_eq!(s.state().await, before, "a refused change of oneself changed something");
    assert_eq!(s.get(ME, &s.admin).await.0, 200, "the admin's token still works");
    let (st, v) = s.call("PATCH", "/api/v1/users/trader", &s.admin, Some(&json!({ "role": "viewer" }))).await;
    assert_eq!(st, 200, "another user's role: {v}");
}
