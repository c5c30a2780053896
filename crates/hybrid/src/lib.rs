#![doc = include_str!("../README.md")]

pub mod alert;
mod config;
mod domain;
mod hybrid;
mod journal;
mod rollout;

pub use config::{HybridConfig, Stage, Truth};
pub use domain::{DomainStatus, Mode};
pub use hybrid::Hybrid;
pub use journal::Unit;
pub use rollout::RolloutState;
