//! `sqdata serve` and `sqdata monitor`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use sqdata_server::{AppState, monitor};

use super::Ctx;
use crate::out::{self, Format};

/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, env = "SQDATA_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
}

pub(crate) async fn serve(ctx: &Ctx, a: Args) -> anyhow::Result<ExitCode> {
    let prometheus = sqdata_server::prometheus();
    let api = ctx.config()?.api;
    let opened = ctx.opened_with_registry().await?;
    let listener = sqdata_server::bind(a.listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(AppState::new(opened, prometheus, addr, &api));
    // the first snapshot before the first request; then a background prober
    state.refresh().await;
    let _prober = sqdata_server::spawn_prober(&state, std::time::Duration::from_millis(api.probe_interval_ms));
    eprintln!("sqdata serving on http://{addr} (/healthz /readyz /metrics); Ctrl-C stops");
    sqdata_server::serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(ExitCode::SUCCESS)
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
