//! Moving a SilverQuant cache folder into the configured stores and back.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sqdata_core::{
    Adjust, AssetStore, AssetStoreExt as _, BarSeries, BarWriteMode, BookId, Code, DateRange, DealQuery, DealScope,
    DealStore, Error, MAX_PAGE_SIZE, Period, PositionStore, Result, Stores, TimeRange,
};
use sqdata_file::{FileConfig, FileStore, kline};

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The book folder, e.g. `_cache/prod_pwc`.
    pub cache_dir: PathBuf,
    /// The book to import into.
    pub book: BookId,
    /// K-line folders; `None` looks for `_daily_*/kline` in and above `cache_dir`.
    pub kline_dirs: Option<Vec<PathBuf>>,
    /// Skip K-lines.
    pub skip_bars: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// The book imported into.
    pub book: String,
    /// `positions.json` (v4) or `held_days.json` (v3).
    pub positions_source: Option<String>,
    /// Codes imported (held and sold).
    pub positions: usize,
    /// Of which still held.
    pub held: usize,
    /// Prices of codes that are not positions (left behind by SilverQuant; not imported).
    pub orphan_prices: Vec<Code>,
    /// Deals newly stored.
    pub deals_inserted: u64,
    /// Deals already there (a re-import).
    pub deals_duplicate: u64,
    /// Asset rows.
    pub assets: usize,
    /// K-line folders read.
    pub kline_dirs: Vec<String>,
    /// Series stored.
    pub bar_series: usize,
    /// Bars stored.
    pub bars: u64,
    /// Files that could not be read, with why (the rest was imported).
    pub bar_errors: Vec<(String, String)>,
}

fn reader(dir: &Path, book: &BookId) -> Result<FileStore> {
    if !dir.is_dir() {
        return Err(Error::invalid("cache-dir", dir.display(), "is not a folder"));
    }
    // a relative folder is the user's (relative to the working folder), not
    // relative to the store's root as `file.books` entries are
    let dir = std::path::absolute(dir).map_err(|e| Error::io(dir, e))?;
    let mut cfg = FileConfig::at(&dir);
    cfg.books.insert(book.to_string(), dir.clone());
    FileStore::open(cfg)
}

/// Imports positions, prices, deals, assets and K-lines of one SilverQuant
/// cache folder into `stores`. The folder is only read. Importing twice is
/// harmless: positions are replaced, deals deduplicated by id, assets
/// upserted, bar series replaced.
pub async fn import(stores: &Stores, opts: &ImportOptions) -> Result<ImportReport> {
    let src = reader(&opts.cache_dir, &opts.book)?;
    let book = &opts.book;
    let mut report = ImportReport { book: book.to_string(), ..Default::default() };

    let snapshot = match sqdata_file::read_legacy_held_days(&opts.cache_dir)? {
        Some(legacy) => {
            report.positions_source = Some(legacy.path.display().to_string());
            legacy.snapshot
        }
        None => {
            let s = src.snapshot(book).await?;
            if opts.cache_dir.join("positions.json").exists() {
                report.positions_source = Some(opts.cache_dir.join("positions.json").display().to_string());
            }
            s
        }
    };
    report.orphan_prices = sqdata_file::orphan_prices(&opts.cache_dir, &snapshot)?;
    report.positions = snapshot.positions.len();
    report.held = snapshot.held_codes().count();
    if report.positions_source.is_some() {
        stores.positions.replace_book(book, &snapshot).await?;
    }

    let mut q = DealQuery { page_size: MAX_PAGE_SIZE, ..DealQuery::book(book.clone()) };
    loop {
        let page = src.query(&q).await?;
        if page.data.is_empty() {
            break;
        }
        let o = stores.deals.record_batch(&page.data).await?;
        report.deals_inserted += o.inserted;
        report.deals_duplicate += o.duplicates;
        if (page.data.len() as u32) < q.page_size {
            break;
        }
        q.page += 1;
    }

    for row in src.assets(book, DateRange::all()).await? {
        stores.assets.upsert_asset(book, row).await?;
        report.assets += 1;
    }

    if !opts.skip_bars {
        let dirs = match &opts.kline_dirs {
            Some(d) => d.clone(),
            None => kline::find_kline_dirs(&opts.cache_dir).into_iter().map(|(_, p)| p).collect(),
        };
        for dir in dirs {
            report.kline_dirs.push(dir.display().to_string());
            let loaded = tokio::task::spawn_blocking(move || kline::load_kline_dir(&dir)).await.map_err(|e| {
                Error::Backend { backend: "file", message: e.to_string(), retryable: false, source: None }
            })??;
            for (path, r) in loaded {
                match r {
                    Ok(series) if series.bars.is_empty() => {}
                    Ok(series) => {
                        report.bars += stores.bars.save_bars(&series, BarWriteMode::Replace).await?;
                        report.bar_series += 1;
                    }
                    Err(e) => report.bar_errors.push((path.display().to_string(), e.to_string())),
                }
            }
        }
    }
    Ok(report)
}

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    /// The folder written.
    pub out: String,
    /// Codes written to positions.json.
    pub positions: usize,
    /// Deal rows appended (rows already in the folder are not written twice).
    pub deals_written: u64,
    /// Asset rows.
    pub assets: usize,
    /// K-line files written.
    pub kline_files: usize,
}

/// Writes one book back as a SilverQuant cache folder (the reverse of
/// [`import`]): files SilverQuant reads unchanged. Existing files in `out`
/// are updated in place, keeping their key order and extra fields. Daily
/// forward-adjusted bars go to `kline_dir/<code>.csv` when it is given.
pub async fn export(stores: &Stores, book: &BookId, out: &Path, kline_dir: Option<&Path>) -> Result<ExportReport> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let dst = reader(out, book)?;
    let mut report = ExportReport { out: out.display().to_string(), ..Default::default() };
    let snapshot = stores.positions.snapshot(book).await?;
    report.positions = snapshot.positions.len();
    if !snapshot.positions.is_empty() || snapshot.inc_date.is_some() {
        dst.replace_book(book, &snapshot).await?;
    }
    let mut q =
        DealQuery { scope: DealScope::Book(book.clone()), page_size: MAX_PAGE_SIZE, ..DealQuery::book(book.clone()) };
    loop {
        let page = stores.deals.query(&q).await?;
        if page.data.is_empty() {
            break;
        }
        report.deals_written += dst.record_batch(&page.data).await?.inserted;
        if (page.data.len() as u32) < q.page_size {
            break;
        }
        q.page += 1;
    }
    for row in stores.assets.assets(book, DateRange::all()).await? {
        dst.upsert_asset(book, row).await?;
        report.assets += 1;
    }
    if let Some(kdir) = kline_dir {
        std::fs::create_dir_all(kdir).map_err(|e| Error::io(kdir, e))?;
        let keys: Vec<_> = stores
            .bars
            .overview()
            .await?
            .into_iter()
            .filter(|o| o.key.period == Period::Day1 && o.key.adjust == Adjust::Qfq)
            .map(|o| o.key)
            .collect();
        for chunk in keys.chunks(500) {
            for BarSeries { key, bars } in stores.bars.load_bars_batch(chunk, TimeRange::all()).await? {
                let path = kdir.join(format!("{}.csv", key.code));
                std::fs::write(&path, kline::format_kline_csv(key.period, &bars)).map_err(|e| Error::io(&path, e))?;
                report.kline_files += 1;
            }
        }
    }
    Ok(report)
}
