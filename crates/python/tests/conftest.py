import os
import uuid

import pytest

import sqdata


@pytest.fixture
def store(tmp_path):
    """The embedded file store in a fresh folder."""
    return sqdata.open(config_path=_write(tmp_path, 'tier = "embedded"\n'), data_dir=str(tmp_path / "data"))


def _write(tmp_path, text):
    p = tmp_path / "sqdata.toml"
    p.write_text(text)
    return str(p)


def server_url(var):
    url = os.environ.get(var)
    if not url:
        pytest.fail(f"{var} is not set: this test needs a real server. Run `cargo xtask test`.")
    return url


@pytest.fixture
def mvp_store(tmp_path):
    """Redis + ClickHouse behind the files, on the test servers (own prefix and database)."""
    n = uuid.uuid4().hex[:10]
    cfg = f"""tier = "mvp"
[file]
root = "{tmp_path / 'data'}"
[redis]
url = "{server_url('SQDATA_TEST_REDIS_URL')}"
prefix = "sqpy{n}"
[clickhouse]
url = "{server_url('SQDATA_TEST_CLICKHOUSE_URL')}"
database = "sqpy_{n}"
journal_dir = "{tmp_path / 'chj'}"
"""
    s = sqdata.open(config_path=_write(tmp_path, cfg))
    yield s
    _purge_redis(server_url("SQDATA_TEST_REDIS_URL"), f"sqpy{n}")
    # the test's own database and keys go away with it
    import urllib.request

    urllib.request.urlopen(
        urllib.request.Request(server_url("SQDATA_TEST_CLICKHOUSE_URL"), data=f"DROP DATABASE IF EXISTS sqpy_{n}".encode())
    ).read()


def fresh_book(store):
    return store.book("55009728", "py_" + uuid.uuid4().hex[:8])


def _purge_redis(url, prefix):
    """SCAN + DEL of the test's own keys (never FLUSHDB), over a plain socket."""
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    db = (u.path or "/0").lstrip("/") or "0"
    with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=5) as sock:
        f = sock.makefile("rwb")

        def cmd(*args):
            f.write(f"*{len(args)}\r\n".encode())
            for a in args:
                b = str(a).encode()
                f.write(b"$%d\r\n%s\r\n" % (len(b), b))
            f.flush()
            return read()

        def read():
            line = f.readline().rstrip(b"\r\n")
            kind, rest = line[:1], line[1:]
            if kind in (b"+", b"-", b":"):
                return rest
            if kind == b"$":
                n = int(rest)
                return None if n < 0 else f.read(n + 2)[:-2]
            if kind == b"*":
                return [read() for _ in range(int(rest))]
            raise RuntimeError(f"unexpected reply {line!r}")

        cmd("SELECT", db)
        cursor = b"0"
        while True:
            cursor, keys = cmd("SCAN", cursor.decode(), "MATCH", prefix + "*", "COUNT", 1000)
            if keys:
                cmd("DEL", *[k.decode() for k in keys])
            if cursor == b"0":
                break
