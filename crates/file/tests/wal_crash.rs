//! The positions write-ahead log under crashes: a writer process is aborted
//! (as SIGKILL leaves it: no unwinding, nothing flushed) at every step of a
//! write and of a checkpoint, or SIGKILLed at a random moment; then the
//! folder is read by new processes — one in the same boot, one pretending
//! the machine rebooted with the unsynced file renames lost. Each time the
//! files hold at least the last acknowledged write (and at most the one
//! after it, which was in flight), parse as SilverQuant's, and the log
//! ends empty.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sqdata_core::{BookId, Code, PositionStore, PriceTick};
use sqdata_file::{FileConfig, FileStore};

const CHILD: &str = "SQDATA_WAL_CHILD";
/// The test whose binary run plays the children.
const HOST: &str = "a_crash_at_every_step_of_a_write_loses_no_acknowledged_write";
const POSITIONS: u32 = 50;
const WRITES: u32 = 60;

fn book() -> BookId {
    BookId::new("55009728", "wal").unwrap()
}

fn code(i: u32) -> Code {
    format!("{:06}.SZ", i + 1).parse().unwrap()
}

/// Write `k` moves code 0's high to `10 + k/100` and code 1's low to `10 - k/100`.
fn tick(k: u32) -> Vec<PriceTick> {
    vec![
        PriceTick { code: code(0), high: 10.0 + f64::from(k) / 100.0, low: 9.0 },
        PriceTick { code: code(1), high: 10.0, low: 10.0 - f64::from(k) / 100.0 },
    ]
}

fn cfg(root: &Path, wal_bytes: u64) -> FileConfig {
    FileConfig { wal_bytes, checkpoint_ms: 3_600_000, ..FileConfig::at(root) }
}

/// The child roles, played by the test binary started again with `CHILD`
/// set (each test first checks): `write|<root>|<wal bytes>` acknowledges
/// WRITES writes, one `ACK k` line each; `read|<root>` prints the state a new
/// process sees; `open|<root>` only opens the store.
fn child_role() -> bool {
    let Ok(arg) = std::env::var(CHILD) else { return false };
    let parts: Vec<&str> = arg.split('|').collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async {
        match parts[0] {
            "write" => {
                let s = FileStore::open(cfg(Path::new(parts[1]), parts[2].parse().unwrap())).unwrap();
                let pace = std::env::var("SQDATA_WAL_PACE_MS").ok().map(|v| Duration::from_millis(v.parse().unwrap()));
                for k in 1..=WRITES {
                    if let Err(e) = s.update_extremes(&book(), &tick(k)).await {
                        // reported failed: leave at once, as a crash would (no checkpoint on drop)
                        println!("FAIL {k} {e}");
                        std::process::exit(0);
                    }
                    println!("ACK {k}");
                    if let Some(p) = pace {
                        std::thread::sleep(p);
                    }
                }
                // a clean end leaves the log to the store's drop
            }
            "read" => {
                let s = FileStore::open(cfg(Path::new(parts[1]), 4 << 20)).unwrap();
                let snap = s.snapshot(&book()).await.unwrap();
                let e0 = &snap.positions[&code(0)];
                let e1 = &snap.positions[&code(1)];
                println!(
                    "STATE {} {} {}",
                    e0.max_price.unwrap(),
                    e1.min_price.unwrap(),
                    snap.positions.values().filter(|e| e.is_held()).count()
                );
            }
            "open" => {
                // opening alone recovers the books of an earlier boot
                drop(FileStore::open(cfg(Path::new(parts[1]), 4 << 20)).unwrap());
                println!("OPENED");
            }
            other => panic!("unknown child mode {other}"),
        }
    });
    true
}

fn run_child(mode: &str, env: &[(&str, String)]) -> (Vec<String>, std::process::ExitStatus) {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", HOST, "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .env_remove("SQDATA_FAILPOINT")
        .env_remove("SQDATA_TEST_BOOT_ID")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("spawn the child");
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
    (lines, child.wait().unwrap())
}

fn last_ack(lines: &[String]) -> u32 {
    // the first line shares its start with the harness's "test child ... "
    lines.iter().filter_map(|l| l.rsplit_once("ACK ")).map(|(_, k)| k.trim().parse().unwrap()).max().unwrap_or(0)
}

/// (code 0's max, code 1's min, held count) as a new process reads them.
fn read_state(root: &Path, boot: Option<&str>) -> (f64, f64, usize) {
    let env: Vec<(&str, String)> = boot.map(|b| vec![("SQDATA_TEST_BOOT_ID", b.to_owned())]).unwrap_or_default();
    let (lines, status) = run_child(&format!("read|{}", root.display()), &env);
    assert!(status.success(), "the reader failed: {status:?} {lines:?}");
    let l = lines
        .iter()
        .find_map(|l| l.split_once("STATE ").map(|(_, v)| v))
        .unwrap_or_else(|| panic!("no state: {lines:?}"));
    let v: Vec<&str> = l.split(' ').collect();
    (v[0].parse().unwrap(), v[1].parse().unwrap(), v[2].parse().unwrap())
}

/// The write number a state shows (from code 0's max; code 1's min agrees).
fn write_no(state: (f64, f64, usize)) -> u32 {
    let k = ((state.0 - 10.0) * 100.0).round() as u32;
    assert_eq!(((10.0 - state.1) * 100.0).round() as u32, k, "max and min from the same write: {state:?}");
    assert_eq!(state.2, POSITIONS as usize, "every position still held: {state:?}");
    k
}

async fn seed(root: &Path, wal_bytes: u64) {
    let s = FileStore::open(cfg(root, wal_bytes)).unwrap();
    let codes: Vec<Code> = (0..POSITIONS).map(code).collect();
    s.new_held(&book(), &codes).await.unwrap();
    let ticks: Vec<PriceTick> = codes.iter().map(|&c| PriceTick { code: c, high: 10.0, low: 10.0 }).collect();
    s.update_extremes(&book(), &ticks).await.unwrap();
}

fn book_dir(root: &Path) -> PathBuf {
    root.join("55009728").join("wal")
}

const FILES: [&str; 3] = ["positions.json", "max_price.json", "min_price.json"];

fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in FILES {
        // as the disk held them: bytes and modification time
        std::fs::copy(from.join(f), to.join(f)).unwrap();
        let mtime = std::fs::metadata(from.join(f)).unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(to.join(f)).unwrap().set_modified(mtime).unwrap();
    }
}

fn log_records(root: &Path) -> usize {
    sqdata_file::wal::Wal::open_existing(&book_dir(root)).unwrap().map_or(0, |w| w.records().unwrap().len())
}

/// One crash case: the writer dies at `point` (`None`: SIGKILL after
/// `kill_after` acknowledgements), then the checks.
async fn case(point: Option<&str>, wal_bytes: u64, power_loss: bool) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    seed(&root, wal_bytes).await;
    let durable = dir.path().join("durable");
    copy_files(&book_dir(&root), &durable);

    let (acked, status) = match point {
        Some(p) => {
            let (lines, status) =
                run_child(&format!("write|{}|{wal_bytes}", root.display()), &[("SQDATA_FAILPOINT", p.to_owned())]);
            assert_eq!(status.signal(), Some(6), "{p}: the writer aborted at the failpoint ({status:?}, {lines:?})");
            (last_ack(&lines), status)
        }
        None => {
            let mut c = Command::new(std::env::current_exe().unwrap());
            let mut child = c
                .args(["--exact", HOST, "--nocapture", "--test-threads=1"])
                .env(CHILD, format!("write|{}|{wal_bytes}", root.display()))
                .env_remove("SQDATA_FAILPOINT")
                .env("SQDATA_WAL_PACE_MS", "5")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut seen = 0;
            let mut line = String::new();
            while seen < 25 {
                line.clear();
                if out.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                seen = last_ack(&[line.trim().to_owned()]).max(seen);
            }
            child.kill().unwrap();
            let rest: Vec<String> = out.lines().map_while(Result::ok).collect();
            let status = child.wait().unwrap();
            (last_ack(&rest).max(seen), status)
        }
    };
    assert!(acked < WRITES, "{point:?}: the writer died before the end ({status:?})");
    let ok = |k: u32, what: &str| {
        assert!(k >= acked && k <= acked + 1, "{point:?} {what}: write {k} shown, {acked} acknowledged");
    };

    if power_loss {
        // The machine went down: the renames since the last checkpoint never
        // reached the disk (the files are as they were synced), the log did.
        copy_files(&durable, &book_dir(&root));
        let (lines, st) =
            run_child(&format!("open|{}", root.display()), &[("SQDATA_TEST_BOOT_ID", "another-boot".to_owned())]);
        assert!(st.success() && lines.iter().any(|l| l.contains("OPENED")), "{lines:?}");
        // what SilverQuant would read now, straight from the file
        let max: serde_json::Value =
            serde_json::from_slice(&std::fs::read(book_dir(&root).join("max_price.json")).unwrap()).unwrap();
        let on_disk = ((max["000001.SZ"].as_f64().unwrap() - 10.0) * 100.0).round() as u32;
        ok(on_disk, "in the file after a store opened");
        let k = write_no(read_state(&root, Some("another-boot")));
        ok(k, "after a reboot");
        // and again in that boot: stable
        assert_eq!(write_no(read_state(&root, Some("another-boot"))), k);
    } else {
        let k = write_no(read_state(&root, None));
        ok(k, "same boot");
        // then a reboot with the files as they are: nothing goes back
        assert_eq!(write_no(read_state(&root, Some("another-boot"))), k, "{point:?}: a replay never regresses");
    }
    assert_eq!(log_records(&root), 0, "{point:?}: recovery leaves the log empty");
}

#[test]
fn a_crash_at_every_step_of_a_write_loses_no_acknowledged_write() {
    // this test's binary also plays the children (see `child_role`)
    if child_role() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        for point in ["wal-torn-record@7", "wal-after-append@7", "wal-after-rename@7"] {
            case(Some(point), 4 << 20, false).await;
            case(Some(point), 4 << 20, true).await;
        }
        // a SIGKILL at whatever moment the 25th acknowledgement was read
        case(None, 4 << 20, false).await;
        case(None, 4 << 20, true).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_inside_a_checkpoint_loses_no_acknowledged_write() {
    // a 64 KiB log holds a few records of this book: checkpoints come often
    for point in ["wal-checkpoint-synced@2", "wal-checkpoint-reset@2", "wal-after-append@13", "wal-torn-record@13"] {
        case(Some(point), sqdata_file::wal::MIN_BYTES, false).await;
    }
}

/// After a power loss the files may hold a torn version, or an older one
/// with a newer mtime (the files are written into recycled versions without
/// syncs): the log's last record wins whatever the file times say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_repairs_a_torn_or_older_file_whatever_its_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    seed(&root, 4 << 20).await;
    let older_min = std::fs::read(book_dir(&root).join("min_price.json")).unwrap();
    // a writer that dies with its last write logged and applied
    let (lines, _) = run_child(
        &format!("write|{}|{}", root.display(), 4 << 20),
        &[("SQDATA_FAILPOINT", "wal-after-rename@5".to_owned())],
    );
    assert_eq!(last_ack(&lines), 4);
    // the power loss: max_price.json torn, min_price.json an older version, both "newer" by mtime
    std::thread::sleep(Duration::from_millis(20));
    let p = book_dir(&root).join("max_price.json");
    let full = std::fs::read(&p).unwrap();
    std::fs::write(&p, &full[..full.len() / 2]).unwrap();
    std::fs::write(book_dir(&root).join("min_price.json"), &older_min).unwrap();
    let state = read_state(&root, Some("another-boot"));
    assert_eq!(write_no(state), 5, "the last record, written and applied before the crash");
    assert_eq!(std::fs::read(&p).unwrap(), full);
}

/// A write whose files could not be replaced is reported failed, and after a
/// power loss the log does not bring it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_reported_failed_is_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    seed(&root, 4 << 20).await;
    let durable = dir.path().join("durable");
    copy_files(&book_dir(&root), &durable);
    let (lines, status) = run_child(
        &format!("write|{}|{}", root.display(), 4 << 20),
        &[("SQDATA_FAILPOINT", "wal-replace-error@5".to_owned())],
    );
    assert!(status.success(), "{lines:?}");
    assert_eq!(last_ack(&lines), 4);
    assert!(lines.iter().any(|l| l.contains("FAIL 5")), "{lines:?}");
    // the files as they were synced, a reboot: write 4, not the failed 5
    copy_files(&durable, &book_dir(&root));
    assert_eq!(write_no(read_state(&root, Some("another-boot"))), 4);
}

/// Two processes on one folder: one deletes the book (its log goes with it)
/// while the other still holds the log open; the other's next acknowledged
/// write lands in a log at the book's path, where recovery reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_another_process_deleted_the_book_is_in_the_log_recovery_reads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    seed(&root, 4 << 20).await;
    let (a, b) = (FileStore::open(cfg(&root, 4 << 20)).unwrap(), FileStore::open(cfg(&root, 4 << 20)).unwrap());
    a.update_extremes(&book(), &tick(1)).await.unwrap(); // a holds the log open
    b.delete_book(&book()).await.unwrap();
    assert!(!book_dir(&root).join(sqdata_file::wal::NAME).exists());
    a.new_held(&book(), &[code(0), code(1)]).await.unwrap();
    a.update_extremes(&book(), &tick(2)).await.unwrap();
    let w = sqdata_file::wal::Wal::open_existing(&book_dir(&root)).unwrap().expect("a log at the book's path");
    let last = w.records().unwrap().pop().expect("the acknowledged write is in it");
    let max = String::from_utf8(last.files[1].clone().unwrap()).unwrap();
    assert!(max.contains("10.02"), "{max}");
}
