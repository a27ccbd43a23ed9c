"""FRED downloads against a real HTTP server on 127.0.0.1 serving the shared files."""

from __future__ import annotations

import threading
import time
import tomllib
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from regimecast.data import build_panel, default_pull_ids, parse_sample, parse_series, pull
from regimecast.errors import FetchError

OLD = b"observation_date,FEDFUNDS\r\n2020-01-01,1.55\r\n"


class FakeFred:
    """A loopback server in FRED's format; ``mode`` picks how it misbehaves."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.mode, self.fail_first = data_dir, "ok", 0
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                fake.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/graph/fredgraph.csv"

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(h.path)
        sid = urllib.parse.parse_qs(parsed.query).get("id", [""])[0]
        self.requests.append(sid)
        path = self.data_dir / f"{sid}.csv"
        mode = self.mode
        if self.fail_first:
            self.fail_first -= 1
            mode = "500"
        if parsed.path != "/graph/fredgraph.csv" or not path.is_file():
            return h.send_error(404, "Not Found")
        body = path.read_bytes()
        length = len(body)
        if mode == "500":
            return h.send_error(500, "Internal Server Error")
        if mode == "slow":
            time.sleep(0.5)
        elif mode == "short":      # Content-Length promises more than is sent
            length = len(body) + 100
        elif mode == "cut":        # body cut in the middle of a line
            body = body[: body.rfind(b"\n", 0, len(body) // 2) + 8]
            length = len(body)
        elif mode == "novalue":    # last line has a date but lost its value
            body = body[: body.rfind(b",") + 1] + b"\r\n"
            length = len(body)
        elif mode == "html":
            body = b"<!DOCTYPE html>\n<html><body>Series not found</body></html>\n"
            length = len(body)
        elif mode == "header":
            body = body.replace(f",{sid}".encode(), b",VALUE", 1)
            length = len(body)
        h.send_response(200)
        h.send_header("Content-Type", "text/csv" if mode != "html" else "text/html")
        h.send_header("Content-Length", str(length))
        h.end_headers()
        h.wfile.write(body)
        h.close_connection = True


@pytest.fixture
def fred(fred_dir: Path) -> Iterator[FakeFred]:
    fake = FakeFred(fred_dir)
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    thread.join(5)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    d = tmp_path / "cache"
    d.mkdir()
    (d / "FEDFUNDS.csv").write_bytes(OLD)
    return d


def _pull(fred: FakeFred, cache: Path, ids=("FEDFUNDS",), **kw):
    kw = {"retries": 2, "backoff": 0.01, "timeout": 5.0, **kw}
    return pull(list(ids), cache, base_url=fred.url, **kw)


def _assert_untouched(cache: Path) -> None:
    assert (cache / "FEDFUNDS.csv").read_bytes() == OLD
    assert sorted(p.name for p in cache.iterdir()) == ["FEDFUNDS.csv"]  # no temp files


def test_pull_success(fred: FakeFred, cache: Path, fred_dir: Path) -> None:
    res = _pull(fred, cache, ids=("FEDFUNDS", "IORB"))
    for r in res:
        assert r.path.read_bytes() == (fred_dir / f"{r.series_id}.csv").read_bytes()
        assert r.url == f"{fred.url}?id={r.series_id}"
    assert res[1].first == "2021-07-29" and res[0].last == "2026-07-01"
    assert fred.requests == ["FEDFUNDS", "IORB"]
    assert sorted(p.name for p in cache.iterdir()) == ["FEDFUNDS.csv", "IORB.csv"]


def test_pull_retries_then_succeeds(fred: FakeFred, cache: Path, fred_dir: Path) -> None:
    fred.fail_first = 2
    _pull(fred, cache)
    assert fred.requests == ["FEDFUNDS"] * 3
    assert (cache / "FEDFUNDS.csv").read_bytes() == (fred_dir / "FEDFUNDS.csv").read_bytes()


def test_pull_http_500(fred: FakeFred, cache: Path) -> None:
    fred.mode = "500"
    with pytest.raises(FetchError) as info:
        _pull(fred, cache)
    msg = str(info.value)
    assert "FEDFUNDS" in msg and f"{fred.url}?id=FEDFUNDS" in msg and "HTTP 500" in msg
    assert "3 attempts" in msg
    assert fred.requests == ["FEDFUNDS"] * 3
    _assert_untouched(cache)


@pytest.mark.parametrize(("mode", "reason"), [
    ("short", "truncated body"), ("cut", "no line ending"), ("novalue", "has no value"),
    ("html", "HTML page"), ("header", "wrong header")])
def test_pull_bad_body(fred: FakeFred, cache: Path, mode: str, reason: str) -> None:
    fred.mode = mode
    with pytest.raises(FetchError) as info:
        _pull(fred, cache)
    msg = str(info.value)
    assert "FEDFUNDS" in msg and f"{fred.url}?id=FEDFUNDS" in msg and reason in msg
    _assert_untouched(cache)


def test_pull_timeout(fred: FakeFred, cache: Path) -> None:
    fred.mode = "slow"
    with pytest.raises(FetchError, match="FEDFUNDS.*(timed out|connection error)"):
        _pull(fred, cache, timeout=0.1, retries=1)
    _assert_untouched(cache)


def test_pull_unknown_series_is_not_retried(fred: FakeFred, cache: Path) -> None:
    with pytest.raises(FetchError, match="NOSUCH.*HTTP 404"):
        _pull(fred, cache, ids=("NOSUCH",))
    assert fred.requests == ["NOSUCH"]
    _assert_untouched(cache)


def test_pull_connection_refused(cache: Path) -> None:
    import socket
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match="connection error"):
        pull(["FEDFUNDS"], cache, base_url=f"http://127.0.0.1:{port}/x", retries=1, backoff=0.01)
    _assert_untouched(cache)


def test_pull_partial_failure_writes_the_good_ones(fred: FakeFred, cache: Path) -> None:
    with pytest.raises(FetchError) as info:
        _pull(fred, cache, ids=("NOSUCH", "IORB"))
    assert "NOSUCH" in str(info.value) and "IORB" not in str(info.value)
    assert (cache / "IORB.csv").is_file()


@pytest.fixture(scope="module")
def model_specs(repo_root: Path):
    raw = tomllib.loads((repo_root / "models" / "default.toml").read_text())
    return parse_series("default.toml", raw["series"]), parse_sample("default.toml", raw["sample"])


def test_default_pull_ids(model_specs) -> None:
    assert default_pull_ids(model_specs[0]) == ["DGS10", "NASDAQCOM", "VIXCLS", "FEDFUNDS",
                                                "WALCL", "CPIAUCSL", "SOFR", "IORB"]


def test_file_source_cannot_be_pulled(fred: FakeFred, cache: Path, model_specs) -> None:
    with pytest.raises(FetchError) as info:
        _pull(fred, cache, ids=("FEDFUNDS", "GOLD_LBMA_PM_USD"), specs=model_specs[0])
    msg = str(info.value)
    assert "GOLD_LBMA_PM_USD" in msg and 'source = "file"' in msg and str(cache) in msg
    assert "place GOLD_LBMA_PM_USD.csv" in msg
    assert fred.requests == []
    _assert_untouched(cache)


def test_pull_kind_checks_apply(fred: FakeFred, cache: Path, model_specs, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "FEDFUNDS.csv").write_bytes(
        b"observation_date,FEDFUNDS\n" + b"".join(b"%d-01-01,0.05\n" % y for y in range(2000, 2010)))
    fred.data_dir = served
    with pytest.raises(FetchError, match="decimal"):
        _pull(fred, cache, specs=model_specs[0])
    _assert_untouched(cache)


def test_pulled_cache_builds_the_same_panel(fred: FakeFred, tmp_path: Path, fred_dir: Path,
                                            model_specs) -> None:
    specs, sample = model_specs
    cache = tmp_path / "data"
    _pull(fred, cache, ids=default_pull_ids(specs), specs=specs)
    (cache / "GOLD_LBMA_PM_USD.csv").write_bytes((fred_dir / "GOLD_LBMA_PM_USD.csv").read_bytes())
    a = build_panel(specs, sample, cache)
    b = build_panel(specs, sample, fred_dir)
    assert a.observations.equals(b.observations) and a.end == "2026-07"
    assert all(a.provenance[k].sha256 == b.provenance[k].sha256 for k in a.provenance)


def test_pull_refuses_path_ids_before_downloading(fred: FakeFred, cache: Path) -> None:
    """issue 21 item 4 (library level): the error names the value; nothing is requested."""
    with pytest.raises(FetchError, match=r"'\.\./x' is not a FRED id"):
        _pull(fred, cache, ids=("FEDFUNDS", "../x"))
    assert fred.requests == []
    _assert_untouched(cache)


class DribblingServer:
    """Sends ``body`` one byte every ``pause`` seconds; ``headers_too``: the status line and
    headers as well (issue 21 item 15: --timeout 3 --retries 0 was still running after 90 s)."""

    def __init__(self, body: bytes, pause: float, headers_too: bool = False) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body))
                try:
                    if not headers_too:
                        self.wfile.write(head)
                        self.wfile.flush()
                    for b in (head + body if headers_too else body):
                        if server.stop.is_set():
                            return
                        self.wfile.write(bytes([b]))
                        self.wfile.flush()
                        server.stop.wait(pause)
                except OSError:
                    pass

        self.stop = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/graph/fredgraph.csv"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> DribblingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "status-line-and-body"])
def test_pull_timeout_bounds_the_whole_download(cache: Path, headers_too: bool) -> None:
    """A server sending a byte every 0.1 s (each read well inside the socket timeout) is cut
    off at --timeout, not after the 40 s the whole body would take."""
    body = b"observation_date,FEDFUNDS\n" + b"2020-01-01,1.55\n" * 25
    with DribblingServer(body, 0.1, headers_too) as srv:
        t0 = time.monotonic()
        with pytest.raises(FetchError, match=r"FEDFUNDS.*timed out.*--timeout 1 s"):
            pull(["FEDFUNDS"], cache, base_url=srv.url, timeout=1.0, retries=0)
        assert time.monotonic() - t0 < 2.5
    _assert_untouched(cache)
