//! Configuration: built-in defaults < TOML file < `SQDATA_*` environment.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use sqdata_core::{Error, Result};
use sqdata_file::FileConfig;

/// Which stores serve which domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Files only (plus SQLite once relational data lands): no servers.
    #[default]
    Embedded,
    /// Redis + ClickHouse with the files as live fallback.
    Mvp,
    /// MVP + MySQL + MinIO.
    Full,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Embedded => "embedded",
            Tier::Mvp => "mvp",
            Tier::Full => "full",
        })
    }
}

/// The whole configuration. Every section denies unknown keys, so a typo is
/// an error rather than a silently ignored setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which tier to run.
    pub tier: Tier,
    /// The file backend (always present: embedded store and fallback).
    pub file: FileConfig,
}

/// Top-level keys the environment may set (`SQDATA_FILE__ROOT=…`). Other
/// `SQDATA_*` variables (`SQDATA_CONFIG`, `SQDATA_TEST_*`, `SQDATA_LOG`)
/// belong to tools and tests, not to this file.
const ENV_SECTIONS: [&str; 2] = ["tier", "file"];

/// The file the CLI reads when no `--config` is given and `SQDATA_CONFIG` is unset.
pub const DEFAULT_CONFIG_FILE: &str = "sqdata.toml";

impl Config {
    /// Loads defaults, then `path` (or `sqdata.toml` in the working folder if
    /// it exists), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let file = match path {
            Some(p) => {
                if !p.exists() {
                    return Err(Error::Config(format!("config file {} does not exist", p.display())));
                }
                Some(p.to_path_buf())
            }
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        Self::figment(file.as_deref()).extract().map_err(|e| Error::Config(e.to_string()))
    }

    /// The layered providers, for tests and tools that inspect them.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = file {
            f = f.merge(Toml::file(p));
        }
        f.merge(Env::prefixed("SQDATA_").split("__").filter(|k| {
            let k = k.as_str().to_ascii_lowercase();
            ENV_SECTIONS.contains(&k.split(['.', '_']).next().unwrap_or_default())
        }))
    }

    /// Checks every section.
    pub fn validate(&self) -> Result<()> {
        self.file.validate()?;
        if self.tier != Tier::Embedded {
            return Err(Error::Config(format!(
                "tier {} is not built into this binary yet; only the embedded tier is available",
                self.tier
            )));
        }
        Ok(())
    }

    /// The built-in defaults as TOML (what `config/default.toml` holds and `sqdata init` writes).
    pub fn default_toml() -> String {
        toml_of(&Config::default())
    }
}

fn toml_of(c: &Config) -> String {
    // A small hand-written rendering keeps comments next to the keys.
    let f = &c.file;
    format!(
        "# sqdata configuration. Precedence: built-in defaults < this file < SQDATA_* environment\n\
         # (e.g. SQDATA_FILE__ROOT=/data/sqdata, SQDATA_TIER=embedded).\n\
         \n\
         # embedded: files only, no servers. mvp: Redis + ClickHouse with the files as fallback.\n\
         # full: mvp + MySQL + MinIO.\n\
         tier = \"{tier}\"\n\
         \n\
         [file]\n\
         # A book's files live in <root>/<account>/<book>/ unless mapped in [file.books].\n\
         root = \"{root}\"\n\
         # fsync: acknowledged writes survive a power loss. flush: atomic renames only.\n\
         durability = \"{dur}\"\n\
         # deal_hist.csv encoding: auto (keep the file's; GBK for new files), gbk, utf8.\n\
         deal_encoding = \"{enc}\"\n\
         # Quote lifetime in milliseconds.\n\
         quote_ttl_ms = {ttl}\n\
         \n\
         # Point a book at a live SilverQuant cache folder:\n\
         # [file.books]\n\
         # \"55009728/prod_pwc\" = \"/path/to/SilverQuant/_cache/prod_pwc\"\n",
        tier = c.tier,
        root = f.root.display(),
        dur = serde_json::to_value(f.durability).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        enc = serde_json::to_value(f.deal_encoding).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        ttl = f.quote_ttl_ms,
    )
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn default_toml_is_the_defaults() {
        let parsed: Config = Figment::from(Toml::string(&Config::default_toml())).extract().unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn config_default_toml_in_the_repo_matches() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/default.toml");
        let text = std::fs::read_to_string(path).expect("config/default.toml");
        assert_eq!(text, Config::default_toml(), "regenerate config/default.toml with `sqdata init --print`");
    }

    #[test]
    fn precedence_defaults_file_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("sqdata.toml", "[file]\nroot = \"from-file\"\nquote_ttl_ms = 7000\n")?;
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.file.root, PathBuf::from("from-file"));
            assert_eq!(c.file.quote_ttl_ms, 7000);
            jail.set_env("SQDATA_FILE__ROOT", "from-env");
            jail.set_env("SQDATA_TEST_REDIS_URL", "redis://ignored");
            jail.set_env("SQDATA_CONFIG", "ignored.toml");
            let c = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.file.root, PathBuf::from("from-env"));
            assert_eq!(c.file.quote_ttl_ms, 7000);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "[file]\nrooot = \"x\"\n")?;
            let e = Config::load(Some(Path::new("bad.toml"))).unwrap_err().to_string();
            assert!(e.contains("rooot"), "{e}");
            Ok(())
        });
        assert!(Config::load(Some(Path::new("/nonexistent/sqdata.toml"))).is_err());
    }
}
