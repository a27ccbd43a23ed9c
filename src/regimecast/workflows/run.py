"""The main job's steps: fit a model and write ``runs/<run_id>/``, forecast from a run, and
write its report."""

from __future__ import annotations

import contextlib
import shlex
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import xarray as xr

from regimecast.config.defaults import check_chains
from regimecast.config.model_file import ModelConfig
from regimecast.data.curve import market_path
from regimecast.errors import Interrupted, RunError
from regimecast.fit.sampler import SamplerSettings
from regimecast.model.spec import structure
from regimecast.report.forecast import write_report
from regimecast.report.forecast_content import report_content
from regimecast.report.forecast_market import (SOURCE_HORIZON, SOURCE_PATHS, fed_funds_series, market_block,
                                               model_windows, model_windows_from_quantiles)
from regimecast.simulate.forecast import ForecastSettings
from regimecast.store import ledger, runs
from regimecast.store.workspace import Workspace
from regimecast.workflows.engine import FitResult, RegimeModel
from regimecast.workflows.inputs import load_inputs, scenarios_for, thresholds

def fit(ws: Workspace, settings: SamplerSettings, *, model: str | None = None, priors: str = "baseline",
        data_dir: str | Path | None = None, end: str | None = None, progressbar: bool = True
        ) -> tuple[Path, FitResult]:
    """Fit the model and write ``runs/<run_id>/``; returns the run directory and the fit.
    Settings that could only fail after sampling (one chain: no R-hat; a seed beyond 2^63) are
    refused first (the seed by :class:`SamplerSettings` itself); Ctrl-C while sampling is an
    :class:`Interrupted` saying nothing was written."""
    check_chains(settings.chains)
    config, prior_set, panel = load_inputs(ws, model=model, priors=priors, data_dir=data_dir, end=end)
    rm = RegimeModel(config, prior_set, panel)
    with _sigint_seen() as seen:
        try:
            result = rm.fit(settings, thresholds(ws), progressbar=progressbar)
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
    scen = scenarios_for(ws, rm.config, scenarios)
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
    market = market_comparison(path, run, summary, rm.config, Path(data_dir or run.manifest["data"]["dir"]),
                               rm.panel.end)
    content = report_content(run, summary, rm.config, rm.priors, structure(rm.config, rm.priors), rm.panel,
                             reproduce_command(run), thresholds(ws), market)
    return write_report(ws.reports / run.run_id, content)


def market_comparison(path: Path, run: runs.Run, summary: xr.Dataset, config: ModelConfig, data_dir: Path,
                      origin: str) -> dict:
    """The report's ``market_path`` block: the forwards the Treasury curve in ``data_dir`` prices
    at ``origin`` (YYYY-MM) against the model's fed funds window averages, from every stored path
    in ``forecast.nc`` when the forecast kept them, else from the per-horizon quantiles."""
    market, reason = market_path(data_dir, origin)
    series = fed_funds_series(config)
    if series is None:
        return market_block(origin, market, reason, None, None, "the model has no fed funds series")
    # forecast.nc (verified by load_run) may be an earlier forecast's: a later --summary-only one keeps it
    if run.manifest.get("forecast", {}).get("stored_paths") and FORECAST in run.manifest.get("files", {}):
        with xr.open_dataset(path / FORECAST, engine="h5netcdf") as ds:
            model = model_windows(ds["paths"].sel(series=series).load())
        return market_block(origin, market, reason, model, SOURCE_PATHS)
    model = model_windows_from_quantiles(summary["quantiles"].sel(series=series))
    return market_block(origin, market, reason, model, SOURCE_HORIZON)


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
