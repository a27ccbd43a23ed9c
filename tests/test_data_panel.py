"""Series specs and the monthly panel: real-data checks computed independently from the files,
and synthetic files for every error."""

from __future__ import annotations

import calendar
import csv as stdcsv
import datetime as dt
import hashlib
import json
import math
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from regimecast.data import SampleSpec, SeriesSpec, build_panel, parse_sample, parse_series
from regimecast.errors import ConfigError, DataError

TODAY = dt.date(2026, 11, 23)


# ---------------------------------------------------------------- specs

@pytest.fixture(scope="module")
def model(repo_root: Path) -> dict:
    return tomllib.loads((repo_root / "models" / "default.toml").read_text())


def test_parse_default_model(model: dict) -> None:
    series = parse_series("default.toml", model["series"])
    assert [s.name for s in series] == ["y10", "equity", "gold", "vix", "fedfunds",
                                        "balance_sheet", "inflation", "liquidity"]
    liq = series[-1]
    assert (liq.fred_id, liq.minus, liq.optional, liq.role) == ("SOFR", "IORB", True, "covariate")
    assert series[2].source == "file" and series[0].asset and not series[0].optional
    assert parse_sample("default.toml", model["sample"]) == SampleSpec("2003-01", 84, 2)


def _series_error(model: dict, i: int, key: str, value: object) -> ConfigError:
    tables = [dict(t) for t in model["series"]]
    if value is KeyError:
        del tables[i][key]
    else:
        tables[i][key] = value
    with pytest.raises(ConfigError) as info:
        parse_series("models/x.toml", tables)
    msg = str(info.value)
    assert "models/x.toml" in msg and f"series[{i}].{key}" in msg
    assert info.value.key == f"series[{i}].{key}"
    return info.value


@pytest.mark.parametrize(("key", "value"), [
    ("transform", "log_diff"), ("aggregation", "median"), ("role", "target"),
    ("kind", "percent"), ("source", "yahoo"), ("asset", "yes"), ("optional", 1),
    ("fred_id", "../etc/passwd"), ("minus", "DGS10"), ("label", ""), ("name", "10y")])
def test_series_bad_value(model: dict, key: str, value: object) -> None:
    err = _series_error(model, 0, key, value)
    assert err.value == value and repr(value) in str(err)


@pytest.mark.parametrize("key", ["fred_id", "transform", "units", "asset"])
def test_series_missing_key(model: dict, key: str) -> None:
    err = _series_error(model, 2, key, KeyError)
    assert "missing" in str(err)


def test_series_unknown_key(model: dict) -> None:
    err = _series_error(model, 3, "transfrom", "log")
    assert "unknown key" in str(err) and "'log'" in str(err)


def test_series_duplicate_name(model: dict) -> None:
    err = _series_error(model, 4, "name", "y10")
    assert "duplicate" in str(err) and "series[0]" in str(err)


def test_series_not_a_list() -> None:
    for bad in (None, [], {"name": "x"}):
        with pytest.raises(ConfigError, match="series"):
            parse_series("m.toml", bad)


@pytest.mark.parametrize(("key", "value"), [("start", "2003-13"), ("start", "2003/01"),
                                            ("start", 2003), ("min_months", "120"),
                                            ("min_months", 0), ("max_lag_months", -1),
                                            ("max_lag_months", True), ("stop", "2020-01")])
def test_sample_bad(model: dict, key: str, value: object) -> None:
    table = {**model["sample"], key: value}
    with pytest.raises(ConfigError) as info:
        parse_sample("m.toml", table)
    assert info.value.key == f"sample.{key}" and repr(value) in str(info.value)
    assert "m.toml" in str(info.value)


def test_sample_missing_key(model: dict) -> None:
    table = {k: v for k, v in model["sample"].items() if k != "min_months"}
    with pytest.raises(ConfigError, match="sample.min_months"):
        parse_sample("m.toml", table)


# ---------------------------------------------------------------- real data

@pytest.fixture(scope="module")
def specs(model: dict) -> tuple[SeriesSpec, ...]:
    return parse_series("default.toml", model["series"])


@pytest.fixture(scope="module")
def panel(specs, model: dict, fred_dir: Path):
    return build_panel(specs, parse_sample("default.toml", model["sample"]), fred_dir, today=TODAY)


def _rows(path: Path) -> list[tuple[dt.date, float | None]]:
    with path.open(newline="") as fh:
        rows = list(stdcsv.reader(fh))[1:]
    return [(dt.date.fromisoformat(d), float(v) if v not in ("", ".") else None) for d, v in rows]


def _last_weekday(year: int, month: int) -> dt.date:
    day = dt.date(year, month, calendar.monthrange(year, month)[1])
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return day


def _last_complete_month(path: Path) -> tuple[int, int]:
    rows = _rows(path)
    gap = np.median([(b[0] - a[0]).days for a, b in zip(rows, rows[1:])])
    last_row = rows[-1][0]
    last = max(d for d, v in rows if v is not None)
    ym = (last.year, last.month)
    bme = _last_weekday(*ym)
    if (gap < 5 and last_row < bme) or (5 <= gap < 28 and last_row + dt.timedelta(days=7) <= bme):
        ym = (ym[0] - 1, 12) if ym[1] == 1 else (ym[0], ym[1] - 1)
    return ym


def test_real_panel_range(panel, specs, fred_dir: Path) -> None:
    ends = [_last_complete_month(fred_dir / f"{s.fred_id}.csv") for s in specs if not s.optional]
    assert panel.start == "2003-01"
    assert panel.end == "%04d-%02d" % min(ends) == "2026-07"
    obs = panel.observations
    assert obs.dims == ("date", "series") and obs.dtype == np.float64
    assert str(obs["date"].dtype) == "datetime64[ns]"
    dates = pd.DatetimeIndex(obs["date"].values)
    assert (dates.day == 1).all() and dates.size == 283
    assert list(obs["series"].values) == [s.name for s in specs]
    assert panel.missing_mask.dtype == bool and panel.missing_mask.shape == obs.shape
    # levels: own date axis with LEVEL_HISTORY_MONTHS (24) months of history before start
    lv = panel.levels
    assert lv.dims == ("date", "series")
    assert pd.Timestamp(lv["date"].values[0]) == pd.Timestamp("2001-01-01")
    assert pd.Timestamp(lv["date"].values[-1]) == dates[-1]


def test_real_incomplete_august_dropped(panel) -> None:
    p = panel.provenance
    for name in ("y10", "equity", "gold", "vix", "balance_sheet"):
        assert p[name].dropped_month == "2026-08"
    assert p["fedfunds"].dropped_month is None and p["inflation"].dropped_month is None


def test_real_cpi_gap(panel, fred_dir: Path) -> None:
    infl = panel.observations.sel(series="inflation").to_series()
    assert math.isnan(infl["2025-10-01"])
    assert panel.missing_mask.sel(series="inflation", date="2025-10-01")
    assert panel.provenance["inflation"].missing_months == ("2025-10",)
    cpi = dict(_rows(fred_dir / "CPIAUCSL.csv"))
    nov = 100 * (cpi[dt.date(2025, 11, 1)] / cpi[dt.date(2024, 11, 1)] - 1)
    assert infl["2025-11-01"] == pytest.approx(nov, rel=1e-12)
    assert math.isnan(panel.levels.sel(series="inflation", date="2025-10-01"))


def _month_values(path: Path, year: int, month: int) -> list[float]:
    return [v for d, v in _rows(path) if (d.year, d.month) == (year, month) and v is not None]


def test_real_dgs10_month_end(panel, fred_dir: Path) -> None:
    mar = _month_values(fred_dir / "DGS10.csv", 2020, 3)[-1]
    feb = _month_values(fred_dir / "DGS10.csv", 2020, 2)[-1]
    assert panel.levels.sel(series="y10", date="2020-03-01") == mar
    assert float(panel.observations.sel(series="y10", date="2020-03-01")) == pytest.approx(mar - feb)


def test_real_nasdaq_log_return(panel, fred_dir: Path) -> None:
    oct_end = _month_values(fred_dir / "NASDAQCOM.csv", 2008, 10)[-1]
    sep_end = _month_values(fred_dir / "NASDAQCOM.csv", 2008, 9)[-1]
    got = float(panel.observations.sel(series="equity", date="2008-10-01"))
    assert got == pytest.approx(100 * math.log(oct_end / sep_end), rel=1e-12)
    assert got < -15


def test_real_fedfunds_mean_and_vix_log(panel, fred_dir: Path) -> None:
    ff = dict(_rows(fred_dir / "FEDFUNDS.csv"))
    got = float(panel.observations.sel(series="fedfunds", date="2022-11-01"))
    assert got == pytest.approx(ff[dt.date(2022, 11, 1)] - ff[dt.date(2022, 10, 1)])
    vix = _month_values(fred_dir / "VIXCLS.csv", 2008, 10)[-1]
    assert float(panel.observations.sel(series="vix", date="2008-10-01")) == pytest.approx(
        math.log(vix))


def test_real_walcl_growth_signs(panel) -> None:
    bs = panel.observations.sel(series="balance_sheet").to_series()
    assert bs["2008-11-01"] > 0 and bs["2020-04-01"] > 0
    y2023 = bs["2023-01-01":"2023-12-01"]
    assert y2023.sum() < 0
    # March 2023: the SVB lending spike, mid-month, so the monthly mean carries it into April too
    assert (y2023.drop([pd.Timestamp("2023-03-01"), pd.Timestamp("2023-04-01")]) < 0).all()


def test_real_liquidity_optional(panel, fred_dir: Path) -> None:
    liq = panel.observations.sel(series="liquidity").to_series()
    assert liq[:"2021-06-01"].isna().all() and liq["2021-07-01":].notna().all()
    sofr = _month_values(fred_dir / "SOFR.csv", 2024, 5)
    iorb = _month_values(fred_dir / "IORB.csv", 2024, 5)
    assert liq["2024-05-01"] == pytest.approx(np.mean(sofr) - np.mean(iorb), abs=1e-12)
    prov = panel.provenance["liquidity"]
    assert prov.minus is not None and prov.minus.fred_id == "IORB"
    assert prov.missing_months[0] == "2003-01" and prov.missing_months[-1] == "2021-06"


def test_real_provenance(panel, specs, fred_dir: Path) -> None:
    for s in specs:
        p = panel.provenance[s.name]
        path = fred_dir / f"{s.fred_id}.csv"
        assert p.file == str(path)
        assert p.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        rows = _rows(path)
        assert p.n_obs == sum(v is not None for _, v in rows)
        assert p.first == min(d for d, v in rows if v is not None).isoformat()
        assert p.last == max(d for d, v in rows if v is not None).isoformat()


def test_real_to_dataset_and_summary(panel) -> None:
    ds = panel.to_dataset()
    assert set(ds.data_vars) == {"observations", "levels"}
    assert ds["levels"].dims == ("level_date", "series")
    prov = json.loads(ds.attrs["provenance"])
    assert prov["inflation"]["missing_months"] == ["2025-10"]
    assert ds.attrs["start"] == "2003-01" and ds.attrs["end"] == "2026-07"
    assert [s["name"] for s in json.loads(ds.attrs["specs"])][0] == "y10"
    rows = {r["name"]: r for r in panel.summary_rows()}
    assert rows["inflation"]["n_missing"] == 1 and rows["inflation"]["n_months"] == 282
    assert rows["liquidity"]["fred_id"] == "SOFR-IORB"
    assert rows["y10"]["first"] == "1962-01-02" and rows["y10"]["n_months"] == 283


def test_real_end_truncation(specs, model, fred_dir: Path) -> None:
    sample = parse_sample("m", model["sample"])
    p = build_panel(specs, sample, fred_dir, end="2020-12", today=TODAY)
    assert (p.start, p.end, p.observations.sizes["date"]) == ("2003-01", "2020-12", 216)
    with pytest.raises(DataError, match="after the common end 2026-07"):
        build_panel(specs, sample, fred_dir, end="2026-09", today=TODAY)
    with pytest.raises(ConfigError, match="end"):
        build_panel(specs, sample, fred_dir, end="2020-1", today=TODAY)


def test_real_start_before_walcl(specs, fred_dir: Path) -> None:
    with pytest.raises(DataError) as info:
        build_panel(specs, SampleSpec("2002-12", 120, 2), fred_dir, today=TODAY)
    msg = str(info.value)
    assert "WALCL.csv" in msg and "'2002-12-18'" in msg and "2003-01" in msg


# ---------------------------------------------------------------- synthetic files

def _spec(name: str, fred_id: str, **kw) -> SeriesSpec:
    base = dict(name=name, fred_id=fred_id, label=name, role="observed", aggregation="last",
                transform="log_diff_pct", kind="price", source="fred", units_raw="u",
                units="u", asset=False)
    return SeriesSpec(**{**base, **kw})


def _write(path: Path, sid: str, dates, values) -> Path:
    f = path / f"{sid}.csv"
    f.write_text(f"observation_date,{sid}\n" + "".join(
        f"{pd.Timestamp(d):%Y-%m-%d},{'' if v is None or v != v else v}\n"
        for d, v in zip(dates, values)))
    return f


def _daily(path: Path, sid: str, start: str, end: str, freq: str = "B") -> Path:
    days = pd.date_range(start, end, freq=freq)
    return _write(path, sid, days, np.round(100 * np.exp(0.001 * np.arange(days.size)), 6))


def _monthly(path: Path, sid: str, start: str, end: str, gap: str | None = None) -> Path:
    months = pd.date_range(start, end, freq="MS")
    vals = [None if gap and f"{m:%Y-%m}" == gap else 2.0 + 0.01 * i for i, m in enumerate(months)]
    return _write(path, sid, months, vals)


SAMPLE = SampleSpec("2019-03", 12, 2)
DAILY = _spec("a", "AAA")
MONTHLY = _spec("m", "MMM", aggregation="mean", transform="diff", kind="percent_rate")


def _listing(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_synthetic_aggregation_and_trailing_month(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", "2021-06-15")
    _monthly(tmp_path, "MMM", "2019-01-01", "2021-06-01")
    p = build_panel([DAILY, MONTHLY], SAMPLE, tmp_path, today=TODAY)
    assert (p.start, p.end) == ("2019-03", "2021-05")
    assert p.provenance["a"].dropped_month == "2021-06"
    assert p.provenance["m"].dropped_month is None
    raw = pd.read_csv(tmp_path / "AAA.csv", index_col=0, parse_dates=True).iloc[:, 0]
    last = raw.groupby(raw.index.to_period("M")).last()
    assert float(p.levels.sel(series="a", date="2020-02-01")) == last[pd.Period("2020-02")]
    want = 100 * np.log(last[pd.Period("2020-02")] / last[pd.Period("2020-01")])
    assert float(p.observations.sel(series="a", date="2020-02-01")) == pytest.approx(want)


@pytest.mark.parametrize(("end", "freq", "dropped"), [
    ("2021-06-30", "B", None), ("2021-06-29", "B", "2021-06"),
    ("2021-06-30", "W-WED", None), ("2021-06-23", "W-WED", "2021-06"),
    ("2021-07-28", "W-WED", None)])  # July 2021 ends on Saturday: last business day Fri 30
def test_synthetic_incomplete_month_rule(tmp_path: Path, end: str, freq: str, dropped) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", end, freq)
    _monthly(tmp_path, "MMM", "2019-01-01", "2021-07-01")
    p = build_panel([DAILY, MONTHLY], SAMPLE, tmp_path, today=TODAY)
    assert p.provenance["a"].dropped_month == dropped


def test_synthetic_monthly_gap_stays_nan(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2018-01-01", "2021-06-30")
    _monthly(tmp_path, "MMM", "2018-01-01", "2021-06-01", gap="2020-05")
    yoy = replace(MONTHLY, transform="yoy_pct", kind="price")
    p = build_panel([DAILY, yoy], SAMPLE, tmp_path, today=TODAY)
    obs = p.observations.sel(series="m").to_series()
    assert math.isnan(obs["2020-05-01"]) and math.isnan(obs["2021-05-01"])
    assert obs["2020-06-01"] == pytest.approx(100 * ((2.0 + 0.29) / (2.0 + 0.17) - 1))
    assert p.provenance["m"].missing_months == ("2020-05", "2021-05")
    assert p.end == "2021-06"


def test_synthetic_minus(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", "2021-06-30")
    _monthly(tmp_path, "MMM", "2019-01-01", "2021-06-01")
    _monthly(tmp_path, "SUB", "2020-01-01", "2021-06-01")
    spread = _spec("s", "MMM", minus="SUB", transform="level", kind="percent_rate",
                   aggregation="mean", optional=True)
    p = build_panel([DAILY, spread], SAMPLE, tmp_path, today=TODAY)
    s = p.observations.sel(series="s").to_series()
    assert s[:"2019-12-01"].isna().all()
    assert s["2020-01-01"] == pytest.approx((2.0 + 0.12) - 2.0)
    assert p.provenance["s"].minus.fred_id == "SUB"


def test_synthetic_optional_file_missing(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", "2021-06-30")
    opt = _spec("o", "OOO", optional=True)
    p = build_panel([DAILY, opt], SAMPLE, tmp_path, today=TODAY)
    assert p.observations.sel(series="o").isnull().all()
    assert p.provenance["o"].sha256 is None


def test_error_required_series_missing(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", "2021-06-30")
    before = _listing(tmp_path)
    with pytest.raises(DataError) as info:
        build_panel([DAILY, MONTHLY], SAMPLE, tmp_path, today=TODAY)
    assert str(tmp_path / "MMM.csv") in str(info.value) and "'m'" in str(info.value)
    gold = _spec("g", "GOLDX", source="file")
    with pytest.raises(DataError, match="source is 'file': place the file"):
        build_panel([DAILY, gold], SAMPLE, tmp_path, today=TODAY)
    assert _listing(tmp_path) == before


def test_error_stale_series(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", "2021-06-30")
    _monthly(tmp_path, "MMM", "2019-01-01", "2021-03-01")
    before = _listing(tmp_path)
    with pytest.raises(DataError) as info:
        build_panel([DAILY, MONTHLY], SAMPLE, tmp_path, today=TODAY)
    msg = str(info.value)
    assert str(tmp_path / "MMM.csv") in msg and "'2021-03-01'" in msg
    assert "AAA" in msg and "2021-06" in msg and "2021-06-30" in msg and "max_lag_months = 2" in msg
    p = build_panel([DAILY, MONTHLY], replace(SAMPLE, max_lag_months=3), tmp_path, today=TODAY)
    assert p.end == "2021-03"
    assert _listing(tmp_path) == before


def test_error_sample_too_short(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", "2021-06-30")
    _monthly(tmp_path, "MMM", "2019-01-01", "2021-06-01")
    with pytest.raises(DataError) as info:
        build_panel([DAILY, MONTHLY], replace(SAMPLE, min_months=40), tmp_path, today=TODAY)
    msg = str(info.value)
    assert "28 months" in msg and "min_months = 40" in msg and "'2019-03..2021-06'" in msg


def test_error_start_before_first_transformable_month(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-03-04", "2021-06-30")
    _monthly(tmp_path, "MMM", "2019-01-01", "2021-06-01")
    with pytest.raises(DataError) as info:
        build_panel([DAILY, MONTHLY], SAMPLE, tmp_path, today=TODAY)
    msg = str(info.value)
    assert str(tmp_path / "AAA.csv") in msg and "'2019-03-04'" in msg and "2019-04" in msg


def test_error_csv_problem_propagates(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", "2021-06-30")
    f = _monthly(tmp_path, "MMM", "2019-01-01", "2021-06-01")
    f.write_text(f.read_text().replace("2020-02-01,2.13", "2020-02-01,0.0.1"))
    with pytest.raises(DataError) as info:
        build_panel([DAILY, MONTHLY], SAMPLE, tmp_path, today=TODAY)
    assert info.value.line == 15 and "'0.0.1'" in str(info.value)


def test_error_non_positive_after_minus(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", "2021-06-30")
    _daily(tmp_path, "BBB", "2019-01-01", "2021-06-30")
    diff = _spec("d", "AAA", minus="BBB")
    with pytest.raises(DataError, match="not positive"):
        build_panel([diff], SAMPLE, tmp_path, today=TODAY)


def test_error_required_series_without_values(tmp_path: Path) -> None:
    _daily(tmp_path, "AAA", "2019-01-01", "2021-06-30")
    _write(tmp_path, "MMM", pd.date_range("2019-01-01", "2021-06-01", freq="MS"), [None] * 30)
    with pytest.raises(DataError) as info:
        build_panel([DAILY, MONTHLY], SAMPLE, tmp_path, today=TODAY)
    assert str(tmp_path / "MMM.csv") in str(info.value) and "no transformable values" in str(info.value)
