"""Comparing prior sets (narratives) fitted to the same data.

Each run's ``log_likelihood`` group holds, per month t and posterior draw, the two pointwise
terms the criteria below need (:mod:`regimecast.fit.posterior`): log p(y_t | every other month,
theta) (``y``) and the one-step-ahead log p(y_t | y_1..t-1, theta) (``y_one_step``), whose sum
over months is the log likelihood.

- PSIS-LOO (ArviZ ``loo``/``compare`` on ``y``): expected log predictive density of a left-out
  month given all other months, with Pareto-k per month and stacking weights. The importance
  ratio of leaving month t out is exactly 1 / p(y_t | y_-t, theta) (:func:`regimecast.model.kernels
  leave_one_out`).
- Leave-future-out (LFO), one step ahead, by Pareto-smoothed importance sampling from the
  full-data posterior (Buerkner, Gabry and Vehtari 2020, "Approximate leave-future-out
  cross-validation for Bayesian time series models", J. Stat. Comput. Simul. 90(14)): for an
  origin t the draws are reweighted by exp(-sum_{i>t} log p(y_i | y_1..i-1, theta)) (the
  ``y_one_step`` terms), which
  turns the full-data posterior into the posterior given data up to t, and the predictive
  density of month t+1 is the weighted mean of p(y_t+1 | y_1..t, theta). Origins whose
  Pareto k exceeds the threshold are reported, not hidden; they are not refitted.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import xarray as xr
from scipy.special import logsumexp

from regimecast.fit.posterior import LOO_VAR, ONE_STEP_VAR
from regimecast.simulate.prior_predictive import prior_changes
from regimecast.config.prior_blocks import PriorArray
from regimecast.config.priors import PriorSet
from regimecast.probability import summarise_probabilities

def _pointwise(idata: az.InferenceData) -> np.ndarray:
    """(S, T) one-step-ahead log predictive densities, chains stacked."""
    if ONE_STEP_VAR not in idata.log_likelihood:
        raise ValueError(f"the run's log_likelihood has no '{ONE_STEP_VAR}' (one-step-ahead densities): it was "
                         "saved by an older regimecast, whose 'y' held them; refit it")
    ll = idata.log_likelihood[ONE_STEP_VAR]
    return ll.stack(sample=("chain", "draw")).transpose("sample", "date").values


def lfo(idata: az.InferenceData, months: int, k_warn: float) -> dict:
    """Approximate one-step-ahead leave-future-out ELPD over the last ``months`` months of the
    sample: per origin month, the ELPD of the next month and the Pareto k of its weights;
    totals with the standard error sqrt(n var(elpd_t)); ``n_bad_k`` counts origins with k > ``k_warn``
    (``warn.pareto_k`` of ``models/diagnostics.toml``)."""
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
            "se": float(np.sqrt(months * elpd_arr.var())), "n_bad_k": int(np.sum(np.asarray(ks) > k_warn))}


def loo_table(idatas: dict[str, az.InferenceData], k_warn: float) -> tuple[dict[str, dict], dict[str, float]]:
    """Per prior set: PSIS-LOO ELPD, its SE, effective number of parameters and the number of
    months with Pareto k above ``k_warn`` (``warn.pareto_k`` of ``models/diagnostics.toml``); and the stacking weights (ArviZ ``compare``).
    ArviZ's warning on k > 0.7 is silenced: the table counts those months instead."""
    out = {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        for name, idata in idatas.items():
            res = az.loo(idata, pointwise=True, var_name=LOO_VAR)
            k = np.asarray(res.pareto_k)
            out[name] = {"elpd": float(res.elpd_loo), "se": float(res.se), "p_loo": float(res.p_loo),
                         "n_bad_k": int(np.sum(k > k_warn)), "max_k": float(np.max(k))}
        if len(idatas) > 1:
            cmp = az.compare(idatas, ic="loo", method="stacking", var_name=LOO_VAR)
    if len(idatas) > 1:
        weights = {str(n): float(w) for n, w in cmp["weight"].items()}
        for n in out:
            out[n]["elpd_diff"] = float(cmp.loc[n, "elpd_diff"])
            out[n]["dse"] = float(cmp.loc[n, "dse"])
    else:
        weights = {n: 1.0 for n in idatas}
        for n in out:
            out[n]["elpd_diff"], out[n]["dse"] = 0.0, 0.0
    return out, weights


def probability_rows(summary: xr.Dataset) -> dict[str, np.ndarray]:
    """Per-draw probabilities (S,) of a forecast summary, by row name: every scenario, then
    ``"P(<state>) at <h> months"`` for each policy state and policy horizon (when present)."""
    rows = {str(s): summary["scenario_prob"].sel(scenario=s).values for s in summary["scenario"].values}
    if "policy_prob" in summary:
        factor = summary["policy_prob"].dims[-1]
        for h in summary["policy_horizon"].values:
            for p in summary[factor].values:
                rows[f"P({p}) at {int(h)} months"] = summary["policy_prob"].sel({"policy_horizon": h, factor: p}).values
    return rows


def scenario_table(summaries: dict[str, xr.Dataset], weights: dict[str, float]) -> dict[str, dict]:
    """Per scenario and per policy state at each policy horizon (:func:`probability_rows`): each
    prior set's probability (mean, 90% interval, MCSE), the spread of the means across prior
    sets (how much the answer depends on the narrative) and the stacking-weighted mean."""
    names = list(summaries)
    rows = {n: probability_rows(summaries[n]) for n in names}
    out = {}
    for s in rows[names[0]]:
        per = {n: summarise_probabilities(rows[n][s]) for n in names}
        means = np.array([per[n]["mean"] for n in names])
        out[s] = {"by_prior": per, "spread": float(means.max() - means.min()),
                  "stacked": float(sum(weights.get(n, 0.0) * per[n]["mean"] for n in names))}
    return out


# prior block -> the posterior variable holding its parameters in natural units, same axes
# (Dirichlet blocks "initial.f" / "transition.f" are the variables "initial_f" / "transition_f")
POSTERIOR_OF_BLOCK = {"transition.switch": "switch_logit", "transition.covariates": "covariate_effect",
                      "transition.factors": "factor_effect", "emission.mean": "mean", "emission.effects": "mean_effect",
                      "emission.scale": "log_scale", "emission.sd": "sd", "emission.ar": "ar_coef",
                      "emission.nu": "nu_excess"}


def parameter_draws(posterior: xr.Dataset, block: str, index: tuple[int, ...]) -> np.ndarray:
    """(chain * draw,) posterior draws of the parameter at ``index`` of prior block ``block``,
    on the scale its prior is stated on (log for the LogNormal sds)."""
    name = POSTERIOR_OF_BLOCK.get(block, block.replace(".", "_"))
    x = posterior[name].values
    x = x.reshape((-1,) + x.shape[2:])[(slice(None),) + tuple(index)]
    return np.log(x) if block == "emission.sd" else x


def prior_entry_moments(arr: PriorArray, index: tuple[int, ...]) -> tuple[float, float]:
    """Prior mean and sd of one parameter of a block, on the scale the prior is stated on
    (Normal and LogNormal: mu, sigma; Dirichlet row: the marginal Beta; Beta; Gamma with rate)."""
    p = {k: np.asarray(v, float) for k, v in arr.params.items()}
    if arr.dist in ("Normal", "LogNormal"):
        return float(p["mu"][index]), float(p["sigma"][index])
    if arr.dist == "Dirichlet":
        a = p["a"][index]
        a0 = p["a"][index[:-1]].sum()
        m = a / a0
        return float(m), float(np.sqrt(m * (1 - m) / (a0 + 1)))
    if arr.dist == "Beta":
        a, b = p["alpha"][index], p["beta"][index]
        return float(a / (a + b)), float(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))))
    if arr.dist == "Gamma":
        a, b = p["alpha"][index], p["beta"][index]
        return float(a / b), float(np.sqrt(a) / b)
    raise ValueError(f"prior family {arr.dist}: no single-parameter moments")


def changed_parameters(parent: PriorSet, child: PriorSet) -> list:
    """One :class:`regimecast.simulate.prior_predictive.PriorChange` per parameter ``child`` states
    differently from ``parent`` (a Normal's mu and sigma changed together count once); the LKJ
    concentration, which is no single parameter, is left out."""
    seen, out = set(), []
    for ch in prior_changes(parent, child):
        if (ch.block, ch.label) not in seen and ch.block != "emission.lkj":
            seen.add((ch.block, ch.label))
            out.append(ch)
    return out


def narrative_shifts(parent: PriorSet, child: PriorSet, parent_post: xr.Dataset, child_post: xr.Dataset
                     ) -> list[dict]:
    """For every parameter ``child`` states differently from ``parent`` (the file it extends):
    both priors' mean and sd, both posteriors' mean and sd (each fitted to the same data), and
    ``kept`` = (posterior shift) / (prior shift) of the means: 1 when the data leave the
    narrative's tilt in place, 0 when they undo it (None when only the prior's sd changed)."""
    rows = []
    for ch in changed_parameters(parent, child):
        pm0, ps0 = prior_entry_moments(parent.arrays[ch.block], ch.index)
        pm1, ps1 = prior_entry_moments(child.arrays[ch.block], ch.index)
        x0, x1 = parameter_draws(parent_post, ch.block, ch.index), parameter_draws(child_post, ch.block, ch.index)
        shift = pm1 - pm0
        rows.append({"block": ch.block, "label": ch.label, "prior": [pm0, ps0], "prior_narrative": [pm1, ps1],
                     "posterior": [float(x0.mean()), float(x0.std())],
                     "posterior_narrative": [float(x1.mean()), float(x1.std())],
                     "kept": float((x1.mean() - x0.mean()) / shift) if abs(shift) > 1e-12 else None})
    return rows
