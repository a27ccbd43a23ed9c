"""Committee report: render already-computed results as HTML, Markdown and summary.json.

This module computes no model quantity: it formats what the forecast stage saved
(``ReportContent``) and writes ``index.html`` (self-contained: inline CSS, PNG figures as
``data:`` URIs, a content-security policy that forbids any network fetch), ``report.md``
(the same tables, for a terminal) and ``summary.json`` (the machine-readable summary).

The three files are written together: into a hidden temporary sibling directory first, and
only when everything rendered and was written is an existing report moved aside, the new
one renamed into place and the old one deleted. A failure at any point before the swap
leaves the previous report untouched.

Figures use Matplotlib's Agg canvas through the object API (``Figure``), never pyplot, so
rendering neither switches the caller's backend (a notebook keeps its own) nor leaves open
figures behind.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.checks.verdict import fit_headline
from regimecast.store import atomic
from regimecast.report.format import finite, num, pct, pp
from regimecast.report.render import (PALETTE, ReportError, Row, diagnostics_line, figure_html, fit_verdict_html,
                                      html_table, md, md_code, md_fence, md_table, new_figure, page, png,
                                      render_summary_json)

# --- files -------------------------------------------------------------------------------
HTML_FILE = "index.html"
MARKDOWN_FILE = "report.md"
SUMMARY_FILE = "summary.json"

# --- fan charts --------------------------------------------------------------------------
MEDIAN_QUANTILE = 0.5
# (lower quantile, upper quantile, label, fill alpha), widest first so narrower bands draw on top
FAN_BANDS = (
    (0.025, 0.975, "95%", 0.15),
    (0.1, 0.9, "80%", 0.25),
    (0.25, 0.75, "50%", 0.40),
)
QUANTILE_TOLERANCE = 1e-9  # matching of the fan's float quantile coordinate
FAN_SERIES_PER_ROW = 2  # the 2x2 grid
FAN_COLOUR = "#0072B2"
HISTORY_COLOUR = "#222222"

# --- figures -----------------------------------------------------------------------------
FAN_FIGSIZE = (11.0, 7.5)  # inches, whole 2x2 grid
POLICY_BARS_FIGSIZE = (7.5, 4.0)
SMOOTHED_FIGSIZE = (11.0, 2.8)
POLICY_SMOOTHED_FIGSIZE = (11.0, 5.6)  # area chart plus the episodes strip
EPISODE_STRIP_HEIGHT_RATIO = 0.9  # strip height relative to the area chart (= 1)
EPISODE_BAR_HEIGHT = 0.7  # bar thickness in strip rows (one row = 1)
BAR_LABEL_MIN_SHARE = 0.07  # label a stacked-bar segment with its % only above this share

# --- factor learning ---------------------------------------------------------------------
# Posterior contraction 1 - post_sd^2 / prior_sd^2, median over a factor's parameters: at or
# below ReportContent.contraction_prior_dominates (``warn.contraction`` of
# models/diagnostics.toml) the data taught the factor little; at or above this, the data
# dominate the prior (this report's wording, no published cutoff).
CONTRACTION_DATA_DOMINATE = 0.5

@dataclass(frozen=True)
class ReportContent:
    """Everything the report shows, already computed. Probabilities are in [0, 1].

    summary: written verbatim (floats rounded) as summary.json: ``run_id``, ``data_end``
        (YYYY-MM), ``horizon_months``, ``scenarios`` {name: {mean, lo, hi, mcse,
        description}} (lo/hi: 90% credible interval across posterior draws; mcse: Monte
        Carlo standard error), ``policy`` {horizon months as str: {state: prob}},
        ``quantiles`` {series: {horizon: {q: value}}}, ``diagnostics`` {max_rhat,
        min_ess_bulk, min_ess_tail, divergences, min_bfmi, trusted, reasons}.
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
    _validate(content)
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
    _validate(content)
    s = content.summary
    e = html.escape
    body = [f"<h1>{e(content.title)}</h1>",
            f'<p class="meta">Run <code>{e(str(s["run_id"]))}</code> · data to {e(str(s["data_end"]))}'
            f" · horizon {int(s['horizon_months'])} months</p>",
            fit_verdict_html(s["diagnostics"])]
    figures = _figures(content)
    for heading, header, rows, note in _sections(content):
        body.append(f"<h2>{e(heading)}</h2>")
        if note:
            body.append(f'<p class="note">{e(note)}</p>')
        body += [figure_html(png, alt) for png, alt in figures.get(heading, ())]
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
_SECTION_IDS = {_SCENARIOS: "scenarios", _POLICY: "policy", _CONDITIONAL: "conditional",
                _DIAGNOSTICS: "diagnostics", _PROVENANCE: "provenance"}

Section = tuple[str, Sequence[str], Sequence[Row], str]


def _sections(content: ReportContent) -> list[Section]:
    return [_scenario_section(content), _policy_section(content), _fan_section(content),
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
    horizons = _sorted_horizons(policy)
    states = _policy_states(content)
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
                     _level(content, s, _q(q, MEDIAN_QUANTILE)),
                     f"{_level(content, s, _q(q, lo))} – {_level(content, s, _q(q, hi))}"))
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


# =========================================================================================
# figures: one function per figure, each returns PNG bytes
# =========================================================================================

def _figures(content: ReportContent) -> dict[str, list[tuple[bytes, str]]]:
    """Section heading -> [(png, alt text)]."""
    smoothed = [(_smoothed_figure(content, f), f"Smoothed {f} state probabilities") for f in content.smoothed]
    return {_POLICY: [(_policy_bars_figure(content), "Policy state probabilities by horizon")],
            _FANS: [(_fan_figure(content), "Fan charts of the four assets")],
            _SMOOTHED: smoothed}


def _policy_bars_figure(content: ReportContent) -> bytes:
    policy = content.summary["policy"]
    horizons = _sorted_horizons(policy)
    states = _policy_states(content)
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
        ax.fill_between(dates, joined(_q(fan, lo)), joined(_q(fan, hi)), color=FAN_COLOUR,
                        alpha=alpha, linewidth=0, label=f"{label} band")
    ax.plot(dates, joined(_q(fan, MEDIAN_QUANTILE)), color=FAN_COLOUR, linewidth=1.6, label="median")
    ax.plot(hist_dates, hist.values, color=HISTORY_COLOUR, linewidth=1.1, label="history")
    if hist.size:
        ax.axvline(hist_dates[-1], color="#888888", linestyle=":", linewidth=1)
    ax.set_title(_label(content, series), fontsize=10)
    ax.grid(alpha=0.3)


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
        _draw_episode_strip(strip, content.episodes, _policy_states(content))
    return png(fig)


def _draw_episode_strip(ax, episodes: Iterable[tuple[str, str, str]], states: Sequence[str]) -> None:
    """One row per state (same order and colours as the area chart), a bar per episode."""
    from matplotlib.dates import date2num

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


# =========================================================================================
# helpers
# =========================================================================================

def _percent_formatter():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def _state_colours(states: Sequence[str]) -> dict[str, str]:
    return {st: PALETTE[i % len(PALETTE)] for i, st in enumerate(states)}


def _policy_states(content: ReportContent) -> list[str]:
    """Policy states in the model's order (the smoothed chart's), then any others seen."""
    states: list[str] = []
    if content.policy_factor in content.smoothed:
        states += [str(s) for s in content.smoothed[content.policy_factor]["state"].values]
    for probs in content.summary["policy"].values():
        states += [s for s in probs if s not in states]
    states += [ep[0] for ep in content.episodes if ep[0] not in states]
    return list(dict.fromkeys(states))


def _sorted_horizons(policy: Mapping[str, object]) -> list[str]:
    return sorted(policy, key=lambda h: float(h))


def _q(da: xr.DataArray, q: float) -> np.ndarray | float:
    vals = da.sel(quantile=q, method="nearest", tolerance=QUANTILE_TOLERANCE).values
    return float(vals) if np.ndim(vals) == 0 else np.asarray(vals, dtype=float)


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


# --- validation --------------------------------------------------------------------------

_SUMMARY_KEYS = ("run_id", "data_end", "horizon_months", "scenarios", "policy", "quantiles", "diagnostics")
_SCENARIO_KEYS = ("mean", "lo", "hi", "mcse")
_DIAGNOSTIC_KEYS = ("max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi", "trusted", "reasons")


def _validate(content: ReportContent) -> None:
    s = content.summary
    _require(s, _SUMMARY_KEYS, "summary")
    _require(s["diagnostics"], _DIAGNOSTIC_KEYS, "summary.diagnostics")
    for name, sc in s["scenarios"].items():
        _require(sc, _SCENARIO_KEYS, f"summary.scenarios.{name}")
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
