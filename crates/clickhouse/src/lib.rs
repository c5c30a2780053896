#![doc = include_str!("../README.md")]

mod assets;
mod bars;
mod config;
mod core;
mod deals;
mod error;
mod journal;
mod rows;
pub mod schema;
mod stats;

pub use crate::core::ClickHouseStore;
pub use config::ClickHouseConfig;
pub use schema::ServerVersion;
pub use stats::TableStats;
