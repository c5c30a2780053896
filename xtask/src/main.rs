//! `cargo xtask <command>`: the project's workflows, in Rust rather than shell.
//!
//! - `ci`: exactly what `.ci/run` runs — fmt, clippy, every tier's build,
//!   the whole test suite, and the embedded demo as a smoke test.
//! - `build --tier embedded|mvp|full`: build the CLI with the tier's features.
//! - `test [ARGS]...`: the test suite (nextest when installed). Every test
//!   group it announces runs, or it fails naming what is missing, unless
//!   `SQDATA_ALLOW_SKIP=group,…` lets that group be skipped (see `Group`).
//! - `browser`: the admin page in a real Chromium (`browser.rs`).
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

mod apifuzz;
mod browser;
mod containers;
mod local;
mod rollout;
mod service;
mod services;
mod sqproc;
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
    /// Schemathesis against `sqdata serve`'s OpenAPI document, once per principal (admin, trader,
    /// viewer, API key, anonymous), every check
    ApiFuzz {
        /// Examples per operation and phase
        #[arg(long, default_value_t = 30)]
        max_examples: u32,
    },
    /// The admin page (`/admin/`) in Debian's Chromium through playwright-core: an embedded server
    /// and an mvp one whose private Redis the test kills; screenshots in target/browser/
    Browser {
        /// Also copy the K-line screenshot to docs/admin.png (the README's)
        #[arg(long)]
        update_docs: bool,
    },
    /// `sqdata bench --suite api` on a release build, installing the pinned oha load tool first
    BenchApi {
        /// Passed on to `sqdata bench` (e.g. `--seconds 20 --rate 4000`)
        #[arg(allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
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
        Cmd::BenchApi { args } => apifuzz::bench_api(&args),
        Cmd::ApiFuzz { max_examples } => {
            // the CLI as the tests build it (every backend in): its serve and its user commands
            run("build sqdata", cargo().args(["build", "-p", "sqdata-cli", "--all-features"]))?;
            apifuzz::run_all(&target_dir().join("debug").join("sqdata"), max_examples)
        }
        Cmd::Browser { update_docs } => {
            // the CLI as the tests build it (every backend in), ClickHouse for the mvp server
            run("build sqdata", cargo().args(["build", "-p", "sqdata-cli", "--all-features"]))?;
            let env = services::up(&[Service::Clickhouse])?;
            browser::run_all(&target_dir().join("debug").join("sqdata"), &env, update_docs)
        }
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

/// A group of tests `test` (and so `ci`) announces whose server or tool
/// may be missing on a machine. A missing one fails `test`, naming the
/// group, what is missing and how to provide it, unless `SQDATA_ALLOW_SKIP`
/// (group names, comma-separated) lets it go: then a warning says the
/// group is skipped and its tests are excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// `modern::`: the ClickHouse suite on the modern engine (chdb-http).
    Modern,
    /// The Python package's pytest suite against the wheel.
    Python,
}

/// The variable naming the groups `test` may skip.
const ALLOW_SKIP: &str = "SQDATA_ALLOW_SKIP";

impl Group {
    const ALL: [Group; 2] = [Group::Modern, Group::Python];

    /// Its name in `SQDATA_ALLOW_SKIP` and in messages.
    const fn name(self) -> &'static str {
        match self {
            Group::Modern => "modern",
            Group::Python => "python",
        }
    }

    const fn what(self) -> &'static str {
        match self {
            Group::Modern => {
                "the ClickHouse suite on the modern engine (the `modern::` tests, through ../shared/tools/chdb-http)"
            }
            Group::Python => "the Python package's pytest suite",
        }
    }

    /// How to provide what it needs.
    const fn remedy(self) -> &'static str {
        match self {
            Group::Modern => {
                "put the chdb-http shim at shared/tools/chdb-http/chdb_http.py in this checkout's folder or one \
                 above it (or /work/shared/tools/chdb-http), or set SQDATA_CHDB_HTTP to the path of chdb_http.py"
            }
            Group::Python => "install python3 with its venv module (Debian: apt-get install python3-venv)",
        }
    }

    /// The test-name pattern (`--skip`) that excludes it from the cargo
    /// test run; `None` when it runs on its own.
    const fn skip_pattern(self) -> Option<&'static str> {
        match self {
            Group::Modern => Some("modern::"),
            Group::Python => None,
        }
    }

    /// What it lacks here, if anything.
    fn missing(self) -> Option<String> {
        match self {
            Group::Modern => match std::env::var_os("SQDATA_CHDB_HTTP") {
                Some(p) if !Path::new(&p).exists() => {
                    Some(format!("SQDATA_CHDB_HTTP is {}, which does not exist", Path::new(&p).display()))
                }
                _ if service::chdb_http_script().is_none() => Some(format!(
                    "the chdb-http shim (shared/tools/chdb-http/chdb_http.py) is not beside this checkout (looked in \
                     {} and every folder above it, and in /work/shared) and SQDATA_CHDB_HTTP is not set",
                    project_root().display()
                )),
                _ => None,
            },
            Group::Python => {
                if target_dir().join("pyenv").join("bin").join("python").exists() {
                    return None;
                }
                match Command::new("python3").args(["-c", "import venv, ensurepip"]).output() {
                    Ok(o) if o.status.success() => None,
                    Ok(o) => Some(format!(
                        "python3 cannot make a virtualenv ({})",
                        String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("import venv, ensurepip failed")
                    )),
                    Err(e) => Some(format!("python3 is not found ({e})")),
                }
            }
        }
    }
}

/// A group `test` skips, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Skip {
    group: Group,
    why: String,
}

/// Decides what `test` does with the groups it announces, given what each
/// lacks here (`None`: it can run) and `SQDATA_ALLOW_SKIP`'s value: the
/// groups to skip (each missing one the variable names), or the error
/// that stops the run (a missing group it does not name, or a name that is
/// no group).
fn skipped_groups(announced: &[(Group, Option<String>)], allow: Option<&str>) -> Result<Vec<Skip>, String> {
    let mut allowed = Vec::new();
    for name in allow.unwrap_or_default().split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let g = Group::ALL.into_iter().find(|g| g.name() == name).ok_or_else(|| {
            format!(
                "{ALLOW_SKIP} names `{name}`, which is no test group; the groups are: {}",
                Group::ALL.map(Group::name).join(", ")
            )
        })?;
        allowed.push(g);
    }
    let mut skips = Vec::new();
    let mut errors = Vec::new();
    for (group, missing) in announced {
        let Some(why) = missing else { continue };
        if allowed.contains(group) {
            skips.push(Skip { group: *group, why: why.clone() });
        } else {
            errors.push((*group, why));
        }
    }
    if errors.is_empty() {
        return Ok(skips);
    }
    let mut msg = String::new();
    for (g, why) in &errors {
        msg.push_str(&format!(
            "test group `{}` cannot run: {}.\n  missing: {why}.\n  to provide it: {}.\n",
            g.name(),
            g.what(),
            g.remedy()
        ));
    }
    let names: Vec<&str> =
        skips.iter().map(|s| s.group).chain(errors.iter().map(|(g, _)| *g)).map(Group::name).collect();
    msg.push_str(&format!(
        "To run without {} instead, set {ALLOW_SKIP}={} (with a warning; the tests are then excluded).",
        if errors.len() == 1 { "it" } else { "them" },
        names.join(",")
    ));
    Err(msg)
}

/// The arguments of the cargo test run with the skipped groups' tests
/// excluded: `--skip PATTERN` right after the first `--` (added when there
/// is none), where `cargo nextest run` and libtest both read it and where
/// it narrows what the given filters select rather than adding to it.
/// The multi-process chaos test (crates/cli/tests/chaos.rs).
const CHAOS_TEST: &str = "three_writers_on_one_folder_while_the_servers_die";

fn with_skips(extra: &[String], skips: &[Skip]) -> Vec<String> {
    let patterns: Vec<&str> = skips.iter().filter_map(|s| s.group.skip_pattern()).collect();
    let mut args = extra.to_vec();
    if patterns.is_empty() {
        return args;
    }
    let at = match args.iter().position(|a| a == "--") {
        Some(i) => i + 1,
        None => {
            args.push("--".into());
            args.len()
        }
    };
    let skip_args = patterns.iter().flat_map(|p| ["--skip".to_owned(), (*p).to_owned()]);
    args.splice(at..at, skip_args);
    args
}

/// Brings the local test servers up (installing them if needed) and runs
/// the whole suite with their `SQDATA_TEST_*` variables. Every group it
/// announces runs, or the run fails before it starts (see [`Group`]).
fn test(extra: &[String]) -> Result<()> {
    let announced: Vec<(Group, Option<String>)> = Group::ALL.into_iter().map(|g| (g, g.missing())).collect();
    let allow = std::env::var(ALLOW_SKIP).ok();
    let skips = skipped_groups(&announced, allow.as_deref()).map_err(anyhow::Error::msg)?;
    let skipping = |g: Group| skips.iter().any(|s| s.group == g);
    for s in &skips {
        eprintln!(
            "\nWARNING: test group `{}` SKIPPED ({ALLOW_SKIP}={}): {} cannot run: {}; it is EXCLUDED.\n",
            s.group.name(),
            allow.as_deref().unwrap_or_default(),
            s.group.what(),
            s.why
        );
    }
    let mut set = Service::default_set();
    if skipping(Group::Modern) {
        set.retain(|s| *s != Service::Chdb);
    }
    let env = services::up(&set)?;
    let mut args = with_skips(extra, &skips);
    // The multi-process chaos test drives the Python wheel: it runs on its
    // own after the Python tests have built and installed it.
    if !args.iter().any(|a| a == "--") {
        args.push("--".into());
    }
    args.extend(["--skip".to_owned(), CHAOS_TEST.to_owned()]);
    let nextest = has_nextest();
    // Every backend built in (as the mvp tier), so the facade's and the
    // CLI's server tests run; the embedded build's own config rules are
    // tested right after. Benches are built by clippy --all-targets and run
    // by `cargo xtask bench`; as tests they would only measure noise.
    let mut c = cargo();
    c.args(if nextest { &["nextest", "run"][..] } else { &["test"] })
        .args(["--workspace", "--all-features", "--lib", "--bins", "--tests"])
        .args(&args)
        .envs(env.clone());
    run("tests", &mut c)?;
    let mut c = cargo();
    c.args(if nextest { &["nextest", "run"][..] } else { &["test"] }).args(["-p", "sqdata", "--lib"]).envs(env.clone());
    run("embedded facade", &mut c)?;
    if !skipping(Group::Python) {
        python_tests(&env)?;
        if extra.is_empty() {
            let py = target_dir().join("pyenv").join("bin").join("python");
            let mut c = cargo();
            c.args(if nextest { &["nextest", "run"][..] } else { &["test"] })
                .args(["--all-features", "-p", "sqdata-cli", "--test", "chaos"])
                .envs(env.clone())
                .env("SQDATA_TEST_PYTHON", py);
            run("chaos: 3 writer processes, servers SIGKILLed (60 s)", &mut c)?;
            // the tests built the CLI with every backend: its serve against Schemathesis
            apifuzz::run_all(&target_dir().join("debug").join("sqdata"), 30)?;
            // the same CLI's admin page in a real Chromium
            browser::run_all(&target_dir().join("debug").join("sqdata"), &env, false)?;
        }
    }
    // nextest does not run doctests
    run("doctests", cargo().args(["test", "--workspace", "--all-features", "--doc"]).envs(env))?;
    if !skips.is_empty() {
        let names: Vec<&str> = skips.iter().map(|s| s.group.name()).collect();
        eprintln!("\nWARNING: the tests passed WITHOUT test group(s) {} ({ALLOW_SKIP}).", names.join(", "));
    }
    Ok(())
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

    fn missing(group: Group) -> (Group, Option<String>) {
        (group, Some(format!("no {} here", group.name())))
    }

    const ALL_PRESENT: [(Group, Option<String>); 2] = [(Group::Modern, None), (Group::Python, None)];

    #[test]
    fn every_group_runs_when_nothing_is_missing_whatever_allow_skip_says() {
        for allow in [None, Some(""), Some("modern"), Some("modern,python"), Some(" python , ")] {
            assert_eq!(skipped_groups(&ALL_PRESENT, allow), Ok(vec![]), "{allow:?}");
        }
    }

    #[test]
    fn a_missing_group_fails_the_run_naming_it_what_is_missing_and_the_remedy() {
        for allow in [None, Some(""), Some("python"), Some(" , ")] {
            let err = skipped_groups(&[missing(Group::Modern), (Group::Python, None)], allow).unwrap_err();
            assert!(err.contains("test group `modern` cannot run"), "{err}");
            assert!(err.contains("no modern here"), "the reason: {err}");
            assert!(err.contains("SQDATA_CHDB_HTTP") && err.contains("shared/tools/chdb-http"), "{err}");
            assert!(err.contains("SQDATA_ALLOW_SKIP=modern"), "{err}");
            assert!(!err.contains("`python`"), "python is here: {err}");
        }
        let err = skipped_groups(&[(Group::Modern, None), missing(Group::Python)], None).unwrap_err();
        assert!(err.contains("test group `python` cannot run") && err.contains("python3-venv"), "{err}");
        assert!(err.contains("SQDATA_ALLOW_SKIP=python"), "{err}");
    }

    #[test]
    fn allow_skip_skips_exactly_the_groups_it_names() {
        let both = [missing(Group::Modern), missing(Group::Python)];
        let skips = skipped_groups(&both, Some("modern, python")).unwrap();
        assert_eq!(skips.iter().map(|s| s.group).collect::<Vec<_>>(), [Group::Modern, Group::Python]);
        assert_eq!(skips[0].why, "no modern here");
        // One allowed, the other still fails; the suggestion names both.
        let err = skipped_groups(&both, Some("python")).unwrap_err();
        assert!(err.contains("`modern` cannot run") && !err.contains("`python` cannot run"), "{err}");
        assert!(err.contains("SQDATA_ALLOW_SKIP=python,modern"), "{err}");
        let err = skipped_groups(&both, None).unwrap_err();
        assert!(err.contains("`modern` cannot run") && err.contains("`python` cannot run"), "{err}");
        assert!(err.contains("SQDATA_ALLOW_SKIP=modern,python"), "{err}");
        let skips = skipped_groups(&[missing(Group::Modern), (Group::Python, None)], Some("modern")).unwrap();
        assert_eq!(skips, [Skip { group: Group::Modern, why: "no modern here".into() }]);
    }

    #[test]
    fn allow_skip_refuses_a_name_that_is_no_group() {
        for allow in ["modrn", "modern,all", "*", "MODERN"] {
            let err = skipped_groups(&ALL_PRESENT, Some(allow)).unwrap_err();
            assert!(err.contains("which is no test group") && err.contains("modern, python"), "{allow}: {err}");
        }
    }

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn skipped_groups_are_excluded_by_name_after_the_first_double_dash() {
        let modern = [Skip { group: Group::Modern, why: String::new() }];
        let python = [Skip { group: Group::Python, why: String::new() }];
        for (extra, want) in [
            (&[][..], &["--", "--skip", "modern::"][..]),
            (&["-E", "test(/^redis::/)"], &["-E", "test(/^redis::/)", "--", "--skip", "modern::"]),
            (&["--", "--nocapture"], &["--", "--skip", "modern::", "--nocapture"]),
            (&["f", "--", "--", "z"], &["f", "--", "--skip", "modern::", "--", "z"]),
        ] {
            assert_eq!(with_skips(&strings(extra), &modern), strings(want), "{extra:?}");
            // python is not part of the cargo test run: nothing to exclude there
            assert_eq!(with_skips(&strings(extra), &python), strings(extra), "{extra:?}");
            assert_eq!(with_skips(&strings(extra), &[]), strings(extra), "{extra:?}");
        }
    }

    #[test]
    fn every_group_has_a_distinct_name_and_says_how_to_provide_it() {
        let names: std::collections::BTreeSet<&str> = Group::ALL.iter().map(|g| g.name()).collect();
        assert_eq!(names.len(), Group::ALL.len());
        for g in Group::ALL {
            assert!(!g.what().is_empty() && !g.remedy().is_empty(), "{g:?}");
            assert!(!g.name().contains(',') && g.name() == g.name().trim(), "{g:?}");
        }
    }

    #[test]
    fn the_ci_entry_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        assert!(matches!(parse(&["ci"]), Ok(Cmd::Ci)));
    }
}
