"""The backtest report: ``reports/backtest/index.html`` and ``summary.json`` from the saved
origin records of a backtest (``regimecast.workflows.backtest``); it reads records only, never fits.

:func:`regimecast.scoring.backtest_summary.build_summary` aggregates the records;
``write_backtest_report`` renders the summary (HTML conventions of :mod:`regimecast.report.render`; figures
:mod:`regimecast.report.backtest_figures`; the per-split and policy sections
:mod:`regimecast.report.backtest_sections`: self-contained, PNG figures as
``data:`` URIs, a content-security policy that forbids any fetch, every text escaped) and
swaps the directory into place.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

from regimecast.checks.verdict import HEADLINES, fit_level
from regimecast.fit.sampler import SamplerSettings
from regimecast.report.backtest_figures import calibration_figure, pit_figure, reliability_panels, skill_figure
from regimecast.report.backtest_sections import (SPLIT_NAMES, coverage_header, coverage_note, coverage_rows,
                                                 policy_section, skill_header, skill_rows, split_section)
from regimecast.report.format import MISSING, pct, short
from regimecast.report.render import figure_html, html_table, page, render_summary_json
from regimecast.scoring.backtest import ENGINE
from regimecast.scoring.backtest_summary import TITLE
from regimecast.scoring.paired import ALPHA, KERNEL, UNIFORM
from regimecast.store.atomic import replace_directory

HTML_FILE = "index.html"
SUMMARY_FILE = "summary.json"


# =========================================================================================
# rendering
# =========================================================================================

def write_backtest_report(out_dir: Path, summary: dict) -> Path:
    """Write ``index.html`` and ``summary.json`` into ``out_dir`` (rendered in memory, staged
    in a hidden sibling, swapped into place: a failure leaves a previous report untouched)."""
    files = {SUMMARY_FILE: render_summary_json(_without_raw(summary)), HTML_FILE: render_html(summary)}
    return replace_directory(out_dir, files, keep_others=False)


def _without_raw(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "pit"} | {"pit_values": summary["pit"]}


def render_html(summary: Mapping) -> str:
    e = html.escape
    st = summary["settings"]
    names = {ENGINE: "Engine", **summary["baselines"]}
    n, bad, k = len(summary["origins"]), summary["untrusted_origins"], summary["n_scored_origins"]
    body = [f"<h1>{e(TITLE)}</h1>",
            f'<p class="meta">Config <code>{e(summary["config_hash"])}</code> · {n} origins '
            f'{e(summary["origins"][0])} … {e(summary["origins"][-1])} · horizons '
            f'{e(", ".join(str(h) for h in summary["horizons"]))} months · seed {e(str(st.get("seed")))}</p>']
    sampler = (f"Each origin refits the model on the data up to that month only "
               f"({st.get('chains')} chains × {st.get('draws')} draws after {st.get('tune')} tuning steps; "
               f"{st.get('paths')} paths per draw from at most {st.get('max_draws')} draws). The production fit is "
               f"{SamplerSettings.chains} chains × {SamplerSettings.draws} draws after {SamplerSettings.tune}.")
    if bad:
        body.append(f'<div class="verdict fail" id="verdict" data-verdict="fail">&#9888; {len(bad)} of {n} origin '
                    f"fits did not pass the sampler diagnostics and were excluded from every score on this page "
                    f"(CRPS, log score, skill, coverage, PIT, event and policy Brier scores): {k} of {n} origins are "
                    f"scored. Excluded: {e(', '.join(bad))} (see the table of origins). {e(sampler)}</div>")
    else:
        body.append(f'<div class="verdict pass" id="verdict" data-verdict="pass">&#10004; Every origin\'s fit '
                    f"passed the sampler diagnostics: all {n} origins are scored. {e(sampler)}</div>")
    body += ["<h2>Where the engine is worse</h2>", "<ul id=\"worse\">"]
    body += [f"<li>{e(t)}</li>" for t in summary["engine_worse"]] + ["</ul>"]
    body.append(f'<p class="note">{e(_paired_note(summary))}</p>')
    body += _skill_section(summary, names)
    body += _table_section("Mean CRPS", "crps", _metric_rows(summary, "crps"), names, summary,
                           "Continuous ranked probability score in the units of each series (lower is better).")
    body += _table_section("Mean log score", "log-score", _metric_rows(summary, "log_score"), names, summary,
                           "Minus the log predictive density of a Gaussian kernel density estimate of each "
                           "ensemble, in the series' level units (lower is better).")
    body += ["<h2>Interval coverage</h2>", f'<p class="note">{e(coverage_note(summary))}</p>',
             html_table(coverage_header(summary, names), coverage_rows(summary, summary), "coverage")]
    body += ["<h2>Calibration</h2>",
             '<p class="note">PIT histograms pool the horizons of each series; a calibrated forecast gives a flat '
             "histogram (the dashed line). The calibration curves plot the share of outcomes inside central "
             "intervals against their nominal level.</p>",
             figure_html(pit_figure(summary, names), "PIT histograms by method and series"),
             figure_html(calibration_figure(summary, names), "Calibration of central intervals")]
    body += split_section(summary, names)
    body += _brier_section(summary, names)
    body += policy_section(summary)
    body += _origins_section(summary)
    body += ["<h2>Methods</h2>", "<ul>"]
    body += [f"<li>{e(t)}</li>" for t in _method_notes(summary)] + ["</ul>"]
    body += ["<h2>How to reproduce</h2>", f"<pre><code>{e(summary['reproduce'])}</code></pre>"]
    return page(TITLE, "\n".join(body))


def _paired_note(summary) -> str:
    window = ("a rectangular window (Bartlett weights where its variance is not positive)" if KERNEL == UNIFORM
              else "Bartlett weights")
    spacing = summary["origin_spacing_months"]
    return (f"Paired differences between the engine and a baseline are tested with the Diebold-Mariano test: the "
            f"HAC standard error of the mean difference over L = ceil(h / s) - 1 lags, h the horizon and s = "
            f"{spacing if spacing is not None else 'n/a'} months between origins (the outcome windows of longer "
            f"horizons overlap), {window}, the Harvey-Leybourne-Newbold small-sample correction and Student-t with "
            f"n - 1 degrees of freedom; p < {ALPHA:g} is called beyond noise. Differences are means over few origins.")


def _skill_section(summary, names) -> list[str]:
    note = ("CRPS skill = 1 − CRPS_engine / CRPS_baseline over the origins both scored: positive means the "
            f"engine is better; p is the Diebold-Mariano p-value of the paired difference, * marks p < {ALPHA:g}.")
    return ["<h2>CRPS skill against the baselines</h2>", f'<p class="note">{html.escape(note)}</p>',
            figure_html(skill_figure(summary, names), "CRPS skill by horizon"),
            html_table(skill_header(summary, names), skill_rows(summary, summary), "skill")]


def _metric_rows(summary, key):
    rows = []
    for s in summary["series"]:
        for h in (str(h) for h in summary["horizons"]):
            d = summary[key][s][h]
            rows.append((s, f"{h} m", str(d[ENGINE]["n"]), *(short(d[m]["mean"]) for m in summary["methods"])))
    return rows


def _table_section(title, ident, rows, names, summary, note) -> list[str]:
    header = ("Series", "Horizon", "n", *(names[m] for m in summary["methods"]))
    return [f"<h2>{html.escape(title)}</h2>", f'<p class="note">{html.escape(note)}</p>',
            html_table(header, rows, ident)]


def _brier_section(summary, names) -> list[str]:
    methods = summary["methods"]
    header = ("Event", "Horizon", "Resolved", "Observed rate", *(names[m] for m in methods))
    rows = [(name, f"{r['horizon']} m", str(r["n_resolved"]), pct(r["observed_rate"], 0),
             *(short(r["methods"][m]["brier"]) if r["methods"].get(m) else MISSING for m in methods))
            for name, r in summary["brier"].items()]
    out = ["<h2>Scenario events: Brier scores</h2>",
           '<p class="note">Mean Brier score (p − outcome)² over the origins at which each event has resolved, for '
           "events decidable from observed market data. The univariate baselines simulate each series on its own, "
           "so their probability of a joint event assumes the series independent.</p>",
           html_table(header, rows, "brier")]
    rel = summary.get("event_reliability") or {}
    if any(v["n"] for v in rel.values()):
        out += ['<p class="note">Reliability of the event probabilities: every resolved (event, origin) pair '
                "pooled, binned by forecast probability; a calibrated method lies on the diagonal.</p>",
                figure_html(reliability_panels({f"{names[m]} (n = {v['n']})": v["bins"] for m, v in rel.items()}),
                            "Reliability of the scenario-event probabilities")]
    if summary["unresolvable_events"]:
        out += ["<p>Not scored: these scenarios can never resolve from market data.</p>",
                html_table(("Scenario", "Why"), list(summary["unresolvable_events"].items()), "unresolvable")]
    return out


def _origins_section(summary) -> list[str]:
    header = ("Origin", "Set", "Scored", "Fit verdict", "Max R-hat", "Min bulk ESS", "Divergences", "Fit time (s)",
              "Horizons scored", "Baseline errors")
    rows = []
    for r in summary["origin_table"]:
        verdict = "; ".join([HEADLINES[fit_level(r)], *r["reasons"]])
        rows.append((r["origin"], SPLIT_NAMES[r["split"]], "yes" if r["trusted"] else "no: fit untrusted",
                     verdict, short(r["max_rhat"]), short(r["min_ess_bulk"]), short(r["divergences"]),
                     short(r["fit_wall_time_s"]), ", ".join(str(h) for h in r["horizons_scored"]) or "none",
                     "; ".join(f"{k}: {v}" for k, v in r["baseline_errors"].items()) or "none"))
    out = ["<h2>Origins</h2>", html_table(header, rows, "origins")]
    if summary["skipped_origins"]:
        out += ["<p>Origins not run:</p>",
                html_table(("Origin", "Why"), list(summary["skipped_origins"].items()), "skipped")]
    if summary["failed_origins"]:
        out += ['<p class="verdict fail">Origins that failed (rerun the command to retry them):</p>',
                html_table(("Origin", "Error"), list(summary["failed_origins"].items()), "failed")]
    return out


def _method_notes(summary) -> list[str]:
    return [
        "Engine: the regime-switching model refitted at each origin on the data up to the origin month "
        "(the panel is rebuilt with end = origin), then simulated forward; levels h months after the origin month.",
        *(f"{summary['baselines'][name]}: {text}; fitted per series on the engine's sample months up to the "
          "origin and simulated on the series' monthly increments (y10: percentage-point changes; prices and VIX: "
          "log returns)." for name, text in summary["baseline_descriptions"].items()),
        "Scores: CRPS from the ensemble (scoringrules, probability-weighted-moment estimator = the fair "
        "estimator); log score from a Gaussian kernel density estimate (Silverman's bandwidth); PIT = share of the "
        "ensemble below the outcome; outcomes are the realised monthly levels h months after each origin month.",
        "Data: today's vintage of every file. Market series are not revised; the macro series the engine also "
        "uses (CPI, the Fed's balance sheet) can be, so the engine may see slightly revised history.",
    ]
