//! Configuration of the hybrid store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sqdata_core::{Error, Result};

/// How far an account has moved from the files to the new stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The files only; the new stores are not touched.
    #[default]
    Files,
    /// The files serve and lead writes; the new stores get every write and
    /// every read is compared against them (mismatches counted).
    Shadow,
    /// The new stores serve reads (falling back to the files on error); the
    /// files still lead writes.
    Reads,
    /// The new stores lead writes (the files follow, the new store is
    /// compensated when they fail) and serve reads.
    Writes,
    /// As `writes`; the end of the rollout.
    Full,
}

impl Stage {
    /// Every stage in order.
    pub const ALL: [Stage; 5] = [Stage::Files, Stage::Shadow, Stage::Reads, Stage::Writes, Stage::Full];

    /// The next stage (full stays full).
    pub fn next(self) -> Stage {
        let i = Stage::ALL.iter().position(|s| *s == self).unwrap_or(0);
        Stage::ALL[(i + 1).min(Stage::ALL.len() - 1)]
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Files => "files",
            Stage::Shadow => "shadow",
            Stage::Reads => "reads",
            Stage::Writes => "writes",
            Stage::Full => "full",
        }
    }

    /// Whether the new store is the one reads are served from.
    pub fn primary_serves_reads(self) -> bool {
        self >= Stage::Reads
    }

    /// Whether the new store leads writes.
    pub fn primary_leads_writes(self) -> bool {
        self >= Stage::Writes
    }
}

impl std::str::FromStr for Stage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Stage> {
        Stage::ALL
            .iter()
            .copied()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| Error::invalid("stage", s, "expected files, shadow, reads, writes or full"))
    }
}

/// What the hybrid store does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HybridConfig {
    /// Stage of accounts not listed in `accounts` (and of quotes and bars,
    /// which belong to no account).
    pub stage: Stage,
    /// Per-account stages.
    pub accounts: BTreeMap<String, Stage>,
    /// Consecutive primary failures that open the circuit (degraded mode).
    pub breaker_failures: u32,
    /// How often a degraded domain probes its primary, ms.
    pub probe_interval_ms: u64,
    /// Longest a primary call may take before it counts as failed and the
    /// secondary answers, ms (a frozen server must not freeze the caller).
    pub primary_timeout_ms: u64,
    /// Fraction of writes read back from both stores and compared (0..=1).
    pub verify_sample_rate: f64,
    /// Which side repairs copy from when the two differ: `secondary` (the
    /// files) or `primary`.
    pub source_of_truth: Truth,
    /// Where writes made while degraded are journaled until replayed
    /// (relative paths: under the file backend's root, when built by `sqdata::open`).
    pub journal_dir: PathBuf,
    /// DingTalk/Feishu-style webhook for urgent events (optional).
    pub webhook_url: Option<String>,
    /// Where `sqdata rollout` keeps per-account stages (overrides the
    /// config; relative paths as for `journal_dir`).
    pub rollout_file: PathBuf,
}

/// A repair's source of truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Truth {
    /// The files.
    #[default]
    Secondary,
    /// The new store.
    Primary,
}

impl Default for HybridConfig {
    fn default() -> Self {
        HybridConfig {
            stage: Stage::Writes,
            accounts: BTreeMap::new(),
            breaker_failures: 3,
            probe_interval_ms: 500,
            primary_timeout_ms: 1000,
            verify_sample_rate: 0.0,
            source_of_truth: Truth::Secondary,
            journal_dir: PathBuf::from("_hybrid/journal"),
            webhook_url: None,
            rollout_file: PathBuf::from("_hybrid/rollout.json"),
        }
    }
}

impl HybridConfig {
    /// Makes relative paths relative to `root`.
    pub fn rooted(mut self, root: &std::path::Path) -> HybridConfig {
        if self.journal_dir.is_relative() {
            self.journal_dir = root.join(&self.journal_dir);
        }
        if self.rollout_file.is_relative() {
            self.rollout_file = root.join(&self.rollout_file);
        }
        self
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.verify_sample_rate) {
            return Err(Error::Config(format!(
                "hybrid.verify_sample_rate {} must be within 0..=1",
                self.verify_sample_rate
            )));
        }
        if let Some(u) = &self.webhook_url
            && !u.starts_with("http://")
        {
            return Err(Error::Config(format!(
                "hybrid.webhook_url {u:?}: only http:// is supported (no TLS stack is built in); \
                 point it at a local relay that forwards to DingTalk/Feishu over HTTPS"
            )));
        }
        if self.breaker_failures == 0 || self.probe_interval_ms == 0 || self.primary_timeout_ms == 0 {
            return Err(Error::Config(
                "hybrid: breaker_failures, probe_interval_ms and primary_timeout_ms must be positive".into(),
            ));
        }
        Ok(())
    }
}
