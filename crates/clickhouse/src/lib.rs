#![doc = include_str!("../README.md")]

mod config;
mod journal;
mod rows;
pub mod schema;
mod store;

pub use config::ClickHouseConfig;
pub use schema::ServerVersion;
pub use store::{ClickHouseStore, TableStats};
