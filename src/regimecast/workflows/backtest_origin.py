"""One origin of the forecast-calibration backtest (the driver is
:mod:`regimecast.workflows.backtest`): the settings of a backtest, which origins it runs and
their seeds, the scenario events it can score, and ``run_origin``: the engine's refit and
forward paths and every baseline's paths at one origin, on data that end at the origin.

Randomness: one base seed; origin ``YYYY-MM`` uses ``numpy.random.SeedSequence(seed,
spawn_key=(YYYY, MM))`` to derive the sampler's, the simulator's and each baseline's seeds,
so a record does not depend on which other origins run, in which order, or where.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from regimecast.config.defaults import SAMPLER, check_chains
from regimecast.config.model_file import ModelConfig
from regimecast.config.priors import PriorSet
from regimecast.config.thresholds import Thresholds
from regimecast.data.panel import Panel
from regimecast.errors import RegimecastError
from regimecast.fit.sampler import SamplerSettings
from regimecast.months import add_months, month_str, months_between, parse_month
from regimecast.scenarios.predicates import evaluate, latent_factors, series_used
from regimecast.scenarios.sets import Scenario, ScenarioSet
from regimecast.scoring import baselines
from regimecast.scoring.backtest import ENGINE, OriginForecast
from regimecast.scoring.policy import POLICY_HORIZONS, state_probabilities
from regimecast.simulate.forecast import ForecastSettings
from regimecast.store import runs
from regimecast.workflows.engine import RegimeModel

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
    settings of every refit: ``chains`` x ``draws`` after ``tune`` (default: the production fit,
    :data:`regimecast.config.defaults.SAMPLER`); a refit that fails a diagnostics check is
    refitted with ``retry_factor`` times the draws, at most ``max_retries`` times, and one
    still failing is kept in the record as untrusted (left out of the scores). ``paths`` per
    posterior draw from at most ``max_draws`` draws; the policy state is forecast at
    ``policy_horizons`` months."""

    start: str
    every: int
    horizons: tuple[int, ...]
    seed: int
    end: str | None = None
    chains: int = SAMPLER["chains"]
    draws: int = SAMPLER["draws"]
    tune: int = SAMPLER["tune"]
    paths: int = 20
    max_draws: int = 600
    max_retries: int = 1
    retry_factor: int = 2
    policy_horizons: tuple[int, ...] = POLICY_HORIZONS
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
        object.__setattr__(self, "policy_horizons", tuple(sorted(int(h) for h in self.policy_horizons)))
        if any(h < 1 for h in self.policy_horizons):
            raise ValueError(f"policy horizons {self.policy_horizons}: must be whole months >= 1")
        if self.max_retries < 0:
            raise ValueError(f"max_retries = {self.max_retries}: must be 0 or more")
        for k in ("paths", "max_draws", "retry_factor"):
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
    settings, initialisation, wall time, every attempt's diagnostics), ``design_end`` the last
    month of the fitted design, ``policy`` {str(h): {policy state: probability}} at
    :data:`regimecast.scoring.policy.POLICY_HORIZONS` (empty: not forecast)."""

    paths: np.ndarray
    events: dict[str, float]
    fit: dict
    design_end: str
    policy: dict[str, dict[str, float]] = field(default_factory=dict)


def engine_forecast(job: OriginJob) -> EngineForecast:
    """Refit the regime model on the job's panel and simulate forward paths
    (``RegimeModel.fit`` then ``RegimeModel.forecast``; nothing is written to the run store)."""
    rm = RegimeModel(job.config, job.priors, job.panel)
    fit, attempts = fit_until_trusted(rm, job)
    run = runs.Run(Path(job.origin), {}, fit.idata)      # unsaved: forecasting reads only its posterior
    paths, summary = rm.forecast(run, job.forecast, job.scenarios, store=True)
    levels = paths["paths"].sel(series=list(job.assets)).transpose("draw", "path", "horizon", "series").values
    events = summary["scenario_prob"].mean("draw")       # equal paths per draw: the share of all paths
    policy = job.config.transition_factor
    names = json.loads(paths.attrs["states"])[policy]
    record = {"diagnostics": fit.diagnostics, "sampler": fit.settings.as_dict(), "init": fit.init,
              "wall_time_s": round(sum(a["wall_time_s"] for a in attempts), 2), "policy_history": fit.history,
              "attempts": attempts}
    return EngineForecast(paths=levels.reshape(-1, *levels.shape[2:]).astype(float),
                          events={str(k): float(v) for k, v in zip(events["scenario"].values, events.values)},
                          fit=record, design_end=month_str(rm.design.dates[-1]),
                          policy=state_probabilities(paths["states"].sel(factor=policy).values, names,
                                                     job.settings.policy_horizons))


def fit_until_trusted(rm: RegimeModel, job: OriginJob):
    """Fit with the job's sampler settings; while the fit fails a diagnostics check, refit with
    ``settings.retry_factor`` times the draws (same seed), at most ``settings.max_retries``
    times. Returns the last fit and every attempt's ``{"draws", "trusted", "reasons",
    "wall_time_s"}``; a fit still failing is returned too, and the record says so (the summary
    leaves it out of the scores)."""
    sampler, attempts = job.sampler, []
    while True:
        fit = rm.fit(sampler, job.thresholds, progressbar=False)
        d = fit.diagnostics
        attempts.append({"draws": sampler.draws, "tune": sampler.tune, "trusted": bool(d["trusted"]),
                         "reasons": list(d.get("reasons", [])), "wall_time_s": round(fit.wall_time_s, 2)})
        if d["trusted"] or len(attempts) > job.settings.max_retries:
            return fit, attempts
        sampler = replace(sampler, draws=sampler.draws * job.settings.retry_factor)


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
                          fit=eng.fit, errors=errors, timings={k: round(v, 2) for k, v in timings.items()},
                          policy=eng.policy)
