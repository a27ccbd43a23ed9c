"""The update report: what moved between a parent run and its child (``regimecast update``).

Written as ``update.html``, ``update.md`` and ``update.json`` in ``reports/<child run id>/``
beside the child's forecast report. The content is a plain mapping (see :func:`render_json`),
computed by :func:`regimecast.workflows.run.update`.
"""

from __future__ import annotations

import html
from pathlib import Path

from regimecast.checks.verdict import fit_headline
from regimecast.store import atomic
from regimecast.report.format import pct
from regimecast.report.render import fit_verdict_html, html_table, jsonable, md_table, page, render_summary_json

HTML_FILE, MARKDOWN_FILE, JSON_FILE = "update.html", "update.md", "update.json"


def _interval(d: dict) -> str:
    return f"{pct(d['mean'])} [{pct(d['lo'])}, {pct(d['hi'])}]"


def _sections(c: dict) -> list[tuple[str, list[str], list[list[str]], str]]:
    scen = [[name, _interval(v["before"]), _interval(v["after"]),
             f"{(v['after']['mean'] - v['before']['mean']) * 100:+.1f} pp"] for name, v in c["scenarios"].items()]
    p_end, c_end = c["parent"]["data_end"], c["child"]["data_end"]
    pol = [[s, _interval(v["parent"]), _interval(v["child_at_parent_end"]), _interval(v["child"])]
           for s, v in c["policy"].items()]
    months = []
    for r in c["months"]:
        obs = ", ".join(f"{k} {'n/a' if v is None else f'{v:.3g}'}" for k, v in r["observed"].items())
        mv = r["largest_move"]
        months.append([r["month"], f"{r['log_predictive']:.2f}", f"{r['lpd_percentile'] * 100:.0f}%",
                       f"{mv['state']}: {pct(r['predicted'][mv['state']])} -> {pct(r['filtered'][mv['state']])}",
                       obs])
    revs = [[r["series"], r["month"], f"{r['old']:.4g}", f"{r['new']:.4g}", f"{r['tolerance']:.3g}"]
            for r in c["revisions"]]
    out = [
        ("Scenario probabilities before and after",
         ["scenario", f"before (data to {p_end})", f"after (data to {c_end})", "change"], scen,
         "Posterior mean and 90% interval across posterior draws; both forecasts use the same scenario file, "
         "settings and seed."),
        ("Policy state, filtered",
         ["state", f"parent at {p_end}", f"child at {p_end}", f"child at {c_end}"], pol,
         "Filtered probability (posterior mean and 90% interval). The middle column separates what the new "
         "months taught about the parameters from what they say about the state now."),
        ("What each new month did",
         ["month", "log predictive density", "percentile among earlier months", "largest filter move",
          "observations (model units)"], months,
         "A low percentile is a surprise under the model. The filter move is the policy probability predicted "
         "for the month from the month before against the probability after seeing it."),
    ]
    if revs:
        out.append(("Accepted revisions", ["series", "month", "old", "new", "tolerance"], revs,
                    "The parent's data were revised beyond tolerance; the refit uses the revised history."))
    return out


def render_html(c: dict) -> str:
    e = html.escape
    body = [f"<h1>{e('Update: ' + c['parent']['run_id'] + ' -> ' + c['child']['run_id'])}</h1>",
            f'<p class="meta">New months: {e(", ".join(c["new_months"]))} · warm start from the parent\'s '
            f"draw {e(str(c['warm_start']))}</p>", fit_verdict_html(c["child"]["diagnostics"])]
    for heading, header, rows, note in _sections(c):
        body += [f"<h2>{e(heading)}</h2>", f'<p class="note">{e(note)}</p>', html_table(header, rows, None)]
    return page("regimecast update " + c["child"]["run_id"], "\n".join(body))


def render_markdown(c: dict) -> str:
    lines = [f"# Update: {c['parent']['run_id']} -> {c['child']['run_id']}", "",
             f"New months: {', '.join(c['new_months'])}", ""]
    d = c["child"]["diagnostics"]
    lines += [f"Verdict: {fit_headline(d)}", *(f"- {r}" for r in d["reasons"]), ""]
    for heading, header, rows, note in _sections(c):
        lines += [f"## {heading}", "", note, "", md_table(header, rows), ""]
    return "\n".join(lines)


def render_json(c: dict) -> str:
    return render_summary_json(jsonable(c, "update"))


def write_update_report(out_dir: Path, content: dict) -> Path:
    """Write the three files (each atomically) into ``out_dir``; returns the HTML path."""
    out_dir = Path(out_dir)
    atomic.write_text(out_dir / JSON_FILE, render_json(content))
    atomic.write_text(out_dir / MARKDOWN_FILE, render_markdown(content))
    atomic.write_text(out_dir / HTML_FILE, render_html(content))
    return out_dir / HTML_FILE
