"""sqdata: SilverQuant's data module, from Python.

    import sqdata
    store = sqdata.open()                      # ./sqdata.toml, $SQDATA_CONFIG, SQDATA_* as the CLI
    book = store.book("55009728", "prod_pwc")
    book.snapshot()                            # {"inc_date": ..., "positions": {code: {...}}}
    book.update_extremes([("000001.SZ", 11.2, 10.9)])

Every call releases the GIL while it waits on a file or a server. Store
errors raise ``SqdataError`` subclasses (``InvalidInput``, ``CorruptData``,
``Unavailable``) carrying the store's message. pandas is optional: the
``*_frame`` and ``bars*`` methods need it.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _sqdata
from ._sqdata import CorruptData, InvalidInput, SqdataError, Unavailable

__version__ = _sqdata.__version__
__all__ = ["open", "Store", "Book", "SqdataError", "InvalidInput", "CorruptData", "Unavailable"]

DateLike = Union[str, _dt.date, _dt.datetime, None]


def _day(d: DateLike) -> Optional[str]:
    if d is None:
        return None
    if isinstance(d, _dt.datetime):
        return d.date().isoformat()
    if isinstance(d, _dt.date):
        return d.isoformat()
    return str(d)


def _moment(d: DateLike) -> Optional[str]:
    if d is None:
        return None
    if isinstance(d, _dt.datetime):
        return d.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(d, _dt.date):
        return d.isoformat()
    return str(d)


def _deal_json(d: Dict[str, Any]) -> Dict[str, Any]:
    known = {"id", "time", "code", "name", "kind", "remark", "price", "volume", "amount", "strategy"}
    unknown = set(d) - known
    if unknown:
        raise InvalidInput(f"invalid deal field(s) {sorted(unknown)}: expected {sorted(known)}")
    t = d.get("time")
    if isinstance(t, _dt.datetime):
        t = t.strftime("%Y-%m-%dT%H:%M:%S")
    elif isinstance(t, str) and " " in t:
        t = t.replace(" ", "T", 1)
    price, volume = d.get("price"), d.get("volume")
    amount = d.get("amount")
    if amount is None and isinstance(price, (int, float)) and isinstance(volume, int):
        amount = round(price * volume, 2)
    return {
        "id": d.get("id"),
        "time": t,
        "code": d.get("code"),
        "name": d.get("name", ""),
        "kind": d.get("kind"),
        "remark": d.get("remark", ""),
        "price": price,
        "volume": volume,
        "amount": amount,
        "strategy": d.get("strategy", ""),
    }


class Book:
    """One book (an account's strategy cache folder) of a store."""

    __slots__ = ("_s", "account", "name")

    def __init__(self, store: "Store", account: str, name: str):
        self._s = store._s
        self.account = account
        self.name = name

    def __repr__(self) -> str:
        return f"Book({self.account!r}, {self.name!r})"

    # ---- positions (the sell loop's hot path) ----
    def snapshot(self) -> Dict[str, Any]:
        return self._s.snapshot(self.account, self.name)

    def held_days(self, codes: Sequence[str]) -> Dict[str, Optional[int]]:
        return self._s.held_days(self.account, self.name, list(codes))

    def new_held(self, codes: Sequence[str]) -> None:
        self._s.new_held(self.account, self.name, list(codes))

    def mark_sold(self, code: str) -> None:
        self._s.mark_sold(self.account, self.name, code)

    def del_held_days(self, codes: Sequence[str]) -> None:
        """Day count None for each code (added so if not tracked), prices
        kept: SilverQuant's ``del_held_day`` (the strategy drops the prices
        itself). ``mark_sold`` also drops them."""
        self._s.del_held_days(self.account, self.name, list(codes))

    def reconcile(self, broker_codes: Sequence[str]) -> Dict[str, List[str]]:
        return self._s.reconcile(self.account, self.name, list(broker_codes))

    def replace(self, snapshot: Dict[str, Any]) -> None:
        """Replaces the whole position state with a ``snapshot()``-shaped dict (one atomic write)."""
        pos = {c: (e.get("day_count"), e.get("max_price"), e.get("min_price")) for c, e in snapshot["positions"].items()}
        self._s.replace_book(self.account, self.name, snapshot.get("inc_date"), pos)

    def inc_held_days(self, today: DateLike = None) -> bool:
        return self._s.inc_held_days(self.account, self.name, _day(today))

    def update_extremes(self, ticks: Union[Iterable[Tuple[str, float, float]], Dict[str, Tuple[float, float]]]) -> List[Dict[str, Any]]:
        if isinstance(ticks, dict):
            ticks = [(c, hl[0], hl[1]) for c, hl in ticks.items()]
        return self._s.update_extremes(self.account, self.name, list(ticks))

    # ---- deals ----
    def record_deal(self, deal: Dict[str, Any]) -> Dict[str, int]:
        return self.record_deals([deal])

    def record_deals(self, deals: Iterable[Dict[str, Any]]) -> Dict[str, int]:
        return self._s.record_deals_json(self.account, self.name, _json.dumps([_deal_json(d) for d in deals]))

    def deals(self, start: DateLike = None, end: DateLike = None, code: Optional[str] = None,
              kind: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every matching deal (all pages), ordered by (time, id)."""
        out: List[Dict[str, Any]] = []
        page = 1
        while True:
            p = self._s.query_deals(self.account, self.name, _day(start), _day(end), code, kind, page, 1000)
            out.extend(p["data"])
            if len(p["data"]) < 1000:
                return out
            page += 1

    def deals_frame(self, start: DateLike = None, end: DateLike = None, code: Optional[str] = None,
                    kind: Optional[str] = None):
        import pandas as pd

        rows = self.deals(start, end, code, kind)
        df = pd.DataFrame(rows, columns=["id", "book", "time", "code", "name", "kind", "remark", "price", "volume",
                                         "amount", "strategy"])
        df = df.drop(columns=["book"])
        df["time"] = pd.to_datetime(df["time"])
        return df

    # ---- equity ----
    def params(self, version: Optional[int] = None) -> Optional[Dict[str, Any]]:
        """The strategy's parameters (latest version, or `version`), or None.

        The registry keeps every version (SQLite beside the files by default,
        MySQL on the full tier): ``{"version", "params", "actor", "note",
        "created_at", ...}``."""
        text = self._s.params_json(self.account, self.name, version)
        return None if text is None else _json.loads(text)

    def param_history(self) -> List[Dict[str, Any]]:
        """Every stored version, oldest first."""
        return _json.loads(self._s.param_history_json(self.account, self.name))

    def put_params(self, params: Dict[str, Any], actor: str = "python", note: str = "",
                   register: bool = True) -> int:
        """Stores a new version of the parameters; returns its number. With
        `register` (default) the account and strategy are created if missing."""
        return self._s.put_params_json(self.account, self.name, _json.dumps(params, ensure_ascii=False),
                                                   actor, note, register)

    def upsert_asset(self, day: DateLike, asset: float) -> None:
        self._s.upsert_asset(self.account, self.name, _day(day), float(asset))

    def assets(self, start: DateLike = None, end: DateLike = None) -> List[Dict[str, Any]]:
        return self._s.assets(self.account, self.name, _day(start), _day(end))


class Store:
    """The stores of one configuration (see ``sqdata.open``)."""

    __slots__ = ("_s",)

    def __init__(self, native: Any):
        self._s = native

    def book(self, account: str, name: str) -> Book:
        return Book(self, str(account), str(name))

    def books(self) -> List[str]:
        return self._s.list_books()

    def health(self) -> List[Dict[str, Any]]:
        return self._s.health()

    def describe(self) -> Dict[str, Any]:
        return self._s.describe()

    # ---- quotes ----
    def put_quotes(self, quotes: Iterable[Dict[str, Any]]) -> None:
        rows = []
        for q in quotes:
            q = dict(q)
            t = q.get("time")
            if isinstance(t, _dt.datetime):
                q["time"] = t.strftime("%Y-%m-%dT%H:%M:%S")
            rows.append(q)
        self._s.put_quotes_json(_json.dumps(rows))

    def get_quotes(self, codes: Sequence[str]) -> List[Dict[str, Any]]:
        return self._s.get_quotes(list(codes))

    # ---- deals across an account ----
    def deals(self, account: str, start: DateLike = None, end: DateLike = None, code: Optional[str] = None,
              kind: Optional[str] = None, page: int = 1, page_size: int = 1000) -> Dict[str, Any]:
        return self._s.query_deals(str(account), None, _day(start), _day(end), code, kind, page, page_size)

    def aggregate_deals(self, account: str, by: str = "day", start: DateLike = None, end: DateLike = None):
        return self._s.aggregate_deals(str(account), by, _day(start), _day(end))

    # ---- bars ----
    def bars_overview(self) -> List[Dict[str, Any]]:
        return self._s.bars_overview()

    def save_bars(self, code: str, bars: Iterable[Dict[str, Any]], period: str = "1d", adjust: str = "qfq",
                  mode: str = "replace") -> int:
        rows = []
        for b in bars:
            b = dict(b)
            t = b.get("datetime")
            if isinstance(t, _dt.datetime):
                b["datetime"] = t.strftime("%Y-%m-%dT%H:%M:%S")
            elif isinstance(t, _dt.date):
                b["datetime"] = t.isoformat() + "T00:00:00"
            rows.append(b)
        return self._s.save_bars_json(code, _json.dumps(rows), period, adjust, mode)

    def _columns(self, codes: Sequence[str], period: str, adjust: str, start: DateLike, end: DateLike):
        return self._s.load_bars_columns(list(codes), period, adjust, _moment(start), _moment(end))

    def bars(self, code: str, period: str = "1d", adjust: str = "qfq", start: DateLike = None, end: DateLike = None):
        """One code's bars as a pandas DataFrame indexed by datetime."""
        return _frame(self._columns([code], period, adjust, start, end), with_code=False)

    def bars_batch(self, codes: Sequence[str], period: str = "1d", adjust: str = "qfq", start: DateLike = None,
                   end: DateLike = None, as_dict: bool = False):
        """Many codes' bars: one DataFrame with a ``code`` column (the
        columns wrap the store's buffers without copying), or with
        ``as_dict=True`` one DataFrame per code."""
        cols = self._columns(codes, period, adjust, start, end)
        if not as_dict:
            return _frame(cols, with_code=True)
        import pandas as pd

        arrays = _arrays(cols)
        idx = arrays.pop("datetime")
        out, pos = {}, 0
        for c, n in zip(cols["codes"], cols["counts"]):
            sl = slice(pos, pos + n)
            out[c] = pd.DataFrame({k: v[sl] for k, v in arrays.items()}, index=pd.Index(idx[sl], name="datetime"),
                                  copy=False)
            pos += n
        return out


def _arrays(cols: Dict[str, Any]) -> Dict[str, Any]:
    import numpy as np

    return {
        "datetime": np.frombuffer(cols["datetime"], dtype="<i8").view("datetime64[ns]"),
        "open": np.frombuffer(cols["open"], dtype="<f8"),
        "high": np.frombuffer(cols["high"], dtype="<f8"),
        "low": np.frombuffer(cols["low"], dtype="<f8"),
        "close": np.frombuffer(cols["close"], dtype="<f8"),
        "volume": np.frombuffer(cols["volume"], dtype="<u8"),
        "amount": np.frombuffer(cols["amount"], dtype="<f8"),
    }


def _frame(cols: Dict[str, Any], with_code: bool):
    import numpy as np
    import pandas as pd

    data = _arrays(cols)
    if with_code:
        codes = pd.Categorical.from_codes(
            np.repeat(np.arange(len(cols["codes"]), dtype=np.int32), cols["counts"]), categories=cols["codes"]
        ) if cols["codes"] else pd.Categorical([])
        return pd.DataFrame({"code": codes, **data}, copy=False)
    return pd.DataFrame(data, copy=False).set_index("datetime")


def open(config_path: Optional[str] = None, data_dir: Optional[str] = None) -> Store:
    """Opens the stores of a configuration, as the CLI does: ``config_path``,
    else ``$SQDATA_CONFIG``, else ``./sqdata.toml`` if present, then the
    ``SQDATA_*`` environment; ``data_dir`` overrides ``file.root``."""
    return Store(_sqdata.open(config_path, data_dir))
