"""Narrative comparison: LOO and leave-future-out ELPD against the closed forms of a conjugate
normal model, the scenario table by hand, and ``compare`` end to end on two tiny real fits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import optimize, stats

from regimecast.checks.compare import lfo, loo_table, narrative_shifts, scenario_table
from regimecast.config.thresholds import Thresholds

N, CHAINS, DRAWS = 30, 4, 5000


@pytest.fixture(scope="module")
def conjugate():
    """y_i ~ N(mu, 1), mu ~ N(0, 1): exact posterior draws and their pointwise log likelihood
    (independent months: the leave-one-out and one-step-ahead terms are both log p(y_i | mu))."""
    rng = np.random.default_rng(11)
    y = rng.normal(0.7, 1.0, N)
    v = 1.0 / (1.0 + N)
    mu = rng.normal(v * y.sum(), np.sqrt(v), (CHAINS, DRAWS))
    ll = stats.norm.logpdf(y[None, None, :], mu[..., None], 1.0)
    dates = pd.date_range("2000-01-01", periods=N, freq="MS")
    idata = az.InferenceData(posterior=xr.Dataset({"mu": (("chain", "draw"), mu)}),
                             log_likelihood=xr.Dataset({v: (("chain", "draw", "date"), ll) for v in ("y", "y_one_step")},
                                                        coords={"date": dates}))
    return y, idata


K_WARN = Thresholds.load(Path(__file__).resolve().parents[1] / "models" / "diagnostics.toml").warn.pareto_k

def test_lfo_matches_exact_one_step_predictive(conjugate):
    y, idata = conjugate
    res = lfo(idata, 10, K_WARN)
    exact = []
    for t in range(N - 10, N):                      # p(y_t | y_0..t-1) = N(m_t, 1 + v_t)
        v = 1.0 / (1.0 + t)
        exact.append(stats.norm.logpdf(y[t], v * y[:t].sum(), np.sqrt(1.0 + v)))
    np.testing.assert_allclose(res["elpd_pointwise"], exact, atol=0.02)
    assert res["elpd"] == pytest.approx(sum(exact), abs=0.1)
    assert res["dates"][0] == "2001-09" and len(res["pareto_k"]) == 10 and res["n_bad_k"] == 0
    with pytest.raises(ValueError, match="LFO over 30 months"):
        lfo(idata, N, K_WARN)


def _exact_loo_pointwise(y: np.ndarray, prior_precision: float) -> np.ndarray:
    """log p(y_i | y_-i) of y_i ~ N(mu, 1), mu ~ N(0, 1 / prior_precision): N(m_-i, 1 + v_-i)."""
    prec = prior_precision + len(y) - 1                 # posterior precision without one point
    return stats.norm.logpdf(y, (y.sum() - y) / prec, np.sqrt(1.0 + 1.0 / prec))


def test_loo_matches_exact_leave_one_out(conjugate):
    """Two genuinely different models: ``a`` (mu ~ N(0, 1)) and ``b``, the same likelihood under a
    tight prior mu ~ N(0, 0.2^2) that pulls mu away from the data's 0.7 (a worse model). Both have
    exact posteriors, so each ELPD, the difference and the stacking weights are known in closed
    form: the weights maximise sum_i log(w p_a(y_i | y_-i) + (1 - w) p_b(y_i | y_-i))
    (Yao et al. 2018), here about 0.907 / 0.093."""
    y, idata = conjugate
    exact_a, exact_b = _exact_loo_pointwise(y, 1.0), _exact_loo_pointwise(y, 1.0 / 0.2 ** 2)
    prec_b = 1.0 / 0.2 ** 2 + N
    mu_b = np.random.default_rng(12).normal(y.sum() / prec_b, np.sqrt(1.0 / prec_b), (CHAINS, DRAWS))
    ll_b = stats.norm.logpdf(y[None, None, :], mu_b[..., None], 1.0)
    worse = az.InferenceData(posterior=xr.Dataset({"mu": (("chain", "draw"), mu_b)}),
                             log_likelihood=xr.Dataset({v: (("chain", "draw", "date"), ll_b) for v in ("y", "y_one_step")},
                                                       coords={"date": idata.log_likelihood["date"].values}))
    lppd = sum(stats.norm.logpdf(y, y.sum() / (N + 1), np.sqrt(1.0 + 1.0 / (N + 1))))   # in-sample, exact
    table, weights = loo_table({"a": idata, "b": worse}, K_WARN)
    assert table["a"]["elpd"] == pytest.approx(exact_a.sum(), abs=0.05)
    assert table["b"]["elpd"] == pytest.approx(exact_b.sum(), abs=0.05)
    assert table["a"]["n_bad_k"] == 0 and table["a"]["p_loo"] == pytest.approx(lppd - exact_a.sum(), abs=0.05)
    # ArviZ's convention: the best model's difference is 0, the other's is best minus it
    assert table["a"]["elpd_diff"] == 0.0
    assert table["b"]["elpd_diff"] == pytest.approx(exact_a.sum() - exact_b.sum(), abs=0.05)   # 0.549
    res = optimize.minimize_scalar(lambda w: -np.logaddexp(np.log(w) + exact_a, np.log1p(-w) + exact_b).sum(),
                                   bounds=(1e-9, 1 - 1e-9), method="bounded", options={"xatol": 1e-10})
    assert 0.85 < res.x < 0.95                          # an interior optimum: both models get weight
    assert weights["a"] == pytest.approx(res.x, abs=0.01) and weights["b"] == pytest.approx(1 - res.x, abs=0.01)


def _summary(p):
    p = np.asarray(p, float)
    return xr.Dataset({"scenario_prob": (("draw", "scenario"), p)}, coords={"scenario": ["x", "y"]})


def test_scenario_table_spread_and_stacking():
    a = _summary([[0.1, 0.5], [0.3, 0.5]])           # means 0.2, 0.5
    b = _summary([[0.6, 0.4], [0.6, 0.4]])           # means 0.6, 0.4
    out = scenario_table({"a": a, "b": b}, {"a": 0.25, "b": 0.75})
    assert out["x"]["spread"] == pytest.approx(0.4) and out["y"]["spread"] == pytest.approx(0.1)
    assert out["x"]["stacked"] == pytest.approx(0.25 * 0.2 + 0.75 * 0.6)
    assert out["x"]["by_prior"]["a"]["mean"] == pytest.approx(0.2)
    # policy-state rows, when the summary has them
    pol = xr.DataArray([[[[0.25, 0.75]], [[0.75, 0.25]]]], dims=("draw0", "draw", "policy_horizon", "policy"))
    a2 = a.assign(policy_prob=pol.isel(draw0=0).assign_coords(policy_horizon=[12], policy=["hold", "qe"]))
    out = scenario_table({"a": a2, "b": a2}, {"a": 0.5, "b": 0.5})
    assert out["P(qe) at 12 months"]["by_prior"]["a"]["mean"] == pytest.approx(0.5)
    assert out["P(hold) at 12 months"]["spread"] == 0.0 and len(out) == 4


def test_compare_end_to_end(workspace, tiny_fit, fred_dir, repo_root):
    from regimecast import api
    from regimecast.store import runs
    from regimecast.fit.sampler import SamplerSettings
    from regimecast.simulate.forecast import ForecastSettings

    from conftest import END, TINY

    shutil.copy(repo_root / "tests" / "fixtures" / "priors" / "good_child.toml", workspace.priors / "good_child.toml")
    fs = ForecastSettings(seed=5, horizon=24, paths=10, max_draws=20)
    out, c = api.compare(workspace, ["good_child"], SamplerSettings(seed=7, **TINY), runs_=[str(tiny_fit[0])],
                         data_dir=fred_dir, end=END, lfo_months=12, forecast_settings=fs, progressbar=False)
    assert set(c["runs"]) == {"baseline", "child"}
    assert sum(c["weights"].values()) == pytest.approx(1.0)
    for n in c["runs"]:
        assert np.isfinite(c["loo"][n]["elpd"]) and len(c["lfo"][n]["elpd_pointwise"]) == 12
    doc = json.loads((out / "compare.json").read_text())
    assert set(doc["scenarios"]) == set(c["scenarios"]) and len(doc["scenarios"]) > 5
    assert (out / "index.html").read_text().count("<table") == 3
    (row,) = c["shifts"]["child"]["parameters"]           # good_child changes qe.drawdown only
    assert c["shifts"]["child"]["parent"] == "baseline" and "baseline" not in c["shifts"]
    assert (row["block"], row["label"]) == ("transition.covariates", "qe.drawdown")
    assert row["prior"] == [0.3, 0.5] and row["prior_narrative"] == [1.0, 0.25]
    x = {n: c_.idata.posterior["covariate_effect"].sel(policy="qe", covariate="drawdown").values
         for n, c_ in ((n, runs.load_run(workspace.runs / c["runs"][n]["run_id"])) for n in c["runs"])}
    assert row["posterior"][0] == pytest.approx(x["baseline"].mean()) and row["posterior_narrative"][1] == \
        pytest.approx(x["child"].std())
    assert row["kept"] == pytest.approx((x["child"].mean() - x["baseline"].mean()) / 0.7)
    assert "What the data kept of each narrative" in (out / "compare.md").read_text()


def _posterior(rng, shapes: dict[str, tuple], shift: dict[str, tuple] | None = None) -> xr.Dataset:
    """Random natural-unit posterior draws (2 chains x 400) of the named variables; ``shift``
    adds a constant at one index of a variable."""
    out = {}
    for name, shape in shapes.items():
        x = rng.normal(0.0, 1.0, (2, 400, *shape))
        if name in ("transition_ai", "sd"):
            x = np.exp(x)
        for (var, idx, d) in (shift or {}).values():
            if var == name:
                x[(slice(None), slice(None)) + idx] += d
        out[name] = (("chain", "draw") + tuple(f"{name}_{i}" for i in range(len(shape))), x)
    return xr.Dataset(out)


def test_narrative_shifts_against_the_prior_files_and_the_draws(model_bundle, repo_root):
    """soft_landing against baseline on synthetic posteriors: prior moments from the files
    (Normal mu/sigma; the Dirichlet row's Beta marginal), posterior moments of the right
    element, and kept = posterior shift / prior shift."""
    from regimecast.config.priors import load_priors

    config = model_bundle.config
    base, soft = (load_priors(repo_root / "priors" / f"{n}.toml", config) for n in ("baseline", "soft_landing"))
    shapes = {"switch_logit": (8, 8), "factor_effect": (2, 2, 8), "transition_ai": (2, 2), "mean_effect": (2, 7)}
    pol = list(config.factor("policy").states)
    hold, cut_qt = pol.index("hold"), pol.index("cut_qt")
    rng = np.random.default_rng(3)
    parent = _posterior(rng, shapes)
    child = parent.copy(deep=True)
    child["switch_logit"][:, :, hold, cut_qt] += 0.75                      # a quarter of the prior's +3.0
    rows = {(r["block"], r["label"]): r for r in narrative_shifts(base, soft, parent, child)}
    assert set(rows) == {(b, lab) for b, lab in NARRATIVE_SOFT_LANDING}
    r = rows[("transition.switch", "hold->cut_qt")]
    assert r["prior"] == [-6.0, 1.5] and r["prior_narrative"] == [-3.0, 1.0]
    assert r["posterior"][0] == pytest.approx(parent["switch_logit"].values[:, :, hold, cut_qt].mean())
    assert r["kept"] == pytest.approx(0.25)
    assert rows[("transition.factors", "ai.realised.enter.cut_qt")]["kept"] == pytest.approx(0.0)
    d = rows[("transition.ai", "delayed->realised")]
    m0, m1 = 1 / 61, 2 / 42
    assert d["prior"] == pytest.approx([m0, np.sqrt(m0 * (1 - m0) / 62)])
    assert d["prior_narrative"] == pytest.approx([m1, np.sqrt(m1 * (1 - m1) / 43)])
    assert d["posterior"][0] == pytest.approx(parent["transition_ai"].values[:, :, 0, 1].mean())


NARRATIVE_SOFT_LANDING = {
    ("transition.switch", "hold->cut_qt"), ("transition.switch", "qt->cut_qt"), ("transition.switch", "cut->cut_qt"),
    ("transition.factors", "ai.realised.enter.cut_qt"), ("transition.factors", "ai.realised.stay.cut_qt"),
    ("transition.ai", "delayed->delayed"), ("transition.ai", "delayed->realised"),
    ("emission.effects", "ai.realised.inflation"),
}
