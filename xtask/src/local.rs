//! The test servers as local processes: installed with pinned versions
//! through the normal package clients (apt, pip) and started on 127.0.0.1
//! beside the machine's own Redis and MariaDB — a 3-node Redis cluster, a
//! Sentinel-monitored master/replica, ClickHouse 18.16 (the one Debian
//! ships), an S3-compatible server (moto) and the chdb-http modern
//! ClickHouse engine. A running service is reused; what this module starts
//! is recorded (pid files under the service's folder) so that `stop` ends
//! only that.

use std::ffi::OsStr;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::service::{
    CHDB_PORT, CLICKHOUSE_HTTP, CLICKHOUSE_TCP, Install, MYSQL_PORT, REDIS_PORT, S3_PORT, SENTINEL_MASTER_PORT,
    SENTINEL_PORT, SENTINEL_REPLICA_PORT, Service, chdb_http_script,
};
use crate::util::{base, port_open, redis_cli, redis_ping, wait_for};

pub(crate) fn have(bin: &str) -> bool {
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

pub(crate) fn apt_install<S: AsRef<OsStr> + Debug>(pkgs: &[S]) -> Result<()> {
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
pub(crate) fn venv(name: &str, pkg: &str, check_bin: &str) -> Result<PathBuf> {
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

/// Installs what the services need to run here, each step once (the three
/// Redis services share one), in the order of `Service::ALL`.
pub(crate) fn install(which: &[Service]) -> Result<()> {
    let mut steps: Vec<Install> = Vec::new();
    for s in Service::ALL.into_iter().filter(|s| which.contains(s)) {
        let step = s.install();
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
    for step in steps {
        match step {
            Install::Apt { present, packages, fallback } => {
                if present.iter().any(|b| have(b)) {
                    continue;
                }
                let pinned = apt_install(&packages);
                match fallback {
                    Some(f) => pinned.or_else(|_| apt_install(f))?,
                    None => pinned?,
                }
            }
            Install::Venv { name, package, bin } => {
                venv(name, package, bin)?;
            }
        }
    }
    Ok(())
}

/// Starts `cmd` detached (own process group, output to a log), records its pid.
fn spawn(service: Service, cmd: &mut Command) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let dir = service.dir();
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
        .with_context(|| format!("starting {service}: {cmd:?}"))?;
    let pid = child.id();
    std::fs::write(dir.join("pids"), format!("{pid}\n"))?;
    Ok(pid)
}

/// Records pid files written by daemonized redis-servers as ours.
fn record_pidfiles(service: Service, pidfiles: &[PathBuf]) -> Result<()> {
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
    std::fs::write(service.dir().join("pids"), pids)?;
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
pub(crate) fn stale(service: Service) -> bool {
    pids_of(service).iter().any(|p| {
        alive(*p)
            && std::fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|l| l.to_string_lossy().ends_with(" (deleted)"))
    })
}

/// Starts the service as a local process unless it already answers, and
/// waits until it does.
pub(crate) fn start(service: Service) -> Result<()> {
    let b = base();
    match service {
        Service::Redis => {
            if !service.answering() {
                let pf = redis_daemon(&service.dir(), REDIS_PORT, &[])?;
                record_pidfiles(service, &[pf])?;
                wait_for("redis", Duration::from_secs(10), || redis_ping(REDIS_PORT))?;
            }
        }
        Service::RedisCluster => {
            let ports = service.ports();
            if ports.iter().all(|p| redis_ping(*p)) && service.answering() {
                return Ok(());
            }
            let dir = service.dir();
            let mut pfs = Vec::new();
            for &p in ports {
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
            record_pidfiles(service, &pfs)?;
            for &p in ports {
                wait_for(&format!("redis {p}"), Duration::from_secs(10), || redis_ping(p))?;
            }
            let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
            sh(
                "redis-cli --cluster create",
                Command::new("redis-cli").args(["--cluster", "create"]).args(&nodes).args([
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ]),
            )?;
            wait_for("redis cluster_state:ok", Duration::from_secs(20), || service.answering())?;
        }
        Service::RedisSentinel => {
            let ok = || {
                redis_cli(SENTINEL_PORT, &["sentinel", "get-master-addr-by-name", "mymaster"])
                    .is_some_and(|s| s.contains("127.0.0.1"))
                    && redis_ping(SENTINEL_MASTER_PORT)
            };
            if service.answering() && ok() {
                return Ok(());
            }
            let dir = service.dir();
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
            record_pidfiles(service, &[m, r, spf])?;
            wait_for("redis sentinel", Duration::from_secs(15), ok)?;
        }
        Service::Mysql => {
            if service.answering() {
                return Ok(());
            }
            // The machine's MariaDB is expected; start one only if it is missing.
            let dir = service.dir();
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
                service,
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
        Service::Clickhouse => {
            if service.answering() {
                return Ok(());
            }
            let dir = service.dir();
            for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
                std::fs::create_dir_all(dir.join(sub))?;
            }
            std::fs::write(dir.join("config.xml"), clickhouse_config(&dir))?;
            std::fs::write(dir.join("users.xml"), CLICKHOUSE_USERS)?;
            spawn(
                service,
                Command::new("clickhouse-server").arg(format!("--config-file={}", dir.join("config.xml").display())),
            )?;
            wait_for("clickhouse", Duration::from_secs(60), || service.answering())?;
        }
        Service::S3 => {
            if service.answering() {
                return Ok(());
            }
            let v = b.join("venv-moto");
            spawn(
                service,
                Command::new(v.join("bin/moto_server")).args(["-H", "127.0.0.1", "-p", &S3_PORT.to_string()]),
            )?;
            wait_for("moto s3", Duration::from_secs(30), || port_open(S3_PORT))?;
        }
        Service::Chdb => {
            if service.answering() {
                return Ok(());
            }
            let script = chdb_http_script()
                .context("chdb_http.py not found beside the project; set SQDATA_CHDB_HTTP to its path")?;
            let v = b.join("venv-chdb");
            spawn(
                service,
                Command::new(v.join("bin/python"))
                    .arg(script)
                    .args(["127.0.0.1", &CHDB_PORT.to_string()])
                    .arg(service.dir().join("data")),
            )?;
            wait_for("chdb-http", Duration::from_secs(60), || service.answering())?;
        }
    }
    Ok(())
}

fn pids_of(service: Service) -> Vec<u32> {
    std::fs::read_to_string(service.dir().join("pids"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether this module started the service (it has recorded pids).
pub(crate) fn started(service: Service) -> bool {
    !pids_of(service).is_empty()
}

/// Stops the processes this module started for the service (TERM, then
/// KILL after 10 s); one it did not start is left alone.
pub(crate) fn stop(service: Service) -> Result<()> {
    let pids = pids_of(service);
    if pids.is_empty() {
        eprintln!("service {service:<15} not started by xtask; left alone");
        return Ok(());
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
    let _ = std::fs::remove_file(service.dir().join("pids"));
    eprintln!("service {service:<15} stopped");
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
