"""Read and validate one FRED-format CSV (``observation_date,<ID>`` or ``DATE,<ID>``).

A file holds one row per date (``YYYY-MM-DD``, strictly increasing) and one value in the
series' natural units; ``.`` or an empty field means FRED has no value that day. Every problem
is a :class:`~regimecast.errors.DataError` naming the file, the field (column), the 1-based
line number (header = line 1) and the offending value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from regimecast.data.spec import LOG_TRANSFORMS
from regimecast.errors import DataError

DATE_COLUMNS = ("observation_date", "DATE")
MISSING = ("", ".")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL_SPAN_DAYS = 730  # the percent-vs-decimal check needs >= 2 years of data
MAX_FILE_BYTES = 64 * 2**20  # FRED's longest daily series is under 1 MB
MAX_LINE = 200               # characters of one row (a date, a comma, a number)
MIN_DATE = dt.date(1678, 1, 1)  # pandas' nanosecond timestamps start in 1677
_UNIT_JUMP = 50.0            # consecutive rate values this many times apart: units changed
_LONG_LINE = re.compile(rb"[^\n]{%d}" % (MAX_LINE + 1))


@dataclass(frozen=True, eq=False)
class CsvSeries:
    """A validated series. ``values``: DatetimeIndex ``date`` (datetime64[ns], one entry per
    row) -> float64 in the file's natural units, NaN where the row has no value."""

    path: str
    series_id: str
    values: pd.Series
    sha256: str

    @property
    def n_rows(self) -> int:
        """Data rows in the file (header excluded), missing values included."""
        return int(self.values.size)

    @property
    def n_obs(self) -> int:
        """Rows with a value."""
        return int(self.values.notna().sum())

    @property
    def first(self) -> pd.Timestamp | None:
        """Date of the first non-missing value."""
        return self.values.first_valid_index()

    @property
    def last(self) -> pd.Timestamp | None:
        """Date of the last non-missing value."""
        return self.values.last_valid_index()

    @property
    def last_row(self) -> pd.Timestamp:
        """Date of the last row, with or without a value."""
        return self.values.index[-1]


def read_fred_csv(path: str | Path, series_id: str | None = None, *, kind: str | None = None,
                  transform: str | None = None, today: dt.date | None = None,
                  root: str | Path | None = None) -> CsvSeries:
    """Read ``path``; ``series_id`` defaults to the file name's stem.

    ``root`` (the data directory): a symbolic link that resolves outside it is refused
    (links inside it are followed), so a data folder cannot make regimecast read, and print
    part of, a foreign file such as ``/etc/passwd``. Files over ``MAX_FILE_BYTES`` are refused
    unread.

    ``kind``/``transform`` (from the series spec) enable the percent-vs-decimal check
    (kind ``percent_rate``) and the positivity check (kind ``price``/``amount`` with a log
    transform). Dates after ``today`` (default: today's date) are errors.
    """
    path = Path(path)
    sid = series_id if series_id is not None else path.stem
    if root is not None and path.is_symlink() and not path.resolve().is_relative_to(Path(root).resolve()):
        raise DataError(path, sid, None, str(path), f"symbolic link to a file outside the data "
                        f"directory {root}: refused (only files inside it are read)")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DataError(path, sid, None, f"{size:,} bytes", f"file is larger than "
                            f"{MAX_FILE_BYTES // 2**20} MiB: not a FRED series (refused unread)")
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, sid, None, str(path), "file not found") from None
    except OSError as e:
        raise DataError(path, sid, None, str(path), f"cannot read file: {e}") from None
    return parse_fred_csv(data, path, sid, kind=kind, transform=transform, today=today)


def parse_fred_csv(data: bytes, source: str | Path, series_id: str, *, kind: str | None = None,
                   transform: str | None = None, today: dt.date | None = None) -> CsvSeries:
    """Validate the bytes of a FRED CSV; ``source`` (a path or URL) is named in errors."""
    today = today or dt.date.today()
    _check_line_lengths(data, source, series_id)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(source, series_id, None, data[max(0, e.start - 10):e.start + 10],
                        "file is not UTF-8 text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    if not lines:
        raise DataError(source, "header", 1, "", "empty file: expected header "
                        f"'observation_date,{series_id}'")
    _check_header(source, series_id, lines[0])
    if len(lines) < 2:
        raise DataError(source, series_id, None, lines[0], "no observations after the header")
    date_col = lines[0].split(",")[0]
    dates, values = _parse_rows(source, series_id, date_col, lines, today)
    _check_values(source, series_id, lines, dates, values, kind, transform)
    index = pd.DatetimeIndex(np.array(dates, dtype="datetime64[ns]"), name="date")
    series = pd.Series(np.array(values, dtype="float64"), index=index, name=series_id)
    return CsvSeries(str(source), series_id, series, hashlib.sha256(data).hexdigest())


def _check_line_lengths(data: bytes, source: str | Path, series_id: str) -> None:
    """Refuse a row longer than ``MAX_LINE`` before decoding (a 300 MB field costs no time)."""
    if (m := _LONG_LINE.search(data)) is None:
        return
    start = m.start()                  # the leftmost match starts the first long row
    line = data.count(b"\n", 0, start) + 1
    end = data.find(b"\n", start)
    n = (len(data) if end < 0 else end) - start
    raise DataError(source, "header" if line == 1 else series_id, line,
                    data[start:start + 40].decode("utf-8", "replace"),
                    f"row is {n:,} bytes long; a FRED row (date,value) is at most {MAX_LINE}")


def _check_header(source: str | Path, series_id: str, header: str) -> None:
    cols = header.split(",")
    expected = f"'observation_date,{series_id}' (or 'DATE,{series_id}')"
    if len(cols) != 2 or cols[0].strip() not in DATE_COLUMNS:
        raise DataError(source, "header", 1, header, f"wrong header: expected {expected}")
    if cols[1].strip() != series_id:
        raise DataError(source, "header", 1, header,
                        f"wrong header: column '{cols[1].strip()}' does not match the series "
                        f"{series_id}: expected {expected}")


def _parse_rows(source: str | Path, sid: str, date_col: str, lines: list[str],
                today: dt.date) -> tuple[list[dt.date], list[float]]:
    dates: list[dt.date] = []
    values: list[float] = []
    prev: dt.date | None = None
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split(",")
        if len(fields) != 2:
            raise DataError(source, sid, lineno, line,
                            f"expected 2 comma-separated fields (date,value), found {len(fields)}")
        raw_date, raw = fields[0].strip(), fields[1].strip()
        try:
            if not _DATE_RE.match(raw_date):
                raise ValueError
            day = dt.date.fromisoformat(raw_date)
        except ValueError:
            raise DataError(source, date_col, lineno, raw_date,
                            "unparseable date: expected YYYY-MM-DD") from None
        if day < MIN_DATE:
            raise DataError(source, date_col, lineno, raw_date,
                            f"date before {MIN_DATE.isoformat()}: outside the supported range")
        if prev is not None and day == prev:
            raise DataError(source, date_col, lineno, raw_date, "duplicated date")
        if prev is not None and day < prev:
            raise DataError(source, date_col, lineno, raw_date,
                            f"dates are not sorted: {raw_date} follows {prev.isoformat()}")
        if day > today:
            raise DataError(source, date_col, lineno, raw_date,
                            f"date is in the future (today is {today.isoformat()})")
        prev = day
        if raw in MISSING:
            value = math.nan
        else:
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise DataError(source, sid, lineno, raw,
                                "non-numeric value (missing values must be '.' or empty)")
        dates.append(day)
        values.append(value)
    return dates, values


def _check_values(source: str | Path, sid: str, lines: list[str], dates: list[dt.date],
                  values: list[float], kind: str | None, transform: str | None) -> None:
    arr = np.asarray(values, dtype="float64")
    ok = ~np.isnan(arr)
    if kind in ("price", "amount") and transform in LOG_TRANSFORMS:
        bad = np.flatnonzero(ok & (arr <= 0))
        if bad.size:
            i = int(bad[0])
            raise DataError(source, sid, i + 2, lines[i + 1].split(",")[1].strip(),
                            f"non-positive value where the '{transform}' transform takes a log")
    if kind == "percent_rate" and ok.any():
        idx = np.flatnonzero(ok)
        span = (dates[idx[-1]] - dates[idx[0]]).days
        absval = np.where(ok, np.abs(arr), -1.0)
        i = int(np.argmax(absval))
        if span >= _DECIMAL_SPAN_DAYS and absval[i] < 1.0:
            raise DataError(source, sid, i + 2, lines[i + 1].split(",")[1].strip(),
                            "looks like a decimal fraction, not percent: the largest |value| "
                            f"over {span / 365.25:.1f} years is below 1.0 (expected percent, "
                            "e.g. 4.25 not 0.0425)")
        _check_unit_jumps(source, sid, lines, idx, arr[idx])


def _check_unit_jumps(source: str | Path, sid: str, lines: list[str], idx: np.ndarray,
                      v: np.ndarray) -> None:
    """A rate whose units change inside the file (percent, then decimal fractions from some
    date on, or the reverse) jumps by a factor of ~100 between two consecutive values. Every
    pair of consecutive values is looked at, so a stretch in other units is found wherever it
    is. (A per-year size test cannot tell decimals from the zero-lower-bound years, when the
    fed funds rate stayed below 1% for seven years.) Real rates never move by a factor of 50
    from 1% or more in one step (largest on the FRED files here: 28, a 3-month bill in 2008)."""
    a, b = np.abs(v[:-1]), np.abs(v[1:])
    big, small = np.maximum(a, b), np.minimum(a, b)
    jump = np.flatnonzero((big >= 1.0) & (small > 0) & (big >= _UNIT_JUMP * small))
    if jump.size:
        j = int(jump[0])
        before, at = (lines[int(idx[k]) + 1].split(",")[1].strip() for k in (j, j + 1))
        raise DataError(source, sid, int(idx[j + 1]) + 2, at,
                        f"the units change inside the file: {at} follows {before} (line "
                        f"{int(idx[j]) + 2}), {big[j] / small[j]:.0f} times "
                        f"{'smaller' if b[j] < a[j] else 'larger'}: percent and decimal fractions "
                        "mixed? (expected percent throughout, e.g. 4.25 not 0.0425)")
