//! `cargo xtask <command>`: the project's workflows, in Rust rather than shell.
//!
//! - `ci`: exactly what `.ci/run` runs — fmt, clippy, every tier's build,
//!   the whole test suite, and the embedded demo as a smoke test.
//! - `build --tier embedded|mvp|full`: build the CLI with the tier's features.
//! - `test`: the test suite (nextest when installed).
//! - `services`: local test servers; `rollout`: the phased rollout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

mod containers;
mod rollout;
mod services;

/// The cargo features of each tier on the `sqdata` facade (and so the CLI):
/// embedded = files + SQLite registry; mvp = + Redis + ClickHouse;
/// full = mvp + MySQL registry + MinIO archives.
const TIERS: &[(&str, &str)] = &[("embedded", ""), ("mvp", "mvp"), ("full", "full")];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("build") => {
            let tier = flag(&args, "--tier").unwrap_or_else(|| "embedded".into());
            build_tier(&tier, false)
        }
        Some("test") => test(&args[1..]),
        Some("services") => services::main(&args[1..]),
        Some("rollout") => rollout::main(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  ci                     fmt, clippy, every tier, tests, demo (what .ci/run runs)\n  build --tier TIER      build the sqdata CLI for embedded | mvp | full\n  test [ARGS]            run the test suite (cargo nextest when installed)\n  services install|up|down|status|env [--only a,b]\n                         local test servers (redis, redis-cluster, redis-sentinel, mysql,\n                         clickhouse, s3; chdb on request) and their SQDATA_TEST_* variables\n  rollout phase0|phase1|phase2|phase3 [--rollback] [--quick] [--config FILE] [--data-dir DIR]\n                         [--archive-before DAY]  the phased rollout: benchmark files, migrate + verify,\n                         benchmark mvp, full tier (registry, archives)"
            );
            bail!("unknown command {:?}", args.first());
        }
    }
}

pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

pub(crate) fn run(what: &str, cmd: &mut Command) -> Result<()> {
    let t = Instant::now();
    eprintln!("\n==> {what}: {cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    eprintln!("<== {what}: {status} in {:.1}s", t.elapsed().as_secs_f64());
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn has_nextest() -> bool {
    cargo().args(["nextest", "--version"]).output().map(|o| o.status.success()).unwrap_or(false)
}

fn build_tier(tier: &str, check_only: bool) -> Result<()> {
    let Some((_, features)) = TIERS.iter().find(|(t, _)| *t == tier) else {
        bail!("unknown tier {tier:?}: expected embedded, mvp or full");
    };
    let mut c = cargo();
    c.args([if check_only { "check" } else { "build" }, "-p", "sqdata-cli", "--no-default-features"]);
    if !features.is_empty() {
        c.args(["--features", features]);
    }
    run(&format!("build tier {tier}"), &mut c)
}

/// Brings the local test servers up (installing them if needed) and runs
/// the whole suite with their `SQDATA_TEST_*` variables.
fn test(extra: &[String]) -> Result<()> {
    let set = services::default_set();
    let env = services::up(&set)?;
    let without_chdb = !set.contains(&"chdb");
    if without_chdb {
        eprintln!(
            "\nWARNING: the chdb-http shim (shared/tools/chdb-http) is not beside this checkout: the \
             ClickHouse suite runs on 18.16 only; the modern-engine tests (modern::) are EXCLUDED.\n"
        );
    }
    if has_nextest() {
        // Benches are built by clippy --all-targets and run by `cargo xtask bench`;
        // as tests they would only measure noise.
        let mut c = cargo();
        // Every backend built in (as the mvp tier), so the facade's and the
        // CLI's server tests run; the embedded build's own config rules are
        // tested right after.
        c.args(["nextest", "run", "--workspace", "--all-features", "--lib", "--bins", "--tests"])
            .args(extra)
            .envs(env.clone());
        if without_chdb {
            c.args(["-E", "not test(/^modern::/)"]);
        }
        run("tests", &mut c)?;
        run("embedded facade", cargo().args(["nextest", "run", "-p", "sqdata", "--lib"]).envs(env.clone()))?;
        python_tests(&env)?;
        // nextest does not run doctests
        run("doctests", cargo().args(["test", "--workspace", "--all-features", "--doc"]).envs(env))
    } else {
        let mut c = cargo();
        c.args(["test", "--workspace", "--all-features", "--lib", "--bins", "--tests"]).args(extra).envs(env.clone());
        if without_chdb {
            c.args(["--", "--skip", "modern::"]);
        }
        run("tests", &mut c)?;
        python_tests(&env)
    }
}

/// The Python package: a venv under the target folder with pinned maturin,
/// the wheel built from crates/python, pytest against it (the file backend,
/// and Redis + ClickHouse through the same SQDATA_TEST_* variables).
fn python_tests(env: &[(String, String)]) -> Result<()> {
    let venv = target_dir().join("pyenv");
    let py = venv.join("bin").join("python");
    let reqs = ["maturin==1.16.0", "pytest==8.4.2", "pandas>=2,<4", "numpy>=1.26"];
    let marker = venv.join(".sqdata-reqs");
    let want = reqs.join("\n");
    if !py.exists() {
        run("python venv", Command::new("python3").args(["-m", "venv"]).arg(&venv))
            .context("python3 with the venv module is needed for the Python package's tests")?;
    }
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(want.as_str()) {
        run("pip install", Command::new(&py).args(["-m", "pip", "install", "-q"]).args(reqs))?;
        std::fs::write(&marker, &want)?;
    }
    let wheels = target_dir().join("wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    run(
        "build the wheel",
        Command::new(venv.join("bin").join("maturin"))
            .args(["build", "-m", "crates/python/Cargo.toml", "--out"])
            .arg(&wheels)
            .arg("-i")
            .arg(&py)
            .env("CARGO_TARGET_DIR", target_dir()),
    )?;
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .context("maturin built no wheel")?;
    run(
        "install the wheel",
        Command::new(&py).args(["-m", "pip", "install", "-q", "--force-reinstall", "--no-deps"]).arg(&wheel),
    )?;
    run(
        "pytest",
        Command::new(&py)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "crates/python/tests"])
            .envs(env.iter().cloned()),
    )
}

fn ci() -> Result<()> {
    let t = Instant::now();
    run("fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run("clippy", cargo().args(["clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings"]))?;
    for (tier, _) in TIERS {
        build_tier(tier, false)?;
    }
    test(&[])?;
    // The README's run command, on a fresh data folder: the embedded default works with no server.
    let tmp = std::env::temp_dir().join(format!("sqdata-ci-demo-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    let bin = target_dir().join("debug").join("sqdata");
    let r = run("demo", Command::new(&bin).arg("demo").current_dir(&tmp));
    let _ = std::fs::remove_dir_all(&tmp);
    r?;
    eprintln!("\nci passed in {:.0}s", t.elapsed().as_secs_f64());
    Ok(())
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| project_root().join("target"))
}
