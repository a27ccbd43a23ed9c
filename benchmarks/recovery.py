"""Parameter recovery / calibration: simulate data from the model with known parameters, fit,
and count how often the central 90% posterior interval of every scalar sampler variable
covers the truth. Under a correct sampler and likelihood the coverage is 0.90 in expectation
(simulation-based calibration, SBC).

    python benchmarks/recovery.py --sims 8 --workers 2 --end 2013-12
    python benchmarks/recovery.py --truth posterior --run RUN --sims 8 --workers 2

``--truth prior`` (default): the truth is a draw from the prior, the fit is on the simulated
panel alone (Talts et al. 2018, "Validating Bayesian inference algorithms with simulation-
based calibration", arXiv:1804.06788).

``--truth posterior``: posterior SBC (Saeilynoja, Schad, Buerkner, Vehtari 2025, "Posterior
SBC: simulation-based calibration checking conditional on data", arXiv:2502.03279). The truth
is a posterior draw of the fitted run RUN, and the fit is on RUN's real panel *and* the
simulated panel (independent given the parameters, :func:`regimecast.model.graph.build_model`'s
``panels``), so the truth is a draw from that fit's posterior and the coverage is again 0.90
in expectation, now over the region of parameters the real data support, where the policy
states are told apart, rather than over prior draws whose states may not be.

Covariates (drawdown, VIX, inflation, liquidity) of the simulated panel are the real lagged
series over the sample window, held exogenous; the AR lags follow the simulated series. Prints
coverage overall and per block.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from regimecast.store.runs import resolve_run

ROOT = Path(__file__).resolve().parents[1]


def one_sim(args: tuple) -> dict:
    """One simulation's results; a simulation whose fit raises is reported, not fatal."""
    seed = args[0]
    try:
        return _one_sim(args)
    except Exception as e:       # noqa: BLE001 (recorded and printed by main)
        return {"seed": seed, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}


def _one_sim(args: tuple) -> dict:
    seed, truth, opts = args
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import arviz as az
    import jax
    import numpy as np

    from regimecast.data.panel import build_panel
    from regimecast.model.design import build_design
    from regimecast.fit.sampler import SamplerSettings, sample
    from regimecast.model.graph import build_model
    from regimecast.model.spec import structure, variable_spec
    from simulated import prior_truth_panel, simulated_panel, truth_point

    cfg, pri, real = opts["config"], opts["priors"], opts["real"]
    design = build_design(cfg, build_panel(cfg.series, cfg.sample, Path(opts["data_dir"]), end=opts["end"]))
    jax.config.update("jax_enable_x64", True)
    st = structure(cfg, pri)
    specs = variable_spec(cfg, pri, st)
    if real is None:
        sim, truth, p = prior_truth_panel(cfg, pri, st, design, seed)
        model = build_model(cfg, pri, sim)
    else:                      # posterior SBC: the run's real panel beside the simulated one
        sim, truth, p = simulated_panel(st, design, truth, seed)
        model = build_model(cfg, pri, real, panels=(sim,))
    t0 = time.perf_counter()
    idata, _, init = sample(model, SamplerSettings(seed=seed, chains=opts["chains"], draws=opts["draws"],
                                                tune=opts["tune"], **opts["start"]), progressbar=False)
    post = idata.posterior
    # In simulation-based calibration the truth is itself a draw from the posterior, so its log
    # density (sampler scale, Jacobian included, as nutpie records per draw) should sit inside
    # the draws' log densities; far above all of them means the chains missed the truth's mode.
    lp_truth = float(model.compile_logp()(truth_point(model, truth, seed)))
    lp_draws = idata.sample_stats["logp"].values.ravel()
    if opts["save"]:
        save = Path(opts["save"]) / f"sim{seed}"
        save.mkdir(parents=True, exist_ok=True)
        idata.to_netcdf(save / "idata.nc")
        np.savez(save / "truth.npz", y=sim.y, policy=p, **truth)
    rhat = az.rhat(post[list(truth)])
    share = np.bincount(p, minlength=st.n_policy)
    out = {"seed": seed, "seconds": time.perf_counter() - t0, "policy_share": share.tolist(),
           "divergences": int(idata.sample_stats["diverging"].sum()),
           "max_rhat": float(max(float(rhat[v].max()) for v in rhat.data_vars)), "blocks": {}, "visited": {},
           "rare": {}, "logp_truth": lp_truth, "logp_truth_rank": float(np.mean(lp_draws < lp_truth)),
           "logp_draws_q": np.quantile(lp_draws, [0.05, 0.5, 0.95, 1.0]).round(1).tolist(),
           "logp_map": init.get("logp")}
    visited = share >= opts["min_visits"]
    for name, true in truth.items():
        draws = post[name].values.reshape(-1, *np.shape(true))
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        covered = (lo <= true) & (true <= hi)
        out["blocks"][name] = [int(covered.sum()), int(covered.size)]
        if specs[name].dims[:1] == (st.policy,):      # per-policy-state block: split by visits
            for key, rows in (("visited", visited), ("rare", ~visited)):
                out[key][name] = [int(covered[rows].sum()), int(covered[rows].size)]
    return out


def report(results: list[dict], label: str) -> None:
    """Print the 90% interval coverage pooled over ``results``, overall and per block."""
    blocks: dict[str, list[int]] = {}
    for r in results:
        for b, (c, n) in r["blocks"].items():
            blocks.setdefault(b, [0, 0])
            blocks[b][0] += c
            blocks[b][1] += n
    blocks = {b: cn for b, cn in blocks.items() if cn[1]}
    cov, tot = sum(c for c, _ in blocks.values()), sum(n for _, n in blocks.values())
    if not tot:
        print(f"{label}: no parameters")
        return
    se = (0.9 * 0.1 / tot) ** 0.5
    print(f"{label}: 90% interval coverage, all scalar variables: {cov / tot:.3f} ({cov}/{tot}; "
          f"binomial se {se:.3f} if independent)")
    for b, (c, n) in sorted(blocks.items()):
        print(f"  {b:<22} {c / n:.3f}  ({c}/{n})")


def _model_and_truths(run_ref: str | None, data_dir: Path, seeds: list[int]) -> tuple:
    """Model config, prior set, the real panel's design (None for prior SBC) and each seed's
    truth (None: drawn from the prior in the worker). The run, when given, is read once here:
    its posterior draws and its data panel, not once per simulation."""
    from regimecast.config.model_file import load_model_config
    from regimecast.workflows.engine import RegimeModel
    from regimecast.model.spec import structure, variable_spec
    from regimecast.config.priors import load_priors
    from simulated import posterior_truth

    if run_ref is None:
        cfg = load_model_config(ROOT / "models" / "default.toml")
        return cfg, load_priors(ROOT / "priors" / "baseline.toml", cfg), None, dict.fromkeys(seeds)
    run = RegimeModel.load(resolve_run(ROOT / "runs", run_ref))
    rm = RegimeModel.from_run(run, data_dir)
    names = list(variable_spec(rm.config, rm.priors, structure(rm.config, rm.priors)))
    truths = {seed: posterior_truth(run.idata.posterior, names, seed) for seed in seeds}
    return rm.config, rm.priors, rm.design, truths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--truth", choices=("prior", "posterior"), default="prior",
                    help="draw the truth from the prior (SBC) or from --run's posterior (posterior SBC)")
    ap.add_argument("--run", default=None, help="run directory whose posterior and real panel --truth posterior uses")
    ap.add_argument("--sims", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--tune", type=int, default=300)
    ap.add_argument("--end", default="2013-12")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fred"))
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--init", default="map", help="sampler init: map (default) or jitter")
    ap.add_argument("--map-restarts", type=int, default=None, help="MAP restarts (default: the sampler's default)")
    ap.add_argument("--map-anneal", type=lambda v: tuple(float(x) for x in v.split(",")), default=None,
                    help="MAP likelihood weights, comma-separated (default: the sampler's; 1 = plain restarts)")
    ap.add_argument("--save", default=None, help="keep each simulation's posterior and truth in this directory")
    ap.add_argument("--out", default=None, help="write the per-simulation results as JSON here")
    ap.add_argument("--min-visits", type=int, default=12,
                    help="also report per-policy-state blocks over the states with at least this many simulated months")
    ap.add_argument("--rhat-ok", type=float, default=1.05,
                    help="also report coverage over the simulations whose max R-hat is below this")
    a = ap.parse_args()
    if (a.truth == "posterior") != (a.run is not None):
        ap.error("--truth posterior needs --run RUN, and --run is only used with it")
    seeds = [a.seed0 + i for i in range(a.sims)]
    cfg, pri, real, truths = _model_and_truths(a.run, Path(a.data_dir), seeds)
    opts = {"config": cfg, "priors": pri, "real": real, "chains": a.chains, "draws": a.draws,
            "tune": a.tune, "end": a.end, "data_dir": a.data_dir,
            "min_visits": a.min_visits, "save": a.save,
            "start": {"init": a.init} | {k: v for k, v in (("map_restarts", a.map_restarts),
                                                            ("map_anneal", a.map_anneal)) if v}}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.workers) as ex:
        results = list(ex.map(one_sim, [(seed, truths[seed], opts) for seed in seeds]))
    for r in results:
        if "error" in r:
            print(f"simulation {r['seed']} FAILED: {r['error']}")
    results = [r for r in results if "error" not in r]
    print(f"simulations: {a.sims} (truth from the {a.truth}{' of ' + a.run if a.run else ''}; simulated panel "
          f"to {a.end}; {a.chains} chains x {a.draws} draws), wall {time.perf_counter() - t0:.0f} s")
    report(results, "all simulations")
    ok = [r for r in results if r["max_rhat"] < a.rhat_ok]
    if ok and len(ok) < len(results):
        report(ok, f"the {len(ok)} simulations with max R-hat < {a.rhat_ok}")
    report([{"blocks": r["visited"]} for r in results],
           f"per-policy-state blocks, states with >= {a.min_visits} simulated months only")
    report([{"blocks": r["rare"]} for r in results],
           f"per-policy-state blocks, states with < {a.min_visits} simulated months only")
    print("divergences per simulation:", [r["divergences"] for r in results])
    print("max R-hat per simulation:", [round(r["max_rhat"], 3) for r in results])
    print("share of posterior draws with log density below the truth's (uniform under calibration):",
          [round(r["logp_truth_rank"], 2) for r in results])
    print("truth's log density minus the draws' median:",
          [round(r["logp_truth"] - r["logp_draws_q"][1], 1) for r in results])
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
