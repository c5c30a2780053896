//! The REST API v1 over real HTTP on the embedded tier (the files and a
//! SQLite registry in a temporary folder): tokens and their attacks, the
//! RBAC matrix generated from the OpenAPI document, hostile input, limits,
//! the audit trail, the data endpoints.

mod attacks;
mod common;
mod data;
mod flows;
mod inputs;
mod rbac;
#[cfg(feature = "redis")]
mod rollout;
