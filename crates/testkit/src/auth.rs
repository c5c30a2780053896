//! Auth conformance: users, the lockout, grants, API keys, sessions and
//! refresh-token rotation with reuse detection, the access log, and the
//! audit rows every change leaves (checked through the same store's
//! [`RegistryStore::audit`]). Each case works on fresh random users, ids and
//! hashes, so cases run in parallel against a shared server; rows they
//! cannot scope (the access log) are told apart by a fresh principal.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sqdata_core::serde_json::{Value, json};
use sqdata_core::{
    AccessEntry, AccountCode, ApiKey, AuditEntry, AuditQuery, AuthStore, Error, Grant, Refresh, RegistryStore, Right,
    Role, Session, User, UserChange, UserStatus,
};

use crate::{Fixture, fresh_book, random_u64};

fn store(fx: &Fixture) -> Arc<dyn AuthStore> {
    fx.auth.clone().expect("the fixture provides no auth store")
}

fn registry(fx: &Fixture) -> Arc<dyn RegistryStore> {
    fx.registry.clone().expect("the auth cases read the audit trail through the registry store")
}

fn field(e: &Error) -> &str {
    match e {
        Error::InvalidInput { field, .. } => field,
        other => panic!("expected invalid input, got {other}"),
    }
}

/// Now, at the store's millisecond precision.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("now")
}

fn fresh_user() -> String {
    format!("u{:016x}.t", random_u64())
}

fn fresh_account() -> AccountCode {
    fresh_book().account
}

fn key_id() -> String {
    format!("k{:016x}", random_u64())
}

fn session_id() -> String {
    format!("s_{:016x}-x", random_u64())
}

/// A fresh SHA-256-shaped hash (64 lowercase hex digits).
fn hash() -> String {
    (0..4).map(|_| format!("{:016x}", random_u64())).collect()
}

fn password() -> String {
    format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${:016x}", random_u64())
}

fn user(name: &str, role: Role) -> User {
    let t = now() - Duration::seconds(5);
    User {
        name: name.into(),
        role,
        status: UserStatus::Active,
        password_hash: password(),
        failed_logins: 0,
        locked_until: None,
        tokens_after: t,
        created_at: t,
    }
}

async fn new_user(s: &dyn AuthStore, role: Role) -> User {
    let u = user(&fresh_user(), role);
    s.create_user(&u, "admin").await.unwrap();
    u
}

fn session(user: &str) -> Session {
    let t = now();
    Session { id: session_id(), user: user.into(), created_at: t, expires_at: t + Duration::hours(24), revoked: false }
}

async fn new_session(s: &dyn AuthStore, user: &str) -> (Session, String) {
    let (se, h) = (session(user), hash());
    s.create_session(&se, &h).await.unwrap();
    (se, h)
}

fn key(user: &str) -> ApiKey {
    ApiKey {
        id: key_id(),
        user: user.into(),
        label: "回测机 backtest box".into(),
        accounts: None,
        created_at: now(),
        expires_at: None,
        revoked: false,
    }
}

async fn audit_of(fx: &Fixture, entity: String) -> Vec<AuditEntry> {
    registry(fx).audit(&AuditQuery { entity: Some(entity), ..Default::default() }).await.unwrap()
}

fn actions(rows: &[AuditEntry]) -> Vec<&str> {
    rows.iter().map(|r| r.action.as_str()).collect()
}

/// Users round-trip (every field, at millisecond precision); the Debug of a
/// user never shows its hash; the list is by name.
pub async fn users_roundtrip_and_debug_hides_the_hash(fx: &Fixture) {
    let s = store(fx);
    let name = fresh_user();
    assert_eq!(s.user(&name).await.unwrap(), None, "not found is None");
    let mut u = user(&name, Role::Trader);
    u.failed_logins = 2;
    u.locked_until = Some(now() + Duration::minutes(3));
    u.status = UserStatus::Disabled;
    s.create_user(&u, "admin").await.unwrap();
    assert_eq!(s.user(&name).await.unwrap(), Some(u.clone()));
    assert!(!format!("{:?}", s.user(&name).await.unwrap()).contains(&u.password_hash), "Debug shows no hash");
    let other = new_user(&*s, Role::Viewer).await;
    let ours: Vec<User> =
        s.users().await.unwrap().into_iter().filter(|x| x.name == name || x.name == other.name).collect();
    let mut want = vec![u.clone(), other.clone()];
    want.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(ours, want, "by name");
    // names are case-sensitive
    assert_eq!(s.user(&name.to_uppercase()).await.unwrap(), None);
    assert_eq!(s.user("x").await.unwrap(), None, "a name nothing can be stored under is not found");
}

/// Creating an existing user is refused naming `user`; nothing changes.
pub async fn duplicate_user_is_refused_without_change(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Viewer).await;
    let before = audit_of(fx, format!("user:{}", u.name)).await;
    let again = User { role: Role::Admin, password_hash: password(), ..u.clone() };
    assert_eq!(field(&s.create_user(&again, "admin").await.unwrap_err()), "user");
    assert_eq!(s.user(&u.name).await.unwrap(), Some(u.clone()), "unchanged");
    assert_eq!(audit_of(fx, format!("user:{}", u.name)).await, before, "nothing audited");
}

/// A role, status or password change moves `tokens_after` to now and revokes
/// the user's open sessions (not another user's); no change changes nothing.
pub async fn update_user_moves_tokens_after_and_revokes_sessions(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Viewer).await;
    let (s1, _) = new_session(&*s, &u.name).await;
    let (s2, _) = new_session(&*s, &u.name).await;
    let bystander = new_user(&*s, Role::Viewer).await;
    let (s3, _) = new_session(&*s, &bystander.name).await;

    let t = now();
    let change = UserChange { role: Some(Role::Trader), ..Default::default() };
    let v = s.update_user(&u.name, &change, "admin").await.unwrap().unwrap();
    assert_eq!((v.role, v.status, &v.password_hash), (Role::Trader, UserStatus::Active, &u.password_hash));
    assert!(v.tokens_after >= t && v.tokens_after > u.tokens_after, "{v:?}");
    assert_eq!(s.user(&u.name).await.unwrap(), Some(v.clone()));
    for id in [&s1.id, &s2.id] {
        assert!(s.session(id).await.unwrap().unwrap().revoked, "the user's sessions are revoked");
    }
    assert!(!s.session(&s3.id).await.unwrap().unwrap().revoked, "another user's session is not");

    // nothing that differs: nothing moves
    let same = UserChange { role: Some(Role::Trader), status: Some(UserStatus::Active), password_hash: None };
    assert_eq!(s.update_user(&u.name, &same, "admin").await.unwrap(), Some(v.clone()));
    assert_eq!(s.update_user(&u.name, &UserChange::default(), "admin").await.unwrap(), Some(v.clone()));

    let (s4, _) = new_session(&*s, &u.name).await;
    let new_hash = password();
    let change = UserChange { password_hash: Some(new_hash.clone()), status: Some(UserStatus::Disabled), role: None };
    let w = s.update_user(&u.name, &change, "admin").await.unwrap().unwrap();
    assert_eq!((w.role, w.status, &w.password_hash), (Role::Trader, UserStatus::Disabled, &new_hash));
    assert!(w.tokens_after >= v.tokens_after);
    assert!(s.session(&s4.id).await.unwrap().unwrap().revoked);
    assert_eq!(s.update_user(&fresh_user(), &change, "admin").await.unwrap(), None, "no such user");

    let rows = audit_of(fx, format!("user:{}", u.name)).await;
    assert_eq!(actions(&rows), ["user.update", "user.update", "user.create"]);
    assert_eq!(rows[1].detail["role"], json!("trader"));
    assert_eq!(rows[1].detail["sessions_revoked"], json!(2));
    assert_eq!(rows[0].detail["password_changed"], json!(true));
}

/// Failed logins count (atomically), lock at the threshold (audited), and a
/// successful login resets the count.
pub async fn login_failed_locks_at_the_threshold_and_success_resets(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Trader).await;
    let until = now() + Duration::minutes(15);
    for n in 1..=2 {
        let v = s.login_failed(&u.name, 3, until).await.unwrap().unwrap();
        assert_eq!((v.failed_logins, v.locked_until), (n, None));
    }
    let v = s.login_failed(&u.name, 3, until).await.unwrap().unwrap();
    assert_eq!((v.failed_logins, v.locked_until), (3, Some(until)));
    assert_eq!(s.user(&u.name).await.unwrap(), Some(v));
    let rows = audit_of(fx, format!("user:{}", u.name)).await;
    assert_eq!(actions(&rows), ["user.lock", "user.create"]);
    s.login_succeeded(&u.name).await.unwrap();
    assert_eq!(s.user(&u.name).await.unwrap().unwrap().failed_logins, 0);

    // eight at once: each counted
    let w = new_user(&*s, Role::Viewer).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, name) = (s.clone(), w.name.clone());
        tasks.push(tokio::spawn(async move { s.login_failed(&name, 100, until).await.unwrap().unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let w = s.user(&w.name).await.unwrap().unwrap();
    assert_eq!((w.failed_logins, w.locked_until), (8, None));

    let ghost = fresh_user();
    assert_eq!(s.login_failed(&ghost, 3, until).await.unwrap(), None);
    s.login_succeeded(&ghost).await.unwrap();
    assert_eq!(s.user(&ghost).await.unwrap(), None, "nothing created");
    assert_eq!(field(&s.login_failed(&u.name, 0, until).await.unwrap_err()), "max_failures");
}

/// An unlock lifts the lockout and resets the count (audited).
pub async fn unlock_lifts_a_lockout(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Viewer).await;
    let until = now() + Duration::hours(1);
    let v = s.login_failed(&u.name, 1, until).await.unwrap().unwrap();
    assert_eq!(v.locked_until, Some(until));
    assert!(s.unlock(&u.name, "admin").await.unwrap());
    let v = s.user(&u.name).await.unwrap().unwrap();
    assert_eq!((v.failed_logins, v.locked_until), (0, None));
    assert!(!s.unlock(&fresh_user(), "admin").await.unwrap(), "no such user");
    let rows = audit_of(fx, format!("user:{}", u.name)).await;
    assert_eq!(actions(&rows), ["user.unlock", "user.lock", "user.create"]);
    assert_eq!(rows[0].actor, "admin");
}

/// Grants: one per (user, account), replaced by a second set, revoked once,
/// listed by account, per user.
pub async fn grants_set_replace_revoke_and_list(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Trader).await;
    let other = new_user(&*s, Role::Viewer).await;
    let mut accts = [fresh_account(), fresh_account()];
    accts.sort();
    let [a, b] = accts;
    let g = |acct: &AccountCode, right| Grant { user: u.name.clone(), account: acct.clone(), right };
    assert!(s.grants(&u.name).await.unwrap().is_empty());
    s.set_grant(&g(&b, Right::Write), "admin").await.unwrap();
    s.set_grant(&g(&a, Right::Read), "admin").await.unwrap();
    s.set_grant(&Grant { user: other.name.clone(), account: a.clone(), right: Right::Read }, "admin").await.unwrap();
    assert_eq!(s.grants(&u.name).await.unwrap(), vec![g(&a, Right::Read), g(&b, Right::Write)]);
    s.set_grant(&g(&a, Right::Write), "admin").await.unwrap();
    assert_eq!(s.grants(&u.name).await.unwrap(), vec![g(&a, Right::Write), g(&b, Right::Write)], "replaced");
    assert!(s.revoke_grant(&u.name, &a, "admin").await.unwrap());
    assert!(!s.revoke_grant(&u.name, &a, "admin").await.unwrap(), "a second revoke finds nothing");
    assert_eq!(s.grants(&u.name).await.unwrap(), vec![g(&b, Right::Write)]);
    assert_eq!(s.grants(&other.name).await.unwrap().len(), 1, "another user's grants are its own");
    let ghost = Grant { user: fresh_user(), account: a.clone(), right: Right::Read };
    assert_eq!(field(&s.set_grant(&ghost, "admin").await.unwrap_err()), "user");
    assert!(s.grants(&ghost.user).await.unwrap().is_empty());
    let rows = audit_of(fx, format!("user:{}", u.name)).await;
    assert_eq!(actions(&rows), ["grant.revoke", "grant.set", "grant.set", "grant.set", "user.create"]);
    assert_eq!(rows[1].detail["account"], json!(a.as_str()));
    assert_eq!(rows[1].detail["right"], json!("write"));
}

/// API keys round-trip with their hash, expiry and account subset; list by
/// user and all; revoke; duplicates and unknown users are refused.
pub async fn api_keys_roundtrip_list_and_revoke(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Trader).await;
    let other = new_user(&*s, Role::Viewer).await;
    let k1 = ApiKey { created_at: now() - Duration::seconds(2), ..key(&u.name) };
    let k2 = ApiKey {
        accounts: Some(vec![fresh_account(), fresh_account()]),
        expires_at: Some(now() + Duration::days(30)),
        ..key(&u.name)
    };
    let k3 = key(&other.name);
    let (h1, h2, h3) = (hash(), hash(), hash());
    assert_eq!(s.api_key(&k1.id).await.unwrap(), None);
    s.create_api_key(&k1, &h1, "admin").await.unwrap();
    s.create_api_key(&k2, &h2, "admin").await.unwrap();
    s.create_api_key(&k3, &h3, "admin").await.unwrap();
    assert_eq!(s.api_key(&k1.id).await.unwrap(), Some((k1.clone(), h1.clone())));
    assert_eq!(s.api_key(&k2.id).await.unwrap(), Some((k2.clone(), h2.clone())));
    assert_eq!(s.api_keys(Some(&u.name)).await.unwrap(), vec![k1.clone(), k2.clone()]);
    assert_eq!(s.api_keys(Some(&other.name)).await.unwrap(), vec![k3.clone()]);
    let all = s.api_keys(None).await.unwrap();
    for k in [&k1, &k2, &k3] {
        assert_eq!(all.iter().filter(|x| x.id == k.id).collect::<Vec<_>>(), vec![k]);
    }
    assert_eq!(field(&s.create_api_key(&k1, &hash(), "admin").await.unwrap_err()), "key", "duplicate id");
    assert_eq!(s.api_key(&k1.id).await.unwrap().unwrap().1, h1, "the first key is kept");
    let ghost = key(&fresh_user());
    assert_eq!(field(&s.create_api_key(&ghost, &hash(), "admin").await.unwrap_err()), "user");
    assert_eq!(s.api_key(&ghost.id).await.unwrap(), None);

    assert!(s.revoke_api_key(&k1.id, "admin").await.unwrap());
    assert!(s.revoke_api_key(&k1.id, "admin").await.unwrap(), "it still exists");
    assert!(!s.revoke_api_key(&key_id(), "admin").await.unwrap(), "no such key");
    let (got, h) = s.api_key(&k1.id).await.unwrap().unwrap();
    assert_eq!((got.revoked, h), (true, h1));
    assert!(!s.api_key(&k2.id).await.unwrap().unwrap().0.revoked);
    let rows = audit_of(fx, format!("apikey:{}", k1.id)).await;
    assert_eq!(actions(&rows), ["apikey.revoke", "apikey.create"], "one revoke audited");
    assert_eq!(rows[1].detail["user"], json!(u.name));
}

/// Sessions: create, read back, revoke once; unknown ids and users.
pub async fn sessions_create_get_and_revoke(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Viewer).await;
    let (se, _) = new_session(&*s, &u.name).await;
    assert_eq!(s.session(&se.id).await.unwrap(), Some(se.clone()));
    assert_eq!(s.session(&session_id()).await.unwrap(), None);
    assert_eq!(field(&s.create_session(&se, &hash()).await.unwrap_err()), "session", "duplicate id");
    let ghost = session(&fresh_user());
    assert_eq!(field(&s.create_session(&ghost, &hash()).await.unwrap_err()), "user");
    assert_eq!(s.session(&ghost.id).await.unwrap(), None);
    assert!(s.revoke_session(&se.id, "admin").await.unwrap());
    assert!(!s.revoke_session(&se.id, "admin").await.unwrap(), "no longer open");
    assert!(!s.revoke_session(&session_id(), "admin").await.unwrap());
    assert_eq!(s.session(&se.id).await.unwrap(), Some(Session { revoked: true, ..se.clone() }));
    let rows = audit_of(fx, format!("session:{}", se.id)).await;
    assert_eq!(actions(&rows), ["session.revoke", "session.create"]);
}

/// Refresh: the current token rotates; an old one again is reuse and
/// revokes the session; another session's token, an unknown one, a revoked
/// or an expired session are invalid (and change nothing).
pub async fn refresh_rotates_and_detects_reuse(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Trader).await;
    let (se, h0) = new_session(&*s, &u.name).await;
    let (other, g0) = new_session(&*s, &u.name).await;
    let (h1, h2) = (hash(), hash());
    assert_eq!(s.refresh(&se.id, &h0, &h1, now()).await.unwrap(), Refresh::Rotated(se.clone()));
    assert_eq!(s.refresh(&se.id, &h1, &h2, now()).await.unwrap(), Refresh::Rotated(se.clone()));
    assert_eq!(s.refresh(&se.id, &g0, &hash(), now()).await.unwrap(), Refresh::Invalid, "another session's token");
    assert_eq!(s.refresh(&se.id, &hash(), &hash(), now()).await.unwrap(), Refresh::Invalid, "unknown token");
    assert_eq!(s.refresh(&session_id(), &h2, &hash(), now()).await.unwrap(), Refresh::Invalid, "unknown session");
    assert!(!s.session(&se.id).await.unwrap().unwrap().revoked, "none of these ended it");
    assert_eq!(s.refresh(&other.id, &g0, &hash(), now()).await.unwrap(), Refresh::Rotated(other.clone()));

    let ended = Session { revoked: true, ..se.clone() };
    assert_eq!(s.refresh(&se.id, &h0, &hash(), now()).await.unwrap(), Refresh::Reused(ended.clone()));
    assert_eq!(s.session(&se.id).await.unwrap(), Some(ended));
    assert_eq!(s.refresh(&se.id, &h2, &hash(), now()).await.unwrap(), Refresh::Invalid, "revoked");
    assert!(!s.session(&other.id).await.unwrap().unwrap().revoked, "the other session goes on");
    let rows = audit_of(fx, format!("session:{}", se.id)).await;
    assert_eq!(actions(&rows), ["session.reuse", "session.create"]);

    // expiry: invalid after it (the token is untouched), rotates before it
    let (short, t0) = new_session(&*s, &u.name).await;
    let after = short.expires_at + Duration::milliseconds(1);
    assert_eq!(s.refresh(&short.id, &t0, &hash(), after).await.unwrap(), Refresh::Invalid);
    assert_eq!(s.refresh(&short.id, &t0, &hash(), short.expires_at).await.unwrap(), Refresh::Invalid, "the end");
    assert_eq!(s.refresh(&short.id, &t0, &hash(), now()).await.unwrap(), Refresh::Rotated(short.clone()));
    let t = now();
    let old = Session { created_at: t - Duration::hours(25), expires_at: t - Duration::hours(1), ..session(&u.name) };
    let o0 = hash();
    s.create_session(&old, &o0).await.unwrap();
    assert_eq!(s.refresh(&old.id, &o0, &hash(), now()).await.unwrap(), Refresh::Invalid, "expired");
}

/// Eight presentations of one token at once: exactly one rotates, exactly
/// one is seen as reuse (and ends the session), the rest are invalid.
pub async fn concurrent_refreshes_rotate_once(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Trader).await;
    let (se, h0) = new_session(&*s, &u.name).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (s, id, h0) = (s.clone(), se.id.clone(), h0.clone());
        tasks.push(tokio::spawn(async move { s.refresh(&id, &h0, &hash(), now()).await.unwrap() }));
    }
    let (mut rotated, mut reused, mut invalid) = (0, 0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Refresh::Rotated(_) => rotated += 1,
            Refresh::Reused(x) => {
                assert!(x.revoked);
                reused += 1
            }
            Refresh::Invalid => invalid += 1,
        }
    }
    // One rotation; the first presentation after it is the replay that
    // ends the session; the later ones find it ended.
    assert_eq!((rotated, reused, invalid), (1, 1, 6));
    assert!(s.session(&se.id).await.unwrap().unwrap().revoked);
    let rows = audit_of(fx, format!("session:{}", se.id)).await;
    assert_eq!(actions(&rows), ["session.reuse", "session.create"], "one reuse audited");
}

fn entry(principal: &str, i: u16) -> AccessEntry {
    AccessEntry {
        at: now() + Duration::milliseconds(i64::from(i)),
        principal: principal.into(),
        method: "GET".into(),
        route: "/api/v1/accounts/{account}/positions".into(),
        account: i.is_multiple_of(2).then(|| format!("acct{i}")),
        status: 200 + i,
        ip: "2001:db8::7".into(),
    }
}

/// The access log takes a batch (150 rows) in one go and reads newest
/// first, at most `limit`; a batch with one bad entry stores nothing.
pub async fn access_log_appends_and_reads_newest_first(fx: &Fixture) {
    let s = store(fx);
    let who = format!("user:{}", fresh_user());
    let batch: Vec<AccessEntry> = (0..150).map(|i| entry(&who, i)).collect();
    s.log_access(&batch).await.unwrap();
    s.log_access(&[]).await.unwrap();
    let ours = |rows: Vec<AccessEntry>| rows.into_iter().filter(|e| e.principal == who).collect::<Vec<_>>();
    let mut want = batch.clone();
    want.reverse();
    assert_eq!(ours(s.access_log(10_000).await.unwrap()), want, "newest first");
    assert_eq!(s.access_log(2).await.unwrap().len(), 2);

    let bad_who = format!("key:{}", key_id());
    let mut bad: Vec<AccessEntry> = (0..3).map(|i| entry(&bad_who, i)).collect();
    bad[2].route = "r".repeat(300);
    assert_eq!(field(&s.log_access(&bad).await.unwrap_err()), "route");
    bad[2] = AccessEntry { method: String::new(), ..entry(&bad_who, 2) };
    assert_eq!(field(&s.log_access(&bad).await.unwrap_err()), "method");
    assert!(s.access_log(10_000).await.unwrap().iter().all(|e| e.principal != bad_who), "nothing stored");
    assert_eq!(field(&s.access_log(0).await.unwrap_err()), "limit");
}

/// Every change leaves its audit row (in the same store's trail) and no
/// row holds a password hash, a key's secret hash or a refresh token hash;
/// `audit_event` writes the events the server reports.
pub async fn every_auth_change_is_audited_without_hashes(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Viewer).await;
    let pw2 = password();
    let change = UserChange { password_hash: Some(pw2.clone()), ..Default::default() };
    s.update_user(&u.name, &change, "root").await.unwrap();
    let acct = fresh_account();
    s.set_grant(&Grant { user: u.name.clone(), account: acct.clone(), right: Right::Read }, "root").await.unwrap();
    s.revoke_grant(&u.name, &acct, "root").await.unwrap();
    s.login_failed(&u.name, 1, now() + Duration::minutes(1)).await.unwrap();
    s.unlock(&u.name, "root").await.unwrap();
    let k = key(&u.name);
    let secret = hash();
    s.create_api_key(&k, &secret, "root").await.unwrap();
    s.revoke_api_key(&k.id, "root").await.unwrap();
    let (se, r0) = new_session(&*s, &u.name).await;
    let r1 = hash();
    s.refresh(&se.id, &r0, &r1, now()).await.unwrap();
    s.refresh(&se.id, &r0, &hash(), now()).await.unwrap();
    let (se2, r2) = new_session(&*s, &u.name).await;
    s.revoke_session(&se2.id, "root").await.unwrap();
    let login = json!({"ip": "10.0.0.1", "method": "password"});
    s.audit_event(&u.name, "user.login", &format!("user:{}", u.name), login.clone()).await.unwrap();

    let user_rows = audit_of(fx, format!("user:{}", u.name)).await;
    assert_eq!(
        actions(&user_rows),
        ["user.login", "user.unlock", "user.lock", "grant.revoke", "grant.set", "user.update", "user.create"]
    );
    assert_eq!((user_rows[0].actor.as_str(), &user_rows[0].detail), (u.name.as_str(), &login));
    assert_eq!(user_rows[1].actor, "root");
    assert_eq!(actions(&audit_of(fx, format!("apikey:{}", k.id)).await), ["apikey.revoke", "apikey.create"]);
    assert_eq!(actions(&audit_of(fx, format!("session:{}", se.id)).await), ["session.reuse", "session.create"]);
    assert_eq!(actions(&audit_of(fx, format!("session:{}", se2.id)).await), ["session.revoke", "session.create"]);

    let everything = registry(fx).audit(&AuditQuery { limit: 10_000, ..Default::default() }).await.unwrap();
    let secrets = [&u.password_hash, &pw2, &secret, &r0, &r1, &r2];
    for row in &everything {
        let text = format!("{} {} {} {}", row.actor, row.action, row.entity, row.detail);
        assert!(secrets.iter().all(|h| !text.contains(h.as_str())), "a hash in the audit trail: {row:?}");
    }
    assert_eq!(field(&s.audit_event("root", "Not An Action", "user:x", Value::Null).await.unwrap_err()), "action");
    assert_eq!(field(&s.audit_event("", "user.login", "user:x", Value::Null).await.unwrap_err()), "actor");
    assert_eq!(field(&s.audit_event("root", "user.login", "", Value::Null).await.unwrap_err()), "entity");
}

/// Bad input is refused naming its field, never echoing a hash, and stores
/// nothing.
pub async fn bad_auth_input_is_rejected_without_change(fx: &Fixture) {
    let s = store(fx);
    let u = new_user(&*s, Role::Trader).await;
    for bad in ["x", "-dash", "has space", &"n".repeat(65), "名字abc"] {
        let e = s.create_user(&user(bad, Role::Viewer), "admin").await.unwrap_err();
        assert_eq!(field(&e), "user", "{bad:?}: {e}");
    }
    let name = fresh_user();
    let bare = User { password_hash: "hunter2-plain".into(), ..user(&name, Role::Viewer) };
    let e = s.create_user(&bare, "admin").await.unwrap_err();
    assert_eq!(field(&e), "password_hash");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert_eq!(field(&s.create_user(&user(&fresh_user(), Role::Viewer), "").await.unwrap_err()), "actor");
    let change = UserChange { password_hash: Some("plain".into()), ..Default::default() };
    assert_eq!(field(&s.update_user(&u.name, &change, "admin").await.unwrap_err()), "password_hash");
    assert_eq!(field(&s.update_user("?", &UserChange::default(), "admin").await.unwrap_err()), "user");

    for bad_id in ["short", "has_underscore1", &"k".repeat(33)] {
        let k = ApiKey { id: bad_id.into(), ..key(&u.name) };
        assert_eq!(field(&s.create_api_key(&k, &hash(), "admin").await.unwrap_err()), "key", "{bad_id:?}");
    }
    let k = key(&u.name);
    let upper = hash().to_uppercase();
    for bad_hash in [upper.as_str(), "z".repeat(64).as_str(), "abc123", "the-secret-itself"] {
        let e = s.create_api_key(&k, bad_hash, "admin").await.unwrap_err();
        assert_eq!(field(&e), "secret_hash");
        assert!(!e.to_string().contains(bad_hash), "{e}");
    }
    let long = ApiKey { label: "l".repeat(129), ..key(&u.name) };
    assert_eq!(field(&s.create_api_key(&long, &hash(), "admin").await.unwrap_err()), "label");
    assert_eq!(s.api_key(&k.id).await.unwrap(), None);
    assert_eq!(field(&s.revoke_api_key("bad id", "admin").await.unwrap_err()), "key");

    let se = session(&u.name);
    assert_eq!(field(&s.create_session(&se, "not-hex").await.unwrap_err()), "refresh_hash");
    let bad_id = Session { id: "bad id!".into(), ..session(&u.name) };
    assert_eq!(field(&s.create_session(&bad_id, &hash()).await.unwrap_err()), "session");
    assert_eq!(s.session(&se.id).await.unwrap(), None);
    let (live, h0) = new_session(&*s, &u.name).await;
    assert_eq!(field(&s.refresh(&live.id, "nothex", &hash(), now()).await.unwrap_err()), "presented_hash");
    assert_eq!(field(&s.refresh(&live.id, &h0, "nothex", now()).await.unwrap_err()), "new_hash");
    assert_eq!(field(&s.refresh(&live.id, &h0, &h0, now()).await.unwrap_err()), "new_hash");
    assert_eq!(s.refresh(&live.id, &h0, &hash(), now()).await.unwrap(), Refresh::Rotated(live), "h0 still current");

    assert_eq!(s.user(&name).await.unwrap(), None, "nothing stored");
    let rows = audit_of(fx, format!("user:{}", u.name)).await;
    assert_eq!(actions(&rows), ["user.create"], "nothing audited");
    assert!(audit_of(fx, format!("apikey:{}", k.id)).await.is_empty());
    assert!(audit_of(fx, format!("session:{}", se.id)).await.is_empty());
}
