"""The narrative comparison report (``regimecast compare``): ``index.html``, ``compare.md`` and
``compare.json`` in ``reports/compare/<id>/``. The content mapping is built by
:func:`regimecast.workflows.run.compare`."""

from __future__ import annotations

import html
from pathlib import Path

from regimecast.checks.verdict import fit_headline
from regimecast.store import atomic
from regimecast.report.format import pct
from regimecast.report.render import html_table, jsonable, md_table, page, render_summary_json

HTML_FILE, MARKDOWN_FILE, JSON_FILE = "index.html", "compare.md", "compare.json"


def _sections(c: dict) -> list[tuple[str, list[str], list[list[str]], str]]:
    names = list(c["runs"])
    fit = []
    for n in names:
        lo, lf, d = c["loo"][n], c["lfo"][n], c["runs"][n]["diagnostics"]
        fit.append([n, c["runs"][n]["run_id"], f"{lo['elpd']:.1f} ± {lo['se']:.1f}",
                    f"{lo['elpd_diff']:.1f} ± {lo['dse']:.1f}", f"{c['weights'][n]:.2f}",
                    f"{lo['n_bad_k']} (max {lo['max_k']:.2f})", f"{lf['elpd']:.1f} ± {lf['se']:.1f}",
                    str(lf["n_bad_k"]), fit_headline(d)])
    scen = []
    for s, v in c["scenarios"].items():
        cells = [f"{pct(v['by_prior'][n]['mean'])} [{pct(v['by_prior'][n]['lo'])}, {pct(v['by_prior'][n]['hi'])}]"
                 for n in names]
        scen.append([s, *cells, f"{v['spread'] * 100:.1f} pp", pct(v["stacked"])])
    lfo_months = c["lfo"][names[0]]["months"]
    shifts = []
    for n, sh in c.get("shifts", {}).items():
        for r in sh["parameters"]:
            shifts.append([n, f"{r['block']} {r['label']}",
                           f"{_ms(r['prior'])} → {_ms(r['prior_narrative'])}",
                           f"{_ms(r['posterior'])} → {_ms(r['posterior_narrative'])}",
                           "—" if r["kept"] is None else f"{r['kept']:.2f}"])
    return [
        ("Which narrative the data favour",
         ["prior set", "run", "ELPD (PSIS-LOO)", "ELPD difference", "stacking weight", f"months with k > {c['pareto_k_warn']}",
          f"ELPD (LFO, last {lfo_months} months)", f"LFO origins with k > {c['pareto_k_warn']}", "diagnostics"], fit,
         "ELPD: expected log predictive density of the monthly observation vector (higher is better), with its "
         "standard error; the difference is to the best prior set with the SE of the difference. Stacking "
         "weights (ArviZ) combine the predictive distributions. LFO: one-step-ahead leave-future-out by "
         "Pareto-smoothed importance sampling from the full posterior; k above the threshold marks an unreliable "
         "approximation (shown, not refitted)."),
        ("Scenario and policy-state probabilities by narrative",
         ["scenario", *names, "spread across narratives", "stacking-weighted"], scen,
         "Posterior mean and 90% interval across posterior draws for each prior set; the spread is the largest "
         "minus the smallest mean: how much the answer depends on the narrative."),
        ("What the data kept of each narrative",
         ["prior set", "parameter", "prior: parent → narrative", "posterior: parent → narrative", "kept"], shifts,
         "Every parameter a narrative states differently from the prior set it extends, as mean ± sd on the scale "
         "its prior is stated on (log for sds), before and after the same data. Kept: the shift of the posterior "
         "mean over the shift of the prior mean; near 1 the data leave the narrative's tilt in place (the history "
         "cannot test it), near 0 they undo it."),
    ]


def _ms(pair) -> str:
    return f"{pair[0]:+.3g} ± {pair[1]:.2g}"


def render_html(c: dict) -> str:
    e = html.escape
    body = [f"<h1>{e('Narrative comparison: ' + ', '.join(c['runs']))}</h1>",
            f'<p class="meta">Data {e(c["data_start"])} to {e(c["data_end"])} · {e(c["settings"])}</p>']
    for heading, header, rows, note in _sections(c):
        body += [f"<h2>{e(heading)}</h2>", f'<p class="note">{e(note)}</p>', html_table(header, rows, None)]
    return page("regimecast compare", "\n".join(body))


def render_markdown(c: dict) -> str:
    lines = [f"# Narrative comparison: {', '.join(c['runs'])}", "",
             f"Data {c['data_start']} to {c['data_end']}; {c['settings']}", ""]
    for heading, header, rows, note in _sections(c):
        lines += [f"## {heading}", "", note, "", md_table(header, rows), ""]
    return "\n".join(lines)


def write_compare_report(out_dir: Path, content: dict) -> Path:
    """Write the three files (each atomically); returns the HTML path."""
    out_dir = Path(out_dir)
    atomic.write_text(out_dir / JSON_FILE, render_summary_json(jsonable(content, "compare")))
    atomic.write_text(out_dir / MARKDOWN_FILE, render_markdown(content))
    atomic.write_text(out_dir / HTML_FILE, render_html(content))
    return out_dir / HTML_FILE
