#![doc = include_str!("../README.md")]

mod asset;
pub mod auth;
mod bar;
mod code;
mod deal;
mod domain;
mod error;
mod ids;
pub mod inline;
pub mod layer;
pub mod obs;
pub mod position;
#[cfg(test)]
mod proptests;
mod quote;
pub mod raw;
pub mod registry;
#[cfg(feature = "sample")]
pub mod sample;
mod store;
pub mod validate;

pub use asset::{AssetRow, DateRange};
pub use auth::{
    AccessEntry, ApiKey, AuthStore, Grant, Refresh, Right, Role, Session, User, UserChange, UserStatus,
    validate_user_name,
};
pub use bar::{
    Adjust, Bar, BarKey, BarOverview, BarSeries, BarWriteMode, Period, TimeRange, upsert_bars, validate_batch,
};
pub use code::{Code, Market};
pub use deal::{
    AggregateBy, AggregateQuery, Deal, DealAggregate, DealKind, DealQuery, DealScope, MAX_PAGE_SIZE, Page,
    RecordOutcome, Side, aggregate, page_of, period_label, sort_deals,
};
pub use domain::Domain;
pub use error::{BoxError, Error, Result};
pub use ids::{AccountCode, BookId, BookName};
pub use layer::Observed;
pub use position::{ExtremeChange, PositionEntry, PositionSnapshot, PriceTick, ReconcileReport, validate_ticks};
pub use quote::{DEFAULT_QUOTE_TTL, Quote};
pub use registry::{
    Account, AuditEntry, AuditQuery, ParamChange, ParamVersion, RegistryDump, RegistryStore, RegistryStoreExt,
    Strategy, diff_params,
};
pub use store::{
    AssetStore, AssetStoreExt, BackendHealth, BarStore, DealStore, DealStoreExt, HealthCheck, PositionStore,
    QuoteStore, Stores,
};

/// Re-exported so backends and callers agree on one version.
pub use async_trait::async_trait;
pub use chrono;
pub use serde_json;
