"""``reports/<run_id>/diagnostics.html``: the review of a fit (:mod:`regimecast.checks.review`) as one
self-contained page in the committee report's style (inline CSS, PNG figures as ``data:``
URIs, the content-security policy of :mod:`regimecast.report.forecast`, every text escaped). Renders
saved results only; written atomically."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from regimecast.store import atomic
from regimecast.report import diagnostics_figures as figs
from regimecast.config.thresholds import Thresholds
from regimecast.report.format import num
from regimecast.report.render import figure_html, html_table, page, verdict_html
from regimecast.checks.prior_data import conflict_z
from regimecast.checks.review import Review, ppc_cutoff
from regimecast.checks.verdict import Verdict

HTML_FILE = "diagnostics.html"
WORST_ROWS = 25        # rows of the worst-parameters table (the full table is folded below it)
LIST_ROWS = 15         # rows of the least-informed / most-conflicted tables
PAIR_PARAMETERS = 4    # parameters in the divergence pair plot
SECTIONS = {"sampler": "Sampler", "convergence": "Convergence per parameter", "divergences": "Divergences",
            "contraction": "What the data informed", "ppc": "Posterior predictive checks", "loo-pit": "LOO-PIT",
            "thresholds": "Thresholds"}

# Vehtari et al. (2024), "Pareto smoothed importance sampling", JMLR 25(72): below k = 0.5 PSIS
# has finite variance and converges fast; the mixture table lists the months above it, and the
# months below it check the mixture against PSIS.
PSIS_GOOD_K = 0.5


def write_diagnostics(out_dir: Path, review: Review, verdict: Verdict, idata, th: Thresholds, meta: dict[str, str],
                      worst: int) -> Path:
    """Render and atomically write ``out_dir/diagnostics.html``; returns its path."""
    path = Path(out_dir) / HTML_FILE
    atomic.write_text(path, render(review, verdict, idata, th, meta, worst))
    return path


def render(review: Review, verdict: Verdict, idata, th: Thresholds, meta: dict[str, str], worst: int) -> str:
    """The whole page as a string."""
    e = html.escape
    names = list(dict.fromkeys(review.parameters["var"]))
    body = [f"<h1>{e('Diagnostics: ' + review.run_id)}</h1>",
            '<p class="meta">' + " · ".join(e(f"{k} {v}") for k, v in meta.items()) + "</p>",
            verdict_html(verdict.level, verdict.reasons)]
    parts = {"sampler": _sampler(review, idata), "convergence": _convergence(review, idata, names, th, worst),
             "divergences": _divergences(review, idata, names), "contraction": _contraction(review, th),
             "ppc": _ppc(review, th), "loo-pit": _loo(review, th), "thresholds": _thresholds(th)}
    for sid, title in SECTIONS.items():
        body.append(f'<h2 id="{sid}">{e(title)}</h2>')
        body += parts[sid]
    return page(f"Diagnostics: {review.run_id}", "\n".join(body))


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _param_rows(p: pd.DataFrame, cols: list[tuple[str, int | None]]) -> list[tuple[str, ...]]:
    return [(str(lab), *(num(r[c], d) for c, d in cols)) for lab, r in p.iterrows()]


_CONV_COLS = [("mean", None), ("sd", None), ("mcse_mean", None), ("mcse_sd", None), ("ess_bulk", 0),
              ("ess_tail", 0), ("r_hat", 4)]
_CONV_HEAD = ("Parameter", "Mean", "SD", "MCSE mean", "MCSE sd", "ESS bulk", "ESS tail", "R-hat")


def worst_parameters(p: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` highest R-hats, then the ``n`` lowest bulk ESS not already listed."""
    by_rhat = list(p["r_hat"].sort_values(ascending=False, na_position="first").index[:n])
    by_ess = [x for x in p["ess_bulk"].sort_values(na_position="first").index if x not in by_rhat][:n]
    return by_rhat + by_ess


def _sampler(review: Review, idata) -> list[str]:
    s = review.sampler
    rows = [(str(c), num(d, 0), num(b, 2)) for c, (d, b) in enumerate(zip(s.divergences, s.bfmi))]
    out = [_note(f"{s.n_chains} chains x {s.n_draws} draws; {int(s.divergences.sum())} divergent transitions; "
                 f"{num(100 * s.treedepth_share, 2)}% of transitions at the maximum tree depth."),
           html_table(("Chain", "Divergences", "E-BFMI"), rows, "sampler-table")]
    if "energy" in idata.sample_stats:
        out.append(figure_html(figs.energy_figure(idata),
                                "Energy: marginal and transition distributions (ArviZ plot_energy)"))
    return out


def _convergence(review: Review, idata, names, th: Thresholds, worst: int) -> list[str]:
    p = review.parameters
    top = p.sort_values("r_hat", ascending=False).head(WORST_ROWS)
    labels = worst_parameters(p, worst)
    full = html_table(_CONV_HEAD, _param_rows(p, _CONV_COLS), "convergence-all")
    return [_note(f"R-hat (rank-normalised, unrounded), bulk and tail ESS and MCSE of every one of the {len(p)} "
                  f"scalar parameters (ArviZ). Fail: R-hat above {th.max_rhat} or ESS below "
                  f"{th.min_ess_per_chain:g} per chain ({th.min_ess_per_chain * review.sampler.n_chains:.0f})."),
            html_table(_CONV_HEAD, _param_rows(top, _CONV_COLS), "convergence-worst"),
            figure_html(figs.rank_figure(idata, review, names, labels),
                         "Rank plots of the worst parameters (highest R-hat, lowest bulk ESS): bars should be "
                         "uniform in every chain"),
            figure_html(figs.trace_figure(idata, review, names, labels), "Trace plots of the same parameters"),
            f"<details><summary>All {len(p)} parameters</summary>{full}</details>"]


def _divergences(review: Review, idata, names) -> list[str]:
    p = review.parameters
    if "divergence_shift" not in p:
        return [_note("No divergent transitions (or no non-divergent ones to compare with): nothing to locate.")]
    top = p.reindex(p["divergence_shift"].abs().sort_values(ascending=False).index).head(LIST_ROWS)
    rows = _param_rows(top, [("divergence_shift", 2), ("mean", None), ("sd", None)])
    labels = list(top.index[:PAIR_PARAMETERS])
    return [_note("Where the divergent transitions sit: (mean over divergent draws - mean over the others) / "
                  "posterior sd, largest first. Divergences far out along a parameter point to a funnel or a "
                  "boundary there."),
            html_table(("Parameter", "Shift (sd)", "Mean", "SD"), rows, "divergence-table"),
            figure_html(figs.pair_figure(idata, review, names, labels), "Pair plot of the parameters along which the "
                 "divergences concentrate (divergent draws marked)")]


def _contraction(review: Review, th: Thresholds) -> list[str]:
    p = review.parameters
    if "contraction" not in p:
        return [_note("No prior moments: contraction not computed.")]
    w = th.warn
    un = p[p["contraction"] < w.contraction].sort_values("contraction")
    cols = [("prior_mean", None), ("prior_sd", None), ("mean", None), ("sd", None), ("contraction", 2), ("prior_z", 2)]
    head = ("Parameter", "Prior mean", "Prior sd", "Posterior mean", "Posterior sd", "Contraction", "z in prior")
    z = p["prior_z"].abs().sort_values(ascending=False)
    zf, zw = (conflict_z(a, int(z.notna().sum())) for a in (th.prior_conflict_alpha, w.prior_conflict_alpha))
    return [_note(f"Contraction 1 - var_post / var_prior per parameter on the sampler's scale: 0 = the data taught "
                  f"nothing, 1 = pinned down. {len(un)} of {p['contraction'].notna().sum()} parameters have "
                  f"contraction below {w.contraction} (prior-dominated). 'z in prior' is the posterior mean's "
                  f"distance from the prior mean in prior sds; beyond {zw:.1f} warns and beyond {zf:.1f} fails "
                  f"(prior-data conflict, Bonferroni over the parameters)."),
            figure_html(figs.contraction_figure(review, th.prior_conflict_alpha, w.prior_conflict_alpha,
                                                 w.contraction),
                         "Posterior z-score against contraction, per parameter (red: conflict limits)"),
            "<h3>Least informed by the data</h3>",
            html_table(head, _param_rows(un.head(LIST_ROWS), cols), "uninformed"),
            "<h3>Furthest into the prior's tail</h3>",
            html_table(head, _param_rows(p.reindex(z.index).head(LIST_ROWS), cols), "prior-conflict")]


def _ppc(review: Review, th: Thresholds) -> list[str]:
    if review.ppc is None:
        return [_note("Not computed.")]
    t = review.ppc.table
    n_rep = review.ppc.data.sizes["replicate"]
    m = int(t["p_value"].notna().sum())
    cut = ppc_cutoff(th.warn.ppc_alpha, m) if th.warn else float("nan")
    resolve = (f" {n_rep} replicates cannot resolve it (p moves in steps of 1/{n_rep}): a statistic beyond every "
               "replicate reads as p = 0 and is flagged." if n_rep < 1 / cut else "") if m and th.warn else ""

    def panels(check: str) -> list[tuple[str, pd.DataFrame]]:
        return [(str(stat), rows) for stat, rows in t[t["check"] == check].groupby("statistic", sort=False)]

    extreme = np.minimum(t["p_value"], 1 - t["p_value"])
    rows = [(r.check, r.statistic, str(r.subject), num(r.observed, 3), num(r.rep_q05, 3), num(r.rep_median, 3),
             num(r.rep_q95, 3), num(r.p_value, 3)) for r in t.assign(_e=extreme).sort_values("_e").itertuples()]
    return [_note(f"{n_rep} replicated samples of the whole sample period (posterior draws x paths), each "
                  "simulated forward from the draw's initial state distribution. p = P(replicated >= data); "
                  "near 0 or 1 the model misses that feature. States of the data: the posterior's modal "
                  "smoothed policy path. The verdict flags a statistic when p < c or p > 1 - c, with "
                  f"c = {num(cut)}: family-wise level {th.warn.ppc_alpha if th.warn else 'n/a'} over the {m} "
                  f"statistics (Bonferroni).{resolve}"),
            "<h3>Distribution of monthly changes (tails)</h3>",
            figure_html(figs.tails_figure(review), "Monthly changes: data (bars) and pooled replicates (line), "
                         "log density"),
            "<h3>Volatility clustering</h3>",
            figure_html(figs.acf_figure(review), "Autocorrelation of absolute monthly changes: data (points), "
                         "replicates (median and 5-95% band)"),
            "<h3>Policy state durations</h3>", figure_html(figs.interval_figure(panels("durations")),
                                                     "Share of months and mean spell length of each policy state"),
            "<h3>Cross-asset correlations within each policy state</h3>",
            figure_html(figs.interval_figure(panels("correlations")), "Within-state correlations of "
                 "monthly asset changes: data (points) and replicates (5-95%)"),
            "<h3>All statistics, most extreme first</h3>",
            html_table(("Check", "Statistic", "Subject", "Data", "Rep 5%", "Rep median", "Rep 95%", "p"), rows,
                        "ppc-table")]


def _loo(review: Review, th: Thresholds) -> list[str]:
    lo = review.loo
    if lo is None:
        return [_note("The run has no log_likelihood group: LOO-PIT not computed.")]
    k = lo.pareto_k
    hi = k[k > th.warn.pareto_k].sort_values(ascending=False)
    rows = [(str(s), num(p, 3)) for s, p in lo.ks_pvalue.items()]
    months = ", ".join(f"{d:%Y-%m} ({v:.2f})" for d, v in hi.items()) or "none"
    return [_note(f"PSIS-LOO, each month left out given every other month: elpd_loo {lo.elpd_loo:.1f} "
                  f"(se {lo.elpd_se:.1f}). LOO-PIT: the exact CDF of each observation given every other month, "
                  f"averaged over {lo.n_draws} posterior draws with PSIS leave-that-month-out weights; a calibrated "
                  "model gives uniform PITs (grey: 99% Kolmogorov-Smirnov band)."),
            figure_html(figs.loo_pit_figure(review), "LOO-PIT: ECDF minus uniform CDF per series"),
            html_table(("Series", "KS p-value"), rows, "loo-pit-table"),
            figure_html(figs.pareto_k_figure(review, th.warn.pareto_k), "Pareto k of each month (dashed: warn level)"),
            _note(f"Months with k > {th.warn.pareto_k}: {months}."), *_mixture(lo)]


def _mixture(lo) -> list[str]:
    mix = lo.mixture
    if mix is None:
        return []
    k = lo.pareto_k
    psis = lo.elpd_pointwise
    low = k[k <= PSIS_GOOD_K].index
    agree = (mix.elpd[low] - psis[low]).abs()
    order = k.sort_values(ascending=False).index[:(k > PSIS_GOOD_K).sum()]
    rows = [(f"{d:%Y-%m}", num(k[d], 2), num(psis[d], 2), num(mix.elpd[d], 2), num(mix.mcse[d], 3),
             num(mix.rhat[d], 3), num(mix.ess[d], 0), "yes" if lo.exact is not None and lo.exact[d] else "no")
            for d in order]
    return ["<h3>Mixture estimates where PSIS is unreliable</h3>",
            _note(f"The mixture of every month's leave-one-out posterior sampled once ({mix.n_draws} draws, "
                  f"{mix.divergences} divergences, worst parameter R-hat {mix.max_rhat_params:.3f}, "
                  f"{mix.wall_time_s:.0f} s; Silva and Zanella 2023). Its estimate replaces PSIS's where k is above "
                  f"the warn level and the month's R-hat and ESS meet the fit thresholds. Check: on the "
                  f"{len(low)} months with k <= {PSIS_GOOD_K}, where PSIS is reliable, the two differ by "
                  f"{num(agree.median(), 3)} nats in median (max {num(agree.max(), 3)})."),
            html_table(("Month", "Pareto k", "PSIS elpd", "mixture elpd", "MCSE", "R-hat", "ESS", "used"), rows,
                        "loo-mixture")]


def _thresholds(th: Thresholds) -> list[str]:
    rows = [(k, num(getattr(th, k))) for k in ("max_rhat", "min_ess_per_chain", "max_divergences", "min_bfmi",
                                                 "max_treedepth_share", "prior_conflict_alpha")]
    rows += [(f"warn.{k}", num(v)) for k, v in vars(th.warn).items()]
    return [_note("From models/diagnostics.toml (each with its source there)."),
            html_table(("Threshold", "Value"), rows, "thresholds-table")]
