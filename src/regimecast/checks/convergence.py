"""Convergence diagnostics of a fit (ArviZ) and the fit's verdict on whether to trust it: the
sampler's fail checks of :func:`regimecast.checks.verdict.sampler_failures`, worded as
everywhere else."""

from __future__ import annotations

import arviz as az
import numpy as np

from regimecast.checks.verdict import sampler_failures
from regimecast.config.thresholds import Thresholds


def diagnostics_block(idata: az.InferenceData, var_names: list[str], thresholds: Thresholds) -> dict:
    """The manifest's diagnostics block: worst R-hat / ESS over every parameter element,
    divergences, minimum BFMI over chains, and the verdict (``trusted``: no fail check violated)
    with its reasons (:attr:`regimecast.checks.verdict.Finding.reason`). Unrounded:
    ``az.summary`` rounds R-hat to two decimals by default, which let an R-hat of 1.014 pass
    a 1.01 check as "1.01"."""
    summary = az.summary(idata, var_names=var_names, kind="diagnostics", round_to="none")
    n_chains = idata.posterior.sizes["chain"]
    n_draws = idata.posterior.sizes["draw"]
    ss = idata.sample_stats
    div = ss["diverging"].sum("draw").values if "diverging" in ss else np.zeros(n_chains, int)
    bfmi = az.bfmi(idata)
    block = {
        "max_rhat": float(summary["r_hat"].max()),
        "worst_rhat_param": str(summary["r_hat"].idxmax()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "worst_ess_bulk_param": str(summary["ess_bulk"].idxmin()),
        "min_ess_tail": float(summary["ess_tail"].min()),
        "divergences": int(div.sum()),
        "min_bfmi": float(np.min(bfmi)),
        "n_chains": int(n_chains),
        "n_draws": int(n_draws),
    }
    reasons = [f.reason for f in sampler_failures(summary, div, bfmi, n_draws, thresholds)]
    block["trusted"] = not reasons
    block["reasons"] = reasons
    return block
