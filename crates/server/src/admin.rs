//! The admin page at `/admin/`: hand-written static files (`assets/admin/`:
//! the HTML shell, ES modules, the stylesheet, the zh-CN/en strings, a
//! favicon) compiled into the binary with `include_bytes!` and served under
//! a strict Content-Security-Policy — this server's scripts, styles and
//! connections only, no inline script or style, no framing, no `<base>`.
//!
//! The page holds no data of its own: it signs in through the REST API
//! (the access token in memory only, refreshed through the HttpOnly
//! `sqdata_refresh` cookie) and shows what the API answers the signed-in
//! user, so every right is still checked by the server per request.
//! `/admin` redirects to `/admin/`; any other name under it is 404.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where the page lives.
pub const BASE: &str = "/admin";

/// The Content-Security-Policy of every answer under [`BASE`].
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

macro_rules! assets {
    ($($name:literal => $kind:expr),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../assets/admin/", $name)) as &[u8], $kind)),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the page: name, bytes, media type.
pub static ASSETS: &[(&str, &[u8], &str)] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "app.js" => JS,
    "api.js" => JS,
    "dom.js" => JS,
    "i18n.js" => JS,
    "health.js" => JS,
    "books.js" => JS,
    "deals.js" => JS,
    "kline.js" => JS,
    "equity.js" => JS,
    "params.js" => JS,
    "audit.js" => JS,
};

/// A strong entity tag per asset (FNV-1a of its bytes), computed once.
fn tags() -> &'static [HeaderValue] {
    static TAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|(_, bytes, _)| {
                let h = bytes
                    .iter()
                    .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
                HeaderValue::from_str(&format!("\"{h:016x}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
            })
            .collect()
    })
}

/// One asset by name; a name that is not one (or a path with a folder) is 404.
fn asset(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n")
            .into_response();
    };
    let (_, body, kind) = ASSETS[i];
    let tag = &tags()[i];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag.to_str().unwrap_or_default()));
    let mut r = if fresh { StatusCode::NOT_MODIFIED.into_response() } else { (StatusCode::OK, body).into_response() };
    let h = r.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    h.insert(header::ETAG, tag.clone());
    r
}

/// `/admin` (a redirect), `/admin/` (the page) and `/admin/<file>`, every
/// answer with the CSP, `nosniff`, `no-referrer`, no framing, and
/// revalidation on each load (a new binary's page is never mixed with an
/// old one's modules).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let fixed = |name: &'static str, value: &'static str| {
        SetResponseHeaderLayer::overriding(header::HeaderName::from_static(name), HeaderValue::from_static(value))
    };
    Router::new()
        .route(BASE, get(|| async { Redirect::permanent(&format!("{BASE}/")) }))
        .route(&format!("{BASE}/"), get(|headers: HeaderMap| async move { asset("index.html", &headers) }))
        .route(
            &format!("{BASE}/{{*file}}"),
            get(|Path(f): Path<String>, headers: HeaderMap| async move { asset(&f, &headers) }),
        )
        .layer(fixed("content-security-policy", CSP))
        .layer(fixed("x-content-type-options", "nosniff"))
        .layer(fixed("referrer-policy", "no-referrer"))
        .layer(fixed("x-frame-options", "DENY"))
        .layer(fixed("cache-control", "no-cache"))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str, tag: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req = Request::get(path);
        if let Some(t) = tag {
            req = req.header(header::IF_NONE_MATCH, t);
        }
        let r = router::<()>().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = r.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap().to_vec();
        (parts.status, parts.headers, bytes)
    }

    fn text(name: &str) -> &'static str {
        let (_, b, _) = ASSETS.iter().find(|(n, _, _)| *n == name).unwrap();
        std::str::from_utf8(b).unwrap()
    }

    #[tokio::test]
    async fn serves_the_page_with_its_headers_redirects_and_refuses_the_rest() {
        let (code, h, body) = get("/admin/", None).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(String::from_utf8(body).unwrap().contains("<script type=\"module\" src=\"app.js\">"));
        let (code, h, _) = get("/admin", None).await;
        assert_eq!(code, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(h[header::LOCATION], "/admin/");
        for missing in ["/admin/nope.js", "/admin/../lib.rs", "/admin/x/app.js", "/admin/app.js/"] {
            let (code, h, _) = get(missing, None).await;
            assert_eq!(code, StatusCode::NOT_FOUND, "{missing}");
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP, "{missing}");
        }
        let (code, h, _) = get("/admin/app.js", None).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], JS);
        let tag = h[header::ETAG].to_str().unwrap().to_string();
        let (code, _, body) = get("/admin/app.js", Some(&tag)).await;
        assert_eq!(code, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
    }

    #[test]
    fn no_inline_script_or_style_and_every_reference_is_served() {
        let html = text("index.html");
        for bad in ["<style", " style=", "javascript:", "onclick", "onload", "onerror"] {
            assert!(!html.contains(bad), "index.html contains {bad}");
        }
        for (i, _) in html.match_indices("<script") {
            assert!(html[i..].split_once('>').unwrap().0.contains("src="), "inline script in index.html");
        }
        for attr in ["src=\"", "href=\""] {
            for (i, _) in html.match_indices(attr) {
                let name = html[i + attr.len()..].split('"').next().unwrap();
                assert!(ASSETS.iter().any(|(n, _, _)| *n == name), "index.html names {name}, which is not served");
            }
        }
        for (name, bytes, _) in ASSETS {
            let s = std::str::from_utf8(bytes).unwrap();
            for bad in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
                assert!(!s.contains(bad), "{name} uses {bad}");
            }
            for store in ["localStorage", "sessionStorage", "document.cookie"] {
                assert!(!s.contains(store), "{name} touches {store}");
            }
            if !name.ends_with(".svg") {
                assert!(!s.contains("http://") && !s.contains("https://"), "{name} names another origin");
            }
            if name.ends_with(".js") {
                for (i, _) in s.match_indices("import ") {
                    let from = s[i..].lines().next().unwrap();
                    if let Some(spec) = from.split(['\'', '"']).nth(1) {
                        let file = spec.trim_start_matches("./");
                        assert!(ASSETS.iter().any(|(n, _, _)| *n == file), "{name} imports {spec}, not served");
                    }
                }
            }
        }
    }
}
