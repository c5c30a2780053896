//! Configuration: built-in defaults < TOML file < `SQDATA_*` environment.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use sqdata_core::{Domain, Error, Result};
use sqdata_file::FileConfig;

/// Which stores serve which domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Files plus a SQLite registry: no servers.
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

/// A backend a domain can be served by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// SilverQuant-compatible files.
    File,
    /// Redis (positions, quotes).
    Redis,
    /// ClickHouse (deals, assets, bars).
    Clickhouse,
}

impl Backend {
    /// Every backend a domain can be routed to.
    pub const ALL: [Backend; 3] = [Backend::File, Backend::Redis, Backend::Clickhouse];

    /// Whether this backend can hold `domain` (the files hold everything;
    /// Redis the hot state; ClickHouse the analytic history).
    pub fn serves(self, domain: Domain) -> bool {
        match self {
            Backend::File => true,
            Backend::Redis => matches!(domain, Domain::Positions | Domain::Quotes),
            Backend::Clickhouse => matches!(domain, Domain::Deals | Domain::Assets | Domain::Bars),
        }
    }

    /// The domains it can hold, in order.
    pub fn domains(self) -> Vec<Domain> {
        Domain::ALL.into_iter().filter(|d| self.serves(*d)).collect()
    }

    /// Whether this binary was built with it.
    pub fn built(self) -> bool {
        match self {
            Backend::File => true,
            Backend::Redis => cfg!(feature = "redis"),
            Backend::Clickhouse => cfg!(feature = "clickhouse"),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::File => "file",
            Backend::Redis => "redis",
            Backend::Clickhouse => "clickhouse",
        })
    }
}

/// Which backend serves each domain; unset domains follow the tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Routing {
    /// Hot position state.
    pub positions: Option<Backend>,
    /// Latest quotes.
    pub quotes: Option<Backend>,
    /// Deals.
    pub deals: Option<Backend>,
    /// Equity curve.
    pub assets: Option<Backend>,
    /// K-lines.
    pub bars: Option<Backend>,
}

/// Which backend serves each domain, as resolved from the tier and `[stores]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routes([(Domain, Backend); 5]);

impl Routes {
    /// Every (domain, backend), in domain order.
    pub fn iter(&self) -> impl Iterator<Item = (Domain, Backend)> + '_ {
        self.0.iter().copied()
    }

    /// The backend serving `domain`.
    pub fn backend(&self, domain: Domain) -> Backend {
        self.0.iter().find(|(d, _)| *d == domain).map(|(_, b)| *b).unwrap_or(Backend::File)
    }

    /// The domains routed to `backend`, in order.
    pub fn domains_of(&self, backend: Backend) -> Vec<Domain> {
        self.iter().filter(|(_, b)| *b == backend).map(|(d, _)| d).collect()
    }

    /// The domains a server serves (with the files behind it): the hybrid's.
    pub fn served(&self) -> Vec<Domain> {
        self.iter().filter(|(_, b)| *b != Backend::File).map(|(d, _)| d).collect()
    }

    /// Whether any domain is routed to `backend`.
    pub fn uses(&self, backend: Backend) -> bool {
        self.iter().any(|(_, b)| b == backend)
    }
}

/// The whole configuration. Every section denies unknown keys, so a typo is
/// an error rather than a silently ignored setting. Sections of backends this
/// binary was built without are accepted and ignored (so one file serves
/// every build); routing a domain to such a backend is an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Which tier to run.
    pub tier: Tier,
    /// Per-domain overrides of the tier's routing.
    pub stores: Routing,
    /// The file backend (always present: embedded store and fallback).
    pub file: FileConfig,
    /// The Redis backend.
    #[cfg(feature = "redis")]
    pub redis: sqdata_redis::RedisConfig,
    #[cfg(not(feature = "redis"))]
    #[serde(skip_serializing)]
    #[doc(hidden)]
    pub redis: Option<serde::de::IgnoredAny>,
    /// The ClickHouse backend.
    #[cfg(feature = "clickhouse")]
    pub clickhouse: sqdata_clickhouse::ClickHouseConfig,
    #[cfg(not(feature = "clickhouse"))]
    #[serde(skip_serializing)]
    #[doc(hidden)]
    pub clickhouse: Option<serde::de::IgnoredAny>,
    /// The hybrid composer (files behind every server-backed domain).
    #[cfg(feature = "hybrid")]
    pub hybrid: sqdata_hybrid::HybridConfig,
    #[cfg(not(feature = "hybrid"))]
    #[serde(skip_serializing)]
    #[doc(hidden)]
    pub hybrid: Option<serde::de::IgnoredAny>,
    /// Accounts, strategies, versioned parameters, audit: SQLite (embedded,
    /// always built) or MySQL (full tier, feature `mysql`).
    pub registry: sqdata_sql::SqlConfig,
    /// Parquet archives of old deals and bars on MinIO/S3 or a directory.
    #[cfg(feature = "minio")]
    pub archive: sqdata_archive::ArchiveConfig,
    #[cfg(not(feature = "minio"))]
    #[serde(skip_serializing)]
    #[doc(hidden)]
    pub archive: Option<serde::de::IgnoredAny>,
    /// `sqdata serve`: its probes and who sees the detailed status.
    pub api: ApiConfig,
}

/// `[api]`: the HTTP service (`sqdata serve`): probes, the REST API's
/// tokens and limits.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// How often the background prober refreshes the state `/readyz` and
    /// `/metrics` serve (requests never probe), ms.
    pub probe_interval_ms: u64,
    /// A bearer token that unlocks the detailed `/readyz` body (paths,
    /// URLs, errors) on a non-loopback bind. Without it only a loopback
    /// bind shows the detail; everyone else gets states and counts.
    pub metrics_token: Option<String>,
    /// The signing keys of access tokens: a file (mode 0600, written by
    /// `sqdata init`) of `kid = base64 key` lines, the first signing, the
    /// others still verifying (rotation). Relative to `file.root`.
    pub jwt_key_file: PathBuf,
    /// Access-token lifetime, seconds.
    pub access_ttl_s: u64,
    /// A login session's absolute lifetime, seconds (refresh tokens rotate
    /// within it).
    pub session_ttl_s: u64,
    /// `iss` and `aud` of the tokens.
    pub issuer: String,
    /// Failed logins in a row that lock a user.
    pub lockout_failures: u32,
    /// How long a lockout lasts, seconds.
    pub lockout_s: u64,
    /// Login attempts per minute per client address and per user name.
    pub login_per_minute: u32,
    /// Requests per second per principal (a user or a key), burst included.
    pub requests_per_second: u32,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Longest a request may take, ms.
    pub request_timeout_ms: u64,
    /// Origins allowed to call the API from a browser (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// Concurrent password hashings (Argon2id takes ~19 MiB and a core each).
    pub password_hashers: usize,
    /// HTTPS: a PEM certificate chain (needs a build with TLS, the full
    /// tier's). Relative to `file.root`.
    pub tls_cert_file: Option<PathBuf>,
    /// HTTPS: the PEM private key. Relative to `file.root`.
    pub tls_key_file: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (behind a TLS-terminating
    /// proxy on a trusted network). Off: such a bind refuses to start.
    pub allow_plain_http: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            probe_interval_ms: 2000,
            metrics_token: None,
            jwt_key_file: PathBuf::from("_secrets/jwt.keys"),
            access_ttl_s: 900,
            session_ttl_s: 86_400,
            issuer: "sqdata".into(),
            lockout_failures: 5,
            lockout_s: 900,
            login_per_minute: 10,
            requests_per_second: 200,
            max_body_bytes: 1 << 20,
            request_timeout_ms: 30_000,
            cors_origins: Vec::new(),
            password_hashers: 1,
            tls_cert_file: None,
            tls_key_file: None,
            allow_plain_http: false,
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("probe_interval_ms", &self.probe_interval_ms)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "<redacted>"))
            .field("jwt_key_file", &self.jwt_key_file)
            .field("access_ttl_s", &self.access_ttl_s)
            .field("session_ttl_s", &self.session_ttl_s)
            .field("issuer", &self.issuer)
            .field("lockout_failures", &self.lockout_failures)
            .field("lockout_s", &self.lockout_s)
            .field("login_per_minute", &self.login_per_minute)
            .field("requests_per_second", &self.requests_per_second)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("cors_origins", &self.cors_origins)
            .field("password_hashers", &self.password_hashers)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("allow_plain_http", &self.allow_plain_http)
            .finish()
    }
}

impl ApiConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("api.probe_interval_ms", self.probe_interval_ms),
            ("api.access_ttl_s", self.access_ttl_s),
            ("api.session_ttl_s", self.session_ttl_s),
            ("api.lockout_s", self.lockout_s),
            ("api.request_timeout_ms", self.request_timeout_ms),
            ("api.lockout_failures", u64::from(self.lockout_failures)),
            ("api.login_per_minute", u64::from(self.login_per_minute)),
            ("api.requests_per_second", u64::from(self.requests_per_second)),
            ("api.max_body_bytes", self.max_body_bytes as u64),
            ("api.password_hashers", self.password_hashers as u64),
        ];
        if let Some((k, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::Config(format!("{k} must be positive")));
        }
        if self.access_ttl_s > self.session_ttl_s {
            return Err(Error::Config("api.access_ttl_s must not exceed api.session_ttl_s".into()));
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return Err(Error::Config("api.tls_cert_file and api.tls_key_file go together".into()));
        }
        if let Some(t) = &self.metrics_token
            && t.len() < 16
        {
            return Err(Error::Config("api.metrics_token must be at least 16 characters".into()));
        }
        Ok(())
    }

    /// Makes a relative key file relative to `root`.
    pub fn rooted(mut self, root: &Path) -> ApiConfig {
        if self.jwt_key_file.is_relative() {
            self.jwt_key_file = root.join(&self.jwt_key_file);
        }
        for p in [&mut self.tls_cert_file, &mut self.tls_key_file].into_iter().flatten() {
            if p.is_relative() {
                *p = root.join(&*p);
            }
        }
        self
    }
}

/// Top-level keys the environment may set (`SQDATA_FILE__ROOT=…`). Other
/// `SQDATA_*` variables (`SQDATA_CONFIG`, `SQDATA_TEST_*`, `SQDATA_LOG`)
/// belong to tools and tests, not to this file.
const ENV_SECTIONS: [&str; 9] =
    ["tier", "stores", "file", "redis", "clickhouse", "hybrid", "registry", "archive", "api"];

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

    /// Checks every section and that every routed backend is built in.
    pub fn validate(&self) -> Result<()> {
        self.file.validate()?;
        self.api.validate()?;
        #[cfg(feature = "redis")]
        if self.uses(Backend::Redis) {
            self.redis.validate()?;
        }
        #[cfg(feature = "clickhouse")]
        if self.uses(Backend::Clickhouse) {
            self.clickhouse.validate()?;
        }
        #[cfg(feature = "hybrid")]
        self.hybrid.validate()?;
        let registry = self.registry.backend()?;
        if registry == "mysql" && !cfg!(feature = "mysql") {
            return Err(Error::Config(
                "registry.url is a MySQL URL, but this binary was built without the mysql backend \
                 (build with `cargo xtask build --tier full` or the `mysql` feature)"
                    .into(),
            ));
        }
        if self.tier == Tier::Full {
            if registry != "mysql" {
                return Err(Error::Config(
                    "tier full keeps the registry in MySQL: set [registry] url = \"mysql://user:password@host:3306/db\""
                        .into(),
                ));
            }
            #[cfg(not(feature = "minio"))]
            return Err(Error::Config(
                "tier full archives to MinIO, but this binary was built without it \
                 (build with `cargo xtask build --tier full` or the `minio` feature)"
                    .into(),
            ));
            #[cfg(feature = "minio")]
            if !self.archive.url.starts_with("s3://") {
                return Err(Error::Config(
                    "tier full archives to MinIO: set [archive] url = \"s3://bucket/prefix\" and endpoint".into(),
                ));
            }
        }
        for (domain, b) in self.routes().iter() {
            if !b.built() {
                return Err(Error::Config(format!(
                    "{domain} is routed to {b}, but this binary was built without the {b} backend \
                     (build with `cargo xtask build --tier mvp` or the `{b}` feature)"
                )));
            }
            if !b.serves(domain) {
                let holds: Vec<&str> = b.domains().iter().map(|d| d.as_str()).collect();
                return Err(Error::Config(format!("{b} holds {}, not {domain}", holds.join(", "))));
            }
        }
        Ok(())
    }

    /// The backend of each domain: `[stores]` overrides, else the tier's choice.
    pub fn routes(&self) -> Routes {
        let (hot, analytic) = match self.tier {
            Tier::Embedded => (Backend::File, Backend::File),
            Tier::Mvp | Tier::Full => (Backend::Redis, Backend::Clickhouse),
        };
        let s = &self.stores;
        Routes([
            (Domain::Positions, s.positions.unwrap_or(hot)),
            (Domain::Quotes, s.quotes.unwrap_or(hot)),
            (Domain::Deals, s.deals.unwrap_or(analytic)),
            (Domain::Assets, s.assets.unwrap_or(analytic)),
            (Domain::Bars, s.bars.unwrap_or(analytic)),
        ])
    }

    /// Whether any domain is routed to `b`.
    pub fn uses(&self, b: Backend) -> bool {
        self.routes().uses(b)
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
         # \"55009728/prod_pwc\" = \"/path/to/SilverQuant/_cache/prod_pwc\"\n\
         \n\
         # Which backend serves each domain; unset domains follow the tier.\n\
         # [stores]\n\
         # positions = \"redis\"\n\
         # quotes = \"redis\"\n\
         \n\
         {redis}\n{clickhouse}\n{hybrid}\n{registry}\n{archive}\n{api}",
        tier = c.tier,
        root = f.root.display(),
        dur = serde_json::to_value(f.durability).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        enc = serde_json::to_value(f.deal_encoding).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        ttl = f.quote_ttl_ms,
        redis = REDIS_DEFAULT_TOML,
        clickhouse = CLICKHOUSE_DEFAULT_TOML,
        hybrid = HYBRID_DEFAULT_TOML,
        registry = REGISTRY_DEFAULT_TOML,
        archive = ARCHIVE_DEFAULT_TOML,
        api = API_DEFAULT_TOML,
    )
}

/// The `[clickhouse]` defaults (checked against `ClickHouseConfig::default()`).
const CLICKHOUSE_DEFAULT_TOML: &str = "[clickhouse]\n\
url = \"http://127.0.0.1:8123\"\n\
database = \"sqdata\"\n\
user = \"default\"\n\
password = \"\"\n\
# Row validation of the driver; unset = on for servers >= 24, off for older ones (18.16 rejects it).\n\
# validation = true\n\
compression = \"lz4\"\n\
# Deals are acknowledged once written here, then inserted in batches. Relative paths are under file.root.\n\
journal_dir = \"_clickhouse_journal\"\n\
flush_rows = 10000\n\
flush_interval_ms = 1000\n\
timeout_ms = 30000\n\
bulk_batch_rows = 500000\n\
keep_alive = true\n";

/// The `[hybrid]` defaults (checked against `HybridConfig::default()`).
const HYBRID_DEFAULT_TOML: &str = "[hybrid]\n\
# Used for every domain routed to a server: the files stay behind it as fallback and journal.\n\
# Rollout stage of accounts not listed below: files, shadow, reads, writes or full.\n\
stage = \"writes\"\n\
# Consecutive primary failures that switch a domain to the files (degraded).\n\
breaker_failures = 3\n\
probe_interval_ms = 500\n\
# A primary call slower than this counts as failed and the files answer.\n\
primary_timeout_ms = 1000\n\
# Fraction of writes read back from both sides and compared (0 = off).\n\
verify_sample_rate = 0.0\n\
# Which side repairs copy from: secondary (the files) or primary.\n\
source_of_truth = \"secondary\"\n\
# Relative paths are under file.root.\n\
journal_dir = \"_hybrid/journal\"\n\
rollout_file = \"_hybrid/rollout.json\"\n\
# DingTalk/Feishu-style webhook for urgent events.\n\
# webhook_url = \"http://127.0.0.1:8080/dingtalk-relay\"  (http only; relay to HTTPS)\n\
\n\
# Per-account stages:\n\
# [hybrid.accounts]\n\
# \"55009728\" = \"shadow\"\n";

/// The `[registry]` defaults (checked against `SqlConfig::default()`).
const REGISTRY_DEFAULT_TOML: &str = "[registry]\n\
# Accounts, strategies, versioned parameters and the audit trail.\n\
# sqlite://<path> (relative paths are under file.root) or mysql://user:password@host:3306/db (tier full).\n\
url = \"sqlite://sqdata.db\"\n\
max_connections = 4\n\
connect_timeout_ms = 5000\n";

/// The `[api]` defaults (checked against `ApiConfig::default()`).
const API_DEFAULT_TOML: &str = "[api]\n\
# sqdata serve: the background probe behind /readyz and /metrics (requests never probe), ms.\n\
probe_interval_ms = 2000\n\
# A bearer token (16+ characters) for the detailed /readyz body on a non-loopback bind.\n\
# metrics_token = \"...\"\n\
# The REST API: access tokens are signed with the first key of this file (mode 0600, written by\n\
# `sqdata init`; `kid = base64 key` lines, older keys still verify). Relative paths are under file.root.\n\
jwt_key_file = \"_secrets/jwt.keys\"\n\
access_ttl_s = 900\n\
# A login's absolute lifetime; refresh tokens rotate within it.\n\
session_ttl_s = 86400\n\
issuer = \"sqdata\"\n\
# Failed logins in a row that lock a user, and for how long (seconds).\n\
lockout_failures = 5\n\
lockout_s = 900\n\
login_per_minute = 10\n\
requests_per_second = 200\n\
max_body_bytes = 1048576\n\
request_timeout_ms = 30000\n\
# Browser origins allowed to call the API (CORS); none by default.\n\
cors_origins = []\n\
# Concurrent Argon2id password hashings (a login storm cannot take every core).\n\
password_hashers = 1\n\
# HTTPS (builds with TLS: the full tier): PEM files, relative paths under file.root.\n\
# tls_cert_file = \"_secrets/server.crt\"\n\
# tls_key_file = \"_secrets/server.key\"\n\
# Plain HTTP on a non-loopback address (only behind a TLS proxy on a trusted network).\n\
allow_plain_http = false\n";

/// The `[archive]` defaults (checked against `ArchiveConfig::default()`).
const ARCHIVE_DEFAULT_TOML: &str = "[archive]\n\
# Parquet archives of old deals and bars: s3://bucket/prefix (MinIO, S3) or a directory\n\
# (relative paths are under file.root).\n\
url = \"archive\"\n\
# MinIO's endpoint, e.g. http://127.0.0.1:9000; empty for AWS.\n\
endpoint = \"\"\n\
# Empty: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment.\n\
access_key = \"\"\n\
secret_key = \"\"\n\
region = \"us-east-1\"\n";

/// The `[redis]` defaults, as text so that builds without the Redis backend
/// write the same file (a test checks it against `RedisConfig::default()`).
const REDIS_DEFAULT_TOML: &str = "[redis]\n\
# Standalone URL; set `cluster` (seed URLs) or `sentinels` + `sentinel_master` instead for those topologies.\n\
url = \"redis://127.0.0.1:6379/0\"\n\
cluster = []\n\
sentinels = []\n\
sentinel_master = \"mymaster\"\n\
# Every key starts with this prefix; a book lives under one hash tag: <prefix>:{<account>:<book>}:held|max|min|meta.\n\
prefix = \"sq\"\n\
connect_timeout_ms = 1000\n\
response_timeout_ms = 1000\n\
# Replicas that must acknowledge a write (WAIT) before it is acknowledged; 1 with Sentinel loses nothing in a failover.\n\
replica_acks = 0\n\
replica_ack_timeout_ms = 200\n\
quote_ttl_ms = 5000\n\
session_ttl_s = 86400\n";

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn routing_follows_tier_and_overrides() {
        let c = Config::default();
        assert!(c.routes().iter().all(|(_, b)| b == Backend::File));
        let c =
            Config { stores: Routing { positions: Some(Backend::Redis), ..Default::default() }, ..Default::default() };
        assert_eq!(c.routes().backend(Domain::Positions), Backend::Redis);
        assert_eq!(c.routes().served(), vec![Domain::Positions]);
        assert_eq!(c.validate().is_ok(), cfg!(feature = "redis"));
        let c = Config { stores: Routing { deals: Some(Backend::Redis), ..Default::default() }, ..Default::default() };
        assert!(c.validate().is_err());
        let e = Config { tier: Tier::Full, ..Default::default() }.validate().unwrap_err().to_string();
        assert!(e.contains("registry") || e.contains("MinIO"), "{e}");
        let mysql = sqdata_sql::SqlConfig { url: "mysql://root@127.0.0.1:3306/test".into(), ..Default::default() };
        let c = Config { registry: mysql, ..Default::default() };
        assert_eq!(c.validate().is_ok(), cfg!(feature = "mysql"));
    }

    #[test]
    fn default_toml_is_the_defaults() {
        #[allow(unused_mut)]
        let mut parsed: Config = Figment::from(Toml::string(&Config::default_toml())).extract().unwrap();
        // without the backend built in, its section is accepted and ignored
        #[cfg(not(feature = "redis"))]
        {
            assert!(parsed.redis.is_some());
            parsed.redis = None;
        }
        #[cfg(not(feature = "clickhouse"))]
        {
            assert!(parsed.clickhouse.is_some());
            parsed.clickhouse = None;
        }
        #[cfg(not(feature = "hybrid"))]
        {
            assert!(parsed.hybrid.is_some());
            parsed.hybrid = None;
        }
        #[cfg(not(feature = "minio"))]
        {
            assert!(parsed.archive.is_some());
            parsed.archive = None;
        }
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
