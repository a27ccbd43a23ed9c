"""``regimecast compare``: prior sets (narratives) fitted to the same data, side by side."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import xarray as xr

from regimecast.checks import compare as cmp
from regimecast.config.defaults import check_chains
from regimecast.errors import RunError
from regimecast.fit.sampler import SamplerSettings
from regimecast.report.compare import write_compare_report
from regimecast.simulate.forecast import ForecastSettings
from regimecast.store import runs
from regimecast.store.workspace import Workspace
from regimecast.workflows.engine import config_from_manifest
from regimecast.workflows.inputs import thresholds
from regimecast.workflows.run import FORECAST_SUMMARY, fit, forecast

def _narrative_shifts(loaded: dict[str, runs.Run]) -> dict[str, dict]:
    """Per run whose prior set extends another compared prior set: the parent's name and what
    the data kept of each changed parameter (:func:`regimecast.checks.compare.narrative_shifts`)."""
    priors = {n: config_from_manifest(r.manifest)[1] for n, r in loaded.items()}
    by_file = {ps.chain[-1]: n for n, ps in priors.items()}
    out = {}
    for n, ps in priors.items():
        parent = by_file.get(ps.chain[-2]) if len(ps.chain) > 1 else None
        if parent is not None:
            out[n] = {"parent": parent, "parameters": cmp.narrative_shifts(
                priors[parent], ps, loaded[parent].idata.posterior, loaded[n].idata.posterior)}
    return out


def compare(ws: Workspace, priors: list[str], settings: SamplerSettings, *, runs_: list[str] | None = None,
            data_dir: str | Path | None = None, end: str | None = None, lfo_months: int = 36,
            forecast_settings: ForecastSettings | None = None, progressbar: bool = True) -> tuple[Path, dict]:
    """Fit every prior set in ``priors`` on the same data (or take the fitted runs ``runs_``,
    which must share their data), forecast each with the same settings, and write
    ``reports/compare/<id>/``: PSIS-LOO and LFO ELPD, stacking weights, scenario probabilities
    side by side. Returns the report directory and its content."""
    check_chains(settings.chains)                 # before any run is read or fitted
    fs = forecast_settings or ForecastSettings(seed=settings.seed)
    paths: dict[str, Path] = {}
    if runs_:
        for ref in runs_:
            p = runs.resolve_run(ws.runs, ref)
            name = runs.load_manifest(p)["priors"]["name"]
            if name in paths:
                raise RunError(f"compare: two runs of prior set '{name}' ({paths[name].name}, {p.name})")
            paths[name] = p
    for pr in priors:
        p, _ = fit(ws, settings, priors=pr, data_dir=data_dir, end=end, progressbar=progressbar)
        name = runs.load_manifest(p)["priors"]["name"]
        if name in paths:
            raise RunError(f"compare: prior set '{name}' given twice")
        paths[name] = p
    if len(paths) < 2:
        raise RunError("compare: needs at least two prior sets or runs")
    loaded = {n: runs.load_run(p) for n, p in paths.items()}
    spans = {(r.manifest["data"]["start"], r.manifest["data"]["end"]) for r in loaded.values()}
    if len(spans) != 1:
        raise RunError(f"compare: the runs were fitted on different samples {sorted(spans)}; ELPDs would not compare")
    summaries = {}
    for n, r in loaded.items():
        if FORECAST_SUMMARY in r.manifest.get("files", {}) and \
                r.manifest.get("forecast", {}).get("settings") == asdict(fs):
            summaries[n] = xr.load_dataset(r.path / FORECAST_SUMMARY, engine="h5netcdf")
        else:
            summaries[n] = forecast(ws, r.path, fs, store=False, data_dir=data_dir)[1]
    idatas = {n: r.idata for n, r in loaded.items()}
    k_warn = thresholds(ws).warn.pareto_k
    loo, weights = cmp.loo_table(idatas, k_warn)
    start, stop = spans.pop()
    content = {
        "data_start": start, "data_end": stop,
        "settings": f"forecast: {fs.max_draws} draws x {fs.paths} paths, seed {fs.seed}; LFO over the last {lfo_months} months",
        "runs": {n: {"run_id": r.run_id, "prior_sha256": r.manifest["priors"]["sha256"],
                     "diagnostics": r.manifest["diagnostics"]} for n, r in loaded.items()},
        "pareto_k_warn": k_warn, "loo": loo, "weights": weights,
        "lfo": {n: cmp.lfo(i, lfo_months, k_warn) for n, i in idatas.items()},
        "scenarios": cmp.scenario_table(summaries, weights),
        "shifts": _narrative_shifts(loaded),
    }
    key = hashlib.sha256(json.dumps(sorted(r.run_id for r in loaded.values())).encode()).hexdigest()[:8]
    out = ws.reports / "compare" / f"{stop}-{key}"
    write_compare_report(out, content)
    return out, content
