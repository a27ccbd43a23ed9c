"""Posterior predictive checks that matter for a regime model, on whole replicated samples.

A replicated sample: for one posterior draw, the joint hidden state starts from the draw's
initial distribution (the month before the sample) and the model runs forward over the T months
of the sample with :func:`regimecast.simulate.paths.simulate_forward`, the simulator of the forecasts:
policy transition probabilities are recomputed on the replicated path every month (a replicated
drawdown moves them as a real one would). Covariates whose source the model does not simulate
(SOFR - IORB) are held at their pre-sample value, as a forecast holds them at the origin's.

Each check compares a statistic of the data with its distribution over the replicates
(``p = P(T_rep >= T_obs)``, ties counted half; Gelman et al. 2013, BDA3 ch. 6.3):

- tails: mean, sd, 1% and 99% quantiles and excess kurtosis of each series' monthly change;
- volatility clustering: autocorrelation of the absolute changes at lag 1 and averaged over
  lags 1..``ACF_SUMMARY_LAGS``;
- durations: share of months and mean spell length of each policy state, the data's from the
  posterior's modal smoothed path (argmax of the posterior-mean smoothed probabilities), the
  replicates' from their simulated paths (classification errors in the data's path shorten
  its spells and blur its within-state statistics; the replicates know their states);
- correlations: within each policy state, of each pair of asset changes.

"Change" is the observation itself for series observed as changes or returns, and the first
difference for series observed as levels (log VIX, inflation year on year), so that every
statistic is about monthly moves. Replicated cells are masked where the data are missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from regimecast.config.model_file import ModelConfig
from regimecast.data.panel import Panel, transform_levels
from regimecast.model.design import Design
from regimecast.simulate.forecast import drawdown_window, forward_spec
from regimecast.model.kernels import Structure, assemble
from regimecast.simulate.paths import (COV_DRAWDOWN, COV_FIXED, COV_OBSERVED, LEVEL_DIFF, LEVEL_EXP, LEVEL_IS_OBS,
                                 LEVEL_LOG_RETURN, ForwardSpec, Origin, simulate_forward)

ACF_LAGS = 12            # lags of the autocorrelation figure (a year of months)
ACF_SUMMARY_LAGS = 6     # the "mean over lags" statistic: volatility clustering within half a year
TAIL_QUANTILES = (0.01, 0.99)
# A within-state correlation of fewer months has sampling sd >= 1/sqrt(12 - 3) = 0.33
# (Fisher's z): not a statistic worth checking.
MIN_STATE_MONTHS = 12
MIN_REPLICATES = 20      # fewer replicates with the statistic defined: no p-value


@dataclass(frozen=True)
class PPC:
    """Posterior predictive checks.

    table: one row per statistic: ``check``, ``statistic``, ``subject`` (series, state or
        pair), ``observed``, ``p_value``, ``rep_q05``, ``rep_median``, ``rep_q95``, ``n_rep``.
    replicates: (n_statistics, R) the statistic in each replicate, rows as in ``table``.
    data: ``observed`` (date, series) and ``replicated`` (replicate, date, series) changes;
        ``acf_observed`` (series, lag) and ``acf_replicated`` (replicate, series, lag) of the
        absolute changes; ``modal_policy`` (date) state index of the data's modal path;
        the policy state names in ``attrs["states"]``.
    """

    table: pd.DataFrame
    replicates: np.ndarray
    data: xr.Dataset


def presample_obs(config: ModelConfig, panel: Panel, month: pd.Timestamp) -> np.ndarray:
    """(D,) observations in model units (uncentred) at ``month``; NaN where undefined."""
    specs = {s.name: s for s in config.series}
    out = []
    for s in config.observed:
        lv = panel.levels.sel(series=s)
        full = transform_levels(specs[s], pd.Series(lv.values.astype(float), index=pd.DatetimeIndex(lv["date"].values)))
        out.append(float(full.get(month, np.nan)))
    return np.array(out)


def presample_origin(config: ModelConfig, design: Design, panel: Panel, spec: ForwardSpec) -> Origin:
    """The :class:`~regimecast.simulate.Origin` of a replicated sample: the month before the
    first month of ``design``. An observation the simulation never reads (not an AR lag, not a
    covariate source) may be undefined there (Fed assets' growth in 2002-12): it is set to its
    AR centre. Raises ValueError naming a series whose needed value is missing."""
    pre = design.dates[0] - pd.DateOffset(months=1)
    obs = presample_obs(config, panel, pre)
    read = design.is_ar.copy()
    read[spec.cov_col[spec.cov_kind == COV_OBSERVED]] = True
    levels = panel.levels.sel(series=list(config.observed)).to_pandas().loc[:pre]
    window = levels.tail(drawdown_window(config)).to_numpy()
    if len(window) < drawdown_window(config):
        raise ValueError(f"only {len(window)} months of levels before {design.dates[0]:%Y-%m}: the drawdown "
                         f"covariate needs {drawdown_window(config)}")
    is_obs = spec.level_rule == LEVEL_IS_OBS
    window = np.where(is_obs[None], obs[None], window)          # e.g. inflation: its level is the yoy rate
    need_level = ~is_obs & (spec.level_rule != LEVEL_EXP)        # levels integrated from changes
    draw_cols = np.unique(spec.cov_col[spec.cov_kind == COV_DRAWDOWN])
    bad = [s for j, s in enumerate(config.observed)
           if (read[j] and np.isnan(obs[j])) or (need_level[j] and np.isnan(window[-1, j]))
           or (j in draw_cols and np.isnan(window[:, j]).any())]
    if bad:
        raise ValueError(f"no pre-sample value at {pre:%Y-%m} for {bad}: cannot replicate the sample")
    obs = np.where(np.isnan(obs) & ~read, design.ar_center, obs)
    return Origin(obs=obs, level=window[-1], window=window)


def replication_spec(config: ModelConfig, design: Design, panel: Panel) -> ForwardSpec:
    """The forecast's :class:`ForwardSpec` with covariates that are not simulated held at their
    pre-sample value (the design's first row is the covariates of the month before the sample)."""
    spec = forward_spec(config, design, panel)
    fixed = spec.cov_kind == COV_FIXED
    return spec._replace(cov_fixed=np.where(fixed, design.covariates[0], spec.cov_fixed))


def replicate(key: jax.Array, draws: dict[str, np.ndarray], st: Structure, spec: ForwardSpec, org: Origin,
              n_paths: int, n_months: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_paths`` replicated samples of ``n_months`` per posterior draw (draw ``i`` uses
    ``fold_in(key, i)``). Returns natural levels (S, N, T, D) and policy state indices (S, N, T)."""
    def one(draw, i):
        params = assemble(draw, st)
        return simulate_forward(jax.random.fold_in(key, i), params, params.init, org, spec, n_paths, n_months,
                                st.family)

    S = len(next(iter(draws.values())))
    levels, policy, _ = jax.jit(jax.vmap(one))(draws, jnp.arange(S))
    return np.asarray(levels), np.asarray(policy)


def obs_from_levels(levels: np.ndarray, level0: np.ndarray, rule: np.ndarray) -> np.ndarray:
    """Observations in model units (..., T, D) from natural levels (..., T, D) and the levels
    ``level0`` (D,) of the month before: the inverse of :func:`regimecast.simulate.paths.integrate`."""
    levels = np.asarray(levels, float)
    prev = np.concatenate([np.broadcast_to(level0, levels.shape[:-2] + (1, levels.shape[-1])), levels[..., :-1, :]],
                          axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rule == LEVEL_DIFF, levels - prev,
                        np.where(rule == LEVEL_LOG_RETURN, 100.0 * np.log(levels / prev),
                                 np.where(rule == LEVEL_EXP, np.log(levels), levels)))


def changes(obs: np.ndarray, obs0: np.ndarray, rule: np.ndarray) -> np.ndarray:
    """Monthly changes (..., T, D): ``obs`` itself for change and return series, its first
    difference (the first month against ``obs0`` (D,)) for series observed as levels."""
    obs = np.asarray(obs, float)
    prev = np.concatenate([np.broadcast_to(obs0, obs.shape[:-2] + (1, obs.shape[-1])), obs[..., :-1, :]], axis=-2)
    return np.where(np.isin(rule, (LEVEL_DIFF, LEVEL_LOG_RETURN)), obs, obs - prev)


# --- statistics: each reduces the time axis; NaN cells are left out --------------------------

def tail_statistics(x: np.ndarray, axis: int = -1) -> dict[str, np.ndarray]:
    """Mean, sd (ddof 1), 1% and 99% quantiles and excess kurtosis (moment estimator, as
    ``scipy.stats.kurtosis`` with its defaults) of ``x`` along ``axis``."""
    m = np.nanmean(x, axis=axis, keepdims=True)
    c = x - m
    m2, m4 = np.nanmean(c**2, axis=axis), np.nanmean(c**4, axis=axis)
    lo, hi = np.nanquantile(x, TAIL_QUANTILES, axis=axis)
    return {"mean": np.squeeze(m, axis), "sd": np.nanstd(x, axis=axis, ddof=1), f"q{TAIL_QUANTILES[0]:.2f}": lo,
            f"q{TAIL_QUANTILES[1]:.2f}": hi, "excess kurtosis": m4 / m2**2 - 3.0}


def acf(x: np.ndarray, nlags: int) -> np.ndarray:
    """Autocorrelation at lags 1..nlags of ``x`` (..., T), as ``statsmodels.tsa.stattools.acf``
    (biased autocovariances over the sum of squares). NaN cells are left out of the mean and
    of every cross-product."""
    c = x - np.nanmean(x, axis=-1, keepdims=True)
    c = np.where(np.isnan(c), 0.0, c)
    denom = np.sum(c**2, axis=-1)
    return np.stack([np.sum(c[..., :-k] * c[..., k:], axis=-1) / denom for k in range(1, nlags + 1)], axis=-1)


def spell_statistics(paths: np.ndarray, n_states: int) -> tuple[np.ndarray, np.ndarray]:
    """Share of months and mean spell length (months) of each state on state paths (R, T):
    both (R, n_states); the mean spell is NaN for a state never visited. Spells cut by the
    ends of the sample count as they are, in the data and the replicates alike."""
    paths = np.asarray(paths)
    start = np.ones(paths.shape, bool)
    start[:, 1:] = paths[:, 1:] != paths[:, :-1]
    months = np.stack([(paths == s).sum(-1) for s in range(n_states)], axis=-1)
    spells = np.stack([((paths == s) & start).sum(-1) for s in range(n_states)], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return months / paths.shape[1], np.where(spells > 0, months / np.maximum(spells, 1), np.nan)


def state_correlations(x: np.ndarray, paths: np.ndarray, n_states: int, pairs: list[tuple[int, int]],
                       min_months: int = MIN_STATE_MONTHS) -> np.ndarray:
    """Pearson correlation of each column pair of ``x`` (R, T, D) over the months each path
    (R, T) spends in each state: (R, n_states, n_pairs); NaN with fewer than ``min_months``."""
    out = np.full((x.shape[0], n_states, len(pairs)), np.nan)
    for s in range(n_states):
        for k, (i, j) in enumerate(pairs):
            m = (paths == s) & np.isfinite(x[..., i]) & np.isfinite(x[..., j])
            n = m.sum(-1)
            xi, xj = (np.where(m, x[..., c], 0.0) for c in (i, j))
            with np.errstate(invalid="ignore", divide="ignore"):
                di = np.where(m, xi - xi.sum(-1, keepdims=True) / n[:, None], 0.0)
                dj = np.where(m, xj - xj.sum(-1, keepdims=True) / n[:, None], 0.0)
                r = (di * dj).sum(-1) / np.sqrt((di**2).sum(-1) * (dj**2).sum(-1))
            out[:, s, k] = np.where(n >= min_months, r, np.nan)
    return out


def ppc_pvalue(rep: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(T_rep >= T_obs), ties counted half, over the finite replicates of each statistic:
    ``rep`` (n, R), ``obs`` (n,). Returns (p (n,), number of finite replicates (n,)); p is NaN
    where T_obs is undefined or fewer than MIN_REPLICATES replicates define T_rep."""
    ok = np.isfinite(rep)
    n = ok.sum(-1)
    o = np.asarray(obs, float)[:, None]
    above = (ok & (rep > o)).sum(-1) + 0.5 * (ok & (rep == o)).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = above / n
    return np.where(np.isfinite(obs) & (n >= MIN_REPLICATES), p, np.nan), n


# --- the checks ---------------------------------------------------------------------------

def posterior_predictive(key: jax.Array, draws: dict[str, np.ndarray], st: Structure, config: ModelConfig,
                         design: Design, panel: Panel, modal_path: np.ndarray, n_paths: int) -> PPC:
    """Replicate the sample ``n_paths`` times per posterior draw and run every check."""
    spec = replication_spec(config, design, panel)
    org = presample_origin(config, design, panel, spec)
    levels, policy = replicate(key, draws, st, spec, org, n_paths, design.n_months)
    S, N, T, D = levels.shape
    rule = spec.level_rule
    obs0 = presample_obs(config, panel, design.dates[0] - pd.DateOffset(months=1))
    data = changes(design.y + design.ar_center, obs0, rule)                        # (T, D)
    rep = changes(obs_from_levels(levels.reshape(S * N, T, D), org.level, rule), obs0, rule)
    rep = np.where(np.isnan(data)[None], np.nan, rep)                              # (R, T, D)
    paths = policy.reshape(S * N, T)
    series, states = list(config.observed), list(st.policy_states)
    rows, reps = [], []

    def add(check, stat, subjects, obs_vals, rep_vals):
        for k, subj in enumerate(subjects):
            rows.append((check, stat, subj, float(obs_vals[k])))
            reps.append(np.asarray(rep_vals[:, k], float))

    t_obs, t_rep = tail_statistics(data.T), tail_statistics(np.swapaxes(rep, 1, 2))
    for stat in t_obs:
        add("tails", stat, series, t_obs[stat], t_rep[stat])
    a_obs, a_rep = acf(np.abs(data.T), ACF_LAGS), acf(np.abs(np.swapaxes(rep, 1, 2)), ACF_LAGS)
    add("volatility clustering", "acf |change| lag 1", series, a_obs[:, 0], a_rep[..., 0])
    add("volatility clustering", f"acf |change| mean lags 1-{ACF_SUMMARY_LAGS}", series,
        a_obs[:, :ACF_SUMMARY_LAGS].mean(-1), a_rep[..., :ACF_SUMMARY_LAGS].mean(-1))
    (occ_o, dur_o), (occ_r, dur_r) = (spell_statistics(x, len(states)) for x in (modal_path[None], paths))
    add("durations", "share of months", states, occ_o[0], occ_r)
    add("durations", "mean spell (months)", states, dur_o[0], dur_r)
    assets = [series.index(a) for a in config.assets if a in series]
    pairs = list(combinations(assets, 2))
    c_obs = state_correlations(data[None], modal_path[None], len(states), pairs)[0]
    c_rep = state_correlations(rep, paths, len(states), pairs)
    for s, name in enumerate(states):
        add("correlations", f"within {name}", [f"{series[i]}|{series[j]}" for i, j in pairs], c_obs[s], c_rep[:, s])
    replicates = np.stack(reps)
    p, n = ppc_pvalue(replicates, np.array([r[3] for r in rows]))
    q = np.full((len(rows), 3), np.nan)
    enough = n >= MIN_REPLICATES
    if enough.any():
        q[enough] = np.nanquantile(replicates[enough], (0.05, 0.5, 0.95), axis=-1).T
    table = pd.DataFrame(rows, columns=["check", "statistic", "subject", "observed"])
    table = table.assign(p_value=p, rep_q05=q[:, 0], rep_median=q[:, 1], rep_q95=q[:, 2], n_rep=n)
    ds = xr.Dataset(
        {"observed": (("date", "series"), data),
         "replicated": (("replicate", "date", "series"), rep.astype(np.float32)),
         "acf_observed": (("series", "lag"), a_obs), "acf_replicated": (("replicate", "series", "lag"), a_rep),
         "modal_policy": (("date",), np.asarray(modal_path, int))},
        coords={"date": design.dates, "series": series, "lag": np.arange(1, ACF_LAGS + 1),
                "replicate": np.arange(S * N)}, attrs={"states": states})
    return PPC(table, replicates, ds)
