//! The OpenAPI document: the committed `docs/openapi.json` is the served
//! one (regenerate with `SQDATA_BLESS=1 cargo nextest run -p sqdata-server
//! --test openapi`), and every operation declares one known permission
//! scope — a route without one fails here.

use sqdata_server::api::doc;
use sqdata_server::api::routes::SCOPES;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");

#[test]
fn the_committed_document_is_the_served_one() {
    let served = doc::openapi_json();
    if std::env::var_os("SQDATA_BLESS").is_some() {
        std::fs::write(COMMITTED, &served).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json differs from the code's document; regenerate it: \
         SQDATA_BLESS=1 cargo nextest run -p sqdata-server --test openapi"
    );
}

#[test]
fn every_operation_declares_one_known_scope() {
    let v: serde_json::Value = serde_json::from_str(&doc::openapi_json()).unwrap();
    let paths = v["paths"].as_object().unwrap();
    let mut n = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/api/v1/"), "{path} is outside /api/v1");
        for (method, op) in item.as_object().unwrap() {
            n += 1;
            let sec = op["security"].as_array().unwrap_or_else(|| panic!("{method} {path} declares no security"));
            assert!(!sec.is_empty(), "{method} {path}: empty security");
            let mut scopes: Vec<&str> = Vec::new();
            for req in sec {
                let req = req.as_object().unwrap();
                if req.is_empty() {
                    scopes.push("public");
                }
                for (scheme, s) in req {
                    assert!(scheme == "bearer" || scheme == "api_key", "{method} {path}: unknown scheme {scheme}");
                    let s: Vec<&str> = s.as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect();
                    assert_eq!(s.len(), 1, "{method} {path}: one scope per scheme");
                    scopes.push(s[0]);
                }
            }
            scopes.dedup();
            assert_eq!(scopes.len(), 1, "{method} {path}: one scope for every scheme, got {scopes:?}");
            assert!(SCOPES.contains(&scopes[0]), "{method} {path}: unknown scope {}", scopes[0]);
            if scopes[0].starts_with("account:") {
                // `/deals` takes the accounts of its body (every one checked)
                assert!(
                    path.contains("{account}") || path == "/api/v1/deals",
                    "{method} {path}: an account scope without an {{account}}"
                );
            }
            if scopes[0] != "public" {
                assert_eq!(sec.len(), 2, "{method} {path}: a token and a key both work");
            }
            assert!(op["operationId"].is_string(), "{method} {path}: no operationId");
            for code in ["401", "403", "404", "400"] {
                if scopes[0] != "public" || code == "400" {
                    assert!(op["responses"][code].is_object(), "{method} {path}: {code} undocumented");
                }
            }
        }
    }
    assert!(n >= 40, "only {n} operations");
}

/// utoipa keys components by type name: two `ToSchema` types of one name
/// in different modules silently share one schema (the document would then
/// describe the wrong body). Every name is unique.
#[test]
fn schema_type_names_are_unique() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api");
    let mut seen = std::collections::BTreeMap::new();
    let mut files = vec![std::path::PathBuf::from(dir)];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let mut derive = false;
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with("#[derive(") {
                derive = l.contains("ToSchema");
            }
            for kw in ["pub struct ", "pub enum ", "struct ", "enum "] {
                if let Some(rest) = l.strip_prefix(kw) {
                    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if derive
                        && !name.is_empty()
                        && let Some(other) = seen.insert(name.clone(), p.display().to_string())
                    {
                        panic!("two ToSchema types named {name}: {other} and {}", p.display());
                    }
                    derive = false;
                }
            }
        }
    }
    assert!(seen.len() > 30, "found only {} schema types", seen.len());
}
