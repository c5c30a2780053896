//! The registry and auth conformance suites on the machine's MariaDB/MySQL,
//! each test in its own `sqdata_t_<random>` database, dropped afterwards.

use std::sync::Arc;

use sqdata_sql::{SqlConfig, SqlStore};
use sqdata_testkit::Fixture;
use sqlx::Connection;

fn server_url() -> String {
    sqdata_testkit::env("SQDATA_TEST_MYSQL_URL")
}

/// The server URL with its database replaced.
fn with_db(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("mysql://host:port/db");
    format!("{base}/{db}")
}

/// Drops the test's database when the test ends.
struct Scratch {
    url: String,
    db: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (url, db) = (self.url.clone(), self.db.clone());
        // A fresh runtime on a fresh thread: the test's runtime may be gone.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::MySqlConnection::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS `{db}`")).execute(&mut c).await;
                }
            });
        })
        .join()
        .unwrap();
    }
}

async fn scratch() -> (String, Scratch) {
    let url = server_url();
    let db = format!("sqdata_t_{:016x}", sqdata_testkit::random_u64());
    let mut c = sqlx::MySqlConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach MySQL at SQDATA_TEST_MYSQL_URL: {e}"));
    sqlx::query(&format!("CREATE DATABASE `{db}`")).execute(&mut c).await.unwrap();
    (with_db(&url, &db), Scratch { url, db })
}

async fn fx() -> Fixture {
    let (url, guard) = scratch().await;
    let s = SqlStore::open(SqlConfig { url, ..Default::default() }).await.expect("open mysql registry");
    let s = Arc::new(s);
    Fixture { registry: Some(s.clone()), auth: Some(s), guard: Some(Box::new(guard)), ..Default::default() }
}

sqdata_testkit::conformance!(fx; registry, auth);

/// Two stores opening the same empty database at once migrate it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_migrate_once() {
    let (url, _guard) = scratch().await;
    let cfg = SqlConfig { url, ..Default::default() };
    let (a, b) = tokio::join!(SqlStore::open(cfg.clone()), SqlStore::open(cfg.clone()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.backend(), b.backend()), ("mysql", "mysql"));
}

/// A server that is not there is `Unavailable`, with the password redacted.
#[tokio::test]
async fn unreachable_server_is_unavailable() {
    let cfg = SqlConfig {
        url: "mysql://root:hunter2@127.0.0.1:1/test".into(),
        connect_timeout_ms: 500,
        ..Default::default()
    };
    let e = SqlStore::open(cfg).await.unwrap_err();
    assert_eq!(e.kind(), "unavailable", "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(e.is_retryable());
}

/// A registry made before the auth tables (migrations 0001 and 0002 only)
/// is upgraded on open: what it held stays, the auth tables are there.
#[tokio::test]
async fn a_registry_at_0002_upgrades() {
    use sqdata_core::{AuthStore, RegistryStore};
    let (url, _guard) = scratch().await;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/mysql");
    let mut old = sqlx::migrate::Migrator::new(src).await.unwrap();
    old.migrations = old.migrations.iter().filter(|m| m.version <= 2).cloned().collect::<Vec<_>>().into();
    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
    old.run(&mut c).await.unwrap();
    sqlx::query("INSERT INTO sq_accounts (id, name, broker, meta, updated_ms) VALUES ('old1', 'n', 'qmt', '{}', 0)")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();

    let s = SqlStore::open(SqlConfig { url, ..Default::default() }).await.unwrap();
    let id = sqdata_core::AccountCode::new("old1").unwrap();
    assert_eq!(s.account(&id).await.unwrap().map(|a| a.broker), Some("qmt".into()));
    assert!(s.users().await.unwrap().is_empty());
    assert!(s.access_log(10).await.unwrap().is_empty());
}
