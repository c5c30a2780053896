"""SilverQuant's cache helpers (``tools/utils_cache.py``), backed by sqdata.

A strategy switches with three lines::

    # from tools.utils_cache import new_held, del_held_day, all_held_inc, update_max_prices, del_key, record_deal
    from sqdata.silverquant import new_held, del_held_day, all_held_inc, update_max_prices, del_key, record_deal
    import sqdata.silverquant; sqdata.silverquant.use(account="55009728")   # opens the store from sqdata.toml

The functions keep SilverQuant's names, arguments and return values. The
``path`` argument names the book as SilverQuant does — by its cache folder:
``./_cache/prod_pwc/positions.json`` is book ``prod_pwc`` of the account
given to ``use()``. The ``lock`` argument is accepted and used where
SilverQuant did a read-modify-write (``del_key``); every other operation is
one atomic store operation, safe across processes.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
from typing import Any, Dict, List, Optional, Tuple

import sqdata as _sq

_log = logging.getLogger("sqdata.silverquant")

_state: Dict[str, Any] = {"store": None, "account": None}

DAY_COUNT = "day_count"
INC_DATE = "_inc_date"


def use(store: Optional["_sq.Store"] = None, account: Optional[str] = None, config_path: Optional[str] = None,
        data_dir: Optional[str] = None) -> "_sq.Store":
    """Sets the store and account the helpers use (opening the store from
    config when none is given). The account defaults to $SQDATA_ACCOUNT."""
    _state["store"] = store if store is not None else _sq.open(config_path, data_dir)
    _state["account"] = account or os.environ.get("SQDATA_ACCOUNT")
    if not _state["account"]:
        raise _sq.InvalidInput("invalid account None: pass use(account=...) or set SQDATA_ACCOUNT")
    return _state["store"]


def _book(path: str) -> "_sq.Book":
    if _state["store"] is None:
        use()
    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return _state["store"].book(_state["account"], folder)


def _held_info(snap: Dict[str, Any]) -> Dict[str, Any]:
    """positions.json's shape: {"_inc_date": ..., code: {"day_count": n | None}}."""
    out: Dict[str, Any] = {}
    if snap["inc_date"] is not None:
        out[INC_DATE] = snap["inc_date"]
    for code, e in snap["positions"].items():
        out[code] = {DAY_COUNT: e["day_count"]}
    return out


def load_json(path: str) -> dict:
    """What SilverQuant's load_json returns for the book's files."""
    snap = _book(path).snapshot()
    name = os.path.basename(path)
    if name == "max_price.json":
        return {c: e["max_price"] for c, e in snap["positions"].items() if e["max_price"] is not None}
    if name == "min_price.json":
        return {c: e["min_price"] for c, e in snap["positions"].items() if e["min_price"] is not None}
    return _held_info(snap)


def new_held(held_operation_lock: threading.Lock, path: str, codes: List[str]) -> None:
    """Day count 0 for each code (a buy fill)."""
    _book(path).new_held(codes)


def del_held_day(lock: threading.Lock, path: str, key: str) -> bool:
    """Day count None for a sold code. Returns False (and logs why) when the
    store refused, as SilverQuant did."""
    try:
        _book(path).mark_sold(key)
        return True
    except _sq.SqdataError as e:
        _log.error("del held day failed! %s", e)
        return False


def all_held_inc(lock: threading.Lock, path: str) -> bool:
    """+1 held day for every held code, once a day; whether it ran. False
    (logged) when the store refused, as SilverQuant did."""
    try:
        return _book(path).inc_held_days(_dt.datetime.now().strftime("%Y-%m-%d"))
    except _sq.SqdataError as e:
        _log.error("[持仓计数] Held days +1 failed! %s", e)
        return False


def is_in_continuous_auction(curr_time: str) -> bool:
    return ("09:30" <= curr_time <= "11:30") or ("13:00" <= curr_time <= "14:57")


def update_max_prices(
    lock: threading.Lock,
    quotes: dict,
    positions: list,
    curr_time: str,
    path_max_prices: str,
    path_min_prices: str,
    path_held_info: str,
    ignore_open_day: bool = True,
) -> Tuple[dict, dict]:
    """Widens max/min prices of the held positions from the quotes' high/low
    (continuous auction only; from the second day when ``ignore_open_day``),
    in one atomic store step. Returns ``(max_prices, held_info)``."""
    book = _book(path_held_info)
    snap = book.snapshot()
    held = snap["positions"]
    ticks = []
    if is_in_continuous_auction(curr_time):
        for p in positions:
            code = p.stock_code
            e = held.get(code)
            if e is None:
                continue
            if ignore_open_day and (e["day_count"] is None or e["day_count"] <= 0):
                continue
            q = quotes.get(code)
            if q is not None:
                ticks.append((code, float(q["high"]), float(q["low"])))
    if ticks:
        for ch in book.update_extremes(ticks):
            if ch["max_price"] is not None:
                held[ch["code"]]["max_price"] = ch["max_price"]
            if ch["min_price"] is not None:
                held[ch["code"]]["min_price"] = ch["min_price"]
    max_prices = {c: e["max_price"] for c, e in held.items() if e["max_price"] is not None}
    return max_prices, _held_info(snap)


def del_key(lock: threading.Lock, path: str, key: str) -> None:
    """Removes one key from one of the book's files: a code from
    positions.json, or a code's price from max_price.json / min_price.json
    (after a sell, ``del_held_day`` has already dropped both prices)."""
    book = _book(path)
    name = os.path.basename(path)
    with lock:
        snap = book.snapshot()
        e = snap["positions"].get(key)
        if e is None:
            return
        if name == "max_price.json":
            if e["max_price"] is None:
                return
            e["max_price"] = None
        elif name == "min_price.json":
            if e["min_price"] is None:
                return
            e["min_price"] = None
        else:
            del snap["positions"][key]
        _replace(book, snap)


def del_keys(lock: threading.Lock, path: str, keys: List[str]) -> None:
    for k in keys:
        del_key(lock, path, k)


def _replace(book: "_sq.Book", snap: Dict[str, Any]) -> None:
    book.replace(snap)


def record_deal(
    lock: threading.Lock,
    path: str,
    timestamp: str,
    code: str,
    name: str,
    order_type: str,
    remark: str,
    price: float,
    volume: int,
) -> None:
    """Appends an order to the book's deal log (``deal_hist.csv`` stays
    byte-compatible on the file backend). The id is derived from the row,
    so a retried call records it once."""
    dt = _dt.datetime.fromtimestamp(int(timestamp))
    deal_id = f"{int(timestamp)}-{code}-{order_type}-{price}-{volume}"
    _book(path).record_deal({
        "id": deal_id, "time": dt, "code": code, "name": name, "kind": order_type, "remark": remark,
        "price": float(price), "volume": int(volume),
    })


def load_deal_hist(path: str, date: Optional[str] = None):
    """The daily deal report's read: deal_hist.csv's columns (日期, 时间,
    代码, 名称, 类型, 注释, 成交价, 成交量) as a DataFrame, one day or all."""
    import pandas as pd

    rows = _book(path).deals(start=date, end=date)
    return pd.DataFrame(
        [{
            "日期": r["time"][:10], "时间": r["time"][11:19], "代码": r["code"], "名称": r["name"],
            "类型": r["kind"], "注释": r["remark"], "成交价": r["price"], "成交量": r["volume"],
        } for r in rows],
        columns=["日期", "时间", "代码", "名称", "类型", "注释", "成交价", "成交量"],
    )


def append_asset(path: str, date: str, asset: float) -> None:
    """The 15:02 equity row — an upsert by date, so a restart does not
    duplicate it (the bug of today's append)."""
    _book(path).upsert_asset(date, asset)
