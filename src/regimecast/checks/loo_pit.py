"""LOO-PIT of each month's leave-one-out predictive distributions, and PSIS-LOO's Pareto k.

What it is. For month t, series j and posterior draw s, the predictive distribution of y_tj
given every other month is a mixture over P(state_t | y_-t, theta_s) (the forward messages
before t times the backward messages after it, :func:`regimecast.model.filter.leave_one_out`) of
the emission's marginal for series j: a Student-t (or normal) with the state's mean (plus the
AR term) and scale sqrt((L_p L_p')_jj exp(2 log_scale_oj) + meas_sd_j^2). Its CDF at the
observed value is the PIT, computed exactly (no predictive draws). The run's
``log_likelihood.y`` holds log p(y_t | y_-t, theta_s) (all series of month t), whose inverse is
the exact importance ratio of leaving month t out; PSIS (Vehtari et al. 2024) smooths the
ratios, and the LOO-PIT is the weighted mean of the per-draw PITs: the PIT of y_tj under the
posterior predictive given every other month (Gelfand, Dey and Chang 1992; Saeilynoja, Buerkner
and Vehtari 2022, "Graphical test for discrete uniformity and its applications in goodness-of-
fit evaluation and multiple sample comparison", Stat. Comput. 32). Under a calibrated model
each LOO-PIT is U(0, 1), so each series' LOO-PITs are tested against U(0, 1) with a
Kolmogorov-Smirnov test; the PITs of different months are dependent through the shared
posterior, so its p-value is approximate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz as az
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
from jax.scipy.special import betainc
from jax.scipy.stats import norm
from scipy import stats

from regimecast.model.filter import map_draws, month_left_out
from regimecast.model.kernels import Inputs, Params, Structure, assemble
from regimecast.fit.posterior import LOO_VAR

CHUNK = 100   # posterior draws per vmapped call: bounds memory at CHUNK x (T, P, O, D) floats


@dataclass(frozen=True)
class MixtureLoo:
    """Each month's elpd from the mixture draws, with its Monte Carlo standard error, the
    R-hat and bulk ESS of its importance ratio (all (date,) Series); the mixture fit's worst
    parameter R-hat, divergences, draws and wall time (s)."""

    elpd: pd.Series
    mcse: pd.Series
    rhat: pd.Series
    ess: pd.Series
    max_rhat_params: float
    divergences: int
    n_draws: int
    wall_time_s: float

    def reliable(self, max_rhat: float, min_ess: float) -> pd.Series:
        """(date,) bool: the month's estimate meets the fit thresholds and no draw diverged."""
        return (self.rhat <= max_rhat) & (self.ess >= min_ess) & (self.divergences == 0)


@dataclass(frozen=True)
class LooPit:
    """``pareto_k`` (date,) PSIS shape of each month over all draws; ``elpd_loo`` and its
    standard error; ``pit`` (date, series) LOO-PIT, NaN where the cell is not in the likelihood;
    ``ks_pvalue`` (series,) Kolmogorov-Smirnov p-value of each series' LOO-PITs against U(0, 1);
    ``n_draws`` the posterior draws the PITs were computed on; ``elpd_pointwise`` (date,) each
    month's PSIS elpd; ``mixture`` the mixture-importance-sampling estimates
    (:class:`MixtureLoo`, sampled by :mod:`regimecast.checks.robust_loo`) and ``exact`` (date,) bool: the months where
    they replace PSIS's in ``elpd_loo`` and ``elpd_se``."""

    pareto_k: pd.Series
    elpd_loo: float
    elpd_se: float
    pit: xr.DataArray
    ks_pvalue: pd.Series
    n_draws: int
    elpd_pointwise: pd.Series | None = None
    mixture: MixtureLoo | None = None
    exact: pd.Series | None = None


def student_t_cdf(x: jnp.ndarray, nu: jnp.ndarray) -> jnp.ndarray:
    """CDF of the standard Student-t with ``nu`` degrees of freedom:
    1 - I_{nu/(nu+x^2)}(nu/2, 1/2) / 2 for x >= 0 and its mirror for x < 0."""
    tail = 0.5 * betainc(nu / 2.0, 0.5, nu / (nu + x**2))
    return jnp.where(x >= 0, 1.0 - tail, tail)


def marginal_scale(params: Params, meas_sd: np.ndarray | None) -> jnp.ndarray:
    """(P, O, D) sd-like scale of each series' marginal emission in every joint state."""
    var = jnp.sum(params.chol**2, axis=-1)[:, None, :] * jnp.exp(2.0 * params.log_scale)[None]
    if meas_sd is not None:
        var = var + jnp.asarray(meas_sd) ** 2
    return jnp.sqrt(var)


def loo_pit_draw(params: Params, data: Inputs, family: str) -> jnp.ndarray:
    """(T, D) PIT of every observation under its predictive distribution given every other
    month, for one draw; NaN where the observation (or an AR series' lag) is missing."""
    _, _, state = month_left_out(params, data, family)                                   # (T, P, O)
    mean = (params.mean[None, :, None, :] + params.shift[None, None, :, :]
            + (params.ar_coef * data.ar_lag)[:, None, None, :])                        # (T, P, O, D)
    z = (data.y[:, None, None, :] - mean) / marginal_scale(params, data.meas_sd)[None]
    cdf = norm.cdf(z) if family == "normal" else student_t_cdf(z, params.nu)
    return jnp.einsum("tpo,tpod->td", state, cdf)


def pit_draws(draws: dict[str, np.ndarray], st: Structure, data: Inputs) -> np.ndarray:
    """(S, T, D) leave-one-out PITs for each of the S draws (chunks of CHUNK)."""
    return map_draws(lambda d: loo_pit_draw(assemble(d, st), data, st.family), draws, CHUNK)


def loo_pit(idata: az.InferenceData, pits: np.ndarray, flat_idx: np.ndarray, series: list[str]) -> LooPit:
    """LOO-PIT from per-draw PITs ``pits`` (S, T, D) of the draws ``flat_idx`` (chain-major
    flat indices) and the run's per-month leave-one-out log densities (``log_likelihood.y``). PSIS
    on the draws' log weights uses relative efficiency 1 (the draws are evenly thinned); Pareto k
    and elpd_loo come from ``az.loo`` on every draw."""
    with warnings.catch_warnings():      # high Pareto k is reported by the review, not as a warning
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        loo = az.loo(idata, pointwise=True, var_name=LOO_VAR)
    ll = idata.log_likelihood[LOO_VAR].transpose("chain", "draw", "date")
    dates = pd.DatetimeIndex(ll["date"].values)
    flat = ll.values.reshape(-1, ll.sizes["date"])[flat_idx]                          # (S, T)
    lw, _ = az.psislw(-flat.T, reff=1.0)                                               # (T, S), normalised
    w = np.exp(lw)
    pit = np.einsum("ts,std->td", w, np.where(np.isnan(pits), 0.0, pits))
    pit = np.where(np.isnan(pits).any(0), np.nan, np.clip(pit, 0.0, 1.0))
    ks = [stats.kstest(col[np.isfinite(col)], "uniform").pvalue if np.isfinite(col).sum() else np.nan
          for col in pit.T]
    return LooPit(pareto_k=pd.Series(np.asarray(loo.pareto_k), index=dates, name="pareto_k"),
                  elpd_loo=float(loo.elpd_loo), elpd_se=float(loo.se),
                  pit=xr.DataArray(pit, dims=("date", "series"), coords={"date": dates, "series": series}),
                  ks_pvalue=pd.Series(ks, index=series, name="ks_pvalue"), n_draws=len(flat_idx),
                  elpd_pointwise=pd.Series(np.asarray(loo.loo_i), index=dates, name="elpd"))
