//! Fault tests against real processes the tests start themselves (their own
//! redis-server / clickhouse-server on spare ports), killed with SIGKILL or
//! frozen with SIGSTOP while writers run. Every acknowledged write is
//! counted and looked for afterwards.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqdata::hybrid::{Hybrid, Mode, VerifyOptions};
use sqdata::{
    Backend, BookId, Code, Config, Deal, DealQuery, DealStoreExt as _, MAX_PAGE_SIZE, PositionSnapshot,
    PositionStore as _, PriceTick, Routing, Stores,
};
use sqdata_testkit::chaos::{Chaos, Fault};
use sqdata_testkit::procs::{ClickHouseProc, RedisProc};
use sqdata_testkit::{fresh_book, fresh_codes, sample};

/// Positions on a Redis of the test's own, everything else on the files.
fn positions_on(dir: &std::path::Path, redis_url: String) -> Config {
    let mut c =
        Config { stores: Routing { positions: Some(Backend::Redis), ..Default::default() }, ..Default::default() };
    c.file.root = dir.join("data");
    c.redis.url = redis_url;
    c.redis.prefix = format!("sqtest{:x}", sqdata_testkit::random_u64());
    c.redis.connect_timeout_ms = 200;
    c.redis.response_timeout_ms = 300;
    c.hybrid.probe_interval_ms = 100;
    c.hybrid.primary_timeout_ms = 300;
    c
}

async fn wait_mode(h: &Hybrid, domain: &str, mode: Mode, within: Duration) {
    let t = Instant::now();
    while !h.status().iter().any(|s| s.domain.as_str() == domain && s.mode == mode) {
        assert!(t.elapsed() < within, "{domain} not {mode:?} after {within:?}: {:?}", h.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a writer expects of its own codes: held (with the widest high/low
/// it was acknowledged) or sold.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Held { max: f64, min: f64 },
    Sold,
}

fn lost(expect: &BTreeMap<Code, Expect>, snap: &PositionSnapshot) -> Vec<Code> {
    expect
        .iter()
        .filter(|(c, e)| match (e, snap.positions.get(c)) {
            (Expect::Held { max, min }, Some(p)) => p.max_price != Some(*max) || p.min_price != Some(*min),
            (Expect::Held { .. }, None) => true,
            (Expect::Sold, p) => p.is_some_and(|p| p.max_price.is_some()),
        })
        .map(|(c, _)| *c)
        .collect()
}

/// Redis is SIGKILLed while 8 writers run new_held / update_extremes /
/// mark_sold and a reader polls the book: reads keep answering (from the
/// files), the domain comes back by itself when Redis does, verify finds 0
/// differences and no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_under_eight_writers_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisProc::start(dir.path(), &["--appendonly", "yes", "--appendfsync", "everysec"]);
    let c = positions_on(dir.path(), redis.url());
    let opened = sqdata::open_all(&c).unwrap();
    let h = opened.hybrid.clone().unwrap();
    let s = opened.stores.clone();
    let book = fresh_book();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8u32 {
        let (s, book, stop) = (s.clone(), book.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let codes = fresh_codes(4000);
            let mut expect: BTreeMap<Code, Expect> = BTreeMap::new();
            let (mut acked, mut failed) = (0u64, 0u64);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) && i < codes.len() {
                let c = codes[i];
                let (high, low) = ((1000 + w as i64 * 100 + i as i64) as f64 / 100.0, 9.0);
                let r = async {
                    s.positions.new_held(&book, &[c]).await?;
                    s.positions.update_extremes(&book, &[PriceTick { code: c, high, low }]).await?;
                    if i.is_multiple_of(3) {
                        s.positions.mark_sold(&book, c).await?;
                        return Ok::<_, sqdata::Error>(Expect::Sold);
                    }
                    Ok(Expect::Held { max: high, min: low })
                }
                .await;
                match r {
                    Ok(e) => {
                        acked += if e == Expect::Sold { 3 } else { 2 };
                        expect.insert(c, e);
                    }
                    Err(_) => failed += 1,
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            (expect, acked, failed)
        }));
    }
    let reader = {
        let (s, book, stop) = (s.clone(), book.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answers: Vec<(Instant, Instant, bool)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let ok = s.positions.snapshot(&book).await.is_ok();
                answers.push((t0, Instant::now(), ok));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed = Instant::now();
    redis.kill(); // SIGKILL
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pos = h.status().into_iter().find(|s| s.domain.as_str() == "positions").unwrap();
    assert_eq!(pos.mode, Mode::Degraded, "{pos:?}");
    redis.restart();
    wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(15)).await;
    let recovered = killed.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut expect, mut acked, mut failed) = (BTreeMap::new(), 0, 0);
    for w in writers {
        let (e, a, f) = w.await.unwrap();
        expect.extend(e);
        acked += a;
        failed += f;
    }
    let answers = reader.await.unwrap();
    let read_errors = answers.iter().filter(|a| !a.2).count();
    let first_after = answers.iter().find(|a| a.0 >= killed).map(|a| a.1 - killed);

    assert_eq!(read_errors, 0, "reads must keep answering");
    assert_eq!(failed, 0, "writes must keep being acknowledged (files + journal)");
    let files = h.secondary().positions.snapshot(&book).await.unwrap();
    let server = h.primary().positions.snapshot(&book).await.unwrap();
    let lost_files = lost(&expect, &files);
    let lost_server = lost(&expect, &server);
    assert!(lost_files.is_empty(), "{} acknowledged writes lost in the files", lost_files.len());
    assert!(lost_server.is_empty(), "{} acknowledged writes lost in Redis", lost_server.len());
    let v = h.verify(&VerifyOptions::default()).await.unwrap();
    assert_eq!(v.total_differences(), 0, "{}", v.render_text());
    let st = h.status().into_iter().find(|s| s.domain.as_str() == "positions").unwrap();
    assert!(st.fallbacks > 0 && st.journaled_writes > 0 && st.journal_bytes == 0, "{st:?}");
    eprintln!(
        "redis SIGKILL: {acked} writes acknowledged ({} codes), 0 lost, 0 failed; {} reads, 0 errors; \
         first answer after the kill {:?}; healthy again {recovered:?} after the kill; verify 0 differences; {st:?}",
        expect.len(),
        answers.len(),
        first_after
    );
}

fn deal(book: &BookId, i: u32) -> Deal {
    let day = NaiveDate::from_ymd_opt(2025, 6, 2).unwrap();
    let mut d = sample::deals(book, &[sqdata_testkit::code("000001.SZ")], &[day], 1, "x").remove(0);
    d.id = format!("f{i:06}");
    d
}

async fn ids(s: &dyn sqdata::DealStore, book: &BookId) -> Vec<String> {
    let mut q = DealQuery { page_size: MAX_PAGE_SIZE, ..DealQuery::book(book.clone()) };
    let mut out = Vec::new();
    loop {
        let p = s.query(&q).await.unwrap();
        let n = p.data.len();
        out.extend(p.data.into_iter().map(|d| d.id));
        if n < MAX_PAGE_SIZE as usize {
            return out;
        }
        q.page += 1;
    }
}

/// ClickHouse frozen (SIGSTOP), then killed, while deals are recorded and
/// read: after it is back, every acknowledged deal is there once, in
/// ClickHouse and in the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clickhouse_frozen_then_killed_loses_and_duplicates_no_deal() {
    let dir = tempfile::tempdir().unwrap();
    let mut ch = ClickHouseProc::start(dir.path());
    let mut c =
        Config { stores: Routing { deals: Some(Backend::Clickhouse), ..Default::default() }, ..Default::default() };
    c.file.root = dir.path().join("data");
    c.clickhouse = common::clickhouse_config(dir.path());
    c.clickhouse.url = ch.url();
    c.clickhouse.timeout_ms = 1500;
    c.hybrid.probe_interval_ms = 200;
    c.hybrid.primary_timeout_ms = 700;
    let opened = sqdata::open_all(&c).unwrap();
    let h = opened.hybrid.clone().unwrap();
    let s = opened.stores.clone();
    let book = fresh_book();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (s, book, stop) = (s.clone(), book.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut acked, mut failed) = (Vec::new(), 0u32);
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                match s.deals.record(&deal(&book, i)).await {
                    Ok(_) => acked.push(format!("f{i:06}")),
                    Err(_) => failed += 1,
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acked, failed)
        })
    };
    let reader = {
        let (s, book, stop) = (s.clone(), book.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut err) = (0u32, 0u32);
            while !stop.load(Ordering::Relaxed) {
                match s.deals.query(&DealQuery { page_size: 10, ..DealQuery::book(book.clone()) }).await {
                    Ok(_) => ok += 1,
                    Err(_) => err += 1,
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, err)
        })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ch.signal("-STOP");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    ch.kill();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ch.restart();
    wait_mode(&h, "deals", Mode::Healthy, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = writer.await.unwrap();
    let (reads_ok, read_errors) = reader.await.unwrap();
    assert_eq!(read_errors, 0, "reads answer from the files while ClickHouse is frozen or dead");
    assert_eq!(failed, 0);
    for (side, store) in [("clickhouse", h.primary().deals.clone()), ("files", h.secondary().deals.clone())] {
        let mut got = ids(&*store, &book).await;
        let n = got.len();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), n, "duplicates in {side}");
        let missing: Vec<_> = acked.iter().filter(|a| got.binary_search(a).is_err()).collect();
        assert!(missing.is_empty(), "{} acknowledged deals missing in {side}", missing.len());
        assert_eq!(n, acked.len(), "{side} holds exactly the acknowledged deals");
    }
    let st = h.status().into_iter().find(|s| s.domain.as_str() == "deals").unwrap();
    eprintln!(
        "clickhouse SIGSTOP+SIGKILL: {} deals acknowledged, 0 lost, 0 duplicated (both sides); \
         {reads_ok} reads, 0 errors; {st:?}",
        acked.len()
    );
    let _ = std::fs::remove_dir_all(dir.path().join("unused"));
}

const CHILD: &str = "SQDATA_HYBRID_FAULT_CHILD";

/// sqdata itself is SIGKILLed mid-write (Redis down, so every write goes to
/// the files and the journal): no file is corrupt, and when a new process
/// starts with Redis back, the journal is replayed into Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqdata_killed_mid_write_leaves_no_corrupt_file_and_the_journal_replays() {
    // Started again by itself with CHILD set: the child role.
    if let Ok(arg) = std::env::var(CHILD) {
        return child_writer(arg).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisProc::start(dir.path(), &["--appendonly", "yes"]);
    redis.kill();
    let c = positions_on(dir.path(), redis.url());
    let book = fresh_book();
    let cfg_json = serde_json::json!({ "root": c.file.root, "url": c.redis.url, "prefix": c.redis.prefix, "book": book.to_string() });
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqdata_killed_mid_write_leaves_no_corrupt_file_and_the_journal_replays",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, cfg_json.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let t = Instant::now();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(code) = line.strip_prefix("ACK ") {
            acked.push(code.parse::<Code>().unwrap());
            if acked.len() == 300 {
                child.kill().unwrap(); // SIGKILL, mid-stream
                break;
            }
        }
    }
    let _ = child.wait();
    assert_eq!(acked.len(), 300, "the writer did not get far enough");
    eprintln!("300 acks after {:?}", t.elapsed());
    // no corrupt file: the files read back, with every acknowledged code
    let files = Stores::from_one(Arc::new(sqdata::FileStore::open(c.file.clone()).unwrap()));
    let snap = files.positions.snapshot(&book).await.expect("the files are readable after the kill");
    let missing: Vec<_> = acked.iter().filter(|c| !snap.positions.contains_key(c)).collect();
    assert!(missing.is_empty(), "{} acknowledged writes missing in the files", missing.len());
    // a new process, Redis back: starts degraded (journal pending), replays, healthy
    redis.restart();
    let opened = sqdata::open_all(&c).unwrap();
    let h = opened.hybrid.clone().unwrap();
    let journal = h.status().into_iter().find(|s| s.domain.as_str() == "positions").unwrap();
    assert!(journal.journal_bytes > 0 && journal.mode == Mode::Degraded, "{journal:?}");
    let _ = opened.stores.positions.snapshot(&book).await.unwrap(); // starts the prober
    wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(10)).await;
    let server = h.primary().positions.snapshot(&book).await.unwrap();
    assert_eq!(server, files.positions.snapshot(&book).await.unwrap(), "Redis caught up from the journal");
    eprintln!(
        "sqdata SIGKILL: {} writes acknowledged before the kill, 0 lost, files readable, journal of {} bytes replayed",
        acked.len(),
        journal.journal_bytes
    );
}

/// The writer process of the test above.
async fn child_writer(arg: String) {
    let v: serde_json::Value = serde_json::from_str(&arg).unwrap();
    let dir = std::path::PathBuf::from(v["root"].as_str().unwrap());
    let mut c = positions_on(dir.parent().unwrap(), v["url"].as_str().unwrap().into());
    c.redis.prefix = v["prefix"].as_str().unwrap().into();
    let book: BookId = v["book"].as_str().unwrap().parse().unwrap();
    let s = sqdata::open(&c).unwrap();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for code in fresh_codes(2000) {
        s.positions.new_held(&book, &[code]).await.unwrap();
        writeln!(out, "ACK {code}").unwrap();
        out.flush().unwrap();
    }
}

/// A failing secondary write with real servers: the primary (Redis, and
/// ClickHouse for deals) is compensated and the caller sees the error.
#[tokio::test]
async fn a_failing_secondary_write_is_compensated_on_the_real_servers() {
    let dir = tempfile::tempdir().unwrap();
    let c = common::mvp(dir.path());
    let _cleanup = common::Cleanup::of(&c);
    let opened = sqdata::open_all(&c).unwrap();
    let files = Chaos::wrap(Stores::from_one(opened.files.clone()));
    let mut primary = opened.hybrid.as_ref().unwrap().primary().clone();
    primary.backends.clear();
    let h = Hybrid::new(primary.clone(), files.stores(), c.hybrid.clone().rooted(&c.file.root)).unwrap();
    let book = fresh_book();
    let codes = fresh_codes(2);
    h.new_held(&book, &[codes[0]]).await.unwrap();
    files.switch.set(Fault::FailWrites);
    assert!(h.new_held(&book, &[codes[1]]).await.is_err(), "the caller sees the error");
    let server = primary.positions.snapshot(&book).await.unwrap();
    assert!(server.positions.contains_key(&codes[0]) && !server.positions.contains_key(&codes[1]), "{server:?}");
    let d = deal(&book, 1);
    assert!(h.record(&d).await.is_err());
    assert_eq!(ids(&*primary.deals, &book).await.len(), 0, "the deal was taken back from ClickHouse");
    let st: Vec<_> = h.status().into_iter().filter(|s| s.compensations > 0).map(|s| s.domain).collect();
    assert_eq!(st, vec![sqdata::Domain::Positions, sqdata::Domain::Deals]);
    files.switch.set(Fault::None);
    let v = h.verify(&VerifyOptions { books: Some(vec![book.clone()]), ..Default::default() }).await.unwrap();
    assert_eq!(v.total_differences(), 0, "{}", v.render_text());
}

/// A Redis without persistence comes back empty: the recovery compares
/// every book (not only the journaled ones) and restores them from the files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_comes_back_empty_is_refilled_from_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisProc::start(dir.path(), &["--appendonly", "no"]);
    let c = positions_on(dir.path(), redis.url());
    let opened = sqdata::open_all(&c).unwrap();
    let h = opened.hybrid.clone().unwrap();
    let s = opened.stores.clone();
    let (quiet, busy) = (fresh_book(), fresh_book());
    s.positions.new_held(&quiet, &fresh_codes(50)).await.unwrap();
    s.positions.new_held(&busy, &fresh_codes(5)).await.unwrap();
    redis.kill();
    s.positions.new_held(&busy, &fresh_codes(1)).await.unwrap(); // degrades, journaled
    redis.restart(); // empty
    wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(10)).await;
    for b in [&quiet, &busy] {
        assert_eq!(
            h.primary().positions.snapshot(b).await.unwrap(),
            h.secondary().positions.snapshot(b).await.unwrap(),
            "{b} restored in Redis"
        );
    }
    let st = h.status().into_iter().find(|s| s.domain.as_str() == "positions").unwrap();
    assert!(st.inconsistencies >= 1 && st.repairs >= 50, "counted and alerted: {st:?}");
}

/// Redis restarts empty between two reads of the sell loop (no persistence,
/// a quick restart): the failed read degrades positions at once, recovery
/// refills Redis from the files, and no read ever returns an empty book.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quick_empty_restart_never_serves_an_empty_book() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisProc::start(dir.path(), &["--appendonly", "no"]);
    let c = positions_on(dir.path(), redis.url());
    let opened = sqdata::open_all(&c).unwrap();
    let h = opened.hybrid.clone().unwrap();
    let s = opened.stores.clone();
    let book = fresh_book();
    let codes = fresh_codes(200);
    s.positions.new_held(&book, &codes).await.unwrap();
    assert_eq!(s.positions.snapshot(&book).await.unwrap().positions.len(), 200);
    redis.kill();
    redis.restart(); // back at once, empty
    let mut sizes = Vec::new();
    for _ in 0..40 {
        let snap = s.positions.snapshot(&book).await.unwrap();
        sizes.push(snap.positions.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sizes.iter().all(|n| *n == 200), "a read served a partial or empty book: {sizes:?}");
    wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(10)).await;
    assert_eq!(h.primary().positions.snapshot(&book).await.unwrap().positions.len(), 200, "Redis refilled");
}
