"""Univariate baseline forecasters for the backtest: each a pure function
``(seed, levels, horizon, n_samples, kind) -> paths`` that turns the monthly history of one
series up to the forecast origin into ``n_samples`` simulated paths of its level over months
1..``horizon`` after the origin, in the engine's units (y10 in percent, equity and gold prices,
VIX points). Score any horizon ``h`` from ``paths[:, h - 1]``.

Each works on the series' monthly *increments*: ``kind = "additive"`` (level differences,
for a yield in percent: percentage points per month) or ``kind = "log"`` (100 x log returns,
percent per month, for positive prices and the VIX). The increment of the first month after
the origin is added to the origin level (the last finite value of ``levels``).

- ``random_walk``: zero drift, normal increments with the standard deviation of the last
  ``RW_WINDOW`` months ("historical volatility").
- ``iid_gaussian``: normal increments with the mean and standard deviation of the whole history.
- ``markov_switching``: statsmodels ``MarkovRegression``, 2 regimes, switching mean and variance,
  simulated from the filtered regime probabilities at the origin.
- ``garch``: GARCH(1,1) with a constant mean and normal innovations (``arch``), simulated forward
  from the fitted conditional variance at the origin (arch's simulation forecast).
- ``historical``: historical simulation: each path replays the increments of one window of
  ``horizon`` consecutive months drawn uniformly from the history (a moving-block bootstrap of
  the sample's own h-month changes, as FRB/US's stochastic simulations resample history), so
  every horizon's change is one the sample has seen, with its autocorrelation kept.

Randomness: the seed is the first argument; every function draws from its own
``numpy.random.Generator`` seeded with it (arch's simulation is handed that generator's
``standard_normal``), never from global state.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

KINDS = ("additive", "log")
# Trailing window of the random walk's volatility: three years of monthly increments, the
# usual look-back of a monthly "historical volatility" (long enough for a standard deviation
# from 36 numbers, short enough to follow changes in volatility).
RW_WINDOW = 36
MIN_INCREMENTS = 24          # fewer finite increments: a baseline refuses to fit
MS_REGIMES = 2
# Historical simulation refuses fewer distinct windows than this: with fewer, the h-month change
# takes so few values that its quantiles (and so CRPS and coverage) are not a forecast.
MIN_WINDOWS = 24


Baseline = Callable[[int, np.ndarray, int, int, str], np.ndarray]


def increment_kind(transform: str) -> str:
    """The increment kind for a series' model transform: ``diff`` -> additive; a log
    transform (``log_diff_pct``, ``log``) -> log."""
    if transform == "diff":
        return "additive"
    if transform in ("log_diff_pct", "log"):
        return "log"
    raise ValueError(f"no baseline increments for transform {transform!r} (needs diff, log_diff_pct or log)")


def increments(levels: np.ndarray, kind: str) -> np.ndarray:
    """Finite monthly increments (T',) of a level history (T,): differences (additive) or
    100 x log differences (log); months next to a missing level are dropped."""
    x = np.asarray(levels, float)
    _check_kind(kind)
    if kind == "log":
        if np.any(x[np.isfinite(x)] <= 0):
            raise ValueError("log increments need positive levels")
        x = 100.0 * np.log(x)
    d = np.diff(x)
    d = d[np.isfinite(d)]
    if d.size < MIN_INCREMENTS:
        raise ValueError(f"{d.size} finite monthly increments; a baseline needs at least {MIN_INCREMENTS}")
    return d


def last_level(levels: np.ndarray) -> float:
    """The level at the origin: the last finite value of the history."""
    x = np.asarray(levels, float)
    ok = np.flatnonzero(np.isfinite(x))
    if ok.size == 0:
        raise ValueError("no finite level in the history")
    return float(x[ok[-1]])


def to_levels(origin_level: float, incr_paths: np.ndarray, kind: str) -> np.ndarray:
    """Level paths (N, H) from increment paths (N, H) and the origin level."""
    _check_kind(kind)
    c = np.cumsum(incr_paths, axis=-1)
    return origin_level + c if kind == "additive" else origin_level * np.exp(c / 100.0)


# ---- random walk and iid Gaussian ------------------------------------------------------------
def random_walk(seed: int, levels: np.ndarray, horizon: int, n_samples: int, kind: str) -> np.ndarray:
    """Driftless random walk with the standard deviation (ddof 1) of the last ``RW_WINDOW``
    increments: level h months ahead ~ N(L0, h s^2) (additive) or L0 exp(N(0, h s^2) / 100) (log)."""
    d = increments(levels, kind)[-RW_WINDOW:]
    rng = np.random.default_rng(seed)
    return to_levels(last_level(levels), rng.normal(0.0, d.std(ddof=1), (n_samples, horizon)), kind)


def iid_gaussian(seed: int, levels: np.ndarray, horizon: int, n_samples: int, kind: str) -> np.ndarray:
    """Normal iid increments with the whole history's mean and standard deviation (ddof 1):
    level h months ahead ~ N(L0 + h m, h s^2) (additive) or L0 exp(N(h m, h s^2) / 100) (log)."""
    d = increments(levels, kind)
    rng = np.random.default_rng(seed)
    return to_levels(last_level(levels), rng.normal(d.mean(), d.std(ddof=1), (n_samples, horizon)), kind)


# ---- Markov switching ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MarkovParams:
    """A fitted 2-regime Markov-switching normal model of increments.

    ``mean``, ``sd`` (K,) per regime; ``transition`` (K, K), rows = from, columns = to (each
    row sums to 1); ``last`` (K,) filtered regime probabilities at the origin month.
    """

    mean: np.ndarray
    sd: np.ndarray
    transition: np.ndarray
    last: np.ndarray


def markov_fit(x: np.ndarray) -> MarkovParams:
    """Fit statsmodels' ``MarkovRegression`` (constant per regime, switching variance) by
    maximum likelihood from its default (deterministic) starting values."""
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    model = MarkovRegression(np.asarray(x, float), k_regimes=MS_REGIMES, trend="c", switching_variance=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # convergence chatter; the result is checked below
        res = model.fit(disp=False)
    p = dict(zip(model.param_names, np.asarray(res.params, float)))
    # statsmodels: regime_transition[i, j] = P(S_t = i | S_{t-1} = j) (columns = from): transpose.
    trans = np.asarray(res.regime_transition, float)[..., 0].T
    out = MarkovParams(mean=np.array([p[f"const[{k}]"] for k in range(MS_REGIMES)]),
                       sd=np.sqrt([p[f"sigma2[{k}]"] for k in range(MS_REGIMES)]),
                       transition=trans, last=np.asarray(res.filtered_marginal_probabilities, float)[-1])
    if not (np.all(np.isfinite(out.mean)) and np.all(out.sd > 0) and np.allclose(trans.sum(1), 1.0)):
        raise ValueError(f"MarkovRegression fit is degenerate: {p}")
    return out


def markov_paths(seed: int, params: MarkovParams, horizon: int, n_samples: int) -> np.ndarray:
    """Increment paths (N, H): regime at month 1 drawn from ``last @ transition``, then a
    Markov chain; increment ~ N(mean[s], sd[s]^2) given the regime s."""
    rng = np.random.default_rng(seed)
    cum = np.cumsum(params.transition, axis=1)
    state = (rng.random(n_samples)[:, None] > np.cumsum(params.last)[None, :-1]).sum(1)   # regime at the origin
    out = np.empty((n_samples, horizon))
    for t in range(horizon):
        u = rng.random(n_samples)
        state = (u[:, None] > cum[state][:, :-1]).sum(1)
        out[:, t] = rng.normal(params.mean[state], params.sd[state])
    return out


def markov_switching(seed: int, levels: np.ndarray, horizon: int, n_samples: int, kind: str) -> np.ndarray:
    """2-regime Markov-switching increments (see :func:`markov_fit`, :func:`markov_paths`)."""
    params = markov_fit(increments(levels, kind))
    return to_levels(last_level(levels), markov_paths(seed, params, horizon, n_samples), kind)


# ---- GARCH(1,1) ---------------------------------------------------------------------------------
def garch_fit(x: np.ndarray):
    """GARCH(1,1) with a constant mean and normal innovations fitted by ``arch`` (which rescales
    the data by a power of 10 for its optimiser where needed; ``result.scale``)."""
    from arch import arch_model

    am = arch_model(np.asarray(x, float), mean="Constant", vol="GARCH", p=1, q=1, dist="normal", rescale=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # ConvergenceWarning is checked through the flag below
        res = am.fit(disp="off")
    if res.convergence_flag != 0 or not np.all(np.isfinite(res.params)):
        raise ValueError(f"GARCH(1,1) fit did not converge (flag {res.convergence_flag}): {dict(res.params)}")
    return res


def garch(seed: int, levels: np.ndarray, horizon: int, n_samples: int, kind: str) -> np.ndarray:
    """GARCH(1,1) increments simulated by arch's simulation forecast from the origin."""
    res = garch_fit(increments(levels, kind))
    gen = np.random.default_rng(seed)
    fc = res.forecast(horizon=horizon, method="simulation", simulations=n_samples,
                      rng=gen.standard_normal, reindex=False)       # standardised normal innovations
    sims = np.asarray(fc.simulations.values, float)[-1] / res.scale         # (N, H), back in data units
    return to_levels(last_level(levels), sims, kind)


# ---- historical simulation ---------------------------------------------------------------------
def historical(seed: int, levels: np.ndarray, horizon: int, n_samples: int, kind: str) -> np.ndarray:
    """Paths (N, H) that each replay one window of ``horizon`` consecutive monthly increments of
    the history, the window's first month uniform over the ``T' - H + 1`` windows of the
    ``T'`` finite increments (so a path's h-month change is one of the history's h-month
    changes, overlapping windows included)."""
    d = increments(levels, kind)
    n_windows = d.size - horizon + 1
    if n_windows < MIN_WINDOWS:
        raise ValueError(f"{d.size} monthly increments give {max(n_windows, 0)} windows of {horizon} months; "
                         f"historical simulation needs at least {MIN_WINDOWS}")
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n_windows, n_samples)
    return to_levels(last_level(levels), d[first[:, None] + np.arange(horizon)[None, :]], kind)


BASELINES: dict[str, Baseline] = {
    "random_walk": random_walk,
    "iid_gaussian": iid_gaussian,
    "markov_switching": markov_switching,
    "garch": garch,
    "historical": historical,
}
LABELS = {"random_walk": "random walk", "iid_gaussian": "iid Gaussian", "markov_switching": "Markov switching",
          "garch": "GARCH(1,1)", "historical": "historical simulation"}
DESCRIPTIONS = {
    "random_walk": f"driftless random walk with the {RW_WINDOW}-month historical volatility",
    "iid_gaussian": "iid Gaussian increments with the whole history's mean and standard deviation",
    "markov_switching": "statsmodels MarkovRegression, 2 regimes with switching mean and variance",
    "garch": "GARCH(1,1) with a constant mean and normal innovations (arch)",
    "historical": "historical simulation: a uniformly drawn window of the history's own consecutive monthly "
                  "changes replayed from the origin",
}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"increment kind {kind!r}: must be one of {', '.join(KINDS)}")
