"""Comparing prior sets (narratives) fitted to the same data.

Each run's ``log_likelihood`` group holds, per month t, the one-step-ahead predictive density
log p(y_t | y_1..t-1, theta) for every posterior draw; their sum over months is the log
likelihood, so they are the pointwise terms both criteria below need.

- PSIS-LOO (ArviZ ``loo``/``compare``): expected log predictive density of a left-out month
  given all other months, with Pareto-k per month and stacking weights.
- Leave-future-out (LFO), one step ahead, by Pareto-smoothed importance sampling from the
  full-data posterior (Buerkner, Gabry and Vehtari 2020, "Approximate leave-future-out
  cross-validation for Bayesian time series models", J. Stat. Comput. Simul. 90(14)): for an
  origin t the draws are reweighted by exp(-sum_{i>t} log p(y_i | y_1..i-1, theta)), which
  turns the full-data posterior into the posterior given data up to t, and the predictive
  density of month t+1 is the weighted mean of p(y_t+1 | y_1..t, theta). Origins whose
  Pareto k exceeds the threshold are reported, not hidden; they are not refitted.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import xarray as xr
from scipy.special import logsumexp

from regimecast.scenarios import summarise_probabilities

PARETO_K_WARN = 0.7   # Vehtari et al. (2024), "Pareto smoothed importance sampling", JMLR 25: k > 0.7 unreliable


def _pointwise(idata: az.InferenceData) -> np.ndarray:
    """(S, T) one-step-ahead log predictive densities, chains stacked."""
    ll = idata.log_likelihood["y"]
    return ll.stack(sample=("chain", "draw")).transpose("sample", "date").values


def lfo(idata: az.InferenceData, months: int) -> dict:
    """Approximate one-step-ahead leave-future-out ELPD over the last ``months`` months of the
    sample: per origin month, the ELPD of the next month and the Pareto k of its weights;
    totals with the standard error sqrt(n var(elpd_t))."""
    ll = _pointwise(idata)
    S, T = ll.shape
    if not 0 < months < T:
        raise ValueError(f"LFO over {months} months: must be between 1 and {T - 1} (months in the sample)")
    dates = idata.log_likelihood["date"].values
    future = np.cumsum(ll[:, ::-1], axis=1)[:, ::-1]          # future[:, i] = sum_{j >= i} ll[:, j]
    elpd, ks = [], []
    for t in range(T - months, T):                               # predict month t from months < t
        lw, k = az.psislw(-future[:, t])                         # posterior given months < t
        elpd.append(float(logsumexp(lw + ll[:, t])))
        ks.append(float(k))
    elpd_arr = np.asarray(elpd)
    return {"months": months, "dates": [str(np.datetime_as_string(d, unit="M")) for d in dates[T - months:]],
            "elpd_pointwise": elpd_arr.tolist(), "pareto_k": ks, "elpd": float(elpd_arr.sum()),
            "se": float(np.sqrt(months * elpd_arr.var())), "n_bad_k": int(np.sum(np.asarray(ks) > PARETO_K_WARN))}


def loo_table(idatas: dict[str, az.InferenceData]) -> tuple[dict[str, dict], dict[str, float]]:
    """Per prior set: PSIS-LOO ELPD, its SE, effective number of parameters and the number of
    months with Pareto k above the threshold; and the stacking weights (ArviZ ``compare``)."""
    out = {}
    for name, idata in idatas.items():
        res = az.loo(idata, pointwise=True, var_name="y")
        k = np.asarray(res.pareto_k)
        out[name] = {"elpd": float(res.elpd_loo), "se": float(res.se), "p_loo": float(res.p_loo),
                     "n_bad_k": int(np.sum(k > PARETO_K_WARN)), "max_k": float(np.max(k))}
    if len(idatas) > 1:
        cmp = az.compare(idatas, ic="loo", method="stacking", var_name="y")
        weights = {str(n): float(w) for n, w in cmp["weight"].items()}
        for n in out:
            out[n]["elpd_diff"] = float(cmp.loc[n, "elpd_diff"])
            out[n]["dse"] = float(cmp.loc[n, "dse"])
    else:
        weights = {n: 1.0 for n in idatas}
        for n in out:
            out[n]["elpd_diff"], out[n]["dse"] = 0.0, 0.0
    return out, weights


def scenario_table(summaries: dict[str, xr.Dataset], weights: dict[str, float]) -> dict[str, dict]:
    """Per scenario: each prior set's probability (mean, 90% interval, MCSE), the spread of
    the means across prior sets (how much the answer depends on the narrative) and the
    stacking-weighted mean."""
    names = list(summaries)
    scen = [str(s) for s in summaries[names[0]]["scenario"].values]
    out = {}
    for s in scen:
        per = {n: summarise_probabilities(summaries[n]["scenario_prob"].sel(scenario=s).values) for n in names}
        means = np.array([per[n]["mean"] for n in names])
        out[s] = {"by_prior": per, "spread": float(means.max() - means.min()),
                  "stacked": float(sum(weights.get(n, 0.0) * per[n]["mean"] for n in names))}
    return out
