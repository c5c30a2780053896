"""The package against the file backend (always) and Redis + ClickHouse (the test servers)."""

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

import sqdata
from conftest import fresh_book


def test_positions_hot_path(store):
    b = fresh_book(store)
    assert b.snapshot() == {"inc_date": None, "positions": {}}
    b.new_held(["000001.SZ", "600000"])
    assert b.inc_held_days("2025-10-10") is True
    assert b.inc_held_days("2025-10-10") is False
    snap = b.snapshot()
    assert snap["inc_date"] == "2025-10-10"
    assert snap["positions"]["600000.SH"]["day_count"] == 1
    ch = b.update_extremes([("000001.SZ", 11.2345, 10.9), ("600000.SH", 8.0, 7.5)])
    assert {c["code"] for c in ch} == {"000001.SZ", "600000.SH"}
    assert b.snapshot()["positions"]["000001.SZ"]["max_price"] == 11.235
    assert b.update_extremes({"000001.SZ": (11.0, 11.0)}) == []
    b.mark_sold("000001.SZ")
    assert b.held_days(["000001.SZ", "600000.SH", "300750.SZ"]) == {"000001.SZ": None, "600000.SH": 1}
    r = b.reconcile(["600000.SH", "300750.SZ"])
    assert r == {"added": ["300750.SZ"], "removed": ["000001.SZ"]}


def test_bad_input_raises_naming_the_field_and_stores_nothing(store):
    b = fresh_book(store)
    b.new_held(["000001.SZ"])
    with pytest.raises(sqdata.InvalidInput, match="code"):
        b.new_held(["000002.SZ", "not-a-code"])
    with pytest.raises(sqdata.InvalidInput, match="high"):
        b.update_extremes([("000001.SZ", float("nan"), 1.0)])
    with pytest.raises(sqdata.InvalidInput, match="price"):
        b.record_deal({"id": "x", "time": "2025-10-10 09:30:00", "code": "000001.SZ", "kind": "市买委托",
                       "price": -1.0, "volume": 100})
    with pytest.raises(sqdata.InvalidInput, match="foo"):
        b.record_deal({"id": "x", "foo": 1})
    assert list(b.snapshot()["positions"]) == ["000001.SZ"]
    assert issubclass(sqdata.InvalidInput, sqdata.SqdataError)


def test_a_corrupt_file_raises_corrupt_data(store, tmp_path):
    b = fresh_book(store)
    b.new_held(["000001.SZ"])
    p = tmp_path / "data" / b.account / b.name / "positions.json"
    p.write_text('{"000001.SZ": {"day_count": ')
    with pytest.raises(sqdata.CorruptData, match="positions.json"):
        b.snapshot()


def test_deals_records_queries_and_frames(store):
    b = fresh_book(store)
    deals = [
        {"id": f"d{i}", "time": dt.datetime(2025, 10, 10, 9, 30 + i), "code": "000001.SZ", "name": "平安银行",
         "kind": "市买委托" if i % 2 == 0 else "限卖委托", "price": 11.23, "volume": 100 * (i + 1)}
        for i in range(5)
    ]
    assert b.record_deals(deals) == {"inserted": 5, "duplicates": 0}
    assert b.record_deal(deals[0]) == {"inserted": 0, "duplicates": 1}
    rows = b.deals(start="2025-10-10", end="2025-10-10")
    assert [r["id"] for r in rows] == ["d0", "d1", "d2", "d3", "d4"]
    assert rows[1]["kind"] == "限卖委托" and rows[1]["amount"] == 2246.0
    df = b.deals_frame()
    assert len(df) == 5 and str(df["time"].dtype).startswith("datetime64")
    page = store.deals(b.account, page_size=2)
    assert page["total"] >= 5 and len(page["data"]) == 2
    agg = store.aggregate_deals(b.account, by="day")
    assert any(a["period"] == "2025-10-10" for a in agg)


def test_assets_upsert_by_day(store):
    b = fresh_book(store)
    b.upsert_asset("2025-10-09", 1_000_000.0)
    b.upsert_asset(dt.date(2025, 10, 10), 1_010_000.5)
    b.upsert_asset("2025-10-10", 1_020_000.0)
    assert b.assets() == [{"date": "2025-10-09", "asset": 1000000.0}, {"date": "2025-10-10", "asset": 1020000.0}]


def test_quotes_round_trip(store):
    store.put_quotes([{"code": "000001.SZ", "time": dt.datetime(2025, 10, 10, 9, 31), "last": 11.2, "open": 11.0,
                       "high": 11.3, "low": 10.9, "pre_close": 11.0, "volume": 1000, "amount": 11200.0}])
    q = store.get_quotes(["000001.SZ", "600000.SH"])
    assert len(q) == 1 and q[0]["last"] == 11.2


def test_bars_into_pandas(store):
    pd = pytest.importorskip("pandas")
    for i, code in enumerate(["000001.SZ", "600000.SH"]):
        bars = [{"datetime": dt.date(2025, 1, 2) + dt.timedelta(days=d), "open": 10.0 + i, "high": 10.5 + i,
                 "low": 9.5 + i, "close": 10.2 + i, "volume": 1000 + d, "amount": 10200.0 + d} for d in range(30)]
        assert store.save_bars(code, bars) == 30
    one = store.bars("000001.SZ")
    assert len(one) == 30 and one.index[0] == pd.Timestamp("2025-01-02") and one["close"].iloc[0] == 10.2
    frame = store.bars_batch(["000001.SZ", "600000.SH"])
    assert len(frame) == 60 and list(frame["code"].cat.categories) == ["000001.SZ", "600000.SH"]
    assert frame[frame["code"] == "600000.SH"]["close"].iloc[0] == 11.2
    per = store.bars_batch(["000001.SZ", "600000.SH"], as_dict=True)
    assert set(per) == {"000001.SZ", "600000.SH"} and len(per["600000.SH"]) == 30
    part = store.bars("000001.SZ", start="2025-01-10", end="2025-01-12")
    assert len(part) == 3
    with pytest.raises(sqdata.InvalidInput, match="period"):
        store.bars("000001.SZ", period="2h")


def _kline_frame(pd, np, n=40, start="2023-01-02", seed=1):
    days = pd.bdate_range(start, periods=n)
    rng = np.random.default_rng(seed)
    close = np.round(10 + np.cumsum(rng.normal(0, 0.1, n)), 2)
    return pd.DataFrame({"datetime": days.strftime("%Y%m%d").astype(int), "open": close,
                         "high": np.round(close * 1.01, 2), "low": np.round(close * 0.99, 2), "close": close,
                         "volume": rng.integers(1000, 100000, n), "amount": np.round(close * 1000, 2)})


def test_bars_from_dataframes(store):
    """save_bars / save_bars_batch take DataFrames as K-line CSVs and pandas
    give them: YYYYMMDD ints, a datetime index, tz-aware times, float volume,
    rows out of order; the stored bars read back equal."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    csv_like = _kline_frame(pd, np)
    assert store.save_bars("000001.SZ", csv_like) == 40
    back = store.bars("000001.SZ")
    assert list(back.index[:2]) == [pd.Timestamp("2023-01-02"), pd.Timestamp("2023-01-03")]
    assert np.array_equal(back["close"].to_numpy(), csv_like["close"].to_numpy())
    assert np.array_equal(back["volume"].to_numpy(), csv_like["volume"].to_numpy())

    # a datetime index, newest first (tushare order), float volume, numpy dtypes
    idx_frame = csv_like.assign(datetime=pd.to_datetime(csv_like["datetime"].astype(str))).set_index("datetime")
    idx_frame = idx_frame.iloc[::-1].astype({"volume": "float64", "open": "float32"})
    minute = _kline_frame(pd, np, n=5, seed=2)
    minute["datetime"] = pd.date_range("2023-01-03 09:31", periods=5, freq="min", tz="Asia/Shanghai").tz_convert("UTC")
    written = store.save_bars_batch({"600000.SH": idx_frame, "300750.SZ": csv_like.assign(
        datetime=csv_like["datetime"].astype(str)), "000002.SZ": minute}, period="1m")
    assert written == 85
    got = store.bars("600000.SH", period="1m")
    assert len(got) == 40 and got.index.is_monotonic_increasing
    assert np.array_equal(got["open"].to_numpy(), csv_like["open"].astype("float32").astype("float64").to_numpy())
    m = store.bars("000002.SZ", period="1m")
    assert m.index[0] == pd.Timestamp("2023-01-03 09:31"), "tz-aware times stored as Shanghai wall time"

    # one DataFrame with a code column
    long = pd.concat([_kline_frame(pd, np, n=10, seed=s).assign(code=c) for s, c in [(3, "000001.SZ"), (4, "688981.SH")]])
    assert store.save_bars_batch(long.sample(frac=1, random_state=1), period="5m") == 20
    assert len(store.bars("688981.SH", period="5m")) == 10

    # upsert keeps the bars not given
    extra = _kline_frame(pd, np, n=3, start="2023-06-01", seed=5)
    assert store.save_bars("000001.SZ", extra, mode="upsert") == 3
    assert len(store.bars("000001.SZ")) == 43


def test_whole_market_loads_in_chunks_equal_to_one_by_one(store):
    """More codes than one load chunk (256): the columns are filled chunk by
    chunk; the frame equals the codes read one at a time, in order."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    frames = {f"{600000 + i:06d}.SH": _kline_frame(pd, np, n=3 + i % 4, seed=i) for i in range(300)}
    frames["000001.SZ"] = _kline_frame(pd, np, n=1, seed=9)
    assert store.save_bars_batch(frames) == sum(len(f) for f in frames.values())
    codes = list(frames) + ["000002.SZ"]  # one with no bars
    whole = store.bars_batch(codes)
    assert list(whole["code"].cat.categories) == codes
    parts = [store.bars(c).reset_index().assign(code=c) for c in codes]
    expect = pd.concat(parts, ignore_index=True)
    for col in ["datetime", "open", "high", "low", "close", "volume", "amount"]:
        assert np.array_equal(whole[col].to_numpy(), expect[col].to_numpy()), col
    assert (whole["code"].astype(str).to_numpy() == expect["code"].to_numpy()).all()


def test_bad_dataframes_name_the_field_and_store_nothing(store):
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    good = _kline_frame(pd, np, n=5)
    store.save_bars("000001.SZ", good)
    before = store.bars("000001.SZ")
    cases = [
        (good.drop(columns=["amount"]), "amount"),
        (good.assign(datetime=good["datetime"] // 10), r"bars\[000001.SZ\]\[0\].datetime: 2023010 is not a date"),
        (good.assign(datetime=20230231), "datetime: 20230231 is not a real date"),
        (good.assign(volume=-good["volume"]), r"\[0\].volume: -\d+ is negative"),
        (good.assign(volume=good["volume"] + 0.5), "volume.*not a whole number"),
        (good.assign(volume=(good["volume"] + 0.5).astype(object)), "volume.*not a whole number"),
        (good.assign(high=np.nan), "high"),
        (good.assign(close="x"), "close"),
        (pd.concat([good, good.iloc[:1]]), "increasing time"),
    ]
    for bad, pattern in cases:
        with pytest.raises(sqdata.InvalidInput, match=pattern):
            # a good series first in the same batch: nothing of the batch is written
            store.save_bars_batch({"600000.SH": good, "000001.SZ": bad}, mode="upsert")
    assert store.bars("600000.SH").empty
    pd.testing.assert_frame_equal(store.bars("000001.SZ"), before)
    with pytest.raises(sqdata.InvalidInput, match="code"):
        store.save_bars_batch(good)
    with pytest.raises(sqdata.InvalidInput, match=r"bars\[1\].code: missing"):
        store.save_bars_batch(good.assign(code=["600000.SH", None, "600000.SH", "600000.SH", "600000.SH"]))
    with pytest.raises(sqdata.InvalidInput, match="20231"):
        store.save_bars("000001.SZ", [{"datetime": 20231, "open": 1, "high": 1, "low": 1, "close": 1, "volume": 1,
                                       "amount": 1}])
    assert store.save_bars("000001.SZ", [{"datetime": 20230105, "open": 1, "high": 1, "low": 1, "close": 1,
                                          "volume": 1, "amount": 1}], mode="upsert") == 1


def test_strategy_parameters_are_versioned(store, tmp_path):
    book = store.book("55009728", "prod_pwc")
    assert book.params() is None
    assert book.put_params({"stop_loss": 0.05, "名称": "尾盘"}, actor="alice", note="first") == 1
    assert book.put_params({"stop_loss": 0.04}, actor="alice") == 2
    latest = book.params()
    assert latest["version"] == 2 and latest["params"] == {"stop_loss": 0.04}
    assert book.params(1)["params"]["名称"] == "尾盘"
    assert [v["version"] for v in book.param_history()] == [1, 2]
    with pytest.raises(sqdata.InvalidInput, match="actor"):
        book.put_params({"x": 1}, actor="")
    assert len(book.param_history()) == 2, "nothing stored"
    assert (tmp_path / "data" / "sqdata.db").exists(), "SQLite beside the files"


def test_health_and_describe(store):
    h = store.health()
    assert h[0]["backend"] == "file" and h[0]["up"] is True
    assert store.describe()["served"] == []


def test_the_gil_is_released_during_io(store):
    import threading
    import time

    b = fresh_book(store)
    b.new_held([f"{i:06d}.SZ" for i in range(1, 200)])
    ticks = 0
    stop = False

    def spin():
        nonlocal ticks
        while not stop:
            ticks += 1
            time.sleep(0)

    t = threading.Thread(target=spin)
    t.start()
    for _ in range(50):
        b.update_extremes([(f"{i:06d}.SZ", 10.0 + _ / 100, 9.0) for i in range(1, 200)])
    stop = True
    t.join()
    assert ticks > 50, "another Python thread ran while sqdata waited on fsync"


def test_open_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SQDATA_FILE__ROOT", str(tmp_path / "from-env"))
    monkeypatch.delenv("SQDATA_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    s = sqdata.open()
    s.book("55009728", "envbook").new_held(["000001.SZ"])
    assert (tmp_path / "from-env" / "55009728" / "envbook" / "positions.json").exists()
    (tmp_path / "bad.toml").write_text("[file]\nrooot = 1\n")
    with pytest.raises(sqdata.SqdataError, match="rooot"):
        sqdata.open(config_path=str(tmp_path / "bad.toml"))


def test_mvp_tier_on_redis_and_clickhouse(mvp_store):
    s = mvp_store
    assert sorted(s.describe()["served"]) == ["assets", "bars", "deals", "positions", "quotes"]
    b = fresh_book(s)
    b.new_held(["000001.SZ"])
    b.update_extremes([("000001.SZ", 12.0, 11.0)])
    assert b.snapshot()["positions"]["000001.SZ"]["max_price"] == 12.0
    b.record_deal({"id": "m1", "time": "2025-10-10 10:00:00", "code": "000001.SZ", "name": "平安银行",
                   "kind": "限买委托", "price": 12.0, "volume": 100})
    assert [d["id"] for d in b.deals()] == ["m1"]
    health = {h["backend"]: h["up"] for h in s.health()}
    assert health == {"file": True, "redis": True, "clickhouse": True, "hybrid": True}


def test_the_sell_loop_example_runs(tmp_path):
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "sell_loop.py")
    r = subprocess.run([sys.executable, example, "--seconds", "1", "--interval", "0.2", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "tick 0: 4 held" in r.stdout, r.stdout
