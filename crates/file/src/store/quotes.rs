//! Quotes: one JSON file of the latest quotes with their expiry.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqdata_core::{Code, Error, Quote, QuoteStore, Result, async_trait};

use crate::fsio::{self, DirLock, Durability, Stamp};

use super::{BACKEND, FileStore, Inner, now_ms};

impl Inner {
    // ---- quotes ----------------------------------------------------------

    fn quotes_fresh(&self) -> Result<HashMap<Code, QuoteRecord>> {
        let path = self.cfg.quotes_path();
        let st = fsio::stamp(&path)?;
        let mut guard = self.quotes.lock();
        if let Some(c) = guard.as_ref()
            && c.stamp == st
        {
            return Ok(c.map.clone());
        }
        let map = match fsio::read_stable(&path)? {
            None => HashMap::new(),
            Some((bytes, _)) => serde_json::from_slice::<HashMap<Code, QuoteRecord>>(&bytes)
                .map_err(|e| Error::corrupt(path.display().to_string(), format!("invalid quotes file: {e}")))?,
        };
        *guard = Some(QuoteCache { stamp: st, map: map.clone() });
        Ok(map)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct QuoteRecord {
    quote: Quote,
    expires_at_ms: u64,
}

#[derive(Debug)]
pub(super) struct QuoteCache {
    stamp: Option<Stamp>,
    map: HashMap<Code, QuoteRecord>,
}

/// The parsed deal log of one book.
#[async_trait]
impl QuoteStore for FileStore {
    async fn put_quotes(&self, quotes: &[Quote]) -> Result<()> {
        for q in quotes {
            q.validate()?;
        }
        let quotes = quotes.to_vec();
        self.blocking(move |i| {
            let _w = i.quotes_write.lock();
            let _flock = DirLock::acquire(&i.cfg.root)?;
            let now = now_ms();
            let mut map = i.quotes_fresh()?;
            map.retain(|_, r| r.expires_at_ms > now);
            // Saturating: the TTL comes from the configuration and may be huge.
            let expires_at_ms = now.saturating_add(i.cfg.quote_ttl_ms);
            for q in quotes {
                map.insert(q.code, QuoteRecord { quote: q, expires_at_ms });
            }
            let path = i.cfg.quotes_path();
            let bytes = serde_json::to_vec(&map).map_err(|e| Error::Backend {
                backend: BACKEND,
                message: e.to_string(),
                retryable: false,
                source: None,
            })?;
            // Quotes are ephemeral: atomic, but not worth an fsync.
            let st = fsio::replace(&path, &bytes, Durability::Flush, false)?;
            *i.quotes.lock() = Some(QuoteCache { stamp: Some(st), map });
            Ok(())
        })
        .await
    }

    async fn get_quotes(&self, codes: &[Code]) -> Result<Vec<Quote>> {
        let codes = codes.to_vec();
        self.blocking_here(move |i| {
            let map = i.quotes_fresh()?;
            let now = now_ms();
            Ok(codes
                .iter()
                .filter_map(|c| map.get(c).filter(|r| r.expires_at_ms > now).map(|r| r.quote.clone()))
                .collect())
        })
        .await
    }
}
