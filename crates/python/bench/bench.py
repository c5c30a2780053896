"""Benchmarks from Python, same run (issue 6):

    python crates/python/bench/bench.py [--codes 5000] [--bars 550] [--redis-url URL] [--sqdata BIN]

- snapshot(200): sqdata on the file backend, sqdata on Redis, against
  SilverQuant's way (json.load of positions.json, max_price.json,
  min_price.json) and redis-py (+ hiredis when installed) HGETALL of the
  same hash.
- the whole market's daily bars into pandas: sqdata's bars_batch against
  the CSV loop (pandas.read_csv per file, as SilverQuant's start-up does).

Prints P50/P95/P99 per row; --json writes them too.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round((len(s) - 1) * p)))]


def measure(fn, n, warm=None):
    for _ in range(warm if warm is not None else max(1, n // 10)):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1e3)
    return {"p50_us": pct(out, 0.5), "p95_us": pct(out, 0.95), "p99_us": pct(out, 0.99), "samples": n}


def row(name, m, target=None):
    t = "" if target is None else f"  target P95 ≤ {target:g} µs: {'PASS' if m['p95_us'] <= target else 'MISS'}"
    fmt = lambda us: f"{us / 1e3:9.2f} ms" if us >= 1e3 else f"{us:9.1f} µs"
    print(f"  {name:<52} P50 {fmt(m['p50_us'])}  P95 {fmt(m['p95_us'])}  P99 {fmt(m['p99_us'])}{t}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--codes", type=int, default=5000)
    ap.add_argument("--bars", type=int, default=550)
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--redis-url", default=os.environ.get("SQDATA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    ap.add_argument("--sqdata", default=None, help="the sqdata CLI (to import the K-line folder)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", default=None, help="a folder to generate data into and keep")
    a = ap.parse_args()

    import numpy as np
    import pandas as pd
    import sqdata

    results = {}
    work = a.keep or tempfile.mkdtemp(prefix="sqdata-pybench-")
    os.makedirs(work, exist_ok=True)
    print(f"sqdata Python bench ({os.cpu_count()} cores), data under {work}")

    # ---- snapshot(200) ----
    codes = [f"{600000 + i:06d}.SH" for i in range(200)]
    store = sqdata.open(config_path=_cfg(work, "embedded.toml", 'tier = "embedded"\n'), data_dir=os.path.join(work, "files"))
    book = store.book("55009728", "pybench")
    snap = {"inc_date": "2025-10-10", "positions": {
        c: {"day_count": i % 30, "max_price": round(10 + i * 0.013, 3), "min_price": round(9 + i * 0.011, 3)}
        for i, c in enumerate(codes)}}
    book.replace(snap)
    folder = os.path.join(work, "files", "55009728", "pybench")
    print("\nsnapshot(200)")
    m = measure(book.snapshot, a.iterations)
    row("sqdata file backend", m, 40)
    results["snapshot_file"] = m

    def silverquant_way():
        for f in ("positions.json", "max_price.json", "min_price.json"):
            with open(os.path.join(folder, f)) as r:
                json.loads(r.read())

    m = measure(silverquant_way, a.iterations)
    row("SilverQuant way (json load of the 3 files)", m)
    results["snapshot_json"] = m

    prefix = "sqpyb" + uuid.uuid4().hex[:8]
    rcfg = f'tier = "embedded"\n[stores]\npositions = "redis"\n[redis]\nurl = "{a.redis_url}"\nprefix = "{prefix}"\n'
    try:
        rstore = sqdata.open(config_path=_cfg(work, "redis.toml", rcfg), data_dir=os.path.join(work, "rfiles"))
        rbook = rstore.book("55009728", "pybench")
        rbook.replace(snap)
        m = measure(rbook.snapshot, a.iterations)
        row("sqdata Redis backend (through the hybrid)", m, 150)
        results["snapshot_redis"] = m
        try:
            import redis

            r = redis.Redis.from_url(a.redis_url)
            key = f"{prefix}:{{55009728:pybench}}:pos"
            have = r.exists(key)
            hi = "hiredis" if _has("hiredis") else "no hiredis"
            if have:
                m = measure(lambda: r.hgetall(key), a.iterations)
                row(f"redis-py HGETALL of the same hash ({hi})", m)
                results["snapshot_redis_py"] = m
            for k in r.scan_iter(f"{prefix}*"):
                r.delete(k)
        except ImportError:
            print("  redis-py not installed: pip install redis hiredis to compare")
    except sqdata.SqdataError as e:
        print(f"  Redis at {a.redis_url} not usable: {e}")

    # ---- whole market into pandas ----
    print(f"\nwhole market: {a.codes} codes x {a.bars} daily bars into pandas")
    kdir = os.path.join(work, "kline")
    if not os.path.isdir(kdir) or len(os.listdir(kdir)) != a.codes:
        _gen_kline(kdir, a.codes, a.bars, np, pd)
    mstore_root = os.path.join(work, "market")
    mstore = sqdata.open(config_path=_cfg(work, "market.toml", 'tier = "embedded"\n'), data_dir=mstore_root)
    if len(mstore.bars_overview()) != a.codes:
        cli = a.sqdata or shutil.which("sqdata")
        if not cli:
            sys.exit("need the sqdata CLI to import the K-line folder: --sqdata target/release/sqdata")
        subprocess.run([cli, "--data-dir", mstore_root, "bars", "import", "--kline-dir", kdir], check=True,
                       stdout=subprocess.DEVNULL)
    all_codes = [o["key"]["code"] for o in mstore.bars_overview()]
    n = 5
    m = measure(lambda: mstore.bars_batch(all_codes), n, warm=1)
    row("sqdata bars_batch -> one DataFrame", m, 1e6)
    results["market_sqdata"] = m
    m = measure(lambda: mstore.bars_batch(all_codes, as_dict=True), n, warm=1)
    row("sqdata bars_batch -> a DataFrame per code", m)
    results["market_sqdata_dict"] = m
    files = sorted(os.listdir(kdir))

    def csv_loop():
        return {f[:-4]: pd.read_csv(os.path.join(kdir, f)) for f in files}

    m = measure(csv_loop, 3, warm=0)
    row("CSV loop (pandas.read_csv per file)", m)
    results["market_csv"] = m
    if a.json:
        with open(a.json, "w") as w:
            json.dump(results, w, indent=2)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


def _has(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def _cfg(work, name, text):
    p = os.path.join(work, name)
    with open(p, "w") as w:
        w.write(text)
    return p


def _gen_kline(kdir, codes, bars, np, pd):
    os.makedirs(kdir, exist_ok=True)
    days = pd.bdate_range("2023-01-02", periods=bars)
    dt = days.strftime("%Y%m%d").astype(int)
    rng = np.random.default_rng(7)
    for i in range(codes):
        code = f"{i:06d}.SZ" if i % 2 else f"{600000 + i:06d}.SH"
        close = np.round(10 + np.cumsum(rng.normal(0, 0.1, bars)).clip(-9, None), 2)
        df = pd.DataFrame({"datetime": dt, "open": close, "high": np.round(close * 1.01, 2),
                           "low": np.round(close * 0.99, 2), "close": close,
                           "volume": rng.integers(1000, 100000, bars), "amount": np.round(close * 1000, 2)})
        df.to_csv(os.path.join(kdir, f"{code}.csv"), index=False)


if __name__ == "__main__":
    main()
