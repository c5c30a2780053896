//! Assets: a book's `assets.csv` (the equity curve).

use std::collections::BTreeMap;

use sqdata_core::{AssetRow, AssetStore, BookId, DateRange, Result, async_trait};

use crate::assets;
use crate::fsio::{self, DirLock};

use super::FileStore;

#[async_trait]
impl AssetStore for FileStore {
    async fn upsert_asset(&self, book: &BookId, row: AssetRow) -> Result<()> {
        row.validate()?;
        let book = book.clone();
        self.blocking(move |i| {
            let cell = i.cell(&book);
            let _w = cell.write.lock();
            let _flock = DirLock::acquire(&cell.dir)?;
            let path = cell.dir.join(assets::ASSETS);
            let mut rows = match fsio::read_stable(&path)? {
                None => BTreeMap::new(),
                Some((bytes, _)) => assets::parse(&path, &bytes)?,
            };
            rows.insert(row.date, row.asset);
            fsio::replace(&path, assets::format(&rows).as_bytes(), i.cfg.durability, true)?;
            Ok(())
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
