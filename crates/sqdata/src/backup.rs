//! `sqdata backup` / `sqdata restore`: a logical backup of every configured
//! store in one checksummed archive.
//!
//! Each backend's domains are dumped through the store traits into the file
//! format (`stores/<backend>/…` inside the archive): the files' own copy of
//! everything, Redis's positions, ClickHouse's deals, equity and bars. A
//! `manifest.json` lists what is inside with a SHA-256 of every file, and a
//! `<archive>.sha256` beside it checks the archive itself (`sha256sum -c`).
//! The registry (accounts, strategies, parameter versions, audit) is dumped
//! whole into `registry.json`. The newest backup of each of the last 7 days
//! is kept.
//!
//! Restore checks both checksums, then makes each configured store equal to
//! its dump (verify with the dump as the truth, repairing — data written
//! after the backup is removed, which is what restoring means), then
//! verifies again and reports success only when nothing differs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqdata_core::raw::{self, Durability};
use sqdata_core::{BookId, Domain, Error, RegistryDump, RegistryStore, Result, Stores};
use sqdata_file::{FileConfig, FileStore};
use sqdata_hybrid::{Truth, VerifyMode, VerifyOptions, VerifyReport};

use crate::migrate::{NoProgress, Scope, copy};
use crate::{Backend, Config, Opened};

/// Daily backups kept.
pub const KEEP_DAYS: usize = 7;

/// One backend's part of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// The backend.
    pub backend: Backend,
    /// Its domains.
    pub domains: Vec<Domain>,
    /// Books dumped.
    pub books: usize,
    /// Bar series dumped.
    pub series: usize,
    /// Records per domain.
    pub records: BTreeMap<String, u64>,
}

/// `manifest.json` of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupManifest {
    /// sqdata's version.
    pub version: String,
    /// When (local time).
    pub created: String,
    /// The tier.
    pub tier: crate::Tier,
    /// One per configured backend.
    pub parts: Vec<Part>,
    /// The registry's dump (`registry.json`); absent in backups made before
    /// the registry existed.
    #[serde(default)]
    pub registry: Option<RegistryPart>,
    /// SHA-256 of every file in the archive (path → hex).
    pub sha256: BTreeMap<String, String>,
}

/// The registry's part of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryPart {
    /// `sqlite` or `mysql`.
    pub backend: String,
    /// Accounts.
    pub accounts: usize,
    /// Strategies.
    pub strategies: usize,
    /// Parameter versions.
    pub params: usize,
    /// Audit rows.
    pub audit: usize,
}

impl RegistryPart {
    fn of(backend: &str, d: &RegistryDump) -> RegistryPart {
        RegistryPart {
            backend: backend.into(),
            accounts: d.accounts.len(),
            strategies: d.strategies.len(),
            params: d.params.len(),
            audit: d.audit.len(),
        }
    }
}

/// What a backup made.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The archive.
    pub archive: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size.
    pub bytes: u64,
    /// What is inside.
    pub manifest: BackupManifest,
    /// Older archives removed by the 7-day retention.
    pub pruned: Vec<PathBuf>,
    /// Wall time.
    pub elapsed_ms: u64,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The archive.
    pub archive: PathBuf,
    /// Per backend: the repair that restored it.
    pub restored: Vec<(Backend, VerifyReport)>,
    /// Per backend: the check afterwards (all 0 differences, or the restore failed).
    pub checked: Vec<(Backend, VerifyReport)>,
    /// The registry, restored and read back equal (when the backup has it
    /// and no `--only` narrowed the restore).
    pub registry: Option<RegistryPart>,
    /// Wall time.
    pub elapsed_ms: u64,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::Backend { backend: "backup", message: e.to_string(), retryable: false, source: None }
}

/// The live stores of each configured backend and the durable domains it
/// holds, by the configuration's routes (the files hold everything).
fn parts(config: &Config, opened: &Opened) -> Result<Vec<(Backend, Vec<Domain>, Stores)>> {
    let files = Stores::from_one(opened.files.clone());
    let mut out = vec![(Backend::File, Domain::DURABLE.to_vec(), files)];
    let routes = config.routes();
    let primary = opened.hybrid.as_ref().map(|h| h.primary().clone());
    for b in Backend::ALL.into_iter().filter(|b| *b != Backend::File) {
        let domains: Vec<Domain> = routes.domains_of(b).into_iter().filter(|d| d.durable()).collect();
        if domains.is_empty() {
            continue;
        }
        let p = primary.clone().ok_or_else(|| Error::Config(format!("{b} is routed but not open")))?;
        out.push((b, domains, p));
    }
    Ok(out)
}

async fn books_of(s: &Stores, domains: &[Domain]) -> Result<Vec<BookId>> {
    let mut all = std::collections::BTreeSet::new();
    for d in domains {
        all.extend(s.books(*d).await?);
    }
    Ok(all.into_iter().collect())
}

fn dump_store(root: PathBuf) -> Result<Stores> {
    let cfg = FileConfig { durability: sqdata_file::Durability::Flush, ..FileConfig::at(root) };
    Ok(Stores::from_one(Arc::new(FileStore::open(cfg)?)))
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = e.map_err(|e| Error::io(dir, e))?.path();
        if p.is_dir() {
            walk(&p, base, out)?;
        } else {
            out.push(p.strip_prefix(base).map_err(err)?.to_path_buf());
        }
    }
    Ok(())
}

/// The default folder: `<file.root>/_backups/daily`.
pub fn default_dir(config: &Config) -> PathBuf {
    config.file.root.join("_backups").join("daily")
}

/// Backs up every configured store into `dir`.
pub async fn backup(config: &Config, dir: &Path) -> Result<BackupReport> {
    let t = Instant::now();
    let opened = crate::open_all(config)?;
    let now = chrono::Local::now();
    let stage = tempfile_dir(dir, &format!(".staging-{}", now.format("%Y%m%d-%H%M%S-%3f")))?;
    let mut parts_out = Vec::new();
    for (backend, domains, live) in parts(config, &opened)? {
        let books = books_of(&live, &domains).await?;
        let series: Vec<_> = if domains.contains(&Domain::Bars) {
            live.bars.overview().await?.into_iter().map(|o| o.key).collect()
        } else {
            Vec::new()
        };
        let dump = dump_store(stage.join("stores").join(backend.to_string()))?;
        let scope = Scope { domains: &domains, books: &books, series: &series, date: None };
        let records = copy(&live, &dump, scope, true, &NoProgress).await?;
        parts_out.push(Part { backend, domains, books: books.len(), series: series.len(), records });
    }
    let reg = crate::open_registry(config).await?;
    let dump = reg.dump().await?;
    let registry = Some(RegistryPart::of(reg.inner().backend(), &dump));
    raw::replace_atomic(
        &stage.join("registry.json"),
        &serde_json::to_vec_pretty(&dump).map_err(err)?,
        Durability::Flush,
    )?;
    let mut files = Vec::new();
    walk(&stage, &stage, &mut files)?;
    files.sort();
    let mut sums = BTreeMap::new();
    for f in &files {
        sums.insert(f.display().to_string(), sha256_file(&stage.join(f))?);
    }
    let manifest = BackupManifest {
        version: env!("CARGO_PKG_VERSION").into(),
        created: now.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        tier: config.tier,
        parts: parts_out,
        registry,
        sha256: sums,
    };
    let body = serde_json::to_vec_pretty(&manifest).map_err(err)?;
    raw::replace_atomic(&stage.join("manifest.json"), &body, Durability::Flush)?;

    let name = format!("sqdata-backup-{}.tar.gz", now.format("%Y%m%d-%H%M%S"));
    let archive = dir.join(&name);
    // The archive is written beside its final name and renamed over it
    // once synced (the toolkit's crash argument, streamed: a tar is too big
    // to hold in memory); the sidecar goes through `replace_atomic`.
    let tmp = raw::fs::temp_path(&archive, "backup");
    let written = (|| -> Result<()> {
        let f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(f, flate2::Compression::default()));
        tar.append_dir_all(".", &stage).map_err(|e| Error::io(&stage, e))?;
        let gz = tar.into_inner().map_err(|e| Error::io(&tmp, e))?;
        let f = gz.finish().map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &archive).map_err(|e| Error::io(&archive, e))?;
        raw::sync_dir(dir)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let _ = std::fs::remove_dir_all(&stage);
    let sha = sha256_file(&archive)?;
    let sidecar = dir.join(format!("{name}.sha256"));
    raw::replace_atomic(&sidecar, format!("{sha}  {name}\n").as_bytes(), Durability::Fsync)?;
    let bytes = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
    let pruned = prune(dir, KEEP_DAYS)?;
    Ok(BackupReport { archive, sha256: sha, bytes, manifest, pruned, elapsed_ms: t.elapsed().as_millis() as u64 })
}

fn tempfile_dir(dir: &Path, name: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    let _ = std::fs::remove_dir_all(&p);
    raw::create_dir_all_synced(&p)?;
    Ok(p)
}

/// Backups in `dir`, oldest first.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sqdata-backup-") && n.ends_with(".tar.gz"))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Keeps the newest backup of each of the newest `days` days; removes the rest.
pub fn prune(dir: &Path, days: usize) -> Result<Vec<PathBuf>> {
    let all = list(dir)?;
    // sqdata-backup-YYYYMMDD-HHMMSS.tar.gz: the day is chars 14..22
    let mut newest_per_day: BTreeMap<String, PathBuf> = BTreeMap::new();
    for p in &all {
        let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        newest_per_day.insert(n.get(14..22).unwrap_or_default().to_string(), p.clone());
    }
    let keep: Vec<&PathBuf> = newest_per_day.values().rev().take(days).collect();
    let mut removed = Vec::new();
    for p in &all {
        if !keep.contains(&p) {
            std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
            let side = PathBuf::from(format!("{}.sha256", p.display()));
            let _ = std::fs::remove_file(side);
            removed.push(p.clone());
        }
    }
    Ok(removed)
}

/// Restores every configured store from `archive` (only the backends in
/// `only`, when given) and verifies the result.
pub async fn restore(config: &Config, archive: &Path, only: Option<&[Backend]>) -> Result<RestoreReport> {
    let t = Instant::now();
    let name = archive.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let sidecar = PathBuf::from(format!("{}.sha256", archive.display()));
    let actual = sha256_file(archive)?;
    match std::fs::read_to_string(&sidecar) {
        Ok(s) => {
            let want = s.split_whitespace().next().unwrap_or_default();
            if want != actual {
                return Err(Error::corrupt(
                    archive.display().to_string(),
                    format!("SHA-256 {actual} does not match {want} in {}", sidecar.display()),
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(archive = %name, "no .sha256 beside the archive; checking the files inside only");
        }
        Err(e) => return Err(Error::io(&sidecar, e)),
    }
    let parent = archive.parent().unwrap_or(Path::new("."));
    let stage = tempfile_dir(parent, &format!(".restore-{}", std::process::id()))?;
    let result = restore_from(config, archive, &stage, only).await;
    let _ = std::fs::remove_dir_all(&stage);
    let (restored, checked, registry) = result?;
    Ok(RestoreReport {
        archive: archive.to_path_buf(),
        restored,
        checked,
        registry,
        elapsed_ms: t.elapsed().as_millis() as u64,
    })
}

type Reports = Vec<(Backend, VerifyReport)>;

async fn restore_from(
    config: &Config,
    archive: &Path,
    stage: &Path,
    only: Option<&[Backend]>,
) -> Result<(Reports, Reports, Option<RegistryPart>)> {
    let f = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    tar::Archive::new(flate2::read::GzDecoder::new(f))
        .unpack(stage)
        .map_err(|e| Error::corrupt(archive.display().to_string(), e.to_string()))?;
    let mpath = stage.join("manifest.json");
    let m: BackupManifest = serde_json::from_slice(&std::fs::read(&mpath).map_err(|e| Error::io(&mpath, e))?)
        .map_err(|e| Error::corrupt(mpath.display().to_string(), e.to_string()))?;
    for (f, want) in &m.sha256 {
        let got = sha256_file(&stage.join(f))?;
        if &got != want {
            return Err(Error::corrupt(format!("{}:{f}", archive.display()), "SHA-256 does not match the manifest"));
        }
    }
    let opened = crate::open_all(config)?;
    let (mut restored, mut checked) = (Vec::new(), Vec::new());
    for (backend, domains, live) in parts(config, &opened)? {
        if only.is_some_and(|o| !o.contains(&backend)) {
            continue;
        }
        let Some(part) = m.parts.iter().find(|p| p.backend == backend) else {
            return Err(Error::invalid("archive", archive.display(), format!("holds no {backend} part")));
        };
        let domains: Vec<Domain> = domains.into_iter().filter(|d| part.domains.contains(d)).collect();
        let dump = dump_store(stage.join("stores").join(backend.to_string()))?;
        let opts = VerifyOptions {
            mode: VerifyMode::Full,
            repair: true,
            truth: Truth::Secondary,
            domains: domains.clone(),
            ..VerifyOptions::default()
        };
        restored.push((backend, sqdata_hybrid::verify(&live, &dump, &opts).await?));
        let check = sqdata_hybrid::verify(&live, &dump, &VerifyOptions { repair: false, ..opts }).await?;
        if check.total_differences() > 0 {
            return Err(Error::Backend {
                backend: "restore",
                message: format!(
                    "{backend} still differs from the backup after restoring ({} differences)",
                    check.total_differences()
                ),
                retryable: false,
                source: None,
            });
        }
        checked.push((backend, check));
    }
    let mut registry = None;
    if only.is_none() && m.registry.is_some() {
        let rpath = stage.join("registry.json");
        let dump: RegistryDump = serde_json::from_slice(&std::fs::read(&rpath).map_err(|e| Error::io(&rpath, e))?)
            .map_err(|e| Error::corrupt(rpath.display().to_string(), e.to_string()))?;
        let reg = crate::open_registry(config).await?;
        reg.restore_dump(&dump, "sqdata restore").await?;
        let back = reg.dump().await?;
        let same = back.accounts == dump.accounts
            && back.strategies == dump.strategies
            && back.params == dump.params
            && back.audit.get(..dump.audit.len()) == Some(&dump.audit[..]);
        if !same {
            return Err(Error::Backend {
                backend: "restore",
                message: "the registry differs from the backup after restoring".into(),
                retryable: false,
                source: None,
            });
        }
        registry = Some(RegistryPart::of(reg.inner().backend(), &dump));
    }
    Ok((restored, checked, registry))
}
