//! Deals and bars as Arrow record batches in Parquet (zstd), and back.
//!
//! Plain columns a pandas user can read directly (`pd.read_parquet`): times
//! are naive second timestamps in exchange time (Asia/Shanghai), codes are
//! `000001.SZ`, deal kinds their stable ASCII names.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray, TimestampSecondArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sqdata_core::{Adjust, Bar, BarKey, BookId, Code, Deal, DealKind, Error, Period, Result};

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Second, None)
}

fn deal_schema() -> Arc<Schema> {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let f = |n: &str| Field::new(n, DataType::Float64, false);
    Arc::new(Schema::new(vec![
        s("id"),
        s("account"),
        s("book"),
        Field::new("time", ts(), false),
        s("code"),
        s("name"),
        s("kind"),
        s("remark"),
        f("price"),
        Field::new("volume", DataType::UInt64, false),
        f("amount"),
        s("strategy"),
    ]))
}

fn bar_schema() -> Arc<Schema> {
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let f = |n: &str| Field::new(n, DataType::Float64, false);
    Arc::new(Schema::new(vec![
        s("code"),
        s("period"),
        s("adjust"),
        Field::new("datetime", ts(), false),
        f("open"),
        f("high"),
        f("low"),
        f("close"),
        Field::new("volume", DataType::UInt64, false),
        f("amount"),
    ]))
}

fn write(schema: Arc<Schema>, columns: Vec<ArrayRef>, location: &str) -> Result<Vec<u8>> {
    let fail = |e: &dyn std::fmt::Display| Error::Backend {
        backend: "archive",
        message: format!("encoding {location}: {e}"),
        retryable: false,
        source: None,
    };
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| fail(&e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(|e| fail(&e))?))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, schema, Some(props)).map_err(|e| fail(&e))?;
    w.write(&batch).map_err(|e| fail(&e))?;
    w.close().map_err(|e| fail(&e))?;
    Ok(out)
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(it))
}

fn seconds(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
}

/// Deals of one partition as Parquet bytes.
pub(crate) fn encode_deals(deals: &[Deal], location: &str) -> Result<Vec<u8>> {
    let codes: Vec<String> = deals.iter().map(|d| d.code.to_string()).collect();
    let cols: Vec<ArrayRef> = vec![
        strings(deals.iter().map(|d| d.id.as_str())),
        strings(deals.iter().map(|d| d.book.account.as_str())),
        strings(deals.iter().map(|d| d.book.book.as_str())),
        Arc::new(TimestampSecondArray::from_iter_values(deals.iter().map(|d| seconds(d.time)))),
        strings(codes.iter().map(String::as_str)),
        strings(deals.iter().map(|d| d.name.as_str())),
        strings(deals.iter().map(|d| d.kind.ascii())),
        strings(deals.iter().map(|d| d.remark.as_str())),
        Arc::new(Float64Array::from_iter_values(deals.iter().map(|d| d.price))),
        Arc::new(UInt64Array::from_iter_values(deals.iter().map(|d| d.volume))),
        Arc::new(Float64Array::from_iter_values(deals.iter().map(|d| d.amount))),
        strings(deals.iter().map(|d| d.strategy.as_str())),
    ];
    write(deal_schema(), cols, location)
}

/// Bars of one partition (one series) as Parquet bytes.
pub(crate) fn encode_bars(key: &BarKey, bars: &[Bar], location: &str) -> Result<Vec<u8>> {
    let code = key.code.to_string();
    let cols: Vec<ArrayRef> = vec![
        strings(bars.iter().map(|_| code.as_str())),
        strings(bars.iter().map(|_| key.period.as_str())),
        strings(bars.iter().map(|_| key.adjust.as_str())),
        Arc::new(TimestampSecondArray::from_iter_values(bars.iter().map(|b| seconds(b.datetime)))),
        Arc::new(Float64Array::from_iter_values(bars.iter().map(|b| b.open))),
        Arc::new(Float64Array::from_iter_values(bars.iter().map(|b| b.high))),
        Arc::new(Float64Array::from_iter_values(bars.iter().map(|b| b.low))),
        Arc::new(Float64Array::from_iter_values(bars.iter().map(|b| b.close))),
        Arc::new(UInt64Array::from_iter_values(bars.iter().map(|b| b.volume))),
        Arc::new(Float64Array::from_iter_values(bars.iter().map(|b| b.amount))),
    ];
    write(bar_schema(), cols, location)
}

/// Reads every batch, checking the schema is the one we write.
fn batches(bytes: Bytes, expect: &Schema, location: &str) -> Result<Vec<RecordBatch>> {
    let corrupt = |e: &dyn std::fmt::Display| Error::corrupt(location, e.to_string());
    let reader =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| corrupt(&e))?.build().map_err(|e| corrupt(&e))?;
    let mut out = Vec::new();
    for b in reader {
        let b = b.map_err(|e| corrupt(&e))?;
        for f in expect.fields() {
            let ok = b.schema().field_with_name(f.name()).is_ok_and(|g| g.data_type() == f.data_type());
            if !ok {
                return Err(Error::corrupt(location, format!("column {} missing or not {}", f.name(), f.data_type())));
            }
        }
        out.push(b);
    }
    Ok(out)
}

struct Cols<'a> {
    b: &'a RecordBatch,
    location: &'a str,
}

impl<'a> Cols<'a> {
    fn get<T: 'static>(&self, name: &str) -> Result<&'a T> {
        let col =
            self.b.column_by_name(name).ok_or_else(|| Error::corrupt(self.location, format!("no column {name}")))?;
        if col.null_count() > 0 {
            return Err(Error::corrupt(self.location, format!("column {name} has nulls")));
        }
        col.as_any()
            .downcast_ref::<T>()
            .ok_or_else(|| Error::corrupt(self.location, format!("column {name}: wrong type")))
    }
    fn s(&self, name: &str) -> Result<&'a StringArray> {
        self.get(name)
    }
    fn f(&self, name: &str) -> Result<&'a Float64Array> {
        self.get(name)
    }
    fn u(&self, name: &str) -> Result<&'a UInt64Array> {
        self.get(name)
    }
    fn t(&self, name: &str) -> Result<&'a TimestampSecondArray> {
        self.get(name)
    }
}

fn time(secs: i64, location: &str) -> Result<NaiveDateTime> {
    DateTime::from_timestamp(secs, 0)
        .map(|t| t.naive_utc())
        .ok_or_else(|| Error::corrupt(location, format!("time {secs} out of range")))
}

/// Parquet bytes back to deals; every row is validated.
pub(crate) fn decode_deals(bytes: Bytes, location: &str) -> Result<Vec<Deal>> {
    let mut out = Vec::new();
    for b in batches(bytes, &deal_schema(), location)? {
        let c = Cols { b: &b, location };
        let (id, acc, book, t, code, name, kind, remark) = (
            c.s("id")?,
            c.s("account")?,
            c.s("book")?,
            c.t("time")?,
            c.s("code")?,
            c.s("name")?,
            c.s("kind")?,
            c.s("remark")?,
        );
        let (price, volume, amount, strategy) = (c.f("price")?, c.u("volume")?, c.f("amount")?, c.s("strategy")?);
        for i in 0..b.num_rows() {
            let bad = |e: Error| Error::corrupt(format!("{location} row {i}"), e.to_string());
            let d = Deal {
                id: id.value(i).to_owned(),
                book: BookId::new(acc.value(i), book.value(i)).map_err(bad)?,
                time: time(t.value(i), location)?,
                code: Code::parse(code.value(i)).map_err(bad)?,
                name: name.value(i).to_owned(),
                kind: kind.value(i).parse::<DealKind>().map_err(bad)?,
                remark: remark.value(i).to_owned(),
                price: price.value(i),
                volume: volume.value(i),
                amount: amount.value(i),
                strategy: strategy.value(i).to_owned(),
            };
            d.validate().map_err(bad)?;
            out.push(d);
        }
    }
    Ok(out)
}

/// Parquet bytes back to one series' bars; the key must match `key`.
pub(crate) fn decode_bars(bytes: Bytes, key: &BarKey, location: &str) -> Result<Vec<Bar>> {
    let mut out = Vec::new();
    let want = (key.code.to_string(), key.period.as_str(), key.adjust.as_str());
    for b in batches(bytes, &bar_schema(), location)? {
        let c = Cols { b: &b, location };
        let (code, period, adjust, t) = (c.s("code")?, c.s("period")?, c.s("adjust")?, c.t("datetime")?);
        let (open, high, low, close) = (c.f("open")?, c.f("high")?, c.f("low")?, c.f("close")?);
        let (volume, amount) = (c.u("volume")?, c.f("amount")?);
        for i in 0..b.num_rows() {
            if (code.value(i), period.value(i), adjust.value(i)) != (want.0.as_str(), want.1, want.2) {
                return Err(Error::corrupt(
                    format!("{location} row {i}"),
                    format!(
                        "row of {}/{}/{} in the partition of {key}",
                        code.value(i),
                        period.value(i),
                        adjust.value(i)
                    ),
                ));
            }
            let bar = Bar {
                datetime: time(t.value(i), location)?,
                open: open.value(i),
                high: high.value(i),
                low: low.value(i),
                close: close.value(i),
                volume: volume.value(i),
                amount: amount.value(i),
            };
            bar.validate().map_err(|e| Error::corrupt(format!("{location} row {i}"), e.to_string()))?;
            out.push(bar);
        }
    }
    Ok(out)
}

/// Parses the `period=` and `adjust=` parts of a bar partition.
pub(crate) fn bar_key(code: &str, period: &str, adjust: &str) -> Result<BarKey> {
    Ok(BarKey::new(Code::parse(code)?, period.parse::<Period>()?, adjust.parse::<Adjust>()?))
}
