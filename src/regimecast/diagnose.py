"""The ``diagnose`` workflow: review a saved run and write ``reports/<run_id>/diagnostics.html``.

Reads the run (verified against its manifest), rebuilds its model from the manifest's own model
and prior texts (so later edits of ``models/`` or ``priors/`` do not change the review; the
data files must still match), applies the workspace's ``models/diagnostics.toml`` and renders
the page. Nothing is resampled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from regimecast import runs
from regimecast.diagnostics import Thresholds
from regimecast.engine import RegimeModel
from regimecast.review import DiagnoseSettings, Review, Verdict, assess, check_thresholds, review_run
from regimecast.review_report import write_diagnostics
from regimecast.workspace import Workspace


@dataclass(frozen=True)
class DiagnoseResult:
    run_id: str
    html: Path
    verdict: Verdict
    review: Review
    wall_time_s: float


def diagnose(ws: Workspace, run_ref: str | Path, settings: DiagnoseSettings, *, data_dir: str | Path | None = None,
             progress: Callable[[str], None] | None = None) -> DiagnoseResult:
    """Review run ``run_ref`` (id, prefix, path or ``latest``) and write its diagnostics page."""
    t0 = time.perf_counter()
    th = Thresholds.load(ws.models / "diagnostics.toml")
    check_thresholds(th, ws.models / "diagnostics.toml")
    run = runs.load_run(runs.resolve_run(ws.runs, run_ref))
    rm = RegimeModel.from_run(run, None if data_dir is None else Path(data_dir))
    review = review_run(run, rm, settings, progress)
    verdict = assess(review, th)
    m, s = run.manifest, run.manifest["sampler"]
    meta = {"model": Path(m["model"]["file"]).name, "priors": m["priors"]["name"],
            "data": f"{m['data']['start']}..{m['data']['end']}",
            "sampler": f"{s['backend']}, {s['chains']} chains x {s['draws']} draws, {s['tune']} tuning steps",
            "review seed": str(settings.seed),
            "replicates": f"{settings.ppc_draws} draws x {settings.ppc_paths} paths"}
    if progress:
        progress("figures and page")
    path = write_diagnostics(ws.reports / run.run_id, review, verdict, run.idata, th, meta, settings.worst)
    return DiagnoseResult(run.run_id, path, verdict, review, time.perf_counter() - t0)
