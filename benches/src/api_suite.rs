//! The REST API suite (`sqdata bench --suite api`): GET positions of a
//! 200-position book over HTTP from `sqdata serve` (a child process pinned
//! to one core) driven by `oha` (pinned to another) in an open loop (a fixed
//! request rate, latency measured from each request's scheduled time, so a
//! stall is not hidden) and a closed loop (N connections as fast as they
//! go); the same under a storm of wrong-password logins; and, in the same
//! run, the in-process call: the handler through the router with and
//! without authentication + RBAC, and the store's snapshot alone.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, header};
use sqdata::{
    Account, AccountCode, AuthStore, BookId, Config, Grant, RegistryStore, Result, Right, Role, User, UserStatus,
};
use sqdata_server::api::{Api, secrets};
use tower::ServiceExt;

use crate::data;
use crate::stats::{Measured, Scenario};

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Folder for the suite's data (a fresh `api/` under it).
    pub data_dir: PathBuf,
    /// The `sqdata` binary to serve with.
    pub sqdata: PathBuf,
    /// The `oha` binary.
    pub oha: PathBuf,
    /// Seconds of each load run.
    pub seconds: u64,
    /// The open loop's rate, req/s.
    pub rate: u32,
    /// The closed loop's connections.
    pub connections: u32,
    /// Cores for the server and for the load (`taskset`); `None`: unpinned.
    pub cores: Option<(usize, usize)>,
    /// Iterations of the in-process scenarios.
    pub iterations: usize,
}

const ACCOUNT: &str = "55009728";
const BOOK: &str = "bench_api";
const PASSWORD: &str = "a long benchmark passphrase";

fn err(what: &str, e: impl std::fmt::Display) -> sqdata::Error {
    sqdata::Error::Config(format!("{what}: {e}"))
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pinned(core: Option<usize>, program: &std::path::Path) -> Command {
    match core {
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &c.to_string()]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

fn post_json(port: u16, path: &str, body: &str) -> Result<serde_json::Value> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| err("connect", e))?;
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| err("request", e))?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| err("response", e))?;
    let json = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    serde_json::from_str(json).map_err(|e| err("response body", e))
}

/// One oha run: its JSON summary.
fn oha(o: &ApiOptions, args: &[String]) -> Result<serde_json::Value> {
    let out = pinned(o.cores.map(|c| c.1), &o.oha)
        .args(["--no-tui", "--output-format", "json", "-z", &format!("{}s", o.seconds)])
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| err(&format!("running {}", o.oha.display()), e))?;
    if !out.status.success() {
        return Err(err("oha", String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| err("oha's JSON", e))
}

/// A load run as a result row; every answer must have been 200.
fn measured(name: &str, v: &serde_json::Value, want_status: &str) -> Result<Measured> {
    let codes = v["statusCodeDistribution"].as_object().cloned().unwrap_or_default();
    let total: u64 = codes.values().filter_map(serde_json::Value::as_u64).sum();
    let good = codes.get(want_status).and_then(serde_json::Value::as_u64).unwrap_or(0);
    if total == 0 || good != total {
        return Err(err(
            name,
            format!("answers were not all {want_status}: {codes:?} (errors {})", v["errorDistribution"]),
        ));
    }
    let p = |k: &str| v["latencyPercentiles"][k].as_f64().unwrap_or(f64::NAN) * 1e6;
    Ok(Measured {
        implementation: name.to_string(),
        samples: total as usize,
        p50_us: p("p50"),
        p95_us: p("p95"),
        p99_us: p("p99"),
        throughput_per_s: v["summary"]["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
        unit: "req".into(),
    })
}

async fn time<F, Fut>(n: usize, mut f: F) -> Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    for _ in 0..(n / 10).clamp(1, 200) {
        f().await?;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// Runs the suite.
pub async fn run_api_suite(o: &ApiOptions) -> Result<Vec<Scenario>> {
    let dir = o.data_dir.join("api");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| sqdata::Error::io(&dir, e))?;
    // the embedded tier; the rates out of the way of a load test (and of a
    // storm from many addresses, which a per-address limit would not stop);
    // the lockout as shipped
    let toml = Config::default_toml()
        .replace("login_per_minute = 10\n", "login_per_minute = 100000000\n")
        .replace("requests_per_second = 200\n", "requests_per_second = 100000000\n");
    std::fs::write(dir.join("sqdata.toml"), &toml).map_err(|e| sqdata::Error::io(&dir, e))?;
    let mut c = Config::load(Some(&dir.join("sqdata.toml")))?;
    c.file.root = dir.join(&c.file.root);
    let opened = sqdata::open_all(&c)?;
    let reg = sqdata::open_registry(&c).await?;
    let book = BookId::new(ACCOUNT, BOOK)?;
    opened.stores.positions.replace_book(&book, &data::position_snapshot(200)).await?;
    let account = AccountCode::new(ACCOUNT)?;
    reg.upsert_account(
        &Account { id: account.clone(), name: "bench".into(), broker: "qmt".into(), meta: Default::default() },
        "bench",
    )
    .await?;
    let now = chrono::Utc::now();
    let user = User {
        name: "bench".into(),
        role: Role::Trader,
        status: UserStatus::Active,
        password_hash: secrets::hash_password(PASSWORD)?,
        failed_logins: 0,
        locked_until: None,
        tokens_after: now - chrono::Duration::seconds(5),
        created_at: now,
    };
    reg.create_user(&user, "bench").await?;
    reg.set_grant(&Grant { user: "bench".into(), account, right: Right::Read }, "bench").await?;
    let api_cfg = c.api.clone().rooted(&c.file.root);
    let (keys, _) = secrets::KeyRing::load_or_create(&api_cfg.jwt_key_file)?;

    let mut scenarios = Vec::new();
    let inproc = in_process(o, &opened, reg.clone(), keys, &api_cfg, &book).await?;

    // the server, pinned
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| err("port", e))?
        .local_addr()
        .map_err(|e| err("port", e))?
        .port();
    let log = std::fs::File::create(dir.join("serve.log")).map_err(|e| sqdata::Error::io(&dir, e))?;
    let _srv = Server(
        pinned(o.cores.map(|c| c.0), &o.sqdata)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(&dir)
            .env_remove("SQDATA_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| err(&format!("starting {}", o.sqdata.display()), e))?,
    );
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            return Err(err("sqdata serve", "did not start in 30 s (see serve.log)"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let login = format!(r#"{{"user":"bench","password":"{PASSWORD}"}}"#);
    let v = post_json(port, "/api/v1/auth/login", &login)?;
    let token = v["data"]["access_token"].as_str().ok_or_else(|| err("login", &v))?.to_string();
    let url = format!("http://127.0.0.1:{port}/api/v1/accounts/{ACCOUNT}/books/{BOOK}/positions");
    let auth = format!("Authorization: Bearer {token}");
    let pin = match o.cores {
        Some((s, l)) => format!("server pinned to core {s}, oha to core {l}"),
        None => "unpinned".into(),
    };

    // open loop
    let open = oha(
        o,
        &[
            "-q".into(),
            o.rate.to_string(),
            "--latency-correction".into(),
            "-c".into(),
            "64".into(),
            "-H".into(),
            auth.clone(),
            url.clone(),
        ],
    )?;
    let open = measured(&format!("HTTP, open loop {} req/s", o.rate), &open, "200")?;
    let pass = open.p95_us <= 1000.0;
    scenarios.push(Scenario {
        name: "api: GET positions (200 codes), open loop".into(),
        target_p95_us: Some(1000.0),
        note: format!(
            "oha -q {} --latency-correction, {} s, {pin}; the in-process rows: the same handler through the router, \
             and the store alone; HTTP P95 ≤ 1 ms -> {}",
            o.rate,
            o.seconds,
            if pass { "PASS" } else { "MISS" }
        ),
        results: vec![open, inproc.with_auth.clone(), inproc.store.clone()],
    });

    // closed loop
    let closed = oha(o, &["-c".into(), o.connections.to_string(), "-H".into(), auth.clone(), url.clone()])?;
    let closed = measured(&format!("HTTP, closed loop {} connections", o.connections), &closed, "200")?;
    let pass = closed.throughput_per_s >= 10_000.0;
    scenarios.push(Scenario {
        name: "api: GET positions (200 codes), closed loop".into(),
        target_p95_us: None,
        note: format!(
            "oha -c {}, {} s, {pin}; target ≥ 10k req/s -> {} ({:.0} req/s)",
            o.connections,
            o.seconds,
            if pass { "PASS" } else { "MISS" },
            closed.throughput_per_s
        ),
        results: vec![closed],
    });

    // a storm of wrong-password logins while the loop reads
    let storm_body = r#"{"user":"bench","password":"not the password at all"}"#.to_string();
    let storm_args: Vec<String> = vec![
        "-c".into(),
        "32".into(),
        "-m".into(),
        "POST".into(),
        "-T".into(),
        "application/json".into(),
        "-d".into(),
        storm_body,
        format!("http://127.0.0.1:{port}/api/v1/auth/login"),
    ];
    let o2 = o.clone();
    let storm = std::thread::spawn(move || oha(&o2, &storm_args));
    std::thread::sleep(Duration::from_millis(300));
    let under = oha(
        o,
        &[
            "-q".into(),
            o.rate.to_string(),
            "--latency-correction".into(),
            "-c".into(),
            "64".into(),
            "-H".into(),
            auth,
            url,
        ],
    )?;
    let under = measured(&format!("HTTP, open loop {} req/s, login storm", o.rate), &under, "200")?;
    let storm = storm.join().map_err(|_| err("storm", "the load thread panicked"))??;
    let codes = storm["statusCodeDistribution"].clone();
    let storm_rate = storm["summary"]["requestsPerSec"].as_f64().unwrap_or(f64::NAN);
    let pass = under.p95_us <= 2000.0;
    scenarios.push(Scenario {
        name: "api: GET positions during a wrong-password login storm".into(),
        target_p95_us: Some(2000.0),
        note: format!(
            "32 connections of wrong-password logins ({storm_rate:.0} req/s, answers {codes}) beside the open loop; \
             Argon2id on SCHED_IDLE hashing threads at most half a core each; no per-address limit (a storm from many \
             addresses), the lockout as shipped; P95 ≤ 2 ms -> {}",
            if pass { "PASS" } else { "MISS" }
        ),
        results: vec![under],
    });

    // authentication + RBAC in process
    let overhead = inproc.with_auth.p50_us - inproc.without_auth.p50_us;
    scenarios.push(Scenario {
        name: "api: authentication + RBAC per request (in process)".into(),
        target_p95_us: None,
        note: format!(
            "the positions handler through the router with a bearer token vs the same handler with no checks: \
             +{overhead:.1} µs at P50; the check alone (token, principal, grants, account) {:.1} µs P50; \
             target ≤ 10 µs -> {}",
            inproc.check.p50_us,
            if overhead <= 10.0 { "PASS" } else { "MISS" }
        ),
        results: vec![inproc.with_auth, inproc.without_auth, inproc.check],
    });
    Ok(scenarios)
}

struct InProcess {
    with_auth: Measured,
    without_auth: Measured,
    check: Measured,
    store: Measured,
}

async fn in_process(
    o: &ApiOptions,
    opened: &sqdata::Opened,
    reg: Arc<sqdata::Registry>,
    keys: secrets::KeyRing,
    cfg: &sqdata::ApiConfig,
    book: &BookId,
) -> Result<InProcess> {
    let n = o.iterations;
    let status = Arc::new(parking_lot::RwLock::new(None));
    let api = Api::new(opened.clone(), reg.clone(), reg, keys, cfg.clone(), status);
    let router = sqdata_server::api::doc::router(api.clone());
    let ip: std::net::SocketAddr = ([127, 0, 0, 1], 9).into();
    let login = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .extension(axum::extract::ConnectInfo(ip))
        .body(Body::from(format!(r#"{{"user":"bench","password":"{PASSWORD}"}}"#)))
        .map_err(|e| err("request", e))?;
    let r = router.clone().oneshot(login).await.map_err(|e| err("login", e))?;
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.map_err(|e| err("login", e))?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| err("login", e))?;
    let token = v["data"]["access_token"].as_str().ok_or_else(|| err("login", &v))?.to_string();
    let path = format!("/api/v1/accounts/{ACCOUNT}/books/{BOOK}/positions");
    let get = |auth: bool| {
        let mut b = Request::get(path.as_str()).extension(axum::extract::ConnectInfo(ip));
        if auth {
            b = b.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        b.body(Body::empty()).map_err(|e| err("request", e))
    };
    let drain = |r: axum::response::Response| async move {
        if !r.status().is_success() {
            return Err(err("in-process call", r.status()));
        }
        axum::body::to_bytes(r.into_body(), 1 << 24).await.map(|_| ()).map_err(|e| err("body", e))
    };
    let mut s = time(n, || {
        let (router, req) = (router.clone(), get(true));
        async move { drain(router.oneshot(req?).await.map_err(|e| err("call", e))?).await }
    })
    .await?;
    let with_auth = Measured::from_samples("in process, authenticated + RBAC", &mut s, 1, "req");
    // the same handler's body with no checks (and no access-log row)
    let bare = axum::Router::new().route(
        "/api/v1/accounts/{account}/books/{book}/positions",
        axum::routing::get({
            let (api, book) = (api.clone(), book.clone());
            move || {
                let (api, book) = (api.clone(), book.clone());
                async move { sqdata_server::api::routes::trading::positions_of(&api, &book).await }
            }
        }),
    );
    let mut s = time(n, || {
        let (bare, req) = (bare.clone(), get(false));
        async move { drain(bare.oneshot(req?).await.map_err(|e| err("call", e))?).await }
    })
    .await?;
    let without_auth = Measured::from_samples("in process, no authentication", &mut s, 1, "req");
    let mut s = time(n, || {
        let (api, req) = (api.clone(), get(true));
        async move {
            let (parts, _) = req?.into_parts();
            let p = api
                .principal(&parts)
                .await
                .map_err(|e| err("principal", e.message))?
                .ok_or_else(|| err("principal", "none"))?;
            p.account(&api, ACCOUNT, Right::Read).await.map_err(|e| err("account", e.message))?;
            Ok(())
        }
    })
    .await?;
    let check = Measured::from_samples("the check alone", &mut s, 1, "req");
    let positions = opened.stores.positions.clone();
    let mut s = time(n, || {
        let (p, b) = (positions.clone(), book.clone());
        async move { p.snapshot(&b).await.map(|_| ()) }
    })
    .await?;
    let store = Measured::from_samples("in process, store snapshot only", &mut s, 200, "code");
    Ok(InProcess { with_auth, without_auth, check, store })
}
