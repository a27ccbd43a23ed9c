"""Wall time of the default fit on the real panel, per NUTS backend, in one run.

    python benchmarks/fit_time.py --chains 4 --draws 1000 --tune 1000 --backends nutpie numpyro

Baseline: numpyro (the JAX NUTS the issue names as default). Prints wall time (compilation
included), gradient evaluations per second, the diagnostics block, and each backend's ratio
to the baseline.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--backends", nargs="+", default=["nutpie", "numpyro"])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fred"))
    ap.add_argument("--end", default=None)
    ap.add_argument("--mass-matrix", default="low_rank", choices=["diag", "low_rank"])
    a = ap.parse_args()

    from regimecast.config import load_model_config
    from regimecast.data.panel import build_panel
    from regimecast.diagnostics import Thresholds, diagnostics_block
    from regimecast.engine import RegimeModel
    from regimecast.fit import SamplerSettings, free_names, sample
    from regimecast.priors import load_priors

    cfg = load_model_config(ROOT / "models" / "default.toml")
    pri = load_priors(ROOT / "priors" / "baseline.toml", cfg)
    panel = build_panel(cfg.series, cfg.sample, Path(a.data_dir), end=a.end)
    th = Thresholds.load(ROOT / "models" / "diagnostics.toml")
    print(f"machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores; "
          f"panel {panel.start}..{panel.end}; {a.chains} chains x {a.draws} draws, {a.tune} tune")
    walls = {}
    for backend in a.backends:
        rm = RegimeModel(cfg, pri, panel)
        t0 = time.perf_counter()
        idata, wall, _ = sample(rm.model, SamplerSettings(seed=a.seed, backend=backend, chains=a.chains,
                                                       draws=a.draws, tune=a.tune, mass_matrix=a.mass_matrix),
                                  progressbar=False)
        walls[backend] = wall
        steps = idata.sample_stats["n_steps"].values.sum() if "n_steps" in idata.sample_stats else float("nan")
        d = diagnostics_block(idata, free_names(rm.model), th)
        print(f"{backend:8s} wall {wall:8.1f} s  mean leapfrog steps/draw {steps / (a.chains * a.draws):6.1f}  "
              f"max R-hat {d['max_rhat']:.3f}  min ESS bulk {d['min_ess_bulk']:.0f}  "
              f"divergences {d['divergences']}  min BFMI {d['min_bfmi']:.2f}  (total {time.perf_counter() - t0:.0f} s)")
    base = walls.get("numpyro")
    if base:
        for b, w in walls.items():
            print(f"ratio {b} / numpyro wall time: {w / base:.2f}")


if __name__ == "__main__":
    main()
