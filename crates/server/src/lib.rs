#![doc = include_str!("../README.md")]

pub mod monitor;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
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
#[derive(Debug, Clone)]
pub struct AppState {
    /// The stores.
    pub opened: Opened,
    /// The exporter.
    pub prometheus: PrometheusHandle,
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

async fn readyz(State(s): State<Arc<AppState>>) -> Response {
    let snap = monitor::collect(&s.opened).await;
    monitor::publish(&snap);
    let code = if snap.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(snap)).into_response()
}

async fn metrics_text(State(s): State<Arc<AppState>>) -> Response {
    let snap = monitor::collect(&s.opened).await;
    monitor::publish(&snap);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.prometheus.render()).into_response()
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
