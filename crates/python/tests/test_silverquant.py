"""sqdata.silverquant: SilverQuant's helpers, same names, arguments and results."""

import threading
import time
from types import SimpleNamespace

import pytest

import sqdata
import sqdata.silverquant as sq


@pytest.fixture
def cache(store, tmp_path):
    sq.use(store, account="55009728")
    d = tmp_path / "_cache" / "prod_pwc"
    return SimpleNamespace(
        held=str(d / "positions.json"), maxp=str(d / "max_price.json"), minp=str(d / "min_price.json"),
        deals=str(d / "deal_hist.csv"), assets=str(d / "assets.csv"), lock=threading.Lock(), store=store,
    )


def test_a_day_of_silverquant_calls(cache):
    c = cache
    sq.new_held(c.lock, c.held, ["000001.SZ", "600000.SH"])
    assert sq.all_held_inc(c.lock, c.held) is True
    assert sq.all_held_inc(c.lock, c.held) is False
    positions = [SimpleNamespace(stock_code="000001.SZ"), SimpleNamespace(stock_code="600000.SH")]
    quotes = {"000001.SZ": {"high": 11.5, "low": 10.8}, "600000.SH": {"high": 8.1, "low": 7.9}}
    # outside the continuous auction nothing moves
    maxp, held = sq.update_max_prices(c.lock, quotes, positions, "09:20", c.maxp, c.minp, c.held)
    assert maxp == {} and held["000001.SZ"] == {"day_count": 1}
    maxp, held = sq.update_max_prices(c.lock, quotes, positions, "10:00", c.maxp, c.minp, c.held)
    assert maxp == {"000001.SZ": 11.5, "600000.SH": 8.1}
    assert sq.load_json(c.minp) == {"000001.SZ": 10.8, "600000.SH": 7.9}
    assert set(held) == {"_inc_date", "000001.SZ", "600000.SH"}
    # a new buy is skipped on its first day (ignore_open_day)
    sq.new_held(c.lock, c.held, ["300750.SZ"])
    positions.append(SimpleNamespace(stock_code="300750.SZ"))
    quotes["300750.SZ"] = {"high": 200.0, "low": 190.0}
    maxp, _ = sq.update_max_prices(c.lock, quotes, positions, "10:01", c.maxp, c.minp, c.held)
    assert "300750.SZ" not in maxp
    # a sell: day count None, prices gone
    assert sq.del_held_day(c.lock, c.held, "000001.SZ") is True
    sq.del_key(c.lock, c.maxp, "000001.SZ")
    sq.del_key(c.lock, c.minp, "000001.SZ")
    held = sq.load_json(c.held)
    assert held["000001.SZ"] == {"day_count": None}
    assert "000001.SZ" not in sq.load_json(c.maxp)
    # del_key on a still-held code's max price keeps the rest
    sq.del_key(c.lock, c.maxp, "600000.SH")
    assert "600000.SH" not in sq.load_json(c.maxp) and sq.load_json(c.minp)["600000.SH"] == 7.9
    # orders and the daily report
    ts = str(int(time.mktime((2025, 10, 10, 14, 50, 3, 0, 0, -1))))
    sq.record_deal(c.lock, c.deals, ts, "000001.SZ", "平安银行", "市卖委托", "卖出委托", 11.23, 800)
    sq.record_deal(c.lock, c.deals, ts, "000001.SZ", "平安银行", "市卖委托", "卖出委托", 11.23, 800)  # retried
    report = sq.load_deal_hist(c.deals, "2025-10-10")
    assert list(report.columns) == ["日期", "时间", "代码", "名称", "类型", "注释", "成交价", "成交量"]
    assert report.values.tolist() == [["2025-10-10", "14:50:03", "000001.SZ", "平安银行", "市卖委托", "卖出委托", 11.23, 800]]
    sq.append_asset(c.assets, "2025-10-10", 1_000_000.0)
    sq.append_asset(c.assets, "2025-10-10", 1_000_100.0)  # a restart at 15:02 does not duplicate
    assert c.store.book("55009728", "prod_pwc").assets() == [{"date": "2025-10-10", "asset": 1000100.0}]


def test_the_files_stay_silverquant_files(cache, tmp_path):
    """On the file backend the helpers write the very files SilverQuant reads."""
    import json

    c = cache
    sq.new_held(c.lock, c.held, ["000001.SZ"])
    root = tmp_path / "data" / "55009728" / "prod_pwc"
    assert json.loads((root / "positions.json").read_text()) == {"000001.SZ": {"day_count": 0}}


def test_failures_return_false_like_silverquant(cache):
    assert sq.del_held_day(cache.lock, cache.held, "not-a-code") is False
