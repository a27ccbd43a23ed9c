"""Scoring the forecast ledger (``regimecast ledger score``): every stored forecast whose
horizon has been observed, against realised data from the panel of the model file it was made
with; the scores go back into the ledger (:mod:`regimecast.store.ledger`) in one transaction.

- assets (``asset = true`` series): CRPS from the stored quantiles
  (:func:`regimecast.scoring.scores.crps_from_quantiles`; an equal-weight mean, as in
  ``scoringrules.crps_quantile``, assumes evenly spaced levels and on the summary's levels,
  dense in the tails, is about 30% low for a Normal forecast) and coverage of the central 50%
  and 90% intervals (bounds included).
- scenarios: Brier score of the posterior mean probability once every month to the scenario's
  horizon is observed, the predicate evaluated on the realised path (month 0: the origin
  month). A predicate that involves a latent factor (policy, ai, backlash) is reported
  unresolved: it cannot be decided from market data.

A forecast is scored only at horizons whose month is within the realised data: no look-ahead.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from regimecast.config.model_file import ModelConfig, load_model_config
from regimecast.errors import ConfigError
from regimecast.store.ledger import CRPS_METHOD, StoredForecast, StoredScenario, data_record, load_forecasts
from regimecast.store.ledger_db import LedgerError, now_utc, open_ledger, transaction
from regimecast.data.panel import build_panel, transform_levels
from regimecast.months import month_str
from regimecast.simulate.paths import LEVEL_IS_OBS, TRANSFORM_LEVEL
from regimecast.scenarios.parser import parse
from regimecast.scenarios.predicates import PredicateError, evaluate, latent_factors, series_used
from regimecast.scoring.scores import INTERVALS, brier, crps_from_quantiles, interval_bounds


_BOUNDS = {f"{int(lv * 100)}": interval_bounds(lv) for lv in INTERVALS}   # "50": (0.25, 0.75), "90": (0.05, 0.95)


def interval_covered(y: float, q: np.ndarray, levels: np.ndarray, lo: float, hi: float) -> bool:
    """``q(lo) <= y <= q(hi)``; the levels must be among the stored ones."""
    return bool(_at(q, levels, lo) <= y <= _at(q, levels, hi))


def _at(q: np.ndarray, levels: np.ndarray, level: float) -> float:
    hit = np.flatnonzero(np.isclose(levels, level))
    if hit.size != 1:
        raise LedgerError(f"quantile level {level} is not among the stored levels {np.asarray(levels).tolist()}")
    return float(q[hit[0]])


# ---- scoring: one forecast against realised data ---------------------------------------------
@dataclass(frozen=True)
class AssetScore:
    forecast_id: int
    series: str
    horizon: int
    target_month: str
    observed: float
    crps: float
    in_50: bool
    in_90: bool


@dataclass(frozen=True)
class ScenarioScore:
    forecast_id: int
    scenario: str
    status: str                       # resolved | unresolved
    reason: str | None
    months: str | None
    outcome: bool | None
    prob: float
    brier: float | None


@dataclass
class ForecastScores:
    """Scores of one forecast; ``pending_*``: horizons or scenarios not yet observed (not
    scored), ``missing``: asset horizons within the data whose realised value is missing."""

    forecast: StoredForecast
    assets: list[AssetScore] = field(default_factory=list)
    scenarios: list[ScenarioScore] = field(default_factory=list)
    pending_assets: int = 0
    pending_scenarios: int = 0
    missing: int = 0


def score_forecast(f: StoredForecast, config: ModelConfig, realised: pd.DataFrame) -> ForecastScores:
    """Score ``f`` against ``realised``: levels in the forecast's units, month-start index
    (contiguous months), one column per series; its last month is the end of the data, and
    nothing after it is used."""
    end = realised.index[-1]
    origin = pd.Timestamp(f"{f.data_end}-01")
    out = ForecastScores(f)
    for s in (s for s in config.assets if s in f.quantiles):
        for h in range(1, f.horizon + 1):
            month = origin + pd.DateOffset(months=h)
            if month > end:
                out.pending_assets += 1
                continue
            y = float(realised.at[month, s]) if month in realised.index else math.nan
            q = f.quantiles[s][h - 1]
            if not math.isfinite(y) or not np.all(np.isfinite(q)):
                out.missing += 1
                continue
            cover = {k: interval_covered(y, q, f.levels, lo, hi) for k, (lo, hi) in _BOUNDS.items()}
            out.assets.append(AssetScore(f.forecast_id, s, h, month_str(month), y,
                                         float(crps_from_quantiles(y, q, f.levels)), cover["50"], cover["90"]))
    factors = {fa.name: fa.states for fa in config.factors}
    for sc in f.scenarios:
        res = _resolve(f, sc, config.observed, factors, realised, origin, end)
        if res is None:
            out.pending_scenarios += 1
        else:
            out.scenarios.append(res)
    return out


def _resolve(f: StoredForecast, sc: StoredScenario, series, factors, realised: pd.DataFrame,
             origin: pd.Timestamp, end: pd.Timestamp) -> ScenarioScore | None:
    """A scenario's score, or None while its horizon is not observed."""
    try:
        expr = parse(sc.predicate, series=series, factors=factors, horizon=sc.horizon, name=sc.name)
    except PredicateError as exc:
        raise LedgerError(f"ledger forecast {f.forecast_id} (run {f.run_id}): field scenario_forecasts.predicate "
                          f"= {sc.predicate!r}: {exc}") from exc
    latent = latent_factors(expr)
    if latent:
        return ScenarioScore(f.forecast_id, sc.name, "unresolved", "predicate involves latent factor(s) "
                             f"{', '.join(sorted(latent))}: not decidable from market data", None, None, sc.prob, None)
    last = origin + pd.DateOffset(months=sc.horizon)
    if last > end:
        return None
    used = sorted(series_used(expr))
    months = f"{month_str(origin)}..{month_str(last)}"
    window = realised[used].loc[:last].ffill().loc[origin:last]   # month 0 carries its last value (as the forecast)
    gaps = realised[used].loc[origin + pd.DateOffset(months=1):last]
    if len(window) != sc.horizon + 1 or window.isna().any().any() or gaps.isna().any().any():
        bad = sorted(set(gaps.columns[gaps.isna().any()]) | set(window.columns[window.isna().any()]))
        return ScenarioScore(f.forecast_id, sc.name, "unresolved", f"realised data missing for {', '.join(bad)} "
                             f"in {months}", months, None, sc.prob, None)
    paths = {s: window[s].to_numpy(float)[None, :] for s in used}
    outcome = bool(np.asarray(evaluate(expr, paths, {})).reshape(-1)[0])
    return ScenarioScore(f.forecast_id, sc.name, "resolved", None, months, outcome, sc.prob, float(brier(outcome, sc.prob)))


# ---- scoring: the ledger against a data directory --------------------------------------------
def realised_levels(config: ModelConfig, panel) -> pd.DataFrame:
    """Realised levels in the forecast's units, one column per observed series: the monthly
    level (yield, index points, USD, VIX points), or the transformed value for a series whose
    simulated level is its observation (inflation year on year)."""
    specs = {s.name: s for s in config.series}
    cols = {}
    for s in config.observed:
        x = panel.levels.sel(series=s).to_series()
        cols[s] = transform_levels(specs[s], x) if TRANSFORM_LEVEL[specs[s].transform] == LEVEL_IS_OBS else x
    return pd.DataFrame(cols)


@dataclass(frozen=True)
class Scoring:
    """One ``ledger score``: the data read and the scores of every forecast."""

    scoring_id: int | None
    data_dir: Path
    data_end: str | None
    files: dict
    forecasts: list[ForecastScores]


def score(db: str | Path, data_dir: str | Path) -> Scoring:
    """Score every forecast in the ledger against the data in ``data_dir`` (each forecast with
    the panel of its own model file) and record the scores, the data directory, the file
    hashes and the months used in one transaction. Nothing is recorded for an empty ledger."""
    data_dir = Path(data_dir)
    with open_ledger(db) as conn:
        forecasts = load_forecasts(conn)
    if not forecasts:
        return Scoring(None, data_dir, None, {}, [])
    results, files, ends = [], {}, []
    for sha in dict.fromkeys(f.model_sha256 for f in forecasts):
        config = _config_from_text(next(f.model_text for f in forecasts if f.model_sha256 == sha), sha)
        panel = build_panel(config.series, config.sample, data_dir)
        realised = realised_levels(config, panel).loc[:pd.Timestamp(f"{panel.end}-01")]
        files[sha] = {"end": panel.end, "files": data_record({"provenance": {
            k: dataclasses.asdict(v) for k, v in panel.provenance.items()}})["files"]}
        ends.append(panel.end)
        results += [score_forecast(f, config, realised) for f in forecasts if f.model_sha256 == sha]
    results.sort(key=lambda r: r.forecast.forecast_id)
    data_end = max(ends)
    with open_ledger(db) as conn, transaction(conn):
        cur = conn.execute("INSERT INTO scorings (scored_utc, data_dir, data_end, files_json, crps_method) "
                           "VALUES (?, ?, ?, ?, ?)", (now_utc(), str(data_dir), data_end,
                                                      json.dumps(files, sort_keys=True), CRPS_METHOD))
        sid = int(cur.lastrowid)
        conn.executemany("INSERT INTO asset_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [(sid, a.forecast_id, a.series, a.horizon, a.target_month, a.observed, a.crps,
                           int(a.in_50), int(a.in_90)) for r in results for a in r.assets])
        conn.executemany("INSERT INTO scenario_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [(sid, s.forecast_id, s.scenario, s.status, s.reason, s.months,
                           None if s.outcome is None else int(s.outcome), s.prob, s.brier)
                          for r in results for s in r.scenarios])
    return Scoring(sid, data_dir, data_end, files, results)


def _config_from_text(text: str, sha: str) -> ModelConfig:
    """The model file stored with a forecast, validated (written to a temporary file to load)."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / f"model-{sha[:12]}.toml"
        p.write_text(text, encoding="utf-8")
        try:
            return load_model_config(p)
        except ConfigError as exc:
            raise LedgerError(f"ledger forecasts with model_sha256 = {sha[:12]}...: field model_text does not load "
                              f"as a model file: key '{exc.key}' = {exc.value!r}: {exc.problem}") from exc
