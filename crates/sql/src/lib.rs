#![doc = include_str!("../README.md")]

mod accounts;
mod audit;
mod config;
mod dump;
mod params;
mod rows;
mod store;
mod strategies;

pub use config::SqlConfig;
pub use store::SqlStore;
