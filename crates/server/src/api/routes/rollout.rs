//! Operations on the gray release (admin): the stage of each account and
//! the books the servers wait for; the check of the servers against the
//! files for an account; promote (the same procedure as `sqdata rollout
//! promote`: check, adopt, set the stage); rollback to the files (as
//! `sqdata rollout rollback`). On a tier without servers there is no
//! rollout: 409 saying so.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Body, Errors, schema};
use crate::api::reply::{ApiError, ApiResult};
use crate::api::{Api, Principal};

/// The rollout.
#[derive(Debug, Serialize, ToSchema)]
pub struct RolloutOut {
    /// Stage per account; `*`: everyone not listed. Stages: files, shadow,
    /// reads, writes, full.
    #[schema(value_type = Object)]
    pub stages: serde_json::Value,
    /// Per domain, the books the servers were never given whole (they are
    /// served by the files whatever the stage).
    #[schema(value_type = Object)]
    pub waiting: serde_json::Value,
    /// Why the rollout file cannot be read, if it cannot (the last good
    /// state is used meanwhile).
    pub damage: Option<String>,
}

/// Which accounts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutCheckIn {
    /// The account (absent: everyone).
    #[serde(default)]
    #[schema(value_type = Option<schema::AccountId>)]
    pub account: Option<String>,
}

/// A promotion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteIn {
    /// The account (absent: everyone).
    #[serde(default)]
    #[schema(value_type = Option<schema::AccountId>)]
    pub account: Option<String>,
    /// The stage to go to (absent: the next one).
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^(files|shadow|reads|writes|full)$")]
    pub to: Option<String>,
    /// Promote even when the servers differ from the files.
    #[serde(default)]
    pub force: bool,
}

/// A rollback.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToFilesIn {
    /// The account (absent: everyone).
    #[serde(default)]
    #[schema(value_type = Option<schema::AccountId>)]
    pub account: Option<String>,
    /// Also delete from the files what only they hold.
    #[serde(default)]
    pub prune: bool,
}

#[cfg(feature = "hybrid")]
fn hybrid(api: &Api) -> Result<&std::sync::Arc<sqdata::hybrid::Hybrid>, ApiError> {
    api.opened.hybrid.as_ref().ok_or_else(no_rollout)
}

fn no_rollout() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "this tier has no servers, so no rollout: everything is served by the files")
}

fn accounts(field: &str, a: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    a.map(|a| schema::account(field, a).map(|a| vec![a.to_string()])).transpose()
}

/// The stage of every account and the books the servers wait for.
#[utoipa::path(get, path = "/ops/rollout", tag = "ops",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<RolloutOut>)), Errors))]
pub async fn rollout(State(api): super::State, p: Principal) -> ApiResult {
    p.admin()?;
    #[cfg(feature = "hybrid")]
    {
        let h = hybrid(&api)?;
        let stages = sqdata::hybrid::effective_stages(h.config())?;
        let waiting = h.waiting_books().await?;
        api.log_read(&p, "/api/v1/ops/rollout", None, 200);
        Ok(crate::api::reply::ok(RolloutOut {
            stages: serde_json::to_value(stages).unwrap_or_default(),
            waiting: serde_json::to_value(waiting).unwrap_or_default(),
            damage: h.rollout_damage(),
        }))
    }
    #[cfg(not(feature = "hybrid"))]
    {
        let _ = api;
        Err(no_rollout())
    }
}

/// The servers compared with the files for an account (nothing repaired):
/// what a promotion checks first.
#[utoipa::path(post, path = "/ops/rollout/check", tag = "ops", request_body = RolloutCheckIn,
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, description = "The verify report", body = inline(crate::api::Envelope<serde_json::Value>)), Errors))]
pub async fn check(State(api): super::State, p: Principal, Body(b): Body<RolloutCheckIn>) -> ApiResult {
    p.admin()?;
    #[cfg(feature = "hybrid")]
    {
        let a = accounts("account", b.account.as_deref())?;
        let h = hybrid(&api)?;
        let rep = h.check_accounts(a.as_deref()).await?;
        api.log_read(&p, "/api/v1/ops/rollout/check", b.account.as_deref(), 200);
        Ok(crate::api::reply::ok(rep))
    }
    #[cfg(not(feature = "hybrid"))]
    {
        let _ = (api, accounts("account", b.account.as_deref())?);
        Err(no_rollout())
    }
}

/// Promotes an account (or everyone) to a later stage, after checking the
/// servers against the files: `outcome` is `promoted`, or `differs` with
/// the check (nothing changed) unless `force`.
#[utoipa::path(post, path = "/ops/rollout/promote", tag = "ops", request_body = PromoteIn,
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, description = "The outcome", body = inline(crate::api::Envelope<serde_json::Value>)), Errors))]
pub async fn promote(State(api): super::State, p: Principal, Body(b): Body<PromoteIn>) -> ApiResult {
    p.admin()?;
    #[cfg(feature = "hybrid")]
    {
        let a = accounts("account", b.account.as_deref())?;
        let to = match b.to.as_deref() {
            None => None,
            Some(s) => Some(s.parse::<sqdata::hybrid::Stage>().map_err(|e| ApiError::bad("to", e.to_string()))?),
        };
        let h = hybrid(&api)?;
        let detail = serde_json::json!({ "account": b.account, "to": b.to, "force": b.force });
        api.audit_first(&p, "rollout.promote", "rollout", detail).await?;
        let out = h.promote(a.as_deref(), to, b.force).await?;
        Ok(crate::api::reply::ok(out))
    }
    #[cfg(not(feature = "hybrid"))]
    {
        let _ = (api, accounts("account", b.account.as_deref())?);
        Err(no_rollout())
    }
}

/// Returns an account (or everyone) to the files, bringing the files up to
/// date from the servers first (adding and updating only, unless `prune`).
#[utoipa::path(post, path = "/ops/rollout/rollback", tag = "ops", request_body = ToFilesIn,
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, description = "The rollback report", body = inline(crate::api::Envelope<serde_json::Value>)), Errors))]
pub async fn rollback(State(api): super::State, p: Principal, Body(b): Body<ToFilesIn>) -> ApiResult {
    p.admin()?;
    #[cfg(feature = "hybrid")]
    {
        let a = accounts("account", b.account.as_deref())?;
        let h = hybrid(&api)?;
        let detail = serde_json::json!({ "account": b.account, "prune": b.prune });
        api.audit_first(&p, "rollout.rollback", "rollout", detail).await?;
        let r = h.rollback_to_files(a.as_deref(), b.prune).await?;
        Ok(crate::api::reply::ok(r))
    }
    #[cfg(not(feature = "hybrid"))]
    {
        let _ = (api, accounts("account", b.account.as_deref())?);
        Err(no_rollout())
    }
}

/// The routes of this area.
pub fn router() -> OpenApiRouter<std::sync::Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(rollout))
        .routes(routes!(check))
        .routes(routes!(promote))
        .routes(routes!(rollback))
}
