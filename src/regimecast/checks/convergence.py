"""Convergence diagnostics of a fit (ArviZ) and the verdict on whether to trust it."""

from __future__ import annotations

import arviz as az
import numpy as np

from regimecast.config.thresholds import Thresholds



def diagnostics_block(idata: az.InferenceData, var_names: list[str], thresholds: Thresholds) -> dict:
    """The manifest's diagnostics block: worst R-hat / ESS over every parameter element,
    divergences, minimum BFMI over chains, and the verdict with its reasons. Unrounded:
    ``az.summary`` rounds R-hat to two decimals by default, which let an R-hat of 1.014 pass
    a 1.01 check as "1.01"."""
    summary = az.summary(idata, var_names=var_names, kind="diagnostics", round_to="none")
    n_chains = idata.posterior.sizes["chain"]
    div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    bfmi = az.bfmi(idata)
    block = {
        "max_rhat": float(summary["r_hat"].max()),
        "worst_rhat_param": str(summary["r_hat"].idxmax()),
        "min_ess_bulk": float(summary["ess_bulk"].min()),
        "worst_ess_bulk_param": str(summary["ess_bulk"].idxmin()),
        "min_ess_tail": float(summary["ess_tail"].min()),
        "divergences": div,
        "min_bfmi": float(np.min(bfmi)),
        "n_chains": int(n_chains),
        "n_draws": int(idata.posterior.sizes["draw"]),
    }
    reasons = []
    need_ess = thresholds.min_ess_per_chain * n_chains
    if not block["max_rhat"] <= thresholds.max_rhat:
        reasons.append(f"R-hat {block['max_rhat']:.3f} > {thresholds.max_rhat} ({block['worst_rhat_param']})")
    if not block["min_ess_bulk"] >= need_ess:
        reasons.append(f"bulk ESS {block['min_ess_bulk']:.0f} < {need_ess:.0f} ({block['worst_ess_bulk_param']})")
    if not block["min_ess_tail"] >= need_ess:
        reasons.append(f"tail ESS {block['min_ess_tail']:.0f} < {need_ess:.0f}")
    if div > thresholds.max_divergences:
        reasons.append(f"{div} divergent transitions")
    if not block["min_bfmi"] >= thresholds.min_bfmi:
        reasons.append(f"BFMI {block['min_bfmi']:.2f} < {thresholds.min_bfmi}")
    block["trusted"] = not reasons
    block["reasons"] = reasons
    return block
