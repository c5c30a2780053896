//! The `sqdata` binary as the API fuzzer and the browser tests drive it:
//! one CLI call, a `sqdata serve` on a free port, a child process ended
//! when its guard drops.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::util;

/// A process ended (killed, then reaped) when dropped.
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `sqdata <args>` in `dir` (its own config there), `stdin` fed in;
/// its stdout, or its stderr as the error.
pub(crate) fn sqdata(bin: &Path, dir: &Path, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut c = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env_remove("SQDATA_CONFIG")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", bin.display()))?;
    if let Some(s) = stdin {
        c.stdin.take().context("stdin")?.write_all(s.as_bytes())?;
    }
    let o = c.wait_with_output()?;
    if !o.status.success() {
        bail!("sqdata {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// A free port on 127.0.0.1.
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `sqdata serve` on a free port over `dir` (its log in `dir/serve.log`),
/// once `/healthz` answers.
pub(crate) fn serve(bin: &Path, dir: &Path) -> Result<(Guard, u16)> {
    let port = free_port()?;
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let g = Guard(
        Command::new(bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .env_remove("SQDATA_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    util::wait_for("sqdata serve", Duration::from_secs(60), || util::http_get(port, "/healthz").is_some())
        .with_context(|| format!("see {}", dir.join("serve.log").display()))?;
    Ok((g, port))
}
