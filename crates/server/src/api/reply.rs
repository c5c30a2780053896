//! The envelope every answer comes in — `{code, data, message}`, `code` 0
//! on success and the HTTP status otherwise — pages `{total, page,
//! pageSize, data}`, and `ApiError`, the one place core errors become HTTP.
//!
//! 400 is for input the OpenAPI document rules out (a store's
//! `InvalidInput` stays 400: the handlers check what the document states
//! before a store sees it); 422 is for input the document allows but the
//! request cannot be carried out with — `from` after `to`, a code given
//! twice, a version or user it names that does not exist, a byte budget a
//! schema cannot state — decided by the handlers, never by mapping a
//! store's error. Both name the field.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqdata::Error;
use utoipa::ToSchema;

/// Every answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// 0 on success, else the HTTP status.
    pub code: u16,
    /// The result (`null` on errors, or `{"field": …}` naming the bad input).
    pub data: Option<T>,
    /// "ok", or what went wrong, naming the field.
    pub message: String,
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageOut<T> {
    /// Rows in the whole result.
    pub total: u64,
    /// This page (1-based).
    pub page: u32,
    /// Rows per page.
    #[serde(rename = "pageSize")]
    pub page_size: u32,
    /// The rows.
    pub data: Vec<T>,
}

/// `200 {code: 0, data, message: "ok"}`.
pub fn ok<T: Serialize>(data: T) -> Response {
    (StatusCode::OK, Json(Envelope { code: 0, data: Some(data), message: "ok".into() })).into_response()
}

/// A failed request: the status, and a message naming the field.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
    /// The input field at fault.
    pub field: Option<String>,
    /// `WWW-Authenticate` / `Retry-After` and the like.
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), field: None, headers: Vec::new() }
    }

    /// 400 naming the field.
    pub fn bad(field: &str, message: impl Into<String>) -> ApiError {
        ApiError { field: Some(field.into()), ..ApiError::new(StatusCode::BAD_REQUEST, message) }
    }

    /// 422 naming the field: the document allows the input, the request
    /// cannot be carried out with it.
    pub fn unprocessable(field: &str, message: impl Into<String>) -> ApiError {
        ApiError { field: Some(field.into()), ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message) }
    }

    /// 409 naming the field: it collides with what exists.
    pub fn conflict(field: &str, message: impl Into<String>) -> ApiError {
        ApiError { field: Some(field.into()), ..ApiError::new(StatusCode::CONFLICT, message) }
    }

    /// 404 naming the parameter that names what does not exist.
    pub fn not_found_at(field: &str, what: &str) -> ApiError {
        ApiError { field: Some(field.into()), ..ApiError::not_found(what) }
    }

    /// 401: no valid credentials. One message whatever the reason (no oracle).
    pub fn unauthenticated() -> ApiError {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "authentication required");
        e.headers.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        e
    }

    /// 403: known, but not allowed.
    pub fn forbidden(what: &str) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, format!("not allowed: {what}"))
    }

    /// 404 for an account: the same bytes whether it is missing or hidden.
    pub fn no_account() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "account not found")
    }

    /// 404 for anything else.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    /// 429 with a retry hint.
    pub fn too_many(retry_after_s: u64) -> ApiError {
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests");
        if let Ok(v) = HeaderValue::from_str(&retry_after_s.max(1).to_string()) {
            e.headers.push((header::RETRY_AFTER, v));
        }
        e
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        match &e {
            Error::InvalidInput { field, .. } => ApiError::bad(field, e.to_string()),
            Error::Conflict { .. } => ApiError::new(StatusCode::PRECONDITION_FAILED, e.to_string()),
            // The store's own faults: no paths, URLs or driver text to the caller.
            Error::Unavailable { .. } | Error::Timeout { .. } => {
                tracing::warn!(error = %e, "a store is unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "a store is unavailable; retry")
            }
            _ => {
                tracing::error!(error = %e, "request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("internal error ({})", e.kind()))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let data = self.field.map(|f| serde_json::json!({ "field": f }));
        let body = Envelope { code: self.status.as_u16(), data, message: self.message };
        let mut r = (self.status, Json(body)).into_response();
        for (k, v) in self.headers {
            r.headers_mut().insert(k, v);
        }
        r
    }
}

/// A handler's result.
pub type ApiResult = std::result::Result<Response, ApiError>;
