//! The accept loop: HTTP/1.1 through hyper with the limits `axum::serve`
//! does not set — a deadline for the request head (a slow-header client
//! cannot hold a connection), a cap on the head's size (431), TLS when
//! built with `tls` and configured — the client address for every request,
//! and a graceful stop that lets requests in flight finish.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt;

/// Connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time for a client to send the request head.
    pub header_timeout: Duration,
    /// The head's size cap, bytes (hyper answers 431 beyond).
    pub max_header_bytes: usize,
    /// How long a stop waits for requests in flight.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { header_timeout: Duration::from_secs(10), max_header_bytes: 16 * 1024, drain: Duration::from_secs(10) }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves (plain HTTP).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run(listener, app, limits, None, shutdown).await
}

/// Serves `app` over TLS (rustls) until `shutdown` resolves.
#[cfg(feature = "tls")]
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    tls: std::sync::Arc<tokio_rustls::rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run(listener, app, limits, Some(tokio_rustls::TlsAcceptor::from(tls)), shutdown).await
}

#[cfg(feature = "tls")]
type Acceptor = tokio_rustls::TlsAcceptor;
#[cfg(not(feature = "tls"))]
type Acceptor = std::convert::Infallible;

async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Acceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // out of descriptors and the like: wait, never spin or stop
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        match &tls {
            None => {
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            #[cfg(feature = "tls")]
            Some(acceptor) => {
                let (acceptor, http, watcher) = (acceptor.clone(), http.clone(), graceful.watcher());
                let deadline = limits.header_timeout;
                tokio::spawn(async move {
                    let Ok(Ok(stream)) = tokio::time::timeout(deadline, acceptor.accept(stream)).await else {
                        return;
                    };
                    let _ = watcher.watch(http.serve_connection(TokioIo::new(stream), svc)).await;
                });
            }
            #[cfg(not(feature = "tls"))]
            Some(never) => match *never {},
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.drain) => tracing::warn!("stopping with requests still in flight"),
    }
    Ok(())
}

/// Reads a PEM certificate chain and private key into a rustls server
/// configuration (HTTP/1.1 only).
#[cfg(feature = "tls")]
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> sqdata::Result<std::sync::Arc<tokio_rustls::rustls::ServerConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| sqdata::Error::Config(format!("TLS certificate {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| sqdata::Error::Config(format!("TLS private key {}: {e}", key.display())))?;
    let mut cfg = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| sqdata::Error::Config(format!("TLS: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(cfg))
}
