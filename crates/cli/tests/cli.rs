//! The `sqdata` binary end to end, as a user runs it.

mod common;

use common::{ok_json, silverquant_install, sqdata};

#[test]
fn import_then_export_gives_back_silverquant_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let cache = silverquant_install(&cwd.join("sq"));
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
            "--format",
            "json",
        ],
    );
    // one kline file is broken (high < low): reported, the rest imported, exit 3
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["positions"], 4);
    assert_eq!(r["held"], 3);
    assert_eq!(r["deals_inserted"], 2);
    assert_eq!(r["assets"], 2);
    assert_eq!(r["bar_series"], 1);
    assert_eq!(r["bars"], 3);
    assert!(r["bar_errors"][0][1].as_str().unwrap().contains("high"), "{r}");
    // importing again changes nothing
    let again = sqdata(
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
            "--no-bars",
            "--format",
            "json",
        ],
    );
    let r2: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!((r2["deals_inserted"].as_u64(), r2["deals_duplicate"].as_u64()), (Some(0), Some(2)));

    let snap = ok_json(cwd, &["positions", "show", "--account", "55009728", "--book", "prod_pwc"]);
    assert_eq!(snap["book"], "55009728/prod_pwc");
    assert_eq!(snap["inc_date"], "2025-10-10");
    assert_eq!(
        snap["positions"]["000001.SZ"],
        serde_json::json!({"day_count": 1, "max_price": 11.5, "min_price": 10.98})
    );
    assert_eq!(snap["positions"]["600000.SH"]["day_count"], serde_json::Value::Null);

    // export into a copy of the original folder: nothing SilverQuant reads changes
    let copy = cwd.join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["positions.json", "max_price.json", "min_price.json", "deal_hist.csv", "assets.csv"] {
        std::fs::copy(cache.join(f), copy.join(f)).unwrap();
    }
    ok_json(
        cwd,
        &["export", "silverquant", "--account", "55009728", "--book", "prod_pwc", "--out", copy.to_str().unwrap()],
    );
    for f in ["positions.json", "max_price.json", "min_price.json", "deal_hist.csv", "assets.csv"] {
        assert_eq!(std::fs::read(copy.join(f)).unwrap(), std::fs::read(cache.join(f)).unwrap(), "{f} changed");
    }
    // export into an empty folder: the same files SilverQuant would have written for this state
    let out = cwd.join("out");
    let kout = cwd.join("kout");
    let e = ok_json(
        cwd,
        &[
            "export",
            "silverquant",
            "--account",
            "55009728",
            "--book",
            "prod_pwc",
            "--out",
            out.to_str().unwrap(),
            "--kline-dir",
            kout.to_str().unwrap(),
        ],
    );
    assert_eq!(e["deals_written"], 2);
    assert_eq!(e["kline_files"], 1);
    for f in ["deal_hist.csv", "assets.csv", "max_price.json", "min_price.json"] {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(cache.join(f)).unwrap(), "{f}");
    }
    let a: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("positions.json")).unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(cache.join("positions.json")).unwrap()).unwrap();
    assert_eq!(a, b);
    let k = std::fs::read_to_string(kout.join("000001.SZ.csv")).unwrap();
    assert!(
        k.starts_with("datetime,open,high,low,close,volume,amount\n20251008,11.0,11.2,10.9,11.0,1000,1500000.0\n"),
        "{k}"
    );
}

#[test]
fn position_commands_and_their_json() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let b = ["--account", "55009728", "--book", "cli"];
    let with = |cmd: &[&str], extra: &[&str]| -> Vec<String> {
        cmd.iter().chain(b.iter()).chain(extra.iter()).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>| ok_json(cwd, &args.iter().map(String::as_str).collect::<Vec<_>>());
    run(with(&["positions", "new-held"], &["SZ000001", "600000"]));
    let inc = run(with(&["positions", "inc"], &["--date", "2025-10-10"]));
    assert_eq!(inc["incremented"], true);
    let inc = run(with(&["positions", "inc"], &["--date", "2025-10-10"]));
    assert_eq!(inc["incremented"], false);
    let ch = run(with(&["positions", "update-extremes"], &["000001.SZ:11.2345:10.9", "600000.SH:8:7.5"]));
    assert_eq!(ch[0], serde_json::json!({"code": "000001.SZ", "max_price": 11.235, "min_price": 10.9}));
    run(with(&["positions", "mark-sold"], &["600000.SH"]));
    let r = run(with(&["positions", "reconcile"], &["000001.SZ", "300750.SZ"]));
    assert_eq!(r, serde_json::json!({"added": ["300750.SZ"], "removed": ["600000.SH"]}));
    let s = run(with(&["positions", "show"], &[]));
    assert_eq!(s["positions"].as_object().unwrap().len(), 2);
    let d = run(with(
        &["deals", "record"],
        &[
            "--id",
            "A1",
            "--time",
            "2025-10-10 09:31:00",
            "--code",
            "000001.SZ",
            "--name",
            "平安银行",
            "--kind",
            "市买委托",
            "--price",
            "11.23",
            "--volume",
            "800",
        ],
    ));
    assert_eq!(d["inserted"], 1);
    let q = ok_json(cwd, &["deals", "query", "--account", "55009728", "--from", "2025-10-10", "--to", "2025-10-10"]);
    assert_eq!(q["total"], 1);
    assert_eq!(q["pageSize"], 100);
    assert_eq!(q["data"][0]["kind"], "市买委托");
    let agg = ok_json(cwd, &["deals", "aggregate", "--account", "55009728", "--by", "month"]);
    assert_eq!(agg[0]["period"], "2025-10");
    run(with(&["assets", "upsert"], &["--date", "2025-10-10", "--asset", "100523.47"]));
    let a = run(with(&["assets", "show"], &[]));
    assert_eq!(a["rows"][0], serde_json::json!({"date": "2025-10-10", "asset": 100523.47}));
}

#[test]
fn bad_input_exits_2_naming_the_field_and_corrupt_files_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let o = sqdata(cwd, &["positions", "new-held", "--account", "a", "--book", "b", "51030"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("invalid code \"51030\""),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = sqdata(
        cwd,
        &["positions", "update-extremes", "--account", "a", "--book", "b", "000001.SZ:NaN:1", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(e["error"]["kind"], "invalid_input");
    assert!(e["error"]["message"].as_str().unwrap().contains("high"));
    let o = sqdata(cwd, &["positions", "inc", "--account", "a", "--book", "b", "--date", "2025-02-30"]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::create_dir_all(cwd.join("sqdata-data/a/b")).unwrap();
    std::fs::write(cwd.join("sqdata-data/a/b/positions.json"), "{\"000001.SZ\": {\"day_").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(cwd.join("sqdata-data/a/b/positions.json"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let o = sqdata(cwd, &["positions", "show", "--account", "a", "--book", "b"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("positions.json"));
}

#[test]
fn demo_runs_on_a_fresh_machine_with_no_config() {
    let tmp = tempfile::tempdir().unwrap();
    let r = ok_json(tmp.path(), &["demo"]);
    assert_eq!(r["positions"]["positions"]["600000.SH"]["day_count"], serde_json::Value::Null);
    assert_eq!(r["positions"]["positions"]["000001.SZ"]["day_count"], 1);
    assert_eq!(r["positions"]["positions"]["000001.SZ"]["max_price"], 11.52);
    assert_eq!(r["deals"]["total"], 4);
    assert_eq!(r["quotes"].as_array().unwrap().len(), 3);
    assert!(tmp.path().join("sqdata-data").is_dir());
    // a second run gets a fresh book
    let r2 = ok_json(tmp.path(), &["demo"]);
    assert_ne!(r["book"], r2["book"]);
    assert_eq!(r2["deals"]["total"], 4);
}

#[test]
fn init_writes_the_default_config_once() {
    let tmp = tempfile::tempdir().unwrap();
    let r = ok_json(tmp.path(), &["init"]);
    assert_eq!(r["config_written"], true);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("sqdata.toml")).unwrap(),
        include_str!("../../../config/default.toml")
    );
    let r = ok_json(tmp.path(), &["init"]);
    assert_eq!(r["config_written"], false);
    std::fs::write(tmp.path().join("sqdata.toml"), "tier = \"embedded\"\n[file]\nroot = \"elsewhere\"\n").unwrap();
    let h = ok_json(tmp.path(), &["health"]);
    assert_eq!(h[0]["backend"], "file");
    assert_eq!(h[0]["up"], true);
    assert!(h[0]["details"]["root"].as_str().unwrap().contains("elsewhere"));
}

/// `sqdata bench` runs every scenario and reports sqdata next to a baseline
/// (figures are not asserted: benchmarks measure, tests check behaviour).
#[test]
fn bench_reports_every_scenario_with_a_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let r = ok_json(tmp.path(), &["bench", "--quick", "--iterations", "20", "--market-iterations", "1"]);
    let scenarios = r["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 8, "{r}");
    for s in scenarios {
        let results = s["results"].as_array().unwrap();
        assert!(results.len() >= 2, "{s}");
        assert!(results[0]["implementation"].as_str().unwrap().starts_with("sqdata"));
        assert!(results.iter().any(|m| m["implementation"].as_str().unwrap().starts_with("SilverQuant way")));
        for m in results {
            assert!(m["p50_us"].as_f64().unwrap() > 0.0 && m["p95_us"].as_f64() >= m["p50_us"].as_f64());
        }
    }
}

#[test]
fn monitor_speaks_text_json_and_prometheus() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let v = ok_json(cwd, &["monitor"]);
    assert_eq!(v["ready"], true);
    assert_eq!(v["backends"][0]["up"], true);
    let o = sqdata(cwd, &["monitor", "--format", "prometheus"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("sqdata_backend_up{backend=\"file\"} 1"), "{text}");
    let o = sqdata(cwd, &["monitor"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("sqdata ready"));
    // prometheus is monitor's alone: elsewhere it is bad input
    let o = sqdata(cwd, &["health", "--format", "prometheus"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `--cache-dir` relative to the working folder, as users type it.
#[test]
fn a_relative_cache_dir_is_relative_to_the_working_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    silverquant_install(&cwd.join("sq"));
    let o = sqdata(
        cwd,
        &[
            "import",
            "silverquant",
            "--cache-dir",
            "sq/_cache/prod_pwc",
            "--account",
            "55009728",
            "--book",
            "prod_pwc",
            "--no-bars",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((r["positions"].as_u64(), r["deals_inserted"].as_u64()), (Some(4), Some(2)), "{r}");
    let out = sqdata(cwd, &["export", "silverquant", "--account", "55009728", "--book", "prod_pwc", "--out", "back"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(cwd.join("back/positions.json").exists(), "exported where the user said");
}

/// The registry on the embedded default: a SQLite file under the data
/// folder, no server; every change in the audit trail.
#[test]
fn registry_commands_on_the_embedded_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let book = ["--account", "55009728", "--book", "prod_pwc"];
    let with =
        |args: &[&str], extra: &[&str]| -> Vec<String> { args.iter().chain(extra).map(|s| s.to_string()).collect() };
    let run = |args: Vec<String>| ok_json(cwd, &args.iter().map(String::as_str).collect::<Vec<_>>());
    // a strategy needs its account: exit 2 naming the field
    let o = sqdata(
        cwd,
        &with(&["registry", "strategy-put", "--actor", "ops"], &book).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("account"));
    run(with(
        &[
            "registry",
            "account-put",
            "--account",
            "55009728",
            "--name",
            "国金 QMT",
            "--broker",
            "qmt",
            "--actor",
            "ops",
        ],
        &[],
    ));
    run(with(&["registry", "strategy-put", "--description", "尾盘选股", "--actor", "ops"], &book));
    let p1 = r#"{"stop_loss": 0.05, "trail": {"from": 1.1, "back": 0.02}}"#;
    let v = run(with(&["registry", "params-put", "--json", p1, "--note", "first", "--actor", "alice"], &book));
    assert_eq!(v["version"], 1);
    std::fs::write(cwd.join("p2.json"), r#"{"stop_loss": 0.04}"#).unwrap();
    let v = run(with(&["registry", "params-put", "--file", "p2.json", "--actor", "alice"], &book));
    assert_eq!(v["version"], 2);
    let v = run(with(&["registry", "params-rollback", "--to", "1", "--actor", "bob"], &book));
    assert_eq!((v["version"].as_u64(), v["params"]["stop_loss"].as_f64()), (Some(3), Some(0.05)), "{v}");
    let h = run(with(&["registry", "params-history"], &book));
    assert_eq!(h.as_array().unwrap().len(), 3);
    let d = run(with(&["registry", "params-diff", "--from", "1", "--to", "2"], &book));
    assert_eq!(
        d["changes"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect::<Vec<_>>(),
        ["stop_loss", "trail"],
        "{d}"
    );
    let p = run(with(&["registry", "params", "--version", "2"], &book));
    assert_eq!(p["params"]["stop_loss"], 0.04);
    let a = run(with(&["registry", "audit", "--account", "55009728", "--book", "prod_pwc"], &[]));
    let actions: Vec<&str> = a.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["params.rollback", "params.put", "params.put", "strategy.upsert"]);
    // bad parameters: exit 2, nothing stored
    let o = sqdata(
        cwd,
        &with(&["registry", "params-put", "--json", "[1,2]", "--actor", "x"], &book)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(run(with(&["registry", "params-history"], &book)).as_array().unwrap().len(), 3);
    assert!(cwd.join("sqdata-data/sqdata.db").exists(), "the registry lives beside the files");
    // books with data become strategies; what exists is kept
    ok_json(cwd, &["positions", "new-held", "--account", "55009728", "--book", "other", "600519.SH"]);
    let sync = run(with(&["registry", "sync-books", "--actor", "ops"], &[]));
    assert_eq!(sync["strategies_added"], serde_json::json!(["55009728/other"]), "{sync}");
    assert_eq!(sync["accounts_added"].as_array().unwrap().len(), 0, "{sync}");
    // health reports it
    let h = ok_json(cwd, &["health"]);
    assert!(h.as_array().unwrap().iter().any(|b| b["backend"] == "sqlite" && b["up"] == true), "{h}");
}
