"""SilverQuant's cache helpers (``tools/utils_cache.py``), backed by sqdata.

A strategy switches with three lines::

    # from tools.utils_cache import new_held, del_held_day, all_held_inc, update_max_prices, del_key, record_deal
    from sqdata.silverquant import new_held, del_held_day, all_held_inc, update_max_prices, del_key, record_deal
    import sqdata.silverquant; sqdata.silverquant.use(account="55009728")   # opens the store from sqdata.toml

The functions keep SilverQuant's names, arguments and return values. The
``path`` argument names the book as SilverQuant does — by its cache folder:
``./_cache/prod_pwc/positions.json`` is book ``prod_pwc`` of the account
given to ``use()``. The ``lock`` argument is accepted and used where
the drop-in does a read-modify-write (``del_key``, ``del_keys``, and
``update_max_prices`` for sold codes without ``ignore_open_day``); every
other operation is one atomic store operation, safe across processes.

Behaviour, return values and exceptions are SilverQuant's (checked against a
model of its helpers by ``tests/test_silverquant_differential.py``), except:
a read never creates a missing file; ``del_key`` of a code in
positions.json drops its prices too (a code's prices belong to its
position); ``all_held_inc`` never counts a day again when the clock is set
back; keys that are not codes and invalid quotes (high < low, negative, not
finite) are refused. On the file backend the files keep their line endings
(CRLF on Windows).
"""

from __future__ import annotations

import datetime as _dt
import logging
import math as _math
import numbers as _numbers
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
    """Day count 0 for each code (a buy fill); prices kept."""
    _book(path).new_held(codes)


def del_held_day(lock: threading.Lock, path: str, key: str) -> bool:
    """Day count None for a sold code (the code added so if not tracked);
    ``max_price.json`` / ``min_price.json`` are left alone — the strategy
    removes those with ``del_key``, as with SilverQuant. Returns True, or
    False (logged) on any failure, as SilverQuant did."""
    try:
        _book(path).del_held_days([key])
        return True
    except Exception as e:  # noqa: BLE001 — SilverQuant's helper catches everything
        _log.error("del held day failed! %s", e)
        return False


def _today() -> str:
    return _dt.datetime.now().strftime("%Y-%m-%d")


def all_held_inc(lock: threading.Lock, path: str) -> bool:
    """+1 held day for every held code, once a day (the local date, as
    SilverQuant); whether it ran. False (logged) on any failure, as
    SilverQuant did."""
    try:
        return _book(path).inc_held_days(_today())
    except Exception as e:  # noqa: BLE001 — SilverQuant's helper catches everything
        _log.error("[持仓计数] Held days +1 failed! %s", e)
        return False


def is_in_continuous_auction(curr_time: str) -> bool:
    return ("09:30" <= curr_time <= "11:30") or ("13:00" <= curr_time <= "14:57")


def _price(v: Any) -> float:
    # SilverQuant compares and rounds the value: anything but a number is a TypeError there too
    if not isinstance(v, _numbers.Real):
        raise TypeError(f"a quote's high/low must be a number, not {type(v).__name__}")
    return float(v)


def _widen(e: Dict[str, Any], high: float, low: float) -> bool:
    changed = False
    if e["max_price"] is None or high > e["max_price"]:
        e["max_price"], changed = high, True
    if e["min_price"] is None or low < e["min_price"]:
        e["min_price"], changed = low, True
    return changed


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
    """Widens max/min prices of the tracked positions from the quotes'
    high/low, rounded to 3 decimals: only in the continuous auction
    (09:30–11:30, 13:00–14:57 by string compare of ``curr_time``), and with
    ``ignore_open_day`` only for codes whose day count is above 0. A code
    the positions list names twice counts once. Held codes are updated in
    one atomic store step. Returns ``(max_prices, held_info)``.

    One deliberate departure: a quote whose high/low is not finite, is
    negative, or has high < low is skipped (logged) — SilverQuant would
    store it, the store keeps its prices valid (max ≥ min) — and nothing
    is raised in the sell loop for it."""
    book = _book(path_held_info)
    snap = book.snapshot()
    held = snap["positions"]
    held_info = _held_info(snap)
    if not is_in_continuous_auction(curr_time):
        return _max_prices(held), held_info
    ticks: Dict[str, Tuple[float, float]] = {}  # in the order the positions name them
    for p in positions:
        code = p.stock_code
        if code in ticks:
            continue  # named twice: the same quote, nothing more to do
        e = held.get(code)
        if e is None:
            continue
        if ignore_open_day and (e["day_count"] is None or e["day_count"] <= 0):
            continue
        if code not in quotes:
            continue
        q = quotes[code]
        high, low = _price(q["high"]), _price(q["low"])
        if not (_math.isfinite(high) and _math.isfinite(low) and 0.0 <= low <= high):
            _log.warning("update max prices: skipped %s, invalid quote high=%r low=%r", code, high, low)
            continue
        # rounded here, as SilverQuant does (Python's round), before the store sees them
        ticks[code] = (round(high, 3), round(low, 3))
    if not ticks:
        return _max_prices(held), held_info
    if any(held[c]["day_count"] is None for c in ticks):
        return _max_prices(_update_with_sold(lock, book, held, ticks)), held_info
    for ch in book.update_extremes(list((c, hi, lo) for c, (hi, lo) in ticks.items())):
        if ch["max_price"] is not None:
            held[ch["code"]]["max_price"] = ch["max_price"]
        if ch["min_price"] is not None:
            held[ch["code"]]["min_price"] = ch["min_price"]
    return _max_prices(held), held_info


def _update_with_sold(lock: threading.Lock, book: "_sq.Book", held: Dict[str, Any],
                      ticks: Dict[str, Tuple[float, float]]) -> Dict[str, Any]:
    """Sold codes among the ticks (only without ``ignore_open_day``):
    SilverQuant widens their prices too, while the store's atomic step is
    for held codes only. So, under the lock and in the positions' order (a
    price new to a file is appended where SilverQuant appends it): runs of
    held codes in one atomic step, each sold code a read-modify-write."""
    with lock:
        run: List[Tuple[str, float, float]] = []
        for c, (hi, lo) in ticks.items():
            if held[c]["day_count"] is not None:
                run.append((c, hi, lo))
                continue
            if run:
                book.update_extremes(run)
                run = []
            snap = book.snapshot()
            e = snap["positions"].get(c)
            if e is not None and _widen(e, hi, lo):
                book.replace(snap)
        if run:
            book.update_extremes(run)
        return book.snapshot()["positions"]


def _max_prices(held: Dict[str, Any]) -> Dict[str, float]:
    return {c: e["max_price"] for c, e in held.items() if e["max_price"] is not None}


def _drop(snap: Dict[str, Any], name: str, key: Any) -> bool:
    """Removes ``key`` from the book as from file ``name``; whether anything changed."""
    if name == "positions.json" and key == INC_DATE:
        changed = snap["inc_date"] is not None
        snap["inc_date"] = None
        return changed
    e = snap["positions"].get(key)
    if e is None:
        return False
    if name == "max_price.json":
        changed = e["max_price"] is not None
        e["max_price"] = None
    elif name == "min_price.json":
        changed = e["min_price"] is not None
        e["min_price"] = None
    else:
        del snap["positions"][key]
        changed = True
    return changed


def del_key(lock: threading.Lock, path: str, key: str) -> None:
    """Removes one key from one of the book's files: a code from
    positions.json (with its prices: in sqdata a code's prices belong to
    its position), ``_inc_date``, or a code's price from max_price.json /
    min_price.json (after a sell, SilverQuant's strategy does both)."""
    del_keys(lock, path, [key])


def del_keys(lock: threading.Lock, path: str, keys: List[str]) -> None:
    """``del_key`` for several keys, in one write."""
    book = _book(path)
    name = os.path.basename(path)
    with lock:
        snap = book.snapshot()
        changed = False
        for k in keys:
            changed |= _drop(snap, name, k)
        if changed:
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
