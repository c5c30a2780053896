"""Differential test: ``sqdata.silverquant`` (on the file backend) against a
reference model of SilverQuant's ``tools/utils_cache.py`` helpers, on the
same random call sequences.

The model is written from the helpers' documented semantics
(``shared/reference/silverquant-state.md``, "The helpers in
tools/utils_cache.py, function by function"). Both sides get the same calls;
after EVERY call the test compares the return value, the exception raised
(its type, or none) and the three JSON files byte for byte.

Intended differences, each kept as narrow as it can be (and each pinned by
its own test at the end of this file):

1. A missing file. SilverQuant's ``load_json`` creates a missing file as
   ``{}``; sqdata never writes on a read, and a missing file and ``{}`` are
   the same (empty) book. So where the model's file is exactly ``{}`` ours
   may be absent — nothing else is accepted.
2. Prices of a code deleted from ``positions.json``. In sqdata a code's
   max/min price belong to its position: ``del_key(positions.json, code)``
   drops them too. SilverQuant leaves them behind in ``max_price.json`` /
   ``min_price.json``, where a later buy of the code picks up the stale
   maximum (its own strategies never delete a held code this way: after a
   sell they call ``del_key`` on the price files). The random sequences run
   the model with this one rule changed (``prices_follow_positions``);
   ``test_del_key_of_a_position_drops_its_prices`` pins the difference
   against the unchanged model.
3. The clock set back. SilverQuant's ``all_held_inc`` runs whenever
   ``_inc_date`` differs from today; sqdata runs only when today is after
   it, so a replay or a process with a lagging clock never counts a day
   twice. The random sequences only move the date forward;
   ``test_a_clock_set_back_does_not_count_again`` pins the difference.
4. Inputs the store refuses: a key that is not a canonical code
   (``new_held``/``del_held_day`` of ``"abc"``) and quotes with high < low,
   negative or non-finite prices (skipped and logged instead of stored).
   Pinned by ``test_inputs_the_store_refuses``.
5. Returned dicts compare equal; their iteration order is code order, not
   the file's key order.

Seeds are pinned (CI is deterministic); ``SQDATA_DIFF_SEEDS=first:last`` runs
more, e.g. ``SQDATA_DIFF_SEEDS=100:199``.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

import sqdata
import sqdata.silverquant as sq

ACCOUNT = "55009728"
BOOK = "prod_pwc"
FILES = ("positions.json", "max_price.json", "min_price.json")
DAY_COUNT, INC_DATE = "day_count", "_inc_date"

CODES = [
    "000001.SZ", "000002.SZ", "000858.SZ", "002594.SZ", "300750.SZ", "300059.SZ", "301236.SZ", "600000.SH",
    "600036.SH", "600519.SH", "601318.SH", "601012.SH", "603259.SH", "688981.SH", "688111.SH", "510300.SH",
    "159915.SZ", "430047.BJ", "830799.BJ", "204001.SH",
]
# A code no call names: with it, positions.json of the CRLF variant always
# has a line break to take the ending from (see test_crlf_needs_a_line_break).
PARKED = "000999.SZ"
TIMES = ["09:15", "09:25", "09:29", "09:29:59", "09:30", "09:30:00", "10:00", "11:29", "11:30", "11:30:01", "11:31",
         "12:00", "12:59", "13:00", "13:45:10", "14:56", "14:57", "14:57:00", "14:58", "15:00"]
PINNED_SEEDS = [1, 2, 3, 7, 20251010]
CALLS = 400


def _seeds():
    """The pinned seeds, and ``SQDATA_DIFF_SEEDS=first:last`` more."""
    spec = os.environ.get("SQDATA_DIFF_SEEDS")
    if not spec:
        return PINNED_SEEDS
    first, _, last = spec.partition(":")
    return PINNED_SEEDS + list(range(int(first), int(last or first) + 1))


# ---------------------------------------------------------------------------
# The reference model: SilverQuant's helpers, from the reference document.
# ---------------------------------------------------------------------------

class SilverQuantModel:
    """``tools/utils_cache.py`` as documented: plain JSON files rewritten in
    place with ``json.dumps(d, ensure_ascii=True, indent=4)`` in text mode
    (``newline`` is the platform's: ``"\\r\\n"`` on Windows)."""

    def __init__(self, newline: str = "\n", prices_follow_positions: bool = False):
        self.newline = newline
        self.prices_follow_positions = prices_follow_positions
        self.today = "2025-10-10"

    # load_json: parse; a missing file is created as {} and {} returned
    def load_json(self, path):
        if os.path.exists(path):
            with open(path, "r") as r:
                return json.loads(r.read())
        with open(path, "w", newline=self.newline) as w:
            w.write("{}")
        return {}

    # save_json: truncate in place, json.dumps(indent=4)
    def save_json(self, path, d, ensure_ascii=True):
        with open(path, "w", newline=self.newline) as w:
            w.write(json.dumps(d, ensure_ascii=ensure_ascii, indent=4))

    def del_key(self, lock, path, key):
        self.del_keys(lock, path, [key])

    def del_keys(self, lock, path, keys):
        with lock:
            d = self.load_json(path)
            gone = []
            for k in keys:
                if k in d:
                    del d[k]
                    gone.append(k)
            self.save_json(path, d)
        if self.prices_follow_positions and os.path.basename(path) == "positions.json":
            # intended difference 2: the prices go with the position
            for name in ("max_price.json", "min_price.json"):
                p = os.path.join(os.path.dirname(path), name)
                prices = self.load_json(p)
                if any(k in prices for k in gone):
                    for k in gone:
                        prices.pop(k, None)
                    self.save_json(p, prices)

    def del_held_day(self, lock, path, key):
        with lock:
            try:
                held = self.load_json(path)
                if key in held:
                    held[key][DAY_COUNT] = None
                else:
                    held[key] = {DAY_COUNT: None}
                self.save_json(path, held)
                return True
            except Exception:  # noqa: BLE001 — as SilverQuant (it prints)
                return False

    def new_held(self, lock, path, codes):
        with lock:
            held = self.load_json(path)
            for code in codes:
                held[code] = {DAY_COUNT: 0}
            self.save_json(path, held)

    def all_held_inc(self, lock, path):
        with lock:
            try:
                held = self.load_json(path)
                today = self.today
                if held.get(INC_DATE) != today:
                    held[INC_DATE] = today
                    for code, e in held.items():
                        if code != INC_DATE and DAY_COUNT in e and e[DAY_COUNT] is not None:
                            e[DAY_COUNT] += 1
                    self.save_json(path, held)
                    return True
                return False
            except Exception:  # noqa: BLE001
                return False

    @staticmethod
    def in_continuous_auction(t):
        return ("09:30" <= t <= "11:30") or ("13:00" <= t <= "14:57")

    def update_max_prices(self, lock, quotes, positions, curr_time, path_max, path_min, path_held,
                          ignore_open_day=True):
        held = self.load_json(path_held)
        if not self.in_continuous_auction(curr_time):
            with lock:
                max_prices = self.load_json(path_max)
            return max_prices, held
        with lock:
            max_prices = self.load_json(path_max)
            min_prices = self.load_json(path_min)
        max_changed = min_changed = False
        for p in positions:
            code = p.stock_code
            if code not in held:
                continue
            if ignore_open_day:
                if DAY_COUNT not in held[code]:
                    continue
                d = held[code][DAY_COUNT]
                if d is None or d <= 0:
                    continue
            if code in quotes:
                q = quotes[code]
                high = q["high"]
                if code not in max_prices or max_prices[code] < high:
                    max_prices[code] = round(high, 3)
                    max_changed = True
                low = q["low"]
                if code not in min_prices or min_prices[code] > low:
                    min_prices[code] = round(low, 3)
                    min_changed = True
        if max_changed:
            with lock:
                self.save_json(path_max, max_prices)
        if min_changed:
            with lock:
                self.save_json(path_min, min_prices)
        return max_prices, held


# ---------------------------------------------------------------------------
# The two sides
# ---------------------------------------------------------------------------

class _Clock:
    """Stands in for the ``datetime`` module inside ``sqdata.silverquant``
    so that its ``all_held_inc`` sees the model's "today"."""

    def __init__(self, model):
        class _DateTime(datetime.datetime):
            @classmethod
            def now(cls, tz=None):
                return cls.strptime(model.today, "%Y-%m-%d").replace(hour=5)

        self.datetime = _DateTime
        self.date = datetime.date


class Sides:
    def __init__(self, tmp_path: Path, monkeypatch, newline: str, prices_follow_positions: bool = True,
                 seed_files: dict | None = None):
        self.model = SilverQuantModel(newline, prices_follow_positions)
        self.model_dir = tmp_path / "silverquant" / "_cache" / BOOK
        self.model_dir.mkdir(parents=True)
        self.our_dir = tmp_path / "data" / ACCOUNT / BOOK
        for name, text in (seed_files or {}).items():
            # both folders start from the same bytes
            self.our_dir.mkdir(parents=True, exist_ok=True)
            (self.model_dir / name).write_bytes(text)
            (self.our_dir / name).write_bytes(text)
        cfg = tmp_path / "sqdata.toml"
        cfg.write_text('tier = "embedded"\n')
        self.store = sqdata.open(config_path=str(cfg), data_dir=str(tmp_path / "data"))
        sq.use(self.store, account=ACCOUNT)
        monkeypatch.setattr(sq, "_dt", _Clock(self.model))
        # SilverQuant names the files by path; ours names the book by the folder
        self.our_paths = {n: str(tmp_path / "strategy" / "_cache" / BOOK / n) for n in FILES}
        self.model_paths = {n: str(self.model_dir / n) for n in FILES}
        self.lock = threading.Lock()

    def call(self, op, args):
        """Runs one call on both sides: ``(model_outcome, our_outcome)``,
        each ``("ok", value)`` or ``("raised", exception type name)``."""
        out = []
        for impl, paths in ((self.model, self.model_paths), (sq, self.our_paths)):
            a = [paths[x[1]] if isinstance(x, tuple) and x[0] == "path" else x for x in args]
            try:
                out.append(("ok", getattr(impl, op)(self.lock, *a) if op != "load_json" else impl.load_json(*a)))
            except Exception as e:  # noqa: BLE001 — the type is compared
                out.append(("raised", type(e).__name__))
        return out[0], out[1]

    def files(self):
        def read(p):
            return p.read_bytes() if p.exists() else None

        return {n: (read(self.model_dir / n), read(self.our_dir / n)) for n in FILES}


def assert_same_files(sides, where):
    for name, (theirs, ours) in sides.files().items():
        if ours is None and theirs == b"{}":
            continue  # intended difference 1: sqdata does not create a file on a read
        assert ours == theirs, (
            f"{where}: {name} differs\n--- SilverQuant model\n{theirs!r}\n--- sqdata\n{ours!r}"
        )


# ---------------------------------------------------------------------------
# Random call sequences
# ---------------------------------------------------------------------------

def _price(rng, base):
    """Prices with 2–4 decimals, exact binary ties of the 3rd decimal
    (k/16, k/32: round-half-even territory) and whole numbers."""
    kind = rng.random()
    if kind < 0.25:
        return base + rng.randrange(-64, 64) / 32
    if kind < 0.35:
        return float(round(base))
    return round(base * (1 + rng.uniform(-0.08, 0.08)), rng.choice([2, 3, 4]))


def gen_call(rng, st):
    """One random call: (op, args). ``st`` carries the bases and the date."""
    r = rng.random()
    pick = lambda: rng.choice(CODES)  # noqa: E731
    if r < 0.40:
        quotes = {}
        for c in rng.sample(CODES, rng.randrange(0, len(CODES) + 1)):
            a, b = _price(rng, st["base"][c]), _price(rng, st["base"][c])
            quotes[c] = {"high": max(a, b), "low": min(a, b), "lastPrice": a}
        names = [pick() for _ in range(rng.randrange(0, 12))]
        names += rng.sample(names, min(len(names), rng.randrange(0, 4)))  # codes named twice
        rng.shuffle(names)
        positions = [SimpleNamespace(stock_code=c, volume=100) for c in names]
        args = [quotes, positions, rng.choice(TIMES), ("path", "max_price.json"), ("path", "min_price.json"),
                ("path", "positions.json")]
        if rng.random() < 0.3:
            args.append(rng.random() < 0.5)  # ignore_open_day given explicitly
        return "update_max_prices", args
    if r < 0.55:
        return "new_held", [("path", "positions.json"), [pick() for _ in range(rng.choice([0, 1, 1, 1, 2, 3]))]]
    if r < 0.67:
        return "del_held_day", [("path", "positions.json"), pick()]
    if r < 0.75:
        if rng.random() < 0.4:
            st["day"] += datetime.timedelta(days=rng.choice([1, 1, 1, 3]))
        return "all_held_inc", [("path", "positions.json")]
    if r < 0.87:
        name = rng.choice(FILES)
        key = INC_DATE if name == "positions.json" and rng.random() < 0.1 else pick()
        return "del_key", [("path", name), key]
    if r < 0.92:
        return "del_keys", [("path", rng.choice(FILES)), [pick() for _ in range(rng.randrange(0, 4))]]
    return "load_json", [("path", rng.choice(FILES))]


def run_sequence(tmp_path, monkeypatch, seed, newline, calls=CALLS, seed_files=None):
    rng = random.Random(seed)
    sides = Sides(tmp_path, monkeypatch, newline, seed_files=seed_files)
    st = {"base": {c: rng.choice([3.0, 8.5, 12.34, 45.0, 150.0, 1688.0]) for c in CODES},
          "day": datetime.date(2025, 10, 10)}
    history = []
    for i in range(calls):
        op, args = gen_call(rng, st)
        sides.model.today = st["day"].isoformat()
        history.append((op, args))
        theirs, ours = sides.call(op, args)
        where = f"seed {seed} newline {newline!r} call {i}: {op}{tuple(_short(a) for a in args)}"
        assert ours == theirs, f"{where}\n--- SilverQuant model\n{theirs!r}\n--- sqdata\n{ours!r}"
        assert_same_files(sides, where)
    return sides, history


def _short(a):
    if isinstance(a, list) and a and isinstance(a[0], SimpleNamespace):
        return [p.stock_code for p in a]
    return a


def _crlf_seed():
    """A Windows SilverQuant folder: the three files CRLF (json.dumps in text mode)."""
    pos = {PARKED: {DAY_COUNT: 5}, "_inc_date": "2025-10-09", "600000.SH": {DAY_COUNT: 2}}
    maxp = {PARKED: 10.5, "600000.SH": 8.125}
    minp = {PARKED: 9.75, "600000.SH": 7.9}
    dump = lambda d: json.dumps(d, ensure_ascii=True, indent=4).replace("\n", "\r\n").encode()  # noqa: E731
    return {"positions.json": dump(pos), "max_price.json": dump(maxp), "min_price.json": dump(minp)}


@pytest.mark.parametrize("seed", _seeds())
def test_random_sequences_lf(tmp_path, monkeypatch, seed):
    """A new folder (every file created along the way), LF."""
    sides, history = run_sequence(tmp_path, monkeypatch, seed, "\n")
    ops = {op for op, _ in history}
    assert ops == {"update_max_prices", "new_held", "del_held_day", "all_held_inc", "del_key", "del_keys",
                   "load_json"}, ops
    for theirs, _ in sides.files().values():
        assert theirs is None or b"\r" not in theirs


@pytest.mark.parametrize("seed", _seeds())
def test_random_sequences_crlf(tmp_path, monkeypatch, seed):
    """A Windows folder: SilverQuant's files are CRLF and stay CRLF."""
    sides, _ = run_sequence(tmp_path, monkeypatch, seed, "\r\n", seed_files=_crlf_seed())
    for name, (_, ours) in sides.files().items():
        assert ours is not None and (ours == b"{}" or b"\r\n" in ours), name
        assert b"\n" not in ours.replace(b"\r\n", b""), f"{name} has a bare LF"


def test_the_sequences_reach_the_interesting_states(tmp_path, monkeypatch):
    """The generator is not vacuous: sold codes with prices, codes named
    twice, updates inside and outside the window, with and without
    ignore_open_day, and prices that change all happen."""
    seen = {"sold_with_price": 0, "twice": 0, "in_window": 0, "out_window": 0, "no_ignore": 0, "changed": 0,
            "del_inc": 0}
    rng = random.Random(PINNED_SEEDS[0])
    sides = Sides(tmp_path, monkeypatch, "\n")
    st = {"base": {c: rng.choice([3.0, 8.5, 12.34, 45.0, 150.0, 1688.0]) for c in CODES},
          "day": datetime.date(2025, 10, 10)}
    for _ in range(CALLS):
        op, args = gen_call(rng, st)
        sides.model.today = st["day"].isoformat()
        before = sides.files()
        sides.call(op, args)
        if op == "update_max_prices":
            names = [p.stock_code for p in args[1]]
            seen["twice"] += len(names) != len(set(names))
            inside = SilverQuantModel.in_continuous_auction(args[2])
            seen["in_window" if inside else "out_window"] += 1
            seen["no_ignore"] += len(args) > 6 and args[6] is False
            seen["changed"] += before != sides.files()
        if op == "del_key" and args[1] == INC_DATE:
            seen["del_inc"] += 1
        held = sq.load_json(sides.our_paths["positions.json"])
        maxp = sq.load_json(sides.our_paths["max_price.json"])
        seen["sold_with_price"] += any(k in maxp for k, e in held.items() if k != INC_DATE and e[DAY_COUNT] is None)
    assert all(v > 0 for v in seen.values()), seen


# ---------------------------------------------------------------------------
# The cases, directly
# ---------------------------------------------------------------------------

def _pos(*codes):
    return [SimpleNamespace(stock_code=c) for c in codes]


def test_del_held_day_keeps_the_prices(tmp_path, monkeypatch):
    s = Sides(tmp_path, monkeypatch, "\n")
    quotes = {"000001.SZ": {"high": 11.5, "low": 10.8}}
    s.call("new_held", [("path", "positions.json"), ["000001.SZ"]])
    s.model.today = "2025-10-11"
    s.call("all_held_inc", [("path", "positions.json")])
    s.call("update_max_prices", [quotes, _pos("000001.SZ"), "10:00", ("path", "max_price.json"),
                                 ("path", "min_price.json"), ("path", "positions.json")])
    theirs, ours = s.call("del_held_day", [("path", "positions.json"), "000001.SZ"])
    assert theirs == ours == ("ok", True)
    assert_same_files(s, "del_held_day")
    assert json.loads((s.our_dir / "max_price.json").read_bytes()) == {"000001.SZ": 11.5}
    assert sq.load_json(s.our_paths["positions.json"])["000001.SZ"] == {"day_count": None}


def test_a_code_named_twice_is_harmless(tmp_path, monkeypatch):
    s = Sides(tmp_path, monkeypatch, "\n")
    s.call("new_held", [("path", "positions.json"), ["000001.SZ", "600000.SH"]])
    s.model.today = "2025-10-11"
    s.call("all_held_inc", [("path", "positions.json")])
    quotes = {"000001.SZ": {"high": 11.5, "low": 10.8}, "600000.SH": {"high": 8.1, "low": 7.9}}
    theirs, ours = s.call("update_max_prices", [quotes, _pos("600000.SH", "000001.SZ", "600000.SH"), "10:00",
                                                ("path", "max_price.json"), ("path", "min_price.json"),
                                                ("path", "positions.json")])
    assert ours == theirs and ours[0] == "ok"
    assert ours[1][0] == {"000001.SZ": 11.5, "600000.SH": 8.1}
    assert_same_files(s, "update_max_prices with a code twice")
    # the first-named code comes first in the file, as SilverQuant appends it
    assert (s.our_dir / "max_price.json").read_text().index("600000.SH") < \
        (s.our_dir / "max_price.json").read_text().index("000001.SZ")


def test_sold_codes_are_widened_without_ignore_open_day(tmp_path, monkeypatch):
    """SilverQuant widens every code of positions.json when
    ``ignore_open_day`` is False — sold ones too — in the positions' order."""
    s = Sides(tmp_path, monkeypatch, "\n")
    s.call("new_held", [("path", "positions.json"), ["000001.SZ", "600000.SH", "300750.SZ"]])
    s.call("del_held_day", [("path", "positions.json"), "600000.SH"])
    quotes = {"000001.SZ": {"high": 11.5, "low": 10.8}, "600000.SH": {"high": 8.1, "low": 7.9},
              "300750.SZ": {"high": 200.0, "low": 190.0}}
    for t, bump in (("10:00", 0.0), ("10:01", 0.5), ("10:02", -0.7)):
        q = {c: {"high": v["high"] + bump, "low": v["low"] + bump} for c, v in quotes.items()}
        theirs, ours = s.call("update_max_prices", [q, _pos("300750.SZ", "600000.SH", "000001.SZ"), t,
                                                    ("path", "max_price.json"), ("path", "min_price.json"),
                                                    ("path", "positions.json"), False])
        assert ours == theirs and ours[0] == "ok", (theirs, ours)
        assert_same_files(s, f"update_max_prices at {t}")
    assert "600000.SH" in json.loads((s.our_dir / "max_price.json").read_bytes())


# ---------------------------------------------------------------------------
# The intended differences, pinned
# ---------------------------------------------------------------------------

def test_del_key_of_a_position_drops_its_prices(tmp_path, monkeypatch):
    """Intended difference 2, against the unchanged model: everything is
    the same but the code's prices, which SilverQuant leaves behind."""
    s = Sides(tmp_path, monkeypatch, "\n", prices_follow_positions=False)
    s.call("new_held", [("path", "positions.json"), ["000001.SZ", "600000.SH"]])
    s.model.today = "2025-10-11"
    s.call("all_held_inc", [("path", "positions.json")])
    quotes = {"000001.SZ": {"high": 11.5, "low": 10.8}, "600000.SH": {"high": 8.1, "low": 7.9}}
    s.call("update_max_prices", [quotes, _pos("000001.SZ", "600000.SH"), "10:00", ("path", "max_price.json"),
                                 ("path", "min_price.json"), ("path", "positions.json")])
    theirs, ours = s.call("del_key", [("path", "positions.json"), "000001.SZ"])
    assert theirs == ours == ("ok", None)
    files = s.files()
    assert files["positions.json"][0] == files["positions.json"][1]
    for name in ("max_price.json", "min_price.json"):
        theirs_d = json.loads(files[name][0])
        assert "000001.SZ" in theirs_d  # SilverQuant: left behind
        del theirs_d["000001.SZ"]
        assert files[name][1] == json.dumps(theirs_d, indent=4).encode()  # ours: gone, the rest as written


def test_a_clock_set_back_does_not_count_again(tmp_path, monkeypatch):
    """Intended difference 3."""
    s = Sides(tmp_path, monkeypatch, "\n")
    s.call("new_held", [("path", "positions.json"), ["000001.SZ"]])
    s.model.today = "2025-10-11"
    assert s.call("all_held_inc", [("path", "positions.json")]) == (("ok", True), ("ok", True))
    s.model.today = "2025-10-10"  # the clock set back a day
    theirs, ours = s.call("all_held_inc", [("path", "positions.json")])
    assert (theirs, ours) == (("ok", True), ("ok", False))
    assert sq.load_json(s.our_paths["positions.json"]) == {"_inc_date": "2025-10-11", "000001.SZ": {"day_count": 1}}


def test_inputs_the_store_refuses(tmp_path, monkeypatch, caplog):
    """Intended difference 4: keys that are not codes, and invalid quotes."""
    s = Sides(tmp_path, monkeypatch, "\n")
    assert s.call("del_held_day", [("path", "positions.json"), "abc"]) == (("ok", True), ("ok", False))
    assert s.call("new_held", [("path", "positions.json"), ["abc"]]) == (("ok", None), ("raised", "InvalidInput"))
    # a key that is not a code is never in our files, so deleting it is the no-op it is in SilverQuant
    assert s.call("del_key", [("path", "max_price.json"), "abc"]) == (("ok", None), ("ok", None))

    s2 = Sides(tmp_path / "q", monkeypatch, "\n")
    s2.call("new_held", [("path", "positions.json"), ["000001.SZ", "600000.SH"]])
    s2.model.today = "2025-10-11"
    s2.call("all_held_inc", [("path", "positions.json")])
    args = [("path", "max_price.json"), ("path", "min_price.json"), ("path", "positions.json")]
    good = {"high": 8.1, "low": 7.9}
    for bad in ({"high": 9.0, "low": 10.0}, {"high": float("nan"), "low": 1.0}, {"high": 1.0, "low": -1.0}):
        quotes = {"000001.SZ": bad, "600000.SH": good}
        _, ours = s2.call("update_max_prices", [quotes, _pos("000001.SZ", "600000.SH"), "10:00", *args])
        assert ours == ("ok", ({"600000.SH": 8.1}, {"_inc_date": "2025-10-11", "000001.SZ": {"day_count": 1},
                                                   "600000.SH": {"day_count": 1}}))
    assert "invalid quote" in caplog.text
    # not a number at all: a TypeError on both sides, nothing written
    theirs, ours = s2.call("update_max_prices", [{"000001.SZ": {"high": "9", "low": "8"}}, _pos("000001.SZ"),
                                                 "10:00", *args])
    assert theirs == ours == ("raised", "TypeError")
    # a quote that is None: a TypeError on both sides (it is not "no quote")
    theirs, ours = s2.call("update_max_prices", [{"000001.SZ": None}, _pos("000001.SZ"), "10:00", *args])
    assert theirs == ours == ("raised", "TypeError")
    # a quote without a low: a KeyError on both sides
    theirs, ours = s2.call("update_max_prices", [{"000001.SZ": {"high": 9.0}}, _pos("000001.SZ"), "10:00", *args])
    assert theirs == ours == ("raised", "KeyError")


def test_missing_files_are_not_created_on_read(tmp_path, monkeypatch):
    """Intended difference 1: a read creates `{}` in SilverQuant, nothing in sqdata."""
    s = Sides(tmp_path, monkeypatch, "\n")
    assert s.call("load_json", [("path", "max_price.json")]) == (("ok", {}), ("ok", {}))
    theirs, ours = s.files()["max_price.json"]
    assert (theirs, ours) == (b"{}", None)


def test_crlf_needs_a_line_break(tmp_path, monkeypatch):
    """CRLF is recognised from a file's (or its siblings') line breaks: a
    Windows folder whose files are all still ``{}`` has none, and sqdata's
    first write there is LF (SilverQuant's would be CRLF). Any multi-line
    file settles it, as in the CRLF runs above."""
    s = Sides(tmp_path, monkeypatch, "\r\n", seed_files={n: b"{}" for n in FILES})
    s.call("new_held", [("path", "positions.json"), ["000001.SZ"]])
    theirs, ours = s.files()["positions.json"]
    assert theirs == ours.replace(b"\n", b"\r\n") and b"\r" not in ours
    # once a file has a CRLF line break, every write there keeps it
    (s.our_dir / "positions.json").write_bytes(theirs)
    s.call("del_held_day", [("path", "positions.json"), "600000.SH"])
    assert_same_files(s, "after a CRLF file")
