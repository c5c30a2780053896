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
