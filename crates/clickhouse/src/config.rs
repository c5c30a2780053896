//! Configuration of the ClickHouse backend.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sqdata_core::{Error, Result};

/// How to reach ClickHouse and how to write to it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP endpoint, `http://host:8123`.
    pub url: String,
    /// Database (created if missing).
    pub database: String,
    /// User.
    pub user: String,
    /// Password (never printed).
    pub password: String,
    /// RowBinaryWithNamesAndTypes validation of the `clickhouse` crate:
    /// `None` = on for servers that support it (>= 24), off for older ones
    /// (18.16 rejects its format and settings).
    pub validation: Option<bool>,
    /// Block compression over HTTP: `lz4` or `none` (the chdb-http test shim
    /// needs `none`).
    pub compression: String,
    /// Where acknowledged-but-unflushed deals are journaled. Relative paths
    /// are under the files' root (`[file] root`, see
    /// [`rooted`](ClickHouseConfig::rooted)), so every process on one data
    /// folder shares it, whatever its current directory.
    pub journal_dir: PathBuf,
    /// Flush the deal buffer at this many rows…
    pub flush_rows: usize,
    /// …or after this many milliseconds, whichever comes first.
    pub flush_interval_ms: u64,
    /// Timeout of one request, ms.
    pub timeout_ms: u64,
    /// Rows per INSERT for bulk bar loads.
    pub bulk_batch_rows: usize,
    /// Keep idle HTTP connections for reuse. Turn off for single-threaded
    /// endpoints (the chdb-http test shim serves one connection at a time).
    pub keep_alive: bool,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: "sqdata".into(),
            user: "default".into(),
            password: String::new(),
            validation: None,
            compression: "lz4".into(),
            journal_dir: PathBuf::from("_clickhouse_journal"),
            flush_rows: 10_000,
            flush_interval_ms: 1000,
            timeout_ms: 30_000,
            bulk_batch_rows: 500_000,
            keep_alive: true,
        }
    }
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &if self.password.is_empty() { "" } else { "***" })
            .field("validation", &self.validation)
            .field("compression", &self.compression)
            .field("journal_dir", &self.journal_dir)
            .field("flush_rows", &self.flush_rows)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl ClickHouseConfig {
    /// This config with a relative `journal_dir` under `root` (the files'
    /// root, as the facade does for every folder it opens).
    pub fn rooted(mut self, root: &Path) -> ClickHouseConfig {
        if self.journal_dir.is_relative() {
            self.journal_dir = root.join(&self.journal_dir);
        }
        self
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("clickhouse: {m}")));
        if !self.database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || self.database.is_empty() {
            return bad(format!("database {:?} must be [A-Za-z0-9_]+", self.database));
        }
        if !matches!(self.compression.as_str(), "lz4" | "none") {
            return bad(format!("compression {:?} must be lz4 or none", self.compression));
        }
        if self.flush_rows == 0 || self.flush_interval_ms == 0 || self.timeout_ms == 0 || self.bulk_batch_rows == 0 {
            return bad("flush_rows, flush_interval_ms, timeout_ms and bulk_batch_rows must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_password() {
        let c = ClickHouseConfig { password: "s3cret".into(), ..Default::default() };
        assert!(!format!("{c:?}").contains("s3cret"));
        assert!(ClickHouseConfig { database: "a-b".into(), ..Default::default() }.validate().is_err());
    }

    #[test]
    fn a_relative_journal_dir_is_under_the_root() {
        let root = Path::new("/data/sq");
        let c = |dir: &str| ClickHouseConfig { journal_dir: dir.into(), ..Default::default() }.rooted(root).journal_dir;
        assert_eq!(c("chj"), root.join("chj"));
        assert_eq!(c("/var/lib/sqdata/chj"), PathBuf::from("/var/lib/sqdata/chj"));
        assert_eq!(ClickHouseConfig::default().rooted(root).journal_dir, root.join("_clickhouse_journal"));
    }
}
