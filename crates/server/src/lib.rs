#![doc = include_str!("../README.md")]

pub mod admin;
pub mod api;
pub mod listen;
pub mod monitor;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use parking_lot::RwLock;
use sqdata::Opened;

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process (every store records
/// through the `metrics` facade from then on) and returns its handle.
pub fn prometheus() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // another recorder already installed (a host application's): keep ours for rendering
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The stores.
    pub opened: Opened,
    /// The exporter.
    pub prometheus: PrometheusHandle,
    /// The latest snapshot of the background prober: requests read it and
    /// never probe (a slow backend cannot slow a probe request, and a
    /// request cannot start a recovery).
    pub latest: Arc<RwLock<Option<monitor::Snapshot>>>,
    /// Whether everyone may see the detailed body (a loopback bind).
    pub detail_for_all: bool,
    /// The bearer token that unlocks the detailed body otherwise.
    pub metrics_token: Option<String>,
    /// A snapshot older than this is stale (a hung prober): not ready.
    pub stale_after: Duration,
}

impl AppState {
    /// The state of a server bound to `addr` with the `[api]` settings.
    pub fn new(opened: Opened, prometheus: PrometheusHandle, addr: SocketAddr, api: &sqdata::ApiConfig) -> AppState {
        AppState {
            opened,
            prometheus,
            latest: Arc::new(RwLock::new(None)),
            detail_for_all: addr.ip().is_loopback(),
            metrics_token: api.metrics_token.clone(),
            stale_after: Duration::from_millis(api.probe_interval_ms.saturating_mul(3)).max(Duration::from_secs(10)),
        }
    }

    /// Probes every backend once and keeps the result (what the prober does).
    pub async fn refresh(&self) {
        let snap = monitor::collect(&self.opened).await;
        monitor::publish(&snap);
        *self.latest.write() = Some(snap);
    }

    fn may_see_detail(&self, headers: &HeaderMap) -> bool {
        if self.detail_for_all {
            return true;
        }
        let (Some(want), Some(got)) = (
            self.metrics_token.as_deref(),
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")),
        ) else {
            return false;
        };
        // constant time in the token's length
        want.len() == got.len() && want.bytes().zip(got.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
    }
}

/// Refreshes `state` every `every` until the state is dropped elsewhere
/// (the task holds only a weak reference between rounds).
pub fn spawn_prober(state: &Arc<AppState>, every: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        loop {
            let Some(s) = weak.upgrade() else { return };
            s.refresh().await;
            drop(s);
            tokio::time::sleep(every).await;
        }
    })
}

/// `/healthz` (the process answers), `/readyz` (the stores can serve),
/// `/metrics` (Prometheus text).
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// The cached snapshot: in full for a loopback bind or the bearer token,
/// else states and counts only (no paths, URLs or error text).
async fn readyz(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some(snap) = s.latest.read().clone() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "ready": false, "status": "starting" })),
        )
            .into_response();
    };
    let age = (chrono::Utc::now() - snap.taken_at).to_std().unwrap_or_default();
    if age > s.stale_after {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "ready": false, "status": "stale", "age_s": age.as_secs() })),
        )
            .into_response();
    }
    let code = if snap.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    if s.may_see_detail(&headers) {
        (code, axum::Json(serde_json::to_value(&snap).unwrap_or_default())).into_response()
    } else {
        (code, axum::Json(monitor::summary(&snap))).into_response()
    }
}

/// The gauges as the prober last set them (names and numbers only).
async fn metrics_text(State(s): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.prometheus.render()).into_response()
}

/// Serves the probes only (no API) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listen::serve(listener, router(state), listen::Limits::default(), shutdown).await
}

/// The probes, and `/api/v1/*` answering 503 (the registry could not be
/// opened at start: users and grants are unknown, so nothing is served).
pub fn probes_only(state: Arc<AppState>) -> Router {
    let unavailable = || async {
        api::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the registry is unavailable; the API needs a restart")
    };
    router(state).route("/api/v1", get(unavailable)).route("/api/v1/{*rest}", axum::routing::any(unavailable))
}

/// The whole service: the probes, and the REST API v1 under `/api/v1` with
/// its limits — body size, request deadline, CORS only for allow-listed
/// origins, no caching of answers, `nosniff`.
pub fn app(state: Arc<AppState>, api: Arc<api::Api>) -> Router {
    use axum::extract::DefaultBodyLimit;
    use tower_http::set_header::SetResponseHeaderLayer;
    let cfg = api.cfg.clone();
    let mut v1 = api::doc::router(api)
        .fallback(|| async { api::ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            header::HeaderValue::from_static("nosniff"),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(cfg.request_timeout_ms),
        ));
    if !cfg.cors_origins.is_empty() {
        let origins: Vec<header::HeaderValue> = cfg.cors_origins.iter().filter_map(|o| o.parse().ok()).collect();
        v1 = v1.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([
                    axum::http::Method::GET,
                    axum::http::Method::POST,
                    axum::http::Method::PUT,
                    axum::http::Method::PATCH,
                    axum::http::Method::DELETE,
                ])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH])
                .expose_headers([header::ETAG]),
        );
    }
    // the admin page (`/admin/`): static files under their own CSP
    router(state).merge(v1).merge(admin::router())
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
