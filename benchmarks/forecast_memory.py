"""Peak memory of `regimecast forecast --summary-only` at several path counts.

Each forecast runs in its own process (the CLI, in-process in a small wrapper that prints its
own peak RSS, ``ru_maxrss``) on a copy of a fitted run in a scratch workspace (files hard-linked
where possible: the run itself is never modified). Memory that does not grow with ``--paths``
is what the summary mode promises (issue 21, item 16: 1.3 GB at 2,000 paths and 6.9 GB at
50,000 before paths were simulated in chunks).

    REGIMECAST_DATA_DIR=../shared/data/fred .venv/bin/python benchmarks/forecast_memory.py \
        [RUN] [--paths 2000 20000] [--max-draws 40] [--workspace .]

Run it with ``PYTHONPATH=<other checkout>/src`` to measure another version of the code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WRAPPER = """
import resource, sys
from regimecast.cli import main
sys.argv = ["regimecast", *sys.argv[1:]]
try:
    main()
finally:
    print(f"PEAK_RSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", flush=True)
"""


def _link_copy(src: Path, dst: Path) -> None:
    """Large files hard-linked (never rewritten: writes go through a rename), small ones copied."""
    def link(a: str, b: str) -> None:
        try:
            if os.path.getsize(a) < 2**20:
                raise OSError
            os.link(a, b)
        except OSError:
            shutil.copy2(a, b)
    shutil.copytree(src, dst, copy_function=link)


def scratch_workspace(ws: Path, run: str, tmp: Path) -> str:
    """``tmp`` holding models/, priors/ and the run (resolved from ``ws``); returns its id."""
    runs = sorted(p for p in (ws / "runs").iterdir() if (p / "manifest.json").is_file())
    src = runs[-1] if run == "latest" else next(p for p in runs if p.name.startswith(run))
    for d in ("models", "priors"):
        shutil.copytree(ws / d, tmp / d)
    (tmp / "runs").mkdir()
    _link_copy(src, tmp / "runs" / src.name)
    try:                               # a run from before sealed manifests: vouch for the copy
        from regimecast.store import runs as store
        if "integrity" not in (tmp / "runs" / src.name / "manifest.json").read_text():
            store.seal(tmp / "runs" / src.name)
    except (ImportError, AttributeError):
        pass
    return src.name


def peak_rss(tmp: Path, run_id: str, paths: int, max_draws: int, data_dir: str) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one summary-only forecast."""
    cmd = [sys.executable, "-c", WRAPPER, "--workspace", str(tmp), "forecast", run_id, "--summary-only",
           "--paths", str(paths), "--max-draws", str(max_draws), "--seed", "1", "--data-dir", data_dir]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak = [ln for ln in out.stdout.splitlines() if ln.startswith("PEAK_RSS_KB")]
    if out.returncode != 0 or not peak:
        raise SystemExit(f"forecast --paths {paths} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return int(peak[0].split()[1]) / 1024, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", default="latest")
    ap.add_argument("--paths", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--max-draws", type=int, default=40)
    ap.add_argument("--workspace", type=Path, default=Path("."))
    ap.add_argument("--data-dir", default=os.environ.get("REGIMECAST_DATA_DIR", "../shared/data/fred"))
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="forecast-memory-") as d:
        run_id = scratch_workspace(a.workspace.resolve(), a.run, Path(d))
        print(f"run {run_id}, {a.max_draws} draws x 24 months, --summary-only")
        print("| paths per draw | paths in all | peak RSS | wall |")
        print("|---|---|---|---|")
        for n in a.paths:
            mb, wall = peak_rss(Path(d), run_id, n, a.max_draws, str(Path(a.data_dir).resolve()))
            print(f"| {n:,} | {n * a.max_draws:,} | {mb:,.0f} MB | {wall:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
