"""Rendering toolkit shared by every report (forecast, update, comparison, diagnostics,
backtest): the self-contained HTML page shell, HTML and Markdown tables, figures on an Agg
canvas, the verdict banner and conversion to strict JSON (numbers are formatted by
:mod:`regimecast.report.format`). Computes nothing of the model.

Pages are self-contained: inline CSS, PNG figures as ``data:`` URIs, and a content-security
policy that forbids any network fetch. Figures use Matplotlib's object API (``Figure``),
never pyplot, so rendering neither switches the caller's backend nor leaves figures open.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from regimecast.checks.verdict import HEADLINES, fit_level
from regimecast.errors import RegimecastError
from regimecast.report.format import num

Row = Sequence[str]

SUMMARY_SIGNIFICANT_DIGITS = 6  # floats in JSON summaries are rounded to this many significant digits
FIG_DPI = 110
# Okabe-Ito colour-blind-safe palette; a factor's i-th state gets PALETTE[i] in every chart.
VERDICT_STYLE = {      # the page CSS styles pass and fail; warn gets its own colours
    "warn": "background:#fff4d6;border:2px solid #b45309;color:#78350f",
}
PALETTE = ("#D55E00", "#0072B2", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#999999", "#F0E442")

_READY_SCRIPT = (
    "(function () {\n"
    "  function check() {\n"
    "    var imgs = document.images, ok = true;\n"
    "    for (var i = 0; i < imgs.length; i++) {\n"
    "      if (!imgs[i].complete || imgs[i].naturalWidth === 0) { ok = false; }\n"
    "    }\n"
    "    document.body.dataset.ready = ok ? \"1\" : \"broken\";\n"
    "  }\n"
    "  if (document.readyState === \"complete\") { check(); }\n"
    "  else { window.addEventListener(\"load\", check); }\n"
    "})();\n"
)
_READY_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_READY_SCRIPT.encode()).digest()).decode()
# Only this exact script may run and only data: images load: nothing is fetched from anywhere,
# and text that slipped through unescaped could still not execute.
_CSP = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{_READY_SCRIPT_HASH}'; base-uri 'none'; form-action 'none'")

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d1d1f;
       max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 4rem; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.4rem; border-bottom: 1px solid #ddd; }
.meta { color: #555; margin-top: 0; }
.verdict { padding: .8rem 1.1rem; border-radius: 6px; font-weight: 600; margin: 1rem 0; }
.verdict.pass { background: #e3f4e8; border: 2px solid #1e7b34; color: #14532d; }
.verdict.fail { background: #fde2e1; border: 2px solid #b91c1c; color: #7f1d1d; font-size: 1.25rem; }
.verdict ul { font-weight: 400; font-size: 1rem; margin: .4rem 0 0; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .92rem; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .3rem .7rem; text-align: left; vertical-align: top; }
th { background: #f5f5f7; } td { overflow-wrap: anywhere; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
code, pre { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: .85rem; }
pre { background: #f5f5f7; padding: .8rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .88rem; }
.note { color: #555; font-style: italic; }
"""

class ReportError(RegimecastError):
    """Report content is malformed; the message names the field and the value."""

def render_summary_json(summary: Mapping) -> str:
    """``summary`` as indented, key-sorted JSON, floats rounded to SUMMARY_SIGNIFICANT_DIGITS.

    NumPy scalars become Python numbers; a non-finite float becomes ``null`` (strict JSON).
    Raises ReportError naming the path of a non-string key or an unsupported value.
    """
    return json.dumps(jsonable(summary, "summary"), indent=2, sort_keys=True, allow_nan=False) + "\n"

def new_figure(figsize, nrows: int = 1, ncols: int = 1, **kwargs):
    """A Figure on an Agg canvas, outside pyplot: no global backend switch, nothing to close."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=FIG_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=FIG_DPI, metadata={"Software": None})
    fig.clear()
    return buf.getvalue()

def diagnostics_line(d: Mapping) -> str:
    return (f"max R-hat {num(d['max_rhat'], 3)}, min bulk ESS {num(d['min_ess_bulk'], 0)}, "
            f"min tail ESS {num(d['min_ess_tail'], 0)}, {num(d['divergences'], 0)} divergences, "
            f"min BFMI {num(d['min_bfmi'], 2)}.")


# --- JSON --------------------------------------------------------------------------------

def jsonable(obj, path: str):
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        x = float(obj)
        return float(f"{x:.{SUMMARY_SIGNIFICANT_DIGITS}g}") if math.isfinite(x) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Mapping):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise ReportError(f"{path}: key {bad[0]!r} is not a string (JSON keys are strings)")
        return {k: jsonable(v, f"{path}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, f"{path}[{i}]") for i, v in enumerate(obj)]
    raise ReportError(f"{path}: value {obj!r} of type {type(obj).__name__} cannot be written to JSON")


# --- HTML --------------------------------------------------------------------------------

def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
            f'<body data-ready="0">\n{body}\n<script>{_READY_SCRIPT}</script>\n</body>\n</html>\n')


def verdict_html(level: str, reasons: Sequence[str], detail: str = "") -> str:
    """The verdict banner of every page, in the words of :data:`regimecast.checks.verdict.HEADLINES`:
    ``level`` (pass / warn / fail), its ``reasons`` as a list, ``detail`` after the headline."""
    mark = "&#10004;" if level == "pass" else "&#9888;"
    style = f' style="{VERDICT_STYLE[level]}"' if level in VERDICT_STYLE else ""
    head = f"{mark} Verdict: {html.escape(HEADLINES[level])}" + (f": {html.escape(detail)}" if detail else "")
    items = "".join(f"<li>{html.escape(str(r))}</li>" for r in reasons)
    if level == "fail" and not items:
        items = "<li>no reason recorded</li>"
    return (f'<div class="verdict {level}" id="verdict" data-verdict="{level}"{style}>{head}'
            + (f"<ul>{items}</ul>" if items else "") + "</div>")


def fit_verdict_html(d: Mapping) -> str:
    """The banner of a manifest's diagnostics block ``d`` (the fit's verdict)."""
    level = fit_level(d)
    return verdict_html(level, d["reasons"], diagnostics_line(d) if level == "pass" else "")


def figure_html(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
            f"<figcaption>{html.escape(alt)}</figcaption></figure>")


def html_table(header: Sequence[str], rows: Iterable[Row], table_id: str | None) -> str:
    def cell(tag: str, text: str, col: int) -> str:
        cls = ' class="num"' if col >= 1 and _looks_numeric(text) else ""
        return f"<{tag}{cls}>{html.escape(str(text))}</{tag}>"

    ident = f' id="{table_id}"' if table_id else ""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell("td", c, i) for i, c in enumerate(r)) + "</tr>\n" for r in rows)
    return f"<table{ident}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def _looks_numeric(text: str) -> bool:
    t = str(text).replace(",", "").replace("%", "").replace(" pp", "").replace("–", "").replace(" ", "")
    return bool(t) and t.replace(".", "").replace("-", "").isdigit()


# --- Markdown ----------------------------------------------------------------------------

def md(text: object) -> str:
    """Cell/inline text: one line, and no pipe, backslash or '<' that a renderer would act on."""
    t = " ".join(str(text).split())
    return t.replace("\\", "\\\\").replace("|", "\\|").replace("<", "\\<")


def md_code(text: object) -> str:
    return str(text).replace("`", "'")


def md_table(header: Sequence[str], rows: Iterable[Row]) -> str:
    lines = ["| " + " | ".join(md(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(md(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def md_fence(code: str) -> str:
    """A fenced block longer than any backtick run inside ``code``."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}sh\n{code}\n{fence}"
