//! Per-account stages: the config's, overridden by a small state file that
//! `sqdata rollout promote|rollback` writes (re-read when it changes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sqdata_core::{AccountCode, Error, Result};

use crate::config::{HybridConfig, Stage};

/// The rollout state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RolloutState {
    /// Stage of accounts not listed (and of quotes and bars); `None` = the config's.
    pub stage: Option<Stage>,
    /// Per-account stages.
    pub accounts: BTreeMap<String, Stage>,
}

impl RolloutState {
    /// Reads the file; a missing file is the empty state.
    pub fn load(path: &Path) -> Result<RolloutState> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::corrupt(path.display().to_string(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RolloutState::default()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let tmp = path.with_extension("tmp");
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::Config(e.to_string()))?;
        std::fs::write(&tmp, body).and_then(|_| std::fs::rename(&tmp, path)).map_err(|e| Error::io(path, e))
    }
}

/// Resolves an account's stage.
#[derive(Debug)]
pub(crate) struct Rollout {
    cfg_default: Stage,
    cfg_accounts: BTreeMap<String, Stage>,
    path: PathBuf,
    cache: Mutex<(Instant, Option<SystemTime>, RolloutState)>,
}

impl Rollout {
    /// A corrupt state file is an error here (at start); later a corrupt
    /// rewrite keeps the last good state and says so in the log.
    pub(crate) fn new(cfg: &HybridConfig) -> Result<Rollout> {
        let state = RolloutState::load(&cfg.rollout_file)?;
        let mtime = std::fs::metadata(&cfg.rollout_file).and_then(|m| m.modified()).ok();
        Ok(Rollout {
            cfg_default: cfg.stage,
            cfg_accounts: cfg.accounts.clone(),
            path: cfg.rollout_file.clone(),
            cache: Mutex::new((Instant::now(), mtime, state)),
        })
    }

    /// Re-reads the state file now (after this process changed it).
    pub(crate) fn refresh(&self) -> Result<()> {
        let st = RolloutState::load(&self.path)?;
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        *self.cache.lock() = (Instant::now(), mtime, st);
        Ok(())
    }

    /// The stage of an account (`None`: quotes and bars).
    pub(crate) fn stage(&self, account: Option<&AccountCode>) -> Stage {
        let mut g = self.cache.lock();
        if g.0.elapsed() > Duration::from_millis(200) {
            g.0 = Instant::now();
            let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
            if mtime != g.1 {
                g.1 = mtime;
                match RolloutState::load(&self.path) {
                    Ok(s) => g.2 = s,
                    Err(e) => tracing::error!(error = %e, "rollout state unreadable; keeping the last good one"),
                }
            }
        }
        let st = &g.2;
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

/// Sets the stage of `accounts` (`None`: everyone, including accounts the
/// config pins) in the state file, which running processes re-read within
/// 200 ms. Returns the new state.
pub fn set_stage(cfg: &HybridConfig, accounts: Option<&[String]>, stage: Stage) -> Result<RolloutState> {
    let mut st = RolloutState::load(&cfg.rollout_file)?;
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
    st.save(&cfg.rollout_file)?;
    Ok(st)
}
