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
    let (code, body) = common::get(addr, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ready"], false);
    assert!(v["backends"][0]["error"].as_str().is_some(), "{v}");
    let (code, _) = common::get(addr, "/healthz").await;
    assert_eq!(code, 200, "the process itself is alive");
}
