"""What the forecast report shows (:class:`ReportContent`), its checks (:func:`validate`) and the
accessors every part of the report shares: the policy states in the model's order, the
horizons in order, a quantile of the fan. Built by :mod:`regimecast.report.forecast_content`,
drawn by :mod:`regimecast.report.forecast_figures`, rendered by :mod:`regimecast.report.forecast`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.report.format import finite
from regimecast.report.render import ReportError

# --- the fan's quantiles --------------------------------------------------------------------------
MEDIAN_QUANTILE = 0.5
# (lower quantile, upper quantile, label, fill alpha), widest first so narrower bands draw on top
FAN_BANDS = (
    (0.025, 0.975, "95%", 0.15),
    (0.1, 0.9, "80%", 0.25),
    (0.25, 0.75, "50%", 0.40),
)
QUANTILE_TOLERANCE = 1e-9  # matching of the fan's float quantile coordinate

@dataclass(frozen=True)
class ReportContent:
    """Everything the report shows, already computed. Probabilities are in [0, 1].

    summary: written verbatim (floats rounded) as summary.json: ``run_id``, ``data_end``
        (YYYY-MM), ``horizon_months``, ``scenarios`` {name: {mean, lo, hi, mcse,
        description}} (lo/hi: 90% credible interval across posterior draws; mcse: Monte
        Carlo standard error), ``policy`` {horizon months as str: {state: prob}},
        ``quantiles`` {series: {horizon: {q: value}}}, ``diagnostics`` {max_rhat,
        min_ess_bulk, min_ess_tail, divergences, min_bfmi, trusted, reasons}; optionally
        ``market_path``, the fed funds path of the model against the one the Treasury curve
        prices (:func:`regimecast.report.forecast_market.market_block`), shown as its own section.
    history: dims (date, series), monthly levels in natural units (y10 in %, equity in index
        points, gold in USD/oz, vix in points).
    fan: dims (series, horizon, quantile), forecast quantiles including 0.025, 0.1, 0.25,
        0.5, 0.75, 0.9, 0.975, with a ``date`` coordinate (month starts) on ``horizon``.
    smoothed: factor -> dims (date, state), posterior-mean smoothed state probabilities.
    episodes: (state, start YYYY-MM, end YYYY-MM inclusive) of the Fed's recorded policy.
    factor_info: factor -> {"now": {state: prob}, "parameters": [{name, prior_mean,
        prior_sd, post_mean, post_sd}]}.
    conditional: scenario -> series -> {q05, q50, q95} at the scenario's horizon; an empty
        mapping (or a missing scenario) means too few paths to condition on.
    provenance: series -> {fred_id, file, sha256, first, last}.
    reproduce: the command line that reproduces the run.
    title: the report's title.
    policy_factor: the transition factor (the model file's ``[transition] factor``), whose
        smoothed chart carries the episodes strip.
    rate_series: assets that are rates in percent (:attr:`ModelConfig.rate_assets`), shown with
        two decimals whatever their size.
    contraction_prior_dominates: median contraction at or below which the data taught a factor
        little (``warn.contraction`` of ``models/diagnostics.toml``).
    labels: series -> label with units, e.g. "US 10-year yield (%)"; the series name if absent.
    """

    summary: dict
    history: xr.DataArray
    fan: xr.DataArray
    smoothed: dict[str, xr.DataArray]
    episodes: list[tuple[str, str, str]]
    factor_info: dict[str, dict]
    conditional: dict[str, dict[str, dict[str, float]]]
    provenance: dict[str, dict]
    reproduce: str
    title: str
    policy_factor: str
    rate_series: tuple[str, ...]
    contraction_prior_dominates: float
    labels: dict[str, str] = field(default_factory=dict)


def policy_states(content: ReportContent) -> list[str]:
    """Policy states in the model's order (the smoothed chart's), then any others seen."""
    states: list[str] = []
    if content.policy_factor in content.smoothed:
        states += [str(s) for s in content.smoothed[content.policy_factor]["state"].values]
    for probs in content.summary["policy"].values():
        states += [s for s in probs if s not in states]
    states += [ep[0] for ep in content.episodes if ep[0] not in states]
    return list(dict.fromkeys(states))


def sorted_horizons(policy: Mapping[str, object]) -> list[str]:
    return sorted(policy, key=lambda h: float(h))


def quantile_at(da: xr.DataArray, q: float) -> np.ndarray | float:
    vals = da.sel(quantile=q, method="nearest", tolerance=QUANTILE_TOLERANCE).values
    return float(vals) if np.ndim(vals) == 0 else np.asarray(vals, dtype=float)


# --- validation --------------------------------------------------------------------------

_SUMMARY_KEYS = ("run_id", "data_end", "horizon_months", "scenarios", "policy", "quantiles", "diagnostics")
_SCENARIO_KEYS = ("mean", "lo", "hi", "mcse")
MARKET_KEYS = ("origin", "reason", "model_source", "difference_of", "yields", "windows")
MARKET_WINDOW_KEYS = ("window", "start_month", "end_month", "market", "model_mean", "model_quantiles", "difference_bp")
DIAGNOSTIC_KEYS = ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi", "trusted", "reasons")


def validate(content: ReportContent) -> None:
    s = content.summary
    _require(s, _SUMMARY_KEYS, "summary")
    _require(s["diagnostics"], DIAGNOSTIC_KEYS, "summary.diagnostics")
    for name, sc in s["scenarios"].items():
        _require(sc, _SCENARIO_KEYS, f"summary.scenarios.{name}")
    if "market_path" in s:
        _require(s["market_path"], MARKET_KEYS, "summary.market_path")
        for i, w in enumerate(s["market_path"]["windows"]):
            _require(w, MARKET_WINDOW_KEYS, f"summary.market_path.windows[{i}]")
    for h in s["policy"]:
        if not finite(h):
            raise ReportError(f"summary.policy: horizon key {h!r} is not a number of months")
    _require_dims(content.history, ("date", "series"), "history")
    _require_dims(content.fan, ("series", "horizon", "quantile"), "fan")
    if "date" not in content.fan.coords or content.fan["date"].dims != ("horizon",):
        raise ReportError("fan: needs a 'date' coordinate on the 'horizon' dimension")
    needed = {MEDIAN_QUANTILE, *(b[0] for b in FAN_BANDS), *(b[1] for b in FAN_BANDS)}
    have = np.asarray(content.fan["quantile"].values, dtype=float)
    missing = sorted(q for q in needed if not np.any(np.abs(have - q) <= QUANTILE_TOLERANCE))
    if missing:
        raise ReportError(f"fan: quantile coordinate {have.tolist()} lacks {missing}")
    absent = [s for s in content.fan["series"].values if s not in content.history["series"].values]
    if absent:
        raise ReportError(f"fan: series {absent} not in history")
    for factor, da in content.smoothed.items():
        _require_dims(da, ("date", "state"), f"smoothed.{factor}")
    for i, (_, start, end) in enumerate(content.episodes):
        try:
            pd.Timestamp(start), pd.Timestamp(end)
        except ValueError as exc:
            raise ReportError(f"episodes[{i}]: bad month {start!r}..{end!r}: {exc}") from exc


def _require(mapping: object, keys: Sequence[str], path: str) -> None:
    if not isinstance(mapping, Mapping):
        raise ReportError(f"{path}: expected a mapping, got {type(mapping).__name__}")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ReportError(f"{path}: missing key(s) {missing}")


def _require_dims(da: object, dims: tuple[str, ...], path: str) -> None:
    if not isinstance(da, xr.DataArray) or set(da.dims) != set(dims):
        got = getattr(da, "dims", type(da).__name__)
        raise ReportError(f"{path}: expected an xarray.DataArray with dims {dims}, got {got}")
