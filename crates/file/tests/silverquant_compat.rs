//! The file backend against SilverQuant's own files: byte-for-byte writes,
//! reads of what it wrote, outside writers, corruption and other processes.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sqdata_core::{
    AssetRow, AssetStore, AssetStoreExt as _, BookId, Code, DateRange, Deal, DealKind, DealQuery, DealStore,
    DealStoreExt, Error, PositionEntry, PositionStore, PriceTick,
};
use sqdata_file::{FileConfig, FileStore};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn code(s: &str) -> Code {
    Code::parse(s).unwrap()
}

fn book() -> BookId {
    BookId::new("55009728", "prod_pwc").unwrap()
}

/// A store whose book `55009728/prod_pwc` is the folder `dir` (as a user
/// points sqdata at a live SilverQuant cache folder).
fn store_on(root: &Path, dir: &Path) -> FileStore {
    let mut cfg = FileConfig::at(root);
    cfg.books.insert(book().to_string(), dir.to_path_buf());
    FileStore::open(cfg).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[allow(clippy::too_many_arguments)]
fn deal(id: &str, time: &str, c: &str, name: &str, kind: DealKind, remark: &str, price: f64, volume: u64) -> Deal {
    Deal {
        id: id.into(),
        book: book(),
        time: chrono::NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").unwrap(),
        code: code(c),
        name: name.into(),
        kind,
        remark: remark.into(),
        price,
        volume,
        amount: price * volume as f64,
        strategy: "pwc".into(),
    }
}

/// The day of `gen_silverquant_day.py`, replayed through the store, gives
/// the same bytes CPython wrote.
#[tokio::test]
async fn a_trading_day_writes_the_bytes_silverquant_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    let s = store_on(tmp.path(), &dir);
    let b = book();
    s.new_held(&b, &[code("000001.SZ"), code("600000.SH"), code("430047.BJ")]).await.unwrap();
    assert!(s.inc_held_days(&b, NaiveDate::from_ymd_opt(2025, 10, 10).unwrap()).await.unwrap());
    let t = |c: &str, h: f64, l: f64| PriceTick { code: code(c), high: h, low: l };
    s.update_extremes(&b, &[t("000001.SZ", 11.2345, 10.98), t("600000.SH", 8.0, 7.555), t("430047.BJ", 20.0, 19.5)])
        .await
        .unwrap();
    s.update_extremes(&b, &[t("000001.SZ", 11.5, 11.1), t("600000.SH", 8.1, 7.4), t("430047.BJ", 19.9, 19.6)])
        .await
        .unwrap();
    s.record_batch(&[
        deal("o1", "2025-10-10 14:50:03", "600000.SH", "浦发银行", DealKind::MarketSell, "止盈卖出", 8.1, 1200),
        deal("o2", "2025-10-10 14:51:10", "000002.SZ", "萬科Ａ", DealKind::LimitBuy, "买入,委托", 7.0, 800),
    ])
    .await
    .unwrap();
    s.mark_sold(&b, code("600000.SH")).await.unwrap();
    s.new_held(&b, &[code("000002.SZ")]).await.unwrap();
    s.upsert_asset(&b, AssetRow { date: NaiveDate::from_ymd_opt(2025, 10, 9).unwrap(), asset: 100000.0 })
        .await
        .unwrap();
    s.upsert_asset(&b, AssetRow { date: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap(), asset: 100523.47 })
        .await
        .unwrap();
    let want = Path::new(FIXTURES).join("sq_day");
    for f in ["positions.json", "max_price.json", "min_price.json", "deal_hist.csv", "assets.csv"] {
        let got = std::fs::read(dir.join(f)).unwrap();
        let exp = std::fs::read(want.join(f)).unwrap();
        assert!(
            got == exp,
            "{f} differs:\n--- sqdata\n{}\n--- SilverQuant\n{}",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&exp)
        );
    }
}

/// What SilverQuant wrote reads back as the domain says.
#[tokio::test]
async fn reads_a_silverquant_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    copy_dir(&Path::new(FIXTURES).join("sq_day"), &dir);
    let s = store_on(tmp.path(), &dir);
    let snap = s.snapshot(&book()).await.unwrap();
    assert_eq!(snap.inc_date, NaiveDate::from_ymd_opt(2025, 10, 10));
    assert_eq!(
        snap.positions[&code("000001.SZ")],
        PositionEntry { day_count: Some(1), max_price: Some(11.5), min_price: Some(10.98) }
    );
    assert_eq!(snap.positions[&code("600000.SH")], PositionEntry::default());
    assert_eq!(snap.positions[&code("000002.SZ")].day_count, Some(0));
    let page = s.query(&DealQuery::book(book())).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.data[1].name, "萬科Ａ");
    assert_eq!(page.data[1].remark, "买入,委托");
    assert!(page.data[0].id.starts_with("sq-"), "rows SilverQuant wrote get derived ids");
    // the ids are stable across re-reads (idempotent re-import)
    let again = store_on(tmp.path(), &dir).query(&DealQuery::book(book())).await.unwrap();
    assert_eq!(again.data, page.data);
    let assets = s.assets(&book(), DateRange::all()).await.unwrap();
    assert_eq!(assets.len(), 2);
    // reading touched nothing
    for f in ["positions.json", "deal_hist.csv"] {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(Path::new(FIXTURES).join("sq_day").join(f)).unwrap()
        );
    }
    assert!(!dir.join(".sqdata.lock").exists());
}

/// SilverQuant rewrites positions.json in place while sqdata runs: the next
/// snapshot sees it, even a same-size change.
#[tokio::test]
async fn outside_in_place_writes_are_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    let s = store_on(tmp.path(), &dir);
    s.new_held(&book(), &[code("000001.SZ")]).await.unwrap();
    assert_eq!(s.snapshot(&book()).await.unwrap().positions[&code("000001.SZ")].day_count, Some(0));
    for day in 1..=3u32 {
        // same size each time: only the digit changes
        std::fs::write(
            dir.join("positions.json"),
            format!("{{\n    \"000001.SZ\": {{\n        \"day_count\": {day}\n    }}\n}}"),
        )
        .unwrap();
        let snap = s.snapshot(&book()).await.unwrap();
        assert_eq!(snap.positions[&code("000001.SZ")].day_count, Some(day));
    }
    // and a write through sqdata builds on the outside version
    s.inc_held_days(&book(), NaiveDate::from_ymd_opt(2025, 10, 10).unwrap()).await.unwrap();
    assert_eq!(s.snapshot(&book()).await.unwrap().positions[&code("000001.SZ")].day_count, Some(4));
}

/// A truncated file is an error naming it — never an empty book — nothing
/// is written over it, and the last good version is kept beside it.
#[tokio::test]
async fn a_corrupt_file_is_an_error_and_the_last_good_version_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    let s = store_on(tmp.path(), &dir);
    s.new_held(&book(), &[code("000001.SZ"), code("600000.SH")]).await.unwrap();
    let good = std::fs::read(dir.join("positions.json")).unwrap();
    assert!(s.snapshot(&book()).await.is_ok());
    let path = dir.join("positions.json");
    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    // backdate it so it is not mistaken for a write in progress
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(old).unwrap();
    let e = s.snapshot(&book()).await.unwrap_err();
    match &e {
        Error::Corrupt { location, last_good, .. } => {
            assert!(location.contains("positions.json"), "{e}");
            let lg = PathBuf::from(last_good.as_ref().expect("last good kept"));
            assert_eq!(std::fs::read(lg).unwrap(), good);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(e.to_string().contains("positions.json"));
    let w = s.new_held(&book(), &[code("300750.SZ")]).await.unwrap_err();
    assert!(matches!(w, Error::Corrupt { .. }), "{w:?}");
    assert_eq!(std::fs::read(&path).unwrap(), &good[..good.len() / 2], "a corrupt file is never overwritten");
    // a fresh process (no cache) still reports it, never `{}`
    let fresh = store_on(tmp.path(), &dir);
    assert!(matches!(fresh.snapshot(&book()).await.unwrap_err(), Error::Corrupt { .. }));
}

/// Empty and garbage deal and asset files are errors too.
#[tokio::test]
async fn corrupt_csv_files_are_errors_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    std::fs::create_dir_all(&dir).unwrap();
    let s = store_on(tmp.path(), &dir);
    std::fs::write(
        dir.join("deal_hist.csv"),
        "日期,时间,代码,名称,类型,注释,成交价,成交量\n2025-10-10,25:00:00,000001.SZ,x,市买委托,y,1.0,100\n",
    )
    .unwrap();
    let e = s.query(&DealQuery::book(book())).await.unwrap_err().to_string();
    assert!(e.contains("deal_hist.csv:2") && e.contains("时间"), "{e}");
    std::fs::write(dir.join("assets.csv"), "date,asset\n2025-10-10,abc\n").unwrap();
    let e = s.assets(&book(), DateRange::all()).await.unwrap_err().to_string();
    assert!(e.contains("assets.csv:2") && e.contains("asset"), "{e}");
}

/// Rows SilverQuant appends while sqdata runs appear in the next query;
/// a row whose sidecar id was lost (a crash between the two appends) is
/// adopted by the replay instead of being written twice.
#[tokio::test]
async fn outside_appends_and_replay_after_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    let s = store_on(tmp.path(), &dir);
    let d1 = deal("o1", "2025-10-10 09:31:00", "000001.SZ", "平安银行", DealKind::MarketBuy, "买入委托", 11.23, 800);
    s.record(&d1).await.unwrap();
    // SilverQuant appends a row (GBK, csv.writer line ending)
    let row = "2025-10-10,09:32:00,600000.SH,浦发银行,市卖委托,卖出委托,8.1,100\r\n";
    let (bytes, _, _) = encoding_rs::GBK.encode(row);
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(dir.join("deal_hist.csv")).unwrap().write_all(&bytes).unwrap();
    let p = s.query(&DealQuery::book(book())).await.unwrap();
    assert_eq!(p.total, 2);
    assert_eq!(p.data[1].code, code("600000.SH"));
    // a crash after the CSV append but before the sidecar append: replaying adopts the row
    let d3 = deal("o3", "2025-10-10 09:33:00", "300750.SZ", "宁德时代", DealKind::LimitBuy, "买入委托", 215.5, 100);
    let mut line = String::new();
    line.push_str("2025-10-10,09:33:00,300750.SZ,宁德时代,限买委托,买入委托,215.5,100\r\n");
    let (bytes, _, _) = encoding_rs::GBK.encode(&line);
    std::fs::OpenOptions::new().append(true).open(dir.join("deal_hist.csv")).unwrap().write_all(&bytes).unwrap();
    let o = s.record(&d3).await.unwrap();
    assert_eq!((o.inserted, o.duplicates), (0, 1));
    let p = s.query(&DealQuery::book(book())).await.unwrap();
    assert_eq!(p.total, 3);
    assert_eq!(p.data[2], d3);
    // a fresh store sees the same ids
    let p2 = store_on(tmp.path(), &dir).query(&DealQuery::book(book())).await.unwrap();
    assert_eq!(p2.data, p.data);
}

/// A name GBK cannot encode is refused (SilverQuant reads the file as GBK).
#[tokio::test]
async fn names_outside_gbk_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store_on(tmp.path(), &tmp.path().join("b"));
    let d = deal("e1", "2025-10-10 09:31:00", "000001.SZ", "平安🚀", DealKind::MarketBuy, "", 1.0, 1);
    let e = s.record(&d).await.unwrap_err();
    assert!(e.is_invalid_input() && e.to_string().contains("name"), "{e}");
}

/// Legacy v3 `held_days.json` is read for import.
#[test]
fn legacy_held_days_json() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("held_days.json"),
        r#"{"_inc_date": "2024-10-10", "000001.SZ": 0, "000002.SZ": 1, "600000.SH": null}"#,
    )
    .unwrap();
    let l = sqdata_file::read_legacy_held_days(tmp.path()).unwrap().unwrap();
    assert_eq!(l.snapshot.inc_date, NaiveDate::from_ymd_opt(2024, 10, 10));
    assert_eq!(l.snapshot.positions[&code("000002.SZ")].day_count, Some(1));
    assert_eq!(l.snapshot.positions[&code("600000.SH")].day_count, None);
    std::fs::write(tmp.path().join("positions.json"), "{}").unwrap();
    assert!(sqdata_file::read_legacy_held_days(tmp.path()).unwrap().is_none(), "v4 file wins");
}

const CHILD_ENV: &str = "SQDATA_FILE_TEST_CHILD";

/// Several processes write one folder at once (the flock and the atomic
/// renames): every buy of every process is there and no maximum is lost.
#[test]
fn several_processes_share_one_folder() {
    // Started again by itself with CHILD_ENV set: the child role.
    if let Ok(arg) = std::env::var(CHILD_ENV) {
        return child_process_writer(arg);
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let shared = [code("000001.SZ"), code("600000.SH")];
    rt.block_on(store_on(tmp.path(), &dir).new_held(&book(), &shared)).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            std::process::Command::new(&exe)
                .args(["--exact", "several_processes_share_one_folder", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, format!("{}|{i}", tmp.path().display()))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a writer process failed");
    }
    let snap = rt.block_on(store_on(tmp.path(), &dir).snapshot(&book())).unwrap();
    for i in 0..4u32 {
        for j in 0..10u32 {
            let c = code(&format!("3{i}{j:04}.SZ"));
            assert_eq!(snap.positions.get(&c).map(|e| e.day_count), Some(Some(0)), "lost buy {c}");
        }
    }
    // child i sends highs 10 + i*10 + j/10 for j < 10: the global max is 13.9
    assert_eq!(snap.positions[&shared[0]].max_price, Some(13.9));
    // and lows 5 - (i*10 + j)/10: the global min is 1.1
    assert_eq!(snap.positions[&shared[1]].min_price, Some(1.1));
}

/// The child role of `several_processes_share_one_folder` (does nothing
/// unless started by it).
fn child_process_writer(arg: String) {
    let (root, i) = arg.rsplit_once('|').unwrap();
    let i: u32 = i.parse().unwrap();
    let root = PathBuf::from(root);
    let s = store_on(&root, &root.join("prod_pwc"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for j in 0..10u32 {
            s.new_held(&book(), &[code(&format!("3{i}{j:04}.SZ"))]).await.unwrap();
            let hi = 10.0 + (i * 10 + j) as f64 / 10.0;
            let lo = 5.0 - (i * 10 + j) as f64 / 10.0;
            let ticks = [
                PriceTick { code: code("000001.SZ"), high: hi, low: 5.0 },
                PriceTick { code: code("600000.SH"), high: hi, low: lo },
            ];
            s.update_extremes(&book(), &ticks).await.unwrap();
        }
    });
}

const BOOK_FILES: [&str; 3] = ["positions.json", "max_price.json", "min_price.json"];

fn crlf(b: &[u8]) -> Vec<u8> {
    String::from_utf8(b.to_vec()).unwrap().replace('\n', "\r\n").into_bytes()
}

/// SilverQuant on Windows writes the JSON files in text mode (CRLF): every
/// rewrite keeps them CRLF, byte for byte the LF rewrite with `\r\n`, and LF
/// files stay LF. The same operations run on an LF and a CRLF copy of a day.
#[tokio::test]
async fn crlf_files_stay_crlf() {
    let tmp = tempfile::tempdir().unwrap();
    let (lf_dir, crlf_dir) = (tmp.path().join("lf"), tmp.path().join("crlf"));
    copy_dir(&Path::new(FIXTURES).join("sq_day"), &lf_dir);
    copy_dir(&Path::new(FIXTURES).join("sq_day"), &crlf_dir);
    for f in BOOK_FILES {
        let p = crlf_dir.join(f);
        std::fs::write(&p, crlf(&std::fs::read(&p).unwrap())).unwrap();
    }
    let (lf, cr) = (store_on(&tmp.path().join("r1"), &lf_dir), store_on(&tmp.path().join("r2"), &crlf_dir));
    let b = book();
    let t = |c: &str, h: f64, l: f64| PriceTick { code: code(c), high: h, low: l };
    for step in 0..7 {
        for s in [&lf, &cr] {
            match step {
                0 => s.new_held(&b, &[code("300750.SZ")]).await.unwrap(),
                1 => assert!(s.inc_held_days(&b, NaiveDate::from_ymd_opt(2025, 10, 13).unwrap()).await.unwrap()),
                2 => {
                    s.update_extremes(&b, &[t("000001.SZ", 12.0, 10.5), t("300750.SZ", 210.0, 200.0)]).await.unwrap();
                }
                3 => s.del_held_days(&b, &[code("000001.SZ"), code("002594.SZ")]).await.unwrap(),
                4 => s.mark_sold(&b, code("300750.SZ")).await.unwrap(),
                5 => {
                    let mut snap = s.snapshot(&b).await.unwrap();
                    snap.positions.remove(&code("000002.SZ"));
                    snap.inc_date = None;
                    s.replace_book(&b, &snap).await.unwrap();
                }
                _ => s.new_held(&b, &[code("000002.SZ")]).await.unwrap(),
            }
        }
        for f in BOOK_FILES {
            let (l, c) = (std::fs::read(lf_dir.join(f)).unwrap(), std::fs::read(crlf_dir.join(f)).unwrap());
            assert!(!l.contains(&b'\r'), "step {step}: {f} of the LF folder got a CR");
            assert_eq!(c, crlf(&l), "step {step}: {f} of the CRLF folder");
        }
    }
    // both folders still read back as the same book, from a fresh process too
    let fresh = store_on(&tmp.path().join("r3"), &crlf_dir).snapshot(&b).await.unwrap();
    assert_eq!(fresh, lf.snapshot(&b).await.unwrap());
    let pos = String::from_utf8(std::fs::read(crlf_dir.join("positions.json")).unwrap()).unwrap();
    assert!(!pos.contains("_inc_date"), "a cleared _inc_date is removed, not null: {pos}");
}

/// A file with no line break yet (missing, or `{}` as SilverQuant's
/// `load_json` creates it) takes its siblings' line ending; in a new folder
/// everything is LF.
#[tokio::test]
async fn a_file_without_line_breaks_takes_its_siblings_ending() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("positions.json"), "{\r\n    \"000001.SZ\": {\r\n        \"day_count\": 1\r\n    }\r\n}")
        .unwrap();
    std::fs::write(dir.join("min_price.json"), "{}").unwrap();
    let s = store_on(tmp.path(), &dir);
    s.update_extremes(&book(), &[PriceTick { code: code("000001.SZ"), high: 11.5, low: 10.25 }]).await.unwrap();
    assert_eq!(std::fs::read(dir.join("max_price.json")).unwrap(), b"{\r\n    \"000001.SZ\": 11.5\r\n}");
    assert_eq!(std::fs::read(dir.join("min_price.json")).unwrap(), b"{\r\n    \"000001.SZ\": 10.25\r\n}");

    let fresh = tmp.path().join("new_book");
    let s = store_on(tmp.path(), &fresh);
    s.new_held(&book(), &[code("000001.SZ")]).await.unwrap();
    s.update_extremes(&book(), &[PriceTick { code: code("000001.SZ"), high: 11.5, low: 10.25 }]).await.unwrap();
    for f in BOOK_FILES {
        let bytes = std::fs::read(fresh.join(f)).unwrap();
        assert!(bytes.contains(&b'\n') && !bytes.contains(&b'\r'), "{f} of a new book is LF");
    }
}

/// `ensure_ascii=True` JSON is pure ASCII: a field sqdata does not model,
/// with escaped non-ASCII text, is rewritten escaped, in CRLF, untouched.
#[tokio::test]
async fn escaped_text_stays_ascii_through_a_crlf_rewrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    std::fs::create_dir_all(&dir).unwrap();
    let before = "{\r\n    \"000001.SZ\": {\r\n        \"day_count\": 1,\r\n        \"name\": \"\\u5e73\\u5b89\\u94f6\\u884c\"\r\n    }\r\n}";
    std::fs::write(dir.join("positions.json"), before).unwrap();
    let s = store_on(tmp.path(), &dir);
    s.del_held_days(&book(), &[code("000001.SZ")]).await.unwrap();
    let after = std::fs::read(dir.join("positions.json")).unwrap();
    assert!(after.is_ascii());
    assert_eq!(String::from_utf8(after).unwrap(), before.replace("\"day_count\": 1", "\"day_count\": null"));
}

/// `del_held_days` (SilverQuant's `del_held_day`) leaves the price files
/// alone; the code is added when not tracked.
#[tokio::test]
async fn del_held_days_keeps_the_price_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("prod_pwc");
    copy_dir(&Path::new(FIXTURES).join("sq_day"), &dir);
    let s = store_on(tmp.path(), &dir);
    let prices =
        [std::fs::read(dir.join("max_price.json")).unwrap(), std::fs::read(dir.join("min_price.json")).unwrap()];
    s.del_held_days(&book(), &[code("000001.SZ"), code("300750.SZ")]).await.unwrap();
    assert_eq!(
        [std::fs::read(dir.join("max_price.json")).unwrap(), std::fs::read(dir.join("min_price.json")).unwrap()],
        prices
    );
    let snap = s.snapshot(&book()).await.unwrap();
    assert_eq!(
        snap.positions[&code("000001.SZ")],
        PositionEntry { day_count: None, max_price: Some(11.5), min_price: Some(10.98) }
    );
    assert_eq!(snap.positions[&code("300750.SZ")], PositionEntry::default());
    let pos = String::from_utf8(std::fs::read(dir.join("positions.json")).unwrap()).unwrap();
    assert!(pos.ends_with("\"300750.SZ\": {\n        \"day_count\": null\n    }\n}"), "{pos}");
}
