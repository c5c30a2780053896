//! Real server processes that a test starts, kills and restarts itself (on
//! spare ports), for failover and fault tests. Never the shared servers.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Whether something accepts connections on the port.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// Waits until `ready` holds, panicking with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ready() {
        assert!(t.elapsed() < timeout, "{what} not ready after {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `redis-server` of the test's own.
#[derive(Debug)]
pub struct RedisProc {
    /// Its port.
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisProc {
    /// Starts `redis-server` on a free port with `extra` arguments; waits until it answers.
    pub fn start(dir: &Path, extra: &[&str]) -> RedisProc {
        let mut p = RedisProc {
            port: free_port(),
            dir: dir.to_path_buf(),
            args: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        p.restart();
        p
    }

    /// Starts it again on the same port (after a kill).
    pub fn restart(&mut self) {
        let dir = self.dir.join(format!("redis-{}", self.port));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (cargo xtask services install)");
        self.child = Some(child);
        let port = self.port;
        wait_until(&format!("redis-server on {port}"), Duration::from_secs(10), || port_open(port));
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP / SIGCONT (a frozen server: connections hang rather than fail).
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }

    /// The URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.kill();
    }
}

/// Any child process, killed when dropped (also when the test panics).
#[derive(Debug)]
pub struct Proc(Option<Child>);

impl Proc {
    /// Spawns `cmd` with its output discarded.
    pub fn spawn(cmd: &mut Command) -> Proc {
        Proc(Some(cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn")))
    }

    /// The pid.
    pub fn id(&self) -> u32 {
        self.0.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL now.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &self.0 {
            let _ = Command::new("kill").args(["-CONT", &c.id().to_string()]).status();
        }
        self.kill();
    }
}

/// A `clickhouse-server` of the test's own (free HTTP and TCP ports, its
/// own data folder), for freezing and killing.
#[derive(Debug)]
pub struct ClickHouseProc {
    /// HTTP port.
    pub http_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl ClickHouseProc {
    /// Starts it; waits (up to 60 s) until `/ping` answers.
    pub fn start(dir: &Path) -> ClickHouseProc {
        let http_port = free_port();
        let dir = dir.join(format!("clickhouse-{http_port}"));
        for sub in ["data", "tmp", "user_files", "format_schemas", "log"] {
            std::fs::create_dir_all(dir.join(sub)).expect("clickhouse dir");
        }
        let d = dir.display();
        let tcp = free_port();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/server.err.log</errorlog><size>10M</size><count>1</count></logger>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <max_connections>64</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <uncompressed_cache_size>33554432</uncompressed_cache_size>
    <mark_cache_size>33554432</mark_cache_size>
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
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"#;
        std::fs::write(dir.join("config.xml"), config).expect("config.xml");
        std::fs::write(dir.join("users.xml"), users).expect("users.xml");
        let mut p = ClickHouseProc { http_port, dir, child: None };
        p.restart();
        p
    }

    /// Starts it again on the same ports and data (after a kill).
    pub fn restart(&mut self) {
        let child = Command::new("clickhouse-server")
            .arg(format!("--config-file={}", self.dir.join("config.xml").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("clickhouse-server must be installed (cargo xtask services install)");
        self.child = Some(child);
        let port = self.http_port;
        wait_until(&format!("clickhouse-server on {port}"), Duration::from_secs(60), || http_ok(port));
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP / SIGCONT.
    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }

    /// The HTTP URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

impl Drop for ClickHouseProc {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.kill();
    }
}

/// Whether `GET /ping` answers `Ok.` (ClickHouse is up).
fn http_ok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.contains("Ok.")
}
