"""Paired comparison of two forecasters' losses over backtest origins (pure: arrays in, numbers
out): the mean loss difference, its HAC standard error over L lags, and the Diebold-Mariano
statistic with the Harvey-Leybourne-Newbold small-sample correction, tested two-sided against
Student-t with n - 1 degrees of freedom.

References: Diebold & Mariano (1995), J. Bus. Econ. Stat. 13(3); Harvey, Leybourne & Newbold
(1997), Int. J. Forecast. 13(2); Newey & West (1987), Econometrica 55(3).

Convention: the HAC variance of the mean is ``(gamma_0 + 2 sum_k w_k gamma_k) / n`` with
autocovariances ``gamma_k = (1/n) sum_t u_t u_{t-k}`` (divisor n, no df correction) and weights
w_k = 1 - k/(L+1) (Newey-West, Bartlett kernel) or w_k = 1 (the rectangular window of Diebold
and Mariano, for which the HLN correction was derived). It equals statsmodels' OLS of d on a
constant with ``cov_type="HAC", cov_kwds={"maxlags": L, "use_correction": False}`` (plus
``"weights_func": weights_uniform`` for the rectangular window); at L = 0 both are
``np.var(d, ddof=0) / n``.

Why the rectangular window by default: the loss differences of h-month forecasts from origins
``every`` months apart are MA(L) with L = ceil(h / every) - 1, and the Bartlett weights
underestimate that MA's long-run variance (by 25% at L = 1 and 31% at L = 3 for equal MA
weights), so Bartlett with L lags rejects a true null about 10-12% of the time at 5% at any n
(tests/test_backtest_summary.py measures it); the rectangular window is unbiased for MA(L) and
rejects about 5.5-7% at 40-100 origins. Where its variance is not positive (possible, rare) the
Bartlett variance is used instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from regimecast.months import months_between

ALPHA = 0.05              # two-sided level at which a paired difference is called beyond noise
UNIFORM, BARTLETT = "uniform", "bartlett"   # the HAC kernels (see the module docstring)
KERNEL = UNIFORM          # default: unbiased for the MA(L) of overlapping forecast windows
BETTER, WORSE, NOISE = "better", "worse", "within noise"   # verdicts on the first forecaster (lower loss wins)


def origin_spacing(origins: Sequence[str]) -> int | None:
    """Months between consecutive origins ("YYYY-MM"): the smallest gap of the sorted list;
    None for fewer than two origins."""
    o = sorted(set(origins))
    gaps = [months_between(a, b) for a, b in zip(o, o[1:])]
    return min(gaps) if gaps else None


def overlap_lags(horizon: int, spacing: int | None) -> int:
    """Lags L = ceil(h / spacing) - 1 over which losses of ``horizon``-month forecasts from
    origins ``spacing`` months apart share realised months (their windows overlap); 0 when
    there is at most one origin (``spacing`` None)."""
    if spacing is None:
        return 0
    return max(math.ceil(horizon / spacing) - 1, 0)


def hac_variance(d, lags: int, kernel: str = KERNEL) -> float:
    """HAC variance of the mean of ``d`` (n,) over ``lags`` lags with ``kernel``'s weights
    (Bartlett: 1 - k/(L+1); uniform: 1), k = 1..L; lags beyond n - 1 contribute nothing.
    Units of d squared; the uniform kernel's value can be negative."""
    if kernel not in (UNIFORM, BARTLETT):
        raise ValueError(f"kernel {kernel!r} is not one of {UNIFORM!r}, {BARTLETT!r}")
    u = np.asarray(d, float) - np.mean(d)
    n = u.size
    lrv = float(u @ u) / n
    for k in range(1, min(lags, n - 1) + 1):
        w = 1.0 if kernel == UNIFORM else 1.0 - k / (lags + 1)
        lrv += 2.0 * w * float(u[k:] @ u[:-k]) / n
    return lrv / n


def hln_factor(n: int, lags: int) -> float | None:
    """Harvey-Leybourne-Newbold correction sqrt((n + 1 - 2q + q(q-1)/n) / n) for q = L + 1
    step-ahead forecasts; None where the bracket is not positive (too few origins)."""
    q = lags + 1
    inner = (n + 1 - 2 * q + q * (q - 1) / n) / n
    return math.sqrt(inner) if inner > 0 else None


def paired_test(d, lags: int, kernel: str = KERNEL) -> dict:
    """Test of mean(d) = 0 for loss differences ``d`` (n,) = loss_first - loss_second, origins in
    time order: ``{"n", "mean_diff", "se_diff" (HAC), "dm_stat" (HLN-corrected), "p_value"
    (two-sided, t with n - 1 df), "lags", "kernel" (the one used), "verdict"}``. The verdict is
    on the first forecaster: "better" (mean(d) < 0) or "worse" when p < ALPHA, else "within
    noise"; None (and no
    statistic) for fewer than two differences or too few for the correction. Identical losses
    (zero standard error) give p = 1 for d = 0 and p = 0 for a constant non-zero d."""
    d = np.asarray(d, float)
    n = d.size
    out = {"n": int(n), "mean_diff": float(d.mean()) if n else None, "se_diff": None, "dm_stat": None,
           "p_value": None, "lags": int(lags), "kernel": kernel, "verdict": None}
    factor = hln_factor(n, lags) if n > 1 else None
    if factor is None:
        return out
    var = hac_variance(d, lags, kernel)
    if var <= 0 and kernel == UNIFORM:    # the rectangular window's rare non-positive estimate
        out["kernel"], var = BARTLETT, hac_variance(d, lags, BARTLETT)
    se = math.sqrt(var)
    out["se_diff"] = se
    if se > 0:
        out["dm_stat"] = factor * out["mean_diff"] / se
        out["p_value"] = float(2.0 * stats.t.sf(abs(out["dm_stat"]), df=n - 1))
    else:
        out["p_value"] = 1.0 if out["mean_diff"] == 0 else 0.0
    out["verdict"] = verdict(out["mean_diff"], out["p_value"])
    return out


def verdict(mean_diff: float, p_value: float) -> str:
    """"better" / "worse" for the first forecaster when p < ALPHA, else "within noise"."""
    if p_value < ALPHA:
        return BETTER if mean_diff < 0 else WORSE
    return NOISE


def noise_phrase(test: dict) -> str:
    """How a paired test reads in a sentence: "worse beyond noise (DM p = 0.012)", "better beyond
    noise (...)", "within noise (DM p = 0.34)" or "untested (n = 1)"."""
    if test.get("verdict") is None:
        return f"untested (n = {test.get('n', 0)})"
    p = f"DM p = {test['p_value']:.2g}"
    return f"within noise ({p})" if test["verdict"] == NOISE else f"{test['verdict']} beyond noise ({p})"
