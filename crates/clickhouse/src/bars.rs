//! The [`BarStore`] implementation: versioned K-line series and bulk saves.

use std::collections::{BTreeMap, HashMap};

use clickhouse::Row;
use serde::Deserialize;
use sqdata_core::{Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode, Error, Result, TimeRange, async_trait};

use crate::core::{ClickHouseStore, now_version};
use crate::rows::*;

#[derive(Debug, Row, Deserialize)]
struct OverviewRow {
    code: String,
    period: String,
    adjust: String,
    count: u64,
    first: u32,
    last: u32,
}

impl ClickHouseStore {
    /// Writes complete series as new versions (one INSERT per
    /// `bulk_batch_rows`), then their summaries. A reader sees a series'
    /// previous version until its summary row lands.
    async fn write_series(&self, series: &[(BarKey, Vec<Bar>)]) -> Result<u64> {
        let (c, _) = self.inner.ready().await?;
        let version = now_version(&self.inner.seq);
        let mut written = 0u64;
        let mut rows: Vec<BarRow> = Vec::new();
        let mut summaries = Vec::with_capacity(series.len());
        let flush_rows = |rows: Vec<BarRow>| async move {
            let fut = async {
                let mut ins = c.insert::<BarRow>("bars2").await?;
                for r in &rows {
                    ins.write(r).await?;
                }
                ins.end().await
            };
            self.inner.t("save_bars", fut).await
        };
        for (key, bars) in series {
            let (code, period, adjust) =
                (key.code.to_string(), key.period.as_str().to_owned(), key.adjust.as_str().to_owned());
            for b in bars {
                rows.push(BarRow::new(&code, &period, &adjust, version, b)?);
            }
            written += bars.len() as u64;
            summaries.push(SeriesRow {
                code,
                period,
                adjust,
                version,
                count: bars.len() as u64,
                first: bars.first().map(|b| secs("datetime", b.datetime)).transpose()?.unwrap_or(0),
                last: bars.last().map(|b| secs("datetime", b.datetime)).transpose()?.unwrap_or(0),
            });
            if rows.len() >= self.inner.cfg.bulk_batch_rows {
                flush_rows(std::mem::take(&mut rows)).await?;
            }
        }
        if !rows.is_empty() {
            flush_rows(rows).await?;
        }
        let fut = async {
            let mut ins = c.insert::<SeriesRow>("bar_series").await?;
            for s in &summaries {
                ins.write(s).await?;
            }
            ins.end().await
        };
        self.inner.t("save_bars", fut).await?;
        metrics::counter!("sqdata_clickhouse_rows_inserted_total", "table" => "bars").increment(written);
        Ok(written)
    }

    /// Current bars of many series (same period and adjustment), streamed.
    async fn read_series(&self, keys: &[BarKey], range: TimeRange) -> Result<HashMap<BarKey, Vec<Bar>>> {
        let (c, _) = self.inner.ready().await?;
        let mut groups: BTreeMap<(sqdata_core::Period, sqdata_core::Adjust), Vec<String>> = BTreeMap::new();
        for k in keys {
            groups.entry((k.period, k.adjust)).or_default().push(k.code.to_string());
        }
        let mut out: HashMap<BarKey, Vec<Bar>> = HashMap::new();
        for ((period, adjust), codes) in groups {
            // Codes are validated `Code`s (six digits, a dot, two letters):
            // safe to inline as a literal set, which ClickHouse turns into an
            // index-friendly IN set (a bound array would be scanned per row).
            let set = codes.iter().map(|c| format!("'{c}'")).collect::<Vec<_>>().join(",");
            let mut sql = format!(
                "SELECT code, datetime, close + open_d AS open, close + high_d AS high, close + low_d AS low, close, \
                 volume, amount FROM bars2 \
                 WHERE period = ? AND adjust = ? AND code IN ({set}) AND (code, version) IN \
                 (SELECT code, max(version) FROM bar_series WHERE period = ? AND adjust = ? AND code IN ({set}) GROUP BY code)"
            );
            let from = range.from.map(|t| secs("from", t)).transpose()?;
            let to = range.to.map(|t| secs("to", t)).transpose()?;
            if from.is_some() {
                sql.push_str(" AND datetime >= toDateTime(?, 'UTC')");
            }
            if to.is_some() {
                sql.push_str(" AND datetime <= toDateTime(?, 'UTC')");
            }
            let mut q =
                c.query(&sql).bind(period.as_str()).bind(adjust.as_str()).bind(period.as_str()).bind(adjust.as_str());
            if let Some(f) = from {
                q = q.bind(f);
            }
            if let Some(t) = to {
                q = q.bind(t);
            }
            // Streamed; grouped, ordered and de-duplicated here rather than by
            // an ORDER BY / LIMIT BY over millions of rows on the server.
            let fut = async {
                let mut cursor = q.fetch::<BarRead<'_>>()?;
                let mut by_code: HashMap<String, Vec<Bar>> = HashMap::new();
                let (mut code, mut cur) = (String::new(), Vec::<Bar>::new());
                while let Some(row) = cursor.next().await? {
                    if row.code != code {
                        if !cur.is_empty() {
                            by_code.entry(std::mem::take(&mut code)).or_default().append(&mut cur);
                        }
                        code = row.code.to_owned();
                    }
                    cur.push(row.bar());
                }
                if !cur.is_empty() {
                    by_code.entry(code).or_default().append(&mut cur);
                }
                Ok::<_, clickhouse::error::Error>(by_code)
            };
            for (code, mut bars) in self.inner.t("load_bars", fut).await? {
                bars.sort_by_key(|b| b.datetime);
                bars.dedup_by_key(|b| b.datetime);
                let code = sqdata_core::Code::parse(&code)
                    .map_err(|e| Error::corrupt("clickhouse bars.code", e.to_string()))?;
                out.insert(BarKey::new(code, period, adjust), bars);
            }
        }
        Ok(out)
    }

    /// Saves many series in bulk (one version for the batch).
    pub async fn save_bars_batch(&self, series: &[BarSeries], mode: BarWriteMode) -> Result<u64> {
        sqdata_core::validate_batch(series)?;
        let input: Vec<(BarKey, Vec<Bar>)> = match mode {
            BarWriteMode::Replace => series.iter().map(|s| (s.key, s.bars.clone())).collect(),
            BarWriteMode::Upsert => {
                let keys: Vec<BarKey> = series.iter().map(|s| s.key).collect();
                let mut current = self.read_series(&keys, TimeRange::all()).await?;
                series
                    .iter()
                    .map(|s| (s.key, sqdata_core::upsert_bars(&current.remove(&s.key).unwrap_or_default(), &s.bars)))
                    .collect()
            }
        };
        self.write_series(&input).await?;
        Ok(series.iter().map(|s| s.bars.len() as u64).sum())
    }
}

#[async_trait]
impl BarStore for ClickHouseStore {
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64> {
        ClickHouseStore::save_bars_batch(self, std::slice::from_ref(series), mode).await
    }
    async fn save_bars_batch(&self, series: &[BarSeries], mode: BarWriteMode) -> Result<u64> {
        ClickHouseStore::save_bars_batch(self, series, mode).await
    }

    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>> {
        range.validate()?;
        Ok(self.read_series(std::slice::from_ref(key), range).await?.remove(key).unwrap_or_default())
    }

    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>> {
        range.validate()?;
        let mut got = self.read_series(keys, range).await?;
        Ok(keys.iter().map(|k| BarSeries { key: *k, bars: got.remove(k).unwrap_or_default() }).collect())
    }

    async fn overview(&self) -> Result<Vec<BarOverview>> {
        let (c, _) = self.inner.ready().await?;
        let q = c.query(
            "SELECT code, period, adjust, argMax(count, version) AS count, argMax(first, version) AS first, \
             argMax(last, version) AS last FROM bar_series GROUP BY code, period, adjust \
             HAVING count > 0 ORDER BY code, period, adjust",
        );
        let rows: Vec<OverviewRow> = self.inner.t("overview", q.fetch_all()).await?;
        rows.into_iter()
            .map(|r| {
                let bad = |e: String| Error::corrupt("clickhouse bar_series", e);
                Ok(BarOverview {
                    key: BarKey::new(
                        sqdata_core::Code::parse(&r.code).map_err(|e| bad(e.to_string()))?,
                        r.period.parse().map_err(|e: Error| bad(e.to_string()))?,
                        r.adjust.parse().map_err(|e: Error| bad(e.to_string()))?,
                    ),
                    count: r.count,
                    first: from_secs(r.first),
                    last: from_secs(r.last),
                })
            })
            .collect()
    }

    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64> {
        range.validate()?;
        let current =
            self.read_series(std::slice::from_ref(key), TimeRange::all()).await?.remove(key).unwrap_or_default();
        let kept: Vec<Bar> = current.iter().filter(|b| !range.contains(b.datetime)).copied().collect();
        let n = (current.len() - kept.len()) as u64;
        if n > 0 {
            self.write_series(&[(*key, kept)]).await?;
        }
        Ok(n)
    }
}
