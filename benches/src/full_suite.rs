//! The full tier's suite: the registry (a parameter version stored and the
//! active version read, on SQLite and on MySQL) against the file way of
//! keeping parameters (a JSON file replaced atomically, read and parsed),
//! and the archive (deals to Parquet on a directory and on S3, and back)
//! against writing the same deals as a GBK CSV — all in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use sqdata::file::{Durability, FileConfig, FileStore};
use sqdata::serde_json::{Map, Value, json};
use sqdata::{
    Account, ArchiveConfig, BookId, DateRange, Deal, RegistryStore, Result, SqlConfig, SqlStore, Stores, Strategy,
    Table,
};

use crate::stats::{Measured, Scenario};

/// Where the servers are; `None` skips that side.
#[derive(Debug, Clone)]
pub struct FullOptions {
    /// A MySQL URL whose database the suite may create tables in (`sq_*`;
    /// the suite's rows are under its own account and deleted afterwards).
    pub mysql_url: Option<String>,
    /// An S3 archive: url `s3://bucket/prefix`, endpoint, keys.
    pub s3: Option<ArchiveConfig>,
    /// Iterations of the registry scenarios.
    pub iterations: usize,
    /// Deals per archive run.
    pub deals: usize,
    /// Archive runs per target.
    pub archive_runs: usize,
    /// Scratch folder.
    pub data_dir: std::path::PathBuf,
}

fn params(i: usize) -> Map<String, Value> {
    let v = json!({
        "stop_loss": 0.05, "trail": {"from": 1.1 + i as f64 / 1000.0, "back": 0.02},
        "max_positions": 20, "universe": ["主板", "创业板"], "wencai": "今日涨停, 非ST",
    });
    v.as_object().cloned().unwrap_or_default()
}

async fn registry_side(reg: &dyn RegistryStore, book: &BookId, n: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let acct = Account { id: book.account.clone(), name: "bench".into(), broker: "qmt".into(), meta: Map::new() };
    reg.upsert_account(&acct, "bench").await?;
    reg.upsert_strategy(
        &Strategy { book: book.clone(), description: "bench".into(), kind: "bench".into(), enabled: true },
        "bench",
    )
    .await?;
    let (mut put, mut get) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let p = params(i);
        let t = Instant::now();
        reg.put_params(book, &p, "bench", "").await?;
        put.push(t.elapsed());
        let t = Instant::now();
        let got = reg.params(book, None).await?;
        get.push(t.elapsed());
        if got.map(|v| v.params) != Some(p) {
            return Err(sqdata::Error::corrupt("bench", "read back other parameters"));
        }
    }
    reg.delete_strategy(book, "bench").await?;
    reg.delete_account(&book.account, "bench").await?;
    Ok((put, get))
}

/// The file way: the parameters as a JSON file, replaced atomically (temp,
/// fsync, rename) on every save and parsed on every read.
fn json_file_side(dir: &std::path::Path, n: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| sqdata::Error::io(dir, e))?;
    let path = dir.join("params.json");
    let tmp = dir.join("params.json.tmp");
    let (mut put, mut get) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let p = Value::Object(params(i));
        let t = Instant::now();
        let mut f = std::fs::File::create(&tmp).map_err(|e| sqdata::Error::io(&tmp, e))?;
        f.write_all(serde_json::to_string_pretty(&p).unwrap_or_default().as_bytes())
            .and_then(|_| f.sync_data())
            .map_err(|e| sqdata::Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| sqdata::Error::io(&path, e))?;
        put.push(t.elapsed());
        let t = Instant::now();
        let text = std::fs::read(&path).map_err(|e| sqdata::Error::io(&path, e))?;
        let back: Value =
            serde_json::from_slice(&text).map_err(|e| sqdata::Error::corrupt("params.json", e.to_string()))?;
        get.push(t.elapsed());
        if back != p {
            return Err(sqdata::Error::corrupt("params.json", "read back other parameters"));
        }
    }
    Ok((put, get))
}

fn deals(n: usize) -> Vec<Deal> {
    let book = BookId::new("55009728", "bench_archive").unwrap_or_else(|_| unreachable!("valid ids"));
    let codes = sqdata::sample::fresh_codes(50);
    let days = sqdata::sample::weekdays(NaiveDate::from_ymd_opt(2024, 1, 2).unwrap_or_default(), 250);
    let per_day = n.div_ceil(days.len());
    let mut v = sqdata::sample::deals(&book, &codes, &days, per_day, "a");
    v.truncate(n);
    v
}

/// A file store holding `deals` (no fsync: the store is only the source).
async fn seeded(dir: &std::path::Path, deals: &[Deal]) -> Result<Stores> {
    let _ = std::fs::remove_dir_all(dir);
    let cfg = FileConfig { durability: Durability::Flush, ..FileConfig::at(dir) };
    let s = Stores::from_one(Arc::new(FileStore::open(cfg)?));
    s.deals.record_batch(deals).await?;
    Ok(s)
}

async fn archive_side(cfg: &ArchiveConfig, o: &FullOptions, deals: &[Deal]) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut out, mut back) = (Vec::new(), Vec::new());
    for run in 0..o.archive_runs {
        let mut cfg = cfg.clone();
        cfg.url = format!("{}/run{run}-{}", cfg.url.trim_end_matches('/'), std::process::id());
        let a = sqdata::Archive::open(&cfg)?;
        let stores = seeded(&o.data_dir.join("archive-source"), deals).await?;
        let t = Instant::now();
        let r =
            a.archive(&stores, Table::Deals, NaiveDate::from_ymd_opt(2030, 1, 1).unwrap_or_default(), &|_| {}).await?;
        out.push(t.elapsed());
        if r.rows_deleted != deals.len() as u64 {
            return Err(sqdata::Error::corrupt("bench", format!("archived {} of {}", r.rows_deleted, deals.len())));
        }
        let t = Instant::now();
        let rr = a.restore(&stores, Table::Deals, DateRange::all(), &|_| {}).await?;
        back.push(t.elapsed());
        if rr.rows_restored != deals.len() as u64 {
            return Err(sqdata::Error::corrupt("bench", "restore lost rows"));
        }
    }
    Ok((out, back))
}

/// The deals as SilverQuant's GBK deal_hist.csv, written and fsync'd.
fn csv_side(dir: &std::path::Path, deals: &[Deal], runs: usize) -> Result<Vec<Duration>> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| sqdata::Error::io(dir, e))?;
    let path = dir.join("deal_hist.csv");
    let mut out = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let mut text = String::from("日期,时间,代码,名称,类型,注释,成交价,成交量\r\n");
        for d in deals {
            text += &format!(
                "{},{},{},{},{},{},{},{}\r\n",
                d.time.date(),
                d.time.time(),
                d.code,
                d.name,
                d.kind,
                d.remark,
                d.price,
                d.volume
            );
        }
        let (bytes, _, _) = encoding_rs::GBK.encode(&text);
        let mut f = std::fs::File::create(&path).map_err(|e| sqdata::Error::io(&path, e))?;
        f.write_all(&bytes).and_then(|_| f.sync_data()).map_err(|e| sqdata::Error::io(&path, e))?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// Runs the suite.
pub async fn run_full_suite(o: &FullOptions) -> Result<Vec<Scenario>> {
    let n = o.iterations;
    let mut out = Vec::new();
    let book = BookId::new(format!("bench{}", std::process::id()), "params")?;

    let sqlite_url = format!("sqlite://{}", o.data_dir.join("bench-registry.db").display());
    let _ = std::fs::remove_file(o.data_dir.join("bench-registry.db"));
    std::fs::create_dir_all(&o.data_dir).map_err(|e| sqdata::Error::io(&o.data_dir, e))?;
    let sqlite = SqlStore::open(SqlConfig { url: sqlite_url, ..SqlConfig::default() }).await?;
    let (mut sp, mut sg) = registry_side(&sqlite, &book, n).await?;
    let mysql = match &o.mysql_url {
        Some(url) => {
            let m = SqlStore::open(SqlConfig { url: url.clone(), ..SqlConfig::default() }).await?;
            Some(registry_side(&m, &book, n).await?)
        }
        None => None,
    };
    let (mut jp, mut jg) = json_file_side(&o.data_dir.join("params-json"), n)?;
    let mut put = vec![Measured::from_samples("sqdata registry, SQLite (embedded)", &mut sp, 1, "version")];
    let mut get = vec![Measured::from_samples("sqdata registry, SQLite (embedded)", &mut sg, 1, "read")];
    if let Some((mut mp, mut mg)) = mysql {
        put.push(Measured::from_samples("sqdata registry, MySQL/MariaDB", &mut mp, 1, "version"));
        get.push(Measured::from_samples("sqdata registry, MySQL/MariaDB", &mut mg, 1, "read"));
    }
    put.push(Measured::from_samples("JSON file replaced atomically (fsync)", &mut jp, 1, "version"));
    get.push(Measured::from_samples("JSON file read + parsed", &mut jg, 1, "read"));
    out.push(Scenario {
        name: "registry: store a parameter version (audited, transactional)".into(),
        target_p95_us: None,
        results: put,
        note: "the file way keeps no history and no audit; sqdata commits the version and its audit row together"
            .into(),
    });
    out.push(Scenario {
        name: "registry: read the active parameters".into(),
        target_p95_us: None,
        results: get,
        note: String::new(),
    });

    let ds = deals(o.deals);
    let local = ArchiveConfig { url: o.data_dir.join("archive").display().to_string(), ..ArchiveConfig::default() };
    let (mut lo, mut lb) = archive_side(&local, o, &ds).await?;
    let mut results =
        vec![Measured::from_samples("sqdata archive → Parquet, local dir", &mut lo, ds.len() as u64, "deal")];
    let mut restore =
        vec![Measured::from_samples("sqdata restore ← Parquet, local dir", &mut lb, ds.len() as u64, "deal")];
    if let Some(s3) = &o.s3 {
        let (mut so, mut sb) = archive_side(s3, o, &ds).await?;
        results.push(Measured::from_samples("sqdata archive → Parquet, S3", &mut so, ds.len() as u64, "deal"));
        restore.push(Measured::from_samples("sqdata restore ← Parquet, S3", &mut sb, ds.len() as u64, "deal"));
    }
    let mut c = csv_side(&o.data_dir.join("csv"), &ds, o.archive_runs)?;
    results.push(Measured::from_samples("GBK deal_hist.csv written (fsync)", &mut c, ds.len() as u64, "deal"));
    out.push(Scenario {
        name: format!("archive: {} deals of a year out of the store", ds.len()),
        target_p95_us: None,
        results,
        note: "archive = query, Parquet per month, write, read back + digest, manifest, delete from the store; \
               the CSV only writes"
            .into(),
    });
    out.push(Scenario {
        name: format!("archive: restore {} deals into the store", ds.len()),
        target_p95_us: None,
        results: restore,
        note: "parts checked against the manifest digest, then recorded by id".into(),
    });
    Ok(out)
}
