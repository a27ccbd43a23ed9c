"""Wall time of a small backtest run serially and on a Dask LocalCluster, in one run.

    python benchmarks/backtest_time.py --start 2016-01 --every 24 --end 2020-01 --chains 2 --draws 60 --tune 60

Runs the same origins twice with the real engine (refit + forecast per origin) and the four
baselines: once in-process (``--serial``), once on a ``LocalCluster`` of ``--workers`` single-
threaded worker processes (default: the driver's, one per CPU, at most one per origin), each
into its own fresh results directory (nothing reused), and prints both wall times and serial /
cluster. On a machine shared with other jobs the figures move with their load: swap ``--modes``
to see by how much.
Every origin's numbers must
agree between the two runs (same seeds): the script prints the largest relative difference of
any score (floating-point summation order may differ in the last bits between processes).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--start", default="2016-01")
    ap.add_argument("--every", type=int, default=24)
    ap.add_argument("--end", default="2020-01")
    ap.add_argument("--horizons", default="1,3,12")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--draws", type=int, default=60)
    ap.add_argument("--tune", type=int, default=60)
    ap.add_argument("--paths", type=int, default=10)
    ap.add_argument("--max-draws", type=int, default=120)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fred"))
    ap.add_argument("--modes", nargs=2, default=["serial", "cluster"], choices=["serial", "cluster"],
                    help="order of the two runs (swap it to see how much a shared machine's load moved)")
    a = ap.parse_args()

    from regimecast.workflows import backtest as bt
    from regimecast.workflows import backtest_origin as bto
    from regimecast.store.workspace import Workspace

    ws = Workspace.at(ROOT)
    inputs = bt.load_inputs(ws, data_dir=a.data_dir)
    settings = bto.BacktestSettings(start=a.start, every=a.every, end=a.end, seed=a.seed,
                                   horizons=tuple(int(h) for h in a.horizons.split(",")), chains=a.chains,
                                   draws=a.draws, tune=a.tune, paths=a.paths, max_draws=a.max_draws,
                                   max_retries=0)          # tiny refits fail the diagnostics: time one fit each
    todo, _ = bto.origins(settings, inputs.config, inputs.full.end)
    workers = a.workers or bt.default_workers(len(todo))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; {len(todo)} origins "
          f"{todo[0]}..{todo[-1]}; refits {a.chains} chains x {a.draws} draws ({a.tune} tune), "
          f"{a.paths} paths x {a.max_draws} draws")
    walls, records = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in a.modes:
            t0 = time.perf_counter()
            res = bt.run_backtest(inputs, settings, Path(tmp) / mode, serial=mode == "serial", n_workers=workers)
            walls[mode] = time.perf_counter() - t0
            if res.failed:
                raise SystemExit(f"{mode}: origins failed: {res.failed}")
            records[mode] = {o: {k: v for k, v in r.items() if k not in ("timings_s", "fit")}
                             for o, r in res.records.items()}
            fits = [r["fit"]["wall_time_s"] for r in res.records.values()]
            print(f"{mode:8s} wall {walls[mode]:7.1f} s  ({len(res.computed)} origins; fit times "
                  f"{', '.join(f'{f:.0f}' for f in fits)} s)" + (f"  [{workers} worker processes]"
                                                                if mode == "cluster" else ""))
    print(f"serial / cluster = {walls['serial'] / walls['cluster']:.2f}")
    print(f"largest relative difference of any number, serial vs cluster: "
          f"{max_rel_diff(records['serial'], records['cluster']):.1e}")


def max_rel_diff(a, b) -> float:
    """Largest relative difference of the numbers in two records of the same shape (inf if the
    structure or any non-number differs)."""
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return max((max_rel_diff(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return max((max_rel_diff(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) / max(abs(a), abs(b), 1e-300)
    return 0.0 if a == b else float("inf")


if __name__ == "__main__":          # Dask's worker processes re-import this module
    main()
