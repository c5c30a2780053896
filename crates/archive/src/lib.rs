#![doc = include_str!("../README.md")]

mod archive;
mod columns;
mod config;

pub use archive::{Archive, ArchiveReport, ArchiveVerify, Manifest, Part, PartProblem, Progress, RestoreReport, Table};
pub use config::ArchiveConfig;
