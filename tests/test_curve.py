"""The fed funds path the Treasury curve prices (regimecast.data.curve) against the model's window
averages (regimecast.report.forecast_market), and its section of the forecast report."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from regimecast.data.curve import (CURVE_SERIES, WINDOWS, MarketPath, continuous_rate, fed_funds_equivalent,
                                   forward_rates, market_path)
from regimecast.errors import DataError
from regimecast.report import forecast as report
from regimecast.report.forecast import write_report
from regimecast.report.forecast_market import (HEADING, SOURCE_HORIZON, SOURCE_PATHS, market_block, model_windows,
                                               model_windows_from_quantiles, window_average, window_sentence)
from regimecast.report.render import ReportError
from regimecast.simulate.summaries import QUANTILES
from test_report import N_FIGURES, make_content

ORIGIN = "2024-05"             # a synthetic origin month; its last business day is 2024-05-31
REAL_ORIGIN = "2026-05"        # the last month all four real files cover to its end
REAL_LAST_DAY = "2026-05-29"


def _write_series(d: Path, sid: str, value: float, end: str = "2024-06-28", start: str = "2024-03-01") -> None:
    days = pd.bdate_range(start, end)
    lines = [f"observation_date,{sid}"] + [f"{t:%Y-%m-%d},{value}" for t in days]
    (d / f"{sid}.csv").write_text("\n".join(lines) + "\n")


def _curve_dir(tmp_path: Path, yields=(4.0, 4.2, 4.4, 4.6), skip: str | None = None, **ends) -> Path:
    for (sid, _), y in zip(CURVE_SERIES, yields):
        if sid != skip:
            _write_series(tmp_path, sid, y, **({"end": ends[sid]} if sid in ends else {}))
    return tmp_path


# --- conventions and forward arithmetic ---------------------------------------------------

def test_bond_equivalent_to_continuous_and_fed_funds_conventions():
    # semiannual compounding from a half-year on: 2 ln(1 + 0.04/2); simple interest below: ln(1 + 0.04/4) / (1/4)
    assert continuous_rate(4.0, 6) == pytest.approx(3.960525459, abs=1e-8)
    assert continuous_rate(4.0, 24) == pytest.approx(3.960525459, abs=1e-8)
    assert continuous_rate(4.0, 3) == pytest.approx(3.980132341, abs=1e-8)
    # 4% continuously compounded = 360 (exp(0.04/365) - 1) overnight on actual/360
    assert fed_funds_equivalent(4.0) == pytest.approx(3.945421663, abs=1e-8)
    assert fed_funds_equivalent(0.0) == 0.0


def _rates(values, maturities=(3, 6, 12, 24)) -> xr.DataArray:
    return xr.DataArray(list(values), dims=("maturity",), coords={"maturity": list(maturities)})


def test_flat_curve_forwards_equal_the_rate():
    fwd = forward_rates(_rates([4.0] * 4))
    assert list(fwd["window"].values) == ["0-3", "3-6", "6-12", "12-24"]
    np.testing.assert_allclose(fwd.values, 4.0, atol=1e-12)


def test_upward_curve_forwards_lie_above_the_spot():
    rates = _rates([3.0, 3.5, 4.0, 4.5])
    fwd = forward_rates(rates)
    assert float(fwd.sel(window="0-3")) == pytest.approx(3.0)
    for w in fwd["window"].values[1:]:     # above the spot rate to the window's end, and rising
        assert float(fwd.sel(window=w)) > float(rates.sel(maturity=int(fwd["end"].sel(window=w))))
    assert np.all(np.diff(fwd.values) > 0)
    # (r2 t2 - r1 t1) / (t2 - t1): 12-24 = (4.5 x 2 - 4.0 x 1) / 1
    assert float(fwd.sel(window="12-24")) == pytest.approx(5.0)


def test_two_point_example_exact():
    fwd = forward_rates(_rates([4.0, 5.0], (3, 6)), windows=((0, 3), (3, 6)))
    assert fwd.values.tolist() == pytest.approx([4.0, 6.0])     # (5 x 0.5 - 4 x 0.25) / 0.25
    # from bond-equivalent yields 4% (3 months, simple) and 5% (6 months): the 3-6 month forward
    # grows 1.025 / 1.01 over a quarter: 4 ln(1.025 / 1.01) = 5.8969% continuous, 5.8166% as fed funds
    r = _rates(continuous_rate([4.0, 5.0], [3, 6]), (3, 6))
    f = forward_rates(r, windows=((3, 6),))
    assert float(f[0]) == pytest.approx(400 * math.log(1.025 / 1.01), abs=1e-10)
    assert float(fed_funds_equivalent(f[0])) == pytest.approx(5.816602919, abs=1e-8)


# --- reading the curve ------------------------------------------------------------------------

def test_market_path_from_files(tmp_path):
    mp, reason = market_path(_curve_dir(tmp_path), ORIGIN)
    assert reason is None and isinstance(mp, MarketPath)
    assert mp.yields.values.tolist() == [4.0, 4.2, 4.4, 4.6]
    assert [f"{t:%Y-%m-%d}" for t in pd.DatetimeIndex(mp.yields["date"].values)] == ["2024-05-31"] * 4
    cont = continuous_rate([4.0, 4.2, 4.4, 4.6], [3, 6, 12, 24])
    expected = fed_funds_equivalent(forward_rates(_rates(cont)).values)
    np.testing.assert_allclose(mp.forward.values, expected, rtol=1e-12)
    assert mp.forward.dims == ("window",) and mp.forward["end"].values.tolist() == [3, 6, 12, 24]


def test_missing_series_gives_none_with_a_reason(tmp_path):
    mp, reason = market_path(_curve_dir(tmp_path, skip="DGS6MO"), ORIGIN)
    assert mp is None and "DGS6MO.csv" in reason and "absent" in reason


def test_no_value_or_incomplete_origin_month_gives_none(tmp_path):
    mp, reason = market_path(_curve_dir(tmp_path, DGS1="2024-04-30"), ORIGIN)
    assert mp is None and "DGS1.csv has no value in 2024-05" in reason and "2024-04-30" in reason
    mp, reason = market_path(_curve_dir(tmp_path, DGS1="2024-05-24"), ORIGIN)
    assert mp is None and "DGS1.csv ends on 2024-05-24" in reason and "incomplete" in reason


def test_malformed_file_is_a_clear_error(tmp_path):
    d = _curve_dir(tmp_path)
    path = d / "DGS2.csv"
    path.write_text(path.read_text().replace("2024-05-15,4.6", "2024-05-15,4..6"))
    with pytest.raises(DataError) as err:
        market_path(d, ORIGIN)
    assert err.value.field == "DGS2" and err.value.value == "4..6" and "DGS2.csv" in str(err.value)


def _last_in_month(path: Path, month: str) -> tuple[str, float]:
    with path.open() as f:
        rows = [r for r in csv.reader(f) if r[0].startswith(month) and r[1] not in ("", ".")]
    return rows[-1][0], float(rows[-1][1])


def test_real_curve_at_a_known_month(fred_dir):
    mp, reason = market_path(fred_dir, REAL_ORIGIN)
    assert reason is None, reason
    print({str(w): round(float(v), 3) for w, v in zip(mp.forward["window"].values, mp.forward.values)})
    assert np.all((mp.forward.values > 0) & (mp.forward.values < 10))
    day, y3 = _last_in_month(fred_dir / "DGS3MO.csv", REAL_ORIGIN)
    assert day == REAL_LAST_DAY
    assert float(mp.forward.sel(window="0-3")) == pytest.approx(float(fed_funds_equivalent(continuous_rate(y3, 3))))


# --- the model's window averages ----------------------------------------------------------------

def _paths(seed: int = 7, horizon: int = 24) -> xr.DataArray:
    x = np.random.default_rng(seed).normal(4.0, 0.5, (3, 5, horizon))
    return xr.DataArray(x, dims=("draw", "path", "horizon"), coords={"horizon": np.arange(1, horizon + 1)})


def test_window_average_and_statistics_match_numpy():
    p = _paths()
    avg = window_average(p)
    stats = model_windows(p)
    for a, b in WINDOWS:
        hand = p.values[..., a:b].mean(-1)               # horizons a+1..b are columns a..b-1
        np.testing.assert_allclose(avg.sel(window=f"{a}-{b}").values, hand, rtol=1e-12)
        s = stats[f"{a}-{b}"]
        assert s["mean"] == pytest.approx(hand.mean())
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            assert s["quantiles"][f"{q:g}"] == pytest.approx(np.quantile(hand.ravel(), q))
    assert list(window_average(_paths(horizon=8))["window"].values) == ["0-3", "3-6"]   # 6-12 needs 12 months


def test_fallback_averages_the_per_horizon_quantiles():
    rng = np.random.default_rng(3)
    q = xr.DataArray(np.sort(rng.normal(4, 1, (24, len(QUANTILES))), axis=1), dims=("horizon", "quantile"),
                     coords={"horizon": np.arange(1, 25), "quantile": list(QUANTILES)})
    stats = model_windows_from_quantiles(q)
    med = q.sel(quantile=0.5).values
    assert stats["6-12"]["quantiles"]["0.5"] == pytest.approx(med[6:12].mean())
    assert stats["6-12"]["mean"] is None
    assert market_block(ORIGIN, None, "x", stats, SOURCE_HORIZON)["difference_of"] == "median"


# --- the comparison and its words -------------------------------------------------------------

def _market(forwards=(3.6, 3.5, 3.3, 3.2)) -> MarketPath:
    labels = [f"{a}-{b}" for a, b in WINDOWS]
    fwd = xr.DataArray(list(forwards), dims=("window",), coords={"window": labels})
    ylds = xr.DataArray([3.7, 3.6, 3.5, 3.4], dims=("maturity",),
                        coords={"maturity": [3, 6, 12, 24], "series": ("maturity", [s for s, _ in CURVE_SERIES]),
                                "date": ("maturity", pd.DatetimeIndex(["2024-05-31"] * 4))})
    return MarketPath(ORIGIN, ylds, fwd)


def test_block_differences_in_basis_points():
    stats = model_windows(_paths())
    block = market_block(ORIGIN, _market(), None, stats, SOURCE_PATHS)
    w = block["windows"][3]
    assert w["window"] == "12-24" and w["market"] == 3.2
    assert w["difference_bp"] == pytest.approx((stats["12-24"]["mean"] - 3.2) * 100)
    assert block["yields"]["DGS2"] == {"maturity_months": 24, "percent": 3.4, "date": "2024-05-31"}


@pytest.mark.parametrize(("bp", "sentence"), [
    (-45.0, "Over 12-24 months the model expects 0.45 pp lower rates than the curve prices: more cuts."),
    (30.0, "Over 12-24 months the model expects 0.30 pp higher rates than the curve prices: more hikes."),
    (4.0, "Over 12-24 months the model expects about what the curve prices (within 10 bp)."),
    (None, "")])
def test_window_sentence(bp, sentence):
    assert window_sentence({"window": "12-24", "difference_bp": bp}) == sentence


def test_workflow_uses_stored_paths_else_the_summary(tmp_path, repo_root):
    from regimecast.config.model_file import load_model_config
    from regimecast.workflows.run import FORECAST, market_comparison

    config = load_model_config(repo_root / "models" / "default.toml")
    p = _paths()
    series = list(config.observed)
    full = np.stack([p.values + i for i in range(len(series))], axis=-1)     # fedfunds gets its own offset
    xr.Dataset({"paths": (("draw", "path", "horizon", "series"), full)},
               coords={"horizon": p["horizon"].values, "series": series}).to_netcdf(tmp_path / FORECAST,
                                                                                      engine="h5netcdf")
    q = xr.DataArray(np.zeros((len(series), 24, len(QUANTILES))), dims=("series", "horizon", "quantile"),
                     coords={"series": series, "horizon": np.arange(1, 25), "quantile": list(QUANTILES)})
    summary = xr.Dataset({"quantiles": q})
    (tmp_path / "data").mkdir()
    data = _curve_dir(tmp_path / "data")
    stored = SimpleNamespace(manifest={"files": {FORECAST: "sha"}, "forecast": {"stored_paths": True}})
    block = market_comparison(tmp_path, stored, summary, config, data, ORIGIN)
    offset = series.index("fedfunds")
    assert block["model_source"] == SOURCE_PATHS and block["reason"] is None
    assert block["windows"][0]["model_mean"] == pytest.approx(p.values[..., :3].mean() + offset)
    # a later --summary-only forecast leaves the earlier forecast.nc listed: its paths are not this forecast's
    stale = SimpleNamespace(manifest={"files": {FORECAST: "sha"}, "forecast": {"stored_paths": False}})
    summary_only = market_comparison(tmp_path, stale, summary, config, data, ORIGIN)
    assert summary_only["model_source"] == SOURCE_HORIZON and summary_only["windows"][0]["model_quantiles"]["0.5"] == 0


# --- the report section --------------------------------------------------------------------------

def _content_with(block: dict):
    content = make_content()
    return replace(content, summary={**content.summary, "market_path": block})


def test_report_has_the_section(tmp_path):
    block = market_block(ORIGIN, _market(), None, model_windows(_paths()), SOURCE_PATHS)
    out = write_report(tmp_path / "r", _content_with(block))
    page = (out / "index.html").read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings[1:4] == ["Fed policy state by horizon", HEADING, "Asset forecasts"]
    table = re.search(r'<table id="market">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)
    assert len(rows) == len(WINDOWS)
    d = block["windows"][3]["difference_bp"]
    assert "<td>12-24</td><td class=\"num\">3.20</td>" in rows[3] and f"{d:+.0f}</td>" in rows[3]
    assert f"Over 12-24 months the model expects {abs(d) / 100:.2f} pp higher rates than the curve prices: " \
           "more hikes." in page
    assert "not its expectation" in page
    assert page.count("<img ") == N_FIGURES + 1
    md = (out / "report.md").read_text()
    assert f"## {HEADING}" in md and "| 12-24 | 3.20 |" in md
    assert json.loads((out / "summary.json").read_text())["market_path"]["windows"][3]["market"] == 3.2


def test_report_says_when_the_market_path_is_unavailable(tmp_path):
    block = market_block(ORIGIN, None, "/data/DGS6MO.csv is absent", model_windows(_paths()), SOURCE_PATHS)
    page = report.render_html(_content_with(block))
    assert "Market path unavailable: /data/DGS6MO.csv is absent." in page
    assert "n/a" in re.search(r'<table id="market">(.*?)</table>', page, re.S).group(1)
    with pytest.raises(ReportError, match=r"summary\.market_path.*windows"):
        report.render_html(_content_with({k: v for k, v in block.items() if k != "windows"}))


def test_report_of_a_real_forecast_compares_with_the_curve(tiny_fit, workspace):
    """The whole chain on a tiny real fit to 2013-12: the report's block holds the real curve's
    forwards at 2013-12 and the window averages of the stored fed funds paths."""
    from regimecast import api
    from regimecast.simulate.forecast import ForecastSettings

    path, _ = api.forecast(workspace, tiny_fit[0], ForecastSettings(seed=3, horizon=24, paths=10, max_draws=10))
    block = json.loads((api.report(workspace, path) / "summary.json").read_text())["market_path"]
    assert block["origin"] == "2013-12" and block["reason"] is None and block["model_source"] == SOURCE_PATHS
    assert all(y["date"] == "2013-12-31" for y in block["yields"].values())
    ff = xr.load_dataset(path / "forecast.nc", engine="h5netcdf")["paths"].sel(series="fedfunds").values
    w = block["windows"][2]
    assert w["model_mean"] == pytest.approx(ff[..., 6:12].mean(), rel=1e-5)
    assert 0 < w["market"] < 10 and w["difference_bp"] == pytest.approx((w["model_mean"] - w["market"]) * 100, abs=0.01)
