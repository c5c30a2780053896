"""Benchmarks from Python, same run (issue 6):

    python crates/python/bench/bench.py [--codes 5000] [--bars 550] [--redis-url URL] [--sqdata BIN]

- snapshot(200): sqdata on the file backend, sqdata on Redis, against
  SilverQuant's way (json.load of positions.json, max_price.json,
  min_price.json) and redis-py (+ hiredis when installed) HGETALL of the
  same hash.
- the whole market's daily bars into pandas: sqdata's bars_batch against
  the CSV loop (pandas.read_csv per file, as SilverQuant's start-up does).

Prints P50/P95/P99 per row; --json writes them too.

With --peers (peers.py): the same generated data through sqdata and the
systems users would pick instead — ArcticDB, vn.py's SQLite database,
redis-py + hiredis, SilverQuant's files — interleaved in one run, ending in
a table of sqdata / best peer per row. The peers are installed, pinned
(peers-requirements.txt), in a venv of their own (--venv, default
target/peers-venv) together with the sqdata wheel (--wheel, default the
newest in target/wheels, which `cargo xtask test` builds); the script then
runs itself again inside it:

    python3 crates/python/bench/bench.py --peers [--codes 5000] [--vnpy-codes 50]
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
    ap.add_argument("--peers", action="store_true", help="compare with ArcticDB, vn.py, redis-py (own venv)")
    ap.add_argument("--venv", default=os.path.join(REPO, "target", "peers-venv"))
    ap.add_argument("--wheel", default=None, help="the sqdata wheel for the peers' venv")
    ap.add_argument("--vnpy-codes", type=int, default=50, help="codes vn.py saves and loads (it is slow)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the bulk rows (--peers)")
    ap.add_argument("--series-iterations", type=int, default=200)
    ap.add_argument("--in-venv", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.peers and not a.in_venv:
        _enter_peers_venv(a)

    import numpy as np
    import pandas as pd
    import sqdata

    results = {}
    work = a.keep or tempfile.mkdtemp(prefix="sqdata-pybench-")
    os.makedirs(work, exist_ok=True)
    print(f"sqdata Python bench ({os.cpu_count()} cores), data under {work}")

    # ---- snapshot(200) ----
    codes = [f"{600000 + i:06d}.SH" for i in range(200)]
    snap = {"inc_date": "2025-10-10", "positions": {
        c: {"day_count": i % 30, "max_price": round(10 + i * 0.013, 3), "min_price": round(9 + i * 0.011, 3)}
        for i, c in enumerate(codes)}}
    if a.peers:
        import peers

        kdir = os.path.join(work, "kline")
        frames = _gen_kline(kdir, a.codes, a.bars, np, pd)
        summary = peers.run(a, work, frames, kdir, snap, np, pd)
        print("\nmemory")
        mem = {}
        _memory_row(os.path.join(work, "peers-sqdata"), list(frames), mem)
        summary.append({"row": "whole-market load peak RSS", **mem["market_peak_rss"]})
        if a.json:
            with open(a.json, "w") as w:
                json.dump(summary, w, indent=2)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        return

    store = sqdata.open(config_path=_cfg(work, "embedded.toml", 'tier = "embedded"\n'), data_dir=os.path.join(work, "files"))
    book = store.book("55009728", "pybench")
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
    _memory_row(mstore_root, all_codes, results)
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


_PEAK = """
import json, sys
import sqdata
store = sqdata.open(config_path=sys.argv[1], data_dir=sys.argv[2])
codes = json.load(open(sys.argv[3]))
import numpy, pandas  # loaded before the baseline, as in a strategy
store.bars(codes[0])
def status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
before = status_kib("VmRSS")
frame = store.bars_batch(codes)
# VmHWM, not ru_maxrss: Linux carries the peak of the process this one was
# forked from across exec into ru_maxrss (the bench's own, gigabytes)
peak = status_kib("VmHWM")
data = int(sum(frame[c].memory_usage(index=False, deep=False) for c in frame.columns))
print(json.dumps({"before_kib": before, "peak_kib": peak, "data_bytes": data, "rows": len(frame)}))
"""


def _memory_row(root, codes, results):
    """Peak RSS of the whole-market load in a fresh process, against the
    size of the frame it returns (issue: <= 1.5x)."""
    work = os.path.dirname(root)
    cfg = _cfg(work, "peak.toml", 'tier = "embedded"\n')
    cpath = os.path.join(work, "peak-codes.json")
    with open(cpath, "w") as w:
        json.dump(codes, w)
    out = subprocess.run([sys.executable, "-c", _PEAK, cfg, root, cpath], check=True, capture_output=True, text=True)
    m = json.loads(out.stdout.strip().splitlines()[-1])
    grew = (m["peak_kib"] - m["before_kib"]) * 1024
    ratio = grew / m["data_bytes"]
    print(f"  whole-market load, peak RSS growth {grew / 1e6:.0f} MB for a {m['data_bytes'] / 1e6:.0f} MB frame "
          f"({m['rows']} rows): {ratio:.2f}x  target <= 1.5x: {'PASS' if ratio <= 1.5 else 'MISS'}")
    results["market_peak_rss"] = {"growth_bytes": grew, "data_bytes": m["data_bytes"], "ratio": ratio}


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
    """K-line CSVs as SilverQuant keeps them (datetime as YYYYMMDD); returns
    the frames written."""
    os.makedirs(kdir, exist_ok=True)
    days = pd.bdate_range("2023-01-02", periods=bars)
    dt = days.strftime("%Y%m%d").astype(int)
    rng = np.random.default_rng(7)
    frames = {}
    for i in range(codes):
        code = f"{i:06d}.SZ" if i % 2 else f"{600000 + i:06d}.SH"
        close = np.round(10 + np.cumsum(rng.normal(0, 0.1, bars)).clip(-9, None), 2)
        df = pd.DataFrame({"datetime": dt, "open": close, "high": np.round(close * 1.01, 2),
                           "low": np.round(close * 0.99, 2), "close": close,
                           "volume": rng.integers(1000, 100000, bars), "amount": np.round(close * 1000, 2)})
        df.to_csv(os.path.join(kdir, f"{code}.csv"), index=False)
        frames[code] = df
    return frames


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _enter_peers_venv(a):
    """Makes the peers' venv (pinned, wheels only) with the sqdata wheel and
    runs this script again inside it."""
    here = os.path.dirname(os.path.abspath(__file__))
    reqs = os.path.join(here, "peers-requirements.txt")
    py = os.path.join(a.venv, "bin", "python")
    wheel = a.wheel
    if wheel is None:
        wdir = os.path.join(REPO, "target", "wheels")
        found = sorted((os.path.join(wdir, f) for f in os.listdir(wdir) if f.endswith(".whl")),
                       key=os.path.getmtime) if os.path.isdir(wdir) else []
        if not found:
            sys.exit("no sqdata wheel: build one (`cargo xtask test` does, or maturin build) or pass --wheel")
        wheel = found[-1]
    marker = os.path.join(a.venv, ".sqdata-peers")
    with open(reqs) as r:
        want = r.read() + f"\nvnpy==4.5.0 vnpy_sqlite==1.1.3\n{wheel} {os.path.getmtime(wheel)}\n"
    have = open(marker).read() if os.path.exists(marker) else None
    if have != want:
        t = time.time()
        if not os.path.exists(py):
            subprocess.run([sys.executable, "-m", "venv", a.venv], check=True)
        pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run(pip + ["--only-binary=:all:", "-r", reqs], check=True)
        subprocess.run(pip + ["--no-deps", "vnpy==4.5.0", "vnpy_sqlite==1.1.3"], check=True)
        subprocess.run(pip + ["--no-deps", "--force-reinstall", wheel], check=True)
        with open(marker, "w") as w:
            w.write(want)
        print(f"peers' venv ready in {time.time() - t:.1f} s: {a.venv}", flush=True)
    os.execv(py, [py, os.path.abspath(__file__), *sys.argv[1:], "--in-venv"])


if __name__ == "__main__":
    main()
