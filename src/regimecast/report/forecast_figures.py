"""The forecast report's figures, one function each, each returning PNG bytes: the policy
state by horizon, the assets' fan charts, the smoothed state probabilities (with the
recorded policy episodes under the transition factor's chart), the fed funds path of the
model against the one the Treasury curve prices.

Matplotlib's Agg canvas through the object API (``Figure``), never pyplot, so rendering neither
switches the caller's backend (a notebook keeps its own) nor leaves open figures behind."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.dates import date2num
from matplotlib.ticker import PercentFormatter

from regimecast.report.format import pct
from regimecast.report.forecast_market import INTERVALS, MEDIAN
from regimecast.report.forecast_schema import (FAN_BANDS, MEDIAN_QUANTILE, ReportContent, policy_states,
                                               quantile_at, sorted_horizons)
from regimecast.report.render import PALETTE, new_figure, png

# --- fan charts --------------------------------------------------------------------------
FAN_SERIES_PER_ROW = 2  # the 2x2 grid
FAN_COLOUR = "#0072B2"
HISTORY_COLOUR = "#222222"
MARKET_COLOUR = "#D55E00"
MARKET_BAND_ALPHAS = (0.35, 0.18)  # fill of the model's intervals, in INTERVALS' order (narrowest first)

# --- figures -----------------------------------------------------------------------------
FAN_FIGSIZE = (11.0, 7.5)  # inches, whole 2x2 grid
POLICY_BARS_FIGSIZE = (7.5, 4.0)
SMOOTHED_FIGSIZE = (11.0, 2.8)
POLICY_SMOOTHED_FIGSIZE = (11.0, 5.6)  # area chart plus the episodes strip
EPISODE_STRIP_HEIGHT_RATIO = 0.9  # strip height relative to the area chart (= 1)
EPISODE_BAR_HEIGHT = 0.7  # bar thickness in strip rows (one row = 1)
BAR_LABEL_MIN_SHARE = 0.07  # label a stacked-bar segment with its % only above this share
MARKET_FIGSIZE = (7.5, 4.0)

def figures(content: ReportContent) -> dict[str, list[tuple[bytes, str]]]:
    """Section (``policy``, ``market``, ``fans``, ``smoothed``) -> [(png, alt text)]; ``market``
    only when summary.json has a ``market_path`` block with a number to draw."""
    smoothed = [(_smoothed_figure(content, f), f"Smoothed {f} state probabilities") for f in content.smoothed]
    out = {"policy": [(_policy_bars_figure(content), "Policy state probabilities by horizon")],
           "fans": [(_fan_figure(content), "Fan charts of the four assets")],
           "smoothed": smoothed}
    block = content.summary.get("market_path")
    if block and any(w["market"] is not None or w["model_quantiles"] for w in block["windows"]):
        out["market"] = [(_market_figure(block), "Fed funds rate averaged over each window: model against the "
                                                 "forward rates the Treasury curve prices")]
    return out


def _policy_bars_figure(content: ReportContent) -> bytes:
    policy = content.summary["policy"]
    horizons = sorted_horizons(policy)
    states = policy_states(content)
    colours = _state_colours(states)
    fig, ax = new_figure(POLICY_BARS_FIGSIZE)
    x = np.arange(len(horizons))
    bottom = np.zeros(len(horizons))
    for st in states:
        p = np.array([float(policy[h].get(st, 0.0)) for h in horizons])
        ax.bar(x, p, bottom=bottom, color=colours[st], label=st, width=0.6)
        for xi, b, pi in zip(x, bottom, p):
            if pi >= BAR_LABEL_MIN_SHARE:
                ax.text(xi, b + pi / 2, pct(pi, 0), ha="center", va="center", fontsize=8, color="white")
        bottom += p
    ax.set_xticks(x, [f"{h} m" for h in horizons])
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.set_xlabel("Horizon (months ahead)")
    handles, labels = ax.get_legend_handles_labels()  # top of the stack first, as drawn
    ax.legend(handles[::-1], labels[::-1], loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False,
              title="Policy state")
    return png(fig)


def _fan_figure(content: ReportContent) -> bytes:
    series = list(content.fan["series"].values)
    n_rows = math.ceil(len(series) / FAN_SERIES_PER_ROW)
    fig, axes = new_figure(FAN_FIGSIZE, n_rows, FAN_SERIES_PER_ROW, squeeze=False)
    for ax, s in zip(axes.flat, series):
        _draw_fan(ax, content, s)
    for ax in list(axes.flat)[len(series):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels), frameon=False, fontsize=9)
    return png(fig)


def _draw_fan(ax, content: ReportContent, series: str) -> None:
    hist = content.history.sel(series=series).dropna("date")
    hist_dates = pd.DatetimeIndex(hist["date"].values)
    fan = content.fan.sel(series=series)
    dates = pd.DatetimeIndex(fan["date"].values)
    if hist.size:  # join the bands to the last observation
        dates = dates.insert(0, hist_dates[-1])
    joined = (lambda v: np.concatenate([[float(hist[-1])], v])) if hist.size else (lambda v: v)
    for lo, hi, label, alpha in FAN_BANDS:
        ax.fill_between(dates, joined(quantile_at(fan, lo)), joined(quantile_at(fan, hi)), color=FAN_COLOUR,
                        alpha=alpha, linewidth=0, label=f"{label} band")
    ax.plot(dates, joined(quantile_at(fan, MEDIAN_QUANTILE)), color=FAN_COLOUR, linewidth=1.6, label="median")
    ax.plot(hist_dates, hist.values, color=HISTORY_COLOUR, linewidth=1.1, label="history")
    if hist.size:
        ax.axvline(hist_dates[-1], color="#888888", linestyle=":", linewidth=1)
    ax.set_title(content.labels.get(str(series), str(series)), fontsize=10)
    ax.grid(alpha=0.3)


def _market_figure(block: dict) -> bytes:
    """The model's window averages (median step, intervals as boxes) against the market's forwards (steps)."""
    fig, ax = new_figure(MARKET_FIGSIZE)
    windows = block["windows"]
    for w in windows:
        q, span = w["model_quantiles"], [w["start_month"], w["end_month"]]
        first = w is windows[0]
        for (lo, hi, label), alpha in zip(INTERVALS, MARKET_BAND_ALPHAS):
            if q.get(f"{lo:g}") is not None and q.get(f"{hi:g}") is not None:
                ax.fill_between(span, q[f"{lo:g}"], q[f"{hi:g}"], color=FAN_COLOUR, alpha=alpha, linewidth=0,
                                label=f"model {label} interval" if first else None)
    edges = [windows[0]["start_month"], *(w["end_month"] for w in windows)]
    lines = (([w["model_quantiles"].get(f"{MEDIAN:g}") for w in windows], FAN_COLOUR, "-", "model median"),
             ([w["model_mean"] for w in windows], FAN_COLOUR, "--", "model mean"),
             ([w["market"] for w in windows], MARKET_COLOUR, "-", "market forward"))
    for values, colour, style, label in lines:
        if any(v is not None for v in values):
            ax.stairs([np.nan if v is None else v for v in values], edges, baseline=None, color=colour,
                      linestyle=style, linewidth=2, label=label)
    ax.set_xticks(edges)
    ax.set_xlabel(f"Months after {block['origin']}")
    ax.set_ylabel("Fed funds rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    return png(fig)


def _smoothed_figure(content: ReportContent, factor: str) -> bytes:
    probs = content.smoothed[factor].transpose("date", "state")
    states = [str(s) for s in probs["state"].values]
    colours = _state_colours(states)
    dates = pd.DatetimeIndex(probs["date"].values)
    with_strip = factor == content.policy_factor and bool(content.episodes)
    if with_strip:
        fig, (ax, strip) = new_figure(POLICY_SMOOTHED_FIGSIZE, 2, 1, sharex=True,
                                       gridspec_kw={"height_ratios": (1, EPISODE_STRIP_HEIGHT_RATIO)})
    else:
        fig, ax = new_figure(SMOOTHED_FIGSIZE)
    ax.stackplot(dates, probs.values.T, colors=[colours[s] for s in states], labels=states, linewidth=0)
    ax.set_ylim(0, 1)
    ax.set_xlim(dates[0], dates[-1])
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.set_title(f"{factor}: smoothed state probabilities", fontsize=10, loc="left")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False,
              fontsize=8)
    if with_strip:
        _draw_episode_strip(strip, content.episodes, policy_states(content))
    return png(fig)


def _draw_episode_strip(ax, episodes: Iterable[tuple[str, str, str]], states: Sequence[str]) -> None:
    """One row per state (same order and colours as the area chart), a bar per episode."""
    colours = _state_colours(states)
    rows = {st: i for i, st in enumerate(states)}
    for state, start, end in episodes:
        t0 = date2num(pd.Timestamp(start))
        t1 = date2num(pd.Timestamp(end) + pd.offsets.MonthBegin(1))  # the end month is inclusive
        ax.broken_barh([(t0, t1 - t0)], (rows[state] - EPISODE_BAR_HEIGHT / 2, EPISODE_BAR_HEIGHT),
                       color=colours[state])
    ax.xaxis_date()
    ax.set_yticks(range(len(states)), states, fontsize=8)
    ax.set_ylim(len(states) - 0.5, -0.5)
    ax.set_title("Fed policy episodes (recorded history, for reference)", fontsize=9, loc="left")
    ax.grid(axis="x", alpha=0.3)


def _percent_formatter():
    return PercentFormatter(xmax=1.0, decimals=0)


def _state_colours(states: Sequence[str]) -> dict[str, str]:
    return {st: PALETTE[i % len(PALETTE)] for i, st in enumerate(states)}
