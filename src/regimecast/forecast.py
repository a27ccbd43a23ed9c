"""Forecasts from a fitted run: joint forward paths of every observed series and the latent
factors, for each posterior draw, as an xarray Dataset; or, in summary mode, only the
statistics the report needs, accumulated chunk by chunk so that 10^7 paths never have to be
stored.

The simulation kernel is :func:`regimecast.simulate.simulate_forward` (JAX, ``lax.scan`` over
months, ``vmap`` over posterior draws). Randomness: one seed; draw ``i`` of the run always uses
``fold_in(key(seed), i)`` whatever the chunking, so a rerun gives the same numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from regimecast.config import Covariate, ModelConfig
from regimecast.data.panel import Panel, transform_levels
from regimecast.design import Design
from regimecast.kernels import Inputs, Structure, assemble, last_filtered, other_combinations
from regimecast.scenarios import ScenarioSet
from regimecast.simulate import (COV_DRAWDOWN, COV_FIXED, COV_OBSERVED, TRANSFORM_LEVEL, ForwardSpec, Origin,
                                 simulate_forward)
from regimecast.summaries import SummaryAccumulator



@dataclass(frozen=True)
class ForecastSettings:
    """``horizon`` months ahead; ``paths`` per posterior draw; at most ``max_draws`` posterior
    draws (evenly thinned); ``chunk`` draws simulated per compiled call (bounds memory at
    chunk x paths x horizon x series floats)."""

    seed: int
    horizon: int = 24
    paths: int = 100
    max_draws: int = 500
    chunk: int = 50

    def __post_init__(self) -> None:
        for k in ("horizon", "paths", "max_draws", "chunk"):
            if getattr(self, k) < 1:
                raise ValueError(f"forecast setting {k} = {getattr(self, k)}: must be at least 1")


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


def posterior_draws(posterior: xr.Dataset, names: list[str], max_draws: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Sampler variables of at most ``max_draws`` evenly spaced draws (chain-major flattening):
    ``({name: (S, ...)}, flat draw indices (S,))``."""
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    idx = np.unique(np.linspace(0, n - 1, min(max_draws, n)).round().astype(int))
    flat = {k: posterior[k].values.reshape((n,) + posterior[k].shape[2:])[idx] for k in names}
    return flat, idx


def simulate_draws(draws: dict[str, np.ndarray], draw_ids: np.ndarray, st: Structure, data: Inputs, spec: ForwardSpec,
                   org: Origin, settings: ForecastSettings) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """Yield ``(slice of draws, {"levels": (S, N, H, D), "policy": (S, N, H), "other": (S, N, H)})``
    chunk by chunk. Each draw starts from its filtered joint state at the origin month."""
    base = jax.random.key(settings.seed)

    def one(draw, i):
        params = assemble(draw, st)
        return simulate_forward(jax.random.fold_in(base, i), params, last_filtered(params, data, st.family), org,
                                spec, settings.paths, settings.horizon, st.family)

    fn = jax.jit(jax.vmap(one))
    S = len(draw_ids)
    for a in range(0, S, settings.chunk):
        sl = slice(a, min(a + settings.chunk, S))
        levels, pol, oth = fn({k: v[sl] for k, v in draws.items()}, jnp.asarray(draw_ids[sl]))
        yield sl, {"levels": np.asarray(levels, np.float32), "policy": np.asarray(pol, np.int8),
                   "other": np.asarray(oth, np.int8)}


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
    Returns ``(paths or None, summary)`` (see :class:`regimecast.summaries.SummaryAccumulator`)."""
    S, N, H, D = len(draw_ids), settings.paths, settings.horizon, len(config.observed)
    factors = [st.policy, *st.others]
    names = {f.name: list(f.states) for f in config.factors}
    dates = horizon_dates(design, H)
    acc = SummaryAccumulator(scenario_set, tuple(config.observed), {f: names[f] for f in factors}, org.level, S, H,
                             st.policy)
    levels_all = np.empty((S, N, H, D), np.float32) if store else None
    states_all = np.empty((S, N, H, len(factors)), np.int8) if store else None
    combos = other_combinations(st.other_sizes)
    for sl, out in simulate_draws(draws, draw_ids, st, data, spec, org, settings):
        states = np.concatenate([out["policy"][..., None], combos[out["other"]]], axis=-1).astype(np.int8)
        acc.add(sl, out["levels"], states)
        if store:
            levels_all[sl], states_all[sl] = out["levels"], states
        if progress:
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
