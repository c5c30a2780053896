//! Output: text for people, stable JSON for programs.

use std::process::ExitCode;

use serde::Serialize;

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document on stdout.
    Json,
    /// Prometheus text exposition (`monitor` only).
    Prometheus,
}

/// Prints `value` as JSON, or `text()` as text.
pub(crate) fn emit<T: Serialize>(format: Format, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Prometheus => {
            return Err(sqdata::Error::invalid(
                "format",
                "prometheus",
                "only `sqdata monitor` speaks it; use text or json",
            )
            .into());
        }
        Format::Text => {
            let t = text();
            if !t.is_empty() {
                println!("{}", t.trim_end());
            }
        }
    }
    Ok(())
}

/// Exit codes: 2 bad input, 3 corrupt data, 4 backend unavailable, 1 anything else.
pub(crate) fn report_error(format: Format, e: &anyhow::Error) -> ExitCode {
    let store = e.downcast_ref::<sqdata::Error>();
    let kind = store.map(|s| s.kind()).unwrap_or("error");
    match format {
        Format::Json | Format::Prometheus => {
            let v = serde_json::json!({ "error": { "kind": kind, "message": format!("{e:#}") } });
            eprintln!("{v}");
        }
        Format::Text => eprintln!("sqdata: {e:#}"),
    }
    ExitCode::from(match store {
        Some(sqdata::Error::InvalidInput { .. }) => 2,
        Some(sqdata::Error::Corrupt { .. }) => 3,
        Some(s) if s.is_retryable() => 4,
        _ => 1,
    })
}

/// A price for text output.
pub(crate) fn price(p: Option<f64>) -> String {
    p.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}
