"""FRED CSV reader: real files parse; every broken file is a DataError naming file, line, value."""

from __future__ import annotations

import csv as stdcsv
import datetime as dt
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from regimecast.data.csv import parse_fred_csv, read_fred_csv
from regimecast.errors import DataError

TODAY = dt.date(2026, 11, 23)


def _write(tmp_path: Path, sid: str, text: str) -> Path:
    path = tmp_path / f"{sid}.csv"
    path.write_bytes(text.encode())
    return path


def _raises(path: Path, line: int | None, value: object, **kw) -> DataError:
    with pytest.raises(DataError) as info:
        read_fred_csv(path, today=TODAY, **kw)
    err, msg = info.value, str(info.value)
    assert str(path) in msg
    assert err.line == line
    if line is not None:
        assert f"line {line}" in msg
    assert err.value == value
    assert repr(value) in msg
    return err


def test_real_dgs10_parses(fred_dir: Path) -> None:
    path = fred_dir / "DGS10.csv"
    cs = read_fred_csv(path, today=TODAY)
    with path.open(newline="") as fh:
        rows = list(stdcsv.reader(fh))[1:]
    assert cs.series_id == "DGS10"
    assert cs.n_rows == len(rows)
    assert cs.n_obs == sum(1 for r in rows if r[1] not in ("", "."))
    assert cs.values.dtype == np.float64
    assert str(cs.values.index.dtype) == "datetime64[ns]"
    assert cs.values.index.is_monotonic_increasing and cs.values.index.is_unique
    assert cs.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert cs.first.date().isoformat() == rows[0][0]
    assert cs.values.iloc[-1] == float(rows[-1][1])
    assert cs.values.isna().sum() == sum(1 for r in rows if r[1] == "")


def test_real_cpi_gap_is_nan(fred_dir: Path) -> None:
    cs = read_fred_csv(fred_dir / "CPIAUCSL.csv", kind="price", transform="yoy_pct", today=TODAY)
    assert math.isnan(cs.values.loc["2025-10-01"])
    assert cs.values.loc["2025-11-01"] == pytest.approx(325.063)


def test_real_projection_file_is_rejected(fred_dir: Path) -> None:
    # FEDTARMD (FOMC median projection) in the shared data holds future dates (projections)
    # (2027-01-01 on line 3, 2028-01-01 on line 4).
    with pytest.raises(DataError) as info:
        read_fred_csv(fred_dir / "FEDTARMD.csv", today=TODAY)
    assert info.value.line == 3 and "'2027-01-01'" in str(info.value)
    assert "future" in str(info.value)
    assert read_fred_csv(fred_dir / "FEDTARMD.csv", today=dt.date(2030, 1, 1)).n_obs == 3


def test_old_date_header_dot_missing_and_crlf(tmp_path: Path) -> None:
    p = _write(tmp_path, "XYZ", "DATE,XYZ\r\n2020-01-01,1.5\r\n2020-01-02,.\r\n2020-01-03,\r\n"
                                "2020-01-06,2\r\n")
    cs = read_fred_csv(p, today=TODAY)
    assert list(np.isnan(cs.values.to_numpy())) == [False, True, True, False]
    assert cs.n_rows == 4 and cs.n_obs == 2
    assert cs.last.date() == dt.date(2020, 1, 6)


def test_parse_bytes_matches_file(tmp_path: Path) -> None:
    text = "observation_date,ABC\n2020-01-01,1\n2020-02-01,2\n"
    a = parse_fred_csv(text.encode(), "mem", "ABC", today=TODAY)
    b = read_fred_csv(_write(tmp_path, "ABC", text), today=TODAY)
    assert a.sha256 == b.sha256 and a.values.equals(b.values)


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "NOPE.csv"
    err = _raises(p, None, str(p))
    assert "file not found" in str(err)


@pytest.mark.parametrize("header", ["date,value", "observation_date,DGS10,extra", "Date;XYZ",
                                    "observation_date"])
def test_wrong_header_columns(tmp_path: Path, header: str) -> None:
    p = _write(tmp_path, "XYZ", f"{header}\n2020-01-01,1\n")
    err = _raises(p, 1, header)
    assert err.field == "header" and "wrong header" in str(err)


def test_header_id_does_not_match_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "DGS10", "observation_date,DGS2\n2020-01-01,1.5\n")
    err = _raises(p, 1, "observation_date,DGS2")
    assert "does not match" in str(err) and "DGS10" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    p = _write(tmp_path, "XYZ", "")
    _raises(p, 1, "")


def test_header_only(tmp_path: Path) -> None:
    p = _write(tmp_path, "XYZ", "observation_date,XYZ\n")
    err = _raises(p, None, "observation_date,XYZ")
    assert "no observations" in str(err)


@pytest.mark.parametrize("bad", ["abc", "1,5", "nan", "inf", "NA", "1.2.3"])
def test_non_numeric_value(tmp_path: Path, bad: str) -> None:
    p = _write(tmp_path, "XYZ", f"observation_date,XYZ\n2020-01-01,1\n2020-01-02,2\n2020-01-03,{bad}\n")
    if "," in bad:  # an extra comma is a wrong field count on that line
        err = _raises(p, 4, f"2020-01-03,{bad}")
        assert "2 comma-separated fields" in str(err)
    else:
        err = _raises(p, 4, bad)
        assert "non-numeric" in str(err) and err.field == "XYZ"


@pytest.mark.parametrize("bad", ["2020-13-01", "01/02/2020", "2020-02-30", "20200103", ""])
def test_unparseable_date(tmp_path: Path, bad: str) -> None:
    p = _write(tmp_path, "XYZ", f"observation_date,XYZ\n2020-01-01,1\n{bad},2\n")
    err = _raises(p, 3, bad)
    assert "unparseable date" in str(err) and err.field == "observation_date"


def test_line_without_comma(tmp_path: Path) -> None:
    p = _write(tmp_path, "XYZ", "observation_date,XYZ\n2020-01-01,1\n2020-01-0\n")
    _raises(p, 3, "2020-01-0")


def test_duplicated_date(tmp_path: Path) -> None:
    p = _write(tmp_path, "XYZ", "observation_date,XYZ\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n")
    err = _raises(p, 4, "2020-01-02")
    assert "duplicated date" in str(err)


def test_unsorted_dates(tmp_path: Path) -> None:
    p = _write(tmp_path, "XYZ", "observation_date,XYZ\n2020-01-01,1\n2020-01-03,2\n2020-01-02,3\n")
    err = _raises(p, 4, "2020-01-02")
    assert "not sorted" in str(err)


def test_future_date(tmp_path: Path) -> None:
    p = _write(tmp_path, "XYZ", "observation_date,XYZ\n2026-11-23,1\n2026-11-24,2\n")
    err = _raises(p, 3, "2026-11-24")
    assert "future" in str(err) and "2026-11-23" in str(err)


@pytest.mark.parametrize(("kind", "transform"), [("price", "log_diff_pct"), ("amount", "log"),
                                                 ("price", "log")])
def test_non_positive_value_under_log(tmp_path: Path, kind: str, transform: str) -> None:
    p = _write(tmp_path, "XYZ", "observation_date,XYZ\n2020-01-01,10\n2020-01-02,.\n"
                                "2020-01-03,-0.5\n2020-01-06,0\n")
    err = _raises(p, 4, "-0.5", kind=kind, transform=transform)
    assert "non-positive" in str(err) and transform in str(err)


@pytest.mark.parametrize(("kind", "transform"), [("price", "level"), ("index", "log_diff_pct"),
                                                 ("amount", "diff"), (None, None)])
def test_non_positive_allowed_without_log(tmp_path: Path, kind, transform) -> None:
    p = _write(tmp_path, "XYZ", "observation_date,XYZ\n2020-01-01,10\n2020-01-03,-0.5\n")
    assert read_fred_csv(p, kind=kind, transform=transform, today=TODAY).n_obs == 2


def _rates(values: list[float], start: str = "2019-01-01") -> str:
    import pandas as pd
    days = pd.date_range(start, periods=len(values), freq="MS")
    return "observation_date,RATE\n" + "".join(f"{d:%Y-%m-%d},{v}\n" for d, v in zip(days, values))


def test_percent_rate_in_decimal_is_rejected(tmp_path: Path) -> None:
    vals = [0.0425, 0.043, -0.051, 0.04, *([0.045] * 26)]  # 30 months; largest |value| on line 4
    p = _write(tmp_path, "RATE", _rates(vals))
    err = _raises(p, 4, "-0.051", kind="percent_rate", transform="diff")
    assert "decimal" in str(err) and "percent" in str(err)


def test_percent_rate_checks(tmp_path: Path) -> None:
    short = _write(tmp_path, "RATE", _rates([0.05] * 20))  # < 2 years: too short to judge
    assert read_fred_csv(short, kind="percent_rate", today=TODAY).n_obs == 20
    ok = _write(tmp_path, "RATE", _rates([0.05] * 29 + [1.25]))
    assert read_fred_csv(ok, kind="percent_rate", today=TODAY).n_obs == 30


def test_real_percent_rates_pass(fred_dir: Path) -> None:
    for sid in ("DGS10", "FEDFUNDS", "SOFR", "IORB"):
        assert read_fred_csv(fred_dir / f"{sid}.csv", kind="percent_rate", today=TODAY).n_obs > 0


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "XYZ.csv"
    p.write_bytes(b"observation_date,XYZ\n2020-01-01,\xff\xfe\n")
    with pytest.raises(DataError) as info:
        read_fred_csv(p, today=TODAY)
    assert str(p) in str(info.value) and "UTF-8" in str(info.value)


FIXTURES = Path(__file__).parent / "fixtures" / "data"


def test_symlink_outside_the_data_dir_is_refused_unprinted(tmp_path: Path) -> None:
    """issue 21 item 5: a link to a foreign file is refused; no byte of it is printed."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "DGS10.csv").symlink_to(FIXTURES / "foreign_secret.txt")
    with pytest.raises(DataError) as info:
        read_fred_csv(data / "DGS10.csv", today=TODAY, root=data)
    msg = str(info.value)
    assert "symbolic link" in msg and str(data / "DGS10.csv") in msg and "SECRET" not in msg
    assert "root:x" not in msg and info.value.field == "DGS10"


def test_symlink_inside_the_data_dir_is_followed(tmp_path: Path, fred_dir: Path) -> None:
    data = tmp_path / "data"
    (data / "store").mkdir(parents=True)
    (data / "store" / "DGS10.csv").write_bytes((fred_dir / "DGS10.csv").read_bytes())
    (data / "DGS10.csv").symlink_to(data / "store" / "DGS10.csv")
    assert read_fred_csv(data / "DGS10.csv", today=TODAY, root=data).n_obs > 15000


def test_year_0001_dates_are_refused(tmp_path: Path) -> None:
    """issue 21 item 14: dates pandas cannot hold (OutOfBoundsDatetime before)."""
    err = _raises(FIXTURES / "DGS10_year_0001.csv", 2, "0001-01-03", series_id="DGS10")
    assert err.field == "observation_date" and "1678-01-01" in str(err)


def test_huge_field_is_refused_fast_and_not_printed(tmp_path: Path) -> None:
    """issue 21 item 14: a 30 MB value (300 MB in the report) is named in a short message."""
    import time

    p = tmp_path / "DGS10.csv"
    p.write_bytes(b"observation_date,DGS10\n2020-01-02,1.5\n2020-01-03," + b"9" * 30_000_000 + b"\n")
    t0 = time.perf_counter()
    with pytest.raises(DataError) as info:
        read_fred_csv(p, today=TODAY)
    assert time.perf_counter() - t0 < 2.0
    msg = str(info.value)
    assert len(msg) < 400 and "line 3" in msg and "field 'DGS10'" in msg and "30,000,011 bytes" in msg
    assert info.value.value.startswith("2020-01-03,999")


def test_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    """A 300 MB file (sparse: no disk used) is refused from its size alone."""
    p = tmp_path / "DGS10.csv"
    with p.open("wb") as f:
        f.write(b"observation_date,DGS10\n2020-01-02,")
        f.truncate(300_000_000)
    with pytest.raises(DataError, match=r"300,000,000 bytes.*larger than 64 MiB"):
        read_fred_csv(p, today=TODAY)


def _dgs10_with_decimal_tail(fred_dir: Path, folder: Path, since: str = "2024-01-01") -> Path:
    """The real DGS10 file with every value from ``since`` on divided by 100."""
    out = []
    for line in (fred_dir / "DGS10.csv").read_text().splitlines():
        day, _, value = line.partition(",")
        if day >= since and day[:1].isdigit() and value not in ("", "."):
            value = repr(round(float(value) / 100, 6))
        out.append(f"{day},{value}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "DGS10.csv").write_text("\n".join(out) + "\n")
    return folder / "DGS10.csv"


def test_units_changing_inside_the_file_are_refused(tmp_path: Path, fred_dir: Path) -> None:
    """issue 21 item 11: DGS10 in decimals from 2024 on passed (its bulk is in percent)."""
    p = _dgs10_with_decimal_tail(fred_dir, tmp_path)
    lines = p.read_text().splitlines()
    first = next(i for i, ln in enumerate(lines) if ln[:1].isdigit() and ln >= "2024" and ln[-1].isdigit())
    with pytest.raises(DataError) as info:
        read_fred_csv(p, kind="percent_rate", today=TODAY)
    err = info.value
    assert err.line == first + 1 and err.value == lines[first].split(",")[1] == "0.0395"
    assert "units change inside the file" in str(err) and "98 times smaller" in str(err)  # 3.88 -> 0.0395
    before = max(i for i in range(first) if lines[i][-1].isdigit())
    assert f"follows {lines[before].split(',')[1]} (line {before + 1})" in str(err)


def test_units_changing_back_are_refused(tmp_path: Path) -> None:
    """A decimal stretch in the middle, back to percent after it."""
    vals = [4.1, 4.2, 4.3, 0.043, 0.044, 0.045, 4.6, *([4.5] * 30)]
    p = _write(tmp_path, "RATE", _rates(vals))
    err = _raises(p, 5, "0.043", kind="percent_rate", transform="diff")
    assert "units change" in str(err)


def test_every_real_rate_file_passes_the_unit_checks(fred_dir: Path) -> None:
    """No false alarm on any rate here, zero-lower-bound years and 2008's bills included."""
    for sid in ("DGS10", "DGS1", "DGS1MO", "DGS2", "DGS3MO", "DGS5", "DGS6MO", "DGS7", "DGS20",
                "DGS30", "FEDFUNDS", "EFFR", "SOFR", "SOFR30DAYAVG", "IORB", "DFEDTARL",
                "DFEDTARU", "DFII10", "T10YIE", "BAA10Y"):
        assert read_fred_csv(fred_dir / f"{sid}.csv", kind="percent_rate", today=TODAY).n_obs > 0
