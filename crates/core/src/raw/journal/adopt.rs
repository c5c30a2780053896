//! What adoption needs beyond the journal itself: whether a legacy journal
//! is still open in some process, which temp files are crash litter, and
//! warnings that a periodic caller does not repeat.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A checkpoint temp file older than this was left by a crash (a live
/// writer renames it within milliseconds).
const STALE_TEMP: Duration = Duration::from_secs(60);

/// How long a legacy journal found open is not looked at again (the scan
/// reads every process's open files).
const LEGACY_RECHECK: Duration = if cfg!(test) { Duration::ZERO } else { Duration::from_secs(5) };

/// Logs `message` about `path` as a warning unless it was logged already in
/// this process (adoption runs periodically).
pub(super) fn warn_once(path: &Path, message: &str) {
    static SEEN: Mutex<Option<HashSet<(PathBuf, String)>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert((path.to_path_buf(), message.to_string())) {
        tracing::warn!(path = %path.display(), "{message}");
    }
}

/// Whether the legacy journal at `path` may be adopted: no process has it
/// open. An older sqdata version writes it without a lock and reads it by
/// path; taking it from under a running one would leave that process
/// appending to a removed file. Kept (with a warning, once) while a process
/// has it open or when that cannot be known.
pub(super) fn legacy_unused(path: &Path) -> bool {
    static KEPT: Mutex<Option<HashMap<PathBuf, Instant>>> = Mutex::new(None);
    let recent = |kept: &mut Option<HashMap<PathBuf, Instant>>| {
        kept.get_or_insert_with(HashMap::new).get(path).is_some_and(|t| t.elapsed() < LEGACY_RECHECK)
    };
    if recent(&mut KEPT.lock().unwrap_or_else(|p| p.into_inner())) {
        return false;
    }
    let message = match open_anywhere(path) {
        Ok(false) => return true,
        Ok(true) => "a process (an older sqdata version) still has this journal open: kept until it closes".to_string(),
        Err(e) => format!("cannot tell whether a process still has this journal open ({e}): kept"),
    };
    warn_once(path, &message);
    KEPT.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(path.to_path_buf(), Instant::now());
    false
}

/// Whether any process (this one included) has the file at `path` open: a
/// scan of `/proc/*/fd`. Processes this one may not look into are skipped
/// when they run as another user than the file's owner (they are not its
/// writer); one running as the owner makes the answer unknown (an error).
#[cfg(target_os = "linux")]
fn open_anywhere(path: &Path) -> std::io::Result<bool> {
    use std::io::ErrorKind::NotFound;
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    let key = (m.dev(), m.ino());
    let name = path.file_name().map(|n| n.as_encoded_bytes().to_vec()).unwrap_or_default();
    for p in std::fs::read_dir("/proc")? {
        let p = p?;
        if !p.file_name().to_str().is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let fds = match std::fs::read_dir(p.path().join("fd")) {
            Ok(fds) => fds,
            Err(e) if e.kind() == NotFound => continue, // exited meanwhile
            Err(e) => match std::fs::metadata(p.path()) {
                Ok(pm) if pm.uid() != m.uid() => continue,
                Err(e2) if e2.kind() == NotFound => continue,
                _ => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", p.path().display()))),
            },
        };
        for fd in fds.flatten() {
            // the link names the file (another mount namespace may show
            // another folder; a removed one ends in " (deleted)"): only
            // candidates by name are compared by (device, inode)
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            if target.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(&name))
                && std::fs::metadata(fd.path()).is_ok_and(|fm| (fm.dev(), fm.ino()) == key)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(not(target_os = "linux"))]
fn open_anywhere(_: &Path) -> std::io::Result<bool> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no /proc to look for open files"))
}

/// The journal name whose checkpoint `fname` is a temp file of
/// (`<name>.checkpoint.<tag>.<pid>.<seq>.tmp`, see `fs::temp_path`).
pub(super) fn checkpoint_temp_of(fname: &str) -> Option<&str> {
    fname.strip_suffix(".tmp")?.split_once(".checkpoint.").map(|(name, _)| name)
}

/// Removes the temp file at `path` if it is older than a minute.
pub(super) fn remove_if_stale(path: &Path) -> Result<()> {
    let m = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let age = m.modified().ok().and_then(|t| t.elapsed().ok()).unwrap_or_default();
    if age < STALE_TEMP {
        return Ok(());
    }
    super::remove_if_exists(path)
}
