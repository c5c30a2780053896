//! Criterion benches of the file store, each next to its SilverQuant-way
//! baseline. `cargo bench -p sqdata-bench` (data under target/).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use sqdata::{Adjust, BarKey, BarStore, DealQuery, DealStore, Period, PositionStore, TimeRange};
use sqdata_bench::{baseline, data};

fn data_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")));
    base.join("sqdata-bench-data")
}

fn benches(c: &mut Criterion) {
    // Generating the data takes seconds: only when really benchmarking, not
    // when a test runner lists or smoke-runs this binary.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = data_dir();
    let spec = if std::env::var_os("SQDATA_BENCH_FULL").is_some() { data::Spec::full() } else { data::Spec::small() };
    rt.block_on(data::ensure(&dir, spec)).expect("bench data");
    let paths = data::Paths::under(&dir);
    let store = data::store(&paths).expect("store");
    let book = data::positions_book();
    let book_dir = store.book_dir(&book);

    let mut g = c.benchmark_group("snapshot_200");
    g.bench_function("sqdata_file", |b| b.iter(|| rt.block_on(store.snapshot(black_box(&book))).expect("snapshot")));
    g.bench_function("silverquant_way", |b| b.iter(|| baseline::snapshot(black_box(&book_dir))));
    g.finish();

    let dbook = data::deals_book();
    let day = chrono::NaiveDate::from_ymd_opt(2024, 6, 3);
    let q = DealQuery { from: day, to: day, page_size: 1000, ..DealQuery::book(dbook.clone()) };
    let csv = store.book_dir(&dbook).join("deal_hist.csv");
    let mut g = c.benchmark_group("deals_one_day");
    g.sample_size(20);
    g.bench_function("sqdata_file", |b| b.iter(|| rt.block_on(store.query(black_box(&q))).expect("query")));
    g.bench_function("silverquant_way", |b| b.iter(|| baseline::deals_of_day(&csv, "2024-06-03")));
    g.finish();

    let code = data::market_codes(1)[0];
    let key = BarKey::new(code, Period::Day1, Adjust::Qfq);
    let kcsv = paths.kline_dir.join(format!("{code}.csv"));
    let mut g = c.benchmark_group("bars_550");
    g.bench_function("sqdata_file", |b| b.iter(|| rt.block_on(store.load_bars(&key, TimeRange::all())).expect("bars")));
    g.bench_function("silverquant_way", |b| b.iter(|| baseline::load_series(black_box(&kcsv))));
    g.finish();
}

criterion_group!(file, benches);
criterion_main!(file);
