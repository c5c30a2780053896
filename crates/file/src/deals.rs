//! `deal_hist.csv`: SilverQuant's order log. Chinese header, GBK (the
//! platform encoding of a Chinese Windows machine), rows `\r\n` as Python's
//! csv module writes them. sqdata keeps what the CSV cannot hold (the deal
//! id, strategy and amount) in a sidecar, `deal_hist.ids.csv`, keyed by the
//! row's content fingerprint and occurrence, so the CSV stays exactly what
//! SilverQuant writes and reads.

use std::collections::HashMap;
use std::path::Path;

use chrono::{NaiveDate, NaiveDateTime};
use sqdata_core::{BookId, Code, Deal, DealKind, Error, Result, validate};

use crate::pyjson::float_repr;

pub(crate) const DEAL_HIST: &str = "deal_hist.csv";
pub(crate) const DEAL_IDS: &str = "deal_hist.ids.csv";
pub(crate) const HEADER: [&str; 8] = ["日期", "时间", "代码", "名称", "类型", "注释", "成交价", "成交量"];

/// Text encoding of a deal file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DealEncoding {
    /// Read: UTF-8 if the bytes are valid UTF-8, else GBK. Write: keep the
    /// file's encoding; new files in GBK.
    #[default]
    Auto,
    /// Always GBK (GB18030 for characters outside GBK).
    Gbk,
    /// Always UTF-8.
    Utf8,
}

/// The encoding a file's bytes are in.
pub(crate) fn detect(bytes: &[u8], configured: DealEncoding) -> DealEncoding {
    match configured {
        DealEncoding::Auto => {
            if std::str::from_utf8(bytes).is_ok() {
                DealEncoding::Utf8
            } else {
                DealEncoding::Gbk
            }
        }
        other => other,
    }
}

pub(crate) fn decode(path: &Path, bytes: &[u8], enc: DealEncoding) -> Result<String> {
    match enc {
        DealEncoding::Utf8 | DealEncoding::Auto => {
            let s = std::str::from_utf8(bytes)
                .map_err(|e| Error::corrupt(path.display().to_string(), format!("not valid UTF-8: {e}")))?;
            Ok(s.strip_prefix('\u{feff}').unwrap_or(s).to_owned())
        }
        DealEncoding::Gbk => {
            let (s, had_errors) = encoding_rs::GB18030.decode_without_bom_handling(bytes);
            if had_errors {
                return Err(Error::corrupt(path.display().to_string(), "not valid GBK/GB18030 text"));
            }
            Ok(s.into_owned())
        }
    }
}

pub(crate) fn encode(s: &str, enc: DealEncoding) -> Vec<u8> {
    match enc {
        DealEncoding::Utf8 => s.as_bytes().to_vec(),
        DealEncoding::Gbk | DealEncoding::Auto => encoding_rs::GB18030.encode(s).0.into_owned(),
    }
}

/// The header line SilverQuant writes when it creates the file: a plain
/// text-mode write, so `\n` on Unix and `\r\n` on Windows.
pub(crate) fn header_line() -> String {
    let eol = if cfg!(windows) { "\r\n" } else { "\n" };
    format!("{}{eol}", HEADER.join(","))
}

/// One row as Python's `csv.writer` writes it (QUOTE_MINIMAL, `\r\n`).
pub(crate) fn format_row(d: &Deal) -> String {
    let fields = row_fields(d);
    let mut line = String::with_capacity(96);
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_csv_field(&mut line, f);
    }
    line.push_str("\r\n");
    line
}

fn push_csv_field(out: &mut String, f: &str) {
    if f.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&f.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(f);
    }
}

/// The eight CSV fields of a deal, as SilverQuant formats them.
pub(crate) fn row_fields(d: &Deal) -> [String; 8] {
    [
        d.time.format("%Y-%m-%d").to_string(),
        d.time.format("%H:%M:%S").to_string(),
        d.code.to_string(),
        d.name.clone(),
        d.kind.as_str().to_owned(),
        d.remark.clone(),
        float_repr(d.price),
        d.volume.to_string(),
    ]
}

/// The content fingerprint of a row's eight fields.
pub(crate) fn fingerprint<S: AsRef<str>>(fields: &[S]) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for f in fields {
        h.update(f.as_ref().as_bytes());
        h.update(b"\x1f");
    }
    h.digest()
}

/// The id a row gets when sqdata has no id for it (written by SilverQuant).
pub(crate) fn derived_id(fp: u64, occurrence: u32) -> String {
    format!("sq-{fp:016x}-{occurrence}")
}

/// Sidecar entry: which id, strategy and amount a row occurrence has.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IdEntry {
    pub(crate) id: String,
    pub(crate) strategy: String,
    pub(crate) amount: f64,
}

pub(crate) fn parse_ids(path: &Path, text: &str) -> Result<HashMap<(u64, u32), IdEntry>> {
    let mut out = HashMap::new();
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let bad = |what: String| Error::corrupt(format!("{}:{line}", path.display()), what);
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        if rec.len() != 5 {
            return Err(bad(format!("expected 5 fields, found {}", rec.len())));
        }
        let fp = u64::from_str_radix(&rec[0], 16).map_err(|_| bad("bad fingerprint".into()))?;
        let occ: u32 = rec[1].parse().map_err(|_| bad("bad occurrence".into()))?;
        let amount: f64 = rec[4].parse().map_err(|_| bad("bad amount".into()))?;
        out.insert((fp, occ), IdEntry { id: rec[2].to_owned(), strategy: rec[3].to_owned(), amount });
    }
    Ok(out)
}

pub(crate) const IDS_HEADER: &str = "fingerprint,occurrence,id,strategy,amount\n";

pub(crate) fn format_id_line(fp: u64, occ: u32, e: &IdEntry) -> String {
    let mut line = format!("{fp:016x},{occ},");
    push_csv_field(&mut line, &e.id);
    line.push(',');
    push_csv_field(&mut line, &e.strategy);
    line.push(',');
    line.push_str(&float_repr(e.amount));
    line.push('\n');
    line
}

/// One parsed CSV row before ids are attached.
#[derive(Debug, Clone)]
pub(crate) struct RawRow {
    pub(crate) fp: u64,
    pub(crate) time: NaiveDateTime,
    pub(crate) code: Code,
    pub(crate) name: String,
    pub(crate) kind: DealKind,
    pub(crate) remark: String,
    pub(crate) price: f64,
    pub(crate) volume: u64,
}

/// Parses CSV text (header included) starting at line number `first_line`.
/// Returns the rows and the byte length consumed (complete lines only).
pub(crate) fn parse_rows(
    path: &Path,
    text: &str,
    with_header: bool,
    first_line: usize,
) -> Result<(Vec<RawRow>, usize)> {
    // Only complete lines: a final line without its newline may be mid-write.
    let complete = match text.rfind('\n') {
        Some(i) => i + 1,
        None => 0,
    };
    let body = &text[..complete];
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body.as_bytes());
    let mut rows = Vec::new();
    let mut line = first_line;
    let mut records = rdr.records();
    if with_header {
        match records.next() {
            None => return Ok((rows, complete)),
            Some(h) => {
                let h = h.map_err(|e| Error::corrupt(format!("{}:1", path.display()), e.to_string()))?;
                let got: Vec<&str> = h.iter().map(|s| s.trim_start_matches('\u{feff}')).collect();
                if got != HEADER {
                    return Err(Error::corrupt(
                        format!("{}:1", path.display()),
                        format!("unexpected header {:?}, expected {}", got.join(","), HEADER.join(",")),
                    ));
                }
                line += 1;
            }
        }
    }
    for rec in records {
        let loc = format!("{}:{line}", path.display());
        let rec = rec.map_err(|e| Error::corrupt(loc.clone(), e.to_string()))?;
        line += 1;
        if rec.len() == 1 && rec[0].trim().is_empty() {
            continue;
        }
        if rec.len() != 8 {
            return Err(Error::corrupt(loc, format!("expected 8 fields, found {}", rec.len())));
        }
        let date: NaiveDate = at(&loc, validate::date("日期", &rec[0]))?;
        let time = at(&loc, validate::time("时间", &rec[1]))?;
        let fields: Vec<&str> = rec.iter().collect();
        rows.push(RawRow {
            fp: fingerprint(&fields),
            time: date.and_time(time),
            code: at(&loc, Code::parse_field("代码", &rec[2]))?,
            name: rec[3].to_owned(),
            kind: at(&loc, rec[4].parse::<DealKind>())?,
            remark: rec[5].to_owned(),
            price: at(&loc, validate::number("成交价", &rec[6]).and_then(|p| validate::price("成交价", p)))?,
            volume: at(&loc, validate::volume("成交量", &rec[7]))?,
        });
    }
    Ok((rows, complete))
}

fn at<T>(loc: &str, r: Result<T>) -> Result<T> {
    r.map_err(|e| Error::corrupt(loc.to_owned(), e.to_string()))
}

/// Turns a raw row into a deal with its id (from the sidecar or derived).
pub(crate) fn to_deal(book: &BookId, r: &RawRow, occ: u32, ids: &HashMap<(u64, u32), IdEntry>) -> Deal {
    let (id, strategy, amount) = match ids.get(&(r.fp, occ)) {
        Some(e) => (e.id.clone(), e.strategy.clone(), e.amount),
        None => (derived_id(r.fp, occ), String::new(), r.price * r.volume as f64),
    };
    Deal {
        id,
        book: book.clone(),
        time: r.time,
        code: r.code,
        name: r.name.clone(),
        kind: r.kind,
        remark: r.remark.clone(),
        price: r.price,
        volume: r.volume,
        amount,
        strategy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_format_matches_python_csv_writer() {
        let d = Deal {
            id: "x".into(),
            book: BookId::new("1", "b").unwrap(),
            time: NaiveDate::from_ymd_opt(2025, 10, 10).unwrap().and_hms_opt(14, 50, 3).unwrap(),
            code: Code::parse("000001.SZ").unwrap(),
            name: "平安银行".into(),
            kind: DealKind::MarketBuy,
            remark: "买入,委托 \"A\"".into(),
            price: 11.0,
            volume: 800,
            amount: 8800.0,
            strategy: String::new(),
        };
        assert_eq!(
            format_row(&d),
            "2025-10-10,14:50:03,000001.SZ,平安银行,市买委托,\"买入,委托 \"\"A\"\"\",11.0,800\r\n"
        );
    }

    #[test]
    fn gbk_roundtrip_and_detection() {
        let s = "日期,时间\r\n平安银行\r\n";
        let b = encode(s, DealEncoding::Gbk);
        assert_eq!(detect(&b, DealEncoding::Auto), DealEncoding::Gbk);
        assert_eq!(decode(Path::new("x"), &b, DealEncoding::Gbk).unwrap(), s);
        assert_eq!(detect(s.as_bytes(), DealEncoding::Auto), DealEncoding::Utf8);
    }

    #[test]
    fn partial_last_line_is_not_consumed() {
        let text = "日期,时间,代码,名称,类型,注释,成交价,成交量\n2025-10-10,14:50:03,000001.SZ,平安银行,市买委托,买入委托,11.23,800\r\n2025-10-10,14:5";
        let (rows, used) = parse_rows(Path::new("d.csv"), text, true, 1).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(&text[used..], "2025-10-10,14:5");
    }

    #[test]
    fn bad_rows_name_path_line_and_field() {
        let text =
            "日期,时间,代码,名称,类型,注释,成交价,成交量\n2025-02-30,14:50:03,000001.SZ,x,市买委托,y,11.23,800\n";
        let e = parse_rows(Path::new("/b/deal_hist.csv"), text, true, 1).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("/b/deal_hist.csv:2") && m.contains("日期"), "{m}");
        let text = "日期,时间,代码,名称,类型,注释,成交价,成交量\n2025-01-30,14:50:03,000001.SZ,x,市买委托,y,NaN,800\n";
        let m = parse_rows(Path::new("d.csv"), text, true, 1).unwrap_err().to_string();
        assert!(m.contains("成交价"), "{m}");
    }
}
