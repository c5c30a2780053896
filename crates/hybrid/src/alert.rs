//! Urgent events: a log line, a metric, and (when configured) a
//! DingTalk/Feishu-style JSON POST to a webhook.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

/// One urgent event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `degraded`, `recovered`, `inconsistency`, `compensation_failed`, …
    pub kind: String,
    /// The domain (positions, quotes, deals, assets, bars).
    pub domain: String,
    /// What happened.
    pub message: String,
}

/// Sends alerts somewhere. Never fails or blocks the caller.
pub trait Alerter: Send + Sync + std::fmt::Debug {
    /// Fire and forget.
    fn send(&self, alert: Alert);
}

/// Logs only (the default).
#[derive(Debug, Default)]
pub struct LogAlerter;

impl Alerter for LogAlerter {
    fn send(&self, a: Alert) {
        tracing::warn!(kind = %a.kind, domain = %a.domain, "{}", a.message);
        metrics::counter!("sqdata_alerts_total", "kind" => a.kind.clone()).increment(1);
    }
}

/// The webhook body: DingTalk's `{"msgtype":"text","text":{"content":…}}`
/// and Feishu's `{"msg_type":"text","content":{"text":…}}` in one document,
/// plus the structured alert.
pub fn webhook_body(a: &Alert) -> serde_json::Value {
    let text = format!("[sqdata] {} {}: {}", a.domain, a.kind, a.message);
    serde_json::json!({
        "msgtype": "text",
        "text": { "content": text },
        "msg_type": "text",
        "content": { "text": text },
        "sqdata": a,
    })
}

/// POSTs each alert to an `http://` webhook (and logs it).
#[derive(Debug, Clone)]
pub struct HttpWebhook {
    url: Arc<str>,
}

impl HttpWebhook {
    /// For `http://…` URLs.
    pub fn new(url: &str) -> HttpWebhook {
        HttpWebhook { url: url.into() }
    }
}

impl Alerter for HttpWebhook {
    fn send(&self, a: Alert) {
        LogAlerter.send(a.clone());
        let url = self.url.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else { return };
        handle.spawn(async move {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let req = http::Request::post(&*url)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(webhook_body(&a).to_string())));
            let Ok(req) = req else {
                metrics::counter!("sqdata_alerts_failed_total").increment(1);
                return;
            };
            match tokio::time::timeout(Duration::from_secs(5), client.request(req)).await {
                Ok(Ok(resp)) if resp.status().is_success() => {
                    metrics::counter!("sqdata_alerts_sent_total").increment(1)
                }
                _ => metrics::counter!("sqdata_alerts_failed_total").increment(1),
            }
        });
    }
}
