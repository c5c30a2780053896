//! compose/: every file parses; every metric the alert rules and the Grafana
//! dashboard use is one sqdata exports (names taken from the source's
//! `metrics::…!("sqdata_…")` calls); every service has a healthcheck, a
//! memory limit and the network.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn yaml(rel: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{rel} does not parse: {e}")).remove(0)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Metric names sqdata records: string literals starting `sqdata_` passed to
/// the metrics macros or declared as the shared op-metric constants.
fn exported() -> BTreeSet<String> {
    let mut files = Vec::new();
    for c in std::fs::read_dir(root().join("crates")).unwrap() {
        let src = c.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut names = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, _) in text.match_indices("\"sqdata_") {
            let before = &text[..i];
            let is_metric = before.ends_with("!(") || before.trim_end().ends_with("&str =");
            if !is_metric {
                continue;
            }
            let name: String = text[i + 1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            names.insert(name);
        }
    }
    // histograms are rendered as summaries: name{quantile}, name_sum, name_count
    let with_suffixes: Vec<String> =
        names.iter().flat_map(|n| [format!("{n}_sum"), format!("{n}_count"), format!("{n}_bucket")]).collect();
    names.extend(with_suffixes);
    names
}

fn metric_tokens(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in expr.match_indices("sqdata_") {
        if i > 0 && expr.as_bytes()[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        out.push(expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect());
    }
    out
}

#[test]
fn the_source_exports_the_core_metrics() {
    let names = exported();
    for n in ["sqdata_op_duration_seconds", "sqdata_backend_up", "sqdata_hybrid_state", "sqdata_disk_free_ratio"] {
        assert!(names.contains(n), "{n} not found among {names:?}");
    }
}

#[test]
fn alert_rules_and_dashboard_use_only_exported_metrics() {
    let names = exported();
    let mut used = Vec::new();
    let alerts = yaml("compose/prometheus/alerts.yml");
    let groups = alerts["groups"].as_vec().expect("groups");
    let mut alert_names = Vec::new();
    for g in groups {
        for r in g["rules"].as_vec().expect("rules") {
            let expr = r["expr"].as_str().expect("expr");
            assert!(r["labels"]["severity"].as_str().is_some(), "{r:?} has no severity");
            alert_names.push(r["alert"].as_str().expect("alert").to_string());
            used.extend(metric_tokens(expr).into_iter().map(|m| ("alerts.yml", m)));
        }
    }
    for required in
        ["SqdataBackendDown", "SqdataDiskLow", "SqdataMemoryHigh", "SqdataMemoryCritical", "SqdataWriteFailuresRising"]
    {
        assert!(alert_names.iter().any(|a| a == required), "alert {required} missing");
    }
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("compose/grafana/dashboards/sqdata.json")).unwrap())
            .expect("dashboard JSON");
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            used.extend(metric_tokens(t["expr"].as_str().expect("expr")).into_iter().map(|m| ("sqdata.json", m)));
        }
    }
    assert!(used.len() > 20, "too few metric uses found: {used:?}");
    let unknown: Vec<_> = used.iter().filter(|(_, m)| !names.contains(m)).collect();
    assert!(unknown.is_empty(), "metrics sqdata does not export: {unknown:?}");
}

#[test]
fn prometheus_alertmanager_and_grafana_files_parse() {
    let p = yaml("compose/prometheus/prometheus.yml");
    assert_eq!(p["scrape_configs"][0]["static_configs"][0]["targets"][0].as_str(), Some("sqdata:8787"));
    assert_eq!(p["rule_files"][0].as_str(), Some("/etc/prometheus/alerts.yml"));
    let a = yaml("compose/alertmanager/alertmanager.yml");
    let urgent = a["route"]["routes"].as_vec().unwrap().iter().find(|r| r["receiver"].as_str() == Some("urgent"));
    assert!(urgent.is_some(), "critical alerts route to the webhook");
    let receivers = a["receivers"].as_vec().unwrap();
    assert!(receivers.iter().any(|r| r["webhook_configs"][0]["url"].as_str().is_some()));
    yaml("compose/grafana/provisioning/datasources/prometheus.yml");
    yaml("compose/grafana/provisioning/dashboards/sqdata.yml");
}

#[test]
fn every_service_has_a_healthcheck_a_memory_limit_and_the_network() {
    let c = yaml("compose/docker-compose.yml");
    assert_eq!(c["networks"]["silverquant-network"]["name"].as_str(), Some("silverquant-network"));
    let services = c["services"].as_hash().expect("services");
    let mut seen = Vec::new();
    for (name, s) in services {
        let name = name.as_str().unwrap();
        seen.push(name.to_string());
        assert!(s["healthcheck"]["test"].as_vec().is_some_and(|t| !t.is_empty()), "{name}: no healthcheck");
        assert!(s["mem_limit"].as_str().is_some(), "{name}: no mem_limit");
        let nets = s["networks"].as_vec().expect("networks");
        assert!(nets.iter().any(|n| n.as_str() == Some("silverquant-network")), "{name}: not on the network");
        let profiles: Vec<&str> = s["profiles"].as_vec().expect("profiles").iter().filter_map(|p| p.as_str()).collect();
        assert!(profiles.contains(&"full"), "{name}: every service belongs to the full profile");
        for v in s["volumes"].as_vec().into_iter().flatten() {
            let src = v.as_str().unwrap().split(':').next().unwrap();
            if src.starts_with("./") {
                assert!(root().join("compose").join(src).exists(), "{name}: mounts missing {src}");
            }
        }
    }
    for required in ["redis", "clickhouse", "mysql", "minio", "sqdata", "prometheus", "alertmanager", "grafana"] {
        assert!(seen.iter().any(|s| s == required), "service {required} missing");
    }
    let mvp: Vec<&String> = seen
        .iter()
        .filter(|n| {
            services[&Yaml::String(n.to_string())]["profiles"]
                .as_vec()
                .unwrap()
                .iter()
                .any(|p| p.as_str() == Some("mvp"))
        })
        .collect();
    assert!(!mvp.iter().any(|n| *n == "mysql" || *n == "minio"), "mysql and minio are full only");
    // the sqdata config inside compose is a valid sqdata config
    let toml = std::fs::read_to_string(root().join("compose/sqdata.toml")).unwrap();
    assert!(toml.contains("tier = \"mvp\"") && toml.contains("redis://redis:6379"));
}

/// The full-tier override: sqdata's config becomes the full one, with the
/// registry and archive credentials from the same variables as the servers.
#[test]
fn the_full_override_wires_mysql_and_minio() {
    let f = yaml("compose/full.yml");
    let sq = &f["services"]["sqdata"];
    let mounts: Vec<&str> = sq["volumes"].as_vec().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert!(mounts.contains(&"./sqdata-full.toml:/etc/sqdata/sqdata.toml:ro"), "{mounts:?}");
    let env = &sq["environment"];
    assert!(env["SQDATA_REGISTRY__URL"].as_str().unwrap().contains("${SQDATA_MYSQL_PASSWORD"));
    assert!(env["SQDATA_ARCHIVE__SECRET_KEY"].as_str().unwrap().contains("${SQDATA_MINIO_PASSWORD"));
    for dep in ["mysql", "minio-init"] {
        assert!(!sq["depends_on"][dep].is_badvalue(), "sqdata waits for {dep}");
    }
    let init = &f["services"]["minio-init"];
    assert!(init["healthcheck"]["test"].as_vec().is_some() && init["mem_limit"].as_str().is_some());
    assert!(init["entrypoint"].as_vec().unwrap().iter().any(|x| x.as_str().unwrap_or("").contains("sqdata-archive")));
    let toml = std::fs::read_to_string(root().join("compose/sqdata-full.toml")).unwrap();
    assert!(toml.contains("tier = \"full\"") && toml.contains("s3://sqdata-archive/") && toml.contains("mysql://"));
    let docker = std::fs::read_to_string(root().join("compose/Dockerfile")).unwrap();
    assert!(docker.contains("--features full"), "the image has every backend");
}
