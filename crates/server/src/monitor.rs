//! One look at everything: each backend up or down with its latency and
//! facts, each hybrid domain's state, the disk under the data folder, memory.
//! `publish` turns it into gauges for `/metrics` and `sqdata monitor
//! --format prometheus`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqdata::{BackendHealth, Opened};

/// Free space of the file system holding the data folder.
#[derive(Debug, Clone, Serialize)]
pub struct Disk {
    /// The data folder.
    pub path: PathBuf,
    /// Size of the file system, bytes.
    pub total_bytes: u64,
    /// Free for unprivileged users, bytes.
    pub free_bytes: u64,
    /// free / total.
    pub free_ratio: f64,
}

/// Memory of the machine and of this process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// MemTotal, bytes.
    pub system_total_bytes: u64,
    /// MemAvailable, bytes.
    pub system_available_bytes: u64,
    /// 1 − available / total.
    pub used_ratio: f64,
    /// This process's resident set, bytes.
    pub process_resident_bytes: u64,
}

/// A server-backed domain's state (see `sqdata_hybrid::DomainStatus`).
#[derive(Debug, Clone, Serialize)]
pub struct DomainState {
    /// The domain.
    pub domain: sqdata::Domain,
    /// healthy, degraded or recovering.
    pub mode: String,
    /// 0 healthy, 1 degraded, 2 recovering.
    pub mode_code: u8,
    /// Milliseconds in this mode.
    pub since_ms: u64,
    /// Journaled writes the primary has not seen, bytes.
    pub journal_bytes: u64,
    /// Reads answered by the files because the primary failed.
    pub fallbacks: u64,
    /// Writes the files refused after the primary took them.
    pub dual_write_failures: u64,
    /// Primary writes undone.
    pub compensations: u64,
    /// Differences found between the stores.
    pub inconsistencies: u64,
    /// Journal entries set aside because they can never apply (see the
    /// domain's `-quarantine.jsonl`).
    pub quarantined: u64,
    /// The last primary error.
    pub last_error: Option<String>,
}

#[cfg(feature = "hybrid")]
fn domains(opened: &Opened) -> Vec<DomainState> {
    use sqdata::hybrid::Mode;
    let Some(h) = &opened.hybrid else { return Vec::new() };
    h.status()
        .into_iter()
        .filter(|s| h.active_domains().contains(&s.domain))
        .map(|s| DomainState {
            domain: s.domain,
            mode: match s.mode {
                Mode::Healthy => "healthy",
                Mode::Degraded => "degraded",
                Mode::Recovering => "recovering",
            }
            .into(),
            mode_code: match s.mode {
                Mode::Healthy => 0,
                Mode::Degraded => 1,
                Mode::Recovering => 2,
            },
            journal_bytes: s.journal_bytes,
            fallbacks: s.fallbacks,
            since_ms: s.since_ms,
            dual_write_failures: s.dual_write_failures,
            compensations: s.compensations,
            inconsistencies: s.inconsistencies,
            quarantined: s.quarantined,
            last_error: s.last_error,
        })
        .collect()
}

#[cfg(not(feature = "hybrid"))]
fn domains(_: &Opened) -> Vec<DomainState> {
    Vec::new()
}

/// Everything `monitor` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Whether sqdata can serve: the files (the embedded store and every
    /// tier's fallback) answer. Servers that are down make domains degraded,
    /// not the service unready.
    pub ready: bool,
    /// Each backend (and the hybrid).
    pub backends: Vec<BackendHealth>,
    /// The hybrid's domains (empty on the embedded tier).
    pub domains: Vec<DomainState>,
    /// The disk under the data folder.
    pub disk: Option<Disk>,
    /// Memory.
    pub memory: Memory,
    /// When it was taken (a server answers a stale snapshot as not ready).
    pub taken_at: chrono::DateTime<chrono::Utc>,
}

fn disk(path: &Path) -> Option<Disk> {
    let st = rustix::fs::statvfs(path).ok()?;
    let total = st.f_blocks.saturating_mul(st.f_frsize);
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    Some(Disk {
        path: path.to_path_buf(),
        total_bytes: total,
        free_bytes: free,
        free_ratio: if total > 0 { free as f64 / total as f64 } else { 0.0 },
    })
}

fn kib(line: &str) -> u64 {
    line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 1024
}

fn memory() -> Memory {
    let mut m = Memory::default();
    if let Ok(s) = std::fs::read_to_string("/proc/meminfo") {
        for l in s.lines() {
            if l.starts_with("MemTotal:") {
                m.system_total_bytes = kib(l);
            } else if l.starts_with("MemAvailable:") {
                m.system_available_bytes = kib(l);
            }
        }
    }
    if m.system_total_bytes > 0 {
        m.used_ratio = 1.0 - m.system_available_bytes as f64 / m.system_total_bytes as f64;
    }
    if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
        m.process_resident_bytes = s.lines().find(|l| l.starts_with("VmRSS:")).map(kib).unwrap_or(0);
    }
    m
}

/// Probes every backend (the hybrid probes its primaries) and reads the machine.
pub async fn collect(opened: &Opened) -> Snapshot {
    let backends = opened.stores.health().await;
    let ready = backends.iter().any(|b| b.backend == "file" && b.up);
    let domains = domains(opened);
    let root = opened.files.config().root.clone();
    Snapshot { ready, backends, domains, disk: disk(&root), memory: memory(), taken_at: chrono::Utc::now() }
}

/// The body anyone may see: readiness, each backend up or down, each
/// domain's mode and journal bytes — no paths, URLs or error text.
pub fn summary(s: &Snapshot) -> serde_json::Value {
    serde_json::json!({
        "ready": s.ready,
        "backends": s.backends.iter().map(|b| serde_json::json!({ "backend": b.backend, "up": b.up })).collect::<Vec<_>>(),
        "domains": s.domains.iter().map(|d| serde_json::json!({
            "domain": d.domain, "mode": d.mode, "journal_bytes": d.journal_bytes,
        })).collect::<Vec<_>>(),
    })
}

/// Sets the gauges `/metrics` exports.
pub fn publish(s: &Snapshot) {
    for b in &s.backends {
        let name = b.backend.clone();
        metrics::gauge!("sqdata_backend_up", "backend" => name.clone()).set(if b.up { 1.0 } else { 0.0 });
        metrics::gauge!("sqdata_backend_latency_seconds", "backend" => name).set(b.latency.as_secs_f64());
    }
    for d in &s.domains {
        metrics::gauge!("sqdata_hybrid_journal_bytes", "domain" => d.domain.as_str()).set(d.journal_bytes as f64);
        metrics::gauge!("sqdata_hybrid_state", "domain" => d.domain.as_str()).set(f64::from(d.mode_code));
        metrics::gauge!("sqdata_hybrid_quarantined", "domain" => d.domain.as_str()).set(d.quarantined as f64);
    }
    if let Some(d) = &s.disk {
        metrics::gauge!("sqdata_disk_free_ratio").set(d.free_ratio);
        metrics::gauge!("sqdata_disk_free_bytes").set(d.free_bytes as f64);
    }
    metrics::gauge!("sqdata_memory_used_ratio").set(s.memory.used_ratio);
    metrics::gauge!("sqdata_process_resident_bytes").set(s.memory.process_resident_bytes as f64);
    metrics::gauge!("sqdata_ready").set(if s.ready { 1.0 } else { 0.0 });
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / 1048576.0)
}

/// For people.
pub fn render_text(s: &Snapshot) -> String {
    let mut t = format!("sqdata {}\n", if s.ready { "ready" } else { "NOT READY (the files do not answer)" });
    for b in &s.backends {
        let facts = match (b.backend.as_str(), &b.error) {
            (_, Some(e)) => e.clone(),
            ("hybrid", None) => "all domains healthy".into(),
            _ => b
                .details
                .iter()
                .filter(|(k, _)| {
                    ["used_memory", "maxmemory", "server_version", "journal_bytes", "pending_deals", "root"]
                        .contains(&k.as_str())
                })
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        t += &format!(
            "  {:<11} {:<4} {:>9.3} ms  {facts}\n",
            b.backend,
            if b.up { "up" } else { "DOWN" },
            b.latency.as_secs_f64() * 1e3
        );
    }
    for d in &s.domains {
        t += &format!(
            "  domain {:<10} {:<10} journal {} B, fallbacks {}, dual-write failures {}, compensations {}, inconsistencies {}, quarantined {}\n",
            d.domain.as_str(),
            d.mode,
            d.journal_bytes,
            d.fallbacks,
            d.dual_write_failures,
            d.compensations,
            d.inconsistencies,
            d.quarantined
        );
    }
    if let Some(d) = &s.disk {
        t += &format!(
            "  disk  {} free of {} ({:.1} %) under {}\n",
            mib(d.free_bytes),
            mib(d.total_bytes),
            d.free_ratio * 100.0,
            d.path.display()
        );
    }
    let m = &s.memory;
    t += &format!(
        "  memory {:.1} % used ({} available of {}), this process {}\n",
        m.used_ratio * 100.0,
        mib(m.system_available_bytes),
        mib(m.system_total_bytes),
        mib(m.process_resident_bytes)
    );
    t
}
