//! The OpenAPI document and the router, built from the same source (the
//! `#[utoipa::path]` of every handler, registered through
//! `utoipa_axum::routes!`) so the two cannot drift; the document at
//! `/api/v1/openapi.json` and the vendored Swagger UI at `/api/v1/docs/`.
//!
//! `docs/openapi.json` in the repository is this document; a test fails on
//! any difference (`cargo xtask openapi` rewrites it).

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use super::Api;
use super::routes;
use super::routes::schema;

/// The base path of every operation.
pub const BASE: &str = "/api/v1";

/// The header machine clients send their API key in.
pub const API_KEY_HEADER: &str = "X-Api-Key";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "sqdata API",
        description = "SilverQuant's data over HTTP: positions, deals, assets, bars, quotes, the registry, \
                       users and access. Every answer is `{code, data, message}`; lists are pages \
                       `{total, page, pageSize, data}`; bars continue with `next_from`, never cut silently. \
                       Each operation's `security` names the scope it needs: `authenticated`, \
                       `account:read`/`account:write` on the `{account}` of the path (min of role and grant; \
                       admins everywhere) or `admin`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&Schemes),
    components(schemas(
        routes::ErrorBody, routes::FieldRef,
        schema::AccountId, schema::BookId, schema::UserName, schema::ApiKeyId, schema::StockCode,
        schema::Day, schema::Time, schema::DayOrTime, schema::Timestamp, schema::Version, schema::IfMatch,
        schema::RoleName, schema::StatusName, schema::RightName, schema::ViaName, schema::DealKindName,
        schema::PeriodName, schema::AdjustName, schema::AggregateByName, schema::ExportFormat, schema::Layout,
        schema::Price, schema::DealId, schema::DealName, schema::DealRemark, schema::DealStrategy,
        schema::AccountName, schema::BrokerName, schema::StrategyDescription, schema::StrategyKind,
        schema::ParamsNote, schema::KeyLabel, schema::NewPassword, schema::PresentedPassword
    )),
    tags(
        (name = "auth", description = "Login, refresh, logout, who am I, password"),
        (name = "users", description = "Users, grants, API keys, audit, access log (admin)"),
        (name = "registry", description = "Accounts, strategies, parameters with versions"),
        (name = "trading", description = "Positions, deals, assets of an account"),
        (name = "market", description = "Bars and quotes"),
        (name = "ops", description = "The service's state (admin)")
    )
)]
struct Doc;

/// The two ways to authenticate: a bearer access token (JWT) and an API key.
struct Schemes;

impl utoipa::Modify for Schemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(API_KEY_HEADER))));
    }
}

/// Every operation, under `/api/v1`, with its document.
fn operations() -> OpenApiRouter<Arc<Api>> {
    let v1 = OpenApiRouter::new()
        .merge(routes::auth::router())
        .merge(routes::users::router())
        .merge(routes::registry::router())
        .merge(routes::trading::router())
        .merge(routes::market::router())
        .merge(routes::ops::router())
        .merge(routes::rollout::router());
    OpenApiRouter::with_openapi(<Doc as utoipa::OpenApi>::openapi()).nest(BASE, v1)
}

/// The document (what `/api/v1/openapi.json` serves).
pub fn openapi() -> OpenApi {
    let mut doc = operations().split_for_parts().1;
    no_null_parameters(&mut doc);
    doc
}

/// A path, query or header parameter is absent or a string: never JSON
/// `null`. utoipa renders an optional parameter of a component type as
/// `oneOf [null, $ref]`; this keeps the `$ref` alone (`required: false`
/// already says it may be left out).
fn no_null_parameters(doc: &mut OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    let is_null =
        |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    for item in doc.paths.paths.values_mut() {
        let ops = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in ops.into_iter().flatten() {
            for p in op.parameters.iter_mut().flatten() {
                if let Some(RefOr::T(Schema::OneOf(one))) = &p.schema
                    && one.items.len() == 2
                    && let Some(other) = one.items.iter().find(|s| !is_null(s))
                    && one.items.iter().any(is_null)
                {
                    p.schema = Some(other.clone());
                }
            }
        }
    }
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn openapi_json() -> String {
    let mut s = openapi().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}

/// The API's router: the operations, the document and the Swagger UI.
pub fn router(api: Arc<Api>) -> Router {
    let (ops, mut doc) = operations().split_for_parts();
    no_null_parameters(&mut doc);
    let json: Arc<str> = {
        let mut s = doc.to_pretty_json().unwrap_or_default();
        s.push('\n');
        s.into()
    };
    ops.with_state(api)
        .route(
            &format!("{BASE}/openapi.json"),
            get(move || {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json.to_string()) }
            }),
        )
        .route(&format!("{BASE}/docs"), get(|| async { Redirect::permanent(&format!("{BASE}/docs/")) }))
        .route(&format!("{BASE}/docs/"), get(|| async { asset("index.html") }))
        .route(
            &format!("{BASE}/docs/{{file}}"),
            get(|axum::extract::Path(f): axum::extract::Path<String>| async move { asset(&f) }),
        )
}

/// A vendored Swagger UI file (npm `swagger-ui-dist`, in the binary).
fn asset(name: &str) -> Response {
    let (body, kind): (&'static [u8], &str) = match name {
        "index.html" => (include_bytes!("../../assets/swagger-ui/index.html"), "text/html; charset=utf-8"),
        "init.js" => (include_bytes!("../../assets/swagger-ui/init.js"), "text/javascript; charset=utf-8"),
        "swagger-ui.css" => (include_bytes!("../../assets/swagger-ui/swagger-ui.css"), "text/css; charset=utf-8"),
        "swagger-ui-bundle.js" => {
            (include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"), "text/javascript; charset=utf-8")
        }
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(kind).unwrap_or(HeaderValue::from_static("text/plain")));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    r
}
