"""Committee report: render already-computed results as HTML, Markdown and summary.json.

This module computes no model quantity: it formats what the forecast stage saved
(``ReportContent``) and writes ``index.html`` (self-contained: inline CSS, PNG figures as
``data:`` URIs, a content-security policy that forbids any network fetch), ``report.md``
(the same tables, for a terminal) and ``summary.json`` (the machine-readable summary).

The three files are written together: into a hidden temporary sibling directory first, and
only when everything rendered and was written is an existing report moved aside, the new
one renamed into place and the old one deleted. A failure at any point before the swap
leaves the previous report untouched.

The content and its checks are :mod:`regimecast.report.forecast_schema`; the figures
:mod:`regimecast.report.forecast_figures`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from regimecast.checks.verdict import fit_headline
from regimecast.report.format import finite, num, pct, pp
from regimecast.report.forecast_figures import figures
from regimecast.report.forecast_market import HEADING as _MARKET
from regimecast.report.forecast_market import market_section
from regimecast.report.forecast_schema import (FAN_BANDS, MEDIAN_QUANTILE, ReportContent, policy_states, quantile_at,
                                               sorted_horizons, validate)
from regimecast.report.render import (Row, diagnostics_line, figure_html, fit_verdict_html, html_table, md, md_code,
                                      md_fence, md_table, page, render_summary_json)
from regimecast.store import atomic

# --- files -------------------------------------------------------------------------------
HTML_FILE = "index.html"
MARKDOWN_FILE = "report.md"
SUMMARY_FILE = "summary.json"

# --- factor learning ---------------------------------------------------------------------
# Posterior contraction 1 - post_sd^2 / prior_sd^2, median over a factor's parameters: at or
# below ReportContent.contraction_prior_dominates (``warn.contraction`` of
# models/diagnostics.toml) the data taught the factor little; at or above this, the data
# dominate the prior (this report's wording, no published cutoff).
CONTRACTION_DATA_DOMINATE = 0.5

# =========================================================================================
# public API
# =========================================================================================

def write_report(out_dir: Path, content: ReportContent) -> Path:
    """Write ``index.html``, ``report.md`` and ``summary.json`` into ``out_dir``; return it.

    Everything is rendered in memory first, written to a hidden ``.tmp-<name>.*`` sibling,
    then swapped in (:func:`regimecast.store.atomic.replace_directory`). Other files in ``out_dir`` (another command's,
    e.g. ``diagnostics.html``) are carried over.
    """
    files = {SUMMARY_FILE: render_summary_json(content.summary),
             MARKDOWN_FILE: render_markdown(content),
             HTML_FILE: render_html(content)}
    return atomic.replace_directory(out_dir, files, keep_others=True)


def posterior_contraction(prior_sd: float, post_sd: float) -> float:
    """1 - post_sd² / prior_sd²: 0 when the data taught nothing, 1 when they pinned the
    parameter down (negative if the posterior is wider than the prior). NaN if prior_sd is 0."""
    if not prior_sd or not math.isfinite(prior_sd) or not math.isfinite(post_sd):
        return float("nan")
    return 1.0 - (post_sd / prior_sd) ** 2


def contraction_sentence(factor: str, parameters: Sequence[Mapping], prior_dominates: float) -> str:
    """A plain sentence on how much the data informed ``factor``, from the median posterior
    contraction of its parameters against ``prior_dominates`` / CONTRACTION_DATA_DOMINATE."""
    values = [posterior_contraction(p["prior_sd"], p["post_sd"]) for p in parameters]
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return f"No parameter of the {factor} factor has a usable prior and posterior spread."
    median = float(np.median(values))
    low, high = prior_dominates, CONTRACTION_DATA_DOMINATE
    if median <= low:
        verdict, rule = "little", f"≤ {low:g} means the prior dominates"
    elif median >= high:
        verdict, rule = "strongly", f"≥ {high:g} means the data dominate the prior"
    else:
        verdict, rule = "moderately", f"between {low:g} and {high:g}: prior and data both matter"
    return (f"The data informed the {factor} factor {verdict}: median posterior contraction "
            f"{median:.2f} over {len(values)} parameter{'s' if len(values) != 1 else ''} ({rule}).")


def render_markdown(content: ReportContent) -> str:
    """The report's tables in Markdown (no figures), readable in a terminal."""
    validate(content)
    s = content.summary
    d = s["diagnostics"]
    parts = [f"# {md(content.title)}", "",
             f"Run `{md_code(s['run_id'])}` · data to {md(s['data_end'])} · horizon {s['horizon_months']} months", ""]
    if d["trusted"]:
        parts += [f"**Verdict: {fit_headline(d)}.** {md(diagnostics_line(d))}", ""]
    else:
        parts += [f"**Verdict: {fit_headline(d)}.** The sampler diagnostics failed:", ""]
        parts += [f"- {md(r)}" for r in d["reasons"]] + [""]
    for heading, header, rows, note in _sections(content):
        parts += [f"## {heading}", ""]
        if note:
            parts += [md(note), ""]
        if header:
            parts += [md_table(header, rows), ""]
    parts += ["## How to reproduce", "", md_fence(content.reproduce), ""]
    return "\n".join(parts)


def render_html(content: ReportContent) -> str:
    """The self-contained committee report as one HTML document."""
    validate(content)
    s = content.summary
    e = html.escape
    body = [f"<h1>{e(content.title)}</h1>",
            f'<p class="meta">Run <code>{e(str(s["run_id"]))}</code> · data to {e(str(s["data_end"]))}'
            f" · horizon {int(s['horizon_months'])} months</p>",
            fit_verdict_html(s["diagnostics"])]
    figs = {_SECTION_FIGURES.get(k, k): v for k, v in figures(content).items()}
    for heading, header, rows, note in _sections(content):
        body.append(f"<h2>{e(heading)}</h2>")
        if note:
            body.append(f'<p class="note">{e(note)}</p>')
        body += [figure_html(png, alt) for png, alt in figs.get(heading, ())]
        if header:
            body.append(html_table(header, rows, _SECTION_IDS.get(heading)))
    body += ["<h2>How to reproduce</h2>", f"<pre><code>{e(content.reproduce)}</code></pre>"]
    return page(content.title, "\n".join(body))


# =========================================================================================
# sections: (heading, table header, table rows, note) shared by HTML and Markdown
# =========================================================================================

_SCENARIOS = "Scenario probabilities"
_POLICY = "Fed policy state by horizon"
_FANS = "Asset forecasts"
_SMOOTHED = "Regime history"
_FACTORS = "What the data taught the model"
_CONDITIONAL = "Asset forecasts given each scenario"
_DIAGNOSTICS = "Sampler diagnostics"
_PROVENANCE = "Data provenance"
_SECTION_FIGURES = {"policy": _POLICY, "market": _MARKET, "fans": _FANS, "smoothed": _SMOOTHED}   # figures' keys
_SECTION_IDS = {_SCENARIOS: "scenarios", _POLICY: "policy", _MARKET: "market", _CONDITIONAL: "conditional",
                _DIAGNOSTICS: "diagnostics", _PROVENANCE: "provenance"}

Section = tuple[str, Sequence[str], Sequence[Row], str]


def _sections(content: ReportContent) -> list[Section]:
    market = [market_section(content.summary["market_path"])] if "market_path" in content.summary else []
    return [_scenario_section(content), _policy_section(content), *market, _fan_section(content),
            _smoothed_section(content), *_factor_sections(content), _conditional_section(content),
            _diagnostics_section(content), _provenance_section(content)]


def _scenario_section(content: ReportContent) -> Section:
    header = ("Scenario", "Description", "Probability", "90% interval", "MCSE")
    rows = [(name, str(sc.get("description", "")), pct(sc["mean"]),
             f"{pct(sc['lo'])} – {pct(sc['hi'])}", f"{pp(sc['mcse'])} pp")
            for name, sc in content.summary["scenarios"].items()]
    note = ("Posterior mean probability of each scenario over the horizon; the interval spans the "
            "middle 90% across posterior draws; MCSE is the Monte Carlo standard error in percentage points.")
    return _SCENARIOS, header, rows, note


def _policy_section(content: ReportContent) -> Section:
    policy = content.summary["policy"]
    horizons = sorted_horizons(policy)
    states = policy_states(content)
    header = ("State", *(f"{h} months" for h in horizons))
    rows = [(st, *(pct(policy[h].get(st, 0.0)) for h in horizons)) for st in states]
    return _POLICY, header, rows, "Probability of each policy state at each horizon (months ahead)."


def _fan_section(content: ReportContent) -> Section:
    lo, hi, band = FAN_BANDS[0][:3]
    when = pd.Timestamp(content.fan["date"].values[-1]).strftime("%b %Y")
    header = ("Series", "Last observed", f"Median, {when}", f"{band} band, {when}")
    rows = []
    for s in content.fan["series"].values:
        q = content.fan.sel(series=s).isel(horizon=-1)
        last = content.history.sel(series=s).dropna("date")
        rows.append((_label(content, s), _level(content, s, float(last[-1])) if last.size else "n/a",
                     _level(content, s, quantile_at(q, MEDIAN_QUANTILE)),
                     f"{_level(content, s, quantile_at(q, lo))} – {_level(content, s, quantile_at(q, hi))}"))
    bands = "/".join(b[2] for b in reversed(FAN_BANDS))
    note = f"History with the forecast median and {bands} bands; the table gives the last forecast month."
    return _FANS, header, rows, note


def _smoothed_section(content: ReportContent) -> Section:
    note = ("Posterior-mean smoothed probability of each factor's states over the sample. "
            "The strip under the policy chart shows the Fed's recorded policy episodes for reference.")
    return _SMOOTHED, (), (), note


def _factor_sections(content: ReportContent) -> list[Section]:
    out = []
    for factor, info in content.factor_info.items():
        now = ", ".join(f"{st} {pct(p)}" for st, p in info.get("now", {}).items())
        header = ("Parameter", "Prior mean", "Prior sd", "Posterior mean", "Posterior sd", "Contraction")
        rows = [(p["name"], num(p["prior_mean"]), num(p["prior_sd"]), num(p["post_mean"]),
                 num(p["post_sd"]), num(posterior_contraction(p["prior_sd"], p["post_sd"]), 2))
                for p in info.get("parameters", [])]
        note = f"{contraction_sentence(factor, info.get('parameters', []), content.contraction_prior_dominates)} Now (last month): {now or 'n/a'}."
        out.append((f"{_FACTORS}: {factor}", header, rows, note))
    return out


def _conditional_section(content: ReportContent) -> Section:
    header = ("Scenario", "Series", "5%", "Median", "95%")
    rows = []
    for name in content.summary["scenarios"]:
        by_series = content.conditional.get(name) or {}
        if not by_series:
            rows.append((name, "too few simulated paths in this scenario to condition on", "–", "–", "–"))
        for s, q in by_series.items():
            rows.append((name, _label(content, s),
                         *(_level(content, s, q[k]) for k in ("q05", "q50", "q95"))))
    note = "Distribution of each asset at the scenario's horizon over the simulated paths in which the scenario occurs."
    return _CONDITIONAL, header, rows, note


def _diagnostics_section(content: ReportContent) -> Section:
    d = content.summary["diagnostics"]
    rows = [("Max R-hat", num(d["max_rhat"], 3)), ("Min bulk ESS", num(d["min_ess_bulk"], 0)),
            ("Min tail ESS", num(d["min_ess_tail"], 0)), ("Divergences", num(d["divergences"], 0)),
            ("Min BFMI", num(d["min_bfmi"], 2)), ("Verdict", fit_headline(d))]
    rows += [("Reason", r) for r in d["reasons"]]
    return _DIAGNOSTICS, ("Check", "Value"), rows, ""


def _provenance_section(content: ReportContent) -> Section:
    header = ("Series", "FRED id", "File", "SHA-256", "First", "Last")
    keys = ("fred_id", "file", "sha256", "first", "last")
    rows = [(s, *(str(p.get(k, "")) for k in keys)) for s, p in content.provenance.items()]
    return _PROVENANCE, header, rows, ""


def _label(content: ReportContent, series: str) -> str:
    return content.labels.get(str(series), str(series))


def _level(content: ReportContent, series: str, x: float) -> str:
    """An asset level in its natural units: rates with 2 decimals, others by magnitude."""
    if not finite(x):
        return "n/a"
    x = float(x)
    if str(series) in content.rate_series or abs(x) < 10:
        return f"{x:.2f}"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.1f}"


