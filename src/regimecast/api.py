"""The Python API behind every CLI command (usable from notebooks)."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import xarray as xr

from regimecast import runs
from regimecast.config import ModelConfig, load_model_config
from regimecast.data.panel import Panel, build_panel
from regimecast.diagnostics import Thresholds
from regimecast.engine import FitResult, RegimeModel
from regimecast.errors import RunError
from regimecast.fit import SamplerSettings
from regimecast.forecast import ForecastSettings
from regimecast.model import structure
from regimecast.priors import PriorSet, load_priors
from regimecast.report import write_report
from regimecast.reporting import report_content
from regimecast.scenarios import load_scenarios
from regimecast.workspace import Workspace


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
    """Fit the model and write ``runs/<run_id>/``; returns the run directory and the fit."""
    config, prior_set, panel = load_inputs(ws, model=model, priors=priors, data_dir=data_dir, end=end)
    rm = RegimeModel(config, prior_set, panel)
    result = rm.fit(settings, Thresholds.load(ws.models / "diagnostics.toml"), progressbar=progressbar)
    return rm.save(ws.runs, result, ws.data_dir(data_dir)), result


FORECAST = "forecast.nc"
FORECAST_SUMMARY = "forecast_summary.nc"


def forecast(ws: Workspace, run_ref: str | Path, settings: ForecastSettings, *, store: bool = True,
             data_dir: str | Path | None = None, scenarios: str | Path | None = None, progress=None
             ) -> tuple[Path, xr.Dataset]:
    """Simulate forward paths from a fitted run and add ``forecast_summary.nc`` (and, with
    ``store``, every path in ``forecast.nc``) to the run directory; returns (run dir, summary)."""
    path = runs.resolve_run(ws.runs, run_ref)
    run = runs.load_run(path)
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
    runs.add_files(path, files, {"forecast": meta})
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
    fit = (f"regimecast fit --model {m['model']['file']} --priors {m['priors']['file']} --data-dir {m['data']['dir']} "
           f"--end {m['data']['end']} --seed {s['seed']} --chains {s['chains']} --draws {s['draws']} "
           f"--tune {s['tune']} --backend {s['backend']} --mass-matrix {s.get('mass_matrix', 'diag')} "
           f"--init {s.get('init', 'jitter')}")
    fc = (f"regimecast forecast RUN --horizon {f.get('horizon')} --paths {f.get('paths')} "
          f"--max-draws {f.get('max_draws')} --seed {f.get('seed')}") if f else "regimecast forecast RUN"
    return f"{fit}\n{fc}\nregimecast report RUN"


def _scenario_file(ws: Workspace, scenarios: str | Path | None) -> Path:
    return ws.models / "scenarios.toml" if scenarios is None else ws.model_file(scenarios)
