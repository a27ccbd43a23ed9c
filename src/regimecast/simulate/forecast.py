"""Forecasts from a fitted run: joint forward paths of every observed series and the latent
factors, for each posterior draw, as an xarray Dataset; or, in summary mode, only the
statistics the report needs, accumulated chunk by chunk so that 10^7 paths never have to be
stored: each compiled call simulates at most ``chunk`` draws x ``path_chunk`` paths, so memory
is bounded by the chunk whatever ``paths`` is (``benchmarks/forecast_memory.py``).

The simulation kernel is :func:`regimecast.simulate.paths.simulate_forward` (JAX, ``lax.scan`` over
months, ``vmap`` over posterior draws). Randomness: one seed; draw ``i`` of the run always uses
``fold_in(key(seed), i)`` whatever the chunking of draws, so a rerun gives the same numbers.
When ``paths`` exceeds ``path_chunk``, path chunk ``j`` of draw ``i`` uses
``fold_in(fold_in(key(seed), i), j)``: the numbers are bit-identical per seed for a given
``path_chunk`` (and unchanged from before whenever ``paths <= path_chunk``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from regimecast.config.defaults import check_seed
from regimecast.config.model_file import Covariate, ModelConfig
from regimecast.data.panel import Panel, transform_levels
from regimecast.model.design import Design
from regimecast.errors import ResourceError
from regimecast.model.filter import last_filtered
from regimecast.model.kernels import Inputs, Structure, assemble, other_combinations
from regimecast.months import MAX_HORIZON
from regimecast.scenarios.sets import ScenarioSet
from regimecast.simulate.paths import (COV_DRAWDOWN, COV_FIXED, COV_OBSERVED, TRANSFORM_LEVEL, ForwardSpec, Origin,
                                 simulate_forward)
from regimecast.simulate.summaries import SummaryAccumulator

BYTES_PER_PATH_MONTH = 150   # peak bytes per path-month of one call (137 measured: benchmarks/forecast_memory.py)


@dataclass(frozen=True)
class ForecastSettings:
    """``horizon`` months ahead; ``paths`` per posterior draw; at most ``max_draws`` posterior
    draws (evenly thinned); ``chunk`` draws x ``path_chunk`` paths simulated per compiled call
    (bounds memory at chunk x path_chunk x horizon path-months, whatever ``paths`` is)."""

    seed: int
    horizon: int = 24
    paths: int = 100
    max_draws: int = 500
    chunk: int = 50
    path_chunk: int = 1000

    def __post_init__(self) -> None:
        for k in ("horizon", "paths", "max_draws", "chunk", "path_chunk"):
            if getattr(self, k) < 1:
                raise ValueError(f"forecast setting {k} = {getattr(self, k)}: must be at least 1")
        check_seed(self.seed, "forecast setting seed")
        if self.horizon > MAX_HORIZON:
            raise ValueError(f"forecast setting horizon = {self.horizon}: at most {MAX_HORIZON} months")

    @property
    def path_chunks(self) -> list[slice]:
        """The paths of each draw, in chunks of at most ``path_chunk``."""
        step = min(self.paths, self.path_chunk)
        return [slice(a, min(a + step, self.paths)) for a in range(0, self.paths, step)]


def forward_spec(config: ModelConfig, design: Design, panel: Panel) -> ForwardSpec:
    """Static simulation description from the model file and the data (see ForwardSpec)."""
    obs = list(config.observed)
    specs = {s.name: s for s in config.series}
    kind, col, window, center, scale, fixed = [], [], [], [], [], []
    for c in config.covariates:
        center.append(c.center), scale.append(c.scale), window.append(max(c.window, 1))
        if c.source in obs:
            kind.append(COV_DRAWDOWN if c.feature == "drawdown" else COV_OBSERVED)
            col.append(obs.index(c.source)), fixed.append(0.0)
        else:  # not simulated: held at its last standardised value (the design's last row)
            kind.append(COV_FIXED), col.append(0), fixed.append(_fixed_covariate(c, specs, panel, design.dates[-1]))
    return ForwardSpec(center=np.asarray(design.ar_center, float),
                       level_rule=np.array([TRANSFORM_LEVEL[specs[s].transform] for s in obs]),
                       cov_kind=np.array(kind, int), cov_col=np.array(col, int), cov_window=np.array(window, int),
                       cov_center=np.array(center, float), cov_scale=np.array(scale, float),
                       cov_fixed=np.array(fixed, float), meas_sd=np.asarray(design.meas_sd, float))


def _fixed_covariate(c: Covariate, specs: dict, panel: Panel, end: pd.Timestamp) -> float:
    """Standardised value at the origin month of a covariate whose source is not simulated
    (e.g. SOFR - IORB): held there over the horizon. Missing: 0 (``zero``) or last value."""
    raw = transform_levels(specs[c.source], panel.levels.sel(series=c.source).to_series()).loc[:end]
    x = (raw - c.center) / c.scale
    last = x.iloc[-1] if len(x) else np.nan
    if np.isnan(last):
        last = 0.0 if c.missing == "zero" or x.dropna().empty else x.dropna().iloc[-1]
    return float(last)


def drawdown_window(config: ModelConfig) -> int:
    """Months of trailing levels the simulation carries (the longest drawdown window)."""
    return max([c.window for c in config.covariates if c.feature == "drawdown"], default=1)


def origin(config: ModelConfig, design: Design, panel: Panel, window: int) -> Origin:
    """Observations and natural levels at the last month of the sample (NaN-free: a series
    missing in that month uses its last available value)."""
    obs_c = pd.DataFrame(design.y, index=design.dates).ffill().to_numpy()[-1]
    obs = obs_c + design.ar_center
    levels = panel.levels.sel(series=list(config.observed)).to_pandas().ffill()
    end = design.dates[-1]
    hist = levels.loc[:end].tail(window).to_numpy()
    specs = {s.name: s for s in config.series}
    is_obs_level = np.array([TRANSFORM_LEVEL[specs[s].transform] == TRANSFORM_LEVEL["level"] for s in config.observed])
    hist = np.where(is_obs_level[None], obs[None], hist)     # e.g. inflation: its level is the yoy rate
    if np.isnan(obs).any() or np.isnan(hist[-1]).any():
        bad = [s for s, v in zip(config.observed, obs) if np.isnan(v)]
        raise ValueError(f"no observation at the forecast origin {end:%Y-%m} for {bad}")
    return Origin(obs=obs, level=hist[-1], window=hist)


def simulate_draws(draws: dict[str, np.ndarray], draw_ids: np.ndarray, st: Structure, data: Inputs, spec: ForwardSpec,
                   org: Origin, settings: ForecastSettings) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """Yield ``(slice of draws, slice of paths, {"levels": (S, n, H, D), "policy": (S, n, H),
    "other": (S, n, H)})`` chunk by chunk (``settings.path_chunks`` within each chunk of draws).
    Each draw starts from its filtered joint state at the origin month."""
    base = jax.random.key(settings.seed)
    parts = settings.path_chunks
    compiled: dict[int, Callable] = {}

    def fn(n: int) -> Callable:          # one compilation per distinct chunk size (at most two)
        def one(draw, i, j):
            params = assemble(draw, st)
            key = jax.random.fold_in(base, i)
            key = jax.random.fold_in(key, j) if len(parts) > 1 else key
            return simulate_forward(key, params, last_filtered(params, data, st.family), org, spec, n,
                                    settings.horizon, st.family)
        return compiled.setdefault(n, jax.jit(jax.vmap(one, in_axes=(0, 0, None))))

    S = len(draw_ids)
    for a in range(0, S, settings.chunk):
        sl = slice(a, min(a + settings.chunk, S))
        for j, ps in enumerate(parts):
            levels, pol, oth = fn(ps.stop - ps.start)({k: v[sl] for k, v in draws.items()},
                                                      jnp.asarray(draw_ids[sl]), j)
            yield sl, ps, {"levels": np.asarray(levels, np.float32), "policy": np.asarray(pol, np.int8),
                           "other": np.asarray(oth, np.int8)}


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(settings: ForecastSettings, n_draws: int, n_series: int, n_factors: int, store: bool) -> None:
    """Refuse, before simulating, a forecast whose memory would exceed what is available: the
    compiled call (chunk x path_chunk paths) and, with ``store``, every path kept."""
    per_call = min(settings.chunk, n_draws) * min(settings.paths, settings.path_chunk) * settings.horizon
    need = per_call * BYTES_PER_PATH_MONTH
    stored = n_draws * settings.paths * settings.horizon * (4 * n_series + n_factors) if store else 0
    have = available_memory()
    if have is None or need + stored <= have:
        return
    gb = lambda b: f"{b / 1e9:.2f} GB" if b >= 1e8 else f"{b / 1e6:.1f} MB"  # noqa: E731
    what = (f"{gb(stored)} to keep {n_draws} draws x {settings.paths:,} paths x {settings.horizon} months "
            f"(--store) and {gb(need)}" if store else gb(need))
    advice = ("use --summary-only (memory bounded by the chunk) or fewer --paths or --max-draws" if store
              else f"lower path_chunk ({settings.path_chunk}) or chunk ({settings.chunk})")
    raise ResourceError(f"the forecast needs about {what} for each simulation call of {settings.chunk} draws x "
                        f"{min(settings.paths, settings.path_chunk):,} paths, but {gb(have)} is available: {advice}")


def horizon_dates(design: Design, horizon: int) -> pd.DatetimeIndex:
    return pd.date_range(design.dates[-1] + pd.DateOffset(months=1), periods=horizon, freq="MS", unit="ns")


def run_forecast(config: ModelConfig, st: Structure, design: Design, org: Origin, draws: dict[str, np.ndarray],
                 draw_ids: np.ndarray, data: Inputs, spec: ForwardSpec, settings: ForecastSettings,
                 scenario_set: ScenarioSet, *, store: bool = True,
                 progress: Callable[[int], None] | None = None) -> tuple[xr.Dataset | None, xr.Dataset]:
    """Simulate every draw once, chunk by chunk, feeding the summary accumulator and (``store``)
    the full paths Dataset: ``paths`` (draw, path, horizon, series) in natural units, ``states``
    (draw, path, horizon, factor) state indices, ``origin`` (series,) the levels at the last
    observed month; state names per factor in ``attrs["states"]`` (JSON).
    Returns ``(paths or None, summary)`` (see :class:`regimecast.simulate.summaries.SummaryAccumulator`)."""
    S, N, H, D = len(draw_ids), settings.paths, settings.horizon, len(config.observed)
    factors = [st.policy, *st.others]
    check_memory(settings, S, D, len(factors), store)
    names = {f.name: list(f.states) for f in config.factors}
    dates = horizon_dates(design, H)
    acc = SummaryAccumulator(scenario_set, tuple(config.observed), {f: names[f] for f in factors}, org.level, S, H,
                             st.policy)
    levels_all = np.empty((S, N, H, D), np.float32) if store else None
    states_all = np.empty((S, N, H, len(factors)), np.int8) if store else None
    combos = other_combinations(st.other_sizes)
    for sl, ps, out in simulate_draws(draws, draw_ids, st, data, spec, org, settings):
        states = np.concatenate([out["policy"][..., None], combos[out["other"]]], axis=-1).astype(np.int8)
        acc.add(sl, out["levels"], states)
        if store:
            levels_all[sl, ps], states_all[sl, ps] = out["levels"], states
        if progress and ps.stop == N:
            progress(sl.stop - sl.start)
    attrs = {"states": json.dumps({f: names[f] for f in factors}), "origin_date": f"{design.dates[-1]:%Y-%m}",
             "seed": settings.seed, "paths_per_draw": N}
    summary = acc.result(draw_ids, dates)
    summary.attrs.update(attrs)
    if not store:
        return None, summary
    coords = {"draw": draw_ids, "path": np.arange(N), "horizon": np.arange(1, H + 1), "date": ("horizon", dates),
              "series": list(config.observed), "factor": factors}
    paths = xr.Dataset({"paths": (("draw", "path", "horizon", "series"), levels_all),
                        "states": (("draw", "path", "horizon", "factor"), states_all),
                        "origin": (("series",), org.level)}, coords=coords, attrs=attrs)
    return paths, summary
