//! A server on a free port over a fresh folder, seeded with accounts,
//! users, grants and an API key, and a small client.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use sqdata::{
    Account, AccountCode, ApiKey, AuthStore, Config, Grant, RegistryStore, Right, Role, Strategy, User, UserStatus,
};
use sqdata_server::api::{Api, secrets};
use sqdata_server::{AppState, listen};

/// The password of every seeded user.
pub const PW: &str = "correct horse battery 1";

/// Granted read to viewer and trader.
pub const ACC_R: &str = "ACC_R";
/// Granted write to viewer (capped at read by the role) and trader.
pub const ACC_W: &str = "ACC_W";
/// Registered, granted to no one.
pub const ACC_N: &str = "ACC_N";
/// Not registered.
pub const ACC_MISSING: &str = "ACC_MISSING";
/// The book seeded in every account.
pub const BOOK: &str = "b1";

/// Who calls.
#[derive(Debug, Clone)]
pub enum Who {
    Anonymous,
    Bearer(String),
    Key(String),
    /// A raw `Authorization` header value.
    Raw(String),
}

/// A running server.
pub struct Srv {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub reg: Arc<sqdata::Registry>,
    pub opened: sqdata::Opened,
    pub api: Arc<Api>,
    pub keys: secrets::KeyRing,
    pub key_bytes: Vec<u8>,
    pub dir: tempfile::TempDir,
    /// Access tokens of the seeded users.
    pub admin: Who,
    pub trader: Who,
    pub viewer: Who,
    /// The trader's API key (no account subset).
    pub trader_key: Who,
    pub trader_key_id: String,
}

impl Srv {
    /// Default limits, except rates high enough for matrix tests.
    pub async fn start() -> Srv {
        Srv::start_with(|c| {
            c.login_per_minute = 100_000;
            c.requests_per_second = 100_000;
        })
        .await
    }

    pub async fn start_with(tune: impl FnOnce(&mut sqdata::ApiConfig)) -> Srv {
        Srv::start_on(|c| tune(&mut c.api)).await
    }

    /// With the whole configuration tuned (a tier with servers, say).
    pub async fn start_on(tune: impl FnOnce(&mut Config)) -> Srv {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::default();
        c.file.root = dir.path().to_path_buf();
        c.api.login_per_minute = 100_000;
        c.api.requests_per_second = 100_000;
        tune(&mut c);
        let opened = sqdata::open_all(&c).unwrap();
        let reg = sqdata::open_registry(&c).await.unwrap();
        let key_bytes = secrets::random_bytes(32).unwrap();
        let keys = secrets::KeyRing::new(&[("t1".to_string(), key_bytes.clone())]).unwrap();
        let listener = sqdata_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(AppState::new(opened.clone(), sqdata_server::prometheus(), addr, &c.api));
        state.refresh().await;
        let api = Api::new(opened.clone(), reg.clone(), reg.clone(), keys.clone(), c.api.clone(), state.latest.clone());
        let app = sqdata_server::app(state, api.clone());
        tokio::spawn(listen::serve(listener, app, listen::Limits::default(), std::future::pending()));
        seed(&reg).await;
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut s = Srv {
            addr,
            http,
            reg,
            opened,
            api,
            keys,
            key_bytes,
            dir,
            admin: Who::Anonymous,
            trader: Who::Anonymous,
            viewer: Who::Anonymous,
            trader_key: Who::Anonymous,
            trader_key_id: String::new(),
        };
        s.admin = Who::Bearer(s.login("admin", PW).await);
        s.trader = Who::Bearer(s.login("trader", PW).await);
        s.viewer = Who::Bearer(s.login("viewer", PW).await);
        let (full, id, hash) = secrets::new_api_key().unwrap();
        let key = ApiKey {
            id: id.clone(),
            user: "trader".into(),
            label: "bot".into(),
            accounts: None,
            created_at: chrono::Utc::now(),
            expires_at: None,
            revoked: false,
        };
        s.reg.create_api_key(&key, &hash, "test").await.unwrap();
        s.trader_key = Who::Key(full);
        s.trader_key_id = id;
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request: (status, JSON body or the text as a string).
    pub async fn call(&self, method: &str, path: &str, who: &Who, body: Option<&Value>) -> (u16, Value) {
        let (s, _, b) = self.call_raw(method, path, who, body.map(|b| b.to_string()), &[]).await;
        (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
    }

    /// A request with a raw body and extra headers: (status, headers, text).
    pub async fn call_raw(
        &self,
        method: &str,
        path: &str,
        who: &Who,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.http.request(m, self.url(path));
        r = match who {
            Who::Anonymous => r,
            Who::Bearer(t) => r.header("authorization", format!("Bearer {t}")),
            Who::Key(k) => r.header("x-api-key", k),
            Who::Raw(v) => r.header("authorization", v),
        };
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        (status, h, resp.text().await.unwrap())
    }

    pub async fn get(&self, path: &str, who: &Who) -> (u16, Value) {
        self.call("GET", path, who, None).await
    }

    pub async fn post(&self, path: &str, who: &Who, body: Value) -> (u16, Value) {
        self.call("POST", path, who, Some(&body)).await
    }

    /// Logs in; the access token.
    pub async fn login(&self, user: &str, pw: &str) -> String {
        let (s, v) = self.login_full(user, pw).await;
        assert_eq!(s, 200, "login {user}: {v}");
        v["data"]["access_token"].as_str().unwrap().to_string()
    }

    /// Logs in: (status, body).
    pub async fn login_full(&self, user: &str, pw: &str) -> (u16, Value) {
        self.post("/api/v1/auth/login", &Who::Anonymous, json!({ "user": user, "password": pw })).await
    }

    /// Every table's rows as text (users, grants, keys, sessions,
    /// accounts, strategies, params, audit) and the folder's files.
    pub async fn state(&self) -> String {
        let mut out = String::new();
        let users = self.reg.users().await.unwrap();
        for u in &users {
            out.push_str(&format!("{u:?}|{}\n", u.password_hash));
            out.push_str(&format!("{:?}\n", self.reg.grants(&u.name).await.unwrap()));
        }
        out.push_str(&format!("{:?}\n", self.reg.api_keys(None).await.unwrap()));
        out.push_str(&format!("{:?}\n", self.reg.dump().await.unwrap()));
        let mut files = Vec::new();
        walk(self.dir.path(), &mut files);
        files.sort();
        for f in files {
            // the registry is compared through its dump; the file store's
            // write-ahead log (checkpointed in the background) and its spare
            // versions are bookkeeping, not data
            if f.ends_with("sqdata.db")
                || f.contains("sqdata.db-")
                || f.ends_with(".sqdata-positions.wal")
                || f.contains(".sqdata-spare-")
            {
                continue;
            }
            out.push_str(&format!("{f}: {:?}\n", std::fs::read(&f).unwrap_or_default()));
        }
        out
    }
}

fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p.display().to_string());
        }
    }
}

async fn seed(reg: &sqdata::Registry) {
    let now = chrono::Utc::now();
    let hash = secrets::hash_password(PW).unwrap();
    for (name, role) in [("admin", Role::Admin), ("trader", Role::Trader), ("viewer", Role::Viewer)] {
        let u = User {
            name: name.into(),
            role,
            status: UserStatus::Active,
            password_hash: hash.clone(),
            failed_logins: 0,
            locked_until: None,
            tokens_after: now - chrono::Duration::seconds(5),
            created_at: now,
        };
        reg.create_user(&u, "test").await.unwrap();
    }
    for a in [ACC_R, ACC_W, ACC_N] {
        let id = AccountCode::new(a).unwrap();
        reg.upsert_account(
            &Account { id: id.clone(), name: a.into(), broker: "qmt".into(), meta: Default::default() },
            "test",
        )
        .await
        .unwrap();
        let book = sqdata::BookId::new(a, BOOK).unwrap();
        reg.upsert_strategy(&Strategy { book, description: "seed".into(), kind: "grid".into(), enabled: true }, "test")
            .await
            .unwrap();
    }
    for user in ["trader", "viewer"] {
        for (a, right) in [(ACC_R, Right::Read), (ACC_W, Right::Write)] {
            let g = Grant { user: user.into(), account: AccountCode::new(a).unwrap(), right };
            reg.set_grant(&g, "test").await.unwrap();
        }
    }
}
