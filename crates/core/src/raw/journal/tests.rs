//! The journal's tests: claims, adoption (isolated per orphan, the legacy
//! journal only once closed), checkpoints and litter.

use super::*;

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sqdata-journal-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn two_writers_never_share_a_file_and_a_gone_one_is_adopted_once() {
    let dir = tmp("adopt");
    let mut a = Journal::open(&dir, "deals", 0).unwrap();
    let mut b = Journal::open(&dir, "deals", 0).unwrap();
    assert_ne!(a.path(), b.path());
    a.append(&["a1"]).unwrap();
    let ends = b.append(&["b1", "b2"]).unwrap();
    b.checkpoint(ends[0]).unwrap(); // b1 applied, b2 not
    // a live writer's journal is never taken
    let c = Journal::open(&dir, "deals", 0).unwrap();
    assert!(c.pending::<String>().unwrap().is_empty());
    drop(b);
    let mut d = Journal::open(&dir, "deals", 0).unwrap();
    let got: Vec<String> = d.pending::<String>().unwrap().into_iter().map(|(_, s)| s).collect();
    assert_eq!(got, vec!["b2"], "exactly the gone writer's unapplied entry");
    assert_eq!(d.adopt_orphans().unwrap(), 0, "nothing adopted twice");
    // an older version's shared journal (no lock file) is adopted too
    std::fs::write(dir.join("deals.journal"), b"\"old\"\n\"tor").unwrap();
    assert_eq!(d.adopt_orphans().unwrap(), 1, "the torn tail is not an entry");
    assert!(!dir.join("deals.journal").exists());
    drop((a, c, d));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checkpoint_resets_and_read_after_offsets() {
    let dir = tmp("ckpt");
    let mut j = Journal::open(&dir, "positions", 0).unwrap();
    let ends = j.append(&[1u32, 2, 3]).unwrap();
    assert_eq!(j.read_after::<u32>(ends[0]).unwrap().into_iter().map(|(_, v)| v).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(j.pending_bytes(), j.len());
    j.checkpoint(*ends.last().unwrap()).unwrap();
    assert_eq!((j.len(), j.pending_bytes()), (0, 0), "fully applied: starts over");
    j.append(&[4u32]).unwrap();
    let path = j.path().to_path_buf();
    drop(j);
    // another stem's orphan is not ours
    let k = Journal::open(&dir, "deals", 0).unwrap();
    assert!(k.pending::<u32>().unwrap().is_empty());
    assert!(path.exists());
    drop(k);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Writes a file into `dir` (created if missing).
fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn values(j: &Journal) -> Vec<String> {
    j.pending::<String>().unwrap().into_iter().map(|(_, s)| s).collect()
}

/// An older version's process still appends to `<stem>.journal` (it took
/// no lock and reads it by path): nobody takes it from under it; once it
/// is closed it is adopted whole.
#[cfg(target_os = "linux")]
#[test]
fn a_legacy_journal_still_open_is_kept_until_closed() {
    let dir = tmp("legacy");
    write(&dir, "deals.journal", b"\"old1\"\n");
    // the older process (its open file is what the scan finds, whichever process holds it)
    let mut writer = OpenOptions::new().append(true).open(dir.join("deals.journal")).unwrap();
    let mut j = Journal::open(&dir, "deals", 0).unwrap();
    assert!(values(&j).is_empty(), "taken from a running older version");
    assert!(dir.join("deals.journal").exists());
    writer.write_all(b"\"old2\"\n").unwrap();
    assert_eq!(j.adopt_orphans().unwrap(), 0);
    drop(writer);
    assert_eq!(j.adopt_orphans().unwrap(), 2, "closed: adopted with what was appended meanwhile");
    assert_eq!(values(&j), vec!["old1", "old2"]);
    assert!(!dir.join("deals.journal").exists());
    drop(j);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One orphan that cannot be taken (its lock file cannot be opened: a
/// folder here, another user's file in a shared folder alike) stops
/// neither the open nor the adoption of the others, and the count of what
/// was adopted survives it.
#[test]
fn one_orphan_that_cannot_be_taken_stops_nothing() {
    let dir = tmp("isolate");
    write(&dir, "deals-424242-0.journal", b"\"x\"\n");
    std::fs::create_dir_all(dir.join("deals-424242-0.lock")).unwrap();
    write(&dir, "deals-424243-0.journal", b"\"y\"\n");
    let mut j = Journal::open(&dir, "deals", 0).expect("someone else's orphan fails no open");
    assert_eq!(values(&j), vec!["y"]);
    write(&dir, "deals-424244-0.journal", b"\"z1\"\n\"z2\"\n");
    let r = j.adopt().unwrap();
    assert_eq!((r.entries, r.journals), (2, 1));
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].0, dir.join("deals-424242-0.journal"));
    assert!(dir.join("deals-424242-0.journal").exists(), "left for a later round");
    // a name of this pid that cannot be claimed is skipped
    std::fs::create_dir_all(dir.join(format!("deals-{}-1.lock", std::process::id()))).unwrap();
    let k = Journal::open(&dir, "deals", 0).unwrap();
    assert!(k.path().ends_with(format!("deals-{}-2.journal", std::process::id())), "{}", k.path().display());
    drop((j, k));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A checkpoint left without its journal (a crash between the removals)
/// is not inherited by the next journal of that name (pid reuse: PID 1 in
/// a container): its entries are replayed after a crash.
#[test]
fn a_stale_checkpoint_is_not_inherited() {
    let dir = tmp("stale");
    let name = format!("deals-{}-0", std::process::id());
    write(&dir, &format!("{name}.checkpoint"), b"4096");
    let mut j = Journal::open(&dir, "deals", 0).unwrap();
    assert!(j.path().ends_with(format!("{name}.journal")));
    assert_eq!(j.applied(), 0);
    j.append(&["e1", "e2"]).unwrap();
    drop(j); // as a crash: nothing applied, the files stay
    let j = Journal::open(&dir, "deals", 0).unwrap();
    assert!(j.path().ends_with(format!("{name}.journal")));
    assert_eq!(values(&j), vec!["e1", "e2"], "counted as applied by the stale checkpoint");
    drop(j);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Lock and checkpoint files with no journal beside them go once their lock
/// can be taken (a held one is a journal being claimed), and checkpoint
/// temp files once older than a minute; other stems' files stay.
#[test]
fn adoption_clears_litter() {
    let dir = tmp("litter");
    let mut j = Journal::open(&dir, "deals", 0).unwrap();
    write(&dir, "deals-777777-0.lock", b"");
    write(&dir, "deals-777777-1.checkpoint", b"12");
    write(&dir, "deals.lock", b"");
    let claiming = try_lock_exclusive(&dir.join("deals-777778-0.lock")).unwrap().unwrap();
    write(&dir, "positions-777777-0.lock", b"");
    let old = dir.join("deals-777777-0.checkpoint.sqdata.777777.3.tmp");
    write(&dir, "deals-777777-0.checkpoint.sqdata.777777.3.tmp", b"1");
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    File::options().write(true).open(&old).unwrap().set_modified(past).unwrap();
    write(&dir, "deals-777777-0.checkpoint.sqdata.777777.4.tmp", b"2");
    let r = j.adopt().unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    for gone in ["deals-777777-0.lock", "deals-777777-1.checkpoint", "deals-777777-1.lock", "deals.lock"] {
        assert!(!dir.join(gone).exists(), "{gone} left behind");
    }
    assert!(!old.exists(), "a stale temp file left behind");
    for kept in ["deals-777778-0.lock", "positions-777777-0.lock", "deals-777777-0.checkpoint.sqdata.777777.4.tmp"] {
        assert!(dir.join(kept).exists(), "{kept} removed");
    }
    drop((claiming, j));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The reset writes the checkpoint "0" before the cut: a crash between
/// them (the file still full) replays applied entries, never loses one.
#[test]
fn a_reset_interrupted_before_the_cut_only_replays() {
    let dir = tmp("reset");
    let mut j = Journal::open(&dir, "deals", 0).unwrap();
    let ends = j.append(&["a", "b"]).unwrap();
    let (path, ckpt) = (j.path().to_path_buf(), j.path().with_extension("checkpoint"));
    j.checkpoint(ends[1]).unwrap();
    assert_eq!(std::fs::read_to_string(&ckpt).unwrap(), "0");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    std::mem::forget(j); // a crash now: the lock goes with the process
    let lock = path.with_extension("lock");
    let _ = std::fs::remove_file(&lock);
    std::fs::write(&path, b"\"a\"\n\"b\"\n").unwrap(); // as if the cut had not happened
    let j = Journal::open(&dir, "deals", 0).unwrap();
    assert_eq!(values(&j), vec!["a", "b"]);
    drop(j);
    std::fs::remove_dir_all(&dir).unwrap();
}
