//! The operations of `/api/v1`, by area, and what they share: the JSON
//! body and query extractors that name the bad field, the error responses
//! every operation documents, the permission scopes, audit-first writes and
//! the access log of reads.

pub mod auth;
pub mod market;
pub mod ops;
pub mod registry;
pub mod rollout;
pub mod schema;
pub mod trading;
pub mod users;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqdata::AccessEntry;
use utoipa::{IntoResponses, ToSchema};

use super::Api;
use super::principal::Principal;
use super::reply::ApiError;

/// The permission scopes operations declare (OpenAPI `security`), checked
/// in the handlers and by a test over every operation:
/// - `public`: no credential (login, refresh);
/// - `authenticated`: any valid user or key (market data, own profile);
/// - `account:read` / `account:write`: the `{account}` of the path, by
///   min(role, grant); admins everywhere;
/// - `admin`: users, grants, keys, audit, registry changes, operations.
pub const SCOPES: [&str; 5] = ["public", "authenticated", "account:read", "account:write", "admin"];

/// The error body (the envelope with `data` naming the field, or null).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status.
    pub code: u16,
    /// The input at fault, when one is (null otherwise).
    pub data: Option<FieldRef>,
    /// What went wrong.
    pub message: String,
}

/// The input an error is about.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldRef {
    /// A body field (`deals[2].code`), a query or path parameter, or `body`.
    pub field: String,
}

/// The errors every operation may answer.
#[derive(Debug, IntoResponses)]
pub enum Errors {
    /// Input the document rules out; `data.field` names it.
    #[response(status = 400)]
    Bad(ErrorBody),
    /// No valid credential (or two credentials at once).
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
    Unauthenticated(ErrorBody),
    /// Known, not allowed.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Not found (or not visible to the caller: the same answer).
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// It collides with what exists (a user name taken); `data.field` names it.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// A conflicting change (an `If-Match` that no longer matches).
    #[response(status = 412)]
    Precondition(ErrorBody),
    /// The body is too large.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// Input the document allows that cannot be carried out — `from` after
    /// `to`, a code given twice, a version or user that does not exist, too
    /// many bytes; `data.field` names it.
    #[response(status = 422)]
    Unprocessable(ErrorBody),
    /// Too many requests.
    #[response(status = 429, headers(("Retry-After" = String, description = "Seconds to wait")))]
    TooMany(ErrorBody),
    /// A store is unavailable, or the password hashers are busy (retry).
    #[response(status = 503, headers(("Retry-After" = String, description = "Seconds to wait, when known")))]
    Unavailable(ErrorBody),
}

/// A JSON object body whose errors name the field (`serde_path_to_error`);
/// the size limit is the router's.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(e.status(), "the body is too large")
            } else {
                ApiError::bad("body", "could not read the body")
            }
        })?;
        // every body is a JSON object: serde would also take a struct
        // written as an array of its fields (`[null, null]`)
        if bytes.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')) != Some(&b'{') {
            return Err(ApiError::bad("body", "the body must be a JSON object"));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(Body).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." || path.is_empty() { "body".to_string() } else { path };
            ApiError::bad(&field, format!("invalid {field}: {}", e.inner()))
        })
    }
}

/// The query string, read field by field with errors naming the field.
#[derive(Debug, Default)]
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Params, ApiError> {
        let q = parts.uri.query().unwrap_or_default();
        let mut m = HashMap::new();
        for (k, v) in url_pairs(q) {
            if m.insert(k.clone(), v).is_some() {
                return Err(ApiError::bad(&k, format!("{k} is given twice")));
            }
        }
        Ok(Params(m))
    }
}

/// `a=1&b=2`, percent-decoded (`+` is a space).
fn url_pairs(q: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

impl Params {
    /// A text parameter.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter parsed by `f`, the error naming it.
    pub fn parse<T>(&self, name: &str, f: impl Fn(&str) -> sqdata::Result<T>) -> Result<Option<T>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => f(v).map(Some).map_err(|e| ApiError::bad(name, format!("invalid {name}: {e}"))),
        }
    }

    /// A parameter checked by one of the [`schema`] checks.
    pub fn get<T>(&self, name: &str, f: impl Fn(&str, &str) -> Result<T, ApiError>) -> Result<Option<T>, ApiError> {
        self.0.get(name).map(|v| f(name, v)).transpose()
    }

    /// A whole number within `lo..=hi`, decimal digits (an `integer` of
    /// the document: no sign, no blanks; `12.0` is the same integer).
    pub fn number(&self, name: &str, lo: u64, hi: u64) -> Result<Option<u64>, ApiError> {
        self.get(name, |name, v| {
            // `12` or `12.0` (a zero fraction: the same integer)
            let int = match v.split_once('.') {
                Some((i, f)) if !f.is_empty() && f.bytes().all(|b| b == b'0') => i,
                Some(_) => "",
                None => v,
            };
            (!int.is_empty() && int.bytes().all(|b| b.is_ascii_digit()))
                .then(|| int.parse::<u64>().ok())
                .flatten()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| ApiError::bad(name, format!("invalid {name}: expected a whole number {lo} to {hi}")))
        })
    }

    /// A day, `YYYY-MM-DD`.
    pub fn date(&self, name: &str) -> Result<Option<chrono::NaiveDate>, ApiError> {
        self.get(name, schema::day)
    }

    /// One of `values`.
    pub fn choice<'a>(&self, name: &str, values: &[&'a str]) -> Result<Option<&'a str>, ApiError> {
        self.get(name, |name, v| schema::one_of(name, v, values))
    }

    /// Refuses parameters the operation does not know (typos are errors).
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().find(|k| !known.contains(&k.as_str())) {
            Some(k) => Err(ApiError::bad(k, format!("unknown parameter {k}"))),
            None => Ok(()),
        }
    }
}

impl Api {
    /// Writes the audit row of a change *before* the change: a change whose
    /// audit row cannot be stored is refused (503) and nothing changes.
    pub async fn audit_first(
        &self,
        p: &Principal,
        action: &str,
        entity: &str,
        detail: serde_json::Value,
    ) -> Result<(), ApiError> {
        self.auth.audit_event(&p.actor(), action, entity, detail).await.map_err(|e| {
            tracing::error!(error = %e, action, "the audit trail refused a row; the change is refused");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the audit trail is unavailable; nothing changed",
            )
        })
    }

    /// Queues an access-log row for a read.
    pub fn log_read(&self, p: &Principal, route: &str, account: Option<&str>, status: u16) {
        self.access.push(AccessEntry {
            at: chrono::Utc::now(),
            principal: p.name(),
            method: "GET".into(),
            route: route.into(),
            account: account.map(String::from),
            status,
            ip: p.ip.clone(),
        });
    }
}

/// The state handlers take.
pub type State = axum::extract::State<Arc<Api>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode() {
        let got = url_pairs("a=1&b=x%20y&c=%E4%B8%8A&d=+&e=%zz&f");
        let m: HashMap<_, _> = got.into_iter().collect();
        assert_eq!(m["b"], "x y");
        assert_eq!(m["c"], "上");
        assert_eq!(m["d"], " ");
        assert_eq!(m["e"], "%zz");
        assert_eq!(m["f"], "");
        assert!(url_pairs("%").len() == 1 && url_pairs("a=%4").len() == 1, "no panic on a cut escape");
    }
}
