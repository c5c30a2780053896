//! Order and deal records.

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::code::Code;
use crate::error::{Error, Result};
use crate::ids::{AccountCode, BookId};
use crate::validate;

/// The largest page a query may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// What a record is: an order submission (SilverQuant logs these), a fill or a cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DealKind {
    /// 市买委托 — market buy order.
    MarketBuy,
    /// 限买委托 — limit buy order.
    LimitBuy,
    /// 市卖委托 — market sell order.
    MarketSell,
    /// 限卖委托 — limit sell order.
    LimitSell,
    /// 买入成交 — buy fill.
    BuyFill,
    /// 卖出成交 — sell fill.
    SellFill,
    /// 撤单 — cancel.
    Cancel,
    /// 废单 — rejected order.
    Rejected,
}

/// Which way a record trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Buy orders and fills.
    Buy,
    /// Sell orders and fills.
    Sell,
    /// Cancels and rejects.
    None,
}

impl DealKind {
    /// Every kind, in a stable order.
    pub const ALL: [DealKind; 8] = [
        DealKind::MarketBuy,
        DealKind::LimitBuy,
        DealKind::MarketSell,
        DealKind::LimitSell,
        DealKind::BuyFill,
        DealKind::SellFill,
        DealKind::Cancel,
        DealKind::Rejected,
    ];

    /// The Chinese label SilverQuant writes in `deal_hist.csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            DealKind::MarketBuy => "市买委托",
            DealKind::LimitBuy => "限买委托",
            DealKind::MarketSell => "市卖委托",
            DealKind::LimitSell => "限卖委托",
            DealKind::BuyFill => "买入成交",
            DealKind::SellFill => "卖出成交",
            DealKind::Cancel => "撤单",
            DealKind::Rejected => "废单",
        }
    }

    /// A stable ASCII name (`market_buy`, …) for APIs and SQL enums.
    pub fn ascii(self) -> &'static str {
        match self {
            DealKind::MarketBuy => "market_buy",
            DealKind::LimitBuy => "limit_buy",
            DealKind::MarketSell => "market_sell",
            DealKind::LimitSell => "limit_sell",
            DealKind::BuyFill => "buy_fill",
            DealKind::SellFill => "sell_fill",
            DealKind::Cancel => "cancel",
            DealKind::Rejected => "rejected",
        }
    }

    /// A small stable number for compact storage.
    pub fn as_u8(self) -> u8 {
        DealKind::ALL.iter().position(|k| *k == self).unwrap_or(0) as u8 + 1
    }

    /// The inverse of [`DealKind::as_u8`].
    pub fn from_u8(v: u8) -> Option<DealKind> {
        DealKind::ALL.get((v as usize).checked_sub(1)?).copied()
    }

    /// Buy, sell or neither.
    pub fn side(self) -> Side {
        match self {
            DealKind::MarketBuy | DealKind::LimitBuy | DealKind::BuyFill => Side::Buy,
            DealKind::MarketSell | DealKind::LimitSell | DealKind::SellFill => Side::Sell,
            DealKind::Cancel | DealKind::Rejected => Side::None,
        }
    }
}

impl fmt::Display for DealKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DealKind {
    type Err = Error;
    /// Accepts the Chinese label or the ASCII name.
    fn from_str(s: &str) -> Result<DealKind> {
        let t = s.trim();
        DealKind::ALL.iter().copied().find(|k| k.as_str() == t || k.ascii() == t).ok_or_else(|| {
            Error::invalid("kind", s, "expected one of 市买委托 限买委托 市卖委托 限卖委托 买入成交 卖出成交 撤单 废单")
        })
    }
}

impl Serialize for DealKind {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DealKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<DealKind, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One order or deal record. `id` is unique: recording the same id again is
/// a no-op, which makes replays idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deal {
    /// Unique id (the broker's order id, or derived from the content).
    pub id: String,
    /// The book it belongs to.
    pub book: BookId,
    /// Exchange time, Asia/Shanghai, whole seconds.
    pub time: NaiveDateTime,
    /// The code.
    pub code: Code,
    /// The security's name (Chinese, any Unicode).
    pub name: String,
    /// What kind of record.
    pub kind: DealKind,
    /// Free-text remark (SilverQuant's 注释).
    pub remark: String,
    /// Price (the order's price for orders).
    pub price: f64,
    /// Volume in shares.
    pub volume: u64,
    /// price × volume unless the broker reported otherwise.
    pub amount: f64,
    /// The strategy that placed it.
    pub strategy: String,
}

fn text(field: &str, s: &str, max_chars: usize, allow_empty: bool) -> Result<()> {
    if !allow_empty && s.trim().is_empty() {
        return Err(Error::invalid(field, s, "must not be empty"));
    }
    if s.chars().count() > max_chars {
        return Err(Error::invalid(field, s, format!("is longer than {max_chars} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(field, s, "must not contain control characters or line breaks"));
    }
    Ok(())
}

impl Deal {
    /// Checks every field; errors name the field and the value.
    pub fn validate(&self) -> Result<()> {
        text("id", &self.id, 128, false)?;
        text("name", &self.name, 64, true)?;
        text("remark", &self.remark, 256, true)?;
        text("strategy", &self.strategy, 64, true)?;
        validate::price("price", self.price)?;
        validate::finite("amount", self.amount)?;
        if self.time.nanosecond() != 0 {
            return Err(Error::invalid("time", self.time, "must be whole seconds"));
        }
        validate::check_year("time", &self.time.to_string(), self.time.date())?;
        if self.volume > i64::MAX as u64 {
            return Err(Error::invalid("volume", self.volume, "does not fit in 63 bits"));
        }
        Ok(())
    }

    /// The trading day.
    pub fn date(&self) -> NaiveDate {
        self.time.date()
    }
}

/// Which deals a query looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DealScope {
    /// One book.
    Book(BookId),
    /// Every book of one account.
    Account(AccountCode),
}

impl DealScope {
    /// Whether a deal's book is in scope.
    pub fn contains(&self, book: &BookId) -> bool {
        match self {
            DealScope::Book(b) => b == book,
            DealScope::Account(a) => &book.account == a,
        }
    }
}

/// A filtered, paged deal query. Dates are inclusive trading days.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DealQuery {
    /// Book or account.
    pub scope: DealScope,
    /// First day (inclusive).
    pub from: Option<NaiveDate>,
    /// Last day (inclusive).
    pub to: Option<NaiveDate>,
    /// Only this code.
    pub code: Option<Code>,
    /// Only this kind.
    pub kind: Option<DealKind>,
    /// 1-based page number.
    pub page: u32,
    /// Rows per page, 1..=[`MAX_PAGE_SIZE`].
    pub page_size: u32,
}

impl DealQuery {
    /// Everything in a book, first page of 100.
    pub fn book(book: BookId) -> DealQuery {
        DealQuery {
            scope: DealScope::Book(book),
            from: None,
            to: None,
            code: None,
            kind: None,
            page: 1,
            page_size: 100,
        }
    }

    /// Validates paging and the range.
    pub fn validate(&self) -> Result<()> {
        if self.page == 0 {
            return Err(Error::invalid("page", self.page, "pages start at 1"));
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(Error::invalid("page_size", self.page_size, format!("must be between 1 and {MAX_PAGE_SIZE}")));
        }
        validate::ordered(self.from, self.to)
    }

    /// Whether a deal passes the filters (scope, dates, code, kind).
    pub fn matches(&self, d: &Deal) -> bool {
        let day = d.time.date();
        self.scope.contains(&d.book)
            && self.from.is_none_or(|f| day >= f)
            && self.to.is_none_or(|t| day <= t)
            && self.code.is_none_or(|c| c == d.code)
            && self.kind.is_none_or(|k| k == d.kind)
    }

    /// Offset of the first row of the page.
    pub fn offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.page_size)
    }
}

/// One page of results with the total count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    /// Rows matching the filters, over all pages.
    pub total: u64,
    /// This page's number.
    pub page: u32,
    /// The page size asked for.
    #[serde(rename = "pageSize")]
    pub page_size: u32,
    /// The rows, ordered by (time, id).
    pub data: Vec<T>,
}

/// Sorts deals by (time, id) — the order every backend returns.
pub fn sort_deals(deals: &mut [Deal]) {
    deals.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
}

/// Applies a query to deals already sorted by (time, id): filter, count, page.
pub fn page_of<'a>(q: &DealQuery, sorted: impl Iterator<Item = &'a Deal>) -> Page<Deal> {
    let mut total = 0u64;
    let offset = q.offset();
    let mut data = Vec::new();
    for d in sorted.filter(|d| q.matches(d)) {
        if total >= offset && data.len() < q.page_size as usize {
            data.push(d.clone());
        }
        total += 1;
    }
    Page { total, page: q.page, page_size: q.page_size, data }
}

/// Aggregation bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AggregateBy {
    /// One row per trading day.
    Day,
    /// One row per month.
    Month,
}

impl FromStr for AggregateBy {
    type Err = Error;
    fn from_str(s: &str) -> Result<AggregateBy> {
        match s {
            "day" => Ok(AggregateBy::Day),
            "month" => Ok(AggregateBy::Month),
            _ => Err(Error::invalid("by", s, "expected day or month")),
        }
    }
}

/// Totals of one account over one day or month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DealAggregate {
    /// `YYYY-MM-DD` or `YYYY-MM`.
    pub period: String,
    /// Records of any kind.
    pub count: u64,
    /// Buy orders and fills.
    pub buy_count: u64,
    /// Sell orders and fills.
    pub sell_count: u64,
    /// Shares bought.
    pub buy_volume: u64,
    /// Shares sold.
    pub sell_volume: u64,
    /// Amount bought.
    pub buy_amount: f64,
    /// Amount sold.
    pub sell_amount: f64,
}

impl DealAggregate {
    /// An empty bucket.
    pub fn empty(period: String) -> DealAggregate {
        DealAggregate {
            period,
            count: 0,
            buy_count: 0,
            sell_count: 0,
            buy_volume: 0,
            sell_volume: 0,
            buy_amount: 0.0,
            sell_amount: 0.0,
        }
    }

    /// Adds one deal. Volumes saturate: three valid deals of 2^63 - 1
    /// shares would overflow a `u64` (a panic in a debug build).
    pub fn add(&mut self, d: &Deal) {
        self.count += 1;
        match d.kind.side() {
            Side::Buy => {
                self.buy_count += 1;
                self.buy_volume = self.buy_volume.saturating_add(d.volume);
                self.buy_amount += d.amount;
            }
            Side::Sell => {
                self.sell_count += 1;
                self.sell_volume = self.sell_volume.saturating_add(d.volume);
                self.sell_amount += d.amount;
            }
            Side::None => {}
        }
    }
}

/// The bucket label of a day.
pub fn period_label(by: AggregateBy, day: NaiveDate) -> String {
    match by {
        AggregateBy::Day => day.format("%Y-%m-%d").to_string(),
        AggregateBy::Month => day.format("%Y-%m").to_string(),
    }
}

/// An aggregation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateQuery {
    /// The account.
    pub account: AccountCode,
    /// First day (inclusive).
    pub from: Option<NaiveDate>,
    /// Last day (inclusive).
    pub to: Option<NaiveDate>,
    /// Day or month buckets.
    pub by: AggregateBy,
}

/// Aggregates deals (any order) into sorted buckets.
pub fn aggregate<'a>(q: &AggregateQuery, deals: impl Iterator<Item = &'a Deal>) -> Vec<DealAggregate> {
    let mut buckets: std::collections::BTreeMap<String, DealAggregate> = Default::default();
    for d in deals {
        let day = d.time.date();
        if d.book.account != q.account || q.from.is_some_and(|f| day < f) || q.to.is_some_and(|t| day > t) {
            continue;
        }
        let label = period_label(q.by, day);
        buckets.entry(label.clone()).or_insert_with(|| DealAggregate::empty(label)).add(d);
    }
    buckets.into_values().collect()
}

/// What a record call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RecordOutcome {
    /// Rows newly stored.
    pub inserted: u64,
    /// Rows whose id was already stored (skipped).
    pub duplicates: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Found by `proptests::aggregates_of_valid_deals_never_overflow`: three
    // valid deals of i64::MAX shares overflowed the bucket's u64 volume.
    #[test]
    fn aggregate_volumes_saturate() {
        let book = BookId::new("1", "b").unwrap();
        let d = Deal {
            id: "d".into(),
            book: book.clone(),
            time: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(9, 30, 0).unwrap(),
            code: Code::parse("000001.SZ").unwrap(),
            name: String::new(),
            kind: DealKind::BuyFill,
            remark: String::new(),
            price: 1.0,
            volume: i64::MAX as u64,
            amount: 1.0,
            strategy: String::new(),
        };
        d.validate().unwrap();
        let deals = [d.clone(), d.clone(), d];
        let q = AggregateQuery { account: book.account, from: None, to: None, by: AggregateBy::Day };
        let rows = aggregate(&q, deals.iter());
        assert_eq!(rows[0].buy_volume, u64::MAX);
        assert_eq!(rows[0].buy_count, 3);
    }
}
