"""Scores of probabilistic forecasts against what happened (pure array functions).

Every function takes observations ``obs`` (...) and forecast samples ``samples`` (..., M)
(ensemble on the last axis) and returns one number per observation. Scores are negatively
oriented (lower is better), as in scoringrules.

- ``crps``: the continuous ranked probability score, ``scoringrules.crps_ensemble`` with the
  probability-weighted-moment estimator ("pwm"): it equals the "fair" estimator (unbiased for
  the distribution the samples come from, so ensembles of different sizes compare fairly) but
  needs a sort, not all M^2 pairs.
- ``log_score``: minus the log predictive density of a Gaussian kernel density estimate of the
  ensemble with Silverman's bandwidth: the estimator of ``scoringrules.logs_ensemble``,
  computed in log space so that an observation far in a tail gives a large finite score where
  scoringrules' density underflows to 0 (score ``inf``). Equal to it wherever that is finite.
- ``pit``: the probability integral transform, the forecast CDF at the observation.
- ``covered``: whether the observation lies in the central ``level`` interval of the samples.
- ``brier``: ``scoringrules.brier_score`` of event probabilities against 0/1 outcomes.

From quantiles (the forecast ledger stores quantiles, not samples): ``crps_from_quantiles``,
``2 * sum_i w_i * pinball(y, q_i, a_i)`` with ``w_i`` the width of level ``a_i``'s cell on
[0, 1] (``quantile_weights``), a Riemann sum of ``CRPS = 2 * integral_0^1 pinball_a da``.

Summaries over cases: ``pit_histogram`` (counts in equal bins of [0, 1]) and
``coverage_curve`` (empirical coverage of central intervals at nominal levels, from PITs).
"""

from __future__ import annotations

import numpy as np
import scoringrules as sr
from scipy.special import logsumexp

CRPS_ESTIMATOR = "pwm"       # = the fair estimator, O(M log M)
SILVERMAN = 1.06              # Silverman's rule of thumb, as in scoringrules.logs_ensemble
IQR_NORMAL = 1.34             # interquartile range of a standard normal
PIT_BINS = 10


INTERVALS = (0.5, 0.9)   # central interval levels whose coverage is scored (backtest and ledger)


def interval_bounds(level: float) -> tuple[float, float]:
    """The quantile levels ``((1 - level) / 2, (1 + level) / 2)`` of the central ``level``
    interval, rounded to 12 decimals (0.9 -> (0.05, 0.95) exactly, the ledger's stored levels)."""
    return round((1 - level) / 2, 12), round((1 + level) / 2, 12)


def crps(obs, samples) -> np.ndarray:
    """CRPS (...) of ensembles ``samples`` (..., M) at ``obs`` (...), in the units of ``obs``."""
    obs, samples = _check(obs, samples)
    return np.asarray(sr.crps_ensemble(obs, samples, estimator=CRPS_ESTIMATOR, backend="numpy"), float)


def kde_bandwidth(samples) -> np.ndarray:
    """Silverman's bandwidth (...) of ensembles (..., M): 1.06 min(sd, IQR / 1.34) M^(-1/5)."""
    x = np.asarray(samples, float)
    q75, q25 = np.quantile(x, [0.75, 0.25], axis=-1)
    return SILVERMAN * np.minimum(x.std(axis=-1), (q75 - q25) / IQR_NORMAL) * x.shape[-1] ** (-0.2)


def log_score(obs, samples) -> np.ndarray:
    """Minus the log density (...) at ``obs`` of the Gaussian KDE of ``samples`` (..., M)."""
    obs, samples = _check(obs, samples)
    bw = kde_bandwidth(samples)[..., None]
    z = (obs[..., None] - samples) / bw
    logpdf = -0.5 * z**2 - np.log(bw) - 0.5 * np.log(2 * np.pi)
    return -(logsumexp(logpdf, axis=-1) - np.log(samples.shape[-1]))


def pit(obs, samples) -> np.ndarray:
    """Forecast CDF (...) at ``obs``: the share of samples below it, ties counted half."""
    obs, samples = _check(obs, samples)
    below = (samples < obs[..., None]).mean(-1)
    return below + 0.5 * (samples == obs[..., None]).mean(-1)


def covered(obs, samples, level: float) -> np.ndarray:
    """True (...) where ``obs`` lies in the central ``level`` interval (sample quantiles
    (1 - level) / 2 and (1 + level) / 2, inclusive) of ``samples`` (..., M)."""
    if not 0 < level < 1:
        raise ValueError(f"interval level {level}: must be in (0, 1)")
    obs, samples = _check(obs, samples)
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=-1)
    return (lo <= obs) & (obs <= hi)


def brier(outcome, prob) -> np.ndarray:
    """Brier score (p - y)^2 of event probabilities ``prob`` against 0/1 ``outcome``."""
    y, p = np.asarray(outcome, float), np.asarray(prob, float)
    if np.any((y != 0) & (y != 1)):
        raise ValueError("Brier outcomes must be 0 or 1")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("Brier probabilities must be in [0, 1]")
    return np.asarray(sr.brier_score(y, p, backend="numpy"), float)


def quantile_weights(levels) -> np.ndarray:
    """Riemann weights of ``integral_0^1 f(a) da`` at sorted ``levels`` in (0, 1): the width of
    each level's cell, cells split at midpoints, the first from 0, the last to 1 (sum 1)."""
    a = np.asarray(levels, float)
    if a.ndim != 1 or a.size == 0 or np.any(a <= 0) or np.any(a >= 1) or np.any(np.diff(a) <= 0):
        raise ValueError(f"quantile levels {a.tolist()}: need a strictly increasing list in (0, 1)")
    return np.diff(np.concatenate([[0.0], (a[1:] + a[:-1]) / 2, [1.0]]))


def pinball(y, q, level):
    """Pinball (quantile) loss of quantile ``q`` at ``level`` for outcome ``y``."""
    y, q, level = np.asarray(y, float), np.asarray(q, float), np.asarray(level, float)
    return np.where(y >= q, level * (y - q), (1 - level) * (q - y))


def crps_from_quantiles(y, q, levels):
    """CRPS approximated from quantiles ``q`` (..., L) at ``levels`` (L,) for outcomes ``y`` (...):
    ``2 * sum_i w_i * pinball(y, q_i, a_i)``, ``w`` from :func:`quantile_weights`."""
    w = quantile_weights(levels)
    return 2 * np.sum(w * pinball(np.asarray(y, float)[..., None], q, np.asarray(levels, float)), axis=-1)


def pit_histogram(pits, bins: int = PIT_BINS) -> np.ndarray:
    """Counts of PIT values in ``bins`` equal bins of [0, 1] (1.0 in the last bin)."""
    p = np.asarray(pits, float).ravel()
    p = p[np.isfinite(p)]
    return np.histogram(p, bins=bins, range=(0.0, 1.0))[0]


def coverage_curve(pits, levels) -> np.ndarray:
    """Empirical coverage of central intervals at each nominal level, from PIT values: the
    share of |PIT - 1/2| <= level / 2."""
    p = np.asarray(pits, float).ravel()
    p = p[np.isfinite(p)]
    if p.size == 0:
        return np.full(len(levels), np.nan)
    return np.array([(np.abs(p - 0.5) <= lv / 2).mean() for lv in levels])


def skill(score, reference) -> float:
    """1 - score / reference (positive: better than the reference); NaN when undefined."""
    s, r = float(score), float(reference)
    return 1.0 - s / r if np.isfinite(s) and np.isfinite(r) and r > 0 else float("nan")


def _check(obs, samples) -> tuple[np.ndarray, np.ndarray]:
    obs, samples = np.asarray(obs, float), np.asarray(samples, float)
    if samples.shape[:-1] != obs.shape:
        raise ValueError(f"samples {samples.shape} must be observations {obs.shape} plus an ensemble axis")
    if samples.shape[-1] < 2:
        raise ValueError("an ensemble needs at least 2 members")
    return obs, samples
