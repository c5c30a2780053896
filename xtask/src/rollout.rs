//! `cargo xtask rollout phase0|phase1|phase2|phase3 [--rollback]`: the
//! review's phase-based rollout, each phase checking its preconditions and
//! writing a JSON + Markdown report under `target/rollout/`.
//!
//! - phase0: benchmark the file store (`sqdata bench --suite file`).
//! - phase1: bring up Redis + ClickHouse (local services, or the ones the
//!   `--config` names), migrate the files to them, verify. `--rollback`
//!   undoes both migrations.
//! - phase2: benchmark the mvp stores in the same run as the files and print
//!   a side-by-side table against phase0 and the targets. `--rollback`
//!   returns every account to the files (`sqdata rollout rollback`).
//! - phase3: the full tier. Brings up MySQL and the S3 server too (or uses
//!   `--config`), checks every backend answers, registers every book in the
//!   registry (MySQL) and, with `--archive-before DAY`, archives older deals
//!   and bars to Parquet and verifies the archive, timing each step.
//!   `--rollback` restores what was archived into the stores.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::service::Service;
use crate::util::create_bucket;
use crate::{project_root, run, services};

/// `cargo xtask rollout …`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The phase to run (or, with --rollback, to undo)
    phase: Phase,
    /// Undo the phase instead of running it
    #[arg(long)]
    rollback: bool,
    /// Shorter benchmarks (phase0, phase2)
    #[arg(long)]
    quick: bool,
    /// Use this sqdata config (its servers) instead of the local test services
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The file store to migrate from [default: sqdata-data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// phase3: archive deals and bars older than this day (YYYY-MM-DD), then verify the archive
    #[arg(long, value_name = "DAY")]
    archive_before: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    /// Benchmark the file store
    #[value(name = "phase0")]
    Phase0,
    /// Bring up Redis + ClickHouse, migrate the files to them, verify
    #[value(name = "phase1")]
    Phase1,
    /// Benchmark the mvp stores against phase0 and the targets
    #[value(name = "phase2")]
    Phase2,
    /// The full tier: MySQL registry, S3 archives
    #[value(name = "phase3")]
    Phase3,
}

fn out_dir() -> PathBuf {
    crate::target_dir().join("rollout")
}

fn sqdata_bin() -> Result<PathBuf> {
    run(
        "build sqdata (tier full, release)",
        crate::cargo().args(["build", "--release", "-p", "sqdata-cli", "--features", "full"]),
    )?;
    Ok(crate::target_dir().join("release").join("sqdata"))
}

fn sqdata_json(bin: &Path, config: &Path, args: &[&str], envs: &[(String, String)]) -> Result<Value> {
    let mut c = Command::new(bin);
    c.arg("--config").arg(config).args(args).args(["--format", "json"]).envs(envs.iter().cloned());
    eprintln!("\n==> {c:?}");
    let o = c.output().with_context(|| format!("running {bin:?}"))?;
    eprint!("{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout)
        .with_context(|| format!("sqdata {args:?} printed no JSON (exit {})", o.status))?;
    if !o.status.success() {
        bail!("sqdata {args:?} failed ({}): {v}", o.status);
    }
    Ok(v)
}

fn write(name: &str, json: &Value, md: &str) -> Result<()> {
    let d = out_dir();
    std::fs::create_dir_all(&d)?;
    std::fs::write(d.join(format!("{name}.json")), serde_json::to_vec_pretty(json)?)?;
    std::fs::write(d.join(format!("{name}.md")), md)?;
    eprintln!("\n{md}\nreport: {}", d.join(format!("{name}.md")).display());
    Ok(())
}

fn read(name: &str) -> Result<Value> {
    let p = out_dir().join(format!("{name}.json"));
    let b = std::fs::read(&p)
        .with_context(|| format!("{} is missing: run `cargo xtask rollout {name}` first", p.display()))?;
    Ok(serde_json::from_slice(&b)?)
}

/// The config phase1/2 use: `--config`, else one for the local services
/// with the files in `--data-dir` (default `sqdata-data`).
fn config(args: &Args, envs: &[(String, String)]) -> Result<PathBuf> {
    if let Some(c) = &args.config {
        return Ok(c.clone());
    }
    let get = |k: &str| envs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let data = args.data_dir.clone().unwrap_or_else(|| project_root().join("sqdata-data"));
    let data = std::fs::canonicalize(&data).unwrap_or(data);
    let p = out_dir().join("sqdata.toml");
    std::fs::create_dir_all(out_dir())?;
    std::fs::write(
        &p,
        format!(
            "tier = \"mvp\"\n\n[file]\nroot = \"{}\"\n\n[redis]\nurl = \"{}\"\nprefix = \"sqrollout\"\n\n[clickhouse]\nurl = \"{}\"\ndatabase = \"sqdata_rollout\"\njournal_dir = \"{}\"\n\n[hybrid]\nstage = \"shadow\"\n",
            data.display(),
            get("SQDATA_TEST_REDIS_URL"),
            get("SQDATA_TEST_CLICKHOUSE_URL"),
            out_dir().join("clickhouse-journal").display()
        ),
    )?;
    Ok(p)
}

/// The full-tier config of phase3: `--config`, else phase1's with the
/// registry in MySQL (database `sqdata_rollout`) and the archive on the local
/// S3 server (bucket `sqdata-rollout`).
fn full_config(args: &Args, envs: &[(String, String)], p1: &Value) -> Result<PathBuf> {
    if let Some(c) = &args.config {
        return Ok(c.clone());
    }
    let get = |k: &str| envs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let base = std::fs::read_to_string(p1["config"].as_str().unwrap_or_default()).context("phase1's config")?;
    let mysql = get("SQDATA_TEST_MYSQL_URL");
    let (server, _) = mysql.rsplit_once('/').context("SQDATA_TEST_MYSQL_URL has no database")?;
    // A database of its own when the client can make one; else the URL's.
    let own = Command::new("mariadb")
        .args(["--no-defaults", "-uroot", "-h127.0.0.1", "-e", "CREATE DATABASE IF NOT EXISTS sqdata_rollout"])
        .status()
        .is_ok_and(|s| s.success());
    let registry = if own { format!("{server}/sqdata_rollout") } else { mysql.clone() };
    let s3 = get("SQDATA_TEST_S3_URL");
    create_bucket(&s3, "sqdata-rollout")?;
    let text = base.replacen("tier = \"mvp\"", "tier = \"full\"", 1)
        + &format!(
            "\n[registry]\nurl = \"{registry}\"\n\n[archive]\nurl = \"s3://sqdata-rollout/archive\"\nendpoint = \"{s3}\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n",
            get("SQDATA_TEST_S3_ACCESS_KEY"),
            get("SQDATA_TEST_S3_SECRET_KEY")
        );
    let p = out_dir().join("sqdata-full.toml");
    std::fs::write(&p, text)?;
    Ok(p)
}

/// The local test services a phase needs, unless `--config` names servers.
fn local_services(args: &Args, which: &[Service]) -> Result<Vec<(String, String)>> {
    if args.config.is_some() {
        return Ok(Vec::new());
    }
    services::up(which)
}

/// Phases 1 and 2: the mvp stores.
const MVP: [Service; 2] = [Service::Redis, Service::Clickhouse];
/// Phase 3: the full tier.
const FULL: [Service; 4] = [Service::Redis, Service::Clickhouse, Service::Mysql, Service::S3];

/// A row of the comparison: what the sell loop or a report does, the phase0
/// scenario (files) and the phase2 scenario (mvp stores) measuring it.
const ROWS: [(&str, &str, &str); 5] = [
    ("sell loop: read a 200-position book", "snapshot of a", "hybrid snapshot(200)"),
    ("sell loop: update_extremes, 20 changed", "update_extremes,", "hybrid update_extremes(200)"),
    ("one bar series", "-bar series", "one 550-bar series"),
    ("whole market into memory", "whole market (", "whole market,"),
    ("deals: a day (files) / a month out of 1M (ClickHouse)", "one day of deals", "one account, one month"),
];

fn find<'a>(scenarios: &'a [Value], needle: &str) -> Option<&'a Value> {
    scenarios.iter().find(|s| s["name"].as_str().is_some_and(|n| n.contains(needle)))
}

/// As `find`, preferring a scenario measured on a server (the file suite
/// runs in phase 2 too and shares some names).
fn find_server<'a>(scenarios: &'a [Value], needle: &str) -> Option<&'a Value> {
    let on_server = |s: &&Value| {
        s["results"][0]["implementation"]
            .as_str()
            .is_some_and(|i| ["clickhouse", "redis", "hybrid"].iter().any(|b| i.contains(b)))
    };
    let mut matching = scenarios.iter().filter(|s| s["name"].as_str().is_some_and(|n| n.contains(needle)));
    matching.clone().find(on_server).or_else(|| matching.next())
}

fn p95(s: &Value) -> Option<f64> {
    s["results"][0]["p95_us"].as_f64()
}

fn us(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(x) if x >= 1e6 => format!("{:.2} s", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.2} ms", x / 1e3),
        Some(x) => format!("{x:.1} µs"),
    }
}

/// The side-by-side table of phase 2 (pure: tested).
pub(crate) fn compare(phase0: &[Value], phase2: &[Value]) -> (String, usize) {
    let mut md = String::from(
        "| operation | phase0 files P95 | phase2 mvp P95 | target P95 | result |\n|---|---|---|---|---|\n",
    );
    let mut failed = 0;
    for (label, before, after) in ROWS {
        let (b, a) = (find(phase0, before), find_server(phase2, after));
        let target = a.and_then(|s| s["target_p95_us"].as_f64());
        let result = match (a.and_then(p95), target) {
            (Some(x), Some(t)) if x <= t => "PASS".to_string(),
            (Some(_), Some(_)) => {
                failed += 1;
                "FAIL".to_string()
            }
            (Some(_), None) => "reported".to_string(),
            (None, _) => "not measured".to_string(),
        };
        md += &format!("| {label} | {} | {} | {} | {result} |\n", us(b.and_then(p95)), us(a.and_then(p95)), us(target));
    }
    (md, failed)
}

fn table(scenarios: &[Value]) -> String {
    let mut md = String::from("| scenario | P50 | P95 | P99 | target P95 | result |\n|---|---|---|---|---|---|\n");
    for s in scenarios {
        let r = &s["results"][0];
        let t = s["target_p95_us"].as_f64();
        let pass = match (r["p95_us"].as_f64(), t) {
            (Some(x), Some(t)) => {
                if x <= t {
                    "PASS"
                } else {
                    "FAIL"
                }
            }
            _ => "",
        };
        md += &format!(
            "| {} | {} | {} | {} | {} | {pass} |\n",
            s["name"].as_str().unwrap_or_default(),
            us(r["p50_us"].as_f64()),
            us(r["p95_us"].as_f64()),
            us(r["p99_us"].as_f64()),
            us(t)
        );
    }
    md
}

pub(crate) fn main(args: &Args) -> Result<()> {
    let quick = args.quick;
    let bench_dir = out_dir().join("bench-data");
    let bench_dir_s = bench_dir.display().to_string();
    match (args.phase, args.rollback) {
        (Phase::Phase0, false) => {
            let bin = sqdata_bin()?;
            let mut a = vec!["bench", "--suite", "file", "--bench-dir", &bench_dir_s];
            if quick {
                a.push("--quick");
            }
            let cfg = out_dir().join("phase0.toml");
            std::fs::create_dir_all(out_dir())?;
            std::fs::write(&cfg, "")?;
            let v = sqdata_json(&bin, &cfg, &a, &[])?;
            let sc = v["scenarios"].as_array().cloned().unwrap_or_default();
            write("phase0", &v, &format!("# phase0: the file store ({})\n\n{}", v["machine"], table(&sc)))
        }
        (Phase::Phase0, true) => {
            for f in ["phase0.json", "phase0.md"] {
                let _ = std::fs::remove_file(out_dir().join(f));
            }
            Ok(())
        }
        (Phase::Phase1, false) => {
            read("phase0")?;
            let envs = local_services(args, &MVP)?;
            let cfg = config(args, &envs)?;
            let bin = sqdata_bin()?;
            let r = sqdata_json(&bin, &cfg, &["migrate", "--target", "redis"], &envs)?;
            let c = sqdata_json(&bin, &cfg, &["migrate", "--target", "clickhouse"], &envs)?;
            let v = sqdata_json(&bin, &cfg, &["verify", "--full"], &envs)?;
            let diffs: u64 =
                v["domains"].as_array().into_iter().flatten().filter_map(|d| d["differences"].as_u64()).sum();
            let json = serde_json::json!({ "config": cfg, "redis": r, "clickhouse": c, "verify": v });
            let md = format!(
                "# phase1: migrated and verified\n\nconfig: {}\n\n- redis: {}\n- clickhouse: {}\n- verify --full: {diffs} differences\n",
                cfg.display(),
                r["manifest"]["copied"],
                c["manifest"]["copied"]
            );
            write("phase1", &json, &md)?;
            if diffs > 0 {
                bail!("phase1: verify found {diffs} differences; `cargo xtask rollout phase1 --rollback` undoes it");
            }
            Ok(())
        }
        (Phase::Phase1, true) => {
            let p1 = read("phase1")?;
            let cfg = PathBuf::from(p1["config"].as_str().unwrap_or_default());
            let envs = local_services(args, &MVP)?;
            let bin = sqdata_bin()?;
            sqdata_json(&bin, &cfg, &["migrate", "--rollback"], &envs)?;
            sqdata_json(&bin, &cfg, &["migrate", "--rollback"], &envs)?;
            let _ = std::fs::remove_file(out_dir().join("phase1.json"));
            Ok(())
        }
        (Phase::Phase2, false) => {
            let p0 = read("phase0")?;
            let p1 = read("phase1")?;
            let envs = local_services(args, &MVP)?;
            let get = |k: &str| envs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let bin = sqdata_bin()?;
            let cfg = PathBuf::from(p1["config"].as_str().unwrap_or_default());
            let mut a = vec!["bench", "--suite", "all", "--bench-dir", &bench_dir_s];
            if quick {
                a.push("--quick");
            }
            let mut benv = envs.clone();
            if let Some(u) = get("SQDATA_TEST_REDIS_URL") {
                benv.push(("SQDATA_BENCH_REDIS_URL".into(), u));
            }
            if let Some(u) = get("SQDATA_TEST_CLICKHOUSE_URL") {
                benv.push(("SQDATA_BENCH_CLICKHOUSE_URL".into(), u));
            }
            let v = sqdata_json(&bin, &cfg, &a, &benv)?;
            let sc0 = p0["scenarios"].as_array().cloned().unwrap_or_default();
            let sc2 = v["scenarios"].as_array().cloned().unwrap_or_default();
            let (cmp, failed) = compare(&sc0, &sc2);
            let md = format!(
                "# phase2: the mvp stores against phase0\n\n{cmp}\n{failed} rows miss their target.\n\n## every scenario of this run\n\n{}",
                table(&sc2)
            );
            write("phase2", &v, &md)
        }
        (Phase::Phase2, true) => {
            let p1 = read("phase1")?;
            let cfg = PathBuf::from(p1["config"].as_str().unwrap_or_default());
            let envs = local_services(args, &MVP)?;
            let bin = sqdata_bin()?;
            sqdata_json(&bin, &cfg, &["rollout", "rollback"], &envs)?;
            Ok(())
        }
        (Phase::Phase3, false) => {
            let p1 = read("phase1")?;
            let envs = local_services(args, &FULL)?;
            let cfg = full_config(args, &envs, &p1)?;
            let bin = sqdata_bin()?;
            let t = Instant::now();
            let health = sqdata_json(&bin, &cfg, &["health"], &envs)?;
            let health_ms = t.elapsed().as_millis();
            let t = Instant::now();
            let sync = sqdata_json(&bin, &cfg, &["registry", "sync-books", "--actor", "rollout"], &envs)?;
            let sync_ms = t.elapsed().as_millis();
            let mut md = format!(
                "# phase3: the full tier\n\nconfig: {}\n\n| backend | up | latency |\n|---|---|---|\n",
                cfg.display()
            );
            for b in health.as_array().into_iter().flatten() {
                md += &format!("| {} | {} | {} µs |\n", b["backend"].as_str().unwrap_or("?"), b["up"], b["latency"]);
            }
            md += &format!(
                "\nregistry: {} books; added {} accounts and {} strategies in {sync_ms} ms\n",
                sync["books"],
                sync["accounts_added"].as_array().map_or(0, Vec::len),
                sync["strategies_added"].as_array().map_or(0, Vec::len)
            );
            let mut archived = serde_json::Map::new();
            if let Some(day) = &args.archive_before {
                md += &format!(
                    "\n| archive (before {day}) | rows | parts | bytes | seconds | rows/s |\n|---|---|---|---|---|---|\n"
                );
                for table in ["deals", "bars"] {
                    let t = Instant::now();
                    let r = sqdata_json(&bin, &cfg, &["archive", "run", "--table", table, "--older-than", day], &envs)?;
                    let secs = t.elapsed().as_secs_f64();
                    let rows = r["rows_archived"].as_u64().unwrap_or(0);
                    md += &format!(
                        "| {table} | {rows} | {} | {} | {secs:.2} | {:.0} |\n",
                        r["parts_written"],
                        r["bytes"],
                        rows as f64 / secs.max(1e-9)
                    );
                    archived.insert(table.into(), r);
                }
                let v = sqdata_json(&bin, &cfg, &["archive", "verify"], &envs)?;
                md += &format!(
                    "\narchive verify: {} parts, {} rows, {} problems\n",
                    v["parts"],
                    v["rows"],
                    v["problems"].as_array().map_or(0, Vec::len)
                );
                archived.insert("verify".into(), v);
            } else {
                md += "\nno `--archive-before DAY`: nothing archived (the archive is opt-in; `sqdata archive run` does it later).\n";
            }
            md += &format!("\nhealth answered in {health_ms} ms.\n");
            let json = serde_json::json!({ "config": cfg, "health": health, "registry": sync, "archived": archived });
            write("phase3", &json, &md)
        }
        (Phase::Phase3, true) => {
            let p3 = read("phase3")?;
            let cfg = PathBuf::from(p3["config"].as_str().unwrap_or_default());
            let envs = local_services(args, &FULL)?;
            let bin = sqdata_bin()?;
            for table in ["deals", "bars"] {
                if p3["archived"].get(table).is_some() {
                    sqdata_json(&bin, &cfg, &["archive", "restore", "--table", table], &envs)?;
                }
            }
            eprintln!("archived rows restored into the stores; the registry entries stay (they describe the books)");
            let _ = std::fs::remove_file(out_dir().join("phase3.json"));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        rollout: Args,
    }

    #[test]
    fn options_parse_as_before() {
        let parse =
            |a: &[&str]| Cli::try_parse_from(std::iter::once("rollout").chain(a.iter().copied())).map(|c| c.rollout);
        let a = parse(&["phase3", "--archive-before", "2024-01-01", "--config", "x.toml"]).unwrap();
        assert_eq!((a.phase, a.rollback, a.quick), (Phase::Phase3, false, false));
        assert_eq!(a.archive_before.as_deref(), Some("2024-01-01"));
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
        let a = parse(&["--quick", "phase1", "--rollback", "--data-dir", "d"]).unwrap();
        assert_eq!((a.phase, a.rollback, a.quick), (Phase::Phase1, true, true));
        assert_eq!(a.data_dir, Some(PathBuf::from("d")));
        assert!(parse(&["phase4"]).is_err());
        assert!(parse(&[]).is_err());
    }

    fn sc(name: &str, p95: f64, target: Option<f64>) -> Value {
        let imp = if name.contains("hybrid") || name.contains("550") { "sqdata clickhouse" } else { "sqdata file" };
        serde_json::json!({ "name": name, "target_p95_us": target, "results": [{ "implementation": imp, "p50_us": p95 / 2.0, "p95_us": p95, "p99_us": p95 * 2.0 }] })
    }

    #[test]
    fn the_comparison_pairs_phases_and_judges_targets() {
        let p0 =
            vec![sc("snapshot of a 200-position book", 3.0, Some(10.0)), sc("one 550-bar series", 90.0, Some(300.0))];
        let mut file_550 = sc("one 550-bar series", 80.0, Some(300.0));
        file_550["results"][0]["implementation"] = "sqdata file".into();
        let p2 = vec![
            file_550,
            sc("hybrid snapshot(200)", 190.0, Some(250.0)),
            sc("hybrid update_extremes(200), 20 changed", 1900.0, None),
            sc("one 550-bar series", 6000.0, Some(5000.0)),
        ];
        let (md, failed) = compare(&p0, &p2);
        assert_eq!(failed, 1, "{md}");
        assert!(md.contains("| sell loop: read a 200-position book | 3.0 µs | 190.0 µs | 250.0 µs | PASS |"), "{md}");
        assert!(md.contains("| one bar series | 90.0 µs | 6.00 ms | 5.00 ms | FAIL |"), "{md}");
        assert!(md.contains("reported") && md.contains("not measured"), "{md}");
    }
}
