"""The forecast report's "model versus market" comparison of the fed funds path: the model's fed
funds level averaged over the forward windows of :mod:`regimecast.data.curve` (mean and
quantiles over the simulated paths) beside the forwards the Treasury curve prices, their
difference in basis points and a plain sentence per window. Builds the ``market_path`` block
of summary.json (:func:`market_block`) and renders it as a report section (:func:`market_section`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from regimecast.config.model_file import ModelConfig
from regimecast.data.curve import FED_FUNDS_IDS, WINDOWS, MarketPath, window_label
from regimecast.report.format import finite
from regimecast.report.forecast_schema import QUANTILE_TOLERANCE

HEADING = "Fed funds path: model versus market"
MODEL_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MEDIAN = 0.5
INTERVALS = ((0.25, 0.75, "50%"), (0.05, 0.95, "90%"))   # (lower, upper quantile, label)
BP_PER_PP = 100
# |model - market| below this many basis points reads as agreement: the forward's own
# distortions (bill-fed funds spread, term premium) are of this order.
AGREE_BP = 10.0
SOURCE_PATHS = "paths"                    # window averages of every stored path
SOURCE_HORIZON = "horizon_quantiles"      # window averages of per-horizon quantiles (no paths kept)
CONVENTION = "percent per annum, as the fed funds rate: simple interest on an actual/360 basis, rolled daily"


def fed_funds_series(config: ModelConfig) -> str | None:
    """Name of the model's observed fed funds series (FRED id in ``FED_FUNDS_IDS``), or None."""
    return next((s.name for s in config.series if s.role == "observed" and s.fred_id in FED_FUNDS_IDS), None)


def window_average(levels: xr.DataArray, windows=WINDOWS) -> xr.DataArray:
    """``levels`` with dims (..., "horizon"), horizon = months ahead 1..H -> dims (..., "window"):
    the mean over months ``start+1..end`` of each window; windows ending after H are left out."""
    h = levels["horizon"].values
    keep = [(a, b) for a, b in windows if b <= h.max()]
    if not keep:
        return levels.isel(horizon=slice(0, 0)).rename(horizon="window").drop_vars("window")
    parts = [levels.isel(horizon=np.flatnonzero((h > a) & (h <= b))).mean("horizon") for a, b in keep]
    return xr.concat(parts, dim="window").assign_coords(window=[window_label(a, b) for a, b in keep])


def model_windows(paths: xr.DataArray) -> dict[str, dict]:
    """Fed funds level paths (percent), dims (..., "horizon"): window label -> {"mean", "quantiles"
    {q as str: value}} of the window average over every path."""
    avg = window_average(paths)
    out = {}
    for w in avg["window"].values:
        x = avg.sel(window=w).values.ravel()
        x = x[np.isfinite(x)]
        qs = np.quantile(x, MODEL_QUANTILES) if x.size else np.full(len(MODEL_QUANTILES), np.nan)
        out[str(w)] = {"mean": float(x.mean()) if x.size else None,
                       "quantiles": {f"{q:g}": float(v) for q, v in zip(MODEL_QUANTILES, qs)}}
    return out


def model_windows_from_quantiles(quantiles: xr.DataArray) -> dict[str, dict]:
    """Fallback when no paths were kept: per-horizon quantiles (dims "horizon", "quantile") averaged
    over each window's months. The median is about right; the intervals are those of paths that
    move together, so wider than the window average's; the mean is unknown (None)."""
    q = quantiles.sel(quantile=list(MODEL_QUANTILES), method="nearest", tolerance=QUANTILE_TOLERANCE)
    avg = window_average(q)
    return {str(w): {"mean": None, "quantiles": {f"{qq:g}": float(avg.sel(window=w).isel(quantile=i))
                                                  for i, qq in enumerate(MODEL_QUANTILES)}}
            for w in avg["window"].values}


def market_block(origin: str, market: MarketPath | None, reason: str | None, model: Mapping[str, dict] | None,
                 model_source: str | None, model_reason: str | None = None) -> dict:
    """The summary.json block: ``origin`` (YYYY-MM); ``reason`` why the market path is unavailable
    (None if it is); ``model_source`` (SOURCE_PATHS, SOURCE_HORIZON or None, then ``model_reason``);
    ``difference_of`` ("mean", or "median" without a mean); ``yields`` {FRED id: {maturity_months,
    date, percent}}; ``windows`` [{window, start_month, end_month, market, model_mean,
    model_quantiles, difference_bp}], rates in percent (``CONVENTION``), differences in bp."""
    model = model or {}
    has_mean = any(m.get("mean") is not None for m in model.values())
    of = "mean" if has_mean or not model else "median"
    yields = {} if market is None else {
        str(market.yields["series"].values[i]): {"maturity_months": int(m), "percent": float(market.yields.values[i]),
                                                 "date": f"{market.yields['date'].values[i]}"[:10]}
        for i, m in enumerate(market.yields["maturity"].values)}
    windows = []
    for a, b in WINDOWS:
        label = window_label(a, b)
        fwd = None if market is None else float(market.forward.sel(window=label))
        m = model.get(label, {})
        ref = m.get("mean") if of == "mean" else m.get("quantiles", {}).get(f"{MEDIAN:g}")
        diff = (ref - fwd) * BP_PER_PP if fwd is not None and finite(ref) else None
        windows.append({"window": label, "start_month": a, "end_month": b, "market": fwd,
                        "model_mean": m.get("mean"), "model_quantiles": dict(m.get("quantiles", {})),
                        "difference_bp": diff})
    return {"origin": origin, "reason": reason, "model_source": model_source if model else None,
            "model_reason": model_reason, "difference_of": of, "convention": CONVENTION,
            "yields": yields, "windows": windows}


def window_sentence(window: Mapping, difference_of: str = "mean") -> str:
    """A plain sentence on where the model prices more cuts or more hikes than the curve."""
    d, span = window["difference_bp"], f"Over {window['window']} months"
    if not finite(d):
        return ""
    what = "expects" if difference_of == "mean" else "has a median"
    if abs(round(d)) < AGREE_BP:        # as the table shows it, in whole bp
        return f"{span} the model {what} about what the curve prices (within {AGREE_BP:g} bp)."
    side, more = ("lower", "more cuts") if d < 0 else ("higher", "more hikes")
    return f"{span} the model {what} {abs(d) / BP_PER_PP:.2f} pp {side} rates than the curve prices: {more}."


def market_section(block: Mapping) -> tuple[str, Sequence[str], list[tuple[str, ...]], str]:
    """(heading, table header, rows, note) of the report section from the summary.json block."""
    header = ("Months ahead", "Market forward (%)", "Model mean (%)", "Model median (%)",
              *(f"Model {label} interval" for *_, label in INTERVALS),
              f"Model {block['difference_of']} − market (bp)")
    rows = []
    for w in block["windows"]:
        q = w["model_quantiles"]
        rows.append((w["window"], _rate(w["market"]), _rate(w["model_mean"]), _rate(q.get(f"{MEDIAN:g}")),
                     *(f"{_rate(q.get(f'{lo:g}'))} – {_rate(q.get(f'{hi:g}'))}" for lo, hi, _ in INTERVALS),
                     f"{w['difference_bp']:+.0f}" if finite(w["difference_bp"]) else "n/a"))
    return HEADING, header, rows, market_note(block)


def market_note(block: Mapping) -> str:
    """The section's text: availability, one sentence per window, what the two sides are."""
    parts = [] if block["reason"] is None else [f"Market path unavailable: {block['reason']}."]
    parts += [s for w in block["windows"] if (s := window_sentence(w, block["difference_of"]))]
    if block["yields"]:
        ids = ", ".join(f"{sid} {y['percent']:.2f}% on {y['date']}" for sid, y in block["yields"].items())
        parts.append(f"Market: the forward rates the Treasury curve at the end of {block['origin']} ({ids}) prices for "
                     f"each window, in the fed funds convention ({CONVENTION}). They include term premia and the "
                     "bill-fed funds spread: the market's priced path, not its expectation.")
    if block["model_source"] == SOURCE_PATHS:
        parts.append("Model: the fed funds rate (monthly average) averaged over the window's months, "
                     "mean and quantiles over every simulated path.")
    elif block["model_source"] == SOURCE_HORIZON:
        parts.append("Model: the forecast kept no paths, so the columns average the per-horizon quantiles over "
                     "the window's months (intervals wider than the window average's; no mean: the difference "
                     "uses the median).")
    else:
        parts.append(f"Model side unavailable: {block.get('model_reason') or 'no fed funds forecast'}.")
    if block["model_source"] is not None and not all(w["model_quantiles"] for w in block["windows"]):
        parts.append("Windows that end after the forecast horizon have no model value.")
    return " ".join(parts)


def _rate(x) -> str:
    return f"{float(x):.2f}" if finite(x) else "n/a"
