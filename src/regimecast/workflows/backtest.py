"""Forecast-calibration backtest: refit the engine at each origin on the data available then,
forecast, and score against what happened, beside four univariate baselines on the same origins.

Pieces, each usable alone:

- ``origins``: the origin months (``start``, every ``every`` months, to the last month at which
  the shortest horizon has been observed), and which of them the model cannot be fitted at (a
  sample shorter than the model file's ``min_months``).
- ``origin_job``: everything one origin needs, with the data panel *truncated at the origin*
  (built with ``end=origin``): a job never holds a later month, so neither the engine's fit
  nor the baselines can look ahead. Jobs hold no paths into the workspace, so they run on any
  Dask worker.
- ``run_origin``: one job -> ``OriginForecast``: the engine's refit (``RegimeModel.fit``) and
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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from regimecast.store import atomic
from regimecast.scoring import baselines
from regimecast.scoring import scores as scoring
from regimecast.scoring.backtest import ENGINE, SCHEMA_VERSION, OriginForecast, dump_json, realised, score_origin
from regimecast.scoring.scores import INTERVALS
from regimecast.config.defaults import SAMPLER, check_chains
from regimecast.config.model_file import ModelConfig
from regimecast.data.panel import Panel, build_panel
from regimecast.config.thresholds import Thresholds
from regimecast.errors import RegimecastError
from regimecast.fit.sampler import SamplerSettings
from regimecast.simulate.forecast import ForecastSettings
from regimecast.months import add_months, month_str, months_between, parse_month
from regimecast.scenarios.predicates import evaluate, latent_factors, series_used
from regimecast.config.priors import PriorSet
from regimecast.scenarios.sets import Scenario, ScenarioSet
from regimecast.report import backtest as report
from regimecast.store import runs
from regimecast.store.workspace import Workspace
from regimecast.workflows import inputs
from regimecast.workflows.engine import RegimeModel

BACKTEST_DIR = "backtest"         # under the workspace's runs/
REPORT_DIR = "backtest"           # under the workspace's reports/
CONFIG_FILE = "config.json"
HASH_CHARS = 12
# BLAS threads while an origin runs. Dask's worker processes start with one (OMP/OPENBLAS_NUM_THREADS
# = 1); holding every origin to one wherever it runs keeps the optimisers of the baselines (and the
# MAP start) on the same floating-point path, so serial and cluster runs give the same numbers.
BLAS_THREADS = 1


class BacktestError(RegimecastError):
    """A backtest cannot run, or some origins failed (the others were written)."""


@dataclass(frozen=True)
class BacktestSettings:
    """What a backtest runs. ``start``/``end``: first and last origin month (YYYY-MM; ``end``
    None: the last month at which the shortest horizon is observed); ``every``: months between
    origins; ``horizons``: months after the origin month to score. Sampler and forecast
    settings of every refit: ``chains`` x ``draws`` after ``tune``, ``paths`` per posterior
    draw from at most ``max_draws`` draws. The defaults (2 x 300, 300 tuning steps) keep a
    refit to a few minutes on 2 cores; they are below what the diagnostics need, so most
    origins' fits are flagged as untrusted (the production fit is
    :data:`regimecast.config.defaults.SAMPLER`)."""

    start: str
    every: int
    horizons: tuple[int, ...]
    seed: int
    end: str | None = None
    chains: int = 2
    draws: int = 300
    tune: int = 300
    paths: int = 20
    max_draws: int = 600
    backend: str = SAMPLER["backend"]
    mass_matrix: str = SAMPLER["mass_matrix"]
    init: str = SAMPLER["init"]

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"--every {self.every}: must be at least 1 month")
        if not self.horizons or any(h < 1 for h in self.horizons) or len(set(self.horizons)) != len(self.horizons):
            raise ValueError(f"horizons {self.horizons}: must be distinct whole months >= 1")
        object.__setattr__(self, "horizons", tuple(sorted(int(h) for h in self.horizons)))
        for k in ("start",) + (("end",) if self.end else ()):
            parse_month(getattr(self, k), k)
        for k in ("paths", "max_draws"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} = {getattr(self, k)}: must be at least 1")
        check_chains(self.chains)
        self.sampler(self.seed)                            # validates the seed, draws, tune, backend, ...

    def sampler(self, seed: int) -> SamplerSettings:
        return SamplerSettings(seed=seed, backend=self.backend, chains=self.chains, draws=self.draws,
                               tune=self.tune, mass_matrix=self.mass_matrix, init=self.init)

    @property
    def ensemble_size(self) -> int:
        """Samples per forecast: the engine's draws x paths; each baseline draws as many."""
        return min(self.max_draws, self.chains * self.draws) * self.paths

    def hashed(self) -> dict:
        """The settings that determine a record (not the origin set)."""
        d = asdict(self)
        for k in ("start", "end", "every"):
            d.pop(k)
        return d


# ---- origins and seeds ------------------------------------------------------------------------
def earliest_origin(config: ModelConfig) -> str:
    """The first origin whose sample (``sample.start`` to the origin) has ``min_months`` months."""
    return add_months(config.sample.start, config.sample.min_months - 1)


def origins(settings: BacktestSettings, config: ModelConfig, data_end: str) -> tuple[list[str], dict[str, str]]:
    """``(origins to run, {origin: reason} skipped)``: months ``start``, ``start + every``, ...
    up to ``end`` (default: ``data_end`` minus the shortest horizon, the last origin with
    something to score). Origins before :func:`earliest_origin` are skipped with a reason."""
    last = settings.end or add_months(data_end, -min(settings.horizons))
    if months_between(last, add_months(data_end, -min(settings.horizons))) < 0:
        raise BacktestError(f"last origin {last}: the data end in {data_end}, so no horizon after it is observed "
                            f"(the latest usable origin is {add_months(data_end, -min(settings.horizons))})")
    n = months_between(settings.start, last)
    if n < 0:
        raise BacktestError(f"first origin {settings.start} is after the last origin {last}")
    months = [add_months(settings.start, k) for k in range(0, n + 1, settings.every)]
    first = earliest_origin(config)
    skipped = {m: (f"sample {config.sample.start}..{m} has {months_between(config.sample.start, m) + 1} months; "
                   f"the model needs min_months = {config.sample.min_months} (first feasible origin {first})")
               for m in months if months_between(first, m) < 0}
    return [m for m in months if m not in skipped], skipped


def origin_seeds(seed: int, origin: str, n: int) -> list[int]:
    """``n`` seeds for one origin, from ``SeedSequence(seed, spawn_key=(year, month))``."""
    t = parse_month(origin, "origin")
    ss = np.random.SeedSequence(seed, spawn_key=(t.year, t.month))
    return [int(v) for v in ss.generate_state(n, dtype=np.uint32)]


# ---- events ----------------------------------------------------------------------------------
def split_scenarios(scenarios: ScenarioSet, series: Iterable[str]) -> tuple[ScenarioSet, dict[str, str]]:
    """The scenarios decidable from observed market data (no latent factor; only ``series``),
    as a ScenarioSet, and ``{name: reason}`` for the others."""
    series = set(series)
    keep, why = [], {}
    for sc in scenarios.scenarios:
        latent, used = latent_factors(sc.expr), series_used(sc.expr)
        if latent:
            why[sc.name] = (f"tests the latent factor(s) {', '.join(sorted(latent))}, which are never observed: "
                            f"not resolvable")
        elif not used <= series:
            why[sc.name] = f"uses series {', '.join(sorted(used - series))} that the baselines do not forecast"
        else:
            keep.append(sc)
    return replace(scenarios, scenarios=tuple(keep)), why


def event_probabilities(events: Iterable[Scenario], origin_level: dict[str, float],
                        paths: dict[str, np.ndarray]) -> dict[str, float]:
    """Share of paths in which each event happens; ``paths[s]`` (N, H) levels at months 1..H
    (series simulated jointly or, for the univariate baselines, independently)."""
    series = {s: np.concatenate([np.full((len(p), 1), origin_level[s]), p], axis=1) for s, p in paths.items()}
    return {sc.name: float(np.mean(evaluate(sc.expr, series, {}))) for sc in events}


# ---- one origin --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OriginJob:
    """Everything one origin needs. ``panel`` ends at ``origin``: no later month is present."""

    origin: str
    config: ModelConfig
    priors: PriorSet
    panel: Panel
    scenarios: ScenarioSet        # every scenario (the engine's forecast summary needs them)
    events: ScenarioSet           # the resolvable scenarios only (scored)
    thresholds: Thresholds
    settings: BacktestSettings
    sampler: SamplerSettings      # seeded for this origin
    forecast: ForecastSettings    # seeded; horizon covers the scored horizons and the events
    baseline_seeds: dict[str, int]

    @property
    def assets(self) -> tuple[str, ...]:
        return self.config.assets


@dataclass(frozen=True)
class EngineForecast:
    """The engine's forecast at one origin: ``paths`` (M, H, D) levels of the assets at months
    1..H, ``events`` {name: probability}, ``fit`` the fit's record (diagnostics block, sampler
    settings, initialisation, wall time), ``design_end`` the last month of the fitted design."""

    paths: np.ndarray
    events: dict[str, float]
    fit: dict
    design_end: str


def engine_forecast(job: OriginJob) -> EngineForecast:
    """Refit the regime model on the job's panel and simulate forward paths
    (``RegimeModel.fit`` then ``RegimeModel.forecast``; nothing is written to the run store)."""
    rm = RegimeModel(job.config, job.priors, job.panel)
    fit = rm.fit(job.sampler, job.thresholds, progressbar=False)
    run = runs.Run(Path(job.origin), {}, fit.idata)      # unsaved: forecasting reads only its posterior
    paths, summary = rm.forecast(run, job.forecast, job.scenarios, store=True)
    levels = paths["paths"].sel(series=list(job.assets)).transpose("draw", "path", "horizon", "series").values
    events = summary["scenario_prob"].mean("draw")       # equal paths per draw: the share of all paths
    record = {"diagnostics": fit.diagnostics, "sampler": fit.settings.as_dict(), "init": fit.init,
              "wall_time_s": round(fit.wall_time_s, 2), "policy_history": fit.history}
    return EngineForecast(paths=levels.reshape(-1, *levels.shape[2:]).astype(float),
                          events={str(k): float(v) for k, v in zip(events["scenario"].values, events.values)},
                          fit=record, design_end=month_str(rm.design.dates[-1]))


def baseline_history(panel: Panel, config: ModelConfig, series: str) -> np.ndarray:
    """Monthly levels of ``series`` from the month before the sample start to the panel's end
    (the origin): the baselines see the months the engine's sample covers, and no later one."""
    lv = panel.levels.sel(series=series).to_series()
    return lv.loc[add_months(config.sample.start, -1):panel.end].to_numpy(float)


def run_origin(job: OriginJob, engine: Callable[[OriginJob], EngineForecast] | None = None) -> OriginForecast:
    """The engine and every baseline at one origin (pure: reads nothing but the job), with
    ``BLAS_THREADS`` BLAS threads."""
    if job.panel.end != job.origin:
        raise BacktestError(f"origin {job.origin}: the job's data end in {job.panel.end}, not at the origin")
    with threadpool_limits(limits=BLAS_THREADS):
        return _run_origin(job, engine or engine_forecast)


def _run_origin(job: OriginJob, engine: Callable[[OriginJob], EngineForecast]) -> OriginForecast:
    H = job.forecast.horizon
    idx = [h - 1 for h in job.settings.horizons]
    t0 = time.perf_counter()
    eng = engine(job)
    timings = {"engine_s": time.perf_counter() - t0}
    specs = {s.name: s for s in job.config.series}
    samples = {ENGINE: eng.paths[:, idx, :]}
    events = {ENGINE: {sc.name: eng.events[sc.name] for sc in job.events.scenarios}}
    errors: dict[str, str] = {}
    t1 = time.perf_counter()
    origin_level = {s: baselines.last_level(baseline_history(job.panel, job.config, s)) for s in job.assets}
    for name, fn in baselines.BASELINES.items():
        seeds = np.random.SeedSequence(job.baseline_seeds[name]).generate_state(len(job.assets), dtype=np.uint32)
        try:
            paths = {s: fn(int(seed), baseline_history(job.panel, job.config, s), H, job.settings.ensemble_size,
                           baselines.increment_kind(specs[s].transform))
                     for s, seed in zip(job.assets, seeds)}
        except ValueError as exc:
            errors[name] = str(exc)
            continue
        samples[name] = np.stack([paths[s][:, idx] for s in job.assets], axis=-1)
        events[name] = event_probabilities(job.events.scenarios, origin_level, paths)
    timings["baselines_s"] = time.perf_counter() - t1
    return OriginForecast(origin=job.origin, data_end=job.panel.end, design_end=eng.design_end,
                          horizons=job.settings.horizons, assets=job.assets, samples=samples, events=events,
                          fit=eng.fit, errors=errors, timings={k: round(v, 2) for k, v in timings.items()})


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
    horizon = max(max(settings.horizons), inputs.scenarios.max_horizon)
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
        record = score_origin(fc, real, inputs.events, h, settings.seed)
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
             reproduce: str = "") -> tuple[BacktestResult, dict | None, Path | None]:
    """``regimecast backtest`` from Python: run the backtest (:func:`run_backtest`) and, when
    some origin finished, write ``reports/backtest/``; returns the result, the report's summary
    and its directory (None, None when no origin finished)."""
    bin_ = load_inputs(ws, model=model, priors=priors, data_dir=data_dir)
    result = run_backtest(bin_, settings, ws.runs, serial=serial, scheduler=scheduler, n_workers=n_workers,
                          progress=progress)
    if not result.records:
        return result, None, None
    summary = report.build_summary(result.records, description=result.description, config_hash=result.config_hash,
                                   directory=str(result.directory), skipped=result.skipped,
                                   unresolvable=bin_.unresolvable, failed=result.failed, reproduce=reproduce)
    return result, summary, report.write_backtest_report(ws.reports / REPORT_DIR, summary)
