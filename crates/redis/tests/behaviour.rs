//! What the conformance suite cannot say about Redis in particular: the key
//! layout, TTLs, sessions, typed failures, reconnects and a Sentinel
//! failover that loses no acknowledged write.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use sqdata_core::{BookId, Code, PositionStore, PriceTick, Quote, QuoteStore};
use sqdata_redis::{RedisConfig, RedisStore, book_keys};
use sqdata_testkit::procs::{Proc, RedisProc, free_port, port_open, wait_until};

fn code(s: &str) -> Code {
    Code::parse(s).unwrap()
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap()
}

fn quote(c: Code) -> Quote {
    Quote {
        code: c,
        time: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(10, 0, 0).unwrap(),
        last: 10.0,
        open: 9.9,
        high: 10.1,
        low: 9.8,
        pre_close: 9.95,
        volume: 1,
        amount: 10.0,
    }
}

/// One hash tag per book; positions carry no TTL, quotes and sessions do.
#[tokio::test]
async fn key_layout_and_ttls() {
    let cfg = RedisConfig { quote_ttl_ms: 5000, ..common::standalone() };
    let prefix = cfg.prefix.clone();
    let s = RedisStore::open(cfg).unwrap();
    let _purge = common::Purge(s.clone());
    let b = BookId::new("55009728", "prod_pwc").unwrap();
    s.new_held(&b, &[code("000001.SZ")]).await.unwrap();
    s.inc_held_days(&b, NaiveDate::from_ymd_opt(2025, 10, 10).unwrap()).await.unwrap();
    s.update_extremes(&b, &[PriceTick { code: code("000001.SZ"), high: 11.0, low: 10.0 }]).await.unwrap();
    s.put_quotes(&[quote(code("600000.SH"))]).await.unwrap();
    s.put_session("tok-1", "{\"user\":\"u\"}").await.unwrap();
    let keys = book_keys(&prefix, &b);
    assert_eq!(keys[0], format!("{prefix}:{{55009728:prod_pwc}}:pos"));
    assert_eq!(keys[1], format!("{prefix}:{{55009728:prod_pwc}}:meta"));
    let mut c = raw(&common::env("SQDATA_TEST_REDIS_URL")).await;
    for k in &keys {
        let ttl: i64 = redis::cmd("PTTL").arg(k).query_async(&mut c).await.unwrap();
        assert_eq!(ttl, -1, "{k} must not expire");
    }
    // held days = counter n - start S: bought at n = 0, one increment since
    let pos: Vec<(String, String)> = redis::cmd("HGETALL").arg(&keys[0]).query_async(&mut c).await.unwrap();
    assert_eq!(pos, vec![("000001.SZ".to_owned(), "0|11|10".to_owned())]);
    let n: String = redis::cmd("HGET").arg(&keys[1]).arg("n").query_async(&mut c).await.unwrap();
    assert_eq!(n, "1");
    let qttl: i64 = redis::cmd("PTTL").arg(format!("{prefix}:{{quotes}}:600000.SH")).query_async(&mut c).await.unwrap();
    assert!(qttl > 0 && qttl <= 5000, "quote TTL {qttl}");
    let sttl: i64 = redis::cmd("TTL").arg(format!("{prefix}:session:tok-1")).query_async(&mut c).await.unwrap();
    assert!(sttl > 86_000 && sttl <= 86_400, "session TTL {sttl}");
    assert_eq!(s.get_session("tok-1").await.unwrap().as_deref(), Some("{\"user\":\"u\"}"));
    assert!(s.delete_session("tok-1").await.unwrap());
    assert_eq!(s.get_session("tok-1").await.unwrap(), None);
    assert!(s.put_session("bad token", "x").await.unwrap_err().is_invalid_input());
    assert_eq!(s.list_books().await.unwrap(), vec![b.clone()]);
}

/// In a cluster, all of a book's keys hash to one slot.
/// Two processes on one book: one caches the book's extremes and sends only
/// the ticks that can move them; every change by the other (a new code, a
/// sale, a replaced or deleted book, extremes moved first) is still seen.
#[tokio::test]
async fn cached_extremes_follow_every_change_by_another_process() {
    let cfg = common::standalone();
    let a = RedisStore::open(cfg.clone()).unwrap();
    let b_store = RedisStore::open(cfg).unwrap();
    let _purge = common::Purge(a.clone());
    let b = BookId::new("55009728", "cache").unwrap();
    let (x, y, z) = (code("000001.SZ"), code("000002.SZ"), code("000003.SZ"));
    let tick = |c: Code, high: f64, low: f64| PriceTick { code: c, high, low };
    a.new_held(&b, &[x, y]).await.unwrap();
    // the book's token, which the cache is kept under
    let meta = book_keys(&a.config().prefix, &b)[1].clone();
    let mut c = raw(&common::env("SQDATA_TEST_REDIS_URL")).await;
    let token: Option<String> = redis::cmd("HGET").arg(&meta).arg("v").query_async(&mut c).await.unwrap();
    assert!(token.is_some_and(|t| !t.is_empty()), "new_held gives the book a token");
    let ch = a.update_extremes(&b, &[tick(x, 10.0, 9.0), tick(y, 20.0, 19.0)]).await.unwrap();
    assert_eq!(ch.len(), 2, "the first call reads the whole book");
    // nothing passes the cached extremes: no change
    assert!(a.update_extremes(&b, &[tick(x, 9.5, 9.5), tick(y, 19.5, 19.5)]).await.unwrap().is_empty());
    // the other process moves x's max first; ours at 10.5 is then no change, and 12 is
    b_store.update_extremes(&b, &[tick(x, 11.0, 9.0)]).await.unwrap();
    assert!(a.update_extremes(&b, &[tick(x, 10.5, 9.5)]).await.unwrap().is_empty());
    assert_eq!(a.update_extremes(&b, &[tick(x, 12.0, 9.5)]).await.unwrap()[0].max_price, Some(12.0));
    // a new code bought by the other process is ticked at once
    b_store.new_held(&b, &[z]).await.unwrap();
    let ch = a.update_extremes(&b, &[tick(z, 5.0, 4.0)]).await.unwrap();
    assert_eq!(ch, vec![sqdata_core::ExtremeChange { code: z, max_price: Some(5.0), min_price: Some(4.0) }]);
    // the book replaced by the other with lower extremes: lower ticks move them again
    let mut snap = a.snapshot(&b).await.unwrap();
    for e in snap.positions.values_mut() {
        e.max_price = Some(1.0);
        e.min_price = Some(1.0);
    }
    b_store.replace_book(&b, &snap).await.unwrap();
    let ch = a.update_extremes(&b, &[tick(x, 2.0, 1.0)]).await.unwrap();
    assert_eq!(ch[0].max_price, Some(2.0));
    // deleted and bought again: no stale extremes survive
    b_store.delete_book(&b).await.unwrap();
    b_store.new_held(&b, &[x]).await.unwrap();
    let ch = a.update_extremes(&b, &[tick(x, 1.5, 1.5)]).await.unwrap();
    assert_eq!(ch[0].max_price, Some(1.5));
    // sold by the other: no longer moved
    b_store.mark_sold(&b, x).await.unwrap();
    assert!(a.update_extremes(&b, &[tick(x, 50.0, 0.5)]).await.unwrap().is_empty());
    let snap = b_store.snapshot(&b).await.unwrap();
    assert_eq!(snap.positions[&x].max_price, None);
}

#[tokio::test]
async fn a_book_lives_in_one_cluster_slot() {
    let urls = common::env("SQDATA_TEST_REDIS_CLUSTER_URLS");
    let first = urls.split(',').next().unwrap();
    let mut c = raw(first).await;
    let b = BookId::new("55009728", "prod_pwc").unwrap();
    let mut slots = Vec::new();
    for k in book_keys("sq", &b) {
        let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(&k).query_async(&mut c).await.unwrap();
        slots.push(slot);
    }
    slots.dedup();
    assert_eq!(slots.len(), 1, "{slots:?}");
}

/// A Redis that cannot be reached is a typed, retryable error — never an
/// empty snapshot (the Python prototype's fatal bug).
#[tokio::test]
async fn unreachable_redis_is_a_retryable_error_not_an_empty_book() {
    let port = free_port();
    let s = RedisStore::open(RedisConfig {
        url: format!("redis://127.0.0.1:{port}/0"),
        connect_timeout_ms: 200,
        response_timeout_ms: 200,
        ..Default::default()
    })
    .unwrap();
    let b = BookId::new("a", "b").unwrap();
    let e = s.snapshot(&b).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(e.kind(), "unavailable", "{e}");
    assert!(s.held_days(&b, &[code("000001.SZ")]).await.unwrap_err().is_retryable());
    assert!(s.get_quotes(&[code("000001.SZ")]).await.unwrap_err().is_retryable());
    let h = sqdata_core::HealthCheck::health(&s).await;
    assert!(!h.up && h.error.is_some());
}

/// A Redis that dies and comes back: calls fail while it is gone and work
/// again by themselves afterwards (no restart of sqdata).
#[tokio::test]
async fn reconnects_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = RedisProc::start(tmp.path(), &[]);
    let s = RedisStore::open(RedisConfig {
        url: r.url(),
        connect_timeout_ms: 300,
        response_timeout_ms: 300,
        ..Default::default()
    })
    .unwrap();
    let b = BookId::new("a", "b").unwrap();
    s.new_held(&b, &[code("000001.SZ")]).await.unwrap();
    r.kill();
    let e = s.snapshot(&b).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    r.restart();
    let mut ok = false;
    for _ in 0..100 {
        if s.new_held(&b, &[code("600000.SH")]).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the store did not reconnect within 10 s");
    assert!(s.snapshot(&b).await.unwrap().positions.contains_key(&code("600000.SH")));
}

/// The instance id is the server's run id: stable while it runs, new after
/// a restart (how the hybrid notices a Redis that came back empty).
#[tokio::test]
async fn the_instance_changes_with_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = RedisProc::start(tmp.path(), &[]);
    let s = RedisStore::open(RedisConfig { url: r.url(), response_timeout_ms: 300, ..Default::default() }).unwrap();
    let first = s.instance().await.unwrap().expect("standalone has a run id");
    assert_eq!(first.len(), 40, "{first}");
    assert_eq!(s.instance().await.unwrap().as_deref(), Some(first.as_str()));
    r.kill();
    assert!(s.instance().await.is_err(), "a dead server is an error, not None");
    r.restart();
    let mut after = None;
    for _ in 0..100 {
        if let Ok(Some(id)) = s.instance().await {
            after = Some(id);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = after.expect("reconnected within 10 s");
    assert_ne!(after, first);
    let cluster = RedisStore::open(common::cluster()).unwrap();
    assert_eq!(cluster.instance().await.unwrap(), None, "a cluster has no single instance");
}

/// Kill the master during a write loop: after Sentinel promotes the replica,
/// every acknowledged write is there (writes wait for the replica's ack).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let mut master = RedisProc::start(tmp.path(), &[]);
    let replica = RedisProc::start(tmp.path(), &["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let sport = free_port();
    let conf = tmp.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {sport}\nbind 127.0.0.1\ndir {}\nsentinel monitor fo 127.0.0.1 {} 1\nsentinel down-after-milliseconds fo 1000\nsentinel failover-timeout fo 5000\n",
            tmp.path().display(),
            master.port
        ),
    )
    .unwrap();
    let _sentinel = Proc::spawn(Command::new("redis-server").arg(&conf).arg("--sentinel"));
    wait_until("sentinel", Duration::from_secs(10), || port_open(sport));
    // the replica must be in sync before the test starts
    let rurl = replica.url();
    let mut rc = raw(&rurl).await;
    for _ in 0..100 {
        let info: String = redis::cmd("INFO").arg("replication").query_async(&mut rc).await.unwrap();
        if info.contains("master_link_status:up") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Sentinel finds the replica through the master's INFO; it can only fail
    // over to a replica it knows.
    let mut sc = raw(&format!("redis://127.0.0.1:{sport}")).await;
    for _ in 0..200 {
        let replicas: redis::Value =
            redis::cmd("SENTINEL").arg("REPLICAS").arg("fo").query_async(&mut sc).await.unwrap();
        if matches!(&replicas, redis::Value::Array(a) if !a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = RedisStore::open(RedisConfig {
        sentinels: vec![format!("redis://127.0.0.1:{sport}")],
        sentinel_master: "fo".into(),
        replica_acks: 1,
        replica_ack_timeout_ms: 500,
        connect_timeout_ms: 300,
        response_timeout_ms: 500,
        prefix: common::prefix(),
        ..Default::default()
    })
    .unwrap();
    let b = BookId::new("55009728", "failover").unwrap();
    let killed = Arc::new(AtomicBool::new(false));
    let (mut acked, mut failed) = (Vec::new(), 0usize);
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    let mut i = 0u32;
    let (mut killed_at, mut restarted) = (None::<std::time::Instant>, false);
    while acked.len() < 300 && std::time::Instant::now() < deadline {
        let c = code(&format!("{:06}.SZ", i));
        match s.new_held(&b, &[c]).await {
            Ok(()) => acked.push(c),
            Err(e) => {
                assert!(e.is_retryable(), "failures during a failover must be retryable: {e:?}");
                failed += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        i += 1;
        if acked.len() == 100 && !killed.swap(true, Ordering::SeqCst) {
            master.kill();
            killed_at = Some(std::time::Instant::now());
        }
        // The old master comes back a few seconds later; Sentinel turns it
        // into a replica of the new master, and replica acks resume.
        if killed_at.is_some_and(|t| t.elapsed() > Duration::from_secs(4)) && !restarted {
            master.restart();
            restarted = true;
        }
    }
    assert!(killed.load(Ordering::SeqCst));
    assert_eq!(acked.len(), 300, "writes did not resume after the failover ({failed} failed attempts)");
    let snap = s.snapshot(&b).await.unwrap();
    let lost: Vec<_> = acked.iter().filter(|c| !snap.positions.contains_key(c)).collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost: {lost:?}", lost.len());
    eprintln!("failover: 300 writes acknowledged, {failed} attempts failed during the outage, 0 lost");
    drop(replica);
}

/// compose/redis/redis.conf: the review's persistence, and an eviction
/// policy that can never evict a key without a TTL (position state). The
/// file is loaded by a real redis-server to prove it is valid.
#[test]
fn compose_config_never_evicts_position_state() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../compose/redis/redis.conf");
    let text = std::fs::read_to_string(path).unwrap();
    let get = |k: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.trim().strip_prefix(&format!("{k} ")).map(str::to_owned))
            .collect()
    };
    let policy = get("maxmemory-policy");
    assert_eq!(policy.len(), 1);
    assert!(policy[0].starts_with("volatile-") || policy[0] == "noeviction", "{policy:?} could evict permanent keys");
    assert_eq!(get("maxmemory"), ["512mb"]);
    assert_eq!(get("appendonly"), ["yes"]);
    assert_eq!(get("appendfsync"), ["everysec"]);
    assert_eq!(get("aof-use-rdb-preamble"), ["yes"]);
    assert_eq!(get("save"), ["3600 1"]);
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("redis.conf");
    std::fs::write(&conf, text.replace("dir /data", &format!("dir {}", tmp.path().display()))).unwrap();
    let port = free_port();
    let _server = Proc::spawn(Command::new("redis-server").arg(&conf).args(["--port", &port.to_string()]));
    wait_until("redis with the compose config", Duration::from_secs(10), || port_open(port));
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "config", "get", "maxmemory-policy"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains(&policy[0]));
}

/// Reads made in place (`sqdata_core::inline`, as the Python package does)
/// answer what the connection task answers; a pooled connection left dead
/// by a restart is replaced without an error; a frozen server costs no more
/// than the deadline being polled, then a retryable error (the hybrid falls
/// back to the files within its `primary_timeout_ms`).
#[test]
fn reads_in_place_match_survive_a_restart_and_keep_the_deadline() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut r = RedisProc::start(tmp.path(), &[]);
    let s = RedisStore::open(RedisConfig {
        url: r.url(),
        connect_timeout_ms: 2000,
        response_timeout_ms: 5000,
        ..Default::default()
    })
    .unwrap();
    let b = BookId::new("a", "inplace").unwrap();
    rt.block_on(async {
        s.new_held(&b, &[code("000001.SZ"), code("600000.SH")]).await.unwrap();
        s.update_extremes(&b, &[PriceTick { code: code("000001.SZ"), high: 11.5, low: 10.25 }]).await.unwrap();
    });
    let in_place = || sqdata_core::inline::run(|| rt.block_on(s.snapshot(&b)));
    let by_task = rt.block_on(s.snapshot(&b)).unwrap();
    assert_eq!(in_place().unwrap(), by_task);
    assert_eq!(by_task.positions.len(), 2);

    // the pooled connection dies with the server; the next read reconnects
    r.kill();
    r.restart();
    rt.block_on(async {
        // (the connection task's first write after a restart may fail: it reconnects then)
        for _ in 0..50 {
            if s.new_held(&b, &[code("000001.SZ"), code("600000.SH")]).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.update_extremes(&b, &[PriceTick { code: code("000001.SZ"), high: 11.5, low: 10.25 }]).await.unwrap();
    });
    assert_eq!(in_place().unwrap(), by_task, "a dead pooled connection is replaced, not reported");

    // frozen: bounded by the deadline polled around the call, not the 5 s response timeout
    r.signal("-STOP");
    let t = std::time::Instant::now();
    let e = sqdata_core::inline::run(|| {
        rt.block_on(sqdata_core::layer::deadline("redis", "snapshot", Duration::from_millis(300), s.snapshot(&b)))
    })
    .unwrap_err();
    let took = t.elapsed();
    r.signal("-CONT");
    assert!(e.is_retryable(), "{e:?}");
    assert!(took < Duration::from_millis(2000), "blocked {took:?} past a 300 ms deadline");
    assert_eq!(in_place().unwrap(), by_task);
}
