#![doc = include_str!("../README.md")]

#[cfg(feature = "hybrid")]
pub mod backup;
mod config;
#[cfg(feature = "hybrid")]
pub mod migrate;
pub mod silverquant;

use std::sync::Arc;

pub use config::{Backend, Config, DEFAULT_CONFIG_FILE, Routing, Tier};
pub use sqdata_core::*;
pub use sqdata_file::{FileConfig, FileStore, kline};

#[cfg(feature = "minio")]
pub use sqdata_archive as archive;
#[cfg(feature = "minio")]
pub use sqdata_archive::{Archive, ArchiveConfig, Table};
#[cfg(feature = "clickhouse")]
pub use sqdata_clickhouse::{ClickHouseConfig, ClickHouseStore};
#[cfg(feature = "hybrid")]
pub use sqdata_hybrid as hybrid;
#[cfg(feature = "redis")]
pub use sqdata_redis::{RedisConfig, RedisStore};
pub use sqdata_sql::{SqlConfig, SqlStore};

/// What [`open_all`] built.
#[derive(Debug, Clone)]
pub struct Opened {
    /// What callers use: each domain from its backend, server-backed
    /// domains through the hybrid.
    pub stores: Stores,
    /// The file store (embedded store and the fallback of every tier).
    pub files: Arc<FileStore>,
    /// The domains served by a server (empty on the embedded tier).
    pub served: Vec<&'static str>,
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

/// As [`open`], returning the parts too (for verify, migrate and rollout).
/// Domains routed to a server are composed with the files by the hybrid:
/// reads fall back to the files, writes go to both, an outage is journaled.
pub fn open_all(config: &Config) -> Result<Opened> {
    config.validate()?;
    let file = Arc::new(FileStore::open(config.file.clone())?);
    #[allow(unused_mut)]
    let mut stores = Stores::from_one(file.clone());
    #[cfg(feature = "redis")]
    if config.uses(Backend::Redis) {
        let r = Arc::new(RedisStore::open(config.redis.clone())?);
        for (domain, b) in config.routes() {
            match (domain, b) {
                ("positions", Backend::Redis) => stores.positions = r.clone(),
                ("quotes", Backend::Redis) => stores.quotes = r.clone(),
                _ => {}
            }
        }
        stores.backends.push(r);
    }
    #[cfg(feature = "clickhouse")]
    if config.uses(Backend::Clickhouse) {
        let c = Arc::new(ClickHouseStore::open(config.clickhouse.clone())?);
        for (domain, b) in config.routes() {
            match (domain, b) {
                ("deals", Backend::Clickhouse) => stores.deals = c.clone(),
                ("assets", Backend::Clickhouse) => stores.assets = c.clone(),
                ("bars", Backend::Clickhouse) => stores.bars = c.clone(),
                _ => {}
            }
        }
        stores.backends.push(c);
    }
    let served: Vec<&'static str> =
        config.routes().iter().filter(|(_, b)| *b != Backend::File).map(|(d, _)| *d).collect();
    #[cfg(feature = "hybrid")]
    let mut hybrid = None;
    #[cfg(feature = "hybrid")]
    if !served.is_empty() {
        let cfg = config.hybrid.clone().rooted(&config.file.root);
        let h = sqdata_hybrid::Hybrid::compose(stores.clone(), Stores::from_one(file.clone()), cfg, &served)?;
        for d in &served {
            match *d {
                "positions" => stores.positions = h.clone(),
                "quotes" => stores.quotes = h.clone(),
                "deals" => stores.deals = h.clone(),
                "assets" => stores.assets = h.clone(),
                _ => stores.bars = h.clone(),
            }
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

/// Opens the registry (accounts, strategies, versioned parameters, audit):
/// the SQLite file under `file.root` by default, MySQL on the full tier.
/// Creates the database file if needed and runs the migrations.
pub async fn open_registry(config: &Config) -> Result<Arc<SqlStore>> {
    config.validate()?;
    let cfg = config.registry.clone().rooted(&config.file.root);
    Ok(Arc::new(SqlStore::open(cfg).await?))
}

/// Opens the archive (a directory under `file.root` by default, MinIO/S3 on
/// the full tier). Nothing is contacted until it is used.
#[cfg(feature = "minio")]
pub fn open_archive(config: &Config) -> Result<Archive> {
    config.validate()?;
    let cfg = config.archive.clone().rooted(&config.file.root);
    Archive::open(&cfg)
}
