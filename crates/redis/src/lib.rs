#![doc = include_str!("../README.md")]

mod config;
mod conn;
#[cfg(test)]
mod proptests;
mod scripts;
mod store;

pub use config::{Mode, RedisConfig};
pub use store::{RedisStore, book_keys};

/// The driver this backend is built on (benchmarks compare against it raw).
pub use redis as driver;
