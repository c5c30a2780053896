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
    pub(crate) fn new(cfg: &HybridConfig) -> Rollout {
        let state = RolloutState::load(&cfg.rollout_file).unwrap_or_default();
        let mtime = std::fs::metadata(&cfg.rollout_file).and_then(|m| m.modified()).ok();
        Rollout {
            cfg_default: cfg.stage,
            cfg_accounts: cfg.accounts.clone(),
            path: cfg.rollout_file.clone(),
            cache: Mutex::new((Instant::now(), mtime, state)),
        }
    }

    fn state(&self) -> RolloutState {
        let mut g = self.cache.lock();
        if g.0.elapsed() > Duration::from_millis(200) {
            g.0 = Instant::now();
            let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
            if mtime != g.1 {
                g.1 = mtime;
                if let Ok(s) = RolloutState::load(&self.path) {
                    g.2 = s;
                }
            }
        }
        g.2.clone()
    }

    /// The stage of an account (`None`: quotes and bars).
    pub(crate) fn stage(&self, account: Option<&AccountCode>) -> Stage {
        let st = self.state();
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
