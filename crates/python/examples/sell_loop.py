"""A SilverQuant-style sell loop on sqdata, runnable as is:

    python crates/python/examples/sell_loop.py [--seconds 5] [--data-dir DIR]

Every second: read the book once, widen max/min from the quotes in one
atomic step, and sell what fell 5 % from its high (trailing stop) — the
operations SilverQuant's sell loop does, without rewriting three JSON files.
"""

import argparse
import random
import time

import sqdata


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--data-dir", default="sqdata-example-data")
    ap.add_argument("--interval", type=float, default=1.0)
    a = ap.parse_args()

    store = sqdata.open(data_dir=a.data_dir)
    book = store.book("55009728", "example_sell_loop")
    codes = ["000001.SZ", "600000.SH", "300750.SZ", "601318.SH"]
    book.reconcile(codes)  # pre-market: the broker's positions
    book.inc_held_days()   # pre-market: +1 held day, once a day
    prices = {c: 10.0 + i for i, c in enumerate(codes)}
    deadline = time.monotonic() + a.seconds
    tick = 0
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        snap = book.snapshot()  # one read per tick
        held = {c: e for c, e in snap["positions"].items() if e["day_count"] is not None}
        for c in held:
            prices[c] *= 1 + random.uniform(-0.03, 0.03)
        ticks = [(c, prices[c] * 1.005, prices[c] * 0.995) for c in held]
        book.update_extremes(ticks)  # one atomic step for all positions
        for c, e in book.snapshot()["positions"].items():
            if e["day_count"] is not None and e["max_price"] and prices[c] < e["max_price"] * 0.95:
                book.record_deal({"id": f"sell-{c}-{tick}", "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                                  "code": c, "name": "", "kind": "市卖委托", "price": round(prices[c], 2),
                                  "volume": 100})
                book.mark_sold(c)
                print(f"tick {tick}: sold {c} at {prices[c]:.2f} (high {e['max_price']})")
        print(f"tick {tick}: {len(held)} held, {(time.perf_counter() - t0) * 1e3:.2f} ms")
        tick += 1
        time.sleep(a.interval)


if __name__ == "__main__":
    main()
