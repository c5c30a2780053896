//! The mvp tier through the binary, on the real test servers: a SilverQuant
//! install is imported into the files, migrated to Redis and ClickHouse,
//! verified, promoted, inspected and rolled back — as a user would.

mod common;

use std::path::Path;

use common::{Cleanup, env, ok_json, silverquant_install, sqdata};

fn write_config(cwd: &Path) -> Cleanup {
    let n = std::process::id();
    let prefix = format!("sqcli{n}");
    let db = format!("sqcli_{n}");
    let toml = format!(
        "tier = \"mvp\"\n\n[file]\nroot = \"data\"\n\n[redis]\nurl = \"{}\"\nprefix = \"{prefix}\"\n\n\
         [clickhouse]\nurl = \"{}\"\ndatabase = \"{db}\"\njournal_dir = \"chj\"\n\n[hybrid]\nstage = \"files\"\n",
        env("SQDATA_TEST_REDIS_URL"),
        env("SQDATA_TEST_CLICKHOUSE_URL")
    );
    std::fs::write(cwd.join("sqdata.toml"), toml).unwrap();
    Cleanup::new(cwd, None)
}

#[test]
fn migrate_verify_promote_and_roll_back_through_the_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let cache = silverquant_install(&cwd.join("sq"));
    let _cleanup = write_config(cwd);
    let o = sqdata(
        cwd,
        &[
            "import",
            "silverquant",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--account",
            "55009728",
            "--book",
            "prod_pwc",
        ],
    );
    assert!(o.status.code() == Some(3) || o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // before migrating, the servers lack the data: verify says so (exit 5)
    let o = sqdata(cwd, &["verify", "--format", "json"]);
    assert_eq!(o.status.code(), Some(5), "{}", String::from_utf8_lossy(&o.stderr));
    // promote refuses for the same reason
    let o = sqdata(cwd, &["rollout", "promote"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("not promoted"));

    let m = ok_json(cwd, &["migrate", "--source", "file", "--target", "redis"]);
    assert_eq!(m["verify"]["domains"][0]["differences"], 0, "{m}");
    let m = sqdata(cwd, &["migrate", "--target", "clickhouse"]);
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let stdout = String::from_utf8_lossy(&m.stdout);
    assert!(stdout.contains("consistent: 0 differences"), "{stdout}");
    // not a terminal: no progress bar drawn
    assert!(!String::from_utf8_lossy(&m.stderr).contains("ETA"), "{}", String::from_utf8_lossy(&m.stderr));

    let v = ok_json(cwd, &["verify", "--full"]);
    assert_eq!(v["differences"].as_array().unwrap().len(), 0, "{v}");
    let v = ok_json(cwd, &["verify", "--incremental", "--date", "20251010"]);
    assert_eq!(v["mode"]["mode"], "incremental");

    let p = ok_json(cwd, &["rollout", "promote"]);
    assert_eq!(p["stage"], "shadow", "{p}");
    let p = ok_json(cwd, &["rollout", "promote", "--account", "55009728", "--to", "writes"]);
    assert_eq!(p["accounts"]["55009728"], "writes", "{p}");
    let s = ok_json(cwd, &["rollout", "status"]);
    assert_eq!(s["stages"]["55009728"], "writes");
    assert_eq!(s["stages"]["*"], "shadow");
    let h = ok_json(cwd, &["health"]);
    let hybrid = h.as_array().unwrap().iter().find(|b| b["backend"] == "hybrid").unwrap();
    assert!(hybrid["details"]["domains"].as_array().unwrap().iter().all(|d| d["mode"] == "healthy"), "{hybrid}");
    // a write at stage writes goes through Redis and the files
    ok_json(cwd, &["positions", "new-held", "--account", "55009728", "--book", "prod_pwc", "600519.SH"]);
    let r = ok_json(cwd, &["rollout", "rollback"]);
    assert_eq!(r["state"]["stage"], "files", "{r}");
    assert_eq!(r["synced"]["domains"][0]["differences"], 0, "the files were already up to date: {r}");
    let s = ok_json(cwd, &["rollout", "status"]);
    assert_eq!(s["stages"]["55009728"], "files");

    let b = ok_json(cwd, &["backup", "--dir", "bk"]);
    assert_eq!(b["manifest"]["parts"].as_array().unwrap().len(), 3, "{b}");
    let archive = b["archive"].as_str().unwrap().to_string();
    let r = ok_json(cwd, &["restore", &archive]);
    assert_eq!(r["checked"].as_array().unwrap().len(), 3, "{r}");
    assert_eq!(ok_json(cwd, &["backup", "--dir", "bk", "--list"]).as_array().unwrap().len(), 1);

    let list = ok_json(cwd, &["migrate", "--list"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let rb = ok_json(cwd, &["migrate", "--rollback"]);
    assert_eq!(rb["manifest"]["target"], "clickhouse");
    assert_eq!(rb["manifest"]["rolled_back"], true);
}

/// The first `tier = "mvp"` on a folder SilverQuant has been writing: the
/// default stage (writes) must not read the empty Redis. The files serve
/// the book, `health` names it and the command; after `migrate` Redis
/// holds it whole and serves it.
#[test]
fn a_first_mvp_run_on_an_existing_folder_serves_the_files_until_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let cache = silverquant_install(&cwd.join("sq"));
    let n = std::process::id();
    // the files first (the embedded default), as a SilverQuant user has them
    let o = sqdata(
        cwd,
        &[
            "--data-dir",
            "data",
            "import",
            "silverquant",
            "--cache-dir",
            cache.to_str().unwrap(),
            "--account",
            "55009728",
            "--book",
            "live",
        ],
    );
    assert!(o.status.code() == Some(3) || o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let files_view =
        ok_json(cwd, &["--data-dir", "data", "positions", "show", "--account", "55009728", "--book", "live"]);
    assert!(!files_view["positions"].as_object().unwrap().is_empty(), "{files_view}");
    // then one line of config: tier = mvp (default stage: writes)
    let toml = format!(
        "tier = \"mvp\"\n\n[file]\nroot = \"data\"\n\n[redis]\nurl = \"{}\"\nprefix = \"sqfirst{n}\"\n\n\
         [clickhouse]\nurl = \"{}\"\ndatabase = \"sqfirst_{n}\"\njournal_dir = \"chj\"\n",
        env("SQDATA_TEST_REDIS_URL"),
        env("SQDATA_TEST_CLICKHOUSE_URL")
    );
    std::fs::write(cwd.join("sqdata.toml"), toml).unwrap();
    let _cleanup = Cleanup::new(cwd, None);
    let served = ok_json(cwd, &["positions", "show", "--account", "55009728", "--book", "live"]);
    assert_eq!(served["positions"], files_view["positions"], "the files serve the unmigrated book, never an empty one");
    let o = sqdata(cwd, &["health"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("55009728/live") && text.contains("sqdata migrate --source file --target redis"), "{text}");
    let m = ok_json(cwd, &["migrate", "--source", "file", "--target", "redis"]);
    assert_eq!(m["adopted"], serde_json::json!(["positions"]), "{m}");
    let o = sqdata(cwd, &["health"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("target redis"), "positions no longer wait: {text}");
    let served = ok_json(cwd, &["positions", "show", "--account", "55009728", "--book", "live"]);
    assert_eq!(served["positions"], files_view["positions"]);
}
