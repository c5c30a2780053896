//! The HTTP endpoints on the embedded tier.

mod common;

#[tokio::test]
async fn healthz_readyz_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = sqdata::Config::default();
    c.file.root = dir.path().join("data");
    let addr = common::start(sqdata::open_all(&c).unwrap()).await;

    let (code, body) = common::get(addr, "/healthz").await;
    assert_eq!((code, body.as_str()), (200, r#"{"status":"ok"}"#));

    let (code, body) = common::get(addr, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], true);
    assert_eq!(v["backends"][0]["backend"], "file");
    assert!(v["disk"]["free_bytes"].as_u64().unwrap() > 0, "{v}");
    assert!(v["memory"]["process_resident_bytes"].as_u64().unwrap() > 0, "{v}");

    let (code, text) = common::get(addr, "/metrics").await;
    assert_eq!(code, 200);
    for line in ["sqdata_backend_up{backend=\"file\"} 1", "sqdata_ready 1", "# TYPE sqdata_disk_free_ratio gauge"] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
}

/// The files stop answering (the data folder replaced by a file): not ready, 503.
#[tokio::test]
async fn readyz_is_503_when_the_files_do_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = sqdata::Config::default();
    c.file.root = dir.path().join("data");
    let addr = common::start(sqdata::open_all(&c).unwrap()).await;
    std::fs::remove_dir_all(&c.file.root).unwrap();
    std::fs::write(&c.file.root, b"not a folder").unwrap();
    // the background prober notices within its interval (100 ms here)
    let t = std::time::Instant::now();
    let (code, body) = loop {
        let (code, body) = common::get(addr, "/readyz").await;
        if code == 503 || t.elapsed() > std::time::Duration::from_secs(10) {
            break (code, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(code, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], false);
    assert!(v["backends"][0]["error"].as_str().is_some(), "{v}");
    let (code, _) = common::get(addr, "/healthz").await;
    assert_eq!(code, 200, "the process itself is alive");
}

/// Requests never probe: many GETs of /readyz and /metrics between two
/// prober rounds leave the backends' health-probe count unchanged.
#[tokio::test]
async fn requests_read_the_probers_state_and_never_probe() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = sqdata::Config::default();
    c.file.root = dir.path().join("data");
    let opened = sqdata::open_all(&c).unwrap();
    let prometheus = sqdata_server::prometheus();
    let listener = sqdata_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = std::sync::Arc::new(sqdata_server::AppState::new(opened, prometheus.clone(), addr, &c.api));
    state.refresh().await;
    tokio::spawn(sqdata_server::serve(listener, state.clone(), std::future::pending()));
    let probes = || {
        let text = prometheus.render();
        text.lines()
            .filter(|l| l.starts_with("sqdata_op_duration_seconds_count") && l.contains("op=\"health\""))
            .map(|l| l.rsplit(' ').next().unwrap_or("0").parse::<f64>().unwrap_or(0.0))
            .sum::<f64>()
    };
    let before = probes();
    assert!(before >= 1.0, "the first round probed");
    for _ in 0..10 {
        assert_eq!(common::get(addr, "/readyz").await.0, 200);
        assert_eq!(common::get(addr, "/metrics").await.0, 200);
    }
    assert_eq!(probes(), before, "a request probed a backend");
}

/// On a non-loopback bind the body anyone can read carries states, not
/// paths, URLs or errors; the bearer token unlocks the detail.
#[tokio::test]
async fn the_detailed_body_needs_loopback_or_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = sqdata::Config::default();
    c.file.root = dir.path().join("data");
    c.api.metrics_token = Some("a-token-of-sixteen-chars".into());
    let opened = sqdata::open_all(&c).unwrap();
    let listener = sqdata_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    // as if bound to a public interface
    let public: std::net::SocketAddr = "10.1.2.3:8787".parse().unwrap();
    let state = std::sync::Arc::new(sqdata_server::AppState::new(opened, sqdata_server::prometheus(), public, &c.api));
    state.refresh().await;
    tokio::spawn(sqdata_server::serve(listener, state, std::future::pending()));
    let root = c.file.root.display().to_string();
    let (code, body) = common::get(addr, "/readyz").await;
    assert_eq!(code, 200);
    assert!(!body.contains(&root) && !body.contains("disk") && !body.contains("error"), "{body}");
    assert!(body.contains("\"ready\":true") && body.contains("\"backend\":\"file\""), "{body}");
    let (_, body) = common::get_with(addr, "/readyz", "Authorization: Bearer wrong-token-of-sixteen").await;
    assert!(!body.contains(&root), "{body}");
    let (_, body) = common::get_with(addr, "/readyz", "Authorization: Bearer a-token-of-sixteen-chars").await;
    assert!(body.contains(&root), "the token unlocks the detail: {body}");
}
