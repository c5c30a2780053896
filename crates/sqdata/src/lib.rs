#![doc = include_str!("../README.md")]

mod config;
pub mod silverquant;

use std::sync::Arc;

pub use config::{Backend, Config, DEFAULT_CONFIG_FILE, Routing, Tier};
pub use sqdata_core::*;
pub use sqdata_file::{FileConfig, FileStore, kline};

#[cfg(feature = "clickhouse")]
pub use sqdata_clickhouse::{ClickHouseConfig, ClickHouseStore};
#[cfg(feature = "redis")]
pub use sqdata_redis::{RedisConfig, RedisStore};

/// Opens the stores the configuration asks for: each domain from the
/// backend its routing names (the files always open: they are the embedded
/// store and every tier's fallback). Nothing here contacts a server; a server
/// that is down shows up as errors on use and in `health`.
pub fn open(config: &Config) -> Result<Stores> {
    config.validate()?;
    let file = Arc::new(FileStore::open(config.file.clone())?);
    #[allow(unused_mut)]
    let mut stores = Stores::from_one(file);
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
    Ok(stores)
}
