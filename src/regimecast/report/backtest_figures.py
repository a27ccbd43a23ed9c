"""The backtest report's figures, one function each, each returning PNG bytes: PIT histograms,
interval calibration, CRPS skill by horizon, reliability of the policy-state and scenario-event
probabilities
(Matplotlib's object API, as every report)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from regimecast.report.render import PALETTE, new_figure, png
from regimecast.scoring import scores as scoring

COVERAGE_LEVELS = tuple(np.round(np.arange(0.1, 0.91, 0.1), 2))   # nominal levels of the calibration plot
FIG_PIT_CELL = (2.6, 1.7)    # inches per panel of the PIT grid
FIG_ROW = (11.0, 3.2)
RELIABILITY_MAX_AREA = 200.0    # points^2 of the fullest reliability bin's marker (area ~ n)
UNIT_MARGIN = 0.04              # axis margin around [0, 1] so points at 0 and 1 are not clipped


def _colours(methods: Sequence[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


def pit_figure(summary, names) -> bytes:
    methods, series = summary["methods"], summary["series"]
    fig, axes = new_figure((FIG_PIT_CELL[0] * len(series), FIG_PIT_CELL[1] * len(methods)), len(methods),
                            len(series), squeeze=False, sharex=True)
    colours = _colours(methods)
    for i, m in enumerate(methods):
        for j, s in enumerate(series):
            ax = axes[i, j]
            counts = np.asarray(summary["pit_histogram"][m][s], float)
            bins = len(counts)
            total = counts.sum()
            dens = counts / (total / bins) if total else counts
            ax.bar((np.arange(bins) + 0.5) / bins, dens, width=1 / bins, color=colours[m], alpha=0.8)
            ax.axhline(1.0, color="#333333", linestyle="--", linewidth=0.8)
            ax.set_xlim(0, 1)
            if i == 0:
                ax.set_title(s, fontsize=9)
            if j == 0:
                ax.set_ylabel(names[m], fontsize=7)
            ax.tick_params(labelsize=7)
    return png(fig)


def calibration_figure(summary, names) -> bytes:
    methods, series = summary["methods"], summary["series"]
    fig, axes = new_figure(FIG_ROW, 1, len(series), squeeze=False)
    colours = _colours(methods)
    for j, s in enumerate(series):
        ax = axes[0, j]
        ax.plot([0, 1], [0, 1], color="#333333", linestyle="--", linewidth=0.8)
        for m in methods:
            c = scoring.coverage_curve(summary["pit"][m][s], COVERAGE_LEVELS)
            ax.plot(COVERAGE_LEVELS, c, marker="o", markersize=3, color=colours[m], label=names[m])
        ax.set_title(s, fontsize=9)
        ax.set_xlabel("nominal", fontsize=8)
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("share of outcomes inside", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False, fontsize=8)
    return png(fig)


def skill_figure(summary, names) -> bytes:
    base, series, horizons = list(summary["baselines"]), summary["series"], summary["horizons"]
    fig, axes = new_figure(FIG_ROW, 1, len(series), squeeze=False, sharey=True)
    colours = _colours(summary["methods"])
    width = 0.8 / max(len(base), 1)
    x = np.arange(len(horizons))
    for j, s in enumerate(series):
        ax = axes[0, j]
        for k, b in enumerate(base):
            v = [summary["skill"][s][str(h)][b]["skill"] for h in horizons]
            ax.bar(x + (k - (len(base) - 1) / 2) * width, [np.nan if t is None else t for t in v], width,
                   color=colours[b], label=names[b])
        ax.axhline(0, color="#333333", linewidth=0.8)
        ax.set_xticks(x, [f"{h} m" for h in horizons])
        ax.set_title(s, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("CRPS skill (> 0: engine better)", fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False, fontsize=8)
    return png(fig)


def reliability_figure(policy) -> bytes:
    """Observed frequency against mean forecast probability per bin, one panel per horizon
    (``policy``: :func:`regimecast.scoring.backtest_policy.policy_summary`); marker area ~ n."""
    return reliability_panels({f"{h} months ahead (n = {c['n']} origins)": c["reliability"]
                               for h, c in policy["by_horizon"].items()})


def reliability_panels(panels: Mapping[str, Sequence[Mapping]]) -> bytes:
    """One reliability panel per ``{title: bins}`` (bins of
    :func:`regimecast.scoring.backtest_policy.reliability`): observed frequency against mean
    forecast probability, marker area ~ n, the diagonal for reference."""
    fig, axes = new_figure(FIG_ROW, 1, max(len(panels), 1), squeeze=False, sharey=True)
    for j, (title, all_bins) in enumerate(panels.items()):
        ax = axes[0, j]
        bins = [b for b in all_bins if b["n"]]
        most = max((b["n"] for b in bins), default=1)
        ax.plot([0, 1], [0, 1], color="#333333", linestyle="--", linewidth=0.8)
        ax.scatter([b["mean_prob"] for b in bins], [b["observed"] for b in bins],
                   s=[RELIABILITY_MAX_AREA * b["n"] / most for b in bins], color=PALETTE[0], alpha=0.7)
        for b in bins:
            ax.annotate(str(b["n"]), (b["mean_prob"], b["observed"]), textcoords="offset points", xytext=(4, 4),
                        fontsize=6)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("forecast probability", fontsize=8)
        ax.set_xlim(-UNIT_MARGIN, 1 + UNIT_MARGIN), ax.set_ylim(-UNIT_MARGIN, 1 + UNIT_MARGIN)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("observed frequency", fontsize=8)
    return png(fig)
