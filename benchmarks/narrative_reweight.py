"""How far would each narrative move a fitted baseline run's answers? Importance reweighting of
the baseline posterior by the prior ratio p_narrative(theta) / p_baseline(theta), Pareto
smoothed (ArviZ ``psislw``): the posterior under the narrative without refitting it. Reliable
where the smoothing's Pareto k is below 0.7 (Vehtari et al. 2024); beyond that only a refit
(``regimecast compare``) answers.

Prints, per narrative: the weights' Pareto k and effective sample size; each changed prior
parameter's baseline posterior mean and sd against its reweighted mean and the narrative's
prior mean (how much the data pin it); and each scenario probability under the baseline and
reweighted, from the run's ``forecast_summary.nc`` (run ``regimecast forecast RUN
--summary-only`` first).

    python benchmarks/narrative_reweight.py RUN [--priors soft_landing reverse_qe ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import arviz as az
import numpy as np
import xarray as xr
from scipy import stats
from scipy.special import gammaln

from regimecast.store import runs
from regimecast.workflows.engine import config_from_manifest
from regimecast.checks.compare import changed_parameters, parameter_draws
from regimecast.model.spec import structure, variable_spec
from regimecast.config.priors import PriorSet, load_priors
from regimecast.store.workspace import Workspace

NARRATIVES = ["soft_landing", "reverse_qe", "ai_vs_backlash", "qe_restart", "higher_for_longer"]


def natural_draws(post: xr.Dataset, config, base: PriorSet) -> dict[str, np.ndarray]:
    """Every free variable of the posterior, (S, ...) with chains stacked, non-centred Normal
    blocks mapped to their natural values loc + scale * z under the baseline's prior."""
    st = structure(config, base)
    S = post.sizes["chain"] * post.sizes["draw"]
    out = {}
    for name in variable_spec(config, base, st):
        x = post[name].values.reshape((S,) + post[name].shape[2:])
        block = name[:-2] if name.endswith("_z") else None
        out[name] = st.loc[block] + st.scale[block] * x if block else x
    return out


def log_prior(theta: dict[str, np.ndarray], config, priors: PriorSet) -> np.ndarray:
    """(S,) log prior density of natural-scale draws ``theta`` under ``priors`` (the LKJ term,
    shared by every prior set of one model, left out)."""
    st = structure(config, priors)
    lp = 0.0
    for name, v in variable_spec(config, priors, st).items():
        x = theta[name]
        ax = tuple(range(1, x.ndim))
        if name.endswith("_z"):
            block = name[:-2]
            lp = lp + stats.norm.logpdf(x, st.loc[block], st.scale[block]).sum(ax)
        elif v.kind == "dirichlet":
            a = v.params[0]
            lp = lp + ((a - 1) * np.log(x)).sum(ax) - (gammaln(a).sum(-1) - gammaln(a.sum(-1))).sum()
        elif v.kind == "beta":
            lp = lp + stats.beta.logpdf(x, v.params[0], v.params[1]).sum(ax)
        elif v.kind == "gamma":
            lp = lp + stats.gamma.logpdf(x, v.params[0], scale=1 / v.params[1])
    return lp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("--priors", nargs="+", default=NARRATIVES)
    ap.add_argument("--workspace", default=".")
    args = ap.parse_args()
    ws = Workspace(Path(args.workspace))
    run = runs.load_run(runs.resolve_run(ws.runs, args.run))
    config, base_priors = config_from_manifest(run.manifest)
    theta = natural_draws(run.idata.posterior, config, base_priors)
    lp0 = log_prior(theta, config, base_priors)
    summ = xr.load_dataset(run.path / "forecast_summary.nc", engine="h5netcdf")
    ids = summ["draw"].values
    print(f"run {run.run_id}: {lp0.size} draws; forecast summary on {ids.size} of them")
    for name in args.priors:
        pri = load_priors(ws.prior_file(name), config)
        lw_all = log_prior(theta, config, pri) - lp0
        lw_all, k_all = az.psislw(lw_all - lw_all.max())
        lw, k = az.psislw(lw_all[ids] - lw_all[ids].max())
        w = np.exp(lw)
        print(f"\n== {name}: Pareto k {float(k_all):.2f} (all draws), {float(k):.2f} (forecast draws); "
              f"ESS {1 / np.sum(np.exp(2 * lw_all)):.0f} / {lp0.size}")
        wa = np.exp(lw_all)
        for ch in changed_parameters(base_priors, pri):
            x = parameter_draws(run.idata.posterior, ch.block, ch.index)
            new = {k: float(v[ch.index]) for k, v in pri.arrays[ch.block].params.items()}
            print(f"  {ch.block + ' ' + ch.label:<44} posterior {x.mean():+.3f} sd {x.std():.3f} -> "
                  f"reweighted {np.sum(wa * x):+.3f}; narrative prior {new}")
        p = summ["scenario_prob"].values
        for j, s in enumerate(summ["scenario"].values):
            b, r = p[:, j].mean(), np.sum(w * p[:, j])
            print(f"  {str(s):<24} {b:6.3f} -> {r:6.3f}  ({r - b:+.3f})")
        pp = summ["policy_prob"].sel(policy_horizon=12).values
        for j, s in enumerate(summ[summ["policy_prob"].dims[-1]].values):
            b, r = pp[:, j].mean(), np.sum(w * pp[:, j])
            print(f"  P({s} at 12m)".ljust(26) + f" {b:6.3f} -> {r:6.3f}  ({r - b:+.3f})")


if __name__ == "__main__":
    main()
