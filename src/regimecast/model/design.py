"""Model inputs from a data panel: the emission matrix, AR lags, lagged transition
covariates and the missing-data patterns. Pure NumPy; no PyMC here."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from regimecast.config.model_file import Covariate, ModelConfig
from regimecast.data.panel import Panel, transform_levels


@dataclass(frozen=True)
class Design:
    """Arrays the likelihood needs. T months, D observed series, C covariates.

    y:          (T, D) observations in model units; AR series are centred (minus ``ar_center``);
                NaN = missing.
    ar_lag:     (T, D) previous month's centred value for AR series, 0 for the others
                (NaN where the lag is missing: that cell is then left out of the likelihood).
    covariates: (T, C) standardised covariates of month t-1, finite.
    patterns:   ((observed column indices, month indices), ...): months grouped by which
                series enter the likelihood (observed and, for AR series, lag observed).
    meas_sd:    (D,) sd of each publication's rounding error in model units (model file).
    """

    dates: pd.DatetimeIndex
    series: tuple[str, ...]
    y: np.ndarray
    ar_lag: np.ndarray
    is_ar: np.ndarray
    ar_center: np.ndarray
    covariate_names: tuple[str, ...]
    covariates: np.ndarray
    patterns: tuple[tuple[np.ndarray, np.ndarray], ...]
    meas_sd: np.ndarray

    @property
    def n_months(self) -> int:
        return len(self.dates)


def build_design(config: ModelConfig, panel: Panel) -> Design:
    """Assemble the model inputs for ``config`` from ``panel`` (dates = panel dates)."""
    dates = pd.DatetimeIndex(panel.observations["date"].values)
    obs = config.observed
    specs = {s.name: s for s in config.series}
    y = np.column_stack([panel.observations.sel(series=s).values.astype(float) for s in obs])
    is_ar = np.array([s in config.ar_series for s in obs])
    center = np.array([config.ar_center.get(s, 0.0) for s in obs])
    ar_lag = np.zeros_like(y)
    for j, s in enumerate(obs):
        if is_ar[j]:
            full = transform_levels(specs[s], _levels(panel, s))
            ar_lag[:, j] = full.shift(1).reindex(dates).to_numpy() - center[j]
    y = y - center
    cov = np.column_stack([_covariate(c, specs, panel, dates) for c in config.covariates]) \
        if config.covariates else np.zeros((len(dates), 0))
    usable = ~np.isnan(y) & ~(is_ar & np.isnan(ar_lag))
    return Design(
        dates=dates, series=obs, y=y, ar_lag=np.where(is_ar, ar_lag, 0.0), is_ar=is_ar, ar_center=center,
        covariate_names=tuple(c.name for c in config.covariates), covariates=cov, patterns=_patterns(usable),
        meas_sd=np.array([specs[s].measurement_sd for s in obs]),
    )


def _patterns(usable: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Months grouped by which columns enter the likelihood, from the (T, D) mask ``usable``;
    the most frequent pattern first."""
    patterns: dict[tuple[int, ...], list[int]] = {}
    for t, row in enumerate(usable):
        patterns.setdefault(tuple(np.flatnonzero(row)), []).append(t)
    return tuple((np.array(k, dtype=int), np.array(v, dtype=int))
                 for k, v in sorted(patterns.items(), key=lambda kv: -len(kv[1])))


def with_simulated(design: Design, y: np.ndarray) -> Design:
    """``design`` with simulated observations ``y`` (T, D) (centred model units, none missing)
    in place of the data: AR lags follow ``y`` (the first month keeps the data's pre-sample
    lag), every month enters the likelihood with every series; covariates stay the data's."""
    lag = np.where(design.is_ar, np.vstack([np.nan_to_num(design.ar_lag[:1]), y[:-1]]), 0.0)
    return replace(design, y=y, ar_lag=lag, patterns=((np.arange(y.shape[1]), np.arange(y.shape[0])),))


def _levels(panel: Panel, name: str) -> pd.Series:
    lv = panel.levels.sel(series=name)
    return pd.Series(lv.values.astype(float), index=pd.DatetimeIndex(lv["date"].values))


def _covariate(c: Covariate, specs, panel: Panel, dates: pd.DatetimeIndex) -> np.ndarray:
    """Standardised value of covariate ``c`` at month t-1, aligned to ``dates``."""
    levels = _levels(panel, c.source)
    if c.feature == "drawdown":
        peak = levels.rolling(c.window, min_periods=1).max()
        raw = 1.0 - levels / peak
    else:
        raw = transform_levels(specs[c.source], levels)
    lagged = raw.shift(1)
    if c.missing == "ffill":
        lagged = lagged.ffill()
    x = ((lagged - c.center) / c.scale).reindex(dates)
    if c.missing == "zero":
        x = x.fillna(0.0)
    if x.isna().any():
        first = x[x.isna()].index[0]
        raise ValueError(f"covariate '{c.name}' has no value for {first:%Y-%m} (source '{c.source}')")
    return x.to_numpy()
