"""Download FRED series into the data cache (one ``<ID>.csv`` per series).

Each body is validated with the CSV parser *before* it is written; a series that fails leaves
its cached file byte-identical. Writes are atomic (temporary file + rename).
"""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from regimecast.store.atomic import write_bytes
from regimecast.data.csv import MAX_FILE_BYTES, parse_fred_csv
from regimecast.data.spec import SeriesSpec, is_series_id
from regimecast.errors import DataError, FetchError, shown

FRED_CSV_URL = "https://fred.stlouisfed.org/graph/fredgraph.csv"


@dataclass(frozen=True)
class PullResult:
    """One downloaded series: cache path, SHA-256 of the bytes written, rows and date range
    ("YYYY-MM-DD" of the first and last non-missing value)."""

    series_id: str
    url: str
    path: Path
    sha256: str
    n_rows: int
    n_obs: int
    first: str | None
    last: str | None


class _Retryable(Exception):
    """A transient failure (connection error, timeout, HTTP 5xx, short read)."""


def default_pull_ids(model_spec_series: Iterable[SeriesSpec]) -> list[str]:
    """FRED ids to download for a model: every ``source = "fred"`` series and its ``minus``
    id, in model order, without duplicates."""
    ids: list[str] = []
    for s in model_spec_series:
        if s.source == "fred":
            ids += [i for i in (s.fred_id, s.minus) if i and i not in ids]
    return ids


def check_series_ids(series_ids: Iterable[str], cache_dir: Path) -> None:
    """Refuse, before any download, an id that is not a FRED id (letters, digits, ``_``): the
    id becomes the file name ``<ID>.csv``, so ``../x`` or ``/abs/x`` would write elsewhere."""
    for sid in series_ids:
        if not is_series_id(sid):
            raise FetchError(f"series id {str(sid)[:80]!r} is not a FRED id (letters, digits and _ "
                             f"only): nothing was downloaded to {cache_dir}")


def pull(series_ids: Sequence[str], cache_dir: Path, *, base_url: str = FRED_CSV_URL,
         timeout: float = 30.0, retries: int = 3, backoff: float = 1.0,
         today: dt.date | None = None, specs: Sequence[SeriesSpec] = ()) -> list[PullResult]:
    """Download ``base_url?id=<ID>`` for each id into ``cache_dir/<ID>.csv``.

    ``retries``: extra attempts after a transient failure, waiting ``backoff * 2**k`` seconds.
    ``specs`` (optional): the model's series, used to refuse ``source = "file"`` ids up front
    and to apply the kind-specific checks (percent vs decimal, positive prices). Every id is
    tried; if any failed, raises FetchError listing each failed series, URL and reason (the
    other files are written).
    """
    cache_dir = Path(cache_dir)
    check_series_ids(series_ids, cache_dir)
    by_id = {s.fred_id: s for s in specs}
    minus_of = {s.minus: s for s in specs if s.minus}
    for sid in series_ids:
        s = by_id.get(sid)
        if s is not None and s.source == "file":
            raise FetchError(f"{sid} (series '{s.name}') has source = \"file\": it cannot be "
                             f"downloaded from FRED; place {sid}.csv (header "
                             f"'observation_date,{sid}') in the data directory {cache_dir}")
    results: list[PullResult] = []
    failures: list[str] = []
    for sid in series_ids:
        url = f"{base_url}?{urllib.parse.urlencode({'id': sid})}"
        spec = by_id.get(sid) or minus_of.get(sid)
        try:
            results.append(_pull_one(sid, url, cache_dir, spec, timeout, retries, backoff, today))
        except FetchError as e:
            failures.append(str(e))
    if failures:
        raise FetchError("; ".join(failures) + f" (cached files left unchanged in {cache_dir})")
    return results


def _pull_one(sid: str, url: str, cache_dir: Path, spec: SeriesSpec | None, timeout: float,
              retries: int, backoff: float, today: dt.date | None) -> PullResult:
    body = _download(sid, url, timeout, retries, backoff)
    _check_body(sid, url, body)
    main = spec is not None and spec.fred_id == sid
    try:
        cs = parse_fred_csv(body, url, sid, kind=spec.kind if spec else None,
                            transform=spec.transform if main and not spec.minus else None,
                            today=today)
    except DataError as e:
        raise FetchError(f"{sid}: invalid CSV from {url}: {e.problem} "
                         f"(line {e.line}, value {shown(e.value)})") from e
    path = cache_dir / f"{sid}.csv"
    try:
        write_bytes(path, body)
    except OSError as e:
        raise FetchError(f"{sid}: downloaded from {url} but cannot write {path}: {e}") from e
    day = lambda t: t.date().isoformat() if t is not None else None  # noqa: E731
    return PullResult(sid, url, path, cs.sha256, cs.n_rows, cs.n_obs, day(cs.first), day(cs.last))


def _download(sid: str, url: str, timeout: float, retries: int, backoff: float) -> bytes:
    reason = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            return _get(sid, url, timeout)
        except _Retryable as e:
            reason = str(e)
    raise FetchError(f"{sid}: download from {url} failed after {retries + 1} "
                     f"attempt{'s' if retries else ''}: {reason}")


def _get(sid: str, url: str, timeout: float) -> bytes:
    """One attempt, bounded as a whole by ``timeout`` seconds (connection, headers and body):
    a server that sends one byte a second cannot hold the download past it. The request runs
    in a daemon thread that stops reading at the deadline; this thread waits for it no longer."""
    deadline = time.monotonic() + timeout
    out: dict[str, object] = {}

    def attempt() -> None:
        try:
            out["body"] = _fetch(sid, url, timeout, deadline)
        except BaseException as e:  # noqa: BLE001  (handed to the caller's thread)
            out["error"] = e

    worker = threading.Thread(target=attempt, name=f"fred-{sid}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise _Retryable(f"timed out: no complete response within --timeout {timeout:g} s")
    if "error" in out:
        raise out["error"]  # type: ignore[misc]
    return out["body"]  # type: ignore[return-value]


def _fetch(sid: str, url: str, timeout: float, deadline: float) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "regimecast"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            chunks, size = [], 0
            while chunk := resp.read1(65536):
                size += len(chunk)
                if size > MAX_FILE_BYTES:
                    raise FetchError(f"{sid}: {url} sent more than {MAX_FILE_BYTES // 2**20} MiB: "
                                     "not a FRED series")
                if time.monotonic() > deadline:
                    raise _Retryable(f"timed out: {size:,} bytes in --timeout {timeout:g} s")
                chunks.append(chunk)
            body = b"".join(chunks)
    except urllib.error.HTTPError as e:
        if e.code >= 500:
            raise _Retryable(f"HTTP {e.code} {e.reason}") from None
        raise FetchError(f"{sid}: download from {url} failed: HTTP {e.code} {e.reason}") from None
    except http.client.IncompleteRead as e:
        raise _Retryable(f"truncated body: received {len(e.partial)} bytes, "
                         f"{e.expected} more expected (Content-Length mismatch)") from None
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError,
            socket.timeout, TimeoutError) as e:
        raise _Retryable(f"connection error: {getattr(e, 'reason', e)}") from None
    if length is not None and length.isdigit() and int(length) != len(body):
        raise _Retryable(f"truncated body: Content-Length {length}, received {len(body)} bytes")
    return body


def _check_body(sid: str, url: str, body: bytes) -> None:
    """Reject bodies that are clearly not a complete FRED CSV (before parsing)."""
    head = body.lstrip()[:512].lower()
    if head.startswith(b"<") or b"<html" in head or b"<!doctype" in head:
        raise FetchError(f"{sid}: {url} returned an HTML page, not CSV (unknown series id or "
                         "a FRED error page?)")
    if not body.strip():
        raise FetchError(f"{sid}: {url} returned an empty body")
    lines = body.rstrip(b"\r\n").split(b"\n")
    last = lines[-1].rstrip(b"\r")
    if not body.endswith(b"\n"):
        raise FetchError(f"{sid}: body from {url} is truncated: the last line {last[:60]!r} "
                         "has no line ending")
    if len(lines) > 1 and b"," in last and not last.split(b",", 1)[1].strip():
        raise FetchError(f"{sid}: body from {url} is truncated: the last line {last[:60]!r} "
                         "has no value")
