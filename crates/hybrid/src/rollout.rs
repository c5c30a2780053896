//! Per-account stages: the config's, overridden by a small state file that
//! `sqdata rollout promote|rollback` writes (re-read when it changes), and
//! [`Hybrid::rollback_to_files`].
//!
//! The state file is changed under an exclusive lock (`<file>.lock`, so two
//! `promote`s never lose each other's accounts) and replaced atomically with
//! an fsync, keeping the previous version as `<file>.last-good`. A damaged
//! file never stops a process: it keeps (or starts with) the last good
//! stages and reports the damage, naming both paths.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sqdata_core::raw::{self, Durability};
use sqdata_core::{AccountCode, BookId, Domain, Error, Result};

use crate::config::{HybridConfig, Stage, Truth};
use crate::hybrid::Hybrid;
use crate::verify::{VerifyMode, VerifyOptions, VerifyReport};

/// The rollout state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RolloutState {
    /// Stage of accounts not listed (and of quotes and bars); `None` = the config's.
    pub stage: Option<Stage>,
    /// Per-account stages.
    pub accounts: BTreeMap<String, Stage>,
    /// Per domain, the books the servers hold whole (migrated, promoted or
    /// born on them; `*`: every book, and for bars every series). Until a
    /// book is here its domain is served by the files whatever the stage:
    /// a book the servers never received is never read from them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub adopted: BTreeMap<Domain, std::collections::BTreeSet<String>>,
}

/// The key of a book (or of everything) in [`RolloutState::adopted`].
pub const ALL_BOOKS: &str = "*";

impl RolloutState {
    /// Whether the servers hold `book` (`None`: the whole domain) whole.
    pub fn is_adopted(&self, domain: Domain, book: Option<&BookId>) -> bool {
        let Some(set) = self.adopted.get(&domain) else { return false };
        set.contains(ALL_BOOKS) || book.is_some_and(|b| set.contains(&b.to_string()))
    }
}

impl RolloutState {
    /// Reads the file; a missing file is the empty state. A damaged one is
    /// [`Error::Corrupt`] naming it and its last good copy, when there is one.
    pub fn load(path: &Path) -> Result<RolloutState> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                let lg = raw::fs::last_good_path(path);
                Error::Corrupt {
                    location: path.display().to_string(),
                    reason: e.to_string(),
                    last_good: lg.exists().then(|| lg.display().to_string()),
                }
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RolloutState::default()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The last good copy kept beside a damaged file (`None`: none, or it
    /// is damaged too).
    fn load_last_good(path: &Path) -> Option<RolloutState> {
        let lg = raw::fs::last_good_path(path);
        std::fs::read(lg).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Writes the file atomically and durably, keeping the previous version
    /// as its last good copy. Callers that read-modify-write hold the lock
    /// ([`set_stage`] does).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            raw::create_dir_all_synced(d)?;
        }
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        raw::replace_many(&[(path, &body)], Durability::Fsync, true).map(|_| ())
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Resolves an account's stage.
#[derive(Debug)]
pub(crate) struct Rollout {
    cfg_default: Stage,
    cfg_accounts: BTreeMap<String, Stage>,
    path: PathBuf,
    cache: Mutex<Cache>,
}

/// Which version of the file was read: every save is a rename (a new
/// inode), so (inode, mtime) changes even within one clock tick.
type Stamp = Option<(u64, SystemTime)>;

fn file_stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().and_then(|m| Some((m.ino(), m.modified().ok()?)))
}

#[derive(Debug)]
struct Cache {
    stamp: Stamp,
    state: RolloutState,
    /// What is wrong with the file, while it is damaged.
    damage: Option<String>,
}

impl Rollout {
    /// A damaged state file does not stop the process: it starts with the
    /// last good copy (or the config's stages) and reports the damage.
    pub(crate) fn new(cfg: &HybridConfig) -> Result<Rollout> {
        let stamp = file_stamp(&cfg.rollout_file);
        let (state, damage) = match RolloutState::load(&cfg.rollout_file) {
            Ok(s) => (s, None),
            Err(e @ Error::Corrupt { .. }) => {
                tracing::error!(error = %e, "rollout state damaged; serving with its last good copy");
                (RolloutState::load_last_good(&cfg.rollout_file).unwrap_or_default(), Some(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        Ok(Rollout {
            cfg_default: cfg.stage,
            cfg_accounts: cfg.accounts.clone(),
            path: cfg.rollout_file.clone(),
            cache: Mutex::new(Cache { stamp, state, damage }),
        })
    }

    /// Re-reads the state file now (after this process changed it). A
    /// damaged file keeps the last good state and is reported (`damage`).
    pub(crate) fn refresh(&self) -> Result<()> {
        let stamp = file_stamp(&self.path);
        match RolloutState::load(&self.path) {
            Ok(st) => {
                *self.cache.lock() = Cache { stamp, state: st, damage: None };
                Ok(())
            }
            Err(e) => {
                self.damaged(&e);
                Err(e)
            }
        }
    }

    /// Records that the state file could not be read or changed (the
    /// process keeps its last good state).
    pub(crate) fn damaged(&self, e: &Error) {
        self.cache.lock().damage = Some(e.to_string());
    }

    /// What is wrong with the state file, while it is damaged.
    pub(crate) fn damage(&self) -> Option<String> {
        self.cache.lock().damage.clone()
    }

    /// Whether the servers hold `book` of `domain` whole (see
    /// [`RolloutState::adopted`]); re-read like the stages.
    pub(crate) fn adopted(&self, domain: Domain, book: Option<&BookId>) -> bool {
        self.cache.lock().state.is_adopted(domain, book)
    }

    /// The stage of an account (`None`: quotes and bars).
    /// No I/O: the state as last read (a background task re-reads the
    /// file when it changes, every 200 ms).
    pub(crate) fn stage(&self, account: Option<&AccountCode>) -> Stage {
        let g = self.cache.lock();
        let st = &g.state;
        if let Some(a) = account {
            if let Some(s) = st.accounts.get(a.as_str()) {
                return *s;
            }
            if let Some(s) = self.cfg_accounts.get(a.as_str()) {
                return *s;
            }
        }
        st.stage.unwrap_or(self.cfg_default)
    }

    /// Re-reads the file when it changed (blocking: the hybrid calls it
    /// every 200 ms from the blocking pool).
    pub(crate) fn poll(&self) {
        let stamp = file_stamp(&self.path);
        let mut g = self.cache.lock();
        {
            if stamp != g.stamp {
                g.stamp = stamp;
                match RolloutState::load(&self.path) {
                    Ok(s) => {
                        g.state = s;
                        g.damage = None;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "rollout state unreadable; keeping the last good one");
                        g.damage = Some(e.to_string());
                    }
                }
            }
        }
    }
}

/// The effective stage of every account the config or the state names
/// (`*`: everyone else, and quotes and bars).
pub fn effective_stages(cfg: &HybridConfig) -> Result<BTreeMap<String, Stage>> {
    let st = RolloutState::load(&cfg.rollout_file)?;
    let mut out = BTreeMap::new();
    out.insert("*".to_string(), st.stage.unwrap_or(cfg.stage));
    for a in cfg.accounts.keys().chain(st.accounts.keys()) {
        let s = st.accounts.get(a).or_else(|| cfg.accounts.get(a)).copied().unwrap_or(cfg.stage);
        out.insert(a.clone(), s);
    }
    Ok(out)
}

/// Records that the servers now hold these books of `domain` whole
/// (`None`: every book / the whole domain), under the file's lock.
pub fn adopt(cfg: &HybridConfig, domain: Domain, books: Option<&[BookId]>) -> Result<RolloutState> {
    change(cfg, |st| {
        let set = st.adopted.entry(domain).or_default();
        match books {
            None => {
                set.clear();
                set.insert(ALL_BOOKS.to_string());
            }
            Some(list) => set.extend(list.iter().map(|b| b.to_string())),
        }
        Ok(())
    })
}

/// Forgets that the servers hold these books (a migration rolled back).
pub fn unadopt(cfg: &HybridConfig, domain: Domain, books: Option<&[BookId]>) -> Result<RolloutState> {
    change(cfg, |st| {
        match books {
            None => {
                st.adopted.remove(&domain);
            }
            Some(list) => {
                if let Some(set) = st.adopted.get_mut(&domain) {
                    for b in list {
                        set.remove(&b.to_string());
                    }
                }
            }
        }
        Ok(())
    })
}

/// A read-modify-write of the state file under its lock.
fn change(cfg: &HybridConfig, f: impl FnOnce(&mut RolloutState) -> Result<()>) -> Result<RolloutState> {
    if let Some(d) = cfg.rollout_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        raw::create_dir_all_synced(d)?;
    }
    let _lock = raw::lock_exclusive(&lock_path(&cfg.rollout_file))?;
    let mut st = RolloutState::load(&cfg.rollout_file)?;
    f(&mut st)?;
    st.save(&cfg.rollout_file)?;
    Ok(st)
}

/// Sets the stage of `accounts` (`None`: everyone, including accounts the
/// config pins) in the state file, which running processes re-read within
/// 200 ms. Returns the new state.
pub fn set_stage(cfg: &HybridConfig, accounts: Option<&[String]>, stage: Stage) -> Result<RolloutState> {
    change(cfg, |st| set_stages(cfg, st, accounts, stage))
}

fn set_stages(cfg: &HybridConfig, st: &mut RolloutState, accounts: Option<&[String]>, stage: Stage) -> Result<()> {
    match accounts {
        Some(list) => {
            for a in list {
                AccountCode::new(a)?;
                st.accounts.insert(a.clone(), stage);
            }
        }
        None => {
            st.stage = Some(stage);
            let names: Vec<String> = cfg.accounts.keys().chain(st.accounts.keys()).cloned().collect();
            for a in names {
                st.accounts.insert(a, stage);
            }
        }
    }
    Ok(())
}

/// What `rollback_to_files` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackReport {
    /// The copy from the primary into the files (`None`: skipped).
    pub synced: Option<VerifyReport>,
    /// What was skipped and why.
    pub notes: Vec<String>,
    /// Domains whose copy back was refused, with the reason: journaled
    /// writes (of any process on the folder) the server has not seen, so
    /// the files are ahead of it and a copy would undo them (a sold
    /// position back). The switch to the files happens all the same.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub refused: BTreeMap<Domain, String>,
    /// The rollout state written.
    pub state: RolloutState,
    /// Wall time, sync included.
    pub elapsed_ms: u64,
}

impl Hybrid {
    /// `sqdata rollout rollback`: brings the files up to date from the
    /// primary (where no process on the folder has journaled writes the
    /// primary has not seen, i.e. it is not behind), then returns
    /// `accounts` (`None`: everyone) to the files stage.
    /// Every acknowledged write is already in the files (writes succeed
    /// only when the files took them), so a primary that cannot be reached
    /// does not stop the rollback: it is reported and skipped. The copy
    /// only adds and updates: what only the files hold is kept (and
    /// counted) unless `prune`.
    pub async fn rollback_to_files(&self, accounts: Option<&[String]>, prune: bool) -> Result<RollbackReport> {
        let t = Instant::now();
        let mut domains = Vec::new();
        let mut notes = Vec::new();
        let mut refused = BTreeMap::new();
        for d in Domain::DURABLE {
            if !self.active_domains().contains(&d) {
                continue;
            }
            if let Some(why) = self.behind(d).await? {
                notes.push(why.clone());
                refused.insert(d, why);
            } else {
                domains.push(d);
            }
        }
        let opts = VerifyOptions {
            mode: VerifyMode::Full,
            repair: true,
            truth: Truth::Primary,
            domains,
            accounts: accounts.map(|a| a.to_vec()),
            prune,
            ..VerifyOptions::default()
        };
        let synced = match self.verify(&opts).await {
            Ok(r) => Some(r),
            Err(e) if e.is_retryable() => {
                notes.push(format!(
                    "primary unreachable ({e}); the files hold every acknowledged write, switching without a copy"
                ));
                None
            }
            Err(e) => return Err(e),
        };
        let state = set_stage(self.config(), accounts, Stage::Files)?;
        self.refresh_rollout()?;
        Ok(RollbackReport { synced, notes, refused, state, elapsed_ms: t.elapsed().as_millis() as u64 })
    }

    /// Why the primary is behind the files for `d`, if it is: journals of
    /// any process on the folder (this one's, live ones', those left by
    /// processes that are gone, an older version's shared one) with entries
    /// past their checkpoint, or units this process keeps in memory. This
    /// process replays its own first when the primary answers.
    async fn behind(&self, d: Domain) -> Result<Option<String>> {
        if self.lane(d).mode() == crate::domain::Mode::Degraded && self.probe(d).await.is_ok() {
            let _ = self.recover(d).await;
        }
        let dir = self.config().journal_dir.clone();
        let pending =
            tokio::task::spawn_blocking(move || crate::journal::pending_journals(&dir, d)).await.map_err(|e| {
                Error::Backend {
                    backend: "hybrid",
                    message: format!("journal scan failed: {e}"),
                    retryable: true,
                    source: None,
                }
            })??;
        let kept = self.lane(d).unjournaled.lock().len();
        if pending.is_empty() && kept == 0 {
            return Ok(None);
        }
        let mut what: Vec<String> =
            pending.iter().map(|(p, n)| format!("{} ({n} bytes not replayed)", p.display())).collect();
        if kept > 0 {
            what.push(format!("{kept} units kept in this process's memory"));
        }
        Ok(Some(format!(
            "{d}: copy back from the server refused: journaled writes it has not seen yet: {}; the files \
             are ahead of the server there and a copy would undo them. Wait until the processes have \
             recovered (`sqdata health` shows each domain's mode, and replays the journals of processes \
             that are gone once the server answers; `sqdata verify` shows what still differs), then run \
             `sqdata rollout rollback` again to copy the server's changes",
            what.join(", ")
        )))
    }
}
