"""Scoring one backtest origin: its forecast samples against the realised levels, as a strict,
JSON-able record (CRPS, log score, PIT, interval coverage, quantiles, scenario Brier scores).
The driver (:mod:`regimecast.workflows.backtest`) writes one record per origin; the report
(:mod:`regimecast.report.backtest`) reads them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from regimecast.scoring import scores as scoring
from regimecast.scoring.scores import INTERVALS
from regimecast.config.model_file import ModelConfig
from regimecast.data.panel import Panel
from regimecast.scoring.policy import score_policy
from regimecast.months import add_months, month_str, parse_month
from regimecast.scenarios.predicates import evaluate, series_used
from regimecast.scenarios.sets import ScenarioSet

ENGINE = "engine"                 # the regime model's name among the methods of a record
SCHEMA_VERSION = 2                 # of an origin's record and of the backtest's config.json
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)   # forecast quantiles kept in each record



@dataclass(frozen=True)
class OriginForecast:
    """Every method's forecast at one origin: ``samples[method]`` (M, len(horizons), D) levels
    of the assets at the scored horizons; ``events[method]`` {name: probability}; ``errors``
    {method: message} for a baseline that could not be fitted at this origin."""

    origin: str
    data_end: str                 # the last month of the data the job held (= origin)
    design_end: str
    horizons: tuple[int, ...]
    assets: tuple[str, ...]
    samples: dict[str, np.ndarray]
    events: dict[str, dict[str, float]]
    fit: dict
    errors: dict[str, str]
    timings: dict[str, float]
    policy: dict[str, dict[str, float]] = field(default_factory=dict)   # {str(h): {state: prob}}


def realised(full: Panel, assets: Iterable[str]) -> pd.DataFrame:
    """Realised monthly levels of the assets (month-start index), forward-filled into month 0
    only where scoring needs the origin's level (see :func:`score_origin`)."""
    return full.levels.sel(series=list(assets)).to_pandas()


def score_origin(fc: OriginForecast, real: pd.DataFrame, events: ScenarioSet, config_hash: str,
                 seed: int, config: ModelConfig | None = None) -> dict:
    """The JSON-able record of one origin: per method, series and horizon the CRPS, log score,
    PIT, 50%/90% coverage and forecast quantiles against the realised level ``h`` months after
    the origin (null while that month is not observed); per resolvable event its outcome and
    each method's probability and Brier score (null while unresolved). ``real`` holds the
    realised levels; only months after the origin are scored (month 0 is the starting level).
    With ``config`` and a policy forecast, ``policy`` scores the forecast policy state against
    the model file's recorded history (:func:`regimecast.scoring.policy.score_policy`)."""
    origin = parse_month(fc.origin)
    end = real.index[-1]
    observed: dict[str, dict[str, float | None]] = {}
    y = np.full((len(fc.horizons), len(fc.assets)), np.nan)
    for i, h in enumerate(fc.horizons):
        month = origin + pd.DateOffset(months=h)
        for j, s in enumerate(fc.assets):
            if month <= end and month in real.index:
                y[i, j] = float(real.at[month, s])
            observed.setdefault(s, {})[str(h)] = _num(y[i, j])
    scores = {m: _scores(fc.samples[m], y, fc.horizons, fc.assets) for m in fc.samples}
    record = {
        "schema_version": SCHEMA_VERSION, "config_hash": config_hash, "origin": fc.origin, "seed": seed,
        "data_end_seen": fc.data_end, "design_end": fc.design_end,
        "target_months": {str(h): add_months(fc.origin, h) for h in fc.horizons},
        "horizons": list(fc.horizons), "series": list(fc.assets), "methods": list(fc.samples),
        "observed": observed, "scores": scores,
        "events": _event_scores(fc, real, events, origin, end),
        "fit": fc.fit, "trusted": bool(fc.fit["diagnostics"]["trusted"]), "errors": fc.errors,
        "timings_s": fc.timings,
    }
    if config is not None and fc.policy:
        record["policy"] = score_policy(config, fc.policy, fc.origin, month_str(end))
    return record


def _scores(samples: np.ndarray, y: np.ndarray, horizons, assets) -> dict:
    """{series: {horizon: {crps, log_score, pit, covered_50, covered_90, quantiles}}}."""
    x = np.moveaxis(samples, 0, -1)                  # (Hs, D, M)
    ok = np.isfinite(y)
    yy = np.where(ok, y, 0.0)
    crps, logs, pit = scoring.crps(yy, x), scoring.log_score(yy, x), scoring.pit(yy, x)
    cover = {lv: scoring.covered(yy, x, lv) for lv in INTERVALS}
    q = np.quantile(x, QUANTILES, axis=-1)           # (Q, Hs, D)
    out: dict = {}
    for i, h in enumerate(horizons):
        for j, s in enumerate(assets):
            cell = {"quantiles": {f"{qq:g}": float(q[k, i, j]) for k, qq in enumerate(QUANTILES)}}
            if ok[i, j]:
                cell.update(crps=float(crps[i, j]), log_score=float(logs[i, j]), pit=float(pit[i, j]),
                            **{f"covered_{int(lv * 100)}": bool(cover[lv][i, j]) for lv in INTERVALS})
            else:
                cell.update(crps=None, log_score=None, pit=None,
                            **{f"covered_{int(lv * 100)}": None for lv in INTERVALS})
            out.setdefault(s, {})[str(h)] = cell
    return out


def _event_scores(fc: OriginForecast, real: pd.DataFrame, events: ScenarioSet, origin: pd.Timestamp,
                  end: pd.Timestamp) -> dict:
    out = {}
    for sc in events.scenarios:
        last = origin + pd.DateOffset(months=sc.horizon)
        used = sorted(series_used(sc.expr))
        window = real[used].loc[:last].ffill().loc[origin:last]     # month 0: the origin's (last) level
        after = real[used].loc[origin + pd.DateOffset(months=1):last]
        resolved = last <= end and len(window) == sc.horizon + 1 and not after.isna().any().any() \
            and not window.isna().any().any()
        outcome = None
        if resolved:
            paths = {s: window[s].to_numpy(float)[None, :] for s in used}
            outcome = bool(np.asarray(evaluate(sc.expr, paths, {})).reshape(-1)[0])
        probs = {m: p[sc.name] for m, p in fc.events.items()}
        out[sc.name] = {"horizon": sc.horizon, "months": f"{month_str(origin)}..{month_str(last)}",
                        "resolved": resolved, "outcome": outcome, "prob": probs,
                        "brier": {m: float(scoring.brier(outcome, p)) if resolved else None for m, p in probs.items()}}
    return out


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def dump_json(obj) -> str:
    """Strict JSON (NumPy scalars as numbers, non-finite floats as null, paths as strings)."""
    return json.dumps(_plain(obj), indent=1, sort_keys=True, allow_nan=False)


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} {obj!r} to JSON")
