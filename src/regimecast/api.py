"""The Python API behind every CLI command (usable from notebooks)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import xarray as xr

from regimecast import ledger, runs
from regimecast.config import ModelConfig, load_model_config
from regimecast.data.panel import Panel, build_panel
from regimecast.defaults import check_chains
from regimecast.diagnostics import Thresholds
from regimecast.engine import FitResult, RegimeModel
from regimecast.errors import Interrupted, RunError
from regimecast.fit import SamplerSettings
from regimecast.forecast import ForecastSettings
from regimecast.model import structure
from regimecast.priors import PriorSet, load_priors
from regimecast.rng import check_seed
from regimecast.report import write_report
from regimecast.reporting import report_content
from regimecast.scenarios import load_scenarios
from regimecast.workspace import DATA_DIR_ENV, Workspace


def load_inputs(ws: Workspace, *, model: str | None = None, priors: str = "baseline",
                data_dir: str | Path | None = None, end: str | None = None
                ) -> tuple[ModelConfig, PriorSet, Panel]:
    """Validated model file, prior set and data panel."""
    config = load_model_config(ws.models / "default.toml" if model is None else ws.model_file(model))
    prior_set = load_priors(ws.prior_file(priors), config)
    panel = build_panel(config.series, config.sample, ws.data_dir(data_dir), end=end)
    return config, prior_set, panel


def fit(ws: Workspace, settings: SamplerSettings, *, model: str | None = None, priors: str = "baseline",
        data_dir: str | Path | None = None, end: str | None = None, progressbar: bool = True
        ) -> tuple[Path, FitResult]:
    """Fit the model and write ``runs/<run_id>/``; returns the run directory and the fit.
    Settings that could only fail after sampling (one chain: no R-hat; a seed beyond 2^63) are
    refused first; Ctrl-C while sampling is an :class:`Interrupted` saying nothing was written."""
    check_seed(settings.seed)
    check_chains(settings.chains)
    config, prior_set, panel = load_inputs(ws, model=model, priors=priors, data_dir=data_dir, end=end)
    rm = RegimeModel(config, prior_set, panel)
    thresholds = Thresholds.load(ws.models / "diagnostics.toml")
    with _sigint_seen() as seen:
        try:
            result = rm.fit(settings, thresholds, progressbar=progressbar)
        except (KeyboardInterrupt, Exception) as exc:
            # nutpie turns Ctrl-C into partial results, on which the fit then fails
            # (IndexError, "Encountered all NA values"): report the interrupt, not that
            if seen or isinstance(exc, KeyboardInterrupt):
                raise Interrupted(f"fit interrupted (Ctrl-C) while sampling: no run was written "
                                  f"({ws.runs} unchanged)") from exc
            raise
    return rm.save(ws.runs, result, ws.data_dir(data_dir)), result


@contextlib.contextmanager
def _sigint_seen():
    """A list that gets an entry when SIGINT arrives inside the block (the previous handler
    still runs: Ctrl-C still raises KeyboardInterrupt). Outside the main thread: never set."""
    seen: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        seen.append(signum)
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


FORECAST = "forecast.nc"
FORECAST_SUMMARY = "forecast_summary.nc"


def forecast(ws: Workspace, run_ref: str | Path, settings: ForecastSettings, *, store: bool = True,
             data_dir: str | Path | None = None, scenarios: str | Path | None = None, progress=None
             ) -> tuple[Path, xr.Dataset]:
    """Simulate forward paths from a fitted run and add ``forecast_summary.nc`` (and, with
    ``store``, every path in ``forecast.nc``) to the run directory; returns (run dir, summary)."""
    path = runs.resolve_run(ws.runs, run_ref)
    run = runs.load_run(path)
    try:
        return _forecast(ws, path, run, settings, store, data_dir, scenarios, progress)
    except KeyboardInterrupt as exc:
        before = run.manifest.get("forecast")
        done = runs.load_manifest(path).get("forecast") != before
        raise Interrupted(f"forecast of run {run.run_id} interrupted: " + (
            "the new forecast was complete and is in place" if done else
            "nothing was written; the run's previous forecast stays valid" if before else
            "nothing was written; the run has no forecast")) from exc


def _forecast(ws: Workspace, path: Path, run: runs.Run, settings: ForecastSettings, store: bool,
              data_dir: str | Path | None, scenarios: str | Path | None, progress) -> tuple[Path, xr.Dataset]:
    rm = RegimeModel.from_run(run, None if data_dir is None else Path(data_dir))
    scen = load_scenarios(_scenario_file(ws, scenarios), series=rm.config.observed,
                          factors={f.name: f.states for f in rm.config.factors})
    t0 = time.perf_counter()
    paths, summary = rm.forecast(run, settings, scen, store=store, progress=progress)
    wall = time.perf_counter() - t0
    files = {FORECAST_SUMMARY: lambda p: summary.to_netcdf(p, engine="h5netcdf")}
    if paths is not None:
        files[FORECAST] = lambda p: paths.to_netcdf(p, engine="h5netcdf")
    meta = {"settings": asdict(settings), "stored_paths": paths is not None, "wall_time_s": round(wall, 2),
            "scenarios": {"file": str(scen.file), "text": scen.file.read_text(encoding="utf-8")}}
    manifest = runs.add_files(path, files, {"forecast": meta})
    ledger.record(ws.ledger, manifest, summary)          # the forecast ledger (regimecast ledger)
    return path, summary


def report(ws: Workspace, run_ref: str | Path, *, data_dir: str | Path | None = None) -> Path:
    """Write ``reports/<run_id>/`` (index.html, report.md, summary.json) from a run and its
    forecast; returns the report directory."""
    path = runs.resolve_run(ws.runs, run_ref)
    run = runs.load_run(path)
    if FORECAST_SUMMARY not in run.manifest.get("files", {}):
        raise RunError(f"run {run.run_id} has no forecast yet: run `regimecast forecast {run.run_id}` first")
    summary = xr.load_dataset(path / FORECAST_SUMMARY, engine="h5netcdf")
    rm = RegimeModel.from_run(run, None if data_dir is None else Path(data_dir))
    content = report_content(run, summary, rm.config, rm.priors, structure(rm.config, rm.priors), rm.panel,
                             reproduce_command(run))
    return write_report(ws.reports / run.run_id, content)


def reproduce_command(run: runs.Run) -> str:
    """The commands that reproduce a run, its forecast and its report."""
    m, s = run.manifest, run.manifest["sampler"]
    f = m.get("forecast", {}).get("settings", {})
    fit = ["regimecast", "fit", "--model", m["model"]["file"], "--priors", m["priors"]["file"],
           "--data-dir", m["data"]["dir"], "--end", m["data"]["end"], "--seed", s["seed"], "--chains", s["chains"],
           "--draws", s["draws"], "--tune", s["tune"], "--backend", s["backend"],
           "--mass-matrix", s.get("mass_matrix", "diag"), "--init", s.get("init", "jitter")]
    fc = ["regimecast", "forecast", "RUN"] + (["--horizon", f.get("horizon"), "--paths", f.get("paths"),
                                               "--max-draws", f.get("max_draws"), "--seed", f.get("seed")] if f else [])
    return "\n".join(shlex.join(str(a) for a in cmd) for cmd in (fit, fc, ["regimecast", "report", "RUN"]))


def _scenario_file(ws: Workspace, scenarios: str | Path | None) -> Path:
    return ws.models / "scenarios.toml" if scenarios is None else ws.model_file(scenarios)


def prior_check(ws: Workspace, priors: str | Path, *, model: str | None = None):
    """Validate a prior file against the model; returns a :class:`regimecast.prior_predictive.PriorCheck`
    (the prior set, its parent, the parameters it changes). Raises ``ConfigError`` (file, key, value)."""
    from regimecast.prior_predictive import check_prior_file

    config = load_model_config(ws.models / "default.toml" if model is None else ws.model_file(model))
    return check_prior_file(ws.prior_file(priors), config)


def prior_predictive(ws: Workspace, priors: str | Path, settings: ForecastSettings, *, model: str | None = None,
                     data_dir: str | Path | None = None, end: str | None = None,
                     scenarios: str | Path | None = None, progress=None) -> xr.Dataset:
    """Forecast summary from ``settings.max_draws`` parameter draws of the prior alone, started at the
    last month of the data (see :mod:`regimecast.prior_predictive`: the data decide only where we are now)."""
    from regimecast.prior_predictive import prior_predictive as predictive

    config, prior_set, panel = load_inputs(ws, model=model, priors=str(priors), data_dir=data_dir, end=end)
    scen = load_scenarios(_scenario_file(ws, scenarios), series=config.observed,
                          factors={f.name: f.states for f in config.factors})
    return predictive(config, prior_set, panel, scen, settings, progress=progress)


def update(ws: Workspace, run_ref: str | Path, *, data_dir: str | Path | None = None, end: str | None = None,
           accept_revisions: bool = False, overrides: dict | None = None,
           forecast_settings: ForecastSettings | None = None, progressbar: bool = True) -> tuple[Path, dict]:
    """Refit a run on data with newly published months, warm-started from it, and write the
    child run (manifest ``parent`` and ``update`` blocks), its forecast, its report and the
    update report (``reports/<child>/update.html``). ``data_dir``: explicit, else
    $REGIMECAST_DATA_DIR, else the parent's; ``end``: last month to use (default: the latest
    common month of the data); ``overrides``: sampler settings that differ from the parent's (e.g. ``{"draws": 500}``).
    Returns the child run directory and the update report's content."""
    from regimecast import update as upd
    from regimecast.engine import config_from_manifest
    from regimecast.fit import free_names
    from regimecast.forecast import posterior_draws
    from regimecast.model import inputs
    from regimecast.scenarios import summarise_probabilities
    from regimecast.update_report import write_update_report

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
    result = rm.fit(settings, Thresholds.load(ws.models / "diagnostics.toml"), progressbar=progressbar, start=start)
    extra = {"parent": {"run_id": parent.run_id, "data_end": m["data"]["end"], "warm_start": source},
             "update": {"new_months": months, "revisions": upd.revisions_json(revisions),
                        "accepted_revisions": bool(revisions)}}
    child_path = rm.save(ws.runs, result, ddir, extra)

    scen = load_scenarios(_scenario_file(ws, None), series=config.observed,
                          factors={f.name: f.states for f in config.factors})
    # the parent's forecast from the same files cut at its last month (its own files may have
    # been replaced by the newer download; the revision check above vouches for the overlap)
    parent_panel = build_panel(config.series, config.sample, ddir, end=m["data"]["end"])
    _, before = RegimeModel(config, priors, parent_panel).forecast(parent, fs, scen, store=False)
    _, after = forecast(ws, child_path, fs, store=False)
    report(ws, child_path)
    child = runs.load_run(child_path)

    st = structure(config, priors)
    draws, _ = posterior_draws(child.idata.posterior, names, fs.max_draws)     # the forecast's draws
    steps = upd.filter_steps(draws, st, inputs(rm.design))
    pol = config.transition_factor
    p_now = upd.state_summary(parent.idata.posterior[f"filtered_{pol}"], m["data"]["end"], pol)
    c_then = upd.state_summary(child.idata.posterior[f"filtered_{pol}"], m["data"]["end"], pol)
    c_now = upd.state_summary(child.idata.posterior[f"filtered_{pol}"], panel.end, pol)
    content = {
        "parent": {"run_id": parent.run_id, "data_end": m["data"]["end"]},
        "child": {"run_id": child.run_id, "data_end": panel.end, "diagnostics": child.manifest["diagnostics"]},
        "new_months": months, "warm_start": source, "revisions": upd.revisions_json(revisions),
        "scenarios": {str(s): {"before": summarise_probabilities(before["scenario_prob"].sel(scenario=s).values),
                               "after": summarise_probabilities(after["scenario_prob"].sel(scenario=s).values)}
                      for s in after["scenario"].values},
        "policy": {s: {"parent": p_now[s], "child_at_parent_end": c_then[s], "child": c_now[s]} for s in c_now},
        "months": upd.month_contributions(steps, rm.design.dates, months, tuple(st.policy_states),
                                          rm.design_dataset()["y"]),
    }
    write_update_report(ws.reports / child.run_id, content)
    return child_path, content


def _narrative_shifts(loaded: dict[str, runs.Run]) -> dict[str, dict]:
    """Per run whose prior set extends another compared prior set: the parent's name and what
    the data kept of each changed parameter (:func:`regimecast.compare.narrative_shifts`)."""
    from regimecast import compare as cmp
    from regimecast.engine import config_from_manifest

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
    import hashlib
    import json

    from regimecast import compare as cmp
    from regimecast.compare_report import write_compare_report

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
    loo, weights = cmp.loo_table(idatas)
    start, stop = spans.pop()
    content = {
        "data_start": start, "data_end": stop,
        "settings": f"forecast: {fs.max_draws} draws x {fs.paths} paths, seed {fs.seed}; LFO over the last {lfo_months} months",
        "runs": {n: {"run_id": r.run_id, "prior_sha256": r.manifest["priors"]["sha256"],
                     "diagnostics": r.manifest["diagnostics"]} for n, r in loaded.items()},
        "loo": loo, "weights": weights,
        "lfo": {n: cmp.lfo(i, lfo_months) for n, i in idatas.items()},
        "scenarios": cmp.scenario_table(summaries, weights),
        "shifts": _narrative_shifts(loaded),
    }
    key = hashlib.sha256(json.dumps(sorted(r.run_id for r in loaded.values())).encode()).hexdigest()[:8]
    out = ws.reports / "compare" / f"{stop}-{key}"
    write_compare_report(out, content)
    return out, content
