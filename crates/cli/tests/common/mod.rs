//! Running the binary as a user does, and a SilverQuant install to run it on.

#![allow(dead_code)]

pub use sqdata_testkit::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const SQ_DAY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../file/tests/fixtures/sq_day");

pub fn sqdata(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sqdata"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SQDATA_CONFIG")
        .output()
        .expect("run sqdata")
}

pub fn ok_json(cwd: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    let o = sqdata(cwd, &a);
    assert!(
        o.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

/// A SilverQuant install: `_cache/prod_pwc` (the day fixture) and
/// `_cache/_daily_mootdx/kline/*.csv`.
pub fn silverquant_install(root: &Path) -> PathBuf {
    let book = root.join("_cache/prod_pwc");
    std::fs::create_dir_all(&book).unwrap();
    for e in std::fs::read_dir(SQ_DAY).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), book.join(e.file_name())).unwrap();
    }
    let kline = root.join("_cache/_daily_mootdx/kline");
    std::fs::create_dir_all(&kline).unwrap();
    let mut csv = String::from("datetime,open,high,low,close,volume,amount\n");
    for (i, d) in ["20251008", "20251009", "20251010"].iter().enumerate() {
        let p = 11.0 + i as f64 / 10.0;
        csv.push_str(&format!("{d},{p},{},{},{p},{},{}\n", p + 0.2, p - 0.1, 1000 + i, 1.5e6 + i as f64));
    }
    std::fs::write(kline.join("000001.SZ.csv"), &csv).unwrap();
    std::fs::write(kline.join("600000.SH.csv"), "datetime,open,high,low,close,volume,amount\n20251010,8,7,8,8,1,1\n")
        .unwrap();
    book
}

/// A `SQDATA_TEST_*` variable, or a failure saying how to get it.
/// Removes what a server-backed test created: its Redis prefix, its
/// ClickHouse database and (full tier) its MySQL database. The journal the
/// cleanup opens lives in the test's temporary folder, not the crate's.
#[cfg(all(feature = "redis", feature = "clickhouse"))]
pub struct Cleanup {
    pub config: sqdata::Config,
    pub mysql_db: Option<String>,
}

#[cfg(all(feature = "redis", feature = "clickhouse"))]
impl Cleanup {
    pub fn new(cwd: &Path, mysql_db: Option<String>) -> Cleanup {
        let mut config = sqdata::Config::load(Some(&cwd.join("sqdata.toml"))).unwrap();
        config.clickhouse.journal_dir = cwd.join("chj");
        Cleanup { config, mysql_db }
    }
}

#[cfg(all(feature = "redis", feature = "clickhouse"))]
impl Drop for Cleanup {
    fn drop(&mut self) {
        use std::time::Duration;
        let (c, db) = (self.config.clone(), self.mysql_db.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(r) = sqdata::RedisStore::open(c.redis.clone()) {
                    let _ = tokio::time::timeout(Duration::from_secs(5), r.purge_prefix()).await;
                }
                if let Ok(ch) = sqdata::ClickHouseStore::open(c.clickhouse.clone()) {
                    let _ = tokio::time::timeout(Duration::from_secs(10), ch.drop_database()).await;
                }
                if let Some(db) = db {
                    use sqlx::Connection;
                    if let Ok(mut m) = sqlx::MySqlConnection::connect(&env("SQDATA_TEST_MYSQL_URL")).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS `{db}`")).execute(&mut m).await;
                    }
                }
            });
        })
        .join();
    }
}
