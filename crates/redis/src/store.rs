//! [`RedisStore`]: positions, quotes and sessions in Redis.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqdata_core::{
    BackendHealth, BookId, Code, Error, ExtremeChange, HealthCheck, PositionEntry, PositionSnapshot, PositionStore,
    PriceTick, Quote, QuoteStore, ReconcileReport, Result, async_trait, validate, validate_ticks,
};

use crate::config::{Mode, RedisConfig};
use crate::conn::{BACKEND, Redis};
use crate::scripts::*;

/// Ticks sent in one script call (Lua's argument limits).
const TICKS_PER_CALL: usize = 2000;

/// The Redis backend. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RedisStore {
    r: Arc<Redis>,
    cfg: Arc<RedisConfig>,
    extremes: Arc<parking_lot::Mutex<HashMap<BookId, Extremes>>>,
}

/// What this process knows of a book's extremes, under the book's token
/// (`meta.v`, renewed by every script that changes which codes are tracked
/// or held). Within a token a max only rises and a min only falls (only
/// update_extremes writes prices), so a tick that does not pass the cached
/// values cannot change the book: it is not sent.
#[derive(Debug)]
struct Extremes {
    token: String,
    held: HashMap<Code, (Option<f64>, Option<f64>)>,
}

impl Extremes {
    fn can_move(&self, t: &PriceTick) -> bool {
        let Some((mx, mn)) = self.held.get(&t.code) else { return false };
        mx.is_none_or(|m| validate::round3(t.high) > m) || mn.is_none_or(|m| validate::round3(t.low) < m)
    }

    /// A value seen on the server: extremes only move one way within a token.
    fn see(&mut self, code: Code, max: Option<f64>, min: Option<f64>) {
        if let Some(e) = self.held.get_mut(&code) {
            if let Some(m) = max {
                e.0 = Some(e.0.map_or(m, |c| c.max(m)));
            }
            if let Some(m) = min {
                e.1 = Some(e.1.map_or(m, |c| c.min(m)));
            }
        }
    }
}

/// The keys of one book: `<prefix>:{<account>:<book>}:pos` (a hash of
/// code → `S|max|min`) and `…:meta` (the day counter `n` and `inc_date`).
/// The braces are a hash tag: a book lives in one cluster slot, so every
/// script touches one node.
pub fn book_keys(prefix: &str, book: &BookId) -> [String; 2] {
    let tag = format!("{prefix}:{{{}:{}}}", book.account, book.book);
    [format!("{tag}:pos"), format!("{tag}:meta")]
}

/// The book a key of [`book_keys`] belongs to; `None` for any other key
/// (quotes, sessions, another prefix's keys, a tag that is not a book).
pub(crate) fn book_of_key(prefix: &str, key: &str) -> Option<BookId> {
    let inner = key.strip_prefix(prefix)?.strip_prefix(":{")?;
    let (tag, _) = inner.split_once("}:")?;
    let (a, b) = tag.split_once(':')?;
    BookId::new(a, b).ok()
}

fn price_arg(p: f64) -> String {
    format!("{}", validate::round3(p))
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::corrupt(format!("redis {what}"), detail.to_string())
}

fn parse_code(key: &str, s: &str) -> Result<Code> {
    Code::parse(s).map_err(|e| corrupt(key, e))
}

fn parse_price(key: &str, s: &str) -> Result<f64> {
    s.parse::<f64>().ok().filter(|p| p.is_finite() && *p >= 0.0).ok_or_else(|| corrupt(key, format!("bad price {s:?}")))
}

fn pack_ticks(ticks: &[PriceTick]) -> String {
    let mut arg = String::with_capacity(ticks.len() * 24);
    for t in ticks {
        if !arg.is_empty() {
            arg.push(';');
        }
        arg.push_str(&format!("{},{},{}", t.code, price_arg(t.high), price_arg(t.low)));
    }
    arg
}

/// A `code|max|min` tail of a reply line.
fn parse_extreme(key: &str, line: &str) -> Result<(Code, Option<f64>, Option<f64>)> {
    let mut f = line.splitn(3, '|');
    let (Some(c), Some(mx), Some(mn)) = (f.next(), f.next(), f.next()) else {
        return Err(corrupt(key, format!("bad reply line {line:?}")));
    };
    let price = |s: &str| (!s.is_empty()).then(|| parse_price(key, s)).transpose();
    Ok((parse_code(key, c)?, price(mx)?, price(mn)?))
}

impl RedisStore {
    /// update_extremes reading the whole book; its state becomes the cache.
    async fn extremes_full(
        &self,
        book: &BookId,
        keys: &[String; 2],
        ticks: &[PriceTick],
    ) -> Result<Vec<ExtremeChange>> {
        let mut out = Vec::new();
        let mut cache: Option<Extremes> = None;
        for chunk in ticks.chunks(TICKS_PER_CALL) {
            let text: String =
                self.r.eval("update_extremes", &UPDATE_EXTREMES, keys, &[pack_ticks(chunk)], true).await?;
            let mut lines = text.split('\n');
            let token = lines.next().unwrap_or_default().to_owned();
            let mut held = HashMap::new();
            for line in lines.filter(|l| !l.is_empty()) {
                match line.split_once('|') {
                    Some(("C", rest)) => {
                        let (code, max_price, min_price) = parse_extreme(&keys[0], rest)?;
                        out.push(ExtremeChange { code, max_price, min_price });
                    }
                    Some(("S", rest)) => {
                        let (code, mx, mn) = parse_extreme(&keys[0], rest)?;
                        held.insert(code, (mx, mn));
                    }
                    _ => return Err(corrupt(&keys[0], format!("bad reply line {line:?}"))),
                }
            }
            cache = Some(Extremes { token, held });
        }
        // A book never given a token (written before tokens existed) is not cached.
        if let Some(c) = cache.filter(|c| !c.token.is_empty()) {
            self.extremes.lock().insert(book.clone(), c);
        }
        Ok(out)
    }

    /// update_extremes with the cache: `None` when the book's token moved on.
    async fn extremes_cached(
        &self,
        book: &BookId,
        keys: &[String; 2],
        token: &str,
        movers: &[PriceTick],
    ) -> Result<Option<Vec<ExtremeChange>>> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        // One call even with nothing to send: the token still has to be checked.
        let chunks: Vec<&[PriceTick]> =
            if movers.is_empty() { vec![&[]] } else { movers.chunks(TICKS_PER_CALL).collect() };
        for chunk in chunks {
            let text: String = self
                .r
                .eval("update_extremes", &UPDATE_EXTREMES_CACHED, keys, &[pack_ticks(chunk), token.to_owned()], true)
                .await?;
            if text == "!" {
                return Ok(None);
            }
            for line in text.split('\n').filter(|l| !l.is_empty()) {
                match line.split_once('|') {
                    Some(("C", rest)) => {
                        let (code, max_price, min_price) = parse_extreme(&keys[0], rest)?;
                        out.push(ExtremeChange { code, max_price, min_price });
                        seen.push((code, max_price, min_price));
                    }
                    Some(("U", rest)) => seen.push(parse_extreme(&keys[0], rest)?),
                    _ => return Err(corrupt(&keys[0], format!("bad reply line {line:?}"))),
                }
            }
        }
        if let Some(e) = self.extremes.lock().get_mut(book).filter(|e| e.token == token) {
            for (code, mx, mn) in seen {
                e.see(code, mx, mn);
            }
        }
        Ok(Some(out))
    }

    /// Builds the store. Nothing is contacted yet: a Redis that is down now
    /// is tried again on every call (each failing with a retryable error).
    pub fn open(cfg: RedisConfig) -> Result<RedisStore> {
        cfg.validate()?;
        Ok(RedisStore {
            r: Arc::new(Redis::new(cfg.clone())),
            cfg: Arc::new(cfg),
            extremes: Arc::new(parking_lot::Mutex::new(HashMap::new())),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.cfg
    }

    fn keys(&self, book: &BookId) -> [String; 2] {
        book_keys(&self.cfg.prefix, book)
    }

    fn quote_key(&self, code: &Code) -> String {
        format!("{}:{{quotes}}:{code}", self.cfg.prefix)
    }

    fn session_key(&self, token: &str) -> String {
        format!("{}:session:{token}", self.cfg.prefix)
    }

    /// Deletes every key under this store's prefix (SCAN + DEL, never
    /// FLUSHDB). For tests and `sqdata` maintenance of a private prefix.
    pub async fn purge_prefix(&self) -> Result<u64> {
        let keys = self.r.scan_match("purge", &format!("{}:*", self.cfg.prefix)).await?;
        let mut n = 0;
        for k in keys {
            n += self.r.cmd::<u64>("purge", redis::cmd("DEL").arg(&k)).await?;
        }
        Ok(n)
    }

    // ---- sessions ----

    /// Stores a session/token value for `session_ttl_s`.
    pub async fn put_session(&self, token: &str, value: &str) -> Result<()> {
        check_token(token)?;
        let key = self.session_key(token);
        self.r
            .cmd::<()>("put_session", redis::cmd("SET").arg(key).arg(value).arg("EX").arg(self.cfg.session_ttl_s))
            .await
    }

    /// The session's value; `None` when unknown or expired.
    pub async fn get_session(&self, token: &str) -> Result<Option<String>> {
        check_token(token)?;
        self.r.cmd("get_session", redis::cmd("GET").arg(self.session_key(token))).await
    }

    /// Removes a session; returns whether it existed.
    pub async fn delete_session(&self, token: &str) -> Result<bool> {
        check_token(token)?;
        let n: u64 = self.r.cmd("delete_session", redis::cmd("DEL").arg(self.session_key(token))).await?;
        Ok(n > 0)
    }

    /// Seconds a session has left (`None` when unknown).
    pub async fn session_ttl(&self, token: &str) -> Result<Option<u64>> {
        check_token(token)?;
        let t: i64 = self.r.cmd("session_ttl", redis::cmd("TTL").arg(self.session_key(token))).await?;
        Ok((t >= 0).then_some(t as u64))
    }

    async fn snapshot_inner(&self, book: &BookId) -> Result<PositionSnapshot> {
        let keys = self.keys(book);
        let text: String = self.r.eval("snapshot", &SNAPSHOT, &keys, &[], false).await?;
        let mut lines = text.split('\n');
        let head = lines.next().unwrap_or("0|");
        let (n, inc) = head.split_once('|').ok_or_else(|| corrupt(&keys[1], format!("bad meta {head:?}")))?;
        let n: i64 = n.parse().map_err(|_| corrupt(&keys[1], format!("bad counter {n:?}")))?;
        let mut snap = PositionSnapshot::default();
        if !inc.is_empty() {
            snap.inc_date = Some(
                NaiveDate::parse_from_str(inc, "%Y-%m-%d")
                    .map_err(|_| corrupt(&keys[1], format!("bad inc_date {inc:?}")))?,
            );
        }
        // Collected, then built at once: the map sorts the entries once
        // instead of walking the tree for each of the hash's (unordered) codes.
        snap.positions = lines
            .map(|line| {
                let (code, value) =
                    line.split_once('|').ok_or_else(|| corrupt(&keys[0], format!("bad entry {line:?}")))?;
                Ok((parse_code(&keys[0], code)?, parse_entry(&keys[0], n, value)?))
            })
            .collect::<Result<_>>()?;
        Ok(snap)
    }
}

/// `S|max|min` with the book's counter `n` → the entry.
fn parse_entry(key: &str, n: i64, value: &str) -> Result<PositionEntry> {
    let mut parts = value.splitn(3, '|');
    let (s, mx, mn) = match (parts.next(), parts.next(), parts.next()) {
        (Some(s), Some(mx), Some(mn)) => (s, mx, mn),
        _ => return Err(corrupt(key, format!("bad value {value:?}"))),
    };
    let day_count = if s == "null" {
        None
    } else {
        let start: i64 = s.parse().map_err(|_| corrupt(key, format!("bad start {s:?}")))?;
        Some(u32::try_from(n - start).map_err(|_| corrupt(key, format!("negative held days ({n} - {start})")))?)
    };
    let price = |p: &str| (!p.is_empty()).then(|| parse_price(key, p)).transpose();
    Ok(PositionEntry { day_count, max_price: price(mx)?, min_price: price(mn)? })
}

fn join(codes: &[Code]) -> String {
    codes.iter().map(Code::to_string).collect::<Vec<_>>().join(",")
}

fn check_token(t: &str) -> Result<()> {
    if t.is_empty() || t.len() > 256 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid("token", t, "must be 1 to 256 characters without spaces"));
    }
    Ok(())
}

#[async_trait]
impl PositionStore for RedisStore {
    async fn snapshot(&self, book: &BookId) -> Result<PositionSnapshot> {
        self.snapshot_inner(book).await
    }

    async fn held_days(&self, book: &BookId, codes: &[Code]) -> Result<BTreeMap<Code, Option<u32>>> {
        if codes.is_empty() {
            return Ok(BTreeMap::new());
        }
        let keys = self.keys(book);
        let mut p = redis::pipe();
        p.cmd("HGET").arg(&keys[1]).arg("n");
        p.cmd("HMGET").arg(&keys[0]);
        for code in codes {
            p.arg(code.to_string());
        }
        let (n, vals): (Option<i64>, Vec<Option<String>>) = self.r.pipe("held_days", &p).await?;
        let n = n.unwrap_or(0);
        let mut out = BTreeMap::new();
        for (code, v) in codes.iter().zip(vals) {
            if let Some(v) = v {
                out.insert(*code, parse_entry(&keys[0], n, &v)?.day_count);
            }
        }
        Ok(out)
    }

    async fn new_held(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        self.extremes.lock().remove(book);
        for chunk in codes.chunks(1000) {
            let arg = join(chunk);
            self.r.eval::<i64>("new_held", &NEW_HELD, &self.keys(book), &[arg], true).await?;
        }
        Ok(())
    }

    async fn mark_sold(&self, book: &BookId, code: Code) -> Result<()> {
        self.extremes.lock().remove(book);
        self.r.eval::<i64>("mark_sold", &MARK_SOLD, &self.keys(book), &[code.to_string()], true).await.map(|_| ())
    }

    async fn del_held_days(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        self.extremes.lock().remove(book);
        for chunk in codes.chunks(1000) {
            let arg = join(chunk);
            self.r.eval::<i64>("del_held_days", &DEL_HELD_DAYS, &self.keys(book), &[arg], true).await?;
        }
        Ok(())
    }

    async fn reconcile(&self, book: &BookId, broker_codes: &[Code]) -> Result<ReconcileReport> {
        self.extremes.lock().remove(book);
        let mut uniq: Vec<Code> = broker_codes.to_vec();
        uniq.sort();
        uniq.dedup();
        let keys = self.keys(book);
        let (added, removed): (String, String) =
            self.r.eval("reconcile", &RECONCILE, &keys, &[join(&uniq)], true).await?;
        let codes = |s: &str| -> Result<Vec<Code>> {
            s.split(',').filter(|c| !c.is_empty()).map(|c| parse_code(&keys[0], c)).collect()
        };
        let mut r = ReconcileReport { added: codes(&added)?, removed: codes(&removed)? };
        r.added.sort();
        r.removed.sort();
        Ok(r)
    }

    async fn inc_held_days(&self, book: &BookId, today: NaiveDate) -> Result<bool> {
        validate::check_year("today", &today.to_string(), today)?;
        let ran: i64 = self
            .r
            .eval("inc_held_days", &INC_HELD_DAYS, &self.keys(book), &[today.format("%Y-%m-%d").to_string()], true)
            .await?;
        Ok(ran == 1)
    }

    async fn update_extremes(&self, book: &BookId, ticks: &[PriceTick]) -> Result<Vec<ExtremeChange>> {
        validate_ticks(ticks)?;
        let keys = self.keys(book);
        // With the book's extremes cached, only the ticks that can move one
        // are sent, and the server reads only their codes.
        let cached = {
            let cache = self.extremes.lock();
            cache.get(book).map(|e| {
                let movers: Vec<PriceTick> = ticks.iter().filter(|t| e.can_move(t)).copied().collect();
                (e.token.clone(), movers)
            })
        };
        if let Some((token, movers)) = cached {
            match self.extremes_cached(book, &keys, &token, &movers).await? {
                Some(out) => return Ok(out),
                None => {
                    self.extremes.lock().remove(book);
                }
            }
        }
        self.extremes_full(book, &keys, ticks).await
    }

    async fn replace_book(&self, book: &BookId, snapshot: &PositionSnapshot) -> Result<()> {
        self.extremes.lock().remove(book);
        snapshot.validate()?;
        let inc = snapshot.inc_date.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default();
        let mut packed = String::with_capacity(snapshot.positions.len() * 32);
        for (c, e) in &snapshot.positions {
            if !packed.is_empty() {
                packed.push(';');
            }
            let day = e.day_count.map(|d| d.to_string()).unwrap_or_else(|| "null".into());
            let mx = e.max_price.map(price_arg).unwrap_or_default();
            let mn = e.min_price.map(price_arg).unwrap_or_default();
            packed.push_str(&format!("{c}|{day}|{mx}|{mn}"));
        }
        self.r.eval::<i64>("replace_book", &REPLACE, &self.keys(book), &[inc, packed], true).await.map(|_| ())
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        self.extremes.lock().remove(book);
        let keys = self.keys(book);
        self.r.cmd::<i64>("delete_book", redis::cmd("DEL").arg(&keys[..])).await.map(|_| ())
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        let prefix = &self.cfg.prefix;
        let found = self.r.scan_match("list_books", &format!("{prefix}:{{*}}:*")).await?;
        let mut out: Vec<BookId> = found.iter().filter_map(|k| book_of_key(prefix, k)).collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The server's `run_id` (standalone and Sentinel: the current master's,
    /// so a failover shows as a change too). A cluster spreads books over
    /// several servers whose replicas take over with their data: `None`.
    async fn instance(&self) -> Result<Option<String>> {
        if self.r.mode() == Mode::Cluster {
            return Ok(None);
        }
        let info: String = self.r.cmd("instance", redis::cmd("INFO").arg("server")).await?;
        Ok(info.lines().find_map(|l| l.strip_prefix("run_id:")).map(|v| v.trim().to_owned()))
    }
}

#[async_trait]
impl QuoteStore for RedisStore {
    async fn put_quotes(&self, quotes: &[Quote]) -> Result<()> {
        for q in quotes {
            q.validate()?;
        }
        if quotes.is_empty() {
            return Ok(());
        }
        let mut p = redis::pipe();
        for q in quotes {
            let json = serde_json::to_string(q).map_err(|e| Error::invalid("quote", q.code, e.to_string()))?;
            p.cmd("SET").arg(self.quote_key(&q.code)).arg(json).arg("PX").arg(self.cfg.quote_ttl_ms).ignore();
        }
        self.r.pipe::<()>("put_quotes", &p).await
    }

    async fn get_quotes(&self, codes: &[Code]) -> Result<Vec<Quote>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = codes.iter().map(|c| self.quote_key(c)).collect();
        let vals: Vec<Option<String>> = self.r.cmd("get_quotes", redis::cmd("MGET").arg(&keys)).await?;
        vals.into_iter()
            .zip(&keys)
            .filter_map(|(v, k)| v.map(|s| serde_json::from_str::<Quote>(&s).map_err(|e| corrupt(k, e))))
            .collect()
    }
}

#[async_trait]
impl HealthCheck for RedisStore {
    async fn health(&self) -> BackendHealth {
        let t = Instant::now();
        let ping: Result<String> = self.r.cmd("health", &redis::cmd("PING")).await;
        let latency = t.elapsed().max(Duration::from_nanos(1));
        let mut details = BTreeMap::new();
        details.insert("mode".into(), serde_json::json!(format!("{:?}", self.r.mode()).to_lowercase()));
        details.insert("prefix".into(), serde_json::json!(self.cfg.prefix));
        details.insert("connected".into(), serde_json::json!(ping.is_ok()));
        if ping.is_ok() {
            let info: Result<String> = self.r.cmd("health", redis::cmd("INFO").arg("memory")).await;
            if let Ok(info) = info {
                let fields: HashMap<&str, &str> = info.lines().filter_map(|l| l.split_once(':')).collect();
                for k in ["used_memory", "used_memory_rss", "maxmemory", "maxmemory_policy"] {
                    if let Some(v) = fields.get(k) {
                        let v = v.trim();
                        details.insert(
                            k.into(),
                            v.parse::<u64>().map(|n| serde_json::json!(n)).unwrap_or_else(|_| serde_json::json!(v)),
                        );
                    }
                }
                if let Some(used) = fields.get("used_memory").and_then(|v| v.trim().parse::<f64>().ok()) {
                    metrics::gauge!("sqdata_redis_used_memory_bytes").set(used);
                }
            }
        }
        metrics::gauge!("sqdata_backend_up", "backend" => BACKEND).set(if ping.is_ok() { 1.0 } else { 0.0 });
        if self.r.mode() == Mode::Cluster {
            details.insert("cluster_nodes".into(), serde_json::json!(self.cfg.cluster.len()));
        }
        BackendHealth {
            backend: BACKEND.into(),
            up: ping.is_ok(),
            latency,
            details,
            error: ping.err().map(|e| e.to_string()),
        }
    }
}
