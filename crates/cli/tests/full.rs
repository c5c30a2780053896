//! The full tier through the binary, on the real test servers: Redis and
//! ClickHouse behind the hybrid, the registry on MariaDB, archives on the
//! S3-compatible server — a SilverQuant install imported, its deals archived
//! to Parquet and restored, parameters versioned, health of every backend.

mod common;

use std::path::Path;

use common::{Cleanup, env, ok_json, silverquant_install, sqdata};
use sqlx::Connection;

fn write_config(cwd: &Path) -> Cleanup {
    // a fresh namespace per run: prefix, databases and bucket
    let n = format!("{:08x}", sqdata_testkit::random_u64() as u32);
    let mysql = env("SQDATA_TEST_MYSQL_URL");
    let db = format!("sqfull_{n}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut m = sqlx::MySqlConnection::connect(&mysql).await.expect("MariaDB at SQDATA_TEST_MYSQL_URL");
        sqlx::query(&format!("CREATE DATABASE `{db}`")).execute(&mut m).await.unwrap();
    });
    let registry = format!("{}/{db}", mysql.rsplit_once('/').unwrap().0);
    let endpoint = env("SQDATA_TEST_S3_URL");
    let bucket = format!("sqfull-{n}");
    sqdata_testkit::create_s3_bucket(&endpoint, &bucket);
    let toml = format!(
        "tier = \"full\"\n\n[file]\nroot = \"data\"\n\n[redis]\nurl = \"{}\"\nprefix = \"sqfull{n}\"\n\n\
         [clickhouse]\nurl = \"{}\"\ndatabase = \"sqfull_{n}\"\njournal_dir = \"chj\"\n\n[hybrid]\nstage = \"writes\"\n\n\
         [registry]\nurl = \"{registry}\"\n\n\
         [archive]\nurl = \"s3://{bucket}/silverquant\"\nendpoint = \"{endpoint}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n",
        env("SQDATA_TEST_REDIS_URL"),
        env("SQDATA_TEST_CLICKHOUSE_URL"),
        env("SQDATA_TEST_S3_ACCESS_KEY"),
        env("SQDATA_TEST_S3_SECRET_KEY"),
    );
    std::fs::write(cwd.join("sqdata.toml"), toml).unwrap();
    Cleanup::new(cwd, Some(db))
}

#[test]
fn the_full_tier_archives_restores_and_versions_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let cache = silverquant_install(&cwd.join("sq"));
    let _cleanup = write_config(cwd);
    let book = ["--account", "55009728", "--book", "prod_pwc"];

    // every backend of the tier answers
    let h = ok_json(cwd, &["health"]);
    for b in ["file", "redis", "clickhouse", "hybrid", "mysql"] {
        assert!(h.as_array().unwrap().iter().any(|x| x["backend"] == b && x["up"] == true), "{b}: {h}");
    }

    let mut args = vec!["import", "silverquant", "--cache-dir", cache.to_str().unwrap()];
    args.extend(book);
    let o = sqdata(cwd, &args);
    assert!(o.status.code() == Some(3) || o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let query = |cwd: &Path| {
        let mut a = vec!["deals", "query"];
        a.extend(book);
        ok_json(cwd, &a)
    };
    let before = query(cwd);
    let n = before["total"].as_u64().unwrap();
    assert!(n > 0, "{before}");

    // deals leave ClickHouse and the files for Parquet on S3, verified
    let r = ok_json(cwd, &["archive", "run", "--table", "deals", "--older-than", "2030-01-01"]);
    assert_eq!((r["rows_archived"].as_u64(), r["rows_deleted"].as_u64()), (Some(n), Some(n)), "{r}");
    assert_eq!(query(cwd)["total"], 0);
    let v = ok_json(cwd, &["archive", "verify"]);
    assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{v}");
    let m = ok_json(cwd, &["archive", "list"]);
    assert!(
        m["parts"].as_object().unwrap().keys().all(|k| k.starts_with("deals/account=55009728/book=prod_pwc/month="))
    );
    // and come back exactly
    let r = ok_json(cwd, &["archive", "restore", "--table", "deals"]);
    assert_eq!(r["rows_restored"].as_u64(), Some(n));
    assert_eq!(query(cwd), before);
    // the hybrid agrees with the files afterwards
    let v = ok_json(cwd, &["verify", "--full"]);
    assert_eq!(v["differences"].as_array().unwrap().len(), 0, "{v}");

    // versioned parameters on MariaDB
    ok_json(cwd, &["registry", "account-put", "--account", "55009728", "--broker", "qmt", "--actor", "ops"]);
    let mut a = vec!["registry", "strategy-put", "--actor", "ops"];
    a.extend(book);
    ok_json(cwd, &a);
    for (json, want) in [(r#"{"k": 1}"#, 1), (r#"{"k": 2}"#, 2)] {
        let mut a = vec!["registry", "params-put", "--json", json, "--actor", "ops"];
        a.extend(book);
        assert_eq!(ok_json(cwd, &a)["version"], want);
    }
    let mut a = vec!["registry", "params-rollback", "--to", "1", "--actor", "ops"];
    a.extend(book);
    let v = ok_json(cwd, &a);
    assert_eq!((v["version"].as_u64(), v["params"]["k"].as_u64()), (Some(3), Some(1)));
    let audit = ok_json(cwd, &["registry", "audit", "--by", "ops"]);
    assert_eq!(audit.as_array().unwrap().len(), 5, "{audit}");
}
