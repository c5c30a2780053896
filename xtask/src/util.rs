//! Helpers the test services share, whoever runs them (a local process or a
//! container): the folder they keep their state in, the small TCP / HTTP /
//! `redis-cli` probes that tell whether a server answers, and waiting until
//! one does.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Where services keep their data, logs, pid files and virtualenvs.
pub(crate) fn base() -> PathBuf {
    if let Some(d) = std::env::var_os("SQDATA_SERVICES_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("sqdata").join("services")
}

pub(crate) fn port_open(port: u16) -> bool {
    ("127.0.0.1", port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_millis(300)).is_ok())
}

pub(crate) fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not become ready within {timeout:?} (logs under {})", base().display())
}

pub(crate) fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", &port.to_string()]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(crate) fn redis_ping(port: u16) -> bool {
    redis_cli(port, &["ping"]).is_some_and(|s| s.trim() == "PONG")
}

pub(crate) fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    Some(buf)
}

/// Creates a bucket on the local S3 test server (moto takes unsigned
/// requests); an existing bucket is fine.
pub(crate) fn create_bucket(endpoint: &str, bucket: &str) -> Result<()> {
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(hostport).with_context(|| format!("S3 server at {endpoint}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "PUT /{bucket} HTTP/1.0\r\nHost: {hostport}\r\nContent-Length: 0\r\n\r\n")?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    if !(buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200") || buf.contains("BucketAlreadyOwnedByYou"))
    {
        bail!("creating bucket {bucket} at {endpoint}: {}", buf.lines().next().unwrap_or_default());
    }
    Ok(())
}
