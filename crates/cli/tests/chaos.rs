//! Several processes on one data folder while the servers die: three
//! writers of different kinds — `sqdata` CLI invocations in a loop, a
//! Python strategy loop through the wheel, and a long-lived Rust writer —
//! for a minute, while Redis and ClickHouse are SIGKILLed and restarted
//! several times and the Rust writer is SIGKILLed once. Afterwards every
//! acknowledged write is in the files and on the servers, no write reported
//! failed is half-present, `sqdata verify --full` finds nothing, and no
//! journal entry is left.
//!
//! Run after the wheel is built (`cargo xtask test` does): the Python writer
//! needs `SQDATA_TEST_PYTHON`, an interpreter with the `sqdata` wheel.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqdata::{BookId, Code, Config, DealQuery, MAX_PAGE_SIZE, Stores};
use sqdata_testkit::procs::{ClickHouseProc, RedisProc};

const CHILD: &str = "SQDATA_CHAOS_RUST_WRITER";
const ACCOUNT: &str = "55009728";

/// Acknowledged and failed writes of one writer: (kind, key).
#[derive(Debug, Default)]
struct Tally {
    acked: Vec<(String, String)>,
    failed: Vec<(String, String)>,
}

impl Tally {
    fn line(&mut self, line: &str) {
        let mut it = line.split_whitespace();
        match (it.next(), it.next(), it.next()) {
            (Some("ACK"), Some(kind), Some(key)) => self.acked.push((kind.into(), key.into())),
            (Some("FAIL"), Some(kind), Some(key)) => self.failed.push((kind.into(), key.into())),
            _ => {}
        }
    }
}

fn config_text(root: &Path, redis: &str, clickhouse: &str, prefix: &str, db: &str) -> String {
    format!(
        "tier = \"mvp\"\n\n[file]\nroot = \"{root}\"\n\n[redis]\nurl = \"{redis}\"\nprefix = \"{prefix}\"\n\
         connect_timeout_ms = 300\nresponse_timeout_ms = 500\n\n[clickhouse]\nurl = \"{clickhouse}\"\n\
         database = \"{db}\"\njournal_dir = \"{chj}\"\ntimeout_ms = 3000\nflush_interval_ms = 200\n\n\
         [hybrid]\nprobe_interval_ms = 200\nprimary_timeout_ms = 800\n",
        root = root.join("data").display(),
        chj = root.join("chj").display(),
    )
}

fn code(n: u32) -> String {
    format!("{:06}.SZ", n % 1_000_000)
}

fn read_lines(child: &mut Child, tally: Arc<Mutex<Tally>>) -> std::thread::JoinHandle<()> {
    let out = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            tally.lock().unwrap().line(&line);
        }
    })
}

fn spawn_rust_writer(cfg: &Path, generation: u32) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "three_writers_on_one_folder_while_the_servers_die", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{}|{generation}", cfg.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the Rust writer")
}

const PYTHON_WRITER: &str = r#"
import os, sys, time, datetime
import sqdata
s = sqdata.open(os.environ["SQDATA_CONFIG"])
b = s.book("55009728", "py")
stop = os.environ["CHAOS_STOP"]
i = 0
def say(*a):
    print(*a, flush=True)
while not os.path.exists(stop):
    code = "%06d.SZ" % (200000 + i)
    try:
        b.new_held([code]); say("ACK pos", code)
    except sqdata.SqdataError:
        say("FAIL pos", code)
    did = "py-%d" % i
    try:
        b.record_deal({"id": did, "time": datetime.datetime(2025, 10, 10, 10, 0, i % 60), "code": code,
                       "name": "", "kind": "limit_buy", "remark": "", "price": 10.0, "volume": 100})
        say("ACK deal", did)
    except sqdata.SqdataError:
        say("FAIL deal", did)
    try:
        b.update_extremes([(code, 11.0 + i % 7, 9.0)])
    except sqdata.SqdataError:
        pass
    i += 1
    time.sleep(0.02)
"#;

#[test]
fn three_writers_on_one_folder_while_the_servers_die() {
    // Started again by itself with CHILD set: the long-lived Rust writer.
    if let Ok(arg) = std::env::var(CHILD) {
        return rust_writer(arg);
    }
    let python = common::env("SQDATA_TEST_PYTHON");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut redis = RedisProc::start(root, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut ch = ClickHouseProc::start(root);
    let n = std::process::id();
    let cfg_path = root.join("sqdata.toml");
    std::fs::write(&cfg_path, config_text(root, &redis.url(), &ch.url(), &format!("chaos{n}"), &format!("chaos_{n}")))
        .unwrap();
    let stop = root.join("STOP");

    // writer 1: the long-lived Rust writer
    let rust_tally = Arc::new(Mutex::new(Tally::default()));
    let mut rust = spawn_rust_writer(&cfg_path, 0);
    let mut readers = vec![read_lines(&mut rust, rust_tally.clone())];
    // writer 2: a Python strategy loop through the wheel
    let py_tally = Arc::new(Mutex::new(Tally::default()));
    let mut py = Command::new(&python)
        .args(["-c", PYTHON_WRITER])
        .env("SQDATA_CONFIG", &cfg_path)
        .env("CHAOS_STOP", &stop)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the Python writer");
    readers.push(read_lines(&mut py, py_tally.clone()));
    // writer 3: `sqdata` invocations in a loop
    let cli_tally = Arc::new(Mutex::new(Tally::default()));
    let cli = {
        let (cfg, stop, tally) = (cfg_path.clone(), stop.clone(), cli_tally.clone());
        std::thread::spawn(move || cli_writer(&cfg, &stop, &tally))
    };

    // the chaos: Redis and ClickHouse SIGKILLed and restarted, the Rust writer once
    let t = Instant::now();
    let mut round = 0u32;
    let mut rust_killed = false;
    while t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_secs(4));
        if round.is_multiple_of(2) {
            redis.kill();
            std::thread::sleep(Duration::from_millis(1500));
            redis.restart();
        } else {
            ch.kill();
            std::thread::sleep(Duration::from_millis(2000));
            ch.restart();
        }
        if !rust_killed && t.elapsed() > Duration::from_secs(25) {
            rust.kill().unwrap(); // SIGKILL, mid-write
            let _ = rust.wait();
            rust = spawn_rust_writer(&cfg_path, 1);
            readers.push(read_lines(&mut rust, rust_tally.clone()));
            rust_killed = true;
        }
        round += 1;
    }
    // the servers stay up; the writers go on a moment (their probers bring
    // the domains back), then stop
    std::thread::sleep(Duration::from_secs(5));
    std::fs::write(&stop, b"").unwrap();
    assert!(rust.wait().unwrap().success(), "the Rust writer failed");
    assert!(py.wait().unwrap().success(), "the Python writer failed");
    cli.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }

    // settle: a fresh process's view (adopts what the writers left journaled)
    let c = Config::load(Some(&cfg_path)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (files, server) = rt.block_on(settle(&c));

    // every acknowledged write in the files and on the servers; no failed one half-present
    let mut report = Vec::new();
    for (name, book, tally) in [("cli", "cli", &cli_tally), ("python", "py", &py_tally), ("rust", "rs", &rust_tally)] {
        let book = BookId::new(ACCOUNT, book).unwrap();
        let tally = tally.lock().unwrap();
        let (f_pos, s_pos) = rt.block_on(codes(&files, &server, &book));
        let (f_deals, s_deals) = rt.block_on(deal_ids(&files, &server, &book));
        let (mut pos, mut deals) = (0, 0);
        for (kind, key) in &tally.acked {
            match kind.as_str() {
                "pos" => {
                    pos += 1;
                    assert!(f_pos.contains(key) && s_pos.contains(key), "{name}: acknowledged buy {key} missing");
                }
                "deal" => {
                    deals += 1;
                    assert!(f_deals.contains(key) && s_deals.contains(key), "{name}: acknowledged deal {key} missing");
                }
                _ => {}
            }
        }
        for (kind, key) in &tally.failed {
            let (f, s) = match kind.as_str() {
                "pos" => (f_pos.contains(key), s_pos.contains(key)),
                _ => (f_deals.contains(key), s_deals.contains(key)),
            };
            assert_eq!(f, s, "{name}: the failed {kind} {key} is half-present (files {f}, server {s})");
        }
        report.push(format!("{name}: {pos} buys + {deals} deals acknowledged, {} failed", tally.failed.len()));
        assert!(pos > 10 && deals > 10, "{name} did not get far enough: {report:?}");
    }

    // the tool a user runs agrees
    let o = common::sqdata(root, &["--config", cfg_path.to_str().unwrap(), "verify", "--full"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("consistent: 0 differences"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // nothing left journaled anywhere
    let left = pending_journals(&[root.join("data/_hybrid/journal"), root.join("chj")]);
    assert!(left.is_empty(), "journal entries left: {left:?}");
    eprintln!("chaos: {round} server kills, 1 writer SIGKILL; {}; 0 lost; verify 0 differences", report.join("; "));
    drop((redis, ch));
}

/// Opens the folder as a new process would, brings every domain back and
/// every journal into the servers; returns (the files, the servers).
async fn settle(c: &Config) -> (Stores, Stores) {
    let opened = sqdata::open_all(c).unwrap();
    let h = opened.hybrid.clone().unwrap();
    let t = Instant::now();
    loop {
        let _ = sqdata::HealthCheck::health(&*h).await; // probes and recovers
        let st = h.status();
        let done = st
            .iter()
            .filter(|s| h.active_domains().contains(&s.domain))
            .all(|s| s.mode == sqdata::hybrid::Mode::Healthy && s.journal_bytes == 0 && s.unjournaled == 0);
        if done {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the domains did not settle: {st:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // a query flushes ClickHouse's own journal (and the adopted ones)
    let probe = BookId::new(ACCOUNT, "rs").unwrap();
    h.primary().deals.query(&DealQuery::book(probe)).await.unwrap();
    (Stores::from_one(opened.files.clone()), h.primary().clone())
}

async fn codes(files: &Stores, server: &Stores, book: &BookId) -> (BTreeSet<String>, BTreeSet<String>) {
    let f = files.positions.snapshot(book).await.unwrap();
    let s = server.positions.snapshot(book).await.unwrap();
    (f.positions.keys().map(Code::to_string).collect(), s.positions.keys().map(Code::to_string).collect())
}

async fn deal_ids(files: &Stores, server: &Stores, book: &BookId) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut out = (BTreeSet::new(), BTreeSet::new());
    for (i, s) in [files, server].into_iter().enumerate() {
        let mut q = DealQuery { page_size: MAX_PAGE_SIZE, ..DealQuery::book(book.clone()) };
        loop {
            let p = s.deals.query(&q).await.unwrap();
            let n = p.data.len();
            let set = if i == 0 { &mut out.0 } else { &mut out.1 };
            set.extend(p.data.into_iter().map(|d| d.id));
            if n < MAX_PAGE_SIZE as usize {
                break;
            }
            q.page += 1;
        }
    }
    out
}

/// `*.journal` files with entries past their checkpoint.
fn pending_journals(dirs: &[PathBuf]) -> Vec<String> {
    let mut out = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "journal") {
                continue;
            }
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            let ckpt = std::fs::read_to_string(p.with_extension("checkpoint"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(0);
            if len > ckpt {
                out.push(format!("{} ({} bytes pending)", p.display(), len - ckpt));
            }
        }
    }
    out
}

/// Writer 3: one `sqdata` process per write.
fn cli_writer(cfg: &Path, stop: &Path, tally: &Mutex<Tally>) {
    let cfg = cfg.to_str().unwrap();
    let mut i = 0u32;
    while !stop.exists() {
        let c = code(100_000 + i);
        let o = common::sqdata(
            Path::new("/"),
            &["--config", cfg, "positions", "new-held", "--account", ACCOUNT, "--book", "cli", &c],
        );
        tally.lock().unwrap().line(&format!("{} pos {c}", if o.status.success() { "ACK" } else { "FAIL" }));
        let id = format!("cli-{i}");
        let time = format!("2025-10-10 11:{:02}:{:02}", (i / 60) % 60, i % 60);
        let o = common::sqdata(
            Path::new("/"),
            &[
                "--config",
                cfg,
                "deals",
                "record",
                "--account",
                ACCOUNT,
                "--book",
                "cli",
                "--id",
                &id,
                "--time",
                &time,
                "--code",
                &c,
                "--kind",
                "limit_buy",
                "--price",
                "10.5",
                "--volume",
                "100",
            ],
        );
        tally.lock().unwrap().line(&format!("{} deal {id}", if o.status.success() { "ACK" } else { "FAIL" }));
        i += 1;
    }
}

/// Writer 1: a long-lived process writing positions, deals and the equity
/// curve, printing each answer.
fn rust_writer(arg: String) {
    let (cfg, generation) = arg.rsplit_once('|').unwrap();
    let generation: u32 = generation.parse().unwrap();
    let cfg_path = PathBuf::from(cfg);
    let stop = cfg_path.parent().unwrap().join("STOP");
    let c = Config::load(Some(&cfg_path)).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = sqdata::open(&c).unwrap();
    let book = BookId::new(ACCOUNT, "rs").unwrap();
    let mut out = std::io::stdout().lock();
    let mut i = 0u32;
    rt.block_on(async {
        while !stop.exists() {
            let n = 300_000 + generation * 100_000 + i;
            let c = code(n);
            let code_: Code = c.parse().unwrap();
            let r = s.positions.new_held(&book, &[code_]).await;
            let _ = writeln!(out, "{} pos {c}", if r.is_ok() { "ACK" } else { "FAIL" });
            let id = format!("rs-{generation}-{i}");
            let d = sqdata::Deal {
                id: id.clone(),
                book: book.clone(),
                time: chrono::NaiveDate::from_ymd_opt(2025, 10, 10)
                    .unwrap()
                    .and_hms_opt(13, (i / 60) % 60, i % 60)
                    .unwrap(),
                code: code_,
                name: String::new(),
                kind: sqdata::DealKind::LimitBuy,
                remark: String::new(),
                price: 10.0,
                volume: 100,
                amount: 1000.0,
                strategy: "chaos".into(),
            };
            let r = sqdata::DealStoreExt::record(&*s.deals, &d).await;
            let _ = writeln!(out, "{} deal {id}", if r.is_ok() { "ACK" } else { "FAIL" });
            let tick = sqdata::PriceTick { code: code_, high: 11.0 + f64::from(i % 5), low: 9.0 };
            let _ = s.positions.update_extremes(&book, &[tick]).await;
            let day = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Duration::days(i64::from(i % 300));
            let _ = sqdata::AssetStoreExt::upsert_asset(
                &*s.assets,
                &book,
                sqdata::AssetRow { date: day, asset: f64::from(i) },
            )
            .await;
            let _ = out.flush();
            i += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}
