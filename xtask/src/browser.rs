//! `cargo xtask browser`: the admin page (`/admin/`) in a real Chromium —
//! Debian's `chromium` (installed through apt when missing) driven by npm's
//! `playwright-core` (pinned in `crates/server/tests/browser/package-lock.json`,
//! installed with `npm ci`); the tests are `node --test` files in that folder.
//!
//! Two servers of the CLI as the tests build it (every backend in):
//! - an **embedded** one on a folder seeded through the CLI as a user would
//!   (`init`, the SilverQuant fixture day imported, accounts, strategies — one
//!   whose description is `<img src=x onerror=alert(1)>` —, parameter
//!   versions, users admin/trader/viewer and their grants, an equity curve,
//!   K-line CSVs with a known count of up and down candles and a 6,000-bar
//!   series) for most tests; the tests write the 200-position book and the
//!   deals through the API as admin;
//! - an **mvp** one whose Redis is a private `redis-server` this command
//!   starts on a free port (the test kills and restarts it: the degraded
//!   banner) and whose ClickHouse is the test services' one
//!   (`SQDATA_TEST_CLICKHOUSE_URL`, a database of its own).
//!
//! Screenshots land in `target/browser/`; `--update-docs` copies the
//! K-line one to `docs/admin.png`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::local::{apt_install, have};
use crate::sqproc::{Guard, free_port, serve, sqdata};
use crate::{project_root, run, target_dir, util};

/// Every seeded user's password.
const PASSWORD: &str = "a long browser-test passphrase";
/// The series whose candles the test counts, and its length.
const KNOWN: &str = "000002.SZ";
const KNOWN_BARS: usize = 160;
/// The long series (two pages of 5,000) for the pan timing.
const LONG: &str = "000001.SZ";
const LONG_BARS: usize = 6000;
/// The last bar of both series: the fixture day (a Friday).
const LAST_DAY: (i64, u32, u32) = (2025, 10, 10);

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The `n` weekdays ending on `last`, oldest first, as (YYYYMMDD, YYYY-MM-DD).
fn weekdays(n: usize, last: (i64, u32, u32)) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n);
    let mut day = days_from_civil(last.0, last.1, last.2);
    while out.len() < n {
        // 1970-01-01 was a Thursday: 0 = Sunday … 6 = Saturday
        let wd = (day + 4).rem_euclid(7);
        if wd != 0 && wd != 6 {
            let (y, m, d) = civil_from_days(day);
            out.push((format!("{y:04}{m:02}{d:02}"), format!("{y:04}-{m:02}-{d:02}")));
        }
        day -= 1;
    }
    out.reverse();
    out
}

/// Whether the known series' bar `i` is up (close ≥ open): 6 of every 10.
fn known_up(i: usize) -> bool {
    (i * 7) % 10 < 6
}

/// A K-line CSV as SilverQuant writes it, and its up/down counts.
fn kline_csv(
    days: &[(String, String)],
    mut bar: impl FnMut(usize) -> (f64, f64, f64, f64, u64),
) -> (String, usize, usize) {
    let mut s = String::from("datetime,open,high,low,close,volume,amount\n");
    let (mut up, mut down) = (0, 0);
    for (i, (compact, _)) in days.iter().enumerate() {
        let (o, h, l, c, v) = bar(i);
        let (o, h, l, c) = (
            (o * 100.0).round() / 100.0,
            (h * 100.0).round() / 100.0,
            (l * 100.0).round() / 100.0,
            (c * 100.0).round() / 100.0,
        );
        if c >= o {
            up += 1;
        } else {
            down += 1;
        }
        let _ = writeln!(s, "{compact},{o:.2},{h:.2},{l:.2},{c:.2},{v},{:.2}", c * v as f64);
    }
    (s, up, down)
}

/// Both series as CSV files in `dir`; returns the known series' dates and counts.
fn write_klines(dir: &Path) -> Result<serde_json::Value> {
    std::fs::create_dir_all(dir)?;
    let days = weekdays(KNOWN_BARS, LAST_DAY);
    let (csv, up, down) = kline_csv(&days, |i| {
        let mid = 10.0 + 2.0 * (i as f64 / 9.0).sin() + i as f64 * 0.01;
        let (o, c) = if known_up(i) { (mid - 0.3, mid + 0.3) } else { (mid + 0.3, mid - 0.3) };
        (o, o.max(c) + 0.15, o.min(c) - 0.15, c, 1000 + (i as u64 * 37 % 50) * 100)
    });
    std::fs::write(dir.join(format!("{KNOWN}.csv")), csv)?;
    let long = weekdays(LONG_BARS, LAST_DAY);
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let (csv, _, _) = kline_csv(&long, |i| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let r = (x % 1000) as f64 / 1000.0;
        let mid = 20.0 + 8.0 * (i as f64 / 300.0).sin() + 3.0 * (i as f64 / 17.0).sin();
        let (o, c) = if r < 0.5 { (mid - r, mid + r * 0.8) } else { (mid + r * 0.5, mid - r * 0.4) };
        (o, o.max(c) + r * 0.3, (o.min(c) - r * 0.3).max(0.5), c, 10_000 + (x % 90_000))
    });
    std::fs::write(dir.join(format!("{LONG}.csv")), csv)?;
    Ok(serde_json::json!({
        "code": KNOWN,
        "bars": KNOWN_BARS,
        "up": up,
        "down": down,
        "dates": days.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
        "long": { "code": LONG, "bars": LONG_BARS },
    }))
}

/// Rewrites `key = old` lines of the `[api]` (or any) section of the config
/// `sqdata init` wrote; each must be there (a renamed key fails loudly).
fn tune(dir: &Path, edits: &[(&str, &str)]) -> Result<()> {
    let cfg = dir.join("sqdata.toml");
    let mut text = std::fs::read_to_string(&cfg)?;
    for (from, to) in edits {
        if !text.contains(from) {
            bail!("{} has no line {from:?} to change", cfg.display());
        }
        text = text.replacen(from, to, 1);
    }
    std::fs::write(&cfg, text)?;
    Ok(())
}

/// The limits a test client outruns (logins, requests) lifted, and a 30 s
/// access token so that the page's refresh before expiry happens in the run.
const RELAXED: [(&str, &str); 4] = [
    ("login_per_minute = 10\n", "login_per_minute = 100000\n"),
    ("requests_per_second = 200\n", "requests_per_second = 100000\n"),
    ("lockout_failures = 5\n", "lockout_failures = 100000\n"),
    ("access_ttl_s = 900\n", "access_ttl_s = 30\n"),
];

fn users(bin: &Path, dir: &Path, which: &[(&str, &str)]) -> Result<()> {
    for (u, role) in which {
        sqdata(bin, dir, &["user", "add", u, "--role", role, "--password-stdin"], Some(&format!("{PASSWORD}\n")))?;
    }
    Ok(())
}

/// The embedded folder: everything the CLI can seed.
fn seed_embedded(bin: &Path, dir: &Path) -> Result<serde_json::Value> {
    std::fs::create_dir_all(dir)?;
    sqdata(bin, dir, &["init"], None)?;
    tune(dir, &RELAXED)?;
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
    let xss = "<img src=x onerror=alert(1)>";
    for (book, desc, kind) in [("prod_pwc", xss, "pwc"), ("grid200", "网格 200 只", "grid")] {
        sqdata(
            bin,
            dir,
            &[
                "registry",
                "strategy-put",
                "--account",
                "55009728",
                "--book",
                book,
                "--description",
                desc,
                "--kind",
                kind,
                "--actor",
                "seed",
            ],
            None,
        )?;
    }
    let params = [
        r#"{"stop": 0.05, "take": 0.1}"#,
        r#"{"stop": 0.04, "take": 0.1, "grid": {"n": 5}}"#,
        r#"{"stop": 0.04, "grid": {"n": 6}, "trail": true}"#,
    ];
    for (i, p) in params.iter().enumerate() {
        let note = format!("seed v{}", i + 1);
        sqdata(
            bin,
            dir,
            &[
                "registry",
                "params-put",
                "--account",
                "55009728",
                "--book",
                "prod_pwc",
                "--json",
                p,
                "--note",
                &note,
                "--actor",
                "seed",
            ],
            None,
        )?;
    }
    // an equity curve of 40 days ending on the fixture day
    for (i, (_, date)) in weekdays(40, LAST_DAY).iter().enumerate() {
        let asset = format!("{:.2}", 100_000.0 + 800.0 * (i as f64 / 5.0).sin() + 120.0 * i as f64);
        sqdata(
            bin,
            dir,
            &["assets", "upsert", "--account", "55009728", "--book", "prod_pwc", "--date", date, "--asset", &asset],
            None,
        )?;
    }
    let known = write_klines(&dir.join("kline"))?;
    sqdata(bin, dir, &["bars", "import", "--kline-dir", "kline"], None)?;
    users(bin, dir, &[("admin", "admin"), ("trader", "trader"), ("viewer", "viewer")])?;
    sqdata(bin, dir, &["user", "grant", "trader", "--account", "55009728", "--right", "write"], None)?;
    sqdata(bin, dir, &["user", "grant", "viewer", "--account", "55009728", "--right", "read"], None)?;
    Ok(known)
}

/// The private Redis: its command line (the test restarts it with the
/// same), its pid file and port.
struct Redis {
    argv: Vec<String>,
    pidfile: PathBuf,
    port: u16,
}

impl Redis {
    fn new(dir: &Path) -> Result<Redis> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let pidfile = dir.join("redis.pid");
        let d = dir.to_str().context("redis folder")?;
        let argv = [
            "redis-server",
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            d,
            "--pidfile",
            pidfile.to_str().context("pid file")?,
            "--logfile",
            &format!("{d}/redis.log"),
        ]
        .map(String::from)
        .to_vec();
        Ok(Redis { argv, pidfile, port })
    }

    fn start(&self) -> Result<Guard> {
        let g = Guard(Command::new(&self.argv[0]).args(&self.argv[1..]).stdin(Stdio::null()).spawn()?);
        util::wait_for("private redis", Duration::from_secs(10), || util::redis_ping(self.port))?;
        Ok(g)
    }

    /// Ends the one the test restarted, if it still runs: by the pid its
    /// pid file names, only when that process is a redis-server on our port.
    fn end_restarted(&self) {
        let Some(pid) = std::fs::read_to_string(&self.pidfile).ok().and_then(|s| s.trim().parse::<u32>().ok()) else {
            return;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("redis-server") && cmdline.contains(&format!(":{}", self.port)) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

/// The mvp server's ClickHouse database: this run's own.
fn database() -> String {
    format!("sqdata_browser_{}", std::process::id())
}

/// The mvp folder: Redis (private) + ClickHouse behind the files, probed often.
fn seed_mvp(bin: &Path, dir: &Path, redis: &Redis, clickhouse: &str) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    sqdata(bin, dir, &["init"], None)?;
    let redis_url = format!("url = \"redis://127.0.0.1:{}/0\"\n", redis.port);
    let ch_url = format!("[clickhouse]\nurl = \"{clickhouse}\"\ndatabase = \"{}\"\n", database());
    let mut edits: Vec<(&str, &str)> = RELAXED.to_vec();
    edits.extend([
        ("tier = \"embedded\"\n", "tier = \"mvp\"\n"),
        ("url = \"redis://127.0.0.1:6379/0\"\n", redis_url.as_str()),
        (
            "connect_timeout_ms = 1000\nresponse_timeout_ms = 1000\n",
            "connect_timeout_ms = 300\nresponse_timeout_ms = 300\n",
        ),
        ("[clickhouse]\nurl = \"http://127.0.0.1:8123\"\ndatabase = \"sqdata\"\n", ch_url.as_str()),
        ("probe_interval_ms = 2000\n", "probe_interval_ms = 500\n"),
    ]);
    tune(dir, &edits)?;
    sqdata(bin, dir, &["registry", "account-put", "--account", "55009728", "--name", "qmt", "--actor", "seed"], None)?;
    sqdata(
        bin,
        dir,
        &["registry", "strategy-put", "--account", "55009728", "--book", "prod_pwc", "--actor", "seed"],
        None,
    )?;
    users(bin, dir, &[("admin", "admin")])
}

/// Drops the mvp server's ClickHouse database (the test services outlive the run).
fn drop_database(url: &str, db: &str) {
    use std::io::{Read, Write};
    let Some(hostport) = url.strip_prefix("http://").map(|h| h.trim_end_matches('/')) else { return };
    let Ok(mut s) = std::net::TcpStream::connect(hostport) else { return };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let body = format!("DROP DATABASE IF EXISTS {db}");
    let _ = write!(s, "POST / HTTP/1.0\r\nHost: {hostport}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let _ = s.read_to_end(&mut Vec::new());
}

/// Installs what the run needs: Chromium, Node and npm, redis-server, a CJK font.
fn tools() -> Result<()> {
    for (bin, pkgs) in
        [("chromium", &["chromium"][..]), ("node", &["nodejs", "npm"][..]), ("redis-server", &["redis-server"][..])]
    {
        if !have(bin) {
            apt_install(pkgs).with_context(|| format!("{bin} is needed for the browser tests"))?;
        }
    }
    // the page is in Chinese: without a CJK font the screenshots show boxes
    let cjk = Command::new("fc-list").arg(":lang=zh").output().is_ok_and(|o| !o.stdout.is_empty());
    if !cjk {
        apt_install(&["fonts-wqy-microhei"])?;
    }
    Ok(())
}

/// Runs the browser tests against `bin` (the CLI built with every backend);
/// `env` carries `SQDATA_TEST_CLICKHOUSE_URL`.
pub(crate) fn run_all(bin: &Path, env: &[(String, String)], update_docs: bool) -> Result<()> {
    let t = Instant::now();
    tools()?;
    let tests = project_root().join("crates/server/tests/browser");
    run("npm ci (playwright-core)", Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&tests))?;
    let clickhouse = env
        .iter()
        .find(|(k, _)| k == "SQDATA_TEST_CLICKHOUSE_URL")
        .map(|(_, v)| v.clone())
        .context("SQDATA_TEST_CLICKHOUSE_URL is not set (cargo xtask services up prints it)")?;
    let work = std::env::temp_dir().join(format!("sqdata-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let artifacts = target_dir().join("browser");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts)?;

    let embedded = work.join("embedded");
    let known = seed_embedded(bin, &embedded)?;
    let (server_a, port_a) = serve(bin, &embedded)?;
    let redis = Redis::new(&work.join("redis"))?;
    let first_redis = redis.start()?;
    let mvp = work.join("mvp");
    seed_mvp(bin, &mvp, &redis, &clickhouse)?;
    let (server_b, port_b) = serve(bin, &mvp)?;
    eprintln!(
        "seeded and serving in {:.0}s: embedded :{port_a}, mvp :{port_b} (redis :{})",
        t.elapsed().as_secs_f64(),
        redis.port
    );

    let fixture = serde_json::json!({
        "password": PASSWORD,
        "embedded": { "origin": format!("http://127.0.0.1:{port_a}") },
        "mvp": {
            "origin": format!("http://127.0.0.1:{port_b}"),
            "redis": { "argv": redis.argv, "pid": first_redis.0.id(), "pidfile": redis.pidfile, "port": redis.port },
        },
        "known": known,
        "artifacts": artifacts,
    });
    let fixture_path = work.join("fixture.json");
    std::fs::write(&fixture_path, serde_json::to_string_pretty(&fixture)?)?;
    let result = run(
        "browser tests (node --test, Chromium)",
        Command::new("node")
            .args(["--test", "--test-concurrency=1", "--test-reporter=spec", "admin.test.mjs"])
            .current_dir(&tests)
            .env("SQDATA_BROWSER_FIXTURE", &fixture_path),
    );
    drop(first_redis);
    redis.end_restarted();
    drop(server_b);
    drop(server_a);
    drop_database(&clickhouse, &database());
    eprintln!("browser tests: {:.0}s in all; screenshots in {}", t.elapsed().as_secs_f64(), artifacts.display());
    if result.is_err() {
        bail!("the browser tests failed (folders and serve.log under {})", work.display());
    }
    if update_docs {
        let docs = project_root().join("docs").join("admin.png");
        std::fs::copy(artifacts.join("kline.png"), &docs).context("copying the screenshot to docs/")?;
        eprintln!("updated {}", docs.display());
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_end_on_the_day_and_skip_weekends() {
        let d = weekdays(6, LAST_DAY);
        let dates: Vec<&str> = d.iter().map(|x| x.1.as_str()).collect();
        assert_eq!(dates, ["2025-10-03", "2025-10-06", "2025-10-07", "2025-10-08", "2025-10-09", "2025-10-10"]);
        assert_eq!(d[5].0, "20251010");
        for z in [-800_000, -1, 0, 1, 20_371, 1_000_000] {
            let (y, m, dd) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, dd), z);
        }
    }

    #[test]
    fn the_known_series_has_the_counts_it_claims() {
        let dir = std::env::temp_dir().join(format!("sqdata-browser-unit-{}", std::process::id()));
        let v = write_klines(&dir).unwrap();
        let text = std::fs::read_to_string(dir.join(format!("{KNOWN}.csv"))).unwrap();
        let (mut up, mut down) = (0, 0);
        for line in text.lines().skip(1) {
            let f: Vec<f64> = line.split(',').skip(1).map(|x| x.parse().unwrap()).collect();
            assert!(f[1] >= f[0].max(f[3]) && f[2] <= f[0].min(f[3]), "{line}");
            if f[3] >= f[0] {
                up += 1;
            } else {
                down += 1;
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((v["up"].as_u64().unwrap(), v["down"].as_u64().unwrap()), (up, down));
        assert_eq!(up + down, KNOWN_BARS as u64);
        assert!(up > 0 && down > 0);
    }
}
