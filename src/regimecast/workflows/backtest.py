"""Forecast-calibration backtest: refit the engine at each origin on the data available then,
forecast, and score against what happened, beside four univariate baselines on the same origins.

Pieces, each usable alone:

- ``origins`` (:mod:`regimecast.workflows.backtest_origin`): the origin months (``start``,
  every ``every`` months, to the last month at which the shortest horizon has been observed), and which of them the model cannot be fitted at (a
  sample shorter than the model file's ``min_months``).
- ``origin_job``: everything one origin needs, with the data panel *truncated at the origin*
  (built with ``end=origin``): a job never holds a later month, so neither the engine's fit
  nor the baselines can look ahead. Jobs hold no paths into the workspace, so they run on any
  Dask worker.
- ``run_origin`` (:mod:`regimecast.workflows.backtest_origin`): one job -> ``OriginForecast``: the engine's refit (``RegimeModel.fit``) and
  forward paths (``RegimeModel.forecast``), the baselines' paths, sampled at the scored
  horizons, and every method's probability of each resolvable scenario.
- ``score_origin`` (:mod:`regimecast.scoring.backtest`): an ``OriginForecast`` against the
  realised levels (months after the origin only) -> a JSON-able record of CRPS, log score, PIT,
  interval coverage per method, series and horizon, and Brier scores of the scenarios that
  resolved.
- ``run_backtest``: the resumable driver. Each finished origin's record is written atomically
  to ``runs/backtest/<config hash>/origin-YYYY-MM.json``; origins whose file exists are not
  recomputed. Origins run serially in-process, or in parallel on Dask (a
  ``distributed.LocalCluster`` on this machine, or an existing scheduler). The config hash
  covers everything that determines a record (model, priors, scenarios and data files by
  SHA-256, horizons, seed, sampler and forecast settings, baselines), not the origin set, so
  a longer or denser backtest reuses the origins it shares with an earlier one.

Scenario events are scored only when they are decidable from observed market data: a
predicate that tests a latent factor (e.g. the Fed's policy state) never resolves.

Randomness: one base seed; origin ``YYYY-MM`` uses ``numpy.random.SeedSequence(seed,
spawn_key=(YYYY, MM))`` to derive the sampler's, the simulator's and each baseline's seeds,
so a record does not depend on which other origins run, in which order, or where.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from regimecast.config.model_file import ModelConfig
from regimecast.config.priors import PriorSet
from regimecast.config.thresholds import Thresholds
from regimecast.data.panel import Panel, build_panel
from regimecast.report import backtest as report
from regimecast.scenarios.sets import ScenarioSet
from regimecast.scoring import baselines
from regimecast.scoring import scores as scoring
from regimecast.scoring.backtest_summary import build_summary
from regimecast.scoring.backtest import SCHEMA_VERSION, OriginForecast, dump_json, realised, score_origin
from regimecast.scoring.scores import INTERVALS
from regimecast.simulate.forecast import ForecastSettings
from regimecast.store import atomic
from regimecast.store.workspace import Workspace
from regimecast.workflows import inputs
from regimecast.workflows.backtest_origin import (BacktestError, BacktestSettings, EngineForecast, OriginJob,
                                                  engine_forecast, origin_seeds, origins, run_origin, split_scenarios)

BACKTEST_DIR = "backtest"         # under the workspace's runs/
REPORT_DIR = "backtest"           # under the workspace's reports/
CONFIG_FILE = "config.json"
HASH_CHARS = 12
# ---- the driver --------------------------------------------------------------------------------
@dataclass(frozen=True)
class BacktestInputs:
    """Validated inputs of a backtest: model, priors, resolvable events, the full panel (for
    the realised levels only), thresholds, where the data came from."""

    config: ModelConfig
    priors: PriorSet
    scenarios: ScenarioSet
    events: ScenarioSet
    unresolvable: dict[str, str]
    full: Panel
    thresholds: Thresholds
    data_dir: Path


def config_description(inputs: BacktestInputs, settings: BacktestSettings) -> dict:
    """Everything that determines an origin's record; its hash names the results directory."""
    p = inputs.full.provenance
    return {
        "schema_version": SCHEMA_VERSION,
        "model": {"file": str(inputs.config.file), "sha256": inputs.config.sha256},
        "priors": {"file": str(inputs.priors.file), "name": inputs.priors.name, "sha256": inputs.priors.sha256},
        "scenarios": {"file": str(inputs.scenarios.file),
                      "sha256": hashlib.sha256(inputs.scenarios.file.read_bytes()).hexdigest()},
        "thresholds": asdict(inputs.thresholds),
        "data": {k: {"sha256": v.sha256, "minus": v.minus.sha256 if v.minus else None} for k, v in sorted(p.items())},
        "settings": settings.hashed(),
        "baselines": {"methods": list(baselines.BASELINES), "rw_window": baselines.RW_WINDOW},
        "scoring": {"crps_estimator": scoring.CRPS_ESTIMATOR, "intervals": list(INTERVALS)},
    }


def config_hash(description: dict) -> str:
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:HASH_CHARS]


def origin_file(directory: Path, origin: str) -> Path:
    return Path(directory) / f"origin-{origin}.json"


def origin_job(inputs: BacktestInputs, settings: BacktestSettings, origin: str) -> OriginJob:
    """The job of one origin: the panel rebuilt from the data files with ``end=origin``."""
    panel = build_panel(inputs.config.series, inputs.config.sample, inputs.data_dir, end=origin)
    seeds = origin_seeds(settings.seed, origin, 2 + len(baselines.BASELINES))
    horizon = max(max(settings.horizons), inputs.scenarios.max_horizon, max(settings.policy_horizons))
    return OriginJob(origin=origin, config=inputs.config, priors=inputs.priors, panel=panel,
                     scenarios=inputs.scenarios, events=inputs.events,
                     thresholds=inputs.thresholds, settings=settings, sampler=settings.sampler(seeds[0]),
                     forecast=ForecastSettings(seed=seeds[1], horizon=horizon, paths=settings.paths,
                                               max_draws=settings.max_draws),
                     baseline_seeds=dict(zip(baselines.BASELINES, seeds[2:])))


@dataclass
class BacktestResult:
    """A finished (or partly finished) backtest: its directory and hash, the records of every
    requested origin that has one, the origins computed now and those reused from disk, the
    origins skipped (and why), failures {origin: message}, and the wall time in seconds."""

    directory: Path
    config_hash: str
    description: dict
    records: dict[str, dict]
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    wall_time_s: float = 0.0


def run_backtest(inputs: BacktestInputs, settings: BacktestSettings, runs_dir: Path, *, serial: bool = False,
                 scheduler: str | None = None, n_workers: int | None = None,
                 progress: Callable[[str, dict | None, str | None], None] | None = None,
                 engine: Callable[[OriginJob], EngineForecast] | None = None) -> BacktestResult:
    """Run every origin without a record in ``runs_dir/backtest/<config hash>/``, writing each
    record atomically as soon as it is scored. ``serial``: in this process; else on Dask:
    ``scheduler`` (an address) or a ``LocalCluster`` of ``n_workers`` single-threaded worker
    processes (default: :func:`default_workers`). ``progress(origin, record,
    error)`` is called as each origin finishes. ``engine``: the engine forecaster (default
    :func:`engine_forecast`). An origin that fails is reported in ``failed`` and not written (a
    rerun retries it); the others are kept."""
    t0 = time.perf_counter()
    desc = config_description(inputs, settings)
    h = config_hash(desc)
    directory = Path(runs_dir) / BACKTEST_DIR / h
    _write_config(directory, desc)
    todo, skipped = origins(settings, inputs.config, inputs.full.end)
    done = [o for o in todo if origin_file(directory, o).is_file()]
    pending = [o for o in todo if o not in done]
    real = realised(inputs.full, inputs.config.assets)
    result = BacktestResult(directory, h, desc, {}, reused=done, skipped=skipped)

    def finish(fc: OriginForecast) -> None:
        record = score_origin(fc, real, inputs.events, h, settings.seed, inputs.config)
        atomic.write_text(origin_file(directory, fc.origin), dump_json(record))
        result.computed.append(fc.origin)
        if progress:
            progress(fc.origin, record, None)

    def failed(origin: str, exc: BaseException) -> None:
        result.failed[origin] = f"{type(exc).__name__}: {exc}"
        if progress:
            progress(origin, None, result.failed[origin])

    engine = engine or engine_forecast
    if pending and serial:
        for o in pending:
            try:
                finish(run_origin(origin_job(inputs, settings, o), engine))
            except Exception as exc:          # noqa: BLE001  (reported; the other origins go on)
                failed(o, exc)
    elif pending:
        _run_dask(inputs, settings, pending, engine, scheduler, n_workers, finish, failed)
    for o in todo:
        f = origin_file(directory, o)
        if f.is_file():
            result.records[o] = json.loads(f.read_text())
    result.wall_time_s = time.perf_counter() - t0
    return result


def default_workers(n_origins: int) -> int:
    """LocalCluster workers: one per CPU, at most one per origin. (Each refit also runs its
    chains in threads, but much of an origin's time is single-threaded compilation, so on 2 cores
    with 2 chains two workers still beat one: ``benchmarks/backtest_time.py``.)"""
    return max(1, min(os.cpu_count() or 1, n_origins))


def local_cluster(n_workers: int):
    """A ``distributed.LocalCluster`` of ``n_workers`` single-threaded worker processes.

    Dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (glibc hands freed memory above
    64 KiB back to the OS at once); JAX/XLA allocate and free large buffers all the time, and a
    refit ran about twice as slowly in such a worker. These workers keep glibc's default."""
    import dask   # distributed starts threads and imports much: only for a cluster run
    from distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)


def _run_dask(inputs, settings, pending, engine, scheduler, n_workers, finish, failed) -> None:
    from distributed import Client, as_completed

    if scheduler:
        client, cluster = Client(scheduler), None
    else:
        cluster = local_cluster(n_workers or default_workers(len(pending)))
        client = Client(cluster)
        client.run(_quiet_worker)
    try:
        futures = {}
        for o in pending:           # jobs are built here (the driver reads the files), one at a time
            fut = client.submit(run_origin, origin_job(inputs, settings, o), engine, pure=False,
                                key=f"backtest-origin-{o}-{time.time_ns()}")
            futures[fut] = o
        for fut in as_completed(futures):
            o = futures[fut]
            try:
                finish(fut.result())
            except Exception as exc:          # noqa: BLE001
                failed(o, exc)
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _quiet_worker() -> None:
    """The CLI's warning filters, in a worker of our own LocalCluster (library noise)."""
    warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")


def _write_config(directory: Path, desc: dict) -> None:
    f = directory / CONFIG_FILE
    if f.is_file():
        if json.loads(f.read_text()) != json.loads(dump_json(desc)):
            raise BacktestError(f"{f}: describes another configuration than its hash ({directory.name})")
        return
    atomic.write_text(f, dump_json(desc))


def load_inputs(ws: Workspace, *, model: str | None = None, priors: str = "baseline",
                data_dir: str | Path | None = None, scenarios: str | Path | None = None) -> BacktestInputs:
    """Model file, prior set, scenarios (split into resolvable events and the others), the full
    data panel and the diagnostics thresholds of a workspace."""
    config, prior_set, full = inputs.load_inputs(ws, model=model, priors=priors, data_dir=data_dir)
    scen = inputs.scenarios_for(ws, config, scenarios)
    events, unresolvable = split_scenarios(scen, config.assets)
    return BacktestInputs(config, prior_set, scen, events, unresolvable, full, inputs.thresholds(ws),
                          ws.data_dir(data_dir))


def backtest(ws: Workspace, settings: BacktestSettings, *, model: str | None = None, priors: str = "baseline",
             data_dir: str | Path | None = None, serial: bool = False, scheduler: str | None = None,
             n_workers: int | None = None, progress: Callable[[str, dict | None, str | None], None] | None = None,
             reproduce: str = "", loaded: BacktestInputs | None = None
             ) -> tuple[BacktestResult, dict | None, Path | None]:
    """``regimecast backtest`` from Python (the CLI calls it too): run the backtest
    (:func:`run_backtest`) and, when some origin finished, write ``reports/backtest/``; returns
    the result, the report's summary and its directory (None, None when no origin finished).
    ``loaded``: the inputs of :func:`load_inputs` when the caller has them already."""
    bin_ = loaded if loaded is not None else load_inputs(ws, model=model, priors=priors, data_dir=data_dir)
    result = run_backtest(bin_, settings, ws.runs, serial=serial, scheduler=scheduler, n_workers=n_workers,
                          progress=progress)
    if not result.records:
        return result, None, None
    summary = build_summary(result.records, description=result.description, config_hash=result.config_hash,
                                   directory=str(result.directory), skipped=result.skipped,
                                   unresolvable=bin_.unresolvable, failed=result.failed, reproduce=reproduce)
    return result, summary, report.write_backtest_report(ws.reports / REPORT_DIR, summary)
