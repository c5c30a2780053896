//! Bars: one file per series in the store's own binary format.

use sqdata_core::{Bar, BarKey, BarOverview, BarSeries, BarStore, BarWriteMode, Result, TimeRange, async_trait};

use crate::bars;
use crate::fsio::{self, DirLock};

use super::{FileStore, Inner};

/// Series written (and synced) together by `save_bars_batch`: bounded so a
/// whole market does not hold thousands of open files.
const BATCH_FILES: usize = 256;

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

    /// Writes the batch in groups of [`BATCH_FILES`]: each group's files are
    /// written, synced together and renamed, with one folder sync per group
    /// — one sync wait for many files instead of one per series. A failure
    /// leaves every series whole (old or new), the ones before it written.
    async fn save_bars_batch(&self, series: &[BarSeries], mode: BarWriteMode) -> Result<u64> {
        sqdata_core::validate_batch(series)?;
        let series = series.to_vec();
        self.blocking(move |i| {
            let _w = i.bars_write.lock();
            let root = i.cfg.bar_root();
            let _flock = DirLock::acquire(&root)?;
            let mut written = 0u64;
            for group in series.chunks(BATCH_FILES) {
                let mut files: Vec<(std::path::PathBuf, Vec<u8>)> = Vec::with_capacity(group.len());
                for s in group {
                    let path = bars::series_path(&root, &s.key);
                    let merged = match mode {
                        BarWriteMode::Replace => None,
                        BarWriteMode::Upsert => Some(sqdata_core::upsert_bars(&i.read_series(&s.key)?, &s.bars)),
                    };
                    let bars_ = merged.as_deref().unwrap_or(&s.bars);
                    if bars_.is_empty() {
                        fsio::remove(&path)?;
                        continue;
                    }
                    if let Some(dir) = path.parent() {
                        fsio::ensure_dir(dir)?;
                    }
                    files.push((path, bars::encode(bars_)));
                }
                let refs: Vec<(&std::path::Path, &[u8])> =
                    files.iter().map(|(p, b)| (p.as_path(), b.as_slice())).collect();
                fsio::replace_many(&refs, i.cfg.durability, false)?;
                written += group.iter().map(|s| s.bars.len() as u64).sum::<u64>();
            }
            Ok(written)
        })
        .await
    }

    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>> {
        range.validate()?;
        let key = *key;
        self.blocking_here(move |i| {
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
        let one = move |i: &Inner, k: &BarKey| {
            let mut b = i.read_series(k)?;
            if range != TimeRange::all() {
                b.retain(|x| range.contains(x.datetime));
            }
            Ok(BarSeries { key: *k, bars: b })
        };
        // A few series (a strategy's own codes) are read in place: the
        // pool's hop and rayon's fan-out cost more than reading them.
        if keys.len() <= 8 {
            return self.blocking_here(move |i| keys.iter().map(|k| one(i, k)).collect()).await;
        }
        self.blocking(move |i| keys.par_iter().map(|k| one(i, k)).collect()).await
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
