//! `sqdata serve` and `sqdata monitor`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use sqdata_server::api::{Api, secrets};
use sqdata_server::{AppState, monitor};

use super::Ctx;
use crate::out::{self, Format};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, env = "SQDATA_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS proxy
    /// on a trusted network; `[api] allow_plain_http` says the same).
    #[arg(long)]
    allow_plain_http: bool,
}

pub(crate) async fn serve(ctx: &Ctx, a: Args) -> anyhow::Result<ExitCode> {
    let prometheus = sqdata_server::prometheus();
    let c = ctx.config()?;
    let api_cfg = c.api.clone().rooted(&c.file.root);
    let tls = api_cfg.tls_cert_file.is_some();
    if !(a.listen.ip().is_loopback() || tls || a.allow_plain_http || api_cfg.allow_plain_http) {
        anyhow::bail!(
            "refusing plain HTTP on {}: tokens and passwords would cross the network in clear. \
             Configure [api] tls_cert_file/tls_key_file (full build), or put a TLS proxy in front \
             and pass --allow-plain-http",
            a.listen
        );
    }
    #[cfg(not(feature = "full"))]
    if tls {
        anyhow::bail!("[api] tls_cert_file is set but this build has no TLS (build with --features full)");
    }
    let (keys, wrote) = secrets::KeyRing::load_or_create(&api_cfg.jwt_key_file)?;
    if wrote {
        eprintln!("wrote a new token signing key to {} (mode 0600)", api_cfg.jwt_key_file.display());
    }
    let opened = ctx.opened_with_registry().await?;
    let registry = sqdata::open_registry(&c).await;
    let listener = sqdata_server::bind(a.listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(AppState::new(opened.clone(), prometheus, addr, &api_cfg));
    // the first snapshot before the first request; then a background prober
    state.refresh().await;
    let _prober = sqdata_server::spawn_prober(&state, std::time::Duration::from_millis(api_cfg.probe_interval_ms));
    let app = match registry {
        Ok(reg) => {
            let api = Api::new(opened, reg.clone(), reg, keys, api_cfg.clone(), state.latest.clone());
            sqdata_server::app(state, api)
        }
        Err(e) => {
            // the probes still answer; the API says why it cannot
            eprintln!("the registry cannot be opened ({e}): /api/v1 answers 503 until a restart");
            sqdata_server::probes_only(state)
        }
    };
    let scheme = if tls { "https" } else { "http" };
    eprintln!(
        "sqdata serving on {scheme}://{addr} (/api/v1, docs at /api/v1/docs/, /healthz /readyz /metrics); Ctrl-C or SIGTERM stops"
    );
    let limits = sqdata_server::listen::Limits::default();
    #[cfg(feature = "full")]
    if let (Some(cert), Some(key)) = (&api_cfg.tls_cert_file, &api_cfg.tls_key_file) {
        let cfg = sqdata_server::listen::tls_config(cert, key)?;
        sqdata_server::listen::serve_tls(listener, app, limits, cfg, stop()).await?;
        return Ok(ExitCode::SUCCESS);
    }
    sqdata_server::listen::serve(listener, app, limits, stop()).await?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM (a container's stop).
async fn stop() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

pub(crate) async fn monitor(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let prometheus = sqdata_server::prometheus();
    let opened = ctx.opened_with_registry().await?;
    let snap = monitor::collect(&opened).await;
    match ctx.format {
        Format::Prometheus => {
            monitor::publish(&snap);
            print!("{}", prometheus.render());
        }
        f => out::emit(f, &snap, || monitor::render_text(&snap))?,
    }
    // as `health`: 4 when any backend is down (the body says whether sqdata can still serve)
    Ok(if snap.backends.iter().all(|b| b.up) { ExitCode::SUCCESS } else { ExitCode::from(4) })
}
