//! `verify`: compares two sets of stores partition by partition and, asked
//! to, repairs the side that is not the source of truth.
//!
//! Each partition (a book's positions, a book's deals of one day, a book's
//! equity curve of one month, one bar series) is serialised canonically
//! (records sorted by key, fields in declaration order, JSON) and hashed with
//! xxh3-64; only partitions whose digests differ are diffed field by field,
//! and repair rewrites only the records that differ. The stores have no
//! server-side digest, so both sides are read in full: a full verification
//! costs one read of everything, not one write.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;
use serde_json::Value;
use sqdata_core::{
    AssetRow, Bar, BarKey, BarSeries, BarWriteMode, BookId, DateRange, Deal, DealQuery, DealScope, Domain, Error,
    MAX_PAGE_SIZE, PositionEntry, PositionSnapshot, Result, Stores, TimeRange,
};

use crate::config::Truth;

/// What to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "day")]
pub enum VerifyMode {
    /// Everything.
    Full,
    /// Positions, and the deals, equity and bars of one day (today's changes).
    Incremental(NaiveDate),
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Full or incremental.
    pub mode: VerifyMode,
    /// Rewrite what differs on the side that is not the truth.
    pub repair: bool,
    /// Which side is right when they differ.
    pub truth: Truth,
    /// Domains to compare (quotes, which live seconds, are never compared).
    pub domains: Vec<Domain>,
    /// Only these books (bars, which belong to no book, are skipped then).
    pub books: Option<Vec<BookId>>,
    /// Only the books of these accounts (bars are skipped then too).
    pub accounts: Option<Vec<String>>,
    /// Exactly these bar series (`None`: every series either side has,
    /// unless books or accounts are given).
    pub series: Option<Vec<BarKey>>,
    /// Differences listed in the report (all are counted).
    pub max_listed: usize,
    /// Repairing towards the files (`truth` = primary): also delete what
    /// only the files hold. Off by default: a repair of the files only adds
    /// and updates, and what it keeps is counted (`kept`) and listed — the
    /// files may hold writes the servers never saw (SilverQuant writing
    /// straight into a live folder). Repairs of the primary always delete.
    pub prune: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            mode: VerifyMode::Full,
            repair: false,
            truth: Truth::Secondary,
            domains: Domain::DURABLE.to_vec(),
            books: None,
            accounts: None,
            series: None,
            max_listed: 200,
            prune: false,
        }
    }
}

/// One field (or a whole record, `field` = `(record)`) that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// positions, deals, assets or bars.
    pub domain: Domain,
    /// The partition (book, book/day, book/month, series).
    pub partition: String,
    /// The record (code, deal id, date, bar time).
    pub key: String,
    /// The field, or `(record)` when one side lacks the record.
    pub field: String,
    /// The primary's value (`None`: absent).
    pub primary: Option<Value>,
    /// The secondary's value.
    pub secondary: Option<Value>,
}

/// Counts of one domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainVerify {
    /// The domain.
    pub domain: Domain,
    /// Partitions compared.
    pub partitions: u64,
    /// Partitions whose digests differed.
    pub differing_partitions: u64,
    /// Records compared (the larger side of each partition).
    pub records: u64,
    /// Fields or records that differ.
    pub differences: u64,
    /// Records rewritten by repair.
    pub repaired: u64,
    /// Records only the files hold that a repair towards the files kept
    /// (not pruned).
    pub kept: u64,
}

impl DomainVerify {
    /// Nothing counted yet.
    pub fn new(domain: Domain) -> DomainVerify {
        DomainVerify {
            domain,
            partitions: 0,
            differing_partitions: 0,
            records: 0,
            differences: 0,
            repaired: 0,
            kept: 0,
        }
    }
}

/// The result of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Full or incremental (with its day).
    pub mode: VerifyMode,
    /// The digest used per partition.
    pub digest: &'static str,
    /// Whether differences were repaired.
    pub repair: bool,
    /// The side repairs copied from.
    pub truth: Truth,
    /// Per domain.
    pub domains: Vec<DomainVerify>,
    /// The first `max_listed` differences.
    pub differences: Vec<Difference>,
    /// Whether more differences exist than are listed.
    pub truncated: bool,
    /// Wall time.
    pub elapsed_ms: u64,
}

impl VerifyReport {
    /// Differences found, all domains.
    pub fn total_differences(&self) -> u64 {
        self.domains.iter().map(|d| d.differences).sum()
    }

    /// Records rewritten, all domains.
    pub fn total_repaired(&self) -> u64 {
        self.domains.iter().map(|d| d.repaired).sum()
    }

    /// Whether the stores were equal (or are now, after repair).
    pub fn consistent(&self) -> bool {
        self.total_differences() == 0 || self.repair
    }

    /// A report for people.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let mode = match self.mode {
            VerifyMode::Full => "full".to_string(),
            VerifyMode::Incremental(d) => format!("incremental ({d})"),
        };
        let _ = writeln!(s, "verify {mode}, {} digests per partition, {} ms", self.digest, self.elapsed_ms);
        let _ = writeln!(
            s,
            "{:<10} {:>10} {:>10} {:>10} {:>12} {:>9}",
            "domain", "partitions", "differing", "records", "differences", "repaired"
        );
        for d in &self.domains {
            let _ = writeln!(
                s,
                "{:<10} {:>10} {:>10} {:>10} {:>12} {:>9}",
                d.domain, d.partitions, d.differing_partitions, d.records, d.differences, d.repaired
            );
        }
        for d in &self.differences {
            let show = |v: &Option<Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "(absent)".into());
            let _ = writeln!(
                s,
                "  {} {} {} {}: primary {} / secondary {}",
                d.domain,
                d.partition,
                d.key,
                d.field,
                show(&d.primary),
                show(&d.secondary)
            );
        }
        if self.truncated {
            let _ = writeln!(s, "  … {} more not listed", self.total_differences() as usize - self.differences.len());
        }
        let total = self.total_differences();
        let _ = match (total, self.repair) {
            (0, _) => writeln!(s, "consistent: 0 differences"),
            (n, true) => writeln!(
                s,
                "{n} differences, {} records rewritten from the {}",
                self.total_repaired(),
                truth_name(self.truth)
            ),
            (n, false) => writeln!(s, "INCONSISTENT: {n} differences (run with --repair to fix)"),
        };
        s
    }
}

fn truth_name(t: Truth) -> &'static str {
    match t {
        Truth::Secondary => "secondary (files)",
        Truth::Primary => "primary",
    }
}

/// Records of one partition, by key.
type Records = BTreeMap<String, Value>;

fn digest(r: &Records) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (k, v) in r {
        h.update(k.as_bytes());
        h.update(&[0]);
        h.update(v.to_string().as_bytes());
        h.update(b"\n");
    }
    h.digest()
}

fn json<T: Serialize>(v: &T) -> Result<Value> {
    let mut v = serde_json::to_value(v).map_err(|e| Error::Backend {
        backend: "verify",
        message: e.to_string(),
        retryable: false,
        source: None,
    })?;
    canonical(&mut v);
    Ok(v)
}

/// Decimals every store keeps (ClickHouse stores prices and amounts as
/// integers of 1e-6): values are compared at this precision, so that
/// 10.120000000000001 in a file and 10.12 on the server are equal.
const DECIMALS: f64 = 1e6;

fn canonical(v: &mut Value) {
    match v {
        Value::Number(n) if n.is_f64() => {
            if let Some(x) = n.as_f64().map(|x| (x * DECIMALS).round() / DECIMALS)
                && let Some(m) = serde_json::Number::from_f64(x)
            {
                *n = m;
            }
        }
        Value::Object(o) => o.values_mut().for_each(canonical),
        Value::Array(a) => a.iter_mut().for_each(canonical),
        _ => {}
    }
}

fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(|e| Error::Backend {
        backend: "verify",
        message: e.to_string(),
        retryable: false,
        source: None,
    })
}

/// Field-level differences of two partitions; returns the keys that differ.
fn diff(domain: Domain, partition: &str, p: &Records, s: &Records, out: &mut Vec<Difference>) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for k in p.keys().chain(s.keys()) {
        if keys.contains(k) {
            continue;
        }
        match (p.get(k), s.get(k)) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                let fields: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for f in fields {
                    if a.get(f) != b.get(f) {
                        out.push(Difference {
                            domain,
                            partition: partition.into(),
                            key: k.clone(),
                            field: f.clone(),
                            primary: a.get(f).cloned(),
                            secondary: b.get(f).cloned(),
                        });
                    }
                }
            }
            (a, b) => out.push(Difference {
                domain,
                partition: partition.into(),
                key: k.clone(),
                field: if a.is_some() && b.is_some() { "(value)".into() } else { "(record)".into() },
                primary: a.cloned(),
                secondary: b.cloned(),
            }),
        }
        keys.insert(k.clone());
    }
    keys
}

struct Run<'a> {
    primary: &'a Stores,
    secondary: &'a Stores,
    opts: &'a VerifyOptions,
    listed: Vec<Difference>,
    truncated: bool,
    /// The hybrid's per-book locks, held around each book's read and repair
    /// (a repair is a read-then-write racing other processes' dual writes).
    locks: Option<&'a crate::locks::Locks>,
}

impl Run<'_> {
    /// The lock of a book (or series) while it is compared and repaired.
    async fn hold(&self, keys: Vec<String>) -> Result<Option<crate::locks::Held>> {
        match self.locks {
            Some(l) if self.opts.repair => l.lock(keys).await.map(Some),
            _ => Ok(None),
        }
    }

    /// (truth, other) stores.
    fn sides(&self) -> (&Stores, &Stores) {
        match self.opts.truth {
            Truth::Secondary => (self.secondary, self.primary),
            Truth::Primary => (self.primary, self.secondary),
        }
    }

    /// (truth, other) records.
    fn pick<'r>(&self, p: &'r Records, s: &'r Records) -> (&'r Records, &'r Records) {
        match self.opts.truth {
            Truth::Secondary => (s, p),
            Truth::Primary => (p, s),
        }
    }

    /// Compares a partition; returns the differing keys (empty when equal).
    fn compare(&mut self, rep: &mut DomainVerify, partition: &str, p: &Records, s: &Records) -> BTreeSet<String> {
        rep.partitions += 1;
        rep.records += p.len().max(s.len()) as u64;
        if digest(p) == digest(s) {
            return BTreeSet::new();
        }
        rep.differing_partitions += 1;
        let mut found = Vec::new();
        let keys = diff(rep.domain, partition, p, s, &mut found);
        rep.differences += found.len() as u64;
        let room = self.opts.max_listed.saturating_sub(self.listed.len());
        if found.len() > room {
            self.truncated = true;
        }
        self.listed.extend(found.into_iter().take(room));
        keys
    }

    /// Whether records only the other side holds are deleted by a repair:
    /// always when the other side is the primary, on `prune` for the files.
    fn deletes(&self) -> bool {
        self.opts.truth == Truth::Secondary || self.opts.prune
    }

    fn wanted(&self, books: Vec<BookId>) -> Vec<BookId> {
        books
            .into_iter()
            .filter(|b| self.opts.books.as_ref().is_none_or(|only| only.contains(b)))
            .filter(|b| self.opts.accounts.as_ref().is_none_or(|a| a.iter().any(|a| a == b.account.as_str())))
            .collect()
    }

    async fn books(&self, d: Domain) -> Result<Vec<BookId>> {
        let mut all: BTreeSet<BookId> = BTreeSet::new();
        for side in [self.primary, self.secondary] {
            all.extend(side.books(d).await?);
        }
        if let Some(only) = &self.opts.books {
            all.extend(only.iter().cloned());
        }
        Ok(self.wanted(all.into_iter().collect()))
    }

    // ---- positions --------------------------------------------------------

    async fn positions(&mut self) -> Result<DomainVerify> {
        let mut rep = DomainVerify::new(Domain::Positions);
        for book in self.books(Domain::Positions).await? {
            let _held = self.hold(vec![crate::locks::book_key(Domain::Positions, &book)]).await?;
            let (p, s) = (position_records(self.primary, &book).await?, position_records(self.secondary, &book).await?);
            let part = book.to_string();
            if self.compare(&mut rep, &part, &p, &s).is_empty() || !self.opts.repair {
                continue;
            }
            let deletes = self.deletes();
            let (truth, other) = self.sides();
            let mut snap = truth.positions.snapshot(&book).await?;
            if !deletes {
                // Codes only the files hold stay (one replace of the book).
                let theirs = other.positions.snapshot(&book).await?;
                for (code, e) in theirs.positions {
                    if let std::collections::btree_map::Entry::Vacant(v) = snap.positions.entry(code) {
                        v.insert(e);
                        rep.kept += 1;
                    }
                }
                snap.inc_date = snap.inc_date.or(theirs.inc_date);
            }
            if snap.positions.is_empty() && snap.inc_date.is_none() {
                other.positions.delete_book(&book).await?;
            } else {
                other.positions.replace_book(&book, &snap).await?;
            }
            rep.repaired += snap.positions.len().max(1) as u64;
        }
        Ok(rep)
    }

    // ---- deals ------------------------------------------------------------

    async fn deals(&mut self) -> Result<DomainVerify> {
        let mut rep = DomainVerify::new(Domain::Deals);
        let range = match self.opts.mode {
            VerifyMode::Full => DateRange::all(),
            VerifyMode::Incremental(d) => DateRange { from: Some(d), to: Some(d) },
        };
        for book in self.books(Domain::Deals).await? {
            let _held = self.hold(vec![crate::locks::book_key(Domain::Deals, &book)]).await?;
            let p = deal_days(self.primary, &book, range).await?;
            let s = deal_days(self.secondary, &book, range).await?;
            let days: BTreeSet<NaiveDate> = p.keys().chain(s.keys()).copied().collect();
            let empty = Records::new();
            // One replace (and, if deleting, one delete) per book: a file
            // store rewrites its deal log per call, atomically.
            let deletes = self.deletes();
            let (mut extra, mut fresh): (Vec<String>, Vec<Deal>) = (Vec::new(), Vec::new());
            for day in days {
                let (pr, sr) = (p.get(&day).unwrap_or(&empty), s.get(&day).unwrap_or(&empty));
                let keys = self.compare(&mut rep, &format!("{book}/{day}"), pr, sr);
                if keys.is_empty() || !self.opts.repair {
                    continue;
                }
                let (t, _) = self.pick(pr, sr);
                for k in &keys {
                    match t.get(k) {
                        Some(v) => {
                            fresh.push(typed::<Deal>(v)?);
                            rep.repaired += 1;
                        }
                        None if deletes => {
                            extra.push(k.clone());
                            rep.repaired += 1;
                        }
                        None => rep.kept += 1,
                    }
                }
            }
            let (_, other) = self.sides();
            if !fresh.is_empty() {
                other.deals.replace_deals(&book, &fresh).await?;
            }
            if !extra.is_empty() {
                other.deals.delete_deals(&book, &extra).await?;
            }
        }
        Ok(rep)
    }

    // ---- assets -----------------------------------------------------------

    async fn assets(&mut self) -> Result<DomainVerify> {
        let mut rep = DomainVerify::new(Domain::Assets);
        let range = match self.opts.mode {
            VerifyMode::Full => DateRange::all(),
            VerifyMode::Incremental(d) => DateRange { from: Some(d), to: Some(d) },
        };
        for book in self.books(Domain::Assets).await? {
            let _held = self.hold(vec![crate::locks::book_key(Domain::Assets, &book)]).await?;
            let p = asset_months(self.primary, &book, range).await?;
            let s = asset_months(self.secondary, &book, range).await?;
            let months: BTreeSet<String> = p.keys().chain(s.keys()).cloned().collect();
            let empty = Records::new();
            let deletes = self.deletes();
            let (mut upserts, mut extra): (Vec<AssetRow>, Vec<NaiveDate>) = (Vec::new(), Vec::new());
            for m in months {
                let (pr, sr) = (p.get(&m).unwrap_or(&empty), s.get(&m).unwrap_or(&empty));
                let keys = self.compare(&mut rep, &format!("{book}/{m}"), pr, sr);
                if keys.is_empty() || !self.opts.repair {
                    continue;
                }
                let (t, o) = self.pick(pr, sr);
                for k in &keys {
                    match t.get(k) {
                        Some(v) => upserts.push(typed(v)?),
                        None if deletes => {
                            if let Some(v) = o.get(k) {
                                extra.push(typed::<AssetRow>(v)?.date);
                            }
                        }
                        None => rep.kept += 1,
                    }
                }
            }
            // One upsert and one delete per book (each one atomic replace of
            // assets.csv on the files), never the curve deleted and re-added.
            let (_, other) = self.sides();
            if !upserts.is_empty() {
                other.assets.upsert_assets(&book, &upserts).await?;
            }
            if !extra.is_empty() {
                other.assets.delete_assets(&book, &extra).await?;
            }
            rep.repaired += (upserts.len() + extra.len()) as u64;
        }
        Ok(rep)
    }

    // ---- bars -------------------------------------------------------------

    async fn bars(&mut self) -> Result<DomainVerify> {
        let mut rep = DomainVerify::new(Domain::Bars);
        if self.opts.series.is_none() && (self.opts.books.is_some() || self.opts.accounts.is_some()) {
            return Ok(rep);
        }
        let (range, since) = match self.opts.mode {
            VerifyMode::Full => (TimeRange::all(), None),
            VerifyMode::Incremental(d) => {
                let from = d.and_time(NaiveTime::MIN);
                let to = d.and_hms_opt(23, 59, 59).unwrap_or(from);
                (TimeRange { from: Some(from), to: Some(to) }, Some(from))
            }
        };
        let mut keys: BTreeSet<BarKey> = BTreeSet::new();
        match &self.opts.series {
            Some(only) => keys.extend(only.iter().copied()),
            None => {
                for side in [self.primary, self.secondary] {
                    for o in side.bars.overview().await? {
                        if since.is_none_or(|f| o.last >= f) {
                            keys.insert(o.key);
                        }
                    }
                }
            }
        }
        let keys: Vec<BarKey> = keys.into_iter().collect();
        for chunk in keys.chunks(200) {
            let series: BTreeSet<String> = chunk.iter().map(crate::locks::series_key).collect();
            let _held = self.hold(series.into_iter().collect()).await?;
            let p = bar_records(self.primary, chunk, range).await?;
            let s = bar_records(self.secondary, chunk, range).await?;
            let empty = Records::new();
            for key in chunk {
                let (pr, sr) = (p.get(key).unwrap_or(&empty), s.get(key).unwrap_or(&empty));
                let diff = self.compare(&mut rep, &key.to_string(), pr, sr);
                if diff.is_empty() || !self.opts.repair {
                    continue;
                }
                // The series as it must become, written in one replace.
                let deletes = self.deletes();
                let (_, other) = self.sides();
                let (t, _) = self.pick(pr, sr);
                let mut want: BTreeMap<NaiveDateTime, Bar> =
                    other.bars.load_bars(key, TimeRange::all()).await?.into_iter().map(|b| (b.datetime, b)).collect();
                for k in &diff {
                    match t.get(k) {
                        Some(v) => {
                            let b: Bar = typed(v)?;
                            want.insert(b.datetime, b);
                        }
                        None if deletes => {
                            want.retain(|at, _| bar_key(at) != *k);
                        }
                        None => rep.kept += 1,
                    }
                }
                let bars: Vec<Bar> = want.into_values().collect();
                if bars.is_empty() {
                    other.bars.delete_bars(key, TimeRange::all()).await?;
                } else {
                    other.bars.save_bars(&BarSeries { key: *key, bars }, BarWriteMode::Replace).await?;
                }
                rep.repaired += diff.len() as u64;
            }
        }
        Ok(rep)
    }
}

async fn position_records(s: &Stores, book: &BookId) -> Result<Records> {
    let snap: PositionSnapshot = s.positions.snapshot(book).await?;
    let mut r = Records::new();
    if let Some(d) = snap.inc_date {
        r.insert("(inc_date)".into(), Value::String(d.to_string()));
    }
    for (code, e) in &snap.positions {
        r.insert(code.to_string(), json::<PositionEntry>(e)?);
    }
    Ok(r)
}

/// A book's deals in `range`, by day, by id.
async fn deal_days(s: &Stores, book: &BookId, range: DateRange) -> Result<BTreeMap<NaiveDate, Records>> {
    let mut q = DealQuery {
        scope: DealScope::Book(book.clone()),
        from: range.from,
        to: range.to,
        code: None,
        kind: None,
        page: 1,
        page_size: MAX_PAGE_SIZE,
    };
    let mut out: BTreeMap<NaiveDate, Records> = BTreeMap::new();
    loop {
        let page = s.deals.query(&q).await?;
        let n = page.data.len();
        for d in &page.data {
            out.entry(d.time.date()).or_default().insert(d.id.clone(), json(d)?);
        }
        if n < MAX_PAGE_SIZE as usize {
            return Ok(out);
        }
        q.page += 1;
    }
}

/// A book's equity rows in `range`, by month, by date.
async fn asset_months(s: &Stores, book: &BookId, range: DateRange) -> Result<BTreeMap<String, Records>> {
    let mut out: BTreeMap<String, Records> = BTreeMap::new();
    for r in s.assets.assets(book, range).await? {
        let m = format!("{:04}-{:02}", r.date.year(), r.date.month());
        out.entry(m).or_default().insert(r.date.to_string(), json(&r)?);
    }
    Ok(out)
}

/// A bar's record key: its time.
fn bar_key(t: &NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

async fn bar_records(s: &Stores, keys: &[BarKey], range: TimeRange) -> Result<BTreeMap<BarKey, Records>> {
    let mut out = BTreeMap::new();
    for series in s.bars.load_bars_batch(keys, range).await? {
        let mut r = Records::new();
        for b in &series.bars {
            r.insert(bar_key(&b.datetime), json(b)?);
        }
        out.insert(series.key, r);
    }
    Ok(out)
}

/// Compares `primary` with `secondary` (and repairs, if asked). Errors of
/// either side end the run: a verification that could not read is not a
/// verification.
pub async fn verify(primary: &Stores, secondary: &Stores, opts: &VerifyOptions) -> Result<VerifyReport> {
    verify_locked(primary, secondary, opts, None).await
}

/// [`verify`], each book's compare and repair under the hybrid's lock of
/// that book (what `Hybrid::verify` does).
pub(crate) async fn verify_locked(
    primary: &Stores,
    secondary: &Stores,
    opts: &VerifyOptions,
    locks: Option<&crate::locks::Locks>,
) -> Result<VerifyReport> {
    let t = Instant::now();
    let mut run = Run { primary, secondary, opts, listed: Vec::new(), truncated: false, locks };
    let mut domains = Vec::new();
    let mut wanted = opts.domains.clone();
    wanted.sort();
    wanted.dedup();
    for d in wanted {
        domains.push(match d {
            Domain::Positions => run.positions().await?,
            Domain::Deals => run.deals().await?,
            Domain::Assets => run.assets().await?,
            Domain::Bars => run.bars().await?,
            // quotes live seconds: nothing to compare
            _ => continue,
        });
    }
    for d in &domains {
        metrics::counter!("sqdata_verify_differences_total", "domain" => d.domain.as_str()).increment(d.differences);
    }
    Ok(VerifyReport {
        mode: opts.mode,
        digest: "xxh3-64",
        repair: opts.repair,
        truth: opts.truth,
        domains,
        differences: run.listed,
        truncated: run.truncated,
        elapsed_ms: t.elapsed().as_millis() as u64,
    })
}
