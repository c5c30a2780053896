#![doc = include_str!("../README.md")]

mod assets;
mod bars;
mod config;
mod deals;
mod failpoint;
mod fsio;
pub mod kline;
mod positions;
#[cfg(test)]
mod proptests;
mod pyjson;
mod silverquant;
mod store;
pub mod wal;

pub use config::FileConfig;
pub use deals::DealEncoding;
pub use fsio::Durability;
pub use pyjson::{dumps as python_json_dumps, float_repr as python_float_repr};
pub use silverquant::{LegacyPositions, orphan_prices, read_legacy_held_days};
pub use store::FileStore;
