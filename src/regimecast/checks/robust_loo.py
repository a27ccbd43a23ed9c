"""Leave-one-out ELPD where PSIS is unreliable: mixture importance sampling.

Where a month's Pareto k exceeds the warn level, PSIS-LOO's estimate of its leave-one-out
predictive density cannot be trusted (Vehtari, Simpson, Gelman, Yao and Gabry 2024, JMLR
25(72)). Rather than refitting once per such month, the model is sampled once from the mixture
of every month's leave-one-out posterior (Silva and Zanella 2023, "Robust leave-one-out
cross-validation for high-dimensional Bayesian models", JASA 119(547)),

    q(theta) ∝ p(theta | y) sum_t r_t(theta),      r_t = 1 / p(y_t | y_-t, theta)

(:func:`regimecast.model.filter.loo_mixture_potential`), and for draws theta_s ~ q

    p(y_t | y_-t) = sum_s w_s / sum_s w_s r_t(theta_s),      w_s = 1 / sum_j r_j(theta_s).

The ratios w_s r_t(theta_s) lie in (0, 1], so every month's estimator has finite variance.
Its Monte Carlo error is the delta method's on the ratio of two means, with the effective
sample size of z_st = w_s / mean(w) - w_s r_st / mean(w r_t) (ArviZ), whose R-hat says
whether the chains agree on that month.
"""

from __future__ import annotations

import time
from dataclasses import replace

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from regimecast.fit.sampler import SamplerSettings, free_names, sample
from regimecast.fit.posterior import posterior_draws
from regimecast.model.filter import map_draws, month_left_out
from regimecast.model.kernels import Inputs, Structure, assemble
from regimecast.checks.loo_pit import LooPit, MixtureLoo
from regimecast.model.graph import build_model
from regimecast.model.spec import inputs, structure
from regimecast.fit.update import warm_start

CHUNK = 250   # draws per vmapped call


def mixture_elpd(loo_terms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """From ``loo_terms`` (C, S, T) = log p(y_t | y_-t, theta) of mixture draws (C chains of S):
    elpd, its MCSE, and the R-hat and bulk ESS of each month's ratio term, each (T,)."""
    L = np.asarray(loo_terms, float)
    a = -logsumexp(-L, axis=-1)                                   # (C, S) log w_s
    b = a[..., None] - L                                          # (C, S, T) log w_s r_t
    elpd = logsumexp(a) - logsumexp(b, axis=(0, 1))
    u = np.exp(a - logsumexp(a) + np.log(a.size))                 # w_s / mean(w)
    v = np.exp(b - logsumexp(b, axis=(0, 1)) + np.log(a.size))    # w_s r_t / mean(w r_t)
    z = xr.Dataset({"z": (("chain", "draw", "date"), u[..., None] - v)})
    ess = np.minimum(az.ess(z, method="bulk")["z"].values, az.ess(z, method="tail")["z"].values)
    rhat = az.rhat(z)["z"].values
    return elpd, np.sqrt(np.var(u[..., None] - v, axis=(0, 1)) / ess), rhat, ess


def loo_terms(draws: dict[str, np.ndarray], st: Structure, data: Inputs) -> np.ndarray:
    """(S, T) log p(y_t | y_-t, theta_s) for the S draws (free variables, leading draw axis)."""
    return map_draws(lambda d: month_left_out(assemble(d, st), data, st.family)[1], draws, CHUNK)


def sample_mixture(rm, idata: az.InferenceData, settings: SamplerSettings) -> MixtureLoo:
    """Sample the leave-one-out mixture of ``rm``'s model (:class:`regimecast.workflows.engine.RegimeModel`)
    warm from ``idata``'s highest-density draw, and estimate every month's elpd."""
    t0 = time.perf_counter()
    st = structure(rm.config, rm.priors)
    model = build_model(rm.config, rm.priors, rm.design, loo_mixture=True)
    names = free_names(model)
    start, _ = warm_start(idata, names)
    post, _, _ = sample(model, settings, progressbar=False, start=start)
    C, S = post.posterior.sizes["chain"], post.posterior.sizes["draw"]
    flat, _ = posterior_draws(post.posterior, names, C * S)                       # every draw, chain-major
    elpd, mcse, rhat, ess = mixture_elpd(loo_terms(flat, st, inputs(rm.design)).reshape(C, S, -1))
    div = int(post.sample_stats["diverging"].values.sum()) if "diverging" in post.sample_stats else 0
    rh = float(az.summary(post, var_names=names, kind="diagnostics", round_to="none")["r_hat"].max())
    idx = rm.design.dates
    return MixtureLoo(*(pd.Series(x, index=idx) for x in (elpd, mcse, rhat, ess)), rh, div, C * S,
                      time.perf_counter() - t0)


def with_mixture(loo: LooPit, mix: MixtureLoo, k_warn: float, max_rhat: float, min_ess: float) -> LooPit:
    """``loo`` with ``mix`` recorded: months whose Pareto k exceeds ``k_warn`` and whose mixture
    estimate is reliable take it in place of PSIS's in elpd_loo and its SE (``exact`` marks
    them; ``elpd_pointwise`` keeps PSIS's)."""
    use = (loo.pareto_k > k_warn) & mix.reliable(max_rhat, min_ess).reindex(loo.pareto_k.index, fill_value=False)
    pw = loo.elpd_pointwise.where(~use, mix.elpd.reindex(loo.pareto_k.index))
    return replace(loo, elpd_loo=float(pw.sum()), elpd_se=float(np.sqrt(len(pw) * pw.var(ddof=0))), mixture=mix,
                   exact=use)
