"""``regimecast update``: refit a run on newly published months, warm-started from it."""

from __future__ import annotations

import os
from pathlib import Path

from regimecast.config.defaults import check_chains
from regimecast.data.panel import build_panel
from regimecast.errors import RunError
from regimecast.fit import update as upd
from regimecast.fit.sampler import SamplerSettings, free_names
from regimecast.model.spec import structure
from regimecast.report.update import write_update_report
from regimecast.simulate.forecast import ForecastSettings
from regimecast.store import runs
from regimecast.store.workspace import DATA_DIR_ENV, Workspace
from regimecast.workflows.engine import RegimeModel, config_from_manifest
from regimecast.workflows.inputs import scenarios_for, thresholds
from regimecast.workflows.run import forecast, report

def update(ws: Workspace, run_ref: str | Path, *, data_dir: str | Path | None = None, end: str | None = None,
           accept_revisions: bool = False, overrides: dict | None = None,
           forecast_settings: ForecastSettings | None = None, progressbar: bool = True) -> tuple[Path, dict]:
    """Refit a run on data with newly published months, warm-started from it, and write the
    child run (manifest ``parent`` and ``update`` blocks), its forecast, its report and the
    update report (``reports/<child>/update.html``). ``data_dir``: explicit, else
    $REGIMECAST_DATA_DIR, else the parent's; ``end``: last month to use (default: the latest
    common month of the data); ``overrides``: sampler settings that differ from the parent's (e.g. ``{"draws": 500}``).
    Returns the child run directory and the update report's content."""
    parent = runs.load_run(runs.resolve_run(ws.runs, run_ref))
    m = parent.manifest
    # the refit's settings before any data is read (one chain, a seed beyond 2^63: refused at once)
    settings = SamplerSettings(**(m["sampler"] | (overrides or {}) | {"init": "warm"}))
    check_chains(settings.chains)
    config, priors = config_from_manifest(m)
    ddir = ws.data_dir(data_dir) if data_dir is not None or os.environ.get(DATA_DIR_ENV) else Path(m["data"]["dir"])
    panel = build_panel(config.series, config.sample, ddir, end=end)
    months = upd.new_months(m["data"]["end"], panel)
    if not months:
        raise RunError(f"no month after {m['data']['end']} in {ddir}: run {parent.run_id} is up to date")
    revisions = upd.find_revisions(parent.idata.observed_data["y"], panel.observations, config.revision_tolerance_sd)
    if revisions and not accept_revisions:
        raise upd.revision_error(revisions, ddir, parent.run_id)

    # the parent's forecast settings; a parent never forecast: the defaults with the parent's seed
    # (settled before the refit, so that nothing fails after it)
    fs = forecast_settings or ForecastSettings(**({"seed": m["sampler"]["seed"]} | m.get("forecast", {}).get("settings", {})))
    rm = RegimeModel(config, priors, panel)
    names = free_names(rm.model)
    start, source = upd.warm_start(parent.idata, names)
    result = rm.fit(settings, thresholds(ws), progressbar=progressbar, start=start)
    extra = {"parent": {"run_id": parent.run_id, "data_end": m["data"]["end"], "warm_start": source},
             "update": {"new_months": months, "revisions": upd.revisions_json(revisions),
                        "accepted_revisions": bool(revisions)}}
    child_path = rm.save(ws.runs, result, ddir, extra)

    scen = scenarios_for(ws, config)
    # the parent's forecast from the same files cut at its last month (its own files may have
    # been replaced by the newer download; the revision check above vouches for the overlap)
    parent_panel = build_panel(config.series, config.sample, ddir, end=m["data"]["end"])
    _, before = RegimeModel(config, priors, parent_panel).forecast(parent, fs, scen, store=False)
    _, after = forecast(ws, child_path, fs, store=False)
    report(ws, child_path)
    child = runs.load_run(child_path)

    content = upd.update_content(parent, child, rm.design, rm.design_dataset()["y"], structure(config, priors),
                                 names, fs.max_draws, months, source, revisions, before["scenario_prob"],
                                 after["scenario_prob"])
    write_update_report(ws.reports / child.run_id, content)
    return child_path, content
