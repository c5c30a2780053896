//! Bars: one file per series in the store's own binary format.

use sqdata_core::{Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode, Result, TimeRange, async_trait};

use crate::bars;
use crate::fsio::{self, DirLock};

use super::{FileStore, Inner};

impl Inner {
    // ---- bars ------------------------------------------------------------

    fn read_series(&self, key: &BarKey) -> Result<Vec<Bar>> {
        let path = bars::series_path(&self.cfg.bar_root(), key);
        match fsio::read_stable(&path)? {
            None => Ok(Vec::new()),
            Some((bytes, _)) => bars::decode(&path, &bytes),
        }
    }

    fn write_series(&self, key: &BarKey, bars_: &[Bar]) -> Result<()> {
        let path = bars::series_path(&self.cfg.bar_root(), key);
        if bars_.is_empty() {
            return fsio::remove(&path);
        }
        if let Some(dir) = path.parent() {
            fsio::ensure_dir(dir)?;
        }
        fsio::replace(&path, &bars::encode(bars_), self.cfg.durability, false)?;
        Ok(())
    }
}

#[async_trait]
impl BarStore for FileStore {
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64> {
        series.validate()?;
        let series = series.clone();
        self.blocking(move |i| {
            let _w = i.bars_write.lock();
            let root = i.cfg.bar_root();
            let _flock = DirLock::acquire(&root)?;
            let merged = match mode {
                BarWriteMode::Replace => series.bars.clone(),
                BarWriteMode::Upsert => sqdata_core::upsert_bars(&i.read_series(&series.key)?, &series.bars),
            };
            i.write_series(&series.key, &merged)?;
            Ok(series.bars.len() as u64)
        })
        .await
    }

    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>> {
        range.validate()?;
        let key = *key;
        self.blocking(move |i| {
            let mut b = i.read_series(&key)?;
            b.retain(|x| range.contains(x.datetime));
            Ok(b)
        })
        .await
    }

    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>> {
        use rayon::prelude::*;
        range.validate()?;
        let keys = keys.to_vec();
        self.blocking(move |i| {
            keys.par_iter()
                .map(|k| {
                    let mut b = i.read_series(k)?;
                    if range != TimeRange::all() {
                        b.retain(|x| range.contains(x.datetime));
                    }
                    Ok(BarSeries { key: *k, bars: b })
                })
                .collect()
        })
        .await
    }

    async fn overview(&self) -> Result<Vec<BarOverview>> {
        self.blocking(|i| {
            let mut out = Vec::new();
            for (key, path) in bars::list_series(&i.cfg.bar_root())? {
                let h = bars::read_header(&path)?;
                if h.count == 0 {
                    continue;
                }
                let (first, last) = bars::header_times(&path, &h)?;
                out.push(BarOverview { key, count: h.count, first, last });
            }
            Ok(out)
        })
        .await
    }

    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64> {
        range.validate()?;
        let key = *key;
        self.blocking(move |i| {
            let _w = i.bars_write.lock();
            let root = i.cfg.bar_root();
            if !root.exists() {
                return Ok(0);
            }
            let _flock = DirLock::acquire(&root)?;
            let mut b = i.read_series(&key)?;
            let before = b.len();
            b.retain(|x| !range.contains(x.datetime));
            let n = (before - b.len()) as u64;
            if n > 0 {
                i.write_series(&key, &b)?;
            }
            Ok(n)
        })
        .await
    }
}
