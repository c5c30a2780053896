"""The peers of `bench.py --peers`: sqdata against what users would pick
instead, interleaved in one run on the same generated data.

- ArcticDB (LMDB, local): `write_batch`, `read_batch`, `read`;
- vn.py's database (vnpy_sqlite): `save_bar_data`, `load_bar_data` — on a
  subset of the codes (it saves ~10 k bars/s), reported per bar;
- redis-py + hiredis: HGETALL of the same hash sqdata's snapshot reads;
- SilverQuant's own files: a K-line CSV per code read with pandas, the
  position JSON files read with `json`.

Every row is a cost (a time or a size; lower is better) and the table ends
with sqdata / best peer: below 1 sqdata is ahead.
"""

import json
import os
import shutil
import time
import uuid


def _dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class Table:
    def __init__(self):
        self.rows = []

    def add(self, row, name, value, unit, note=""):
        self.rows.append((row, name, value, unit, note))
        shown = _fmt(value, unit)
        print(f"  {row:<56} {name:<40} {shown:>12}  {note}", flush=True)

    def summary(self):
        print("\nsqdata / best peer (lower is better; < 1: sqdata ahead)")
        order = []
        for r in self.rows:
            if r[0] not in order:
                order.append(r[0])
        out = []
        for row in order:
            entries = [r for r in self.rows if r[0] == row]
            ours = [r for r in entries if r[1].startswith("sqdata")]
            peers = [r for r in entries if not r[1].startswith("sqdata")]
            if not ours or not peers:
                continue
            best_ours = min(ours, key=lambda r: r[2])
            best_peer = min(peers, key=lambda r: r[2])
            ratio = best_ours[2] / best_peer[2] if best_peer[2] else float("inf")
            verdict = "ahead" if ratio < 1 else "BEHIND"
            print(f"  {row:<56} {_fmt(best_ours[2], best_ours[3]):>12} vs {best_peer[1]:<40} "
                  f"{_fmt(best_peer[2], best_peer[3]):>12}  {ratio:6.2f}x  {verdict}")
            out.append({"row": row, "sqdata": best_ours[2], "peer": best_peer[1], "peer_value": best_peer[2],
                        "unit": best_ours[3], "ratio": ratio})
        return out


def _fmt(v, unit):
    if unit == "us":
        return f"{v / 1e3:.2f} ms" if v >= 1e3 else f"{v:.1f} µs"
    if unit == "bytes":
        return f"{v / 1e6:.1f} MB"
    if unit == "ns/bar":
        return f"{v:.0f} ns/bar"
    return f"{v:g} {unit}"


def _p50(fn, n, warm=1):
    """(P50, P95) in µs, by bench.py's `measure`."""
    from bench import measure

    m = measure(fn, n, warm)
    return m["p50_us"], m["p95_us"]


def run(a, work, frames, kdir, snap, np, pd):
    """`frames`: {code: DataFrame with a datetime column of YYYYMMDD ints, as
    a K-line CSV}; `snap`: the 200-position snapshot."""
    import sqdata

    t = Table()
    codes = list(frames)
    nbars = sum(len(f) for f in frames.values())
    print(f"\npeers: {len(codes)} codes, {nbars} bars; vn.py on {a.vnpy_codes} codes")

    # ---- the stores ----
    sq_root = os.path.join(work, "peers-sqdata")
    shutil.rmtree(sq_root, ignore_errors=True)
    cfg = os.path.join(work, "peers.toml")
    with open(cfg, "w") as w:
        w.write('tier = "embedded"\n')
    store = sqdata.open(config_path=cfg, data_dir=sq_root)

    import arcticdb as adb

    lmdb = os.path.join(work, "peers-arctic")
    shutil.rmtree(lmdb, ignore_errors=True)
    ac = adb.Arctic(f"lmdb://{lmdb}?map_size=20GB")
    lib = ac.get_library("bars", create_if_missing=True)
    idx_frames = {}
    for c, f in frames.items():
        g = f.copy()
        g.index = pd.to_datetime(g.pop("datetime").astype(str), format="%Y%m%d")
        g.index.name = "datetime"
        idx_frames[c] = g

    vn = _vnpy(work)
    vcodes = codes[: a.vnpy_codes]

    # ---- bulk ingest (interleaved rounds) ----
    row = f"bulk ingest, {len(codes)}x{a.bars} bars (per bar)"
    sq, ar, vp = [], [], []
    arctic_bytes = None
    for rnd in range(a.rounds):
        s0 = time.perf_counter()
        store.save_bars_batch(frames)
        sq.append((time.perf_counter() - s0) * 1e9 / nbars)
        s0 = time.perf_counter()
        res = lib.write_batch([adb.WritePayload(c, f) for c, f in idx_frames.items()], prune_previous_versions=True)
        ar.append((time.perf_counter() - s0) * 1e9 / nbars)
        if any(isinstance(r, adb.DataError) for r in res):
            raise SystemExit(f"arcticdb write_batch failed: {[r for r in res if isinstance(r, adb.DataError)][:3]}")
        if arctic_bytes is None:
            arctic_bytes = _dir_bytes(lmdb)
        objs = [vn.bars(c, frames[c]) for c in vcodes]
        n = sum(len(o) for o in objs)
        s0 = time.perf_counter()
        for o in objs:
            vn.db.save_bar_data(o)
        vp.append((time.perf_counter() - s0) * 1e9 / n)
    t.add(row, "sqdata save_bars_batch(DataFrames)", _med(sq), "ns/bar", f"{1e9 / _med(sq) / 1e6:.2f} M bars/s")
    t.add(row, "ArcticDB write_batch", _med(ar), "ns/bar", f"{1e9 / _med(ar) / 1e6:.2f} M bars/s")
    t.add(row, "vn.py sqlite save_bar_data", _med(vp), "ns/bar", f"{1e9 / _med(vp) / 1e3:.1f} k bars/s (subset)")

    # ---- storage ----
    row = f"storage of {nbars} bars"
    t.add(row, "sqdata file backend", _dir_bytes(os.path.join(sq_root, "_bars")), "bytes")
    t.add(row, "ArcticDB (LMDB, first write)", arctic_bytes, "bytes")
    vbytes = _dir_bytes(vn.folder) * len(codes) / max(1, len(vcodes))
    t.add(row, "vn.py sqlite", vbytes, "bytes", "scaled from the subset")
    t.add(row, "SilverQuant K-line CSVs", _dir_bytes(kdir), "bytes")

    # ---- one series into a DataFrame ----
    row = f"one {a.bars}-bar series -> DataFrame (P50)"
    code = codes[len(codes) // 2]
    vcode = vcodes[len(vcodes) // 2]
    n = a.series_iterations
    m = {"sqdata": [], "arctic": [], "csv": [], "vnpy": []}
    for _ in range(3):
        m["sqdata"].append(_p50(lambda: store.bars(code), n))
        m["arctic"].append(_p50(lambda: lib.read(code).data, n))
        m["csv"].append(_p50(lambda: pd.read_csv(os.path.join(kdir, f"{code}.csv")), n))
        m["vnpy"].append(_p50(lambda: vn.frame(vcode, frames[vcode]), max(5, n // 20)))
    t.add(row, "sqdata Store.bars", _med([x[0] for x in m["sqdata"]]), "us", f"P95 {_fmt(_med([x[1] for x in m['sqdata']]), 'us')}")
    t.add(row, "ArcticDB read", _med([x[0] for x in m["arctic"]]), "us", f"P95 {_fmt(_med([x[1] for x in m['arctic']]), 'us')}")
    t.add(row, "pandas.read_csv (SilverQuant)", _med([x[0] for x in m["csv"]]), "us")
    t.add(row, "vn.py load_bar_data + DataFrame", _med([x[0] for x in m["vnpy"]]), "us")

    # ---- the whole market ----
    row = f"whole market, {len(codes)} codes -> DataFrames (per bar)"
    sq, sq1, ar, cs, vp = [], [], [], [], []
    for _ in range(a.rounds):
        s0 = time.perf_counter()
        store.bars_batch(codes, as_dict=True)
        sq.append((time.perf_counter() - s0) * 1e9 / nbars)
        s0 = time.perf_counter()
        store.bars_batch(codes)
        sq1.append((time.perf_counter() - s0) * 1e9 / nbars)
        s0 = time.perf_counter()
        lib.read_batch(codes)
        ar.append((time.perf_counter() - s0) * 1e9 / nbars)
        s0 = time.perf_counter()
        for c in codes:
            pd.read_csv(os.path.join(kdir, f"{c}.csv"))
        cs.append((time.perf_counter() - s0) * 1e9 / nbars)
        s0 = time.perf_counter()
        for c in vcodes:
            vn.frame(c, frames[c])
        vp.append((time.perf_counter() - s0) * 1e9 / (a.bars * len(vcodes)))
    t.add(row, "sqdata bars_batch(as_dict=True)", _med(sq), "ns/bar", f"{_med(sq) * nbars / 1e9:.2f} s")
    t.add(row, "sqdata bars_batch (one frame)", _med(sq1), "ns/bar", f"{_med(sq1) * nbars / 1e9:.2f} s")
    t.add(row, "ArcticDB read_batch", _med(ar), "ns/bar", f"{_med(ar) * nbars / 1e9:.2f} s")
    t.add(row, "pandas.read_csv loop (SilverQuant)", _med(cs), "ns/bar", f"{_med(cs) * nbars / 1e9:.2f} s")
    t.add(row, "vn.py load_bar_data loop", _med(vp), "ns/bar", "subset")

    # ---- the 200-position snapshot ----
    _snapshots(a, t, work, snap)
    return t.summary()


def _med(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def _snapshots(a, t, work, snap):
    import sqdata

    row = "snapshot(200) from Redis (P50)"
    prefix = "sqpeer" + uuid.uuid4().hex[:8]
    cfg = os.path.join(work, "peers-redis.toml")
    with open(cfg, "w") as w:
        w.write(f'tier = "embedded"\n[stores]\npositions = "redis"\n[redis]\nurl = "{a.redis_url}"\nprefix = "{prefix}"\n')
    import redis

    r = redis.Redis.from_url(a.redis_url)
    try:
        rstore = sqdata.open(config_path=cfg, data_dir=os.path.join(work, "peers-rfiles"))
        book = rstore.book("55009728", "peers")
        book.replace(snap)
        key = f"{prefix}:{{55009728:peers}}:pos"
        if not r.exists(key):
            raise SystemExit(f"the snapshot's hash {key} is not in Redis: the bench's key layout is out of date")
        sq, rp = [], []
        for _ in range(5):
            sq.append(_p50(book.snapshot, a.iterations // 5))
            rp.append(_p50(lambda: r.hgetall(key), a.iterations // 5))
        hi = "hiredis" if redis.utils.HIREDIS_AVAILABLE else "no hiredis"
        t.add(row, "sqdata Book.snapshot (Redis)", _med([x[0] for x in sq]), "us", f"P95 {_fmt(_med([x[1] for x in sq]), 'us')}")
        t.add(row, f"redis-py HGETALL ({hi})", _med([x[0] for x in rp]), "us", f"P95 {_fmt(_med([x[1] for x in rp]), 'us')}")
    finally:
        for k in r.scan_iter(f"{prefix}*"):
            r.delete(k)

    row = "snapshot(200) from files (P50)"
    fstore = sqdata.open(config_path=os.path.join(work, "peers.toml"), data_dir=os.path.join(work, "peers-ffiles"))
    fbook = fstore.book("55009728", "peers")
    fbook.replace(snap)
    folder = os.path.join(work, "peers-ffiles", "55009728", "peers")

    def silverquant_way():
        for f in ("positions.json", "max_price.json", "min_price.json"):
            with open(os.path.join(folder, f)) as rd:
                json.loads(rd.read())

    sq, js = [], []
    for _ in range(5):
        sq.append(_p50(fbook.snapshot, a.iterations // 5))
        js.append(_p50(silverquant_way, a.iterations // 5))
    t.add(row, "sqdata Book.snapshot (files)", _med([x[0] for x in sq]), "us", f"P95 {_fmt(_med([x[1] for x in sq]), 'us')}")
    t.add(row, "json.load of the 3 files (SilverQuant)", _med([x[0] for x in js]), "us")


class _Vnpy:
    """vn.py's SQLite database in a folder of its own (vn.py picks
    `<cwd>/.vntrader` when it exists, at import)."""

    def __init__(self, folder, db, BarData, Exchange, Interval):
        self.folder, self.db = folder, db
        self.BarData, self.Exchange, self.Interval = BarData, Exchange, Interval

    def _sym(self, code):
        sym, market = code.split(".")
        return sym, (self.Exchange.SSE if market == "SH" else self.Exchange.SZSE)

    def bars(self, code, f):
        """Fresh BarData (save_bar_data changes the objects it saves)."""
        import datetime as dt

        sym, ex = self._sym(code)
        out = []
        for d, o, h, lo, c, v, am in zip(f["datetime"].tolist(), f["open"].tolist(), f["high"].tolist(),
                                         f["low"].tolist(), f["close"].tolist(), f["volume"].tolist(),
                                         f["amount"].tolist()):
            out.append(self.BarData(gateway_name="BENCH", symbol=sym, exchange=ex,
                                    datetime=dt.datetime(d // 10000, d // 100 % 100, d % 100),
                                    interval=self.Interval.DAILY, volume=v, turnover=am, open_price=o,
                                    high_price=h, low_price=lo, close_price=c))
        return out

    def frame(self, code, f):
        import datetime as dt

        import pandas as pd

        sym, ex = self._sym(code)
        first, last = int(f["datetime"].iloc[0]), int(f["datetime"].iloc[-1])
        rows = self.db.load_bar_data(sym, ex, self.Interval.DAILY,
                                     dt.datetime(first // 10000, first // 100 % 100, first % 100),
                                     dt.datetime(last // 10000, last // 100 % 100, last % 100))
        return pd.DataFrame({"datetime": [b.datetime for b in rows], "open": [b.open_price for b in rows],
                             "high": [b.high_price for b in rows], "low": [b.low_price for b in rows],
                             "close": [b.close_price for b in rows], "volume": [b.volume for b in rows],
                             "amount": [b.turnover for b in rows]})


def _vnpy(work):
    import time as _time

    # vn.py compares its stored times with the process's zone
    os.environ["TZ"] = "Asia/Shanghai"
    _time.tzset()
    home = os.path.join(work, "peers-vnpy")
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(os.path.join(home, ".vntrader"))
    with open(os.path.join(home, ".vntrader", "vt_setting.json"), "w") as w:
        json.dump({"database.name": "sqlite", "database.database": "bench.db",
                   "database.timezone": "Asia/Shanghai"}, w)
    cwd = os.getcwd()
    os.chdir(home)
    try:
        from vnpy.trader.constant import Exchange, Interval
        from vnpy.trader.object import BarData
        from vnpy.trader.utility import TEMP_DIR
        from vnpy_sqlite.sqlite_database import SqliteDatabase
    finally:
        os.chdir(cwd)
    if os.path.realpath(str(TEMP_DIR)) != os.path.realpath(os.path.join(home, ".vntrader")):
        raise SystemExit(f"vn.py chose {TEMP_DIR}, not the bench's folder")
    return _Vnpy(os.path.join(home, ".vntrader"), SqliteDatabase(), BarData, Exchange, Interval)
