"""The MAP start: annealed restarts against plain restarts, on the real panel and on panels
simulated from the prior (where the truth's own mode is known).

    python benchmarks/map_start.py --seeds 20261123 99 --sims 1000 1001 1002 --restarts 16

Baseline in the same run: every restart runs L-BFGS on the full log density (``anneal=(1.0,)``,
the start before session 5). Ours: the sampler's default ``SamplerSettings.map_anneal``
schedule. Prints, per case and method, the best log density found, how many restarts
reached it, the distinct modes, the wall time and the ratio of wall times; for a simulated
panel also the mode L-BFGS reaches from the truth.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="*", default=[20261123, 99], help="MAP seeds on the real panel")
    ap.add_argument("--sims", type=int, nargs="*", default=[1000, 1001, 1002],
                    help="simulation seeds (as in recovery.py: truth from the prior, panel to --sim-end)")
    ap.add_argument("--sim-end", default="2013-12")
    ap.add_argument("--restarts", type=int, default=16)
    ap.add_argument("--maxiter", type=int, default=3000)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fred"))
    a = ap.parse_args()

    import jax
    from scipy.optimize import minimize

    jax.config.update("jax_enable_x64", True)
    from pymc.blocking import DictToArrayBijection

    from regimecast.config.model_file import load_model_config
    from regimecast.data.panel import build_panel
    from regimecast.model.design import build_design
    from regimecast.fit.sampler import SamplerSettings, map_start, tempered_logp
    from regimecast.model.graph import build_model
    from regimecast.model.spec import structure
    from regimecast.config.priors import load_priors
    from simulated import prior_truth_panel, truth_point

    cfg = load_model_config(ROOT / "models" / "default.toml")
    pri = load_priors(ROOT / "priors" / "baseline.toml", cfg)
    st = structure(cfg, pri)
    ours = SamplerSettings(seed=0).map_anneal
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; jax {jax.__version__}")
    print(f"restarts {a.restarts}; baseline anneal (1.0,), ours {ours}")
    cases = [("real panel", s, None) for s in a.seeds] + [(f"simulated {s}", s, s) for s in a.sims]
    for label, seed, sim in cases:
        design = build_design(cfg, build_panel(cfg.series, cfg.sample, Path(a.data_dir),
                                               end=a.sim_end if sim is not None else None))
        truth = None
        if sim is not None:
            design, truth, _ = prior_truth_panel(cfg, pri, st, design, sim)
        model = build_model(cfg, pri, design)
        line = f"{label} (seed {seed}, {design.dates[0]:%Y-%m}..{design.dates[-1]:%Y-%m})"
        if truth is not None:
            f, _ = tempered_logp(model)
            xt = DictToArrayBijection.map(truth_point(model, truth, sim)).data
            res = minimize(lambda x: tuple(-v for v in f(x, 1.0)), xt, jac=True, method="L-BFGS-B",
                           options={"maxiter": a.maxiter})
            line += f"; mode from the truth {-res.fun:.1f}"
        print(line)
        wall = {}
        for name, anneal in (("baseline", (1.0,)), ("annealed", ours)):
            t0 = time.perf_counter()
            _, rep = map_start(model, seed, a.restarts, a.maxiter, anneal)
            wall[name] = time.perf_counter() - t0
            print(f"  {name:<9} best {rep['logp'][0]:9.1f}  hits {rep['best_mode_hits']:2d}/{a.restarts}  "
                  f"modes {rep['distinct_modes']:2d}  worst {rep['logp'][-1]:9.1f}  {wall[name]:6.1f} s", flush=True)
        print(f"  wall time annealed / baseline: {wall['annealed'] / wall['baseline']:.2f}")


if __name__ == "__main__":
    main()
