"""Forecast and report from a real (tiny) fit: files in the run, manifest verification,
seed determinism, coherence of the probabilities, the report's three files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from regimecast import api
from regimecast.errors import RunError
from regimecast.simulate.forecast import ForecastSettings
from regimecast.store.runs import load_run, seal

SETTINGS = ForecastSettings(seed=5, horizon=24, paths=40, max_draws=20, chunk=8)
EXCLUSIVE = ("soft_landing_cut_qt", "tech_correction_no_qe", "bubble_burst_then_qe")


@pytest.fixture(scope="module")
def forecast_run(tiny_fit, workspace):
    path, summary = api.forecast(workspace, tiny_fit[0], SETTINGS)
    return path, summary


def test_forecast_files_are_in_the_verified_run(forecast_run):
    path, _ = forecast_run
    run = load_run(path)
    assert {"forecast.nc", "forecast_summary.nc"} <= set(run.manifest["files"])
    assert run.manifest["forecast"]["settings"]["paths"] == 40
    ds = xr.load_dataset(path / "forecast.nc", engine="h5netcdf")
    assert ds["paths"].dims == ("draw", "path", "horizon", "series")
    assert ds.sizes["draw"] == 20 and ds.sizes["path"] == 40 and ds.sizes["horizon"] == 24
    assert str(ds["date"].values[0])[:7] == "2014-01"                     # the month after the fit's end
    assert list(ds["factor"].values) == ["policy", "ai", "backlash"]
    assert np.all(np.isfinite(ds["paths"].values))
    assert np.all(ds["paths"].sel(series=["equity", "gold", "vix"]).values > 0)


def test_probabilities_are_coherent(forecast_run):
    _, summary = forecast_run
    pol = summary["policy_prob"]
    np.testing.assert_allclose(pol.sum("policy").values, 1.0, atol=1e-12)
    exclusive = summary["scenario_prob"].sel(scenario=list(EXCLUSIVE)).sum("scenario")
    assert float(exclusive.max()) <= 1.0 + 1e-12
    qe = summary["scenario_prob"].sel(scenario=["qe_restart_6m", "qe_restart_12m", "qe_restart_24m"]).values
    assert np.all(np.diff(qe, axis=1) >= 0)                               # "ever within h" grows with h
    dd = summary["scenario_prob"].sel(scenario=["equity_drawdown_20", "equity_drawdown_10"]).values
    assert np.all(dd[:, 0] <= dd[:, 1])


def test_summary_quantiles_match_the_stored_paths(forecast_run):
    """Histogram quantiles (summary mode) against exact quantiles of the stored paths, within
    the histogram's resolution."""
    path, summary = forecast_run
    ds = xr.load_dataset(path / "forecast.nc", engine="h5netcdf")
    for s in ("y10", "equity"):
        for h in (1, 12, 24):
            x = ds["paths"].sel(series=s, horizon=h).values.ravel().astype(float)
            for q in (0.1, 0.5, 0.9):
                exact = np.quantile(x, q)
                got = float(summary["quantiles"].sel(series=s, horizon=h, quantile=q))
                assert got == pytest.approx(exact, abs=0.01 * (x.max() - x.min()))


def test_same_seed_same_forecast_and_summary_only_mode(tiny_fit, workspace, forecast_run):
    _, again = api.forecast(workspace, tiny_fit[0], SETTINGS, store=False)
    xr.testing.assert_identical(again["scenario_prob"], forecast_run[1]["scenario_prob"])
    xr.testing.assert_identical(again["quantiles"], forecast_run[1]["quantiles"])
    assert not load_run(tiny_fit[0]).manifest["forecast"]["stored_paths"]


def test_report_from_the_forecast(forecast_run, workspace):
    out = api.report(workspace, forecast_run[0])
    assert {"index.html", "report.md", "summary.json"} <= {p.name for p in out.iterdir()}   # diagnose may add its page
    s = json.loads((out / "summary.json").read_text())
    assert s["run_id"] == forecast_run[0].name and s["data_end"] == "2013-12" and s["horizon_months"] == 24
    for name in EXCLUSIVE:
        sc = s["scenarios"][name]
        assert 0 <= sc["lo"] <= sc["mean"] <= sc["hi"] <= 1 and sc["mcse"] >= 0
    assert abs(sum(s["policy"]["12"].values()) - 1) < 1e-4
    assert set(s["quantiles"]) >= {"y10", "equity", "gold", "vix"}
    assert s["diagnostics"]["trusted"] is False                         # tiny settings never pass
    assert "DO NOT TRUST" in (out / "index.html").read_text()


def test_report_without_forecast_is_refused(tiny_fit, workspace, tmp_path):
    import shutil

    bare = workspace.runs / ("x" + tiny_fit[0].name[1:])
    shutil.copytree(tiny_fit[0], bare)
    m = json.loads((bare / "manifest.json").read_text())
    m["run_id"] = bare.name
    m["files"] = {"idata.nc": m["files"]["idata.nc"]}
    m.pop("forecast", None)
    (bare / "manifest.json").write_text(json.dumps(m))
    seal(bare)                                  # an edited manifest is refused until sealed again
    with pytest.raises(RunError, match="no forecast yet"):
        api.report(workspace, bare)
