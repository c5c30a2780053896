#![doc = include_str!("../README.md")]

mod access;
mod accounts;
mod audit;
mod checks;
mod config;
mod dump;
mod grants;
mod keys;
mod params;
mod rows;
mod sessions;
mod store;
mod strategies;
mod users;

pub use config::SqlConfig;
pub use store::SqlStore;
