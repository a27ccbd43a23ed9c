"""Leave-one-out by mixture importance sampling: the estimator against the closed-form LOO of a
conjugate normal model with an outlier (where PSIS's Pareto k is high), the mixture target of
the regime model against its kernels, and the bookkeeping that replaces PSIS's estimates."""

from __future__ import annotations

from dataclasses import replace

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logsumexp

from regimecast.checks import robust_loo
from regimecast.checks.loo_pit import LooPit, MixtureLoo
from regimecast.checks.robust_loo import mixture_elpd, with_mixture

CHAINS, DRAWS = 4, 4000


def conjugate(n: int, outlier: float, seed: int):
    """y_i ~ N(mu, 1), mu ~ N(0, 1), y_0 = ``outlier``. Leaving y_i out: mu ~ N(m_i, 1/n),
    m_i = (sum y - y_i) / n, and p(y_i | y_-i) = N(y_i; m_i, 1 + 1/n). Returns y, the exact LOO
    densities, and a sampler of the mixture p(mu | y) sum_i 1 / p(y_i | mu): the mixture of the
    n leave-one-out posteriors with weights proportional to 1 / p(y_i | y_-i), drawn exactly."""
    rng = np.random.default_rng(seed)
    y = rng.normal(0.5, 1.0, n)
    y[0] = outlier
    m = (y.sum() - y) / n
    exact = stats.norm.logpdf(y, m, np.sqrt(1 + 1 / n))
    w = np.exp(-exact - logsumexp(-exact))

    def draw(chains, draws):
        mu = rng.normal(m[rng.choice(n, size=(chains, draws), p=w)], np.sqrt(1 / n))
        return stats.norm.logpdf(y, mu[..., None], 1.0)

    return y, exact, draw, rng


def test_mixture_estimator_recovers_exact_loo_where_psis_is_unreliable():
    y, exact, draw, rng = conjugate(20, 14.0, 5)                  # an outlier 13 sd out
    elpd, mcse, rhat, ess = mixture_elpd(draw(CHAINS, DRAWS))
    assert np.all(np.abs(elpd - exact) < 4 * mcse + 1e-3), (elpd - exact) / mcse
    assert mcse.max() < 0.3 and np.all(rhat < 1.01) and ess.min() > 1000
    # PSIS on exact posterior draws is unreliable at the outlier (k > 0.7), fine elsewhere
    mu_post = rng.normal(y.sum() / (len(y) + 1), np.sqrt(1 / (len(y) + 1)), (CHAINS, DRAWS))
    ll = stats.norm.logpdf(y, mu_post[..., None], 1.0)
    k = np.asarray(az.loo(az.from_dict(posterior={"mu": mu_post}, log_likelihood={"y": ll}), pointwise=True).pareto_k)
    assert k[0] > 0.7 and np.all(k[1:] < 0.7)


def test_mixture_mcse_matches_the_spread_over_replications():
    """40 independent mixture samples of 4 x 1000: the sd of each month's estimate against the
    root-mean-square reported MCSE. With an outlier (k ~ 0.67) the delta-method MCSE is a
    little optimistic (ratios 1.07-1.34 measured; heavy-tailed weights), so within 0.8-1.6."""
    _, exact, draw, _ = conjugate(8, 7.0, 5)
    est, err = zip(*(mixture_elpd(draw(CHAINS, 1000))[:2] for _ in range(40)))
    ratio = np.std(est, axis=0) / np.sqrt(np.mean(np.square(err), axis=0))
    assert np.all((ratio > 0.8) & (ratio < 1.6)), ratio
    assert np.all(np.abs(np.mean(est, axis=0) - exact) < 4 * np.std(est, axis=0) / np.sqrt(40))


def test_loo_mixture_target_adds_the_log_sum_of_inverse_loo_densities(model_bundle):
    import jax.numpy as jnp

    from regimecast.model.filter import forward, leave_one_out, loo_mixture_potential, potential, transitions
    from regimecast.model.kernels import assemble, loglik_matrix
    from regimecast.model.graph import build_model
    from regimecast.model.spec import inputs, structure

    rm = model_bundle
    one = rm.model
    mix = build_model(rm.config, rm.priors, rm.design, loo_mixture=True)
    point = one.initial_point()
    point["mean_z"] = point["mean_z"] + 0.3
    st, data = structure(rm.config, rm.priors), inputs(rm.design)
    natural = one.unobserved_value_vars
    values = one.compile_fn(natural, inputs=one.value_vars, on_unused_input="ignore")(point)
    draw = {v.name: jnp.asarray(x) for v, x in zip(natural, values) if v.name in {rv.name for rv in one.free_RVs}}
    p = assemble(draw, st)
    ptrans = transitions(p, data.covariates)
    ll = loglik_matrix(p, data, st.family)
    loo = np.asarray(leave_one_out(p, ptrans, ll, forward(p, ptrans, ll)[3])[0])
    extra = float(logsumexp(-loo))
    assert float(loo_mixture_potential(draw, st, data)) == pytest.approx(float(potential(draw, st, data)) + extra,
                                                                         rel=1e-12)
    assert float(mix.compile_logp()(point)) == pytest.approx(float(one.compile_logp()(point)) + extra, rel=1e-12)
    with pytest.raises(ValueError, match="one panel"):
        build_model(rm.config, rm.priors, rm.design, panels=(rm.design,), loo_mixture=True)


def _loo(k, elpd):
    dates = pd.date_range("2001-01-01", periods=len(k), freq="MS")
    return LooPit(pd.Series(k, index=dates), float(np.sum(elpd)), 0.0, None, pd.Series([0.5], index=["x"]), 10,
                  elpd_pointwise=pd.Series(elpd, index=dates))


def _mix(loo, elpd, rhat):
    idx = loo.pareto_k.index
    return MixtureLoo(pd.Series(elpd, index=idx), pd.Series(0.01, index=idx), pd.Series(rhat, index=idx),
                      pd.Series(900.0, index=idx), 1.004, 0, 2000, 60.0)


def test_reliable_mixture_estimates_replace_psis_where_k_is_high():
    loo = _loo([0.1, 0.9, 0.8, 0.2], [-1.0, -5.0, -4.0, -2.0])
    mix = _mix(loo, [-1.1, -6.5, -9.0, -2.1], [1.0, 1.004, 1.2, 1.0])     # month 3's chains disagree
    out = with_mixture(loo, mix, 0.7, 1.01, 400)
    pw = np.array([-1.0, -6.5, -4.0, -2.0])
    assert out.elpd_loo == pytest.approx(pw.sum()) and out.elpd_se == pytest.approx(np.sqrt(4 * pw.var()))
    assert list(out.exact) == [False, True, False, False] and out.mixture is mix
    assert list(out.elpd_pointwise) == [-1.0, -5.0, -4.0, -2.0]                   # PSIS's, kept
    assert not with_mixture(loo, mix, 0.7, 1.01, 1000).exact.any()                # ESS 900 < 1000
    assert not with_mixture(loo, replace(mix, divergences=1), 0.7, 1.01, 400).exact.any()


def test_sample_mixture_runs_warm_on_a_real_fit(tiny_fit, monkeypatch):
    """Plumbing on the tiny real fit (2 x 30 draws: the numbers mean nothing, their shapes do);
    the mixture fit's worst R-hat and its divergences are those of the draws it sampled."""
    from conftest import TINY
    from regimecast.workflows.engine import RegimeModel
    from regimecast.fit.sampler import SamplerSettings
    from regimecast.checks.robust_loo import sample_mixture
    from regimecast.store.runs import load_run

    sampled = {}

    def spy(model, settings, **kw):
        sampled["names"] = [rv.name for rv in model.free_RVs]
        sampled["out"] = out = real_sample(model, settings, **kw)
        return out

    real_sample = robust_loo.sample
    monkeypatch.setattr(robust_loo, "sample", spy)
    run = load_run(tiny_fit[0])
    rm = RegimeModel.from_run(run)
    mix = sample_mixture(rm, run.idata, SamplerSettings(**(run.manifest["sampler"] | TINY | {"seed": 3,
                                                                                             "init": "warm"})))
    assert list(mix.elpd.index) == list(rm.design.dates) and mix.n_draws == 60
    assert np.isfinite(mix.elpd).all() and (mix.mcse > 0).all() and mix.elpd.max() < 5.0
    post = sampled["out"][0]
    rhat = az.rhat(post.posterior[sampled["names"]])                   # rank-normalised split R-hat
    assert mix.max_rhat_params == pytest.approx(max(float(rhat[n].max()) for n in sampled["names"]), rel=1e-9)
    assert mix.divergences == int(post.sample_stats["diverging"].values.sum()) and mix.wall_time_s > 0
