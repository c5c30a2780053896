//! The hybrid's rules, with a fault-injected primary and secondary.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqdata_core::{
    AssetRow, AssetStoreExt as _, BookId, Code, DateRange, Deal, DealKind, DealQuery, DealStoreExt, Domain,
    PositionStore, PriceTick, QuoteStore, Stores,
};
use sqdata_hybrid::{Hybrid, HybridConfig, Mode, RolloutState, Stage};
use sqdata_testkit::MemoryStore;
use sqdata_testkit::chaos::{Chaos, Fault};

fn code(i: u32) -> Code {
    Code::parse(&format!("{:06}.SZ", i)).unwrap()
}

fn book() -> BookId {
    BookId::new("55009728", "hybrid").unwrap()
}

fn status(h: &Hybrid, d: &str) -> sqdata_hybrid::DomainStatus {
    h.status().into_iter().find(|s| s.domain.as_str() == d).unwrap()
}

/// An empty primary answer is an answer: no fallback. An error falls back.
#[tokio::test]
async fn falls_back_on_errors_never_on_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let (h, chaos, secondary) = common::hybrid(dir.path(), Duration::from_secs(5));
    // only the files know this book, which was adopted (as a migration
    // would): the server's empty answer is an answer
    secondary.positions.new_held(&book(), &[code(1)]).await.unwrap();
    h.adopt(Domain::Positions, Some(&[book()])).unwrap();
    assert!(h.snapshot(&book()).await.unwrap().positions.is_empty(), "the primary's empty book is the answer");
    assert_eq!(status(&h, "positions").fallbacks, 0);
    chaos.switch.set(Fault::Fail);
    // Quotes are ephemeral: one failed read falls back without opening the circuit.
    assert!(h.get_quotes(&[code(1)]).await.unwrap().is_empty(), "a failing primary falls back");
    assert_eq!(status(&h, "quotes").fallbacks, 1);
    assert_eq!(status(&h, "quotes").mode, Mode::Healthy, "one failure does not open the circuit");
    for _ in 0..3 {
        h.get_quotes(&[code(1)]).await.unwrap();
    }
    assert_eq!(status(&h, "quotes").mode, Mode::Degraded, "repeated failures do");
    // Positions degrade at the first failed read: a server that failed once
    // may come back without its state, and only recovery compares the books.
    assert_eq!(h.snapshot(&book()).await.unwrap().positions.len(), 1, "a failing primary falls back");
    assert_eq!(status(&h, "positions").fallbacks, 1);
    assert_eq!(status(&h, "positions").mode, Mode::Degraded);
}

/// Eight writers; the primary dies mid-run and comes back: every
/// acknowledged write is in both stores afterwards, which agree exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_loses_no_write_and_the_primary_is_resynced() {
    let dir = tempfile::tempdir().unwrap();
    let (h, chaos, secondary) = common::hybrid(dir.path(), Duration::from_secs(5));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..8u32 {
        let (h, stop) = (h.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let c = code(w * 10_000 + i);
                if h.new_held(&book(), &[c]).await.is_ok() {
                    acked.push(c);
                }
                let t = PriceTick { code: c, high: 10.0 + i as f64 / 100.0, low: 9.0 };
                h.update_extremes(&book(), &[t]).await.unwrap();
                if i % 3 == 0 {
                    h.mark_sold(&book(), c).await.unwrap();
                }
                i += 1;
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    chaos.switch.set(Fault::Fail);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&h, "positions").mode, Mode::Degraded);
    chaos.switch.set(Fault::None);
    common::wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    let primary = chaos.stores();
    chaos.switch.set(Fault::None);
    let p = primary.positions.snapshot(&book()).await.unwrap();
    let s = secondary.positions.snapshot(&book()).await.unwrap();
    assert_eq!(p, s, "after recovery the primary equals the files");
    let lost: Vec<_> = acked.iter().filter(|c| !s.positions.contains_key(c)).collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost", lost.len());
    let st = status(&h, "positions");
    assert!(st.journaled_writes > 0 && st.journal_bytes == 0, "{st:?}");
    eprintln!("outage: {} buys acknowledged, 0 lost, stores equal; {st:?}", acked.len());
}

/// A failing secondary write: the primary is compensated, the caller sees
/// the error, the counters say so.
#[tokio::test]
async fn a_failing_secondary_compensates_the_primary() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let primary = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let secondary = Chaos::wrap(common::files(dir.path(), ttl));
    let h = Hybrid::new(primary.clone(), secondary.stores(), common::config(dir.path())).unwrap();
    h.new_held(&book(), &[code(1)]).await.unwrap();
    secondary.switch.set(Fault::FailWrites);
    let e = h.new_held(&book(), &[code(2)]).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    let p = primary.positions.snapshot(&book()).await.unwrap();
    assert!(p.positions.contains_key(&code(1)) && !p.positions.contains_key(&code(2)), "compensated: {p:?}");
    let d = Deal {
        id: "c1".into(),
        book: book(),
        time: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(9, 30, 0).unwrap(),
        code: code(1),
        name: "平安银行".into(),
        kind: DealKind::MarketBuy,
        remark: String::new(),
        price: 10.0,
        volume: 100,
        amount: 1000.0,
        strategy: String::new(),
    };
    assert!(h.record(&d).await.is_err());
    assert_eq!(primary.deals.query(&DealQuery::book(book())).await.unwrap().total, 0, "the deal was taken back");
    let row = AssetRow { date: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap(), asset: 1.0 };
    secondary.switch.set(Fault::None);
    h.upsert_asset(&book(), row).await.unwrap();
    secondary.switch.set(Fault::FailWrites);
    assert!(h.upsert_asset(&book(), AssetRow { asset: 2.0, ..row }).await.is_err());
    assert_eq!(primary.assets.assets(&book(), DateRange::all()).await.unwrap(), vec![row], "the old value is back");
    let st = status(&h, "positions");
    assert_eq!((st.dual_write_failures, st.compensations), (1, 1));
    assert_eq!(status(&h, "deals").compensations, 1);
    assert_eq!(status(&h, "assets").compensations, 1);
}

/// Writes journaled while degraded survive a restart of sqdata: the new
/// process starts degraded and replays them into the primary.
#[tokio::test]
async fn the_journal_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    {
        let chaos = Chaos::wrap(mem.clone());
        chaos.switch.set(Fault::Fail);
        let h = Hybrid::new(chaos.stores(), common::files(dir.path(), ttl), common::config(dir.path())).unwrap();
        for i in 0..5 {
            h.new_held(&book(), &[code(i)]).await.unwrap();
        }
        assert_eq!(status(&h, "positions").mode, Mode::Degraded);
    }
    // a new process, the primary healthy again
    let h = Hybrid::new(mem.clone(), common::files(dir.path(), ttl), common::config(dir.path())).unwrap();
    assert_eq!(status(&h, "positions").mode, Mode::Degraded, "journaled writes: the primary is stale");
    h.snapshot(&book()).await.unwrap(); // starts the prober
    common::wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(5)).await;
    assert_eq!(mem.positions.snapshot(&book()).await.unwrap().positions.len(), 5);
}

/// Degrading posts a DingTalk/Feishu-style JSON alert to the webhook.
#[tokio::test]
async fn degrading_posts_an_alert_to_the_webhook() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            loop {
                let n = sock.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if got.len() >= i + 4 + len {
                        sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
                        let _ = tx.send(text[i + 4..].to_owned()).await;
                        break;
                    }
                }
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let chaos = Chaos::wrap(Stores::from_one(Arc::new(MemoryStore::new(ttl))));
    let cfg = HybridConfig { webhook_url: Some(url), ..common::config(dir.path()) };
    let h = Hybrid::new(chaos.stores(), common::files(dir.path(), ttl), cfg).unwrap();
    chaos.switch.set(Fault::Fail);
    h.new_held(&book(), &[code(1)]).await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["msgtype"], "text");
    assert!(v["text"]["content"].as_str().unwrap().contains("positions degraded"), "{v}");
    assert_eq!(v["sqdata"]["kind"], "degraded");
}

/// Stages: files never touch the primary; shadow serves the files and
/// writes both; reads serves the primary; a per-account rollout file
/// overrides the config.
#[tokio::test]
async fn stages_route_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let chaos = Chaos::wrap(mem.clone());
    let files = common::files(dir.path(), ttl);
    let cfg = HybridConfig { stage: Stage::Files, ..common::config(dir.path()) };
    let h = Hybrid::new(chaos.stores(), files.clone(), cfg.clone()).unwrap();
    h.new_held(&book(), &[code(1)]).await.unwrap();
    h.snapshot(&book()).await.unwrap();
    assert_eq!(chaos.switch.calls(), 0, "files stage never touches the primary");
    // promote this account to shadow through the rollout file
    let mut st = RolloutState::default();
    st.accounts.insert("55009728".into(), Stage::Shadow);
    st.save(&cfg.rollout_file).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.stage(Some(&book())), Stage::Shadow);
    // The book was written at stage files: the server never received it,
    // so it stays on the files until adopted (a migration or a promotion).
    h.new_held(&book(), &[code(2)]).await.unwrap();
    assert!(mem.positions.snapshot(&book()).await.unwrap().positions.is_empty(), "an unadopted book stays off");
    h.adopt(Domain::Positions, Some(&[book()])).unwrap();
    h.new_held(&book(), &[code(3)]).await.unwrap();
    assert!(mem.positions.snapshot(&book()).await.unwrap().positions.contains_key(&code(3)), "shadow writes both");
    // the primary lacks codes 1 and 2: shadow still serves the files
    assert_eq!(h.snapshot(&book()).await.unwrap().positions.len(), 3);
    st.accounts.insert("55009728".into(), Stage::Reads);
    st.adopted = RolloutState::load(&cfg.rollout_file).unwrap().adopted;
    st.save(&cfg.rollout_file).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.snapshot(&book()).await.unwrap().positions.len(), 1, "reads stage serves the primary");
}

/// Read-after-write verification finds a difference, alerts and repairs it
/// from the declared source of truth (the files).
#[tokio::test]
async fn sampled_verification_repairs_differences() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_secs(5);
    let mem = Stores::from_one(Arc::new(MemoryStore::new(ttl)));
    let files = common::files(dir.path(), ttl);
    let cfg = HybridConfig { verify_sample_rate: 1.0, ..common::config(dir.path()) };
    let h = Hybrid::new(mem.clone(), files.clone(), cfg).unwrap();
    h.new_held(&book(), &[code(1)]).await.unwrap();
    // drift: the files know a code the primary does not
    files.positions.new_held(&book(), &[code(9)]).await.unwrap();
    h.new_held(&book(), &[code(2)]).await.unwrap();
    let st = status(&h, "positions");
    assert_eq!((st.inconsistencies, st.repairs), (1, 1), "{st:?}");
    assert_eq!(mem.positions.snapshot(&book()).await.unwrap(), files.positions.snapshot(&book()).await.unwrap());
}

/// The first degraded answer after the primary dies comes within the
/// primary timeout; the breaker then stops asking the primary at all.
#[tokio::test]
async fn degraded_answers_come_fast() {
    let dir = tempfile::tempdir().unwrap();
    let (h, chaos, _) = common::hybrid(dir.path(), Duration::from_secs(5));
    h.new_held(&book(), &[code(1)]).await.unwrap();
    chaos.switch.set(Fault::Fail);
    let t = Instant::now();
    let s = h.snapshot(&book()).await.unwrap();
    assert_eq!(s.positions.len(), 1);
    eprintln!("first answer after the failure: {:?}", t.elapsed());
    for _ in 0..3 {
        h.snapshot(&book()).await.unwrap();
    }
    let before = chaos.switch.calls();
    for _ in 0..10 {
        h.snapshot(&book()).await.unwrap();
    }
    assert_eq!(chaos.switch.calls(), before, "degraded: the primary is not asked");
}

/// The positions server restarts empty and no call fails in between (a
/// pooled reconnect): the prober sees a new instance id, positions degrade,
/// recovery refills the primary from the files, and reads never serve the
/// empty book once that is noticed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_empty_restart_is_caught_by_the_instance_id() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Arc::new(MemoryStore::new(Duration::from_secs(5)));
    let primary = Chaos::wrap(Stores::from_one(memory.clone()));
    let secondary = common::files(dir.path(), Duration::from_secs(5));
    let h = Hybrid::new(primary.stores(), secondary.clone(), common::config(dir.path())).unwrap();
    let codes: Vec<Code> = (1..=50).map(code).collect();
    h.new_held(&book(), &codes).await.unwrap();
    // let the prober take its first look at the instance
    tokio::time::sleep(Duration::from_millis(200)).await;
    memory.restart_empty();
    assert!(memory.snapshot(&book()).await.unwrap().positions.is_empty(), "the server lost the book");
    common::wait_mode(&h, "positions", Mode::Healthy, Duration::from_secs(5)).await;
    let t = Instant::now();
    loop {
        let st = status(&h, "positions");
        if st.repairs >= 1 && st.mode == Mode::Healthy {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "not repaired: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(memory.snapshot(&book()).await.unwrap().positions.len(), 50, "refilled from the files");
    assert_eq!(h.snapshot(&book()).await.unwrap().positions.len(), 50);
}
