//! Server-version-aware DDL and versioned migrations.
//!
//! On the 18.16 server Debian ships: plain types (String, not
//! LowCardinality, which it only has behind an experimental setting) and the
//! default LZ4. On current servers: LowCardinality codes, codecs
//! (Delta/DoubleDelta/T64 + ZSTD), a bloom-filter skip index on deal ids and
//! a TTL on the operations log.

use std::collections::HashSet;

use clickhouse::Row;
use serde::Deserialize;
use sqdata_core::Result;

use crate::core::Inner;

/// What the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerVersion {
    /// Major version (18, 24, 26, …).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl ServerVersion {
    /// Parses `18.16.1`, `26.9.1.1234`.
    pub fn parse(s: &str) -> Option<ServerVersion> {
        let mut it = s.trim().split('.');
        Some(ServerVersion { major: it.next()?.parse().ok()?, minor: it.next()?.parse().ok()? })
    }

    /// Codecs, LowCardinality, TTL and skip indexes are available.
    pub fn modern(&self) -> bool {
        self.major >= 20
    }

    /// RowBinaryWithNamesAndTypes (the driver's validation) is available.
    pub fn supports_validation(&self) -> bool {
        self.major >= 24
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

struct Types {
    lc: &'static str,
    time: &'static str,
    price: &'static str,
    /// A difference of two scaled prices (small integers).
    diff: &'static str,
    volume: &'static str,
    amount: &'static str,
    version: &'static str,
}

fn types(v: ServerVersion) -> Types {
    if v.modern() {
        Types {
            lc: "LowCardinality(String)",
            time: "DateTime('UTC') CODEC(DoubleDelta, ZSTD(1))",
            price: "Int64 CODEC(Delta, ZSTD(1))",
            diff: "Int64 CODEC(T64, ZSTD(1))",
            volume: "UInt64 CODEC(T64, ZSTD(1))",
            amount: "Float64 CODEC(Gorilla, ZSTD(1))",
            version: "UInt64 CODEC(T64, ZSTD(1))",
        }
    } else {
        Types {
            lc: "String",
            time: "DateTime('UTC')",
            price: "Int64",
            diff: "Int64",
            volume: "UInt64",
            amount: "Float64",
            version: "UInt64",
        }
    }
}

/// A schema migration: a version, a name, its statements.
#[derive(Debug)]
pub struct Migration {
    /// Applied in increasing order, recorded in `schema_migrations`.
    pub version: u32,
    /// What it does.
    pub name: &'static str,
    /// DDL, `{db}` replaced by the database name.
    pub statements: Vec<String>,
}

/// Every migration for a server of version `v`.
pub fn migrations(v: ServerVersion) -> Vec<Migration> {
    let t = types(v);
    let lc = t.lc;
    let deal_index = if v.modern() { ",\n    INDEX idx_id id TYPE bloom_filter GRANULARITY 4" } else { "" };
    let log_ttl = if v.modern() { "\nTTL ts + INTERVAL 90 DAY" } else { "" };
    // Buy kinds: market/limit buy orders and buy fills; sell likewise.
    let buy = "kind IN (1, 2, 5)";
    let sell = "kind IN (3, 4, 6)";
    let sums = format!(
        "toUInt64(1) AS count, toUInt64({buy}) AS buy_count, toUInt64({sell}) AS sell_count, \
         if({buy}, volume, 0) AS buy_volume, if({sell}, volume, 0) AS sell_volume, \
         if({buy}, amount, 0) AS buy_amount, if({sell}, amount, 0) AS sell_amount"
    );
    let agg_cols = "count UInt64, buy_count UInt64, sell_count UInt64, buy_volume UInt64, sell_volume UInt64, \
                    buy_amount Float64, sell_amount Float64";
    vec![Migration {
        version: 1,
        name: "deals, deal aggregates, assets, bars, operations log",
        statements: vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {{db}}.deals (
    account {lc}, book {lc}, date Date, time {time}, id String, code {lc}, name String,
    kind UInt8, remark String, price {price}, volume {volume}, amount {amount}, strategy {lc},
    version {ver}{deal_index}
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(date)
ORDER BY (account, book, date, time, id)",
                time = t.time,
                price = t.price,
                volume = t.volume,
                amount = t.amount,
                ver = t.version,
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {{db}}.deal_daily (account {lc}, book {lc}, date Date, {agg_cols})
ENGINE = SummingMergeTree PARTITION BY toYYYYMM(date) ORDER BY (account, book, date)"
            ),
            format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.deal_daily_mv TO {{db}}.deal_daily AS
SELECT account, book, date, {sums} FROM {{db}}.deals"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {{db}}.deal_monthly (account {lc}, book {lc}, month Date, {agg_cols})
ENGINE = SummingMergeTree PARTITION BY toYear(month) ORDER BY (account, book, month)"
            ),
            format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.deal_monthly_mv TO {{db}}.deal_monthly AS
SELECT account, book, toStartOfMonth(date) AS month, {sums} FROM {{db}}.deals"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {{db}}.assets (account {lc}, book {lc}, date Date, asset Float64, version {ver})
ENGINE = ReplacingMergeTree(version) PARTITION BY toStartOfQuarter(date) ORDER BY (account, book, date)",
                ver = t.version
            ),
            bars_v1(&t),
            format!(
                "CREATE TABLE IF NOT EXISTS {{db}}.bar_series (
    code {lc}, period {lc}, adjust {lc}, version UInt64, count UInt64, first DateTime('UTC'), last DateTime('UTC')
) ENGINE = ReplacingMergeTree(version) ORDER BY (code, period, adjust)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {{db}}.ops_log (ts DateTime('UTC'), level {lc}, component {lc}, message String)
ENGINE = MergeTree PARTITION BY toMonday(ts) ORDER BY ts{log_ttl}"
            ),
        ],
    }, Migration {
        version: 2,
        name: "bars as close and exact differences from it (bars2): ~2x smaller on 18.16",
        // Then `copy_bars_v1` (below): the old table is renamed first, so a
        // process of an earlier release still writing bars fails loudly
        // instead of writing into a table about to be dropped.
        statements: vec![bars_table(
            &t,
            "bars2",
            &format!("close {p}, open_d {d}, high_d {d}, low_d {d}", p = t.price, d = t.diff),
        )],
    }]
}

/// Migration 2's copy, rerunnable at every step: `bars` is renamed to
/// `bars_v1` (if still there), copied into `bars2`, then dropped. A copy
/// cut short and run again leaves duplicate rows of the same version and
/// time: the engine merges them and reads drop them.
async fn copy_bars_v1(inner: &Inner, db: &str) -> Result<()> {
    #[derive(Row, Deserialize)]
    struct Name {
        name: String,
    }
    let q = format!("SELECT name FROM system.tables WHERE database = '{db}' AND name IN ('bars', 'bars_v1')");
    let names: Vec<String> =
        inner.t("migrate", inner.base.query(&q).fetch_all::<Name>()).await?.into_iter().map(|n| n.name).collect();
    let has = |n: &str| names.iter().any(|x| x == n);
    if has("bars") && has("bars_v1") {
        return Err(sqdata_core::Error::corrupt(
            format!("clickhouse {db}"),
            "both bars and bars_v1 exist: a migration of an earlier run was interrupted oddly; \
             compare them, keep one as bars_v1 and open again",
        ));
    }
    if has("bars") {
        inner.t("migrate", inner.base.query(&format!("RENAME TABLE {db}.bars TO {db}.bars_v1")).execute()).await?;
    }
    if has("bars") || has("bars_v1") {
        let copy = format!(
            "INSERT INTO {db}.bars2 SELECT code, period, adjust, version, datetime, close, open - close, \
             high - close, low - close, volume, amount FROM {db}.bars_v1"
        );
        // The copy of a large table takes as long as it takes: no per-query
        // limit (the first call's own deadline still bounds its wait).
        inner.base.query(&copy).execute().await.map_err(crate::error::map_err)?;
        inner.t("migrate", inner.base.query(&format!("DROP TABLE IF EXISTS {db}.bars_v1")).execute()).await?;
    }
    Ok(())
}

/// Migration 1's bar table (open, high, low, close each a scaled price).
fn bars_v1(t: &Types) -> String {
    bars_table(t, "bars", &format!("open {p}, high {p}, low {p}, close {p}", p = t.price))
}

/// A bar table: the series key, version and time, then `prices`, volume and amount.
fn bars_table(t: &Types, name: &str, prices: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {{db}}.{name} (
    code {lc}, period {lc}, adjust {lc}, version {ver}, datetime {time},
    {prices}, volume {volume}, amount {amount}
) ENGINE = ReplacingMergeTree
PARTITION BY toYear(datetime)
ORDER BY (code, period, adjust, version, datetime)",
        lc = t.lc,
        ver = t.version,
        time = t.time,
        volume = t.volume,
        amount = t.amount,
    )
}

/// The migrations ledger (created before anything else).
pub fn ledger() -> &'static str {
    "CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, applied DateTime)
ENGINE = MergeTree ORDER BY version"
}

/// Tables whose storage the stats report covers.
pub const TABLES: [&str; 7] = ["deals", "deal_daily", "deal_monthly", "assets", "bars2", "bar_series", "ops_log"];

/// Creates the database and the migrations ledger, then runs the migrations
/// the ledger does not list yet, recording each.
pub(crate) async fn migrate(inner: &Inner, version: ServerVersion) -> Result<()> {
    let db = &inner.cfg.database;
    inner.t("migrate", inner.base.query(&format!("CREATE DATABASE IF NOT EXISTS {db}")).execute()).await?;
    inner.t("migrate", inner.base.query(&ledger().replace("{db}", db)).execute()).await?;
    #[derive(Row, Deserialize)]
    struct Applied {
        version: u32,
    }
    let applied: Vec<Applied> = inner
        .t("migrate", inner.base.query(&format!("SELECT version FROM {db}.schema_migrations")).fetch_all())
        .await?;
    let applied: HashSet<u32> = applied.into_iter().map(|a| a.version).collect();
    for m in migrations(version) {
        if applied.contains(&m.version) {
            continue;
        }
        for stmt in &m.statements {
            inner.t("migrate", inner.base.query(&stmt.replace("{db}", db)).execute()).await?;
        }
        if m.version == 2 {
            copy_bars_v1(inner, db).await?;
        }
        let q = inner
            .base
            .query(&format!("INSERT INTO {db}.schema_migrations (version, name, applied) SELECT ?, ?, now()"))
            .bind(m.version)
            .bind(m.name);
        inner.t("migrate", q.execute()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parsing_and_ddl_flavours() {
        let old = ServerVersion::parse("18.16.1").unwrap();
        assert!(!old.modern() && !old.supports_validation());
        let new = ServerVersion::parse("26.9.1.1").unwrap();
        assert!(new.modern() && new.supports_validation());
        let o = migrations(old).remove(0).statements.join("\n");
        assert!(!o.contains("CODEC") && !o.contains("LowCardinality") && !o.contains("TTL") && !o.contains("INDEX"));
        let n = migrations(new).remove(0).statements.join("\n");
        assert!(
            n.contains("CODEC(Delta")
                && n.contains("LowCardinality")
                && n.contains("TTL")
                && n.contains("bloom_filter")
        );
        let o2 = migrations(old).remove(1).statements.join("\n");
        assert!(o2.contains("bars2") && !o2.contains("CODEC"));
        assert!(migrations(new).remove(1).statements.join("\n").contains("open_d Int64 CODEC(T64, ZSTD(1))"));
        for s in [&o, &n] {
            assert!(s.contains("PARTITION BY toYYYYMM(date)") && s.contains("PARTITION BY toYear(datetime)"));
            assert!(s.contains("PARTITION BY toStartOfQuarter(date)") && s.contains("PARTITION BY toMonday(ts)"));
        }
    }
}
