//! The rollout through the API on a tier with a server (positions on the
//! test Redis, a private key prefix): the stages and the waiting books, a
//! promotion refused while the server lacks a book and done once it holds
//! it, a rollback to the files — and all of it admin only.

use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_promote_and_rollback_through_the_api() {
    let url = sqdata_testkit::env("SQDATA_TEST_REDIS_URL");
    let prefix = format!("sqapiro{}", sqdata::sample::random_u64() % 1_000_000_000);
    let s = Srv::start_on(|c| {
        c.stores.positions = Some(sqdata::Backend::Redis);
        c.redis.url = url.clone();
        c.redis.prefix = prefix.clone();
        c.hybrid.stage = sqdata::hybrid::Stage::Files;
    })
    .await;
    // a book written while at the files stage: the server does not hold it
    let buys = format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions/buys");
    assert_eq!(s.post(&buys, &s.trader, json!({ "codes": ["000001.SZ"] })).await.0, 200);

    let (st, v) = s.get("/api/v1/ops/rollout", &s.admin).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["stages"]["*"], "files", "{v}");
    assert_eq!(s.get("/api/v1/ops/rollout", &s.trader).await.0, 403);
    assert_eq!(s.post("/api/v1/ops/rollout/promote", &s.trader, json!({ "account": ACC_W })).await.0, 403);

    // the check finds the book missing on the server: a promotion is refused, nothing changes
    let (st, v) = s.post("/api/v1/ops/rollout/check", &s.admin, json!({ "account": ACC_W })).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["data"]["domains"].to_string().contains("differences"), "{v}");
    let (st, v) = s.post("/api/v1/ops/rollout/promote", &s.admin, json!({ "account": ACC_W, "to": "writes" })).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["outcome"], "differs", "{v}");
    assert_eq!(s.get("/api/v1/ops/rollout", &s.admin).await.1["data"]["stages"][ACC_W], json!(null));

    // forced: promoted (the book adopted), then back to the files
    let (_, v) = s
        .post("/api/v1/ops/rollout/promote", &s.admin, json!({ "account": ACC_W, "to": "writes", "force": true }))
        .await;
    assert_eq!(v["data"]["outcome"], "promoted", "{v}");
    assert_eq!(s.get("/api/v1/ops/rollout", &s.admin).await.1["data"]["stages"][ACC_W], "writes");
    let (st, v) = s.post("/api/v1/ops/rollout/rollback", &s.admin, json!({ "account": ACC_W })).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(s.get("/api/v1/ops/rollout", &s.admin).await.1["data"]["stages"][ACC_W], "files");
    let audit = s.get("/api/v1/audit?limit=100", &s.admin).await.1.to_string();
    assert!(audit.contains("rollout.promote") && audit.contains("rollout.rollback"), "{audit:.2000}");
    // the position is still there, served by the files
    let (_, v) = s.get(&format!("/api/v1/accounts/{ACC_W}/books/{BOOK}/positions"), &s.viewer).await;
    assert_eq!(v["data"]["positions"][0]["code"], "000001.SZ", "{v}");
    let redis = sqdata::RedisStore::open(sqdata::RedisConfig { url, prefix, ..Default::default() }).unwrap();
    redis.purge_prefix().await.unwrap();
}
