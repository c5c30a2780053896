//! Redis down behind the hybrid: still ready (the files serve), the domain
//! shows as degraded in /readyz and /metrics.

mod common;

#[tokio::test]
async fn a_dead_redis_degrades_positions_but_not_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = sqdata::Config {
        stores: sqdata::Routing { positions: Some(sqdata::Backend::Redis), ..Default::default() },
        ..Default::default()
    };
    c.file.root = dir.path().join("data");
    // a port nothing listens on: this test needs no server, only its absence
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    c.redis.url = format!("redis://127.0.0.1:{port}/0");
    c.redis.connect_timeout_ms = 200;
    let addr = common::start(sqdata::open_all(&c).unwrap()).await;
    let (code, body) = common::get(addr, "/readyz").await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let positions = v["domains"].as_array().unwrap().iter().find(|d| d["domain"] == "positions").unwrap();
    assert_eq!(positions["mode"], "degraded", "{v}");
    let (_, text) = common::get(addr, "/metrics").await;
    for line in [
        "sqdata_backend_up{backend=\"redis\"} 0",
        "sqdata_hybrid_state{domain=\"positions\"} 1",
        "sqdata_hybrid_primary_failures_total{domain=\"positions\"}",
    ] {
        assert!(text.contains(line), "{line} missing in:\n{text}");
    }
}
