"""Wall time and sampling efficiency of the default fit on the real panel, back to back.

    python benchmarks/fit_time.py --chains 4 --draws 1000 --tune 500 --arms numba jax

    git show 921fec6:priors/baseline.toml > /tmp/baseline_before.toml
    python benchmarks/fit_time.py --arms numba@2000/500 jax=/tmp/baseline_before.toml@3000/1000

Each arm (likelihood kernel, optionally ``=PRIOR_FILE`` and ``@DRAWS/TUNE``, x NUTS backend)
fits the same model, seed and start (the annealed MAP start) in turn; the prior set is
``priors/baseline.toml`` and the settings ``--draws``/``--tune`` unless the arm names others
(the second command: each code's own production default, today's against 921fec6's). Ours: ``numba`` (the numba potential of
``regimecast.model.likelihood``, nutpie's numba backend). Baseline: the first ``jax`` arm (the JAX
potential through ``wrap_jax`` and nutpie's JAX backend: the fit before the numba kernel;
with the prior file of an earlier commit, the fit before a prior change as well). Prints wall
time (initialisation and compilation included), leapfrog steps per draw, R-hat, the minimum
bulk and tail ESS over every scalar parameter, divergences, E-BFMI, the minimum ESS per
second of wall time, and each configuration's ESS-per-second ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--arms", nargs="+", default=["numba", "jax"],
                    help="likelihood kernel (numba or jax), optionally =PRIOR_FILE and @DRAWS/TUNE")
    ap.add_argument("--backends", nargs="+", default=["nutpie"], choices=["nutpie", "numpyro"])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fred"))
    ap.add_argument("--end", default=None)
    ap.add_argument("--mass-matrix", default="low_rank", choices=["diag", "low_rank"])
    a = ap.parse_args()

    from regimecast.config.model_file import load_model_config
    from regimecast.data.panel import build_panel
    from regimecast.config.thresholds import Thresholds
    from regimecast.checks.convergence import diagnostics_block
    from regimecast.workflows.engine import RegimeModel
    from regimecast.fit.sampler import SamplerSettings, free_names, sample
    from regimecast.model.graph import build_model
    from regimecast.config.priors import load_priors

    cfg = load_model_config(ROOT / "models" / "default.toml")
    arms = []
    for arm in a.arms:
        head, _, sizes = arm.partition("@")
        lik, _, prior_file = head.partition("=")
        draws, _, tune = sizes.partition("/")
        if lik not in ("numba", "jax") or (sizes and not (draws.isdigit() and tune.isdigit())):
            ap.error(f"--arms {arm!r}: expected numba or jax, optionally =PRIOR_FILE and @DRAWS/TUNE")
        arms.append((arm, lik, Path(prior_file) if prior_file else ROOT / "priors" / "baseline.toml",
                     int(draws) if sizes else a.draws, int(tune) if sizes else a.tune))
    panel = build_panel(cfg.series, cfg.sample, Path(a.data_dir), end=a.end)
    th = Thresholds.load(ROOT / "models" / "diagnostics.toml")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"panel {panel.start}..{panel.end}; {a.chains} chains, seed {a.seed}")
    rates = {}
    for arm, lik, prior_file, draws, tune in arms:
        pri = load_priors(prior_file, cfg)
        for backend in a.backends:
            rm = RegimeModel(cfg, pri, panel)
            model = build_model(cfg, pri, rm.design, likelihood=lik)
            t0 = time.perf_counter()
            idata, wall, _ = sample(model, SamplerSettings(seed=a.seed, backend=backend, chains=a.chains,
                                                         draws=draws, tune=tune, mass_matrix=a.mass_matrix),
                                    progressbar=False)
            ss = idata.sample_stats
            steps = float(ss["n_steps"].mean()) if "n_steps" in ss else float("nan")
            d = diagnostics_block(idata, free_names(model), th)
            ess = min(d["min_ess_bulk"], d["min_ess_tail"])
            rates[(arm, lik, backend)] = ess / wall
            print(f"{arm} {backend:7s} {a.chains} x {draws} after {tune}: wall {wall:7.1f} s  leapfrog steps/draw {steps:5.1f}  "
                  f"max R-hat {d['max_rhat']:.3f}  min ESS bulk {d['min_ess_bulk']:.0f} tail {d['min_ess_tail']:.0f}  "
                  f"divergences {d['divergences']}  min E-BFMI {d['min_bfmi']:.2f}  min ESS/s {ess / wall:.3f}  "
                  f"(total {time.perf_counter() - t0:.0f} s)", flush=True)
    base = next(((arm, r) for (arm, lik, backend), r in rates.items() if lik == "jax" and backend == "nutpie"), None)
    if base:
        for (arm, lik, backend), r in rates.items():
            print(f"min ESS per second, {arm}/{backend} over {base[0]}/nutpie: x{r / base[1]:.1f}")


if __name__ == "__main__":
    main()
