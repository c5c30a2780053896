//! Percentiles and the report table.

use std::time::Duration;

use serde::Serialize;

/// Timings of one implementation of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// What was measured (`sqdata file`, `SilverQuant way`, …).
    pub implementation: String,
    /// Iterations timed.
    pub samples: usize,
    /// Median, µs.
    pub p50_us: f64,
    /// 95th percentile, µs.
    pub p95_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Items (rows, codes, bars) handled per second at the median.
    pub throughput_per_s: f64,
    /// What an item is.
    pub unit: String,
}

impl Measured {
    /// Summarises raw samples; `items` per iteration for the throughput.
    pub fn from_samples(implementation: &str, samples: &mut [Duration], items: u64, unit: &str) -> Measured {
        samples.sort_unstable();
        let pct = |p: f64| -> f64 {
            if samples.is_empty() {
                return f64::NAN;
            }
            let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
            samples[i].as_secs_f64() * 1e6
        };
        let p50 = pct(0.50);
        Measured {
            implementation: implementation.to_owned(),
            samples: samples.len(),
            p50_us: p50,
            p95_us: pct(0.95),
            p99_us: pct(0.99),
            throughput_per_s: if p50 > 0.0 { items as f64 / (p50 / 1e6) } else { f64::NAN },
            unit: unit.to_owned(),
        }
    }
}

/// One scenario: sqdata and the baseline, measured in the same run.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Scenario name.
    pub name: String,
    /// The target for sqdata's P95, µs, if there is one.
    pub target_p95_us: Option<f64>,
    /// sqdata first, then the baselines.
    pub results: Vec<Measured>,
    /// Notes on what exactly is compared.
    pub note: String,
}

impl Scenario {
    /// sqdata's P95 against the target.
    pub fn passes(&self) -> Option<bool> {
        Some(self.results.first()?.p95_us <= self.target_p95_us?)
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

/// A plain-text table: P50/P95/P99, throughput, ratio to sqdata, target.
pub fn render(scenarios: &[Scenario]) -> String {
    let mut t = String::new();
    for s in scenarios {
        t.push_str(&format!("\n{}\n", s.name));
        if !s.note.is_empty() {
            t.push_str(&format!("  ({})\n", s.note));
        }
        t.push_str(&format!(
            "  {:<34} {:>7} {:>11} {:>11} {:>11} {:>16} {:>9}\n",
            "implementation", "samples", "P50", "P95", "P99", "throughput", "P50 ratio"
        ));
        let base = s.results.first().map(|m| m.p50_us).unwrap_or(f64::NAN);
        for m in &s.results {
            t.push_str(&format!(
                "  {:<34} {:>7} {:>11} {:>11} {:>11} {:>11.0} {:<4} {:>8.1}x\n",
                m.implementation,
                m.samples,
                fmt_us(m.p50_us),
                fmt_us(m.p95_us),
                fmt_us(m.p99_us),
                m.throughput_per_s,
                format!("{}/s", m.unit),
                m.p50_us / base
            ));
        }
        if let (Some(target), Some(pass)) = (s.target_p95_us, s.passes()) {
            t.push_str(&format!(
                "  target: sqdata P95 <= {} -> {}\n",
                fmt_us(target),
                if pass { "PASS" } else { "MISS" }
            ));
        }
    }
    t
}
