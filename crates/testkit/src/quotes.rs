//! Quote conformance: batch put/get and the TTL.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use sqdata_core::{Code, Quote, QuoteStore};

use crate::{Fixture, fresh_codes};

fn store(fx: &Fixture) -> Arc<dyn QuoteStore> {
    fx.quotes.clone().expect("the fixture provides no quote store")
}

fn quote(c: Code, last: f64) -> Quote {
    Quote {
        code: c,
        time: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(10, 0, 3).unwrap(),
        last,
        open: last - 0.1,
        high: last + 0.2,
        low: last - 0.3,
        pre_close: last - 0.05,
        volume: 123_400,
        amount: 1_384_567.5,
    }
}

/// Quotes come back in the order asked; unknown codes are left out.
pub async fn put_get_roundtrip(fx: &Fixture) {
    let s = store(fx);
    let codes = fresh_codes(50);
    let qs: Vec<Quote> = codes.iter().enumerate().map(|(i, c)| quote(*c, 10.0 + i as f64 / 100.0)).collect();
    s.put_quotes(&qs[..40]).await.unwrap();
    let mut ask: Vec<Code> = codes.clone();
    ask.reverse();
    let got = s.get_quotes(&ask).await.unwrap();
    let mut want: Vec<Quote> = qs[..40].to_vec();
    want.reverse();
    assert_eq!(got, want);
    // a newer quote replaces the old one
    s.put_quotes(&[quote(codes[0], 99.99)]).await.unwrap();
    assert_eq!(s.get_quotes(&codes[..1]).await.unwrap()[0].last, 99.99);
    assert!(s.get_quotes(&[]).await.unwrap().is_empty());
}

/// A quote is gone once the TTL has passed.
pub async fn quotes_expire_after_ttl(fx: &Fixture) {
    let s = store(fx);
    let codes = fresh_codes(3);
    s.put_quotes(&codes.iter().map(|c| quote(*c, 10.0)).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(s.get_quotes(&codes).await.unwrap().len(), 3);
    tokio::time::sleep(fx.quote_ttl + Duration::from_millis(600)).await;
    assert!(s.get_quotes(&codes).await.unwrap().is_empty(), "quotes must expire after {:?}", fx.quote_ttl);
}

/// NaN prices or high < low are rejected and nothing of the batch is stored.
pub async fn bad_quotes_are_rejected(fx: &Fixture) {
    let s = store(fx);
    let codes = fresh_codes(2);
    let good = quote(codes[0], 10.0);
    let mut bad = quote(codes[1], 10.0);
    bad.last = f64::NAN;
    let e = s.put_quotes(&[good.clone(), bad]).await.unwrap_err();
    assert!(e.is_invalid_input() && e.to_string().contains("last"), "{e}");
    let mut bad = quote(codes[1], 10.0);
    bad.low = 20.0;
    assert!(s.put_quotes(&[bad]).await.unwrap_err().to_string().contains("high"));
    assert!(s.get_quotes(&codes).await.unwrap().is_empty());
}
