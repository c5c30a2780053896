//! Operations (admin): the health of every backend, each hybrid domain's
//! state and journal bytes, from the background prober's last snapshot
//! (a request never probes).

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Errors;
use crate::api::reply::{ApiResult, ok};
use crate::api::{Api, Principal};

/// A backend.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackendOut {
    /// Name.
    pub backend: String,
    /// Answered the last probe.
    pub up: bool,
    /// The probe's latency, µs.
    pub latency_us: u64,
}

/// A hybrid domain.
#[derive(Debug, Serialize, ToSchema)]
pub struct DomainOut {
    /// Domain.
    pub domain: String,
    /// healthy, degraded or recovering.
    pub mode: String,
    /// Milliseconds in this mode.
    pub since_ms: u64,
    /// Journaled bytes the server has not seen.
    pub journal_bytes: u64,
    /// Reads the files answered.
    pub fallbacks: u64,
}

/// The state of the service.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusOut {
    /// The files answer (sqdata can serve).
    pub ready: bool,
    /// Backends.
    pub backends: Vec<BackendOut>,
    /// Hybrid domains (none on the embedded tier).
    pub domains: Vec<DomainOut>,
    /// Access-log rows dropped (a full queue).
    pub access_log_dropped: u64,
}

/// Backends and domains as the prober last saw them.
#[utoipa::path(get, path = "/ops/status", tag = "ops",
    security(("bearer" = ["admin"]), ("api_key" = ["admin"])),
    responses((status = 200, body = inline(crate::api::Envelope<StatusOut>)), Errors))]
pub async fn status(State(api): super::State, p: Principal) -> ApiResult {
    p.admin()?;
    let snap = api.status.read().clone();
    let (ready, backends, domains) = match snap {
        Some(s) => (
            s.ready,
            s.backends
                .iter()
                .map(|b| BackendOut { backend: b.backend.clone(), up: b.up, latency_us: b.latency.as_micros() as u64 })
                .collect(),
            s.domains
                .iter()
                .map(|d| DomainOut {
                    domain: d.domain.to_string(),
                    mode: d.mode.clone(),
                    since_ms: d.since_ms,
                    journal_bytes: d.journal_bytes,
                    fallbacks: d.fallbacks,
                })
                .collect(),
        ),
        None => (false, Vec::new(), Vec::new()),
    };
    api.log_read(&p, "/api/v1/ops/status", None, 200);
    Ok(ok(StatusOut { ready, backends, domains, access_log_dropped: api.access.dropped() }))
}

/// The routes of this area.
pub fn router() -> OpenApiRouter<std::sync::Arc<Api>> {
    OpenApiRouter::new().routes(routes!(status))
}
