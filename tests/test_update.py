"""``regimecast update``: new months, revision detection, warm start, and the update end to end
on the real data (tiny sampler settings: plumbing, not convergence)."""

from __future__ import annotations

import json
import shutil

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from regimecast.errors import RunError
from regimecast.fit.update import find_revisions, warm_start

from conftest import END


def _obs(values, months=("2020-01", "2020-02", "2020-03", "2020-04")):
    dates = pd.DatetimeIndex([pd.Period(m, "M").to_timestamp() for m in months])
    return xr.DataArray(np.asarray(values, float), dims=("date", "series"),
                        coords={"date": dates, "series": ["a", "b"]})


def test_revisions_beyond_tolerance_only():
    old = _obs([[0.0, 1.0], [1.0, np.nan], [2.0, 3.0], [3.0, 4.0]])      # sd of a: 1.29
    new = _obs([[0.05, 1.0], [1.0, 2.0], [2.5, 3.0], [3.0, np.nan]])
    revs = find_revisions(old, new, tolerance_sd=0.1)
    tol_a = 0.1 * float(np.std([0, 1, 2, 3], ddof=0))
    # a 2020-01: +0.05 < tol (0.11) ignored; a 2020-03: +0.5 revised; b 2020-02: newly published, not a
    # revision; b 2020-04: removed, a revision
    assert [(r.series, r.month) for r in revs] == [("a", "2020-03"), ("b", "2020-04")]
    assert revs[0].old == 2.0 and revs[0].new == 2.5 and revs[0].tolerance == pytest.approx(tol_a)
    assert np.isnan(revs[1].new)
    assert find_revisions(old, old, tolerance_sd=0.0) == []


def test_warm_start_takes_the_highest_density_draw():
    post = xr.Dataset({"x": (("chain", "draw", "k"), np.arange(24.0).reshape(2, 4, 3))})
    lp = np.array([[0.0, 5.0, 1.0, 2.0], [3.0, 4.0, 9.0, 1.0]])
    idata = az.InferenceData(posterior=post, sample_stats=xr.Dataset({"lp": (("chain", "draw"), lp)}))
    point, source = warm_start(idata, ["x"])
    assert source == {"chain": 1, "draw": 2, "by": "lp"}
    np.testing.assert_array_equal(point["x"], post["x"].values[1, 2])


def test_revised_history_is_refused_naming_series_and_month(workspace, tiny_fit, fred_dir, tmp_path):
    from regimecast import api

    ddir = tmp_path / "fred"
    shutil.copytree(fred_dir, ddir)
    ff = pd.read_csv(ddir / "FEDFUNDS.csv")
    ff.loc[ff["observation_date"] == "2010-05-01", "FEDFUNDS"] += 0.5                 # a rewritten month
    ff.to_csv(ddir / "FEDFUNDS.csv", index=False)
    with pytest.raises(RunError) as exc:
        api.update(workspace, tiny_fit[0], data_dir=ddir, end="2014-03", progressbar=False)
    msg = str(exc.value)
    assert "fedfunds 2010-05" in msg and "fedfunds 2010-06" in msg and "--accept-revisions" in msg


def test_update_writes_child_run_and_report(workspace, tiny_fit, fred_dir):
    from regimecast import api
    from regimecast.simulate.forecast import ForecastSettings
    from regimecast.fit.posterior import posterior_draws
    from regimecast.store.runs import load_run

    fs = ForecastSettings(seed=3, horizon=24, paths=10, max_draws=20)
    path, content = api.update(workspace, tiny_fit[0], data_dir=fred_dir, end="2014-03", forecast_settings=fs,
                               progressbar=False)
    child = load_run(path)
    m = child.manifest
    assert m["parent"]["run_id"] == tiny_fit[0].name and m["parent"]["data_end"] == END
    assert m["update"]["new_months"] == ["2014-01", "2014-02", "2014-03"] and m["update"]["revisions"] == []
    assert m["sampler"]["init"] == "warm" and m["data"]["end"] == "2014-03"
    assert child.idata.posterior.sizes["draw"] == load_run(tiny_fit[0]).idata.posterior.sizes["draw"]
    assert pd.Timestamp(child.idata.posterior["date"].values[-1]) == pd.Timestamp("2014-03-01")
    # the report: every scenario before and after, the policy state, one row per new month
    rep = workspace.reports / path.name
    doc = json.loads((rep / "update.json").read_text())
    assert set(doc["scenarios"]) == set(content["scenarios"]) and len(doc["scenarios"]) > 5
    assert [r["month"] for r in doc["months"]] == ["2014-01", "2014-02", "2014-03"]
    for r in doc["months"]:
        assert sum(r["predicted"].values()) == pytest.approx(1.0, abs=1e-4)
        assert sum(r["filtered"].values()) == pytest.approx(1.0, abs=1e-4)
    # the new months' log predictive densities are the child's stored ones, averaged over the
    # forecast's draws (the max_draws evenly thinned draws of forecast.posterior_draws), and each
    # one's percentile is the share of the 132 earlier months whose density is lower (update.json
    # keeps 6 significant digits; percentiles are k / 132, 0.0076 apart)
    ll = child.idata.log_likelihood["y_one_step"].stack(s=("chain", "draw"))
    _, ids = posterior_draws(child.idata.posterior, [], fs.max_draws)
    lpd = ll.transpose("s", "date").values[ids].mean(axis=0)                       # (135,) every month
    np.testing.assert_allclose([r["log_predictive"] for r in doc["months"]], lpd[-3:], rtol=1e-6, atol=1e-6)
    assert [r["lpd_percentile"] for r in doc["months"]] == pytest.approx([float(np.mean(lpd[:132] < x))
                                                                          for x in lpd[-3:]], abs=1e-6)
    pol = doc["policy"]
    assert sum(v["child"]["mean"] for v in pol.values()) == pytest.approx(1.0, abs=1e-4)
    assert (rep / "update.html").read_text().count("<table") == 3 and (rep / "index.html").is_file()


# The production sampler settings (regimecast.config.defaults.SAMPLER; 4 x 2000 when it was measured): the
# comparison below only means something between two fits that each converged. At 4 x 500
# after 500 the fit from scratch did not (max R-hat 1.53, min bulk ESS 7; run 2026-11-25) and
# its posterior means differed from the update's by up to 48 MCSEs, which measured the
# non-convergence, not the update.
# Both fits use the default seed. With seed 99 the fit from scratch started (best of 4 MAP
# restarts) at a mode 58 nats below the one the default seed finds and did not converge (R-hat
# 1.15 and bulk ESS 17 on log_sd_z[qt, fedfunds]; 2026-11-25): the log density has many local
# modes and the restarts do not always reach the best (benchmarks/RESULTS.md). The comparison
# needs two fits of the same posterior, so the scratch fit is the one measured to converge.
SLOW: dict = {}
SEED = 20261123
PARENT_END, CHILD_END = "2026-02", "2026-07"


def _trusted(run) -> None:
    d = run.manifest["diagnostics"]
    assert d["trusted"], f"run {run.run_id} did not converge, the comparison would be meaningless: {d['reasons']}"


@pytest.mark.slow
@pytest.mark.over_ci_budget   # three production fits: more than .ci/run's budget for the slow tier
def test_update_equals_fit_from_scratch_within_monte_carlo_error(workspace, fred_dir):
    """Updating a fit to 2026-02 with data to 2026-07 gives the posterior of a fit from scratch
    on data to 2026-07: every natural-unit parameter's posterior mean agrees within Monte Carlo
    error (|z| < 4 with the two MCSEs combined, for at least 95% of them; a handful beyond 3 is
    expected among hundreds), and so does the filtered policy state in the last month. Both
    fits must pass the sampler diagnostics first. 2979 s on 2 cores shared with two other jobs
    (load 5 to 6; 2026-12-04), over .ci/run's budget for the slow tier."""
    from regimecast import api
    from regimecast.fit.sampler import SamplerSettings
    from regimecast.simulate.forecast import ForecastSettings
    from regimecast.store.runs import load_run

    settings = SamplerSettings(seed=SEED, **SLOW)
    parent, _ = api.fit(workspace, settings, data_dir=fred_dir, end=PARENT_END, progressbar=False)
    child, _ = api.update(workspace, parent, data_dir=fred_dir, end=CHILD_END, progressbar=False,
                          forecast_settings=ForecastSettings(seed=1, max_draws=100, paths=20))
    scratch, _ = api.fit(workspace, SamplerSettings(seed=SEED, **SLOW), data_dir=fred_dir, end=CHILD_END,
                         progressbar=False)
    ra, rb = load_run(child), load_run(scratch)
    _trusted(ra)
    _trusted(rb)
    a, b = ra.idata, rb.idata
    for run in (a, b):
        assert run.posterior["date"].values[-1] == np.datetime64("2026-07-01")
    names = ["mean", "sd", "switch_logit", "covariate_effect", "mean_effect", "log_scale", "nu", "ar_coef"]
    sa = az.summary(a, var_names=names, kind="all", round_to="none")
    sb = az.summary(b, var_names=names, kind="all", round_to="none")
    fixed = (sa["sd"] == 0) & (sb["sd"] == 0)        # fixed by construction (switch_logit diagonal = 0)
    sa, sb = sa[~fixed], sb[~fixed]
    z = (sa["mean"] - sb["mean"]) / np.sqrt(sa["mcse_mean"] ** 2 + sb["mcse_mean"] ** 2)
    assert len(z) > 150 and z.notna().all()
    assert (z.abs() < 4).mean() >= 0.95, z.abs().sort_values().tail(10)
    fa = a.posterior["filtered_policy"].isel(date=-1).mean(("chain", "draw")).values
    fb = b.posterior["filtered_policy"].isel(date=-1).mean(("chain", "draw")).values
    np.testing.assert_allclose(fa, fb, atol=0.1)
