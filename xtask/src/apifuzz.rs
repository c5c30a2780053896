//! `cargo xtask bench-api`: oha (crates.io, pinned) installed under the
//! tools folder, then `sqdata bench --suite api` on a release build.
//!
//! `cargo xtask api-fuzz`: Schemathesis (PyPI, pinned) against the
//! document `sqdata serve` serves, once per principal — admin, trader,
//! viewer, the trader's API key, anonymous — on a folder seeded through the
//! CLI as a user would (a SilverQuant day imported, accounts, a strategy
//! with parameters, users, grants, a key), a fresh folder and server for
//! each principal. Every check runs; the run fails on any failure.
//! `crates/server/schemathesis.toml` holds the settings.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::sqproc::{self, Guard, sqdata};
use crate::{cargo, project_root, run, target_dir, util};

/// The pinned Schemathesis.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// The pinned oha (crates.io), the HTTP load generator of `bench-api`.
const OHA: &str = "1.16.0";
/// Every seeded user's password.
const PASSWORD: &str = "a long fuzzing passphrase";

fn login(port: u16, user: &str) -> Result<String> {
    let body = serde_json::json!({ "user": user, "password": PASSWORD }).to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "POST /api/v1/auth/login HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let json = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(json).with_context(|| format!("login {user}: {out}"))?;
    v["data"]["access_token"].as_str().map(String::from).with_context(|| format!("login {user}: {v}"))
}

/// Seeds a folder through the CLI; returns the trader's API key.
fn seed(bin: &Path, dir: &Path) -> Result<String> {
    sqdata(bin, dir, &["init"], None)?;
    // the fuzzer logs in and calls far faster than a person: rates are
    // tested elsewhere, here they would only answer 429
    let cfg = dir.join("sqdata.toml");
    let text = std::fs::read_to_string(&cfg)?
        .replace("login_per_minute = 10\n", "login_per_minute = 1000000\n")
        .replace("requests_per_second = 200\n", "requests_per_second = 1000000\n")
        .replace("lockout_failures = 5\n", "lockout_failures = 1000000\n");
    std::fs::write(&cfg, text)?;
    let day = project_root().join("crates/file/tests/fixtures/sq_day");
    let day = day.to_str().context("fixture path")?;
    sqdata(
        bin,
        dir,
        &["import", "silverquant", "--cache-dir", day, "--account", "55009728", "--book", "prod_pwc"],
        None,
    )?;
    for (a, name) in [("55009728", "qmt"), ("88880001", "other")] {
        sqdata(bin, dir, &["registry", "account-put", "--account", a, "--name", name, "--actor", "seed"], None)?;
    }
    let book = ["--account", "55009728", "--book", "prod_pwc"];
    sqdata(bin, dir, &[&["registry", "strategy-put", "--actor", "seed"][..], &book].concat(), None)?;
    for p in [r#"{"stop": 0.05}"#, r#"{"stop": 0.04, "grid": {"n": 5}}"#] {
        sqdata(bin, dir, &[&["registry", "params-put", "--actor", "seed", "--json", p][..], &book].concat(), None)?;
    }
    for (u, role) in [("admin", "admin"), ("trader", "trader"), ("viewer", "viewer")] {
        sqdata(bin, dir, &["user", "add", u, "--role", role, "--password-stdin"], Some(&format!("{PASSWORD}\n")))?;
    }
    sqdata(bin, dir, &["user", "grant", "trader", "--account", "55009728", "--right", "write"], None)?;
    sqdata(bin, dir, &["user", "grant", "viewer", "--account", "55009728", "--right", "read"], None)?;
    let k = sqdata(bin, dir, &["api-key", "create", "--user", "trader", "--label", "fuzz", "--format", "json"], None)?;
    let v: serde_json::Value = serde_json::from_str(&k)?;
    v["key"].as_str().map(String::from).context("no key")
}

/// A seeded folder and `sqdata serve` over it; the trader's API key.
fn serve(bin: &Path, dir: &Path) -> Result<(Guard, u16, String)> {
    std::fs::create_dir_all(dir)?;
    let key = seed(bin, dir)?;
    let (srv, port) = sqproc::serve(bin, dir)?;
    Ok((srv, port, key))
}

/// Runs the fuzzer for every principal, each against its own freshly
/// seeded folder and server: what one principal may legitimately change
/// — the admin revoking the trader's key or grant, disabling a user —
/// would otherwise leave the next principals answering 401 or 404 to
/// everything, a run that passes and tests nothing.
pub(crate) fn run_all(bin: &Path, max_examples: u32) -> Result<()> {
    let t = Instant::now();
    let venv = crate::local::venv("schemathesis", SCHEMATHESIS, "schemathesis")?;
    let dir = std::env::temp_dir().join(format!("sqdata-api-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config: PathBuf = project_root().join("crates/server/schemathesis.toml");
    let mut failed = Vec::new();
    for who in ["admin", "trader", "viewer", "key", "anonymous"] {
        let (_srv, port, key) = serve(bin, &dir.join(who))?;
        let header = match who {
            "key" => Some(format!("X-Api-Key: {key}")),
            "anonymous" => None,
            u => Some(format!("Authorization: Bearer {}", login(port, u)?)),
        };
        let mut c = Command::new(venv.join("bin").join("schemathesis"));
        c.arg("--config-file")
            .arg(&config)
            .arg("run")
            .arg(format!("http://127.0.0.1:{port}/api/v1/openapi.json"))
            .args(["--checks", "all", "--workers", "1", "--max-examples", &max_examples.to_string()])
            .args(["--seed", "20261201", "--warnings", "off", "--report", "junit"])
            .arg("--report-dir")
            .arg(dir.join(format!("report-{who}")));
        if let Some(h) = &header {
            c.args(["--header", h]);
        }
        if run(&format!("schemathesis as {who}"), &mut c).is_err() {
            failed.push(who);
        }
    }
    eprintln!("api fuzz: 5 principals in {:.0}s (folder {})", t.elapsed().as_secs_f64(), dir.display());
    if !failed.is_empty() {
        bail!(
            "schemathesis found failures as {failed:?} (reports under {d}, each principal's folder and serve.log in {d}/<principal>)",
            d = dir.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `cargo xtask bench-api`: oha installed (pinned) under the tools folder,
/// a release build of the CLI, then `sqdata bench --suite api` with it.
pub(crate) fn bench_api(args: &[String]) -> Result<()> {
    let tools = util::base().parent().map(|p| p.join("tools")).context("tools folder")?;
    let oha = tools.join("bin").join("oha");
    let marker = tools.join(".oha-version");
    if !oha.exists() || std::fs::read_to_string(&marker).ok().as_deref() != Some(OHA) {
        run(
            "cargo install oha",
            Command::new("cargo").args(["install", "oha", "--locked", "--version", OHA, "--root"]).arg(&tools),
        )?;
        std::fs::write(&marker, OHA)?;
    }
    run("build sqdata (release)", cargo().args(["build", "--release", "-p", "sqdata-cli"]))?;
    let bin = target_dir().join("release").join("sqdata");
    let dir = target_dir().join("bench-api");
    std::fs::create_dir_all(&dir)?;
    run(
        "sqdata bench --suite api",
        Command::new(&bin).args(["bench", "--suite", "api", "--oha"]).arg(&oha).args(args).current_dir(&dir),
    )
}
