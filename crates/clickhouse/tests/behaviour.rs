//! ClickHouse in particular: the journal (kill -9 loses nothing
//! acknowledged, a replay never duplicates), an unreachable server, escaping,
//! version-aware DDL and the storage report.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use chrono::NaiveDate;
use sqdata_clickhouse::{ClickHouseConfig, ClickHouseStore};
use sqdata_core::{BookId, Code, Deal, DealKind, DealQuery, DealScope, DealStore, DealStoreExt, MAX_PAGE_SIZE};

fn deal(book: &BookId, i: u32) -> Deal {
    let time = NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(9, 30, 0).unwrap()
        + chrono::Duration::seconds(i as i64);
    Deal {
        id: format!("k{i:05}"),
        book: book.clone(),
        time,
        code: Code::parse("000001.SZ").unwrap(),
        name: "平安银行".into(),
        kind: DealKind::LimitBuy,
        remark: "买入委托".into(),
        price: 11.23,
        volume: 100,
        amount: 1123.0,
        strategy: "t".into(),
    }
}

async fn all_ids(s: &ClickHouseStore, book: &BookId) -> Vec<String> {
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

const CHILD: &str = "SQDATA_CH_TEST_CHILD";

/// A writer process is SIGKILLed mid-stream: every deal it acknowledged is
/// in ClickHouse after a restart, none twice.
#[tokio::test]
async fn kill_9_loses_no_acknowledged_deal_and_duplicates_none() {
    // Started again by itself with CHILD set: the child role.
    if let Ok(arg) = std::env::var(CHILD) {
        return child_writer(arg).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(common::env("SQDATA_TEST_CLICKHOUSE_URL"), dir.path());
    let db = cfg.database.clone();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill_9_loses_no_acknowledged_deal_and_duplicates_none", "--nocapture", "--test-threads=1"])
        .env(CHILD, format!("{}|{}", dir.path().display(), db))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.to_owned());
            if acked.len() == 737 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    let _ = child.wait();
    assert_eq!(acked.len(), 737, "the writer did not get far enough");
    // restart: a new store on the same journal replays what was not flushed
    let s = ClickHouseStore::open(cfg).unwrap();
    let _drop = common::DropDb(s.clone());
    let book = BookId::new("55009728", "killed").unwrap();
    let mut ids = all_ids(&s, &book).await;
    let stored = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), stored, "duplicates after the replay");
    let missing: Vec<_> = acked.iter().filter(|a| ids.binary_search(a).is_err()).collect();
    assert!(missing.is_empty(), "{} acknowledged deals lost: {:?}", missing.len(), &missing[..missing.len().min(5)]);
    eprintln!("kill -9: {} acknowledged, {} stored, 0 lost, 0 duplicated", acked.len(), stored);
}

/// The writer of `kill_9_…`: records deals one by one, printing each
/// acknowledgement (does nothing unless started by that test).
async fn child_writer(arg: String) {
    let (dir, db) = arg.split_once('|').unwrap();
    let cfg = ClickHouseConfig {
        url: common::env("SQDATA_TEST_CLICKHOUSE_URL"),
        database: db.into(),
        journal_dir: dir.into(),
        flush_rows: 100,
        flush_interval_ms: 50,
        ..Default::default()
    };
    let s = ClickHouseStore::open(cfg).unwrap();
    let book = BookId::new("55009728", "killed").unwrap();
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for i in 0..100_000 {
        s.record(&deal(&book, i)).await.unwrap();
        writeln!(out, "ACK k{i:05}").unwrap();
        out.flush().unwrap();
    }
}

/// The checkpoint is lost after rows reached ClickHouse (a crash between
/// the INSERT and the checkpoint): the replay inserts nothing twice.
#[tokio::test]
async fn a_replayed_journal_never_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::config(common::env("SQDATA_TEST_CLICKHOUSE_URL"), dir.path());
    let s = ClickHouseStore::open(cfg.clone()).unwrap();
    // the cleanup holds its own instance: this one must be gone (and its
    // journal lock released) before the replay opens the journal again
    let other = ClickHouseConfig { journal_dir: dir.path().join("cleanup-journal"), ..cfg.clone() };
    let _drop = common::DropDb(ClickHouseStore::open(other).unwrap());
    let book = BookId::new("55009728", "replay").unwrap();
    let deals: Vec<Deal> = (0..300).map(|i| deal(&book, i)).collect();
    assert_eq!(s.record_batch(&deals).await.unwrap().inserted, 300);
    s.flush().await.unwrap();
    assert_eq!(s.pending_deals(), 0);
    // A crash after the INSERT and before the checkpoint leaves the
    // journal with no checkpoint behind: keep a copy of it as such an
    // orphan (a clean drop removes a fully flushed journal).
    let journal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "journal"))
        .expect("the store's journal");
    let bytes = std::fs::read(&journal).unwrap();
    drop(s);
    std::fs::write(dir.path().join("deals-999999-0.journal"), bytes).unwrap();
    let s2 = ClickHouseStore::open(cfg).unwrap();
    assert_eq!(s2.pending_deals(), 300, "the whole journal is pending again");
    assert_eq!(all_ids(&s2, &book).await.len(), 300);
    assert_eq!(s2.pending_deals(), 0);
    // the daily aggregate (a materialized view) did not count them twice either
    let agg = s2
        .aggregate(&sqdata_core::AggregateQuery {
            account: book.account.clone(),
            from: None,
            to: None,
            by: sqdata_core::AggregateBy::Day,
        })
        .await
        .unwrap();
    assert_eq!(agg[0].count, 300);
}

/// With ClickHouse unreachable, recording still succeeds (the journal) and
/// reads fail with a retryable error; once it is back, nothing is missing.
#[tokio::test]
async fn records_are_journaled_while_clickhouse_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let good = common::config(common::env("SQDATA_TEST_CLICKHOUSE_URL"), dir.path());
    let port = sqdata_testkit::procs::free_port();
    let down = ClickHouseConfig { url: format!("http://127.0.0.1:{port}"), timeout_ms: 300, ..good.clone() };
    let s = ClickHouseStore::open(down).unwrap();
    let book = BookId::new("55009728", "offline").unwrap();
    let deals: Vec<Deal> = (0..50).map(|i| deal(&book, i)).collect();
    let o = s.record_batch(&deals).await.unwrap();
    assert_eq!(o.inserted, 50);
    let e = s.query(&DealQuery::book(book.clone())).await.unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    let h = sqdata_core::HealthCheck::health(&s).await;
    assert!(!h.up);
    assert_eq!(h.details["pending_deals"], 50);
    drop(s);
    let s = ClickHouseStore::open(good).unwrap();
    let _drop = common::DropDb(s.clone());
    assert_eq!(all_ids(&s, &book).await.len(), 50);
}

/// Values travel bound and escaped: quotes, backslashes and SQL in names
/// are stored as given and break nothing.
#[tokio::test]
async fn hostile_strings_are_data_not_sql() {
    let dir = tempfile::tempdir().unwrap();
    let s = ClickHouseStore::open(common::config(common::env("SQDATA_TEST_CLICKHOUSE_URL"), dir.path())).unwrap();
    let _drop = common::DropDb(s.clone());
    let book = BookId::new("55009728", "hostile").unwrap();
    let mut d = deal(&book, 1);
    d.id = "x'); DROP TABLE deals; --".into();
    d.name = "O'Brien \\ \"quoted\" ?".into();
    d.remark = "'||(SELECT 1)||'".into();
    s.record(&d).await.unwrap();
    let p = s.query(&DealQuery { code: Some(d.code), ..DealQuery::book(book.clone()) }).await.unwrap();
    assert_eq!(p.data, vec![d.clone()]);
    let other = BookId::new("55009728", "hostile2").unwrap();
    assert!(s.query(&DealQuery::book(other)).await.unwrap().data.is_empty());
    assert_eq!(s.list_books().await.unwrap(), vec![book]);
    let _ = DealScope::Account(d.book.account.clone());
}

/// Deleting more ids than fit in one query (an archive run deletes a whole
/// book's old deals at once): all go, the rest stay, the daily totals follow.
#[tokio::test]
async fn deleting_ten_thousand_ids_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let s = ClickHouseStore::open(common::config(common::env("SQDATA_TEST_CLICKHOUSE_URL"), dir.path())).unwrap();
    let _drop = common::DropDb(s.clone());
    let book = BookId::new("55009728", "bulk_delete").unwrap();
    // broker order ids are long: 10k of them do not fit in one 256 KiB query
    let deals: Vec<Deal> = (0..10_500)
        .map(|i| Deal { id: format!("k{i:05}-{}", "0123456789abcdef".repeat(2)), ..deal(&book, i) })
        .collect();
    s.record_batch(&deals).await.unwrap();
    let ids: Vec<String> = deals[..10_000].iter().map(|d| d.id.clone()).collect();
    assert_eq!(s.delete_deals(&book, &ids).await.unwrap(), 10_000);
    let left = all_ids(&s, &book).await;
    assert_eq!(left.len(), 500);
    assert!(left.iter().all(|id| id.as_str() >= "k10000"), "only the named ids went");
    let q = sqdata_core::AggregateQuery {
        account: book.account.clone(),
        from: None,
        to: None,
        by: sqdata_core::AggregateBy::Day,
    };
    let agg = s.aggregate(&q).await.unwrap();
    assert_eq!(agg.iter().map(|a| a.count).sum::<u64>(), 500, "the day's totals were rebuilt: {agg:?}");
}

/// Plain types on 18.16; LowCardinality and codecs on a current server;
/// partitioning per SPEC on both. The storage report reads system.parts.
#[tokio::test]
async fn ddl_follows_the_server_version_and_stats_report_storage() {
    let dir = tempfile::tempdir().unwrap();
    let url = common::env("SQDATA_TEST_CLICKHOUSE_URL");
    let s = ClickHouseStore::open(common::config(url, dir.path())).unwrap();
    let _drop = common::DropDb(s.clone());
    let v = s.server_version().await.unwrap();
    let book = BookId::new("55009728", "stats").unwrap();
    s.record_batch(&(0..500).map(|i| deal(&book, i)).collect::<Vec<_>>()).await.unwrap();
    s.flush().await.unwrap();
    let stats = s.stats().await.unwrap();
    let deals = stats.iter().find(|t| t.table == "deals").expect("deals in system.parts");
    assert_eq!(deals.rows, 500);
    assert!(deals.bytes_on_disk > 0 && deals.compression_ratio() > 1.0, "{deals:?}");
    let h = sqdata_core::HealthCheck::health(&s).await;
    assert!(h.up && h.details.contains_key("tables"), "{h:?}");
    assert_eq!(v.major, 18, "this test checks the 18.16 flavour; the modern flavour is unit-tested in schema.rs");
}

/// A store that is gone (a strategy that died with ClickHouse out of reach)
/// leaves acknowledged deals in its journal: a live store on the same
/// folder adopts and flushes them within seconds, with no restart and no
/// deal recorded by it.
#[tokio::test]
async fn a_live_store_adopts_the_journal_of_one_that_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let good = common::config(common::env("SQDATA_TEST_CLICKHOUSE_URL"), dir.path());
    let live = ClickHouseStore::open(good.clone()).unwrap();
    let _drop = common::DropDb(live.clone());
    let port = sqdata_testkit::procs::free_port();
    let down = ClickHouseConfig { url: format!("http://127.0.0.1:{port}"), timeout_ms: 300, ..good };
    let gone = ClickHouseStore::open(down).unwrap();
    let book = BookId::new("55009728", "adopted").unwrap();
    let deals: Vec<Deal> = (0..20).map(|i| deal(&book, i)).collect();
    assert_eq!(gone.record_batch(&deals).await.unwrap().inserted, 20);
    drop(gone);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if all_ids(&live, &book).await.len() == 20 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the gone store's deals never reached ClickHouse");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(live.pending_deals(), 0);
}

/// A database an earlier release wrote (migration 1: bars with four scaled
/// prices, two versions of a series) upgrades on open: the current version
/// reads back bar for bar, the old table is gone, and opening again changes
/// nothing.
#[tokio::test]
async fn bars_of_migration_1_upgrade_on_open() {
    upgrade_from_migration_1(false).await;
}

/// The same when an earlier run was cut short after renaming `bars` to
/// `bars_v1` (the copy and the drop are done by the next open).
#[tokio::test]
async fn an_interrupted_bar_migration_finishes_on_the_next_open() {
    upgrade_from_migration_1(true).await;
}

async fn upgrade_from_migration_1(renamed: bool) {
    use sqdata_clickhouse::schema::{ledger, migrations};
    use sqdata_core::{Adjust, Bar, BarKey, BarStore, Period, TimeRange};

    let dir = tempfile::tempdir().unwrap();
    let url = common::env("SQDATA_TEST_CLICKHOUSE_URL");
    let cfg = common::config(url.clone(), dir.path());
    let db = cfg.database.clone();
    let c = clickhouse::Client::default().with_url(&url).with_validation(false);
    let version: String = c.query("SELECT version()").fetch_one().await.unwrap();
    let v = sqdata_clickhouse::ServerVersion::parse(&version).unwrap();
    let run = |sql: String| {
        let c = c.clone();
        async move { c.query(&sql).execute().await.unwrap_or_else(|e| panic!("{sql}: {e}")) }
    };
    run(format!("CREATE DATABASE {db}")).await;
    run(ledger().replace("{db}", &db)).await;
    for stmt in migrations(v).remove(0).statements {
        run(stmt.replace("{db}", &db)).await;
    }
    run(format!("INSERT INTO {db}.schema_migrations SELECT 1, 'migration 1', now()")).await;
    let day = |d: u32| NaiveDate::from_ymd_opt(2023, 1, d).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let expect = vec![
        Bar { datetime: day(3), open: 10.23, high: 10.5, low: 10.01, close: 10.45, volume: 1000, amount: 1.5e6 },
        Bar { datetime: day(4), open: 10.45, high: 10.45, low: 9.8, close: 9.81, volume: 0, amount: 0.0 },
        Bar {
            datetime: day(5),
            open: 1234.567891,
            high: 1300.0,
            low: 0.000001,
            close: 0.5,
            volume: u64::MAX / 3,
            amount: 7.25,
        },
    ];
    for (version, bars) in [(1u64, &expect[..1]), (2, &expect[..])] {
        for b in bars {
            let p = |x: f64| (x * 1e6).round() as i64;
            run(format!(
                "INSERT INTO {db}.bars SELECT '000001.SZ', '1d', 'qfq', {version}, toDateTime({}, 'UTC'), {}, {}, {}, {}, {}, {}",
                b.datetime.and_utc().timestamp(),
                p(b.open),
                p(b.high),
                p(b.low),
                p(b.close),
                b.volume,
                b.amount
            ))
            .await;
        }
        run(format!(
            "INSERT INTO {db}.bar_series SELECT '000001.SZ', '1d', 'qfq', {version}, {}, toDateTime({}, 'UTC'), toDateTime({}, 'UTC')",
            bars.len(),
            bars[0].datetime.and_utc().timestamp(),
            bars[bars.len() - 1].datetime.and_utc().timestamp()
        ))
        .await;
    }

    if renamed {
        run(format!("RENAME TABLE {db}.bars TO {db}.bars_v1")).await;
    }
    let key = BarKey::new(Code::parse("000001.SZ").unwrap(), Period::Day1, Adjust::Qfq);
    for _ in 0..2 {
        let s = ClickHouseStore::open(cfg.clone()).unwrap();
        assert_eq!(s.load_bars(&key, TimeRange::all()).await.unwrap(), expect);
        assert_eq!(s.overview().await.unwrap()[0].count, 3);
        drop(s);
    }
    let tables: Vec<String> = c
        .query(&format!("SELECT name FROM system.tables WHERE database = '{db}' AND name LIKE 'bars%' ORDER BY name"))
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(tables, ["bars2"]);
    let applied: Vec<u32> =
        c.query(&format!("SELECT version FROM {db}.schema_migrations ORDER BY version")).fetch_all().await.unwrap();
    assert_eq!(applied, [1, 2], "each migration recorded once");
    let _drop = common::DropDb(ClickHouseStore::open(cfg).unwrap());
}
