"""``regimecast diagnose``: the verdict on synthetic InferenceData with known properties, the
review's statistics against closed forms and reference libraries, and the command on a real
(deliberately too short) fit."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import arviz as az
import jax
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from conftest import END, TINY
from regimecast.config.thresholds import Thresholds, check_thresholds
from regimecast.errors import ConfigError
from regimecast.checks.loo_pit import LooPit, loo_pit, loo_pit_draw, student_t_cdf
from regimecast.model.spec import VarSpec
from regimecast.checks.ppc import (PPC, acf, changes, obs_from_levels, ppc_pvalue, presample_origin, replication_spec,
                            spell_statistics, state_correlations, tail_statistics)
from regimecast.checks.prior_data import conflict_z, contraction_columns, prior_moments
from regimecast.checks.review import Review, assess, divergence_shift, parameter_table, ppc_cutoff, sampler_summary

C, D = 4, 1000
SPEC = {"a_z": VarSpec("normal01", (), (), ()), "b_z": VarSpec("normal01", (), ("k",), (2,))}


@pytest.fixture(scope="module")
def th(repo_root) -> Thresholds:
    return Thresholds.load(repo_root / "models" / "diagnostics.toml")


def _idata(a=None, b=None, diverging=None, saturated=None, energy=None, seed=0):
    """4 chains x 1000 well-mixed draws: a_z ~ N(0.3, 0.2^2), b_z ~ N(0.5, 0.1^2) (2 elements)."""
    rng = np.random.default_rng(seed)
    a = 0.3 + 0.2 * rng.standard_normal((C, D)) if a is None else a
    b = 0.5 + 0.1 * rng.standard_normal((C, D, 2)) if b is None else b
    ss = {"diverging": np.zeros((C, D), bool) if diverging is None else diverging,
          "maxdepth_reached": np.zeros((C, D), bool) if saturated is None else saturated,
          "energy": rng.standard_normal((C, D)) if energy is None else energy}
    return az.from_dict(posterior={"a_z": a, "b_z": b}, sample_stats=ss, coords={"k": ["x", "y"]},
                        dims={"b_z": ["k"]})


def _review(idata, ppc=None, loo=None) -> Review:
    names = list(SPEC)
    table = contraction_columns(parameter_table(idata, names), names, prior_moments(SPEC))
    shift = divergence_shift(idata, names)
    if shift is not None:
        table = table.assign(divergence_shift=shift)
    return Review("synthetic", table, sampler_summary(idata), ppc, loo)


def _checks(verdict, level):
    return {f.check for f in verdict.findings if f.level == level}


# --- the verdict ----------------------------------------------------------------------------

def test_well_mixed_draws_pass(th):
    idata = _idata()
    rv = _review(idata)
    v = assess(rv, th)
    assert (v.level, v.exit_code, v.findings) == ("pass", 0, ())
    assert list(rv.parameters.index) == ["a_z", "b_z[x]", "b_z[y]"]
    ref = az.summary(idata, kind="diagnostics", round_to="none")
    np.testing.assert_allclose(rv.parameters["r_hat"], ref["r_hat"], rtol=1e-12)
    np.testing.assert_allclose(rv.parameters["ess_bulk"], ref["ess_bulk"], rtol=1e-12)
    assert rv.parameters["r_hat"].max() < 1.01 and rv.parameters["ess_bulk"].min() > 2000
    np.testing.assert_allclose(rv.sampler.bfmi, az.bfmi(idata), rtol=1e-12)


def _shifted_chain(rng):
    a = 0.3 + 0.2 * rng.standard_normal((C, D))
    a[3] += 1.0                                                       # 5 posterior sds apart
    return {"a": a}


def _sticky_chain(rng):
    e = rng.standard_normal((C, D))
    a = np.zeros((C, D))
    for t in range(1, D):                                              # AR(1), rho 0.995: ESS ~ 10 per chain
        a[:, t] = 0.995 * a[:, t - 1] + np.sqrt(1 - 0.995**2) * e[:, t]
    return {"a": 0.3 + 0.2 * a}


def _divergent_tail(rng):
    b = 0.5 + 0.1 * rng.standard_normal((C, D, 2))
    return {"b": b, "diverging": b[..., 1] > np.quantile(b[..., 1], 0.99)}


@pytest.mark.parametrize("make, check", [
    (_shifted_chain, "R-hat"),
    (_sticky_chain, "bulk ESS"),
    (_divergent_tail, "divergences"),
    (lambda rng: {"energy": np.cumsum(rng.standard_normal((C, D)), axis=1)}, "E-BFMI"),   # random-walk energy
    (lambda rng: {"saturated": rng.random((C, D)) < 0.2}, "tree depth"),
    (lambda rng: {"a": 8.0 + 0.05 * rng.standard_normal((C, D))}, "prior-data conflict"),
])
def test_each_fail_level_fails(th, make, check):
    rv = _review(_idata(**make(np.random.default_rng(1))))
    v = assess(rv, th)
    assert v.level == "fail" and v.exit_code == 2
    assert check in _checks(v, "fail")
    assert any(r.startswith(f"FAIL {check}") for r in v.reasons)


@pytest.mark.parametrize("make", [_shifted_chain, _sticky_chain, lambda rng: {
    "energy": np.cumsum(rng.standard_normal((C, D)), axis=1)}])
def test_fit_and_review_word_a_failure_alike(th, make):
    """One verdict: the fit's block (``run``, ``fit``, the forecast report) and the review
    (``diagnose``) fail the same sampler checks with the same reasons, word for word."""
    from regimecast.checks.convergence import diagnostics_block

    idata = _idata(**make(np.random.default_rng(1)))
    block = diagnostics_block(idata, list(SPEC), th)
    v = assess(_review(idata), th)
    sampler = ("FAIL R-hat:", "FAIL bulk ESS:", "FAIL tail ESS:", "FAIL divergences:", "FAIL E-BFMI:")
    assert not block["trusted"] and v.level == "fail"
    assert block["reasons"] == [r for r in v.reasons if r.startswith(sampler)] != []


def test_divergences_located(th):
    rv = _review(_idata(**_divergent_tail(np.random.default_rng(1))))
    shift = rv.parameters["divergence_shift"].abs()
    assert shift.idxmax() == "b_z[y]" and shift["b_z[y]"] > 2.0 and shift.drop("b_z[y]").max() < 0.5
    msg = next(f.message for f in assess(rv, th).findings if f.check == "divergences")
    assert msg.startswith("40 divergent transitions (1.0%)") and "along b_z[y]" in msg


@pytest.mark.parametrize("make, check", [
    (lambda rng: {"saturated": rng.random((C, D)) < 0.02}, "tree depth"),
    (lambda rng: {"a": 3.0 + 0.05 * rng.standard_normal((C, D))}, "prior-data conflict"),   # K=3: 2.39 < 3 < 3.59
    (lambda rng: {"a": rng.standard_normal((C, D)), "b": rng.standard_normal((C, D, 2))}, "uninformed parameters"),
])
def test_each_warn_level_warns(th, make, check):
    v = assess(_review(_idata(**make(np.random.default_rng(2)))), th)
    assert (v.level, v.exit_code, _checks(v, "warn"), _checks(v, "fail")) == ("warn", 1, {check}, set())


def test_model_checks_warn(th):
    table = pd.DataFrame({"check": ["tails", "tails"], "statistic": ["sd", "sd"], "subject": ["x", "y"],
                          "observed": [1.0, 1.0], "p_value": [0.5, 0.004]})
    dates = pd.date_range("2000-01-01", periods=4, freq="MS")
    loo = LooPit(pd.Series([0.1, 0.9, 0.2, 0.3], index=dates), 0.0, 0.0, None,
                 pd.Series([0.5, 0.001], index=["x", "y"]), 10)
    v = assess(_review(_idata(), PPC(table, np.zeros((2, 1)), None), loo), th)
    assert v.level == "warn" and _checks(v, "warn") == {"posterior predictive", "Pareto k", "LOO-PIT"}
    assert "1 of 4 months have k > 0.7" in " ".join(v.reasons) and "sd y (p=0.0040)" in " ".join(v.reasons)


def test_posterior_predictive_verdict_is_family_wise(th):
    """110 statistics at family-wise 0.05: the per-statistic cutoff is 0.05 / 220 = 2.3e-4, so
    p = 0.003 (extreme for one statistic alone) passes and p = 0 or 0.9999 warns."""
    assert ppc_cutoff(0.05, 110) == pytest.approx(0.05 / 220, rel=1e-12) and ppc_cutoff(0.05, 0) == 0.0
    p = np.linspace(0.05, 0.95, 110)

    def verdict(extreme):
        q = p.copy()
        q[7] = extreme
        table = pd.DataFrame({"check": "tails", "statistic": "sd", "subject": [f"s{i}" for i in range(110)],
                              "observed": 1.0, "p_value": q})
        return assess(_review(_idata(), PPC(table, np.zeros((110, 1)), None)), th)

    assert verdict(0.003).level == "pass"
    for extreme in (0.0, 0.9999):
        v = verdict(extreme)
        assert v.level == "warn" and _checks(v, "warn") == {"posterior predictive"}
        assert "1 of 110 statistics extreme" in v.reasons[0] and "sd s7" in v.reasons[0]


def test_months_with_reliable_mixture_estimates_do_not_warn(th):
    dates = pd.date_range("2001-01-01", periods=4, freq="MS")
    loo = LooPit(pd.Series([0.1, 0.9, 0.8, 0.2], index=dates), -12.0, 0.0, None, pd.Series([0.5], index=["x"]), 10,
                 elpd_pointwise=pd.Series([-1.0, -5.0, -4.0, -2.0], index=dates))
    v = assess(_review(_idata(), loo=replace(loo, exact=pd.Series([False, True, False, False], index=dates))), th)
    msg = next(f.message for f in v.findings if f.check == "Pareto k")
    assert msg.startswith("1 of 4 months have k > 0.7 and no reliable mixture estimate") and "2001-03" in msg
    assert "2001-02" not in msg and "1 more estimated by mixture sampling" in msg
    v = assess(_review(_idata(), loo=replace(loo, exact=pd.Series([False, True, True, False], index=dates))), th)
    assert v.level == "pass"


def test_conflict_limit_is_bonferroni():
    assert conflict_z(0.05, 1) == pytest.approx(1.959964, abs=1e-6)
    assert conflict_z(0.001, 2) == pytest.approx(stats.norm.isf(0.00025), rel=1e-12)


def test_thresholds_backward_compatible(tmp_path, th):
    old = tmp_path / "old.toml"
    old.write_text("schema_version = 1\nmax_rhat = 1.01\nmin_ess_per_chain = 100\nmax_divergences = 0\n"
                   "min_bfmi = 0.3\n")
    t = Thresholds.load(old)
    assert (t.max_rhat, t.min_ess_per_chain, t.max_divergences, t.min_bfmi, t.warn) == (1.01, 100.0, 0, 0.3, None)
    with pytest.raises(ConfigError, match="max_treedepth_share"):
        check_thresholds(t, old)
    assert (th.max_treedepth_share, th.warn.pareto_k, th.warn.ppc_alpha) == (0.1, 0.7, 0.05)
    for text, key in (("[warn]\nbogus = 1\n", "warn.bogus"), ("max_treedepth_share = 1.5\n", "max_treedepth_share")):
        bad = tmp_path / "bad.toml"
        bad.write_text(old.read_text() + text)
        with pytest.raises(ConfigError, match=re.escape(key)):
            Thresholds.load(bad)


# --- contraction and prior moments ------------------------------------------------------------

def test_contraction_conjugate_normal():
    """Prior N(0, 1), n = 3 observations with sd 1: posterior variance 1/(1 + n), contraction n/(n + 1)."""
    rng = np.random.default_rng(3)
    y = rng.normal(0.7, 1.0, 3)
    var = 1.0 / (1.0 + len(y))
    mean = var * y.sum()
    idata = az.from_dict(posterior={"t_z": rng.normal(mean, np.sqrt(var), (4, 4000))})
    spec = {"t_z": VarSpec("normal01", (), (), ())}
    moments = prior_moments(spec)
    row = contraction_columns(parameter_table(idata, ["t_z"]), ["t_z"], moments).iloc[0]
    assert row["contraction"] == pytest.approx(len(y) / (len(y) + 1), abs=0.01)   # MC sd of the estimate ~0.003
    assert row["prior_z"] == pytest.approx(mean, abs=0.01)
    assert row["prior_sd"] == 1.0


def test_prior_moments_closed_forms():
    a = np.array([[60.0, 1.0], [1.0, 60.0]])
    spec = {"d": VarSpec("dirichlet", (a,), ("f", "t"), a.shape),
            "b": VarSpec("beta", (np.array([8.0, 20.0]), np.array([2.0, 1.5])), ("s",), (2,)),
            "g": VarSpec("gamma", (2.0, 0.1), (), ()),
            "w": VarSpec("lkj", (3, 2, 4.0), ("p", "pair"), (3, 1)),
            "w4": VarSpec("lkj", (2, 4, 2.0), ("p", "pair"), (2, 6))}
    m = prior_moments(spec)
    np.testing.assert_allclose(m["d"][1][0], stats.dirichlet(a[0]).var(), rtol=1e-12)
    np.testing.assert_allclose(m["d"][0][1], stats.dirichlet(a[1]).mean(), rtol=1e-12)
    np.testing.assert_allclose(m["b"][1], stats.beta([8.0, 20.0], [2.0, 1.5]).var(), rtol=1e-12)
    g = stats.gamma(2.0, scale=10)                                   # rate 0.1
    assert (m["g"][0], m["g"][1]) == pytest.approx((g.mean(), g.var()))
    # 2 x 2 LKJ(eta): (r + 1) / 2 ~ Beta(eta, eta), and the unconstrained value is arctanh(r)
    ref = integrate.quad(lambda r: np.arctanh(r) ** 2 * stats.beta(4.0, 4.0).pdf((r + 1) / 2) / 2, -1, 1)[0]
    np.testing.assert_allclose(m["w"][1], ref, rtol=1e-6)
    assert np.all(m["w"][0] == 0.0)
    # 4 x 4 LKJ(2): against NumPyro's own sampler mapped to the sampler's unconstrained scale
    from numpyro.distributions import LKJCholesky
    from numpyro.distributions.transforms import CorrCholeskyTransform

    w = np.asarray(CorrCholeskyTransform().inv(LKJCholesky(4, 2.0).sample(jax.random.key(5), (20000,))))
    np.testing.assert_allclose(m["w4"][1][0], w.var(0), rtol=0.05)    # MC sd of a variance ~1% at 20,000
    np.testing.assert_allclose(w.mean(0), 0.0, atol=0.02)


# --- posterior predictive statistics -------------------------------------------------------

def test_acf_and_tail_statistics_match_references():
    from statsmodels.tsa.stattools import acf as sm_acf

    x = np.random.default_rng(4).standard_t(4, size=(3, 300))
    np.testing.assert_allclose(acf(np.abs(x), 12), np.stack([sm_acf(np.abs(r), nlags=12, fft=False)[1:] for r in x]),
                               rtol=1e-10)
    t = tail_statistics(x)
    np.testing.assert_allclose(t["excess kurtosis"], stats.kurtosis(x, axis=-1), rtol=1e-10)
    np.testing.assert_allclose(t["sd"], x.std(-1, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(t["q0.01"], np.quantile(x, 0.01, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(t["q0.99"], np.quantile(x, 0.99, axis=-1), rtol=1e-12)


def test_spells_correlations_and_pvalues():
    occ, spell = spell_statistics(np.array([[0, 0, 1, 1, 1, 0, 2, 2], [1] * 8]), 3)
    np.testing.assert_allclose(occ, [[3 / 8, 3 / 8, 2 / 8], [0, 1, 0]])
    np.testing.assert_allclose(spell, [[1.5, 3.0, 2.0], [np.nan, 8.0, np.nan]])
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 60, 3))
    x[..., 1] += x[..., 0]
    paths = rng.integers(0, 2, (2, 60))
    r = state_correlations(x, paths, 3, [(0, 1), (1, 2)], min_months=12)
    m = paths[1] == 1
    assert r[1, 1, 0] == pytest.approx(np.corrcoef(x[1, m, 0], x[1, m, 1])[0, 1], rel=1e-12)
    assert np.isnan(r[:, 2]).all()                                   # state 2 never visited
    p, n = ppc_pvalue(np.array([np.arange(100.0), np.r_[np.arange(10.0), [np.nan] * 90]]), np.array([49.0, 3.0]))
    assert p[0] == pytest.approx(50.5 / 100) and np.isnan(p[1]) and list(n) == [100, 10]


def test_replication_origin_matches_the_design(model_bundle):
    """The replicated sample starts where the data do: the covariates the simulator derives
    from the pre-sample origin equal the design's first row, and the AR lags match."""
    from regimecast.simulate.paths import LEVEL_IS_OBS, forward_covariates

    rm = model_bundle
    spec = replication_spec(rm.config, rm.design, rm.panel)
    org = presample_origin(rm.config, rm.design, rm.panel, spec)
    x = np.asarray(forward_covariates(spec, org.obs[None], org.window[None]))[0]
    np.testing.assert_allclose(x, rm.design.covariates[0], atol=1e-5)
    ar = rm.design.is_ar
    np.testing.assert_allclose(org.obs[ar] - rm.design.ar_center[ar], rm.design.ar_lag[0, ar], atol=1e-12)
    # levels -> observations inverts the simulator's integration (yoy series have no level here)
    lv = rm.panel.levels.sel(series=list(rm.config.observed)).to_pandas().loc[rm.design.dates].to_numpy()
    obs = obs_from_levels(lv, org.level, spec.level_rule)
    y = rm.design.y + rm.design.ar_center
    ok = np.isfinite(y) & (spec.level_rule != LEVEL_IS_OBS)[None]
    np.testing.assert_allclose(obs[ok], y[ok], rtol=1e-9, atol=1e-9)
    ch = changes(y, org.obs, spec.level_rule)
    j = list(rm.config.observed).index("vix")
    np.testing.assert_allclose(ch[1:, j], np.diff(y[:, j]), rtol=1e-12)


# --- LOO-PIT ------------------------------------------------------------------------------

def test_student_t_cdf_matches_scipy():
    x = np.linspace(-30, 30, 241)
    for nu in (2.5, 4.0, 30.0):
        np.testing.assert_allclose(np.asarray(student_t_cdf(x, nu)), stats.t.cdf(x, nu), atol=2e-6)


def test_loo_pit_uses_psis_weights():
    rng = np.random.default_rng(7)
    T, S = 50, 400
    ll = rng.normal(0.0, 0.5, (2, S, T))
    idata = az.from_dict(log_likelihood={"y": ll}, posterior={"a": rng.standard_normal((2, S))},
                         coords={"date": pd.date_range("2001-01-01", periods=T, freq="MS")}, dims={"y": ["date"]})
    idx = np.arange(0, 2 * S, 2)
    pits = rng.random((len(idx), T, 2))
    pits[:, 3, 1] = np.nan
    out = loo_pit(idata, pits, idx, ["u", "v"])
    lw, _ = az.psislw(-ll.reshape(2 * S, T)[idx].T, reff=1.0)
    np.testing.assert_allclose(out.pit.values[:, 0], np.einsum("ts,st->t", np.exp(lw), pits[..., 0]), rtol=1e-10)
    assert np.isnan(out.pit.values[3, 1]) and np.isfinite(out.pit.values[:3, 1]).all()
    assert out.pareto_k.shape == (T,) and out.n_draws == len(idx)


# --- the command on a real, deliberately too short fit ------------------------------------------

class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.h2, self.imgs, self.verdict, self.csp, self.tables = [], [], None, False, {}
        self._table, self._row = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "h2":
            self.h2.append(a.get("id"))
        elif tag == "img":
            self.imgs.append(a["src"])
        elif tag == "div" and a.get("id") == "verdict":
            self.verdict = a["data-verdict"]
        elif tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = "default-src 'none'" in a["content"]
        elif tag == "table":
            self._table = self.tables.setdefault(a.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._row is not None and self._table is not None and data.strip():
            self._row.append(data.strip())


@pytest.fixture(scope="module")
def diagnosed(tiny_fit, workspace, fred_dir):
    from typer.testing import CliRunner

    from regimecast.cli import app

    path, _ = tiny_fit
    r = CliRunner().invoke(app, ["--workspace", str(workspace.root), "diagnose", path.name, "--data-dir", str(fred_dir),
                                 "--ppc-draws", "20", "--pit-draws", "60", "--seed", "11"])
    return path, r, workspace.reports / path.name / "diagnostics.html"


def test_cli_fails_a_too_short_fit(diagnosed):
    path, r, html_file = diagnosed
    assert r.exit_code == 2, r.output
    assert "verdict: fail" in r.output and "FAIL R-hat" in r.output and "FAIL bulk ESS" in r.output
    assert "FAIL prior-data conflict" not in r.output     # the baseline prior is not absurd: the sampler fails
    page = _Page()
    page.feed(html_file.read_text())
    assert page.h2 == ["sampler", "convergence", "divergences", "contraction", "ppc", "loo-pit", "thresholds"]
    assert page.verdict == "fail" and page.csp
    assert len(page.imgs) >= 9 and all(s.startswith("data:image/png;base64,") for s in page.imgs)
    # the worst R-hat shown is ArviZ's for that parameter
    from regimecast.store.runs import load_run

    idata = load_run(path).idata
    label, *_, rhat = page.tables["convergence-worst"][1]
    var, _, rest = label.partition("[")
    sel = dict(zip(idata.posterior[var].dims[2:], rest.rstrip("]").split(", "))) if rest else {}
    assert float(rhat) == pytest.approx(float(az.rhat(idata.posterior[[var]].sel(sel))[var]), abs=1e-4)
    assert float(rhat) > 1.01


def test_loo_pit_draw_matches_scipy_reference(tiny_fit):
    """One draw of the real fit: the mixture of marginal Student-t CDFs over the states given
    every other month (the NumPy smoother of the joint chain with month t's emission dropped),
    with the scale from the likelihood's own Cholesky factors."""
    from regimecast.model import hmm
    from regimecast.workflows.engine import RegimeModel
    from regimecast.model.filter import transitions
    from regimecast.model.kernels import assemble, loglik_matrix, state_cholesky
    from regimecast.model.spec import inputs, structure, variable_spec
    from regimecast.store.runs import load_run

    run = load_run(tiny_fit[0])
    rm = RegimeModel.from_run(run)
    st, data = structure(rm.config, rm.priors), inputs(rm.design)
    draw = {k: run.idata.posterior[k].values[0, -1] for k in variable_spec(rm.config, rm.priors, st)}
    p = assemble(draw, st)
    pit = np.asarray(loo_pit_draw(p, data, st.family))
    ptrans = np.asarray(transitions(p, data.covariates))
    ll = np.asarray(loglik_matrix(p, data, st.family))
    T, P, O = ll.shape
    q = np.asarray(p.q_other)
    joint = np.einsum("ab,tbpq->tpaqb", q, ptrans).reshape(T, P * O, P * O)   # (p, o) -> (q, o')
    L = np.asarray(state_cholesky(p, np.arange(st.n_series), data.meas_sd))
    sd = np.sqrt(np.einsum("podk,podk->pod", L, L))
    mean = np.asarray(p.mean)[:, None] + np.asarray(p.shift)[None]
    for t in (0, 57, T - 1):
        dropped = ll.reshape(T, P * O).copy()
        dropped[t] = 0.0
        w = hmm.backward_smoother(joint, hmm.forward_filter(np.asarray(p.init).ravel(), joint, dropped))[t]
        mu = mean + np.asarray(p.ar_coef) * data.ar_lag[t]
        ref = np.einsum("po,pod->d", w.reshape(P, O), stats.t.cdf((data.y[t] - mu) / sd, float(p.nu)))
        np.testing.assert_allclose(pit[t], ref, atol=2e-4)


@pytest.mark.slow
def test_cli_fails_a_mis_specified_prior(workspace, fred_dir):
    """A prior that puts the Nasdaq's monthly volatility at 0.05% (the data say ~5%), fitted
    tiny: diagnose names the prior-data conflict among its fail reasons."""
    from typer.testing import CliRunner

    from regimecast import api
    from regimecast.cli import app
    from regimecast.fit.sampler import SamplerSettings

    (workspace.priors / "absurd.toml").write_text(
        'schema_version = 1\nname = "absurd"\nextends = "baseline"\n'
        "[emission.sd]\ndefault.equity = { mu = -3.0, sigma = 0.05 }\n")
    path, _ = api.fit(workspace, SamplerSettings(seed=7, **TINY), priors="absurd", data_dir=fred_dir, end=END,
                      progressbar=False)
    r = CliRunner().invoke(app, ["--workspace", str(workspace.root), "diagnose", path.name, "--ppc-draws", "20",
                                 "--pit-draws", "60"])
    assert r.exit_code == 2, r.output
    assert "FAIL prior-data conflict" in r.output and "equity" in r.output.split("FAIL prior-data conflict")[1]


def test_fit_verdict_uses_unrounded_rhat(th):
    """The fit's verdict (``diagnostics_block``) compares R-hat unrounded: chains offset so that
    R-hat is 1.013 (az.summary's default rounding prints 1.01) must fail a 1.01 check."""
    from scipy.optimize import brentq

    from regimecast.checks.convergence import diagnostics_block

    z = np.random.default_rng(3).standard_normal((C, D))
    shift = np.array([-1.5, -0.5, 0.5, 1.5])[:, None]
    rhat = lambda c: float(az.rhat(az.from_dict(posterior={"a_z": z + c * shift}))["a_z"])  # noqa: E731
    c = brentq(lambda c: rhat(c) - 1.013, 0.0, 1.0, xtol=1e-14)
    idata = _idata(a=z + c * shift)
    block = diagnostics_block(idata, ["a_z"], th)
    assert th.max_rhat == pytest.approx(1.01)
    assert block["max_rhat"] == pytest.approx(1.013, abs=1e-6)
    assert not block["trusted"] and block["reasons"] == ["FAIL R-hat: 1 of 1 parameters above 1.01 (max 1.013: a_z)"]
