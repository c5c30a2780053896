//! The hot read: a book's positions, which trading loops and dashboards
//! poll every second or faster. The answer is serialised straight from the
//! store's snapshot (no copy per position), and the bytes of the last
//! answer per book are kept: when the next snapshot is equal (most polls —
//! comparing 200 positions is a fraction of serialising them), those bytes
//! go out again. The snapshot is always read from the store: a change is
//! never served late.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Serialize;
use sqdata::{BookId, Code, PositionEntry, PositionSnapshot};

use super::Envelope;

/// Books whose last answer is kept (past it the cache starts over).
const BOOKS: usize = 4096;

/// The last answer per book.
#[derive(Debug, Default)]
pub struct PositionsCache {
    last: Mutex<HashMap<BookId, (PositionSnapshot, Bytes)>>,
}

impl PositionsCache {
    /// The `200 {code: 0, data: positions, message: "ok"}` answer of `s`.
    pub fn answer(&self, b: &BookId, s: PositionSnapshot) -> Response {
        if let Some((snap, bytes)) = self.last.lock().get(b)
            && *snap == s
        {
            return json(bytes.clone());
        }
        let body = Envelope { code: 0, data: Some(SnapshotView(&s)), message: "ok".into() };
        let bytes = match serde_json::to_vec(&body) {
            Ok(v) => Bytes::from(v),
            Err(e) => {
                tracing::error!(error = %e, "serialising positions");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            }
        };
        let mut last = self.last.lock();
        if last.len() >= BOOKS {
            last.clear();
        }
        last.insert(b.clone(), (s, bytes.clone()));
        json(bytes)
    }
}

fn json(bytes: Bytes) -> Response {
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A snapshot serialised as `PositionsOut` (`inc_date`, `positions: [{code,
/// day_count, max_price, min_price}]`).
struct SnapshotView<'a>(&'a PositionSnapshot);

struct Rows<'a>(&'a PositionSnapshot);

struct Row<'a>(&'a Code, &'a PositionEntry);

struct Shown<'a, T: std::fmt::Display>(&'a T);

impl<T: std::fmt::Display> Serialize for Shown<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

impl Serialize for Row<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PositionOut", 4)?;
        st.serialize_field("code", self.0)?;
        st.serialize_field("day_count", &self.1.day_count)?;
        st.serialize_field("max_price", &self.1.max_price)?;
        st.serialize_field("min_price", &self.1.min_price)?;
        st.end()
    }
}

impl Serialize for Rows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.positions.len()))?;
        for (c, e) in &self.0.positions {
            seq.serialize_element(&Row(c, e))?;
        }
        seq.end()
    }
}

impl Serialize for SnapshotView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PositionsOut", 2)?;
        st.serialize_field("inc_date", &self.0.inc_date.as_ref().map(Shown))?;
        st.serialize_field("positions", &Rows(self.0))?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> serde_json::Value {
        serde_json::from_slice(&axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn an_equal_snapshot_reuses_the_answer_and_a_change_is_served_at_once() {
        let c = PositionsCache::default();
        let b = BookId::new("55009728", "b1").unwrap();
        let codes = sqdata::sample::fresh_codes(3);
        let day = chrono::NaiveDate::from_ymd_opt(2025, 1, 2).unwrap();
        let mut s = sqdata::sample::positions(&codes, day);
        let v1 = body(c.answer(&b, s.clone())).await;
        assert_eq!(v1["code"], 0);
        assert_eq!(v1["data"]["inc_date"], "2025-01-02");
        assert_eq!(v1["data"]["positions"].as_array().unwrap().len(), 3);
        assert_eq!(v1["data"]["positions"][0]["code"], codes.iter().min().unwrap().to_string());
        assert_eq!(body(c.answer(&b, s.clone())).await, v1);
        s.positions.get_mut(&codes[0]).unwrap().max_price = Some(99.5);
        let v2 = body(c.answer(&b, s.clone())).await;
        assert_ne!(v2, v1, "a changed snapshot is never answered from the cache");
        assert!(v2.to_string().contains("99.5"));
    }
}
