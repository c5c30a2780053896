//! The registry and auth conformance suites on a temporary SQLite file.

use std::sync::Arc;

use sqdata_sql::{SqlConfig, SqlStore};
use sqdata_testkit::Fixture;

async fn fx() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let s = SqlStore::open(SqlConfig { url, ..Default::default() }).await.expect("open sqlite registry");
    let s = Arc::new(s);
    Fixture { registry: Some(s.clone()), auth: Some(s), guard: Some(Box::new(dir)), ..Default::default() }
}

sqdata_testkit::conformance!(fx; registry, auth);

/// Reopening runs no migration twice and keeps everything.
#[tokio::test]
async fn reopen_keeps_the_registry() {
    use sqdata_core::RegistryStore;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let cfg = SqlConfig { url, ..Default::default() };
    let s = SqlStore::open(cfg.clone()).await.unwrap();
    let b = sqdata_testkit::fresh_book();
    let a = sqdata_core::Account {
        id: b.account.clone(),
        name: "n".into(),
        broker: "qmt".into(),
        meta: Default::default(),
    };
    s.upsert_account(&a, "t").await.unwrap();
    s.close().await;
    let s = SqlStore::open(cfg).await.unwrap();
    assert_eq!(s.account(&b.account).await.unwrap(), Some(a));
}

/// A registry file that is not a database is reported, not overwritten.
#[tokio::test]
async fn a_corrupt_file_is_an_error_and_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    std::fs::write(&path, b"this is not a sqlite database, it is a text file of some length").unwrap();
    let url = format!("sqlite://{}", path.display());
    let e = SqlStore::open(SqlConfig { url, connect_timeout_ms: 500, ..Default::default() }).await.unwrap_err();
    assert!(!e.is_invalid_input(), "{e}");
    assert!(std::fs::read(&path).unwrap().starts_with(b"this is not"), "the file is untouched");
}

/// An unknown scheme is a configuration error naming what is expected.
#[tokio::test]
async fn unknown_scheme_is_a_config_error() {
    let e = SqlStore::open(SqlConfig { url: "postgres://x/y".into(), ..Default::default() }).await.unwrap_err();
    assert!(e.to_string().contains("mysql://"), "{e}");
    let c =
        SqlConfig { url: "sqlite://data/r.db".into(), ..Default::default() }.rooted(std::path::Path::new("/srv/sq"));
    assert_eq!(c.url, "sqlite:///srv/sq/data/r.db");
}

/// A registry made before the auth tables (migrations 0001 and 0002 only)
/// is upgraded on open: what it held stays, the auth tables are there.
#[tokio::test]
async fn a_registry_at_0002_upgrades() {
    use sqdata_core::{AuthStore, RegistryStore};
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let mut old = sqlx::migrate::Migrator::new(src).await.unwrap();
    old.migrations = old.migrations.iter().filter(|m| m.version <= 2).cloned().collect::<Vec<_>>().into();
    let mut c = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc")).await.unwrap();
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
