"""The ``diagnose`` workflow: review a saved run and write ``reports/<run_id>/diagnostics.html``.

Reads the run (verified against its manifest), rebuilds its model from the manifest's own model
and prior texts (so later edits of ``models/`` or ``priors/`` do not change the review; the
data files must still match), applies the workspace's ``models/diagnostics.toml`` and renders
the page. The run's own draws are not resampled; unless the fit fails, where PSIS-LOO is
unreliable for some month (Pareto k above the warn level) the mixture of leave-one-out
posteriors is sampled once (:mod:`regimecast.checks.robust_loo`), the slow part (minutes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from regimecast.store import runs
from regimecast.config.thresholds import Thresholds, check_thresholds
from regimecast.workflows.engine import RegimeModel
from regimecast.checks.review import DiagnoseSettings, Review, assess, robust_loo_review, review_run
from regimecast.checks.verdict import Verdict
from regimecast.report.diagnostics import write_diagnostics
from regimecast.store.workspace import Workspace


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
    mixture = "not needed" if settings.mixture else "off"
    if settings.mixture and verdict.level != "fail":    # a fit that fails is not worth the extra sampling
        review = robust_loo_review(review, run, rm, settings, th, progress)
        verdict = assess(review, th)
        if review.loo is not None and review.loo.mixture is not None:
            mixture = (f"{settings.mixture_chains} chains x {settings.mixture_draws} draws, "
                       f"{settings.mixture_tune} tuning steps, warm")
    elif settings.mixture:
        mixture = "skipped: the fit fails"
    m, s = run.manifest, run.manifest["sampler"]
    meta = {"model": Path(m["model"]["file"]).name, "priors": m["priors"]["name"],
            "data": f"{m['data']['start']}..{m['data']['end']}",
            "sampler": f"{s['backend']}, {s['chains']} chains x {s['draws']} draws, {s['tune']} tuning steps",
            "review seed": str(settings.seed),
            "replicates": f"{settings.ppc_draws} draws x {settings.ppc_paths} paths",
            "leave-one-out mixture": mixture}
    if progress:
        progress("figures and page")
    path = write_diagnostics(ws.reports / run.run_id, review, verdict, run.idata, th, meta, settings.worst)
    return DiagnoseResult(run.run_id, path, verdict, review, time.perf_counter() - t0)
