"""The backtest report: ``reports/backtest/index.html`` and ``summary.json`` from the saved
origin records of a backtest (``regimecast.workflows.backtest``); it reads records only, never fits.

``build_summary`` aggregates the records (pure: dicts in, dict out): mean CRPS and log score
per method, series and horizon; CRPS skill 1 - CRPS_engine / CRPS_baseline against each
baseline over the origins both scored (with the paired mean difference and its standard
error); interval coverage; PIT histograms; Brier scores of the resolved events; the origins'
fit verdicts; and plain sentences saying where the engine is worse. ``write_backtest_report``
renders it (HTML conventions of :mod:`regimecast.report.forecast`: self-contained, PNG figures as
``data:`` URIs, a content-security policy that forbids any fetch, every text escaped) and
swaps the directory into place.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from regimecast.checks.verdict import HEADLINES, fit_level
from regimecast.scoring import scores as scoring
from regimecast.scoring.backtest import ENGINE
from regimecast.scoring.scores import INTERVALS
from regimecast.scoring.baselines import DESCRIPTIONS as BASELINE_DESCRIPTIONS
from regimecast.scoring.baselines import LABELS as BASELINE_LABELS
from regimecast.fit.sampler import SamplerSettings
from regimecast.store.atomic import replace_directory
from regimecast.report.format import MISSING, pct, short, signed
from regimecast.report.render import PALETTE, figure_html, html_table, new_figure, page, png, render_summary_json

HTML_FILE = "index.html"
SUMMARY_FILE = "summary.json"
TITLE = "Backtest: forecast calibration against baselines"
COVERAGE_LEVELS = tuple(np.round(np.arange(0.1, 0.91, 0.1), 2))   # nominal levels of the calibration plot
SE_MULTIPLE = 2.0     # a paired difference beyond this many standard errors is called clear
FIG_PIT_CELL = (2.6, 1.7)    # inches per panel of the PIT grid
FIG_ROW = (11.0, 3.2)


# =========================================================================================
# aggregation
# =========================================================================================

def build_summary(records: Mapping[str, dict], *, description: dict, config_hash: str, directory: str,
                  skipped: Mapping[str, str], unresolvable: Mapping[str, str], failed: Mapping[str, str],
                  reproduce: str) -> dict:
    """The report's content from origin records ``{origin: record}`` (see
    :func:`regimecast.scoring.backtest.score_origin`)."""
    recs = [records[o] for o in sorted(records)]
    if not recs:
        raise ValueError("no origin has a record: nothing to report")
    series, horizons = recs[0]["series"], [str(h) for h in recs[0]["horizons"]]
    methods = list(dict.fromkeys(m for r in recs for m in r["methods"]))
    base = [m for m in methods if m != ENGINE]
    trusted = [r for r in recs if r["trusted"]]
    summary = {
        "title": TITLE, "config_hash": config_hash, "directory": directory,
        "settings": description.get("settings", {}), "model": description.get("model", {}),
        "priors": description.get("priors", {}),
        "origins": [r["origin"] for r in recs], "series": series, "horizons": [int(h) for h in horizons],
        "methods": methods, "baselines": {m: BASELINE_LABELS.get(m, m) for m in base},
        "baseline_descriptions": {m: BASELINE_DESCRIPTIONS.get(m, m) for m in base},
        "origin_table": [_origin_row(r) for r in recs],
        "untrusted_origins": [r["origin"] for r in recs if not r["trusted"]],
        "skipped_origins": dict(skipped), "failed_origins": dict(failed),
        "unresolvable_events": dict(unresolvable),
        "crps": _means(recs, methods, series, horizons, "crps"),
        "log_score": _means(recs, methods, series, horizons, "log_score"),
        "skill": _skill(recs, base, series, horizons),
        "skill_trusted_only": _skill(trusted, base, series, horizons) if trusted else None,
        "coverage": _coverage(recs, methods, series, horizons),
        "pit": {m: {s: _pits(recs, m, s, horizons) for s in series} for m in methods},
        "brier": _brier(recs, methods),
        "reproduce": reproduce,
    }
    summary["pit_histogram"] = {m: {s: scoring.pit_histogram(p).tolist() for s, p in d.items()}
                                for m, d in summary["pit"].items()}
    summary["engine_worse"] = worse_statements(summary)
    return summary


def _cell(r: dict, m: str, s: str, h: str) -> dict | None:
    return r["scores"].get(m, {}).get(s, {}).get(h)


def _values(recs, m, s, h, key) -> list[float]:
    out = []
    for r in recs:
        c = _cell(r, m, s, h)
        if c is not None and c.get(key) is not None:
            out.append(float(c[key]))
    return out


def _means(recs, methods, series, horizons, key) -> dict:
    out: dict = {}
    for s in series:
        for h in horizons:
            for m in methods:
                v = _values(recs, m, s, h, key)
                out.setdefault(s, {}).setdefault(h, {})[m] = {"mean": float(np.mean(v)) if v else None, "n": len(v)}
    return out


def _skill(recs, base, series, horizons) -> dict:
    """CRPS skill against each baseline over the origins where both were scored, with the
    paired mean difference engine - baseline and its standard error (sd / sqrt(n))."""
    out: dict = {}
    for s in series:
        for h in horizons:
            for b in base:
                pairs = [(c_e["crps"], c_b["crps"]) for r in recs
                         if (c_e := _cell(r, ENGINE, s, h)) and (c_b := _cell(r, b, s, h))
                         and c_e.get("crps") is not None and c_b.get("crps") is not None]
                n = len(pairs)
                e, bb = (np.array([p[i] for p in pairs]) for i in (0, 1))
                d = e - bb
                out.setdefault(s, {}).setdefault(h, {})[b] = {
                    "skill": scoring.skill(e.mean(), bb.mean()) if n else None, "n": n,
                    "crps_engine": float(e.mean()) if n else None, "crps_baseline": float(bb.mean()) if n else None,
                    "mean_diff": float(d.mean()) if n else None,
                    "se_diff": float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else None}
    return out


def _coverage(recs, methods, series, horizons) -> dict:
    out: dict = {}
    for s in series:
        for h in horizons:
            for m in methods:
                cell = {}
                for lv in INTERVALS:
                    v = _values(recs, m, s, h, f"covered_{int(lv * 100)}")
                    cell[f"{int(lv * 100)}"] = float(np.mean(v)) if v else None
                    cell["n"] = len(v)
                out.setdefault(s, {}).setdefault(h, {})[m] = cell
    return out


def _pits(recs, m, s, horizons) -> list[float]:
    return [p for h in horizons for p in _values(recs, m, s, h, "pit")]


def _brier(recs, methods) -> dict:
    out: dict = {}
    names = list(dict.fromkeys(n for r in recs for n in r["events"]))
    for name in names:
        ev = [r["events"][name] for r in recs if name in r["events"] and r["events"][name]["resolved"]]
        horizon = next((r["events"][name]["horizon"] for r in recs if name in r["events"]), None)
        row = {"horizon": horizon, "n_resolved": len(ev),
               "observed_rate": float(np.mean([e["outcome"] for e in ev])) if ev else None, "methods": {}}
        for m in methods:
            b = [e["brier"][m] for e in ev if e["brier"].get(m) is not None]
            p = [e["prob"][m] for e in ev if e["prob"].get(m) is not None]
            row["methods"][m] = {"brier": float(np.mean(b)) if b else None,
                                 "mean_prob": float(np.mean(p)) if p else None, "n": len(b)}
        out[name] = row
    return out


def _origin_row(r: dict) -> dict:
    d = r["fit"].get("diagnostics", {})
    scored = sorted({int(h) for m in r["scores"].values() for s in m.values() for h, c in s.items()
                     if c.get("crps") is not None})
    return {"origin": r["origin"], "trusted": r["trusted"], "reasons": d.get("reasons", []),
            "max_rhat": d.get("max_rhat"), "min_ess_bulk": d.get("min_ess_bulk"),
            "divergences": d.get("divergences"), "fit_wall_time_s": r["fit"].get("wall_time_s"),
            "origin_wall_time_s": sum(v for v in r.get("timings_s", {}).values()),
            "horizons_scored": scored, "baseline_errors": r.get("errors", {})}


# =========================================================================================
# where the engine is worse
# =========================================================================================

def worse_statements(summary: Mapping) -> list[str]:
    """Plain sentences: every series and horizon where the engine's mean CRPS or log score is
    worse than a baseline's, its interval coverage is off by more than two binomial standard
    errors, and every event whose Brier score is worse than a baseline's."""
    out = []
    names = summary["baselines"]
    n_origins = len(summary["origins"])
    for s in summary["series"]:
        for h in (str(h) for h in summary["horizons"]):
            parts = []
            sk = summary["skill"][s][h]
            crps_worse = [f"{names[b]} (skill {v['skill']:+.3f}{_clear(v)})" for b, v in sk.items()
                          if v["skill"] is not None and v["skill"] < 0]
            if crps_worse:
                parts.append("CRPS worse than " + ", ".join(crps_worse))
            ls = summary["log_score"][s][h]
            e = ls[ENGINE]["mean"]
            ls_worse = [f"{names[b]} (by {e - v['mean']:.3g})" for b, v in ls.items()
                        if b != ENGINE and e is not None and v["mean"] is not None and e > v["mean"]]
            if ls_worse:
                parts.append("mean log score worse than " + ", ".join(ls_worse))
            cov = summary["coverage"][s][h][ENGINE]
            for lv in INTERVALS:
                key = f"{int(lv * 100)}"
                c, n = cov[key], cov["n"]
                if c is not None and n and abs(c - lv) > SE_MULTIPLE * math.sqrt(lv * (1 - lv) / n):
                    parts.append(f"its {key}% intervals held {c:.0%} of {n} outcomes "
                                 f"({'too narrow' if c < lv else 'too wide'})")
            if parts:
                out.append(f"{s}, {h} month{'s' if h != '1' else ''} ahead: " + "; ".join(parts) + ".")
    for name, row in summary["brier"].items():
        e = row["methods"].get(ENGINE, {}).get("brier")
        worse = [f"{names[m]} ({v['brier']:.3g})" for m, v in row["methods"].items()
                 if m != ENGINE and e is not None and v["brier"] is not None and v["brier"] < e]
        if worse:
            out.append(f"Event {name} ({row['n_resolved']} resolved): Brier score {e:.3g}, worse than "
                       + ", ".join(worse) + ".")
    if not out:
        out.append(f"Over these {n_origins} origins the engine is nowhere worse than the baselines by mean CRPS, "
                   "mean log score, interval coverage or Brier score.")
    return out


def _clear(v: Mapping) -> str:
    if v.get("se_diff") and abs(v["mean_diff"]) > SE_MULTIPLE * v["se_diff"]:
        return f", beyond {SE_MULTIPLE:g} standard errors"
    return ", within noise" if v.get("se_diff") else ""


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
    n, bad = len(summary["origins"]), summary["untrusted_origins"]
    body = [f"<h1>{e(TITLE)}</h1>",
            f'<p class="meta">Config <code>{e(summary["config_hash"])}</code> · {n} origins '
            f'{e(summary["origins"][0])} … {e(summary["origins"][-1])} · horizons '
            f'{e(", ".join(str(h) for h in summary["horizons"]))} months · seed {e(str(st.get("seed")))}</p>']
    sampler = (f"Each origin refits the model on the data up to that month only, with reduced sampler settings "
               f"({st.get('chains')} chains × {st.get('draws')} draws after {st.get('tune')} tuning steps; "
               f"{st.get('paths')} paths per draw from at most {st.get('max_draws')} draws). The production fit is "
               f"{SamplerSettings.chains} chains × {SamplerSettings.draws} draws after {SamplerSettings.tune}.")
    if bad:
        body.append(f'<div class="verdict fail" id="verdict" data-verdict="fail">&#9888; {len(bad)} of {n} origin '
                    f"fits did not pass the sampler diagnostics: their scores are included and flagged in the table "
                    f"of origins. {e(sampler)}</div>")
    else:
        body.append(f'<div class="verdict pass" id="verdict" data-verdict="pass">&#10004; Every origin\'s fit '
                    f"passed the sampler diagnostics. {e(sampler)}</div>")
    body += ["<h2>Where the engine is worse</h2>", "<ul id=\"worse\">"]
    body += [f"<li>{e(t)}</li>" for t in summary["engine_worse"]] + ["</ul>"]
    body.append('<p class="note">Differences are means over few origins; the standard error of a paired CRPS '
                "difference treats origins as independent, which overlapping horizons (longer than the spacing of "
                "origins) are not, so it is too small there.</p>")
    body += _skill_section(summary, names)
    body += _table_section("Mean CRPS", "crps", _metric_rows(summary, "crps", names), names, summary,
                           "Continuous ranked probability score in the units of each series (lower is better).")
    body += _table_section("Mean log score", "log-score", _metric_rows(summary, "log_score", names), names, summary,
                           "Minus the log predictive density of a Gaussian kernel density estimate of each "
                           "ensemble, in the series' level units (lower is better).")
    body += _coverage_section(summary, names)
    body += ["<h2>Calibration</h2>",
             '<p class="note">PIT histograms pool the horizons of each series; a calibrated forecast gives a flat '
             "histogram (the dashed line). The calibration curves plot the share of outcomes inside central "
             "intervals against their nominal level.</p>",
             figure_html(_pit_figure(summary, names), "PIT histograms by method and series"),
             figure_html(_calibration_figure(summary, names), "Calibration of central intervals")]
    body += _brier_section(summary, names)
    body += _origins_section(summary)
    body += ["<h2>Methods</h2>", "<ul>"]
    body += [f"<li>{e(t)}</li>" for t in _method_notes(summary)] + ["</ul>"]
    body += ["<h2>How to reproduce</h2>", f"<pre><code>{e(summary['reproduce'])}</code></pre>"]
    return page(TITLE, "\n".join(body))


def _skill_section(summary, names) -> list[str]:
    base = list(summary["baselines"])
    header = ("Series", "Horizon", "n", "Engine CRPS", *(f"skill vs {names[b]}" for b in base))
    rows = []
    for s in summary["series"]:
        for h in (str(h) for h in summary["horizons"]):
            sk = summary["skill"][s][h]
            eng = summary["crps"][s][h][ENGINE]
            rows.append((s, f"{h} m", str(eng["n"]), short(eng["mean"]),
                         *(_skill_cell(sk[b]) for b in base)))
    note = ("CRPS skill = 1 − CRPS_engine / CRPS_baseline over the origins both scored: positive means the engine "
            "is better. * marks a paired mean difference beyond two standard errors.")
    out = ["<h2>CRPS skill against the baselines</h2>", f'<p class="note">{html.escape(note)}</p>',
           figure_html(_skill_figure(summary, names), "CRPS skill by horizon"), html_table(header, rows, "skill")]
    if summary.get("skill_trusted_only"):
        rows_t = [(s, f"{h} m", *(_skill_cell(summary["skill_trusted_only"][s][str(h)][b]) for b in base))
                  for s in summary["series"] for h in summary["horizons"]]
        out += ["<h3>Over the origins whose fit passed the diagnostics only</h3>",
                html_table(("Series", "Horizon", *(f"skill vs {names[b]}" for b in base)), rows_t, "skill-trusted")]
    return out


def _skill_cell(v: Mapping) -> str:
    if v["skill"] is None:
        return MISSING
    star = "*" if v.get("se_diff") and abs(v["mean_diff"]) > SE_MULTIPLE * v["se_diff"] else ""
    return signed(v["skill"]) + star


def _metric_rows(summary, key, names):
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


def _coverage_section(summary, names) -> list[str]:
    header = ("Series", "Horizon", "n", *(names[m] for m in summary["methods"]))
    rows = []
    for s in summary["series"]:
        for h in (str(h) for h in summary["horizons"]):
            c = summary["coverage"][s][h]
            rows.append((s, f"{h} m", str(c[ENGINE]["n"]),
                         *(" / ".join(pct(c[m][f"{int(lv * 100)}"], 0) for lv in INTERVALS)
                           for m in summary["methods"])))
    note = ("Share of outcomes inside the central 50% / 90% intervals of each forecast (nominal 50% / 90%).")
    return ["<h2>Interval coverage</h2>", f'<p class="note">{html.escape(note)}</p>',
            html_table(header, rows, "coverage")]


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
    if summary["unresolvable_events"]:
        out += ["<p>Not scored: these scenarios can never resolve from market data.</p>",
                html_table(("Scenario", "Why"), list(summary["unresolvable_events"].items()), "unresolvable")]
    return out


def _origins_section(summary) -> list[str]:
    header = ("Origin", "Fit verdict", "Max R-hat", "Min bulk ESS", "Divergences", "Fit time (s)", "Horizons scored",
              "Baseline errors")
    rows = []
    for r in summary["origin_table"]:
        verdict = "; ".join([HEADLINES[fit_level(r)], *r["reasons"]])
        rows.append((r["origin"], verdict, short(r["max_rhat"]), short(r["min_ess_bulk"]), short(r["divergences"]),
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


# --- figures -------------------------------------------------------------------------------

def _colours(methods: Sequence[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


def _pit_figure(summary, names) -> bytes:
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


def _calibration_figure(summary, names) -> bytes:
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


def _skill_figure(summary, names) -> bytes:
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
