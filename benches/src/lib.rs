#![doc = include_str!("../README.md")]

pub mod api_suite;
pub mod baseline;
#[cfg(feature = "clickhouse")]
pub mod clickhouse_suite;
pub mod data;
#[cfg(feature = "full")]
pub mod full_suite;
#[cfg(all(feature = "redis", feature = "clickhouse"))]
pub mod hybrid_suite;
#[cfg(feature = "redis")]
pub mod redis_suite;
pub mod scenarios;
pub mod stats;

pub use scenarios::{Options, run_file_suite};
pub use stats::{Measured, Scenario, render};
