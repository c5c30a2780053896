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

    def save_bars(self, code: str, bars: Any, period: str = "1d", adjust: str = "qfq",
                  mode: str = "replace") -> int:
        """Saves one code's bars: a pandas DataFrame (columns ``open high low
        close volume amount``, the time as a datetime index or a
        ``datetime``/``date`` column of datetimes, date strings or
        ``YYYYMMDD[hhmm[ss]]`` integers), or an iterable of dicts with those
        keys. ``mode`` is ``replace`` (the series becomes these bars) or
        ``upsert``. Returns the bars written."""
        if _is_frame(bars):
            return self.save_bars_batch({code: bars}, period, adjust, mode)
        rows = []
        for i, b in enumerate(bars):
            b = dict(b)
            b["datetime"] = _bar_time_text(b.get("datetime"), f"bars[{i}].datetime")
            rows.append(b)
        return self._s.save_bars_json(code, _json.dumps(rows), period, adjust, mode)

    def save_bars_batch(self, frames: Any, period: str = "1d", adjust: str = "qfq", mode: str = "replace") -> int:
        """Saves many codes' bars in one call: ``{code: DataFrame}``, or one
        DataFrame with a ``code`` column. The columns cross into the store as
        buffers (no object per row); every series is checked before any is
        written. Returns the bars written."""
        codes, counts, cols, unit, vfloat = _bar_columns(frames)
        return self._s.save_bars_columns(codes, counts, cols, unit, vfloat, period, adjust, mode)

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


def _is_frame(x: Any) -> bool:
    return type(x).__name__ == "DataFrame" and hasattr(x, "columns")


def _bar_time_text(t: Any, field: str) -> Any:
    """A bar time for the JSON path: datetimes, dates and ``YYYYMMDD``-style
    integers become ISO text; anything else goes as given (the store names
    the field if it is not a time)."""
    if isinstance(t, _dt.datetime):
        return t.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(t, _dt.date):
        return t.isoformat() + "T00:00:00"
    if isinstance(t, int) and not isinstance(t, bool) or type(t).__name__ in ("int64", "int32"):
        v, n = int(t), len(str(int(t)))
        hms = {8: (0, 0, 0), 12: (v % 10000 // 100, v % 100, 0), 14: (v % 1000000 // 10000, v % 10000 // 100, v % 100)}
        if n not in hms:
            raise InvalidInput(f"{field}: {v} is not a date (YYYYMMDD, YYYYMMDDhhmm or YYYYMMDDhhmmss)")
        day = v // 10 ** (n - 8)
        try:
            return _dt.datetime(day // 10000, day // 100 % 100, day % 100, *hms[n]).strftime("%Y-%m-%dT%H:%M:%S")
        except ValueError as e:
            raise InvalidInput(f"{field}: {v} is not a real date and time ({e})") from None
    return t


_BAR_FIELDS = ("open", "high", "low", "close", "volume", "amount")


def _bar_columns(frames: Any):
    """``(codes, counts, {column: bytes}, time_unit, volume_float)`` for
    ``save_bars_columns`` from ``{code: DataFrame}`` or one DataFrame with a
    ``code`` column."""
    import numpy as np
    import pandas as pd

    if _is_frame(frames):
        if "code" not in frames.columns:
            raise InvalidInput("bars: a single DataFrame needs a 'code' column (or pass {code: DataFrame})")
        inv, uniq = pd.factorize(frames["code"], sort=False)
        if len(inv) and (inv < 0).any():
            raise InvalidInput(f"bars[{int(np.flatnonzero(inv < 0)[0])}].code: missing")
        order = np.argsort(inv, kind="stable")
        df = frames.iloc[order]
        codes = [str(c) for c in uniq]
        counts = np.bincount(inv, minlength=len(uniq)).tolist()
        frames_list = [df]
    else:
        if not hasattr(frames, "items"):
            raise InvalidInput("bars: expected {code: DataFrame} or a DataFrame with a 'code' column")
        codes, counts, frames_list = [], [], []
        for code, f in frames.items():
            if not _is_frame(f):
                raise InvalidInput(f"bars[{code}]: expected a DataFrame, got {type(f).__name__}")
            codes.append(str(code))
            counts.append(len(f))
            frames_list.append(f)
    labels = codes if not _is_frame(frames) else ["code"]
    times, units, parts = [], [], {k: [] for k in _BAR_FIELDS}
    for label, f in zip(labels, frames_list):
        t, unit = _bar_times(f, label)
        times.append(t)
        units.append(unit)
        for k in _BAR_FIELDS:
            col = _find(f, k)
            if col is None:
                raise InvalidInput(f"bars[{label}]: missing column {k!r} (have {list(map(str, f.columns))})")
            # to_numpy, not np.asarray: numpy probing a Series for its array
            # interface goes through pandas' attribute lookup (slow per frame)
            arr = col.to_numpy()
            if arr.dtype.kind == "O":
                # Python numbers, Decimals, text: numeric first, so a
                # fractional volume is refused as in a float column
                try:
                    arr = pd.to_numeric(col).to_numpy()
                except (TypeError, ValueError) as e:
                    raise InvalidInput(f"bars[{label}]: column {k!r} is not numeric ({e})") from None
            parts[k].append(arr)
    unit = units[0] if units else "s"
    if len(set(units)) > 1:
        # frames with datetimes and frames with YYYYMMDD numbers: the
        # datetimes become YYYYMMDDhhmmss numbers (the store checks both)
        times = [t if u == "digits" else _secs_to_digits(t, np) for t, u in zip(times, units)]
        unit = "digits"
    cols = {"datetime": _cat(times, np, "<i8")}
    vfloat = any(v.dtype.kind == "f" for v in parts["volume"])
    for k in _BAR_FIELDS:
        dtype = "<i8" if (k == "volume" and not vfloat) else "<f8"
        try:
            cols[k] = _cat(parts[k], np, dtype)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"bars: column {k!r} is not numeric ({e})") from None
    return codes, counts, cols, unit, vfloat


def _find(f: Any, name: str):
    """A frame's column by name, any case (a Series), or None."""
    if name in f.columns:
        return f[name]
    for c in f.columns:
        if isinstance(c, str) and c.lower() == name:
            return f[c]
    return None


def _cat(arrays, np, dtype) -> bytes:
    if len(arrays) == 1:
        return np.ascontiguousarray(arrays[0], dtype=dtype).tobytes()
    return np.concatenate([np.asarray(a, dtype=dtype) for a in arrays]).tobytes() if arrays else b""


def _bar_times(f: Any, code: str):
    """The time column of a frame as int64 and its unit: ``"s"`` (seconds
    since the epoch of the wall time) or ``"digits"`` (``YYYYMMDD[hhmm[ss]]``)."""
    import numpy as np
    import pandas as pd

    col = None
    for name in ("datetime", "date", "trade_date", "time"):
        c = _find(f, name)
        if c is not None:
            col = c
            break
    if col is None:
        col = f.index
        if not isinstance(col, pd.DatetimeIndex) and col.dtype.kind not in "iu" or isinstance(col, pd.RangeIndex):
            raise InvalidInput(f"bars[{code}]: no time: expected a datetime index or a 'datetime' or 'date' column")
    if col.dtype.kind == "M" or isinstance(col.dtype, pd.DatetimeTZDtype):
        return _secs(pd.DatetimeIndex(col), code), "s"
    arr = col.to_numpy()
    if arr.dtype.kind in "iu":
        return arr.astype("<i8"), "digits"
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            raise InvalidInput(f"bars[{code}].datetime: float times must be whole YYYYMMDD numbers")
        return arr.astype("<i8"), "digits"
    # text or date objects
    strs = pd.Series(arr)
    if len(strs) and strs.map(lambda x: isinstance(x, str) and x.isdigit()).all():
        return strs.astype("int64").to_numpy(), "digits"
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(strs))
    except (ValueError, TypeError) as e:
        raise InvalidInput(f"bars[{code}].datetime: not a time ({e})") from None
    return _secs(idx, code), "s"


def _secs(idx, code):
    if idx.tz is not None:
        idx = idx.tz_convert("Asia/Shanghai").tz_localize(None)
    if idx.hasnans:
        raise InvalidInput(f"bars[{code}].datetime: a missing time (NaT)")
    return idx.values.astype("datetime64[s]").astype("<i8")


def _secs_to_digits(t, np):
    d = np.asarray(t, dtype="<i8").astype("datetime64[s]")
    days = d.astype("datetime64[D]")
    ymd = days.astype(object)
    secs = (d - days).astype("<i8")
    return np.array([(x.year * 10000 + x.month * 100 + x.day) * 1000000 + (s // 3600) * 10000 + (s // 60 % 60) * 100
                     + s % 60 for x, s in zip(ymd, secs)], dtype="<i8")


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
    # the index built from the buffer directly: set_index would copy every column
    idx = pd.Index(data.pop("datetime"), name="datetime", copy=False)
    return pd.DataFrame(data, index=idx, copy=False)


def open(config_path: Optional[str] = None, data_dir: Optional[str] = None) -> Store:
    """Opens the stores of a configuration, as the CLI does: ``config_path``,
    else ``$SQDATA_CONFIG``, else ``./sqdata.toml`` if present, then the
    ``SQDATA_*`` environment; ``data_dir`` overrides ``file.root``."""
    return Store(_sqdata.open(config_path, data_dir))
