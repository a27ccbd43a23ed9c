"""Monte Carlo summary of per-draw probabilities (a scenario's, a policy state's): the mean,
its credible band over draws and its Monte Carlo standard error. Used by the forecast
summaries, the ledger, the reports and the comparison; it sits below every stage."""

from __future__ import annotations

import math

import numpy as np

QUANTILES = (0.05, 0.95)              # credible band of the per-draw probabilities


def summarise_probabilities(p: np.ndarray) -> dict[str, float]:
    """Per-draw probabilities ``p`` (S,) -> the mean, its 5% and 95% quantiles ("lo", "hi")
    and the Monte Carlo standard error sqrt(var_d(p_d) / S) ("mcse"; sample variance, ddof=1;
    NaN for one draw), treating draws as independent."""
    p = np.asarray(p, dtype=float)
    lo, hi = np.quantile(p, QUANTILES)
    mcse = math.sqrt(float(np.var(p, ddof=1)) / p.size) if p.size > 1 else math.nan
    return {"mean": float(p.mean()), "lo": float(lo), "hi": float(hi), "mcse": mcse}
