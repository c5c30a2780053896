#![doc = include_str!("../README.md")]

mod config;
pub mod silverquant;

use std::sync::Arc;

pub use config::{Config, DEFAULT_CONFIG_FILE, Tier};
pub use sqdata_core::*;
pub use sqdata_file::{FileConfig, FileStore, kline};

/// Opens the stores the configuration asks for.
///
/// Embedded tier: the file backend serves every domain.
pub fn open(config: &Config) -> Result<Stores> {
    config.validate()?;
    let file = Arc::new(FileStore::open(config.file.clone())?);
    Ok(Stores::from_one(file))
}
