//! One module per subcommand.

#[cfg(feature = "minio")]
pub(crate) mod archive;
pub(crate) mod assets;
pub(crate) mod bars;
pub(crate) mod bench;
pub(crate) mod deals;
pub(crate) mod demo;
#[cfg(feature = "hybrid")]
pub(crate) mod hybrid;
pub(crate) mod init;
pub(crate) mod positions;
pub(crate) mod registry;
pub(crate) mod serve;
pub(crate) mod silverquant;
pub(crate) mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{NaiveDate, Utc};
use sqdata::{BookId, Config, Stores};

use crate::out::{self, Format};

/// What every command gets.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) config_path: Option<PathBuf>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) format: Format,
}

impl Ctx {
    pub(crate) fn config(&self) -> anyhow::Result<Config> {
        let mut c = Config::load(self.config_path.as_deref())?;
        if let Some(d) = &self.data_dir {
            c.file.root = d.clone();
        }
        Ok(c)
    }

    /// Every configured store (`sqdata::open_all`), with the registry among the backends (so health,
    /// monitor and serve report it). A registry that cannot be opened is
    /// reported down, not fatal: the trading stores may still serve.
    pub(crate) async fn opened_with_registry(&self) -> anyhow::Result<sqdata::Opened> {
        let c = self.config()?;
        let mut opened = sqdata::open_all(&c).with_context(|| format!("opening the {} tier", c.tier))?;
        match sqdata::open_registry(&c).await {
            Ok(r) => opened.stores.backends.push(r),
            Err(e) => opened.stores.backends.push(std::sync::Arc::new(Unopened {
                backend: c.registry.backend().unwrap_or("registry"),
                error: e.to_string(),
            })),
        }
        Ok(opened)
    }

    pub(crate) fn stores(&self) -> anyhow::Result<Stores> {
        let c = self.config()?;
        sqdata::open(&c).with_context(|| format!("opening the {} tier", c.tier))
    }
}

/// A backend that could not even be opened: always down, with the reason.
#[derive(Debug)]
struct Unopened {
    backend: &'static str,
    error: String,
}

#[sqdata::async_trait]
impl sqdata::HealthCheck for Unopened {
    async fn health(&self) -> sqdata::BackendHealth {
        sqdata::BackendHealth {
            backend: self.backend.into(),
            up: false,
            latency: std::time::Duration::ZERO,
            details: Default::default(),
            error: Some(self.error.clone()),
        }
    }
}

/// `--account A --book B`.
#[derive(Debug, clap::Args)]
pub(crate) struct BookArgs {
    /// Broker account id.
    #[arg(long)]
    pub(crate) account: String,
    /// Book (strategy cache folder name).
    #[arg(long)]
    pub(crate) book: String,
}

impl BookArgs {
    pub(crate) fn id(&self) -> anyhow::Result<BookId> {
        Ok(BookId::new(&self.account, &self.book)?)
    }
}

/// Today on the exchange's calendar (Asia/Shanghai, UTC+8, no DST).
pub(crate) fn today() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(8)).date_naive()
}

pub(crate) fn parse_date(field: &str, s: &str) -> anyhow::Result<NaiveDate> {
    Ok(sqdata::validate::date(field, s)?)
}

pub(crate) async fn health(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let stores = ctx.opened_with_registry().await?.stores;
    let h = stores.health().await;
    let all_up = h.iter().all(|b| b.up);
    out::emit(ctx.format, &h, || {
        h.iter()
            .map(|b| {
                let facts = if b.backend == "hybrid" {
                    let mut f = b.details.get("domains").map(domain_rows).unwrap_or_default();
                    if let Some(w) = b.details.get("waiting") {
                        f += &waiting_rows(w);
                    }
                    if let Some(d) = b.details.get("rollout_damaged").and_then(|d| d.as_str()) {
                        f += &format!("\n    ROLLOUT FILE DAMAGED (serving with the last good stages): {d}");
                    }
                    f
                } else {
                    serde_json::to_string(&b.details).unwrap_or_default()
                };
                format!(
                    "{:<12} {:<4} {:>8} µs  {}",
                    b.backend,
                    if b.up { "up" } else { "DOWN" },
                    b.latency.as_micros(),
                    b.error.clone().map(|e| format!("{e}{facts}")).unwrap_or(facts)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(if all_up { ExitCode::SUCCESS } else { ExitCode::from(4) })
}

/// Books the servers have not been given yet, per domain, and the command
/// that hands them over.
fn waiting_rows(waiting: &serde_json::Value) -> String {
    let mut s = String::new();
    for (domain, books) in waiting.as_object().into_iter().flatten() {
        let list: Vec<&str> = books.as_array().into_iter().flatten().filter_map(|b| b.as_str()).collect();
        let shown = list.iter().take(5).copied().collect::<Vec<_>>().join(", ");
        let more = if list.len() > 5 { format!(" and {} more", list.len() - 5) } else { String::new() };
        let target = if matches!(domain.as_str(), "positions" | "quotes") { "redis" } else { "clickhouse" };
        s += &format!(
            "\n    {domain:<10} served by the files until migrated: {shown}{more} \
             (run `sqdata migrate --source file --target {target}`)"
        );
    }
    s
}

/// The hybrid's per-domain states, one line each.
fn domain_rows(domains: &serde_json::Value) -> String {
    let mut s = String::new();
    for d in domains.as_array().into_iter().flatten() {
        let g = |k: &str| d.get(k).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_default();
        s += &format!(
            "\n    {:<10} {:<10} for {:>8} ms  journal {:>6} B  fallbacks {}  journaled {}  dual-write failures {}  \
             compensations {}  inconsistencies {}  repairs {}{}",
            g("domain"),
            g("mode"),
            g("since_ms"),
            g("journal_bytes"),
            g("fallbacks"),
            g("journaled_writes"),
            g("dual_write_failures"),
            g("compensations"),
            g("inconsistencies"),
            g("repairs"),
            d.get("last_error").and_then(|e| e.as_str()).map(|e| format!("  last error: {e}")).unwrap_or_default()
        );
    }
    s
}

/// The same, from statuses.
#[cfg(feature = "hybrid")]
pub(crate) fn domain_table(st: &[sqdata::hybrid::DomainStatus], active: &[sqdata::Domain]) -> String {
    let st: Vec<_> = st.iter().filter(|s| active.contains(&s.domain)).collect();
    let v = serde_json::to_value(st).unwrap_or_default();
    format!("domains:{}\n", domain_rows(&v))
}
