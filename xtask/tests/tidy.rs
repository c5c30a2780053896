//! The invariants ARCHITECTURE.md states, checked (rust-analyzer's
//! `xtask/src/tidy.rs` idea): dependency rules from `cargo metadata`,
//! module docs, the conformance suite's registration, one licence, one
//! test-environment helper, files a reader can hold in mind, and blocking
//! I/O kept off the async executor.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

/// Workspace package → its normal (non-dev, non-build) dependencies.
fn normal_deps() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let mut m = BTreeMap::new();
    for p in v["packages"].as_array().expect("packages") {
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .map(|d| d["name"].as_str().unwrap_or_default().to_string())
            .collect();
        m.insert(p["name"].as_str().unwrap_or_default().to_string(), deps);
    }
    m
}

const BACKENDS: [&str; 6] =
    ["sqdata-file", "sqdata-redis", "sqdata-clickhouse", "sqdata-sql", "sqdata-archive", "sqdata-hybrid"];

#[test]
fn core_has_no_driver_and_backends_depend_on_core_only() {
    let deps = normal_deps();
    let core = &deps["sqdata-core"];
    for driver in
        ["redis", "clickhouse", "sqlx", "object_store", "parquet", "arrow-array", "hyper-util", "axum", "pyo3"]
    {
        assert!(!core.contains(driver), "sqdata-core depends on the driver {driver}");
    }
    for b in BACKENDS {
        let ours: Vec<&String> = deps[b].iter().filter(|d| d.starts_with("sqdata")).collect();
        assert_eq!(ours, vec!["sqdata-core"], "{b} depends on {ours:?}: backends depend on sqdata-core only");
    }
}

#[test]
fn the_shipped_binaries_link_no_test_code() {
    let deps = normal_deps();
    for bin in ["sqdata-cli", "sqdata-python", "sqdata-server"] {
        let mut seen = BTreeSet::new();
        let mut todo = vec![bin.to_string()];
        while let Some(p) = todo.pop() {
            if !seen.insert(p.clone()) {
                continue;
            }
            if let Some(d) = deps.get(&p) {
                todo.extend(d.iter().filter(|d| deps.contains_key(*d)).cloned());
            }
        }
        assert!(!seen.contains("sqdata-testkit"), "{bin} links sqdata-testkit (through {seen:?})");
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `src/**/*.rs` of the workspace.
fn sources() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for base in ["crates", "benches", "xtask"] {
        let mut all = Vec::new();
        rust_files(&root().join(base), &mut all);
        out.extend(all.into_iter().filter(|p| p.components().any(|c| c.as_os_str() == "src")));
    }
    out.sort();
    out
}

#[test]
fn every_source_file_opens_with_a_module_doc_and_stays_readable() {
    let mut missing = Vec::new();
    let mut long = Vec::new();
    for p in sources() {
        let text = std::fs::read_to_string(&p).expect("source");
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
        if !(first.starts_with("//!") || first.starts_with("#![doc = include_str!")) {
            missing.push(p.display().to_string());
        }
        let n = text.lines().count();
        if n > 800 {
            long.push(format!("{} ({n} lines)", p.display()));
        }
    }
    assert!(missing.is_empty(), "source files without a //! module doc: {missing:#?}");
    assert!(long.is_empty(), "source files over 800 lines (split by domain or role): {long:#?}");
}

/// The case functions of a testkit domain module: `pub async fn x(fx: &Fixture)`.
fn cases_in(module: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("crates/testkit/src").join(format!("{module}.rs"))).expect("module");
    text.lines()
        .filter_map(|l| l.strip_prefix("pub async fn "))
        .filter(|l| l.contains("(fx: &Fixture)"))
        .map(|l| l.split('(').next().unwrap_or_default().to_string())
        .collect()
}

/// The cases the `conformance!` macro registers for a domain.
fn registered(domain: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("crates/testkit/src/lib.rs")).expect("testkit lib");
    let arm = format!("($f:path, {domain}) => {{");
    let start = text.find(&arm).unwrap_or_else(|| panic!("no conformance arm for {domain}"));
    let body = &text[start..];
    let list = &body[body.find('[').expect("case list") + 1..body.find(']').expect("case list end")];
    list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

#[test]
fn every_conformance_case_is_registered_in_its_suite() {
    for domain in ["positions", "quotes", "deals", "assets", "bars", "registry", "auth"] {
        let (cases, reg) = (cases_in(domain), registered(domain));
        assert!(!cases.is_empty(), "no cases found in testkit/src/{domain}.rs");
        let unregistered: Vec<_> = cases.difference(&reg).collect();
        let unknown: Vec<_> = reg.difference(&cases).collect();
        assert!(unregistered.is_empty(), "{domain}: cases no backend runs: {unregistered:?}");
        assert!(unknown.is_empty(), "{domain}: registered but not defined: {unknown:?}");
    }
}

#[test]
fn one_licence_everywhere() {
    let ws = std::fs::read_to_string(root().join("Cargo.toml")).expect("workspace manifest");
    assert!(ws.contains("license = \"Apache-2.0\""), "the workspace licence");
    let mut manifests = Vec::new();
    for base in ["crates", "benches", "xtask"] {
        let dir = root().join(base);
        if dir.join("Cargo.toml").exists() {
            manifests.push(dir.join("Cargo.toml"));
        }
        for e in std::fs::read_dir(&dir).expect("dir").flatten() {
            if e.path().join("Cargo.toml").exists() {
                manifests.push(e.path().join("Cargo.toml"));
            }
        }
    }
    for m in manifests {
        let text = std::fs::read_to_string(&m).expect("manifest");
        assert!(text.contains("license.workspace = true"), "{} does not take the workspace licence", m.display());
    }
    let py = std::fs::read_to_string(root().join("crates/python/pyproject.toml")).expect("pyproject");
    assert!(py.contains("license = { text = \"Apache-2.0\" }"), "the Python package's licence differs");
}

#[test]
fn one_test_environment_helper() {
    let mut copies = Vec::new();
    let mut all = Vec::new();
    rust_files(&root().join("crates"), &mut all);
    for p in all.iter().filter(|p| p.components().any(|c| c.as_os_str() == "tests")) {
        let text = std::fs::read_to_string(p).expect("test source");
        if text.contains("fn env(") || text.contains("env::var(\"SQDATA_TEST_") {
            copies.push(p.display().to_string());
        }
    }
    assert!(copies.is_empty(), "read SQDATA_TEST_* through sqdata_testkit::env, not a copy: {copies:#?}");
}

/// The bodies of the `async fn`s of a source text, with the arguments of
/// calls that move work to the blocking pool cut out.
fn async_bodies_outside_blocking(text: &str) -> Vec<(usize, String)> {
    const OFFLOAD: [&str; 5] = ["spawn_blocking(", "blocking(", "blocking_here(", "block_in_place(", "with_journal("];
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find("async fn ") {
        let start = at + i;
        let Some(open) = text[start..].find('{').map(|o| start + o) else { break };
        // the body: balanced braces from `open`
        let (mut depth, mut end) = (0i32, open);
        for (k, b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let mut body = text[open..=end].to_string();
        for call in OFFLOAD {
            while let Some(p) = body.find(call) {
                let args = p + call.len();
                let (mut d, mut close) = (1i32, body.len());
                for (k, b) in body.as_bytes().iter().enumerate().skip(args) {
                    match b {
                        b'(' => d += 1,
                        b')' => {
                            d -= 1;
                            if d == 0 {
                                close = k;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                body.replace_range(p..close.min(body.len()), "OFFLOADED");
            }
        }
        out.push((text[..start].lines().count() + 1, body));
        at = end.max(start + 1);
    }
    out
}

#[test]
fn blocking_io_stays_off_the_async_executor() {
    const BLOCKING: [&str; 8] = [
        "std::fs::",
        "fsio::",
        "raw::fs::",
        "raw::replace",
        "raw::append",
        "File::open",
        "std::thread::sleep",
        "lock_exclusive(",
    ];
    // The stores, the composer, the server and the Python module: what runs
    // on a shared executor. The CLI's commands and the batch tools (backup,
    // import) run alone on their own runtime.
    const SERVING: [&str; 9] = ["core", "file", "redis", "clickhouse", "sql", "archive", "hybrid", "server", "python"];
    let mut found = Vec::new();
    let serving = |p: &Path| SERVING.iter().any(|c| p.starts_with(root().join("crates").join(c)));
    for p in sources().into_iter().filter(|p| serving(p)) {
        let text = std::fs::read_to_string(&p).expect("source");
        // unit tests (at the end of a file) are not serving code
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (line, body) in async_bodies_outside_blocking(text) {
            for pat in BLOCKING {
                if body.contains(pat) {
                    found.push(format!("{}:{line}: `{pat}` in an async fn", p.display()));
                }
            }
        }
    }
    assert!(found.is_empty(), "blocking I/O on the async executor (use spawn_blocking / the store's pool): {found:#?}");
}

/// A child-process role is not a test: a `#[test]` that does nothing unless
/// an environment variable is set would count as passing in every run.
#[test]
fn no_test_passes_by_doing_nothing() {
    let mut found = Vec::new();
    let mut all = Vec::new();
    rust_files(&root().join("crates"), &mut all);
    for p in all.iter().filter(|p| p.components().any(|c| c.as_os_str() == "tests")) {
        let text = std::fs::read_to_string(p).expect("test source");
        let lines: Vec<&str> = text.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if !l.trim_start().starts_with("#[") || !l.contains("test") {
                continue;
            }
            // the first statement of the test function
            let body = lines
                .iter()
                .skip(i + 1)
                .skip_while(|l| !(l.contains(" fn ") || l.starts_with("fn ")))
                .nth(1)
                .copied()
                .unwrap_or("");
            if body.contains("std::env::var") && body.contains("else { return }") {
                found.push(format!("{}:{}", p.display(), i + 1));
            }
        }
    }
    assert!(found.is_empty(), "tests that pass by returning when a variable is unset: {found:?}");
}
