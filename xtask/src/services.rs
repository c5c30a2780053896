//! Local test servers: `cargo xtask services install|up|down|status [--only a,b]`.
//!
//! Installs pinned versions through the normal package clients (apt, pip)
//! and starts servers on 127.0.0.1 beside the machine's own Redis and
//! MariaDB: a 3-node Redis cluster, a Sentinel-monitored master/replica,
//! ClickHouse 18.16 (the one Debian ships), an S3-compatible server (moto)
//! and, on request, the chdb-http modern ClickHouse engine. `up` waits until
//! each answers, is idempotent (a running service is reused), records what it
//! started under the services folder and prints the `SQDATA_TEST_*`
//! variables the tests read; `down` stops only what `up` started.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Debian's only ClickHouse.
const CLICKHOUSE_APT: &str = "18.16.1+ds-7.3+b2";
const MOTO: &str = "moto[server,s3]==5.2.5";
const CHDB: &str = "chdb==4.4.0";

pub(crate) const REDIS_PORT: u16 = 6379;
pub(crate) const CLUSTER_PORTS: [u16; 3] = [7101, 7102, 7103];
pub(crate) const SENTINEL_MASTER_PORT: u16 = 7111;
pub(crate) const SENTINEL_REPLICA_PORT: u16 = 7112;
pub(crate) const SENTINEL_PORT: u16 = 7113;
pub(crate) const CLICKHOUSE_HTTP: u16 = 18123;
pub(crate) const CLICKHOUSE_TCP: u16 = 19000;
pub(crate) const S3_PORT: u16 = 19100;
pub(crate) const CHDB_PORT: u16 = 18124;
pub(crate) const MYSQL_PORT: u16 = 3306;

/// Every service `up` knows, in start order. `chdb` only on request.
pub(crate) const ALL: [&str; 7] = ["redis", "redis-cluster", "redis-sentinel", "mysql", "clickhouse", "s3", "chdb"];
const DEFAULT: [&str; 6] = ["redis", "redis-cluster", "redis-sentinel", "mysql", "clickhouse", "s3"];

/// The services `ci` and `test` start: all of them, chdb (the modern
/// ClickHouse engine) when its shim is present beside the project.
pub(crate) fn default_set() -> Vec<&'static str> {
    let mut v = DEFAULT.to_vec();
    if chdb_http_script().is_some() {
        v.push("chdb");
    }
    v
}

/// Where services keep their data, logs, pid files and virtualenvs.
pub(crate) fn base() -> PathBuf {
    if let Some(d) = std::env::var_os("SQDATA_SERVICES_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("sqdata").join("services")
}

fn selected(only: Option<&str>) -> Result<Vec<&'static str>> {
    match only {
        None => Ok(DEFAULT.to_vec()),
        Some(list) => list
            .split(',')
            .map(|s| {
                ALL.iter()
                    .copied()
                    .find(|a| *a == s.trim())
                    .with_context(|| format!("unknown service {s:?}; known: {ALL:?}"))
            })
            .collect(),
    }
}

pub(crate) fn main(args: &[String]) -> Result<()> {
    let only = crate::flag(args, "--only");
    let which = selected(only.as_deref())?;
    match args.first().map(String::as_str) {
        Some("install") => install(&which),
        Some("up") => {
            let env = up(&which)?;
            for (k, v) in env {
                println!("export {k}={v}");
            }
            Ok(())
        }
        Some("down") => down(&which),
        Some("status") => status(&which),
        Some("env") => {
            for (k, v) in env_of(&which) {
                println!("export {k}={v}");
            }
            Ok(())
        }
        _ => bail!("usage: cargo xtask services install|up|down|status|env [--only {}]", ALL.join(",")),
    }
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn sh(what: &str, cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn apt_install(pkgs: &[&str]) -> Result<()> {
    let t = Instant::now();
    let attempt = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(pkgs)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let out = attempt().context("running apt-get")?;
    if !out.status.success() {
        eprintln!("apt-get install failed, refreshing package lists and trying again");
        sh("apt-get update", Command::new("apt-get").args(["update", "-q"]))?;
        let out = attempt()?;
        if !out.status.success() {
            bail!("apt-get install {pkgs:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    eprintln!("installed {pkgs:?} in {:.1}s", t.elapsed().as_secs_f64());
    Ok(())
}

/// A virtualenv under the services folder with `pkg` installed (pinned).
fn venv(name: &str, pkg: &str, check_bin: &str) -> Result<PathBuf> {
    let dir = base().join(format!("venv-{name}"));
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(pkg) && dir.join("bin").join(check_bin).exists() {
        return Ok(dir);
    }
    let t = Instant::now();
    let py = if have("python3") { "python3" } else { "python" };
    sh("python -m venv", Command::new(py).args(["-m", "venv", "--clear"]).arg(&dir))?;
    sh(
        &format!("pip install {pkg}"),
        Command::new(dir.join("bin/pip")).args(["install", "-q", "--disable-pip-version-check", pkg]),
    )?;
    std::fs::write(&marker, pkg)?;
    eprintln!("installed {pkg} in {:.1}s", t.elapsed().as_secs_f64());
    Ok(dir)
}

/// The Docker engine the containerized services run on, decided once and
/// said once (the choice is always visible in the output).
fn engine() -> Result<Option<String>> {
    static ENGINE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e.clone());
    }
    let e = crate::containers::engine()?;
    match &e {
        Some(s) => eprintln!(
            "services: Docker engine at {s}: {} run as containers (testcontainers); the rest as local processes",
            crate::containers::CONTAINERIZED.join(", ")
        ),
        None => eprintln!("services: no Docker engine (or SQDATA_SERVICES=local): every service is a local process"),
    }
    Ok(ENGINE.get_or_init(|| e).clone())
}

/// Whether the service answers on its port (whoever started it).
fn answering(name: &str) -> bool {
    match name {
        "redis" => redis_ping(REDIS_PORT),
        "redis-cluster" => {
            redis_cli(CLUSTER_PORTS[0], &["cluster", "info"]).is_some_and(|s| s.contains("cluster_state:ok"))
        }
        "redis-sentinel" => redis_ping(SENTINEL_PORT),
        "mysql" => port_open(MYSQL_PORT),
        "clickhouse" => http_get(CLICKHOUSE_HTTP, "/ping").is_some_and(|r| r.contains("Ok.")),
        "s3" => port_open(S3_PORT) && http_get(S3_PORT, "/").is_some(),
        "chdb" => http_get(CHDB_PORT, "/ping").is_some_and(|r| r.contains("Ok")),
        _ => false,
    }
}

/// Whether `name` runs (or would run) as a container here.
fn in_container(name: &str) -> Result<bool> {
    Ok(crate::containers::CONTAINERIZED.contains(&name) && engine()?.is_some())
}

fn container_marker(name: &str) -> PathBuf {
    base().join(name).join("container")
}

fn install(which: &[&str]) -> Result<()> {
    std::fs::create_dir_all(base())?;
    // Containerized services need nothing installed on the machine.
    let mut local = Vec::new();
    for w in which {
        if !in_container(w)? {
            local.push(*w);
        }
    }
    let which = &local[..];
    let redis_needed = which.iter().any(|w| w.starts_with("redis"));
    if redis_needed && !have("redis-server") {
        apt_install(&["redis-server", "redis-tools"])?;
    }
    if which.contains(&"mysql") && !have("mariadbd") && !have("mysqld") {
        apt_install(&["mariadb-server", "mariadb-client"])?;
    }
    if which.contains(&"clickhouse") && !have("clickhouse-server") {
        apt_install(&[
            &format!("clickhouse-server={CLICKHOUSE_APT}"),
            &format!("clickhouse-client={CLICKHOUSE_APT}"),
            &format!("clickhouse-common={CLICKHOUSE_APT}"),
        ])
        .or_else(|_| apt_install(&["clickhouse-server", "clickhouse-client"]))?;
    }
    if which.contains(&"s3") {
        venv("moto", MOTO, "moto_server")?;
    }
    if which.contains(&"chdb") {
        venv("chdb", CHDB, "python")?;
    }
    Ok(())
}

fn port_open(port: u16) -> bool {
    ("127.0.0.1", port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not become ready within {timeout:?} (logs under {})", base().display())
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn redis_ping(port: u16) -> bool {
    redis_cli(port, &["ping"]).is_some_and(|s| s.trim() == "PONG")
}

/// Creates a bucket on the local S3 test server (moto takes unsigned
/// requests); an existing bucket is fine.
pub(crate) fn create_bucket(endpoint: &str, bucket: &str) -> Result<()> {
    use std::io::Write;
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(hostport).with_context(|| format!("S3 server at {endpoint}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "PUT /{bucket} HTTP/1.0\r\nHost: {hostport}\r\nContent-Length: 0\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    if !(buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") || buf.contains("BucketAlreadyOwnedByYou"))
    {
        anyhow::bail!("creating bucket {bucket} at {endpoint}: {}", buf.lines().next().unwrap_or_default());
    }
    Ok(())
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}

/// Starts `cmd` detached (own process group, output to a log), records its pid.
fn spawn(name: &str, cmd: &mut Command) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let dir = base().join(name);
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::File::create(dir.join("stdout.log"))?;
    // Its own folder as the working folder: never the checkout, which a CI
    // run deletes while the service lives on.
    let child = cmd
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {name}: {cmd:?}"))?;
    let pid = child.id();
    std::fs::write(dir.join("pids"), format!("{pid}\n"))?;
    Ok(pid)
}

/// Records pid files written by daemonized redis-servers as ours.
fn record_pidfiles(name: &str, pidfiles: &[PathBuf]) -> Result<()> {
    let mut pids = String::new();
    for p in pidfiles {
        let t = Instant::now();
        while !p.exists() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Ok(s) = std::fs::read_to_string(p) {
            pids.push_str(s.trim());
            pids.push('\n');
        }
    }
    std::fs::write(base().join(name).join("pids"), pids)?;
    Ok(())
}

fn redis_daemon(dir: &Path, port: u16, extra: &[&str]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let pidfile = dir.join(format!("redis-{port}.pid"));
    let _ = std::fs::remove_file(&pidfile);
    sh(
        &format!("redis-server on {port}"),
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
            ])
            .arg("--dir")
            .arg(dir)
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--logfile")
            .arg(dir.join(format!("redis-{port}.log")))
            .args(extra),
    )?;
    Ok(pidfile)
}

/// Whether a service we started runs in a folder that has since been
/// deleted (started from a checkout that is gone: chdb then fails every
/// write with "getcwd failed" while still answering /ping).
fn stale(name: &str) -> bool {
    pids_of(name).iter().any(|p| {
        alive(*p)
            && std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|l| l.to_string_lossy().ends_with(" (deleted)"))
    })
}

fn start(name: &str) -> Result<()> {
    let b = base();
    if stale(name) {
        eprintln!("service {name:<15} runs in a deleted folder; restarting it");
        down(&[name])?;
    }
    if in_container(name)? && !answering(name) {
        crate::containers::start(name)?;
        std::fs::create_dir_all(b.join(name))?;
        std::fs::write(container_marker(name), "testcontainers\n")?;
        return wait_for(name, Duration::from_secs(180), || answering(name));
    }
    match name {
        "redis" => {
            if !redis_ping(REDIS_PORT) {
                let pf = redis_daemon(&b.join("redis"), REDIS_PORT, &[])?;
                record_pidfiles("redis", &[pf])?;
                wait_for("redis", Duration::from_secs(10), || redis_ping(REDIS_PORT))?;
            }
        }
        "redis-cluster" => {
            let ok =
                || redis_cli(CLUSTER_PORTS[0], &["cluster", "info"]).is_some_and(|s| s.contains("cluster_state:ok"));
            if CLUSTER_PORTS.iter().all(|p| redis_ping(*p)) && ok() {
                return Ok(());
            }
            let dir = b.join("redis-cluster");
            let mut pfs = Vec::new();
            for p in CLUSTER_PORTS {
                if redis_ping(p) {
                    bail!(
                        "port {p} answers but is not a healthy sqdata test cluster; run `cargo xtask services down --only redis-cluster` or free the port"
                    );
                }
                let node = dir.join(p.to_string());
                let _ = std::fs::remove_dir_all(&node);
                let conf = node.join("nodes.conf");
                std::fs::create_dir_all(&node)?;
                pfs.push(redis_daemon(
                    &node,
                    p,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &conf.to_string_lossy(),
                        "--cluster-node-timeout",
                        "5000",
                    ],
                )?);
            }
            record_pidfiles("redis-cluster", &pfs)?;
            for p in CLUSTER_PORTS {
                wait_for(&format!("redis {p}"), Duration::from_secs(10), || redis_ping(p))?;
            }
            let nodes: Vec<String> = CLUSTER_PORTS.iter().map(|p| format!("127.0.0.1:{p}")).collect();
            sh(
                "redis-cli --cluster create",
                Command::new("redis-cli").args(["--cluster", "create"]).args(&nodes).args([
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ]),
            )?;
            wait_for("redis cluster_state:ok", Duration::from_secs(20), ok)?;
        }
        "redis-sentinel" => {
            let ok = || {
                redis_cli(SENTINEL_PORT, &["sentinel", "get-master-addr-by-name", "mymaster"])
                    .is_some_and(|s| s.contains("127.0.0.1"))
                    && redis_ping(SENTINEL_MASTER_PORT)
            };
            if redis_ping(SENTINEL_PORT) && ok() {
                return Ok(());
            }
            let dir = b.join("redis-sentinel");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let m = redis_daemon(&dir.join("master"), SENTINEL_MASTER_PORT, &[])?;
            let r = redis_daemon(
                &dir.join("replica"),
                SENTINEL_REPLICA_PORT,
                &["--replicaof", "127.0.0.1", &SENTINEL_MASTER_PORT.to_string()],
            )?;
            // Sentinel rewrites its config: a fresh one each start.
            let conf = dir.join("sentinel.conf");
            let spf = dir.join("sentinel.pid");
            std::fs::write(
                &conf,
                format!(
                    "port {SENTINEL_PORT}\nbind 127.0.0.1\ndaemonize yes\npidfile {}\nlogfile {}\ndir {}\nsentinel monitor mymaster 127.0.0.1 {SENTINEL_MASTER_PORT} 1\nsentinel down-after-milliseconds mymaster 2000\nsentinel failover-timeout mymaster 10000\nsentinel parallel-syncs mymaster 1\n",
                    spf.display(),
                    dir.join("sentinel.log").display(),
                    dir.display()
                ),
            )?;
            sh("redis sentinel", Command::new("redis-server").arg(&conf).arg("--sentinel"))?;
            record_pidfiles("redis-sentinel", &[m, r, spf])?;
            wait_for("redis sentinel", Duration::from_secs(15), ok)?;
        }
        "mysql" => {
            if port_open(MYSQL_PORT) {
                return Ok(());
            }
            // The machine's MariaDB is expected; start one only if it is missing.
            let dir = b.join("mysql");
            let data = dir.join("data");
            if !data.join("mysql").exists() {
                std::fs::create_dir_all(&data)?;
                sh(
                    "mariadb-install-db",
                    Command::new("mariadb-install-db")
                        .args([
                            "--no-defaults",
                            "--user=root",
                            "--auth-root-authentication-method=normal",
                            "--skip-test-db",
                        ])
                        .arg(format!("--datadir={}", data.display())),
                )?;
            }
            spawn(
                "mysql",
                Command::new("mariadbd")
                    .args([
                        "--no-defaults",
                        "--user=root",
                        "--bind-address=127.0.0.1",
                        "--skip-name-resolve",
                        "--skip-log-bin",
                    ])
                    .arg(format!("--datadir={}", data.display()))
                    .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
                    .arg(format!("--port={MYSQL_PORT}")),
            )?;
            wait_for("mariadb", Duration::from_secs(30), || port_open(MYSQL_PORT))?;
            let _ = Command::new("mariadb")
                .args(["--no-defaults", "-uroot"])
                .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
                .args(["-e", "CREATE DATABASE IF NOT EXISTS test"])
                .status();
        }
        "clickhouse" => {
            let ok = || http_get(CLICKHOUSE_HTTP, "/ping").is_some_and(|r| r.contains("Ok."));
            if ok() {
                return Ok(());
            }
            let dir = b.join("clickhouse");
            for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
                std::fs::create_dir_all(dir.join(sub))?;
            }
            std::fs::write(dir.join("config.xml"), clickhouse_config(&dir))?;
            std::fs::write(dir.join("users.xml"), CLICKHOUSE_USERS)?;
            spawn(
                "clickhouse",
                Command::new("clickhouse-server").arg(format!("--config-file={}", dir.join("config.xml").display())),
            )?;
            wait_for("clickhouse", Duration::from_secs(60), ok)?;
        }
        "s3" => {
            let ok = || http_get(S3_PORT, "/").is_some();
            if port_open(S3_PORT) && ok() {
                return Ok(());
            }
            let v = b.join("venv-moto");
            spawn("s3", Command::new(v.join("bin/moto_server")).args(["-H", "127.0.0.1", "-p", &S3_PORT.to_string()]))?;
            wait_for("moto s3", Duration::from_secs(30), || port_open(S3_PORT))?;
        }
        "chdb" => {
            if http_get(CHDB_PORT, "/ping").is_some_and(|r| r.contains("Ok")) {
                return Ok(());
            }
            let script = chdb_http_script()
                .context("chdb_http.py not found beside the project; set SQDATA_CHDB_HTTP to its path")?;
            let v = b.join("venv-chdb");
            spawn(
                "chdb",
                Command::new(v.join("bin/python"))
                    .arg(script)
                    .args(["127.0.0.1", &CHDB_PORT.to_string()])
                    .arg(b.join("chdb").join("data")),
            )?;
            wait_for("chdb-http", Duration::from_secs(60), || {
                http_get(CHDB_PORT, "/ping").is_some_and(|r| r.contains("Ok"))
            })?;
        }
        other => bail!("unknown service {other}"),
    }
    Ok(())
}

/// The chdb-http shim shipped beside the project (`shared/tools/chdb-http`
/// in this folder or any folder above it, or `/work/shared`), or wherever
/// `SQDATA_CHDB_HTTP` points.
pub(crate) fn chdb_http_script() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SQDATA_CHDB_HTTP") {
        return Some(PathBuf::from(p));
    }
    let rel = Path::new("shared/tools/chdb-http/chdb_http.py");
    let root = crate::project_root();
    root.ancestors().map(|a| a.join(rel)).chain([Path::new("/work").join(rel)]).find(|p| p.exists())
}

/// Starts the services and returns the variables the tests read.
pub(crate) fn up(which: &[&str]) -> Result<Vec<(String, String)>> {
    install(which)?;
    for w in which {
        let t = Instant::now();
        start(w).with_context(|| format!("service {w}"))?;
        eprintln!("service {w:<15} ready ({:.1}s)", t.elapsed().as_secs_f64());
    }
    let env = env_of(which);
    // The env file accumulates: `up --only x` must not forget the others.
    let path = base().join("env");
    let mut all: std::collections::BTreeMap<String, String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    all.extend(env.iter().cloned());
    std::fs::write(&path, all.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())?;
    Ok(env)
}

/// The `SQDATA_TEST_*` variables of the given services.
pub(crate) fn env_of(which: &[&str]) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for w in which {
        match *w {
            "redis" => v.push(("SQDATA_TEST_REDIS_URL", format!("redis://127.0.0.1:{REDIS_PORT}/0"))),
            "redis-cluster" => v.push((
                "SQDATA_TEST_REDIS_CLUSTER_URLS",
                CLUSTER_PORTS.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(","),
            )),
            "redis-sentinel" => {
                v.push(("SQDATA_TEST_REDIS_SENTINEL_URL", format!("redis://127.0.0.1:{SENTINEL_PORT}")));
                v.push(("SQDATA_TEST_REDIS_SENTINEL_MASTER", "mymaster".to_owned()));
            }
            "mysql" => v.push(("SQDATA_TEST_MYSQL_URL", format!("mysql://root@127.0.0.1:{MYSQL_PORT}/test"))),
            "clickhouse" => v.push(("SQDATA_TEST_CLICKHOUSE_URL", format!("http://127.0.0.1:{CLICKHOUSE_HTTP}"))),
            "s3" => {
                v.push(("SQDATA_TEST_S3_URL", format!("http://127.0.0.1:{S3_PORT}")));
                v.push(("SQDATA_TEST_S3_ACCESS_KEY", "sqdata-test".to_owned()));
                v.push(("SQDATA_TEST_S3_SECRET_KEY", "sqdata-test-secret".to_owned()));
            }
            "chdb" => v.push(("SQDATA_TEST_CHDB_URL", format!("http://127.0.0.1:{CHDB_PORT}"))),
            _ => {}
        }
    }
    v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn pids_of(name: &str) -> Vec<u32> {
    std::fs::read_to_string(base().join(name).join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn down(which: &[&str]) -> Result<()> {
    for w in which {
        if container_marker(w).exists() {
            crate::containers::stop(w)?;
            let _ = std::fs::remove_file(container_marker(w));
            continue;
        }
        let pids = pids_of(w);
        if pids.is_empty() {
            eprintln!("service {w:<15} not started by xtask; left alone");
            continue;
        }
        for pid in &pids {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let t = Instant::now();
        while pids.iter().any(|p| alive(*p)) && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        for pid in pids.iter().filter(|p| alive(**p)) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        let _ = std::fs::remove_file(base().join(w).join("pids"));
        eprintln!("service {w:<15} stopped");
    }
    Ok(())
}

fn status(which: &[&str]) -> Result<()> {
    for w in which {
        let up = answering(w);
        let ours = if container_marker(w).exists() {
            "(container started by xtask)"
        } else if !pids_of(w).is_empty() {
            "(started by xtask)"
        } else {
            ""
        };
        println!("{w:<15} {:<5} {ours}", if up { "up" } else { "down" });
    }
    Ok(())
}

fn clickhouse_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/server.err.log</errorlog><size>100M</size><count>2</count></logger>
    <http_port>{CLICKHOUSE_HTTP}</http_port>
    <tcp_port>{CLICKHOUSE_TCP}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <users_config>{d}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
</yandex>
"#
    )
}

const CLICKHOUSE_USERS: &str = r#"<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
                <read_rows>0</read_rows><execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"#;
