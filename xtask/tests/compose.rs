//! compose/: every file parses; every metric the alert rules and the Grafana
//! dashboard use is one sqdata exports (names taken from the source's
//! `metrics::…!("sqdata_…")` calls); every service has a healthcheck, a
//! memory limit and the network; no secret has a default (`${VAR:?…}`),
//! Redis, ClickHouse and sqdata carry credentials, the image runs as a
//! non-root user.

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

/// Every string in a YAML document (keys and values), with its path.
fn strings<'a>(y: &'a Yaml, path: &str, out: &mut Vec<(String, &'a str)>) {
    match y {
        Yaml::String(s) => out.push((path.to_owned(), s)),
        Yaml::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                strings(v, &format!("{path}[{i}]"), out);
            }
        }
        Yaml::Hash(h) => {
            for (k, v) in h {
                let key = k.as_str().map_or_else(|| format!("{k:?}"), str::to_owned);
                strings(k, path, out);
                strings(v, &format!("{path}.{key}"), out);
            }
        }
        _ => {}
    }
}

/// A `${…}` interpolation: the variable's name and what follows it inside
/// the braces (`:?message`, `:-default`, or nothing).
#[derive(Debug)]
struct Var {
    name: String,
    rest: String,
}

/// The interpolations in a compose value (`$$` is a literal `$`).
fn vars(s: &str) -> Vec<Var> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && b.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        if b[i] == b'$' && b.get(i + 1) == Some(&b'{') {
            let end = s[i..].find('}').map(|e| i + e).unwrap_or_else(|| panic!("unclosed ${{ in {s:?}"));
            let inner = &s[i + 2..end];
            let n = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
            out.push(Var { name: inner[..n].to_owned(), rest: inner[n..].to_owned() });
            i = end + 1;
            continue;
        }
        i += 1;
    }
    out
}

fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "USER", "KEY", "AUTH"].iter().any(|w| n.contains(w))
}

fn required(v: &Var) -> bool {
    v.rest.starts_with(":?") && v.rest.len() > 2
}

const COMPOSE_FILES: [&str; 2] = ["compose/docker-compose.yml", "compose/full.yml"];

/// Item 9 of the reliability issue: no fallback passwords. Every variable
/// naming a secret (or a user) is `${VAR:?explanation}`, so compose refuses
/// to start without it; every secret-looking setting of a service comes
/// from such a variable; `.env.example` lists every one, and `.env` is
/// git-ignored.
#[test]
fn no_secret_has_a_default() {
    let example = std::fs::read_to_string(root().join("compose/.env.example")).expect(".env.example");
    let listed: BTreeSet<&str> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
        .collect();
    let mut used = BTreeSet::new();
    for file in COMPOSE_FILES {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        assert!(!text.to_ascii_lowercase().contains("change-me"), "{file}: a placeholder password is left");
        let doc = yaml(file);
        let mut all = Vec::new();
        strings(&doc, "", &mut all);
        for (path, s) in &all {
            for v in vars(s).into_iter().filter(|v| secret_name(&v.name)) {
                let default = v.rest.starts_with(":-") || v.rest.starts_with('-');
                assert!(!default, "{file}{path}: {s:?} gives {} a default", v.name);
                assert!(required(&v), "{file}{path}: {s:?} must be ${{{}:?explanation}}", v.name);
                used.insert(v.name);
            }
        }
        // Every service's secret settings come from a required variable.
        for (name, s) in doc["services"].as_hash().expect("services") {
            let name = name.as_str().unwrap();
            for (k, v) in s["environment"].as_hash().into_iter().flatten() {
                let (k, v) = (k.as_str().unwrap(), v.as_str().unwrap_or_default());
                let secret = ["PASSWORD", "SECRET", "KEY", "AUTH"].iter().any(|w| k.contains(w))
                    || (v.contains("://") && v.contains('@'));
                if secret {
                    assert!(vars(v).iter().any(required), "{file}: {name}.{k} = {v:?} is not a ${{VAR:?…}}");
                }
            }
        }
    }
    let missing: Vec<_> = used.iter().filter(|v| !listed.contains(v.as_str())).collect();
    assert!(missing.is_empty(), "compose/.env.example does not list {missing:?}");
    for v in &listed {
        assert!(used.contains(*v), ".env.example lists {v}, which no compose file uses");
    }
    let ignore = std::fs::read_to_string(root().join("compose/.gitignore")).expect("compose/.gitignore");
    assert!(ignore.lines().any(|l| l.trim() == ".env"), "compose/.gitignore must ignore .env");
    let readme = std::fs::read_to_string(root().join("compose/README.md")).unwrap();
    for v in &used {
        assert!(readme.contains(v.as_str()), "compose/README.md does not document {v}");
    }
}

/// The value of a required variable `${name:?…}` somewhere in `s`.
fn requires(s: &str, name: &str) -> bool {
    vars(s).iter().any(|v| v.name == name && required(v))
}

/// Redis and ClickHouse run with credentials, their healthchecks use them,
/// and sqdata's environment carries the same ones.
#[test]
fn redis_clickhouse_and_sqdata_carry_credentials() {
    let c = yaml("compose/docker-compose.yml");
    let s = &c["services"];
    let flat = |y: &Yaml| -> String {
        let mut all = Vec::new();
        strings(y, "", &mut all);
        all.iter().map(|(_, s)| *s).collect::<Vec<_>>().join(" ")
    };

    // Redis: --requirepass from the variable, redis.conf loaded first.
    let cmd: Vec<&str> =
        s["redis"]["command"].as_vec().expect("redis command").iter().filter_map(Yaml::as_str).collect();
    assert_eq!(cmd.first(), Some(&"redis-server"), "{cmd:?}");
    assert!(cmd.contains(&"/usr/local/etc/redis/redis.conf"), "{cmd:?}");
    let at = cmd.iter().position(|a| *a == "--requirepass").expect("redis runs with --requirepass");
    assert!(cmd.get(at + 1).is_some_and(|p| requires(p, "SQDATA_REDIS_PASSWORD")), "{cmd:?}");
    let check = flat(&s["redis"]["healthcheck"]["test"]);
    let auth_env =
        s["redis"]["environment"]["REDISCLI_AUTH"].as_str().is_some_and(|p| requires(p, "SQDATA_REDIS_PASSWORD"));
    assert!(
        check.contains("redis-cli") && (auth_env || check.contains(" -a ")),
        "redis healthcheck without the password: {check}"
    );
    assert!(check.contains("PONG"), "redis-cli exits 0 on NOAUTH: the healthcheck must look for PONG: {check}");
    let conf = std::fs::read_to_string(root().join("compose/redis/redis.conf")).unwrap();
    assert!(
        !conf.lines().any(|l| l.trim_start().starts_with("requirepass")),
        "redis.conf holds no password (it is committed)"
    );

    // ClickHouse: a user with a password, the default user replaced.
    let ch = &s["clickhouse"]["environment"];
    let ch_user = ch["CLICKHOUSE_USER"].as_str().expect("CLICKHOUSE_USER");
    assert!(!ch_user.is_empty() && ch_user != "default", "{ch_user}");
    assert!(ch["CLICKHOUSE_PASSWORD"].as_str().is_some_and(|p| requires(p, "SQDATA_CLICKHOUSE_PASSWORD")));
    let check = flat(&s["clickhouse"]["healthcheck"]["test"]);
    assert!(
        check.contains("$$CLICKHOUSE_USER") && check.contains("$$CLICKHOUSE_PASSWORD"),
        "clickhouse healthcheck without credentials: {check}"
    );

    // MariaDB's healthcheck logs in (MariaDB 11 images have no mysqladmin).
    let check = flat(&s["mysql"]["healthcheck"]["test"]);
    assert!(!check.contains("mysqladmin") && check.contains("$$MARIADB_PASSWORD"), "{check}");

    // sqdata: the same credentials through SQDATA_* overrides.
    let env = &s["sqdata"]["environment"];
    let url = env["SQDATA_REDIS__URL"].as_str().expect("SQDATA_REDIS__URL");
    assert!(url.starts_with("redis://:") && url.ends_with("@redis:6379/0"), "{url}");
    assert!(requires(url, "SQDATA_REDIS_PASSWORD"), "{url}");
    assert_eq!(env["SQDATA_CLICKHOUSE__USER"].as_str(), Some(ch_user));
    assert!(env["SQDATA_CLICKHOUSE__PASSWORD"].as_str().is_some_and(|p| requires(p, "SQDATA_CLICKHOUSE_PASSWORD")));
}

/// The image runs sqdata as a non-root user that owns its data folder.
#[test]
fn the_image_runs_as_a_non_root_user() {
    let docker = std::fs::read_to_string(root().join("compose/Dockerfile")).unwrap();
    let lines: Vec<&str> = docker.lines().map(str::trim).filter(|l| !l.starts_with('#')).collect();
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).expect("FROM");
    let runtime = &lines[last_from..];
    let user = runtime.iter().rev().find_map(|l| l.strip_prefix("USER ")).expect("the runtime stage sets USER");
    let who = user.trim().split(':').next().unwrap_or_default();
    assert!(!who.is_empty() && who != "root" && who != "0", "runs as {user:?}");
    let user_at = runtime.iter().rposition(|l| l.starts_with("USER ")).unwrap();
    let cmd_at = runtime.iter().rposition(|l| l.starts_with("CMD ") || l.starts_with("ENTRYPOINT ")).expect("CMD");
    assert!(user_at < cmd_at, "USER comes before CMD");
    let stage = runtime.join("\n");
    assert!(stage.contains("useradd") && stage.contains("chown") && stage.contains("/var/lib/sqdata"), "{stage}");
    let ignore =
        std::fs::read_to_string(root().join("compose/Dockerfile.dockerignore")).expect("Dockerfile.dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "**/.env"), "compose/.env stays out of the build context");
}
