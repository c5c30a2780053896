#![doc = include_str!("../README.md")]

#[cfg(feature = "hybrid")]
pub mod backup;
mod config;
#[cfg(feature = "hybrid")]
pub mod migrate;
#[cfg(test)]
mod proptests;
pub mod silverquant;

use std::sync::Arc;
#[cfg(feature = "clickhouse")]
use std::time::Duration;

pub use config::{ApiConfig, Backend, Config, DEFAULT_CONFIG_FILE, Routes, Routing, Tier};

// The domain, the store traits and the error, from sqdata-core — named one
// by one, so what the facade offers is a decision, not an accident.
#[cfg(feature = "sample")]
pub use sqdata_core::sample;
pub use sqdata_core::{
    AccessEntry, ApiKey, AuthStore, Grant, Refresh, Right, Role, Session, User, UserChange, UserStatus,
    validate_user_name,
};
pub use sqdata_core::{
    Account, AccountCode, Adjust, AggregateBy, AggregateQuery, AssetRow, AssetStore, AssetStoreExt, AuditEntry,
    AuditQuery, BackendHealth, Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode, BookId, BookName, BoxError,
    Code, DEFAULT_QUOTE_TTL, DateRange, Deal, DealAggregate, DealKind, DealQuery, DealScope, DealStore, DealStoreExt,
    Domain, Error, ExtremeChange, HealthCheck, MAX_PAGE_SIZE, Market, Observed, Page, ParamChange, ParamVersion,
    Period, PositionEntry, PositionSnapshot, PositionStore, PriceTick, Quote, QuoteStore, ReconcileReport,
    RecordOutcome, RegistryDump, RegistryStore, RegistryStoreExt, Result, Side, Stores, Strategy, TimeRange, aggregate,
    async_trait, chrono, diff_params, page_of, period_label, serde_json, sort_deals, upsert_bars, validate_batch,
    validate_ticks,
};
pub use sqdata_core::{inline, layer, obs, position, raw, registry, validate};

// The backends, each as a module behind its feature (as `sqlx` exposes its
// drivers), with their main types at the top level.
#[cfg(feature = "minio")]
pub use sqdata_archive::{self as archive, Archive, ArchiveConfig, Table};
#[cfg(feature = "clickhouse")]
pub use sqdata_clickhouse::{self as clickhouse, ClickHouseConfig, ClickHouseStore};
pub use sqdata_file::{self as file, FileConfig, FileStore, kline};
#[cfg(feature = "hybrid")]
pub use sqdata_hybrid as hybrid;
#[cfg(feature = "redis")]
pub use sqdata_redis::{self as redis, RedisConfig, RedisStore};
pub use sqdata_sql::{self as sql, SqlConfig, SqlStore};

/// What [`open_all`] built.
#[derive(Debug, Clone)]
pub struct Opened {
    /// What callers use: each domain from its backend, server-backed
    /// domains through the hybrid.
    pub stores: Stores,
    /// The file store (embedded store and the fallback of every tier).
    pub files: Arc<FileStore>,
    /// The domains served by a server (empty on the embedded tier).
    pub served: Vec<Domain>,
    /// The composer of the server-backed domains with the files.
    #[cfg(feature = "hybrid")]
    pub hybrid: Option<Arc<sqdata_hybrid::Hybrid>>,
}

/// Opens the stores the configuration asks for: each domain from the
/// backend its routing names (the files always open: they are the embedded
/// store and every tier's fallback). Nothing here contacts a server; a server
/// that is down shows up as errors on use and in `health`.
pub fn open(config: &Config) -> Result<Stores> {
    Ok(open_all(config)?.stores)
}

/// The file store, measured ([`Observed`]) like every backend.
fn observed_files(file: &Arc<FileStore>) -> Stores {
    Stores::from_one(Arc::new(Observed::new("file", None, file.clone())))
}

/// The one routing function: opens `backend` behind the [`Observed`] layer
/// (latency, errors, its timeout) and serves `domains` from it in `stores`.
/// [`open_all`], `migrate`'s target and `backup`'s parts all go through it.
// Without a server backend built in every arm returns early.
#[cfg_attr(not(any(feature = "redis", feature = "clickhouse")), allow(unreachable_code, unused_variables))]
pub(crate) fn route(config: &Config, backend: Backend, domains: &[Domain], stores: &mut Stores) -> Result<()> {
    if domains.is_empty() {
        return Ok(());
    }
    if let Some(d) = domains.iter().find(|d| !backend.serves(**d)) {
        return Err(Error::Config(format!("{backend} does not hold {d}")));
    }
    let view = match backend {
        Backend::File => return Ok(()),
        #[cfg(feature = "redis")]
        Backend::Redis => {
            config.redis.validate()?;
            let timeout = Some(config.redis.op_timeout());
            let r = Arc::new(Observed::new("redis", timeout, Arc::new(RedisStore::open(config.redis.clone())?)));
            stores.backends.push(r.clone());
            Stores { positions: r.clone(), quotes: r, ..stores.clone() }
        }
        #[cfg(feature = "clickhouse")]
        Backend::Clickhouse => {
            let cfg = config.clickhouse.clone().rooted(&config.file.root);
            cfg.validate()?;
            let timeout = Some(Duration::from_millis(cfg.timeout_ms));
            let c = ClickHouseStore::open(cfg)?;
            let c = Arc::new(Observed::new("clickhouse", timeout, Arc::new(c)));
            stores.backends.push(c.clone());
            Stores { deals: c.clone(), assets: c.clone(), bars: c, ..stores.clone() }
        }
        #[allow(unreachable_patterns)]
        other => {
            return Err(Error::Config(format!("{other}: this binary was built without the {other} backend")));
        }
    };
    for d in domains {
        stores.take(*d, &view);
    }
    Ok(())
}

/// As [`open`], returning the parts too (for verify, migrate and rollout).
/// Domains routed to a server are composed with the files by the hybrid:
/// reads fall back to the files, writes go to both, an outage is journaled.
pub fn open_all(config: &Config) -> Result<Opened> {
    config.validate()?;
    let file = Arc::new(FileStore::open(config.file.clone())?);
    let files = observed_files(&file);
    let routes = config.routes();
    let mut stores = files.clone();
    for backend in Backend::ALL {
        route(config, backend, &routes.domains_of(backend), &mut stores)?;
    }
    let served = routes.served();
    #[cfg(feature = "hybrid")]
    let mut hybrid = None;
    #[cfg(feature = "hybrid")]
    if !served.is_empty() {
        let cfg = config.hybrid.clone().rooted(&config.file.root);
        let h = sqdata_hybrid::Hybrid::compose(stores.clone(), files, cfg, &served)?;
        let composed = h.stores();
        for d in &served {
            stores.take(*d, &composed);
        }
        stores.backends.push(h.clone());
        hybrid = Some(h);
    }
    Ok(Opened {
        stores,
        files: file,
        served,
        #[cfg(feature = "hybrid")]
        hybrid,
    })
}

/// The registry as [`open_registry`] opens it: measured like every store.
pub type Registry = Observed<SqlStore>;

/// Opens the registry (accounts, strategies, versioned parameters, audit):
/// the SQLite file under `file.root` by default, MySQL on the full tier,
/// behind the [`Observed`] layer. Creates the database file if needed and
/// runs the migrations.
pub async fn open_registry(config: &Config) -> Result<Arc<Registry>> {
    config.validate()?;
    let cfg = config.registry.clone().rooted(&config.file.root);
    let store = SqlStore::open(cfg).await?;
    Ok(Arc::new(Observed::new(store.backend(), None, Arc::new(store))))
}

/// Opens the archive (a directory under `file.root` by default, MinIO/S3 on
/// the full tier). Nothing is contacted until it is used.
#[cfg(feature = "minio")]
pub fn open_archive(config: &Config) -> Result<Archive> {
    config.validate()?;
    let cfg = config.archive.clone().rooted(&config.file.root);
    Ok(Archive::open(&cfg)?.with_lock_file(config.file.root.join("_archive.lock")))
}
