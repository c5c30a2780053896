//! Atomic replace, safe appends and durable folder creation.
//!
//! The crash argument, once: a file is replaced by writing a temp file with
//! a name no other writer uses (pid + a process-wide sequence) in the same
//! folder, `fdatasync`ing it, renaming it over the target and `fsync`ing the
//! folder. A reader sees the old or the new file, never a mix; after a crash
//! before the rename the old file is intact (the temp file is litter, never
//! read); once [`Durability::Fsync`] returns, the new file survives a power
//! loss. Appends either land whole or are cut back to where they started, so
//! a failed write (disk full) never leaves half a line for the next one to
//! be glued onto.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::{Error, Result};

/// How hard writes try to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// fdatasync the new file and fsync the folder after the rename: an
    /// acknowledged write survives a power loss.
    #[default]
    Fsync,
    /// Atomic rename only: survives a crash of any process, not a power loss.
    Flush,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// A temp name beside `path` that no other writer (process or thread) uses.
pub fn temp_path(path: &Path, tag: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{tag}.{}.{}.tmp", std::process::id(), TMP_SEQ.fetch_add(1, Ordering::Relaxed)));
    PathBuf::from(s)
}

/// The path of the last good version kept beside a file.
pub fn last_good_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".last-good");
    PathBuf::from(s)
}

/// How often the `.last-good` copy is refreshed per file. Replacing it frees
/// the previous copy's blocks, which costs as much as a write; once in this
/// interval keeps a recent good version without taxing every tick.
const LAST_GOOD_EVERY: Duration = Duration::from_secs(10);

/// Keeps the current version of `path` as `<path>.last-good` (a hard link,
/// no copy) when the copy there is older than [`LAST_GOOD_EVERY`].
fn refresh_last_good(path: &Path) -> io::Result<()> {
    if !last_good_due(path) {
        return Ok(());
    }
    let lg_tmp = temp_path(path, "lastgood");
    match fs::hard_link(path, &lg_tmp) {
        Ok(()) => fs::rename(&lg_tmp, last_good_path(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn last_good_due(path: &Path) -> bool {
    if !path.exists() {
        return false;
    }
    match fs::metadata(last_good_path(path)).and_then(|m| m.modified()) {
        Ok(t) => t.elapsed().map(|e| e >= LAST_GOOD_EVERY).unwrap_or(true),
        Err(_) => true,
    }
}

/// Replaces `path` with `data` atomically (see the module docs); the folder
/// must exist. Returns the new file's metadata.
pub fn replace_atomic(path: &Path, data: &[u8], durability: Durability) -> Result<Metadata> {
    let mut m = replace_many(&[(path, data)], durability, false)?;
    Ok(m.remove(0))
}

/// [`replace_atomic`] for several files with one folder fsync per folder:
/// every temp file is written and synced first, then renamed in the order
/// given. Each file is replaced atomically; a crash between two renames
/// leaves the earlier files new and the later ones old. With
/// `keep_last_good`, the current version of each file is kept as
/// `<path>.last-good` (a hard link, no copy) at most every 10 s.
pub fn replace_many(files: &[(&Path, &[u8])], durability: Durability, keep_last_good: bool) -> Result<Vec<Metadata>> {
    let mut staged: Vec<(PathBuf, File)> = Vec::with_capacity(files.len());
    let cleanup = |staged: &[(PathBuf, File)]| {
        for (t, _) in staged {
            let _ = fs::remove_file(t);
        }
    };
    for (path, data) in files {
        let tmp = temp_path(path, "sqdata");
        let r = (|| -> io::Result<File> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(data)?;
            Ok(f)
        })();
        match r {
            Ok(f) => staged.push((tmp, f)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                cleanup(&staged);
                return Err(Error::io(path, e));
            }
        }
    }
    if durability == Durability::Fsync {
        for ((_, f), (path, _)) in staged.iter().zip(files) {
            if let Err(e) = f.sync_data() {
                cleanup(&staged);
                return Err(Error::io(path, e));
            }
        }
    }
    let mut out = Vec::with_capacity(files.len());
    let mut dirs: Vec<&Path> = Vec::new();
    for (i, ((tmp, f), (path, _))) in staged.iter().zip(files).enumerate() {
        let r = (|| -> io::Result<Metadata> {
            if keep_last_good {
                refresh_last_good(path)?;
            }
            fs::rename(tmp, path)?;
            f.metadata()
        })();
        match r {
            Ok(m) => out.push(m),
            Err(e) => {
                cleanup(&staged[i..]);
                return Err(Error::io(path, e));
            }
        }
        let dir = parent(path);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    if durability == Durability::Fsync {
        for dir in dirs {
            sync_dir(dir)?;
        }
    }
    Ok(out)
}

/// The spares of a file for [`replace_many_recycling`]: `<dir>/.<name>.sqdata-spare-{0,1}`.
pub fn spare_paths(path: &Path) -> [PathBuf; 2] {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    [0, 1].map(|k| parent(path).join(format!(".{name}.sqdata-spare-{k}")))
}

/// How long a retired version rests before it is written over as a new
/// one: a reader that opened it just before it was replaced has this long
/// to finish reading it (sqdata's readers check and retry anyway). Two
/// spares alternate, so back-to-back writes still find a rested one.
pub const SPARE_REST: Duration = Duration::from_micros(500);

/// [`replace_many`] with [`Durability::Flush`] for a file rewritten many
/// times a second (the caller makes it durable some other way: a
/// write-ahead log). Each file is still replaced by a rename — readers see
/// the old or the new version — but the new version is written in place
/// into a version an earlier replace retired (a spare), not into a new
/// file: no inode is created or freed per write, which on ext4 spares the
/// block allocation and writeback a rename over a fresh file starts, and a
/// discard per freed inode. A spare is used only when nothing else links to
/// it (a `.last-good` copy does) and it has rested [`SPARE_REST`];
/// otherwise a new temp file is written as before. After a power loss a
/// file replaced this way may hold an older or a torn version: only for
/// writes a log can replay.
pub fn replace_many_recycling(files: &[(&Path, &[u8])], keep_last_good: bool) -> Result<Vec<Metadata>> {
    use std::os::unix::fs::{FileExt, MetadataExt};
    struct Staged {
        path: PathBuf,
        file: File,
        /// Which spare slot it was (and the retired version goes to), or a temp file.
        slot: Option<usize>,
    }
    let cleanup = |staged: &[Staged]| {
        for st in staged.iter().filter(|st| st.slot.is_none()) {
            let _ = fs::remove_file(&st.path);
        }
    };
    let now = std::time::SystemTime::now();
    let retired_at =
        |m: &Metadata| std::time::UNIX_EPOCH + Duration::new(m.ctime().max(0) as u64, m.ctime_nsec() as u32);
    let mut staged: Vec<Staged> = Vec::with_capacity(files.len());
    for (path, data) in files {
        let spares = spare_paths(path);
        // the rested spare retired longest ago
        let mut best: Option<(usize, File, std::time::SystemTime)> = None;
        for (k, sp) in spares.iter().enumerate() {
            let Ok(f) = OpenOptions::new().write(true).open(sp) else { continue };
            let Ok(m) = f.metadata() else { continue };
            let at = retired_at(&m);
            let rested = now.duration_since(at).is_ok_and(|d| d >= SPARE_REST);
            if m.is_file() && m.nlink() == 1 && rested && best.as_ref().is_none_or(|b| at < b.2) {
                best = Some((k, f, at));
            }
        }
        let r = match best {
            Some((k, f, _)) => f.write_all_at(data, 0).and_then(|_| f.set_len(data.len() as u64)).map(|_| Staged {
                path: spares[k].clone(),
                file: f,
                slot: Some(k),
            }),
            None => {
                let tmp = temp_path(path, "sqdata");
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .and_then(|mut f| f.write_all(data).map(|_| f))
                    .map(|f| Staged { path: tmp.clone(), file: f, slot: None })
                    .inspect_err(|_| {
                        let _ = fs::remove_file(&tmp);
                    })
            }
        };
        match r {
            Ok(st) => staged.push(st),
            Err(e) => {
                cleanup(&staged);
                return Err(Error::io(path, e));
            }
        }
    }
    let mut out = Vec::with_capacity(files.len());
    for (i, (st, (path, _))) in staged.iter().zip(files).enumerate() {
        let r = (|| -> io::Result<Metadata> {
            if keep_last_good {
                refresh_last_good(path)?;
            }
            // The version being replaced becomes a spare: linked first, so
            // it is never freed (and never half there). It takes the slot
            // just used, or the slot retired longest ago.
            let spares = spare_paths(path);
            let slot = st.slot.unwrap_or_else(|| {
                let age = |p: &Path| fs::metadata(p).map(|m| retired_at(&m)).ok();
                match (age(&spares[0]), age(&spares[1])) {
                    (None, _) => 0,
                    (_, None) => 1,
                    (Some(a), Some(b)) => usize::from(b < a),
                }
            });
            let next = temp_path(&spares[slot], "next");
            let kept = match fs::hard_link(path, &next) {
                Ok(()) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            fs::rename(&st.path, path)?;
            if kept {
                fs::rename(&next, &spares[slot])?;
            }
            st.file.metadata()
        })();
        match r {
            Ok(m) => out.push(m),
            Err(e) => {
                cleanup(&staged[i..]);
                return Err(Error::io(path, e));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod recycling_tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn versions_are_recycled_between_two_spares_and_a_linked_one_is_never_written() {
        let dir = std::env::temp_dir().join(format!("sqdata-raw-recycle-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("max_price.json");
        let mut inodes = std::collections::BTreeSet::new();
        for k in 0..40u32 {
            let text = format!("{{\"v\": {k}}}").repeat((k % 3 + 1) as usize);
            replace_many_recycling(&[(&p, text.as_bytes())], true).unwrap();
            assert_eq!(fs::read_to_string(&p).unwrap(), text);
            inodes.insert(fs::metadata(&p).unwrap().ino());
            std::thread::sleep(SPARE_REST);
        }
        // the last-good copy (hard-linked on the first write) kept its bytes
        // although its inode was a retired version
        assert_eq!(fs::read_to_string(last_good_path(&p)).unwrap(), "{\"v\": 0}");
        // a handful of inodes for 40 versions: the first, the two spares' and the current one's
        assert!(inodes.len() <= 5, "{} inodes for 40 writes", inodes.len());
        let names: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "no temp file left: {names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Appends `data` to `path` (created if missing; its folder fsync'd then),
/// fdatasync'd with [`Durability::Fsync`]. A write or sync that fails cuts
/// the file back to its length before the call, so no partial record stays
/// behind. Returns the file's metadata after the append.
pub fn append(path: &Path, data: &[u8], durability: Durability) -> Result<Metadata> {
    let existed = path.exists();
    let mut f = OpenOptions::new().append(true).create(true).open(path).map_err(|e| Error::io(path, e))?;
    let before = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let r = f.write_all(data).and_then(|_| if durability == Durability::Fsync { f.sync_data() } else { Ok(()) });
    if let Err(e) = r {
        cut_back(&f, before);
        return Err(Error::io(path, e));
    }
    if !existed && durability == Durability::Fsync {
        sync_dir(parent(path))?;
    }
    f.metadata().map_err(|e| Error::io(path, e))
}

/// After a failed append: back to `len` (best effort — the failure is what
/// the caller hears about).
pub(crate) fn cut_back(f: &File, len: u64) {
    if f.metadata().map(|m| m.len() > len).unwrap_or(false) {
        let _ = f.set_len(len);
        let _ = f.sync_data();
    }
}

/// fsyncs a folder, so the names created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Creates `dir` and its missing parents, fsyncing each parent whose entry
/// list changed, so the folder is still there after a power loss.
pub fn create_dir_all_synced(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut p = dir;
    while !p.as_os_str().is_empty() && !p.exists() {
        missing.push(p);
        match p.parent() {
            Some(q) => p = q,
            None => break,
        }
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for m in missing.iter().rev() {
        sync_dir(parent(m))?;
    }
    Ok(())
}

/// Removes a file if it exists.
pub fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The complete-line prefix of `bytes`: up to and including the last `\n`.
/// A line without its newline was being written when its writer stopped
/// and was never acknowledged.
pub fn complete_lines(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b == b'\n').map(|i| i + 1).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_last_good_and_leaves_no_temp_files() {
        let dir = std::env::temp_dir().join(format!("sqdata-raw-fs-{}-{}", std::process::id(), line!()));
        create_dir_all_synced(&dir).unwrap();
        let p = dir.join("a.json");
        replace_many(&[(&p, b"1")], Durability::Fsync, true).unwrap();
        assert!(!last_good_path(&p).exists());
        replace_many(&[(&p, b"2")], Durability::Fsync, true).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"2");
        assert_eq!(fs::read(last_good_path(&p)).unwrap(), b"1");
        replace_atomic(&p, b"3", Durability::Flush).unwrap();
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn complete_lines_cuts_a_torn_tail() {
        assert_eq!(complete_lines(b""), 0);
        assert_eq!(complete_lines(b"abc"), 0);
        assert_eq!(complete_lines(b"a\nb"), 2);
        assert_eq!(complete_lines(b"a\nb\n"), 4);
    }

    #[test]
    fn a_failed_append_leaves_nothing_behind() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let full = Path::new("/dev/full");
        if full.exists() {
            assert!(append(full, b"row\n", Durability::Flush).is_err());
        }
        let dir = std::env::temp_dir().join(format!("sqdata-raw-append-{}", std::process::id()));
        create_dir_all_synced(&dir).unwrap();
        let p = dir.join("log.csv");
        append(&p, b"a\n", Durability::Fsync).unwrap();
        let f = OpenOptions::new().append(true).open(&p).unwrap();
        (&f).write_all(b"partial").unwrap();
        cut_back(&f, 2);
        assert_eq!(fs::read(&p).unwrap(), b"a\n");
        fs::remove_dir_all(&dir).unwrap();
    }
}
