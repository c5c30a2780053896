#![doc = include_str!("../README.md")]

pub mod alert;
mod config;
mod domain;
mod hybrid;
mod journal;
mod locks;
mod promote;
mod rollout;
mod verify;

pub use config::{HybridConfig, Stage, Truth};
pub use domain::{DomainStatus, Mode};
pub use hybrid::{Hybrid, ROLLOUT_POLL};
pub use journal::Unit;
pub use locks::{lock_book, lock_series};
pub use promote::Promotion;
pub use rollout::{ALL_BOOKS, RollbackReport, RolloutState, adopt, effective_stages, set_stage, unadopt};
pub use verify::{Difference, DomainVerify, VerifyMode, VerifyOptions, VerifyReport, verify};
