//! `cargo xtask <command>`: the project's workflows, in Rust rather than shell.
//!
//! - `ci`: exactly what `.ci/run` runs — fmt, clippy, every tier's build,
//!   the whole test suite, and the embedded demo as a smoke test.
//! - `build --tier embedded|mvp|full`: build the CLI with the tier's features.
//! - `test [ARGS]...`: the test suite (nextest when installed).
//! - `services`: local test servers (`services.rs` picks, per service in
//!   `service.rs`, a local process in `local.rs` or a container in
//!   `containers.rs`); `rollout`: the phased rollout (`rollout.rs`).
//!
//! Arguments are parsed with clap, as in the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::service::Service;

mod containers;
mod local;
mod rollout;
mod service;
mod services;
mod util;

/// The project's workflows: what `.ci/run` runs, the tiers' builds, the
/// tests, their servers and the phased rollout.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// fmt, clippy, every tier, tests, demo (what .ci/run runs)
    Ci,
    /// Build the sqdata CLI for a tier
    Build {
        /// The tier: which backends are built in
        #[arg(long, value_enum, default_value_t = Tier::Embedded)]
        tier: Tier,
    },
    /// Run the test suite (cargo nextest when installed) with the local test servers up
    Test {
        /// Passed on to `cargo nextest run` (or `cargo test`), `--` included
        #[arg(allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
        /// What follows a `--` right after `test` (clap takes that `--` away).
        #[arg(last = true, hide = true)]
        after: Vec<String>,
    },
    /// Local test servers (redis, redis-cluster, redis-sentinel, mysql, clickhouse, s3; chdb on
    /// request) and their SQDATA_TEST_* variables
    Services(services::Args),
    /// The phased rollout: benchmark files, migrate + verify, benchmark mvp, full tier (registry,
    /// archives)
    Rollout(rollout::Args),
}

/// A build tier: the cargo features on the `sqdata` facade (and so the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Tier {
    /// files + SQLite registry (no server)
    #[value(name = "embedded")]
    Embedded,
    /// embedded + Redis + ClickHouse
    #[value(name = "mvp")]
    Mvp,
    /// mvp + MySQL registry + MinIO archives
    #[value(name = "full")]
    Full,
}

impl Tier {
    const ALL: [Tier; 3] = [Tier::Embedded, Tier::Mvp, Tier::Full];

    fn as_str(self) -> &'static str {
        match self {
            Tier::Embedded => "embedded",
            Tier::Mvp => "mvp",
            Tier::Full => "full",
        }
    }

    /// The features to build `sqdata-cli` with (after `--no-default-features`).
    fn features(self) -> &'static str {
        match self {
            Tier::Embedded => "",
            Tier::Mvp => "mvp",
            Tier::Full => "full",
        }
    }
}

/// `test`'s arguments as they were given: a leading `--` (clap's
/// end-of-options marker) put back in front of what followed it.
fn nextest_args(mut args: Vec<String>, after: Vec<String>) -> Vec<String> {
    if !after.is_empty() {
        args.push("--".into());
        args.extend(after);
    }
    args
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = project_root();
    std::env::set_current_dir(&root)?;
    match cli.command {
        Cmd::Ci => ci(),
        Cmd::Build { tier } => build_tier(tier, false),
        Cmd::Test { args, after } => test(&nextest_args(args, after)),
        Cmd::Services(args) => services::main(&args),
        Cmd::Rollout(args) => rollout::main(&args),
    }
}

pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
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

fn build_tier(tier: Tier, check_only: bool) -> Result<()> {
    let features = tier.features();
    let mut c = cargo();
    c.args([if check_only { "check" } else { "build" }, "-p", "sqdata-cli", "--no-default-features"]);
    if !features.is_empty() {
        c.args(["--features", features]);
    }
    run(&format!("build tier {}", tier.as_str()), &mut c)
}

/// Brings the local test servers up (installing them if needed) and runs
/// the whole suite with their `SQDATA_TEST_*` variables.
fn test(extra: &[String]) -> Result<()> {
    let set = Service::default_set();
    let env = services::up(&set)?;
    let without_chdb = !set.contains(&Service::Chdb);
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
    for tier in Tier::ALL {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cmd, clap::Error> {
        Cli::try_parse_from(["cargo xtask"].iter().chain(args)).map(|c| c.command)
    }

    fn test_args(args: &[&str]) -> Vec<String> {
        match parse(&[&["test"], args].concat()) {
            Ok(Cmd::Test { args, after }) => nextest_args(args, after),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_passes_its_arguments_on_as_given() {
        for args in [
            &[][..],
            &["--", "--nocapture"],
            &["-E", "test(/^redis::/)", "--no-capture"],
            &["-E", "test(x)", "--", "--skip", "y"],
            &["some_filter", "--", "--", "z"],
        ] {
            assert_eq!(test_args(args), args, "{args:?}");
        }
    }

    #[test]
    fn build_takes_a_tier_embedded_by_default() {
        assert!(matches!(parse(&["build"]), Ok(Cmd::Build { tier: Tier::Embedded })));
        assert!(matches!(parse(&["build", "--tier", "full"]), Ok(Cmd::Build { tier: Tier::Full })));
        assert!(parse(&["build", "--tier", "huge"]).is_err());
        assert_eq!(
            Tier::ALL.map(|t| t.to_possible_value().unwrap().get_name().to_owned()),
            Tier::ALL.map(|t| t.as_str().to_owned())
        );
        assert!(parse(&["nothing"]).is_err());
    }

    #[test]
    fn the_ci_entry_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        assert!(matches!(parse(&["ci"]), Ok(Cmd::Ci)));
    }
}
