"""Figures of ``diagnostics.html``: each function takes saved results (the run's InferenceData,
the :class:`regimecast.checks.review.Review`) and returns PNG bytes. ArviZ draws what it has a
function for (rank, trace, energy and pair plots); the posterior predictive and LOO-PIT
figures are drawn here. Figures are Matplotlib ``Figure`` objects on an Agg canvas (never
pyplot), through :func:`regimecast.report.forecast.new_figure` and ``png``."""

from __future__ import annotations

import math

import arviz as az
import numpy as np
import pandas as pd
from scipy import stats

from regimecast.report.render import PALETTE, new_figure, png
from regimecast.checks.prior_data import conflict_z
from regimecast.checks.review import Review, flat_draws

PANEL_INCHES = (3.6, 2.6)     # one small panel of a grid
PANELS_PER_ROW = 4
HIST_BINS = 40
KS_BAND_LEVEL = 0.99          # simultaneous band of the LOO-PIT ECDF (Kolmogorov-Smirnov)
OBSERVED_COLOUR, REPLICATE_COLOUR = "#222222", PALETTE[1]


def _grid(n: int, per_row: int = PANELS_PER_ROW, **kw):
    rows, cols = math.ceil(n / per_row), min(n, per_row)
    fig, axes = new_figure((PANEL_INCHES[0] * cols, PANEL_INCHES[1] * rows), rows, cols, squeeze=False, **kw)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _subset(idata: az.InferenceData, review: Review, names: list[str], labels: list[str],
            with_divergences: bool = False) -> az.InferenceData:
    """A small InferenceData whose variables are the scalars ``labels`` (plots need no coords)."""
    x = flat_draws(idata.posterior, names)
    cols = [review.parameters.index.get_loc(lab) for lab in labels]
    ss = {"diverging": idata.sample_stats["diverging"].transpose("chain", "draw").values} if with_divergences else None
    return az.from_dict(posterior={lab: x[..., c] for lab, c in zip(labels, cols)}, sample_stats=ss)


def rank_figure(idata, review: Review, names: list[str], labels: list[str]) -> bytes:
    """Rank plots (Vehtari et al. 2021): uniform bars per chain when the chains agree."""
    fig, axes = _grid(len(labels))
    az.plot_rank(_subset(idata, review, names, labels), ax=np.array(axes), show=False)
    return png(fig)


def trace_figure(idata, review: Review, names: list[str], labels: list[str]) -> bytes:
    fig, axes = new_figure((11.0, 1.9 * len(labels)), len(labels), 2, squeeze=False)
    az.plot_trace(_subset(idata, review, names, labels), axes=axes, show=False, compact=False)
    return png(fig)


def energy_figure(idata) -> bytes:
    """Marginal energy vs energy transition densities (Betancourt 2016): overlap is good."""
    fig, ax = new_figure((5.5, 3.6))
    az.plot_energy(idata, ax=ax, show=False)
    return png(fig)


def pair_figure(idata, review: Review, names: list[str], labels: list[str]) -> bytes:
    """Pairs of the parameters along which divergent transitions sit, divergences marked."""
    n = len(labels)
    fig, axes = new_figure((2.6 * (n - 1), 2.6 * (n - 1)), n - 1, n - 1, squeeze=False)
    az.plot_pair(_subset(idata, review, names, labels, with_divergences=True), divergences=True,
                 ax=axes, show=False, textsize=7)
    return png(fig)


def contraction_figure(review: Review, fail_alpha: float, warn_alpha: float, warn_contraction: float) -> bytes:
    """Posterior z-score against contraction (Betancourt 2018, fig. 6): right = informed by the
    data, far from 0 vertically = the posterior sits in the prior's tail."""
    p = review.parameters.dropna(subset=["contraction", "prior_z"])
    fig, ax = new_figure((7.5, 4.4))
    for i, (var, grp) in enumerate(p.groupby("var", sort=False)):
        ax.scatter(np.clip(grp["contraction"], -1, 1), grp["prior_z"], s=10, color=PALETTE[i % len(PALETTE)],
                   label=var, alpha=0.8)
    for alpha, style in ((fail_alpha, "-"), (warn_alpha, "--")):
        z = conflict_z(alpha, len(p))
        for sign in (1, -1):
            ax.axhline(sign * z, color="#b91c1c", linestyle=style, linewidth=0.8)
    ax.axvline(warn_contraction, color="#888888", linestyle=":", linewidth=1)
    ax.set_xlabel("contraction 1 - var_post / var_prior (clipped to [-1, 1])")
    ax.set_ylabel("(posterior mean - prior mean) / prior sd")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=7)
    ax.grid(alpha=0.3)
    return png(fig)


def tails_figure(review: Review) -> bytes:
    """Histogram of each series' monthly changes (bars) against the pooled replicates (line),
    log density: the tails are where regime models are judged."""
    d = review.ppc.data
    fig, axes = _grid(d.sizes["series"])
    for ax, s in zip(axes, d["series"].values):
        obs = d["observed"].sel(series=s).values
        rep = d["replicated"].sel(series=s).values.ravel()
        obs, rep = obs[np.isfinite(obs)], rep[np.isfinite(rep)]
        lo, hi = np.quantile(np.concatenate([obs, rep]), (0.0005, 0.9995))
        bins = np.linspace(min(lo, obs.min()), max(hi, obs.max()), HIST_BINS)
        ax.hist(obs, bins=bins, density=True, color="#bbbbbb", label="data")
        ax.hist(rep, bins=bins, density=True, histtype="step", color=REPLICATE_COLOUR, linewidth=1.4,
                label="replicates")
        ax.set_yscale("log")
        ax.set_title(str(s), fontsize=9)
    axes[0].legend(fontsize=7, frameon=False)
    return png(fig)


def acf_figure(review: Review) -> bytes:
    """Autocorrelation of absolute monthly changes: data (points) and the replicates' 5-95%
    band and median; a band below the points means volatility clusters more than modelled."""
    d = review.ppc.data
    lags = d["lag"].values
    fig, axes = _grid(d.sizes["series"])
    for ax, s in zip(axes, d["series"].values):
        rep = d["acf_replicated"].sel(series=s).values
        q = np.nanquantile(rep, (0.05, 0.5, 0.95), axis=0)
        ax.fill_between(lags, q[0], q[2], color=REPLICATE_COLOUR, alpha=0.25, linewidth=0)
        ax.plot(lags, q[1], color=REPLICATE_COLOUR, linewidth=1)
        ax.plot(lags, d["acf_observed"].sel(series=s).values, "o", color=OBSERVED_COLOUR, markersize=3)
        ax.axhline(0, color="#888888", linewidth=0.6)
        ax.set_title(f"|{s}|", fontsize=9)
        ax.set_xlabel("lag (months)", fontsize=8)
    return png(fig)


def interval_figure(panels: list[tuple[str, pd.DataFrame]]) -> bytes:
    """One panel per ``(title, rows)``: each row's replicated 5-95% interval and median (bar)
    and the data's value (point), rows named by ``subject`` on the x axis."""
    fig, axes = _grid(len(panels), per_row=3)
    for ax, (title, rows) in zip(axes, panels):
        x = np.arange(len(rows))
        med = rows["rep_median"]
        ax.errorbar(x, med, yerr=[med - rows["rep_q05"], rows["rep_q95"] - med], fmt="_", color=REPLICATE_COLOUR,
                    capsize=3, label="replicates 5-95%")
        ax.plot(x, rows["observed"], "o", color=OBSERVED_COLOUR, markersize=4, label="data")
        ax.set_xticks(x, [str(s) for s in rows["subject"]], rotation=45, fontsize=7, ha="right")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, frameon=False)
    return png(fig)


def loo_pit_figure(review: Review) -> bytes:
    """ECDF of each series' LOO-PITs minus the uniform CDF, with the Kolmogorov-Smirnov
    simultaneous band at KS_BAND_LEVEL: a calibrated model stays inside."""
    pit = review.loo.pit
    fig, axes = _grid(pit.sizes["series"])
    u = np.linspace(0, 1, 201)
    for ax, s in zip(axes, pit["series"].values):
        v = np.sort(pit.sel(series=s).values)
        v = v[np.isfinite(v)]
        ecdf = np.searchsorted(v, u, side="right") / max(len(v), 1)
        band = stats.kstwobign.isf(1 - KS_BAND_LEVEL) / np.sqrt(max(len(v), 1))
        ax.fill_between(u, -band, band, color="#dddddd", linewidth=0)
        ax.plot(u, ecdf - u, color=REPLICATE_COLOUR, linewidth=1.2)
        ax.axhline(0, color="#888888", linewidth=0.6)
        ax.set_title(f"{s} (KS p={review.loo.ks_pvalue[s]:.2f})", fontsize=9)
    return png(fig)


def pareto_k_figure(review: Review, k_warn: float) -> bytes:
    k = review.loo.pareto_k
    fig, ax = new_figure((11.0, 2.6))
    ax.plot(k.index, k.values, "o", markersize=2.5, color=REPLICATE_COLOUR)
    ax.axhline(k_warn, color="#b91c1c", linestyle="--", linewidth=0.8)
    ax.set_ylabel("Pareto k")
    ax.grid(alpha=0.3)
    return png(fig)
