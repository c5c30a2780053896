//! Assets: a book's `assets.csv` (the equity curve).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqdata_core::{AssetRow, AssetStore, BookId, DateRange, Result, async_trait};

use crate::assets;
use crate::fsio::{self, DirLock};

use super::{FileStore, Inner};

impl Inner {
    /// A read-modify-write of a book's `assets.csv` under both locks: one
    /// atomic replace (its line endings kept), skipped when `f` changes
    /// nothing. Returns whether it wrote.
    fn change_assets(&self, book: &BookId, f: impl FnOnce(&mut BTreeMap<NaiveDate, f64>) -> bool) -> Result<bool> {
        let cell = self.cell(book);
        let _w = cell.write.lock();
        let _flock = DirLock::acquire(&cell.dir)?;
        let path = cell.dir.join(assets::ASSETS);
        let (mut rows, crlf) = match fsio::read_stable(&path)? {
            None => (BTreeMap::new(), false),
            Some((bytes, _)) => (assets::parse(&path, &bytes)?, bytes.windows(2).any(|w| w == b"\r\n")),
        };
        if !f(&mut rows) {
            return Ok(false);
        }
        let mut text = assets::format(&rows);
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        fsio::replace(&path, text.as_bytes(), self.cfg.durability, true)?;
        Ok(true)
    }
}

#[async_trait]
impl AssetStore for FileStore {
    async fn upsert_assets(&self, book: &BookId, rows: &[AssetRow]) -> Result<()> {
        for r in rows {
            r.validate()?;
        }
        if rows.is_empty() {
            return Ok(());
        }
        let (book, rows) = (book.clone(), rows.to_vec());
        self.blocking(move |i| {
            i.change_assets(&book, |m| {
                for r in &rows {
                    m.insert(r.date, r.asset);
                }
                true
            })
            .map(|_| ())
        })
        .await
    }

    async fn delete_assets(&self, book: &BookId, dates: &[NaiveDate]) -> Result<u64> {
        if dates.is_empty() {
            return Ok(0);
        }
        let (book, dates) = (book.clone(), dates.to_vec());
        self.blocking(move |i| {
            let mut n = 0u64;
            i.change_assets(&book, |m| {
                n = dates.iter().filter(|d| m.remove(d).is_some()).count() as u64;
                n > 0
            })?;
            Ok(n)
        })
        .await
    }

    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>> {
        range.validate()?;
        let book = book.clone();
        self.blocking(move |i| {
            let path = i.cfg.book_dir(&book).join(assets::ASSETS);
            let rows = match fsio::read_stable(&path)? {
                None => BTreeMap::new(),
                Some((bytes, _)) => assets::parse(&path, &bytes)?,
            };
            Ok(assets::rows(&rows).into_iter().filter(|r| range.contains(r.date)).collect())
        })
        .await
    }

    async fn delete_book(&self, book: &BookId) -> Result<()> {
        let book = book.clone();
        self.blocking(move |i| i.remove_files(&book, &[assets::ASSETS])).await
    }

    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.blocking(|i| i.books_with(assets::ASSETS)).await
    }
}
