"""The committee report renderer, on synthetic but realistic content (nothing is sampled)."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from regimecast.config.thresholds import Thresholds
from regimecast.errors import OutputError
from regimecast.report import render
from regimecast.report import forecast as report
from regimecast.report import forecast_figures
from regimecast.report.forecast import write_report
from regimecast.report.forecast_schema import ReportContent
from regimecast.report.render import ReportError

EVIL = "<script>alert(1)</script>"
EVIL_NAME = f"{EVIL} & co"
EVIL_DESCRIPTION = f"Yield above 5% & equity down {EVIL}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUANTILES = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
POLICY_STATES = ("hike", "hold", "qt", "cut", "cut_qt", "qe")
FACTOR_STATES = {"policy": POLICY_STATES, "ai": ("delayed", "realised"), "backlash": ("low", "high")}
EPISODES = [("hike", "2004-06", "2006-06"), ("cut", "2007-09", "2008-12"), ("qe", "2008-11", "2010-03"),
            ("qe", "2010-11", "2011-06"), ("qe", "2012-09", "2014-10"), ("hike", "2015-12", "2018-12"),
            ("qt", "2019-01", "2019-07"), ("cut", "2019-08", "2020-03"), ("qe", "2020-03", "2022-03"),
            ("hike", "2022-03", "2023-07"), ("qt", "2023-08", "2024-08"), ("cut_qt", "2024-09", "2024-12"),
            ("qt", "2025-01", "2025-08"), ("cut_qt", "2025-09", "2025-11"), ("cut", "2025-12", "2026-12")]
# the report's "the prior dominates" level is the review's (warn.contraction of models/diagnostics.toml)
PRIOR_DOMINATES = Thresholds.load(Path(__file__).parents[1] / "models" / "diagnostics.toml").warn.contraction
LAST = {"y10": 4.3, "equity": 21500.0, "gold": 3300.0, "vix": 17.0}
MONTHLY_VOL = {"y10": 0.25, "equity": 0.05, "gold": 0.04, "vix": 0.2}  # y10 in points, others log
MEAN_REVERSION = {"y10": 0.97, "vix": 0.8}  # AR(1) coefficient of the (log) deviation from LAST
LABELS = {"y10": "US 10-year yield (%)", "equity": "Nasdaq Composite (index points)",
          "gold": "Gold (USD/oz)", "vix": "VIX (points)"}
HORIZON = 24
N_FIGURES = 2 + len(FACTOR_STATES)  # policy bars, fan grid, one smoothed chart per factor
CHROMIUM_TIMEOUT_S = 60
MIN_SCREENSHOT_BYTES = 100_000


def _history(rng: np.random.Generator) -> xr.DataArray:
    dates = pd.date_range("2016-05-01", "2026-04-01", freq="MS")
    cols = {}
    for s, last in LAST.items():
        phi = MEAN_REVERSION.get(s, 1.0)
        dev = np.zeros(len(dates))  # built backwards from the last month, where it is 0
        for i in range(len(dates) - 2, -1, -1):
            dev[i] = phi * dev[i + 1] + rng.normal(0.0, MONTHLY_VOL[s])
        cols[s] = last + dev if s == "y10" else last * np.exp(dev)
    data = np.column_stack([cols[s] for s in LAST])
    return xr.DataArray(data, dims=("date", "series"), coords={"date": dates, "series": list(LAST)})


def _fan(history: xr.DataArray) -> xr.DataArray:
    from scipy.stats import norm

    z = norm.ppf(QUANTILES)
    h = np.arange(1, HORIZON + 1)
    out = np.empty((len(LAST), HORIZON, len(QUANTILES)))
    for i, s in enumerate(LAST):
        last = float(history.sel(series=s)[-1])
        spread = MONTHLY_VOL[s] * np.sqrt(h)[:, None] * z[None, :]
        out[i] = last + spread if s == "y10" else last * np.exp(spread)
    dates = pd.date_range("2026-05-01", periods=HORIZON, freq="MS")
    return xr.DataArray(out, dims=("series", "horizon", "quantile"),
                        coords={"series": list(LAST), "horizon": h, "quantile": list(QUANTILES),
                                "date": ("horizon", dates)})


def _smoothed(rng: np.random.Generator) -> dict[str, xr.DataArray]:
    dates = pd.date_range("2003-01-01", "2026-04-01", freq="MS")
    out = {}
    for factor, states in FACTOR_STATES.items():
        logits = np.zeros((len(dates), len(states)))
        for i in range(1, len(dates)):  # persistent regimes: AR(1) logits
            logits[i] = 0.95 * logits[i - 1] + rng.normal(0.0, 0.8, len(states))
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        out[factor] = xr.DataArray(p / p.sum(axis=1, keepdims=True), dims=("date", "state"),
                                   coords={"date": dates, "state": list(states)})
    return out


def _summary(rng: np.random.Generator, fan: xr.DataArray, trusted: bool) -> dict:
    scenarios = {}
    for name, desc in [("recession_cuts", "Fed cuts below 3% within 12 months"),
                       (EVIL_NAME, EVIL_DESCRIPTION),
                       ("gold_5000", "Gold above 5,000 USD/oz at 24 months"),
                       ("rare_tail", "VIX above 60 and y10 above 6%")]:
        mean = float(rng.uniform(0.001, 0.5))
        scenarios[name] = {"mean": mean, "lo": mean * 0.6, "hi": min(1.0, mean * 1.5),
                           "mcse": mean * 0.02, "description": desc}
    policy = {}
    for h in ("3", "6", "12", "24"):
        p = rng.dirichlet(np.ones(len(POLICY_STATES)))
        policy[h] = {s: float(v) for s, v in zip(POLICY_STATES, p)}
    quantiles = {s: {str(h): {str(q): float(fan.sel(series=s, horizon=h, quantile=q)) for q in QUANTILES}
                     for h in (3, 12, 24)} for s in LAST}
    reasons = [] if trusted else ["max R-hat 1.08 > 1.01", f"{EVIL} 3 divergences"]
    return {"run_id": "20260501-abc123", "data_end": "2026-04", "horizon_months": HORIZON,
            "scenarios": scenarios, "policy": policy, "quantiles": quantiles,
            "diagnostics": {"max_rhat": 1.004 if trusted else 1.08, "min_ess_bulk": 812.0,
                            "min_ess_tail": 640.5, "divergences": 0 if trusted else 3, "min_bfmi": 0.71,
                            "trusted": trusted, "reasons": reasons}}


def _factor_info() -> dict:
    def param(name, prior_sd, post_sd):
        return {"name": name, "prior_mean": 0.0, "prior_sd": prior_sd, "post_mean": 0.12, "post_sd": post_sd}

    return {"ai": {"now": {"delayed": 0.35, "realised": 0.65},
                   "parameters": [param("ai.equity_drift", 1.0, 0.6), param("ai.persistence", 0.5, 0.35)]},
            "backlash": {"now": {"low": 0.8, "high": 0.2},
                         "parameters": [param("backlash.gold_drift", 1.0, 0.96), param("backlash.vix", 1.0, 0.97)]}}


def make_content(seed: int = 20260501, trusted: bool = True) -> ReportContent:
    rng = np.random.default_rng(seed)
    history = _history(rng)
    fan = _fan(history)
    summary = _summary(rng, fan, trusted)
    conditional = {name: {s: {"q05": LAST[s] * 0.8, "q50": LAST[s], "q95": LAST[s] * 1.3} for s in LAST}
                   for name in summary["scenarios"] if name != "rare_tail"}
    conditional["rare_tail"] = {}
    provenance = {s: {"fred_id": fid, "file": f"../shared/data/fred/{fid}.csv", "sha256": "ab" * 32,
                      "first": "1990-01", "last": "2026-04"}
                  for s, fid in zip(LAST, ("DGS10", "NASDAQCOM", "GOLDPMGBD228NLBM", "VIXCLS"))}
    return ReportContent(summary=summary, history=history, fan=fan, smoothed=_smoothed(rng), episodes=EPISODES,
                         factor_info=_factor_info(), conditional=conditional, provenance=provenance,
                         reproduce="regimecast run --model models/default.toml --seed 20260501 --out runs/x",
                         title="Macro regimes & markets: May 2026", policy_factor="policy", rate_series=("y10",),
                         contraction_prior_dominates=PRIOR_DOMINATES, labels=LABELS)


@pytest.fixture(scope="module")
def content() -> ReportContent:
    return make_content()


@pytest.fixture(scope="module")
def written(tmp_path_factory, content) -> Path:
    return write_report(tmp_path_factory.mktemp("report") / "may", content)


@pytest.fixture(scope="module")
def page(written) -> str:
    return (written / "index.html").read_text(encoding="utf-8")


def _table(page: str, table_id: str) -> str:
    m = re.search(rf'<table id="{table_id}">(.*?)</table>', page, re.S)
    assert m, f"no table {table_id}"
    return m.group(1)


def _body_rows(table: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)


def _close(a, b, path="") -> None:
    """Equal up to summary.json's significant-digit rounding."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(a, bool):
        assert b == pytest.approx(a, rel=10 ** (1 - render.SUMMARY_SIGNIFICANT_DIGITS)), path
    else:
        assert a == b and type(a) is type(b), path


# --- files and summary.json ----------------------------------------------------------------

def test_writes_the_three_files_and_nothing_else(written):
    assert sorted(p.name for p in written.iterdir()) == ["index.html", "report.md", "summary.json"]
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")], "temporary dirs left behind"


def test_summary_json_round_trips(written, content):
    text = (written / "summary.json").read_text()
    loaded = json.loads(text)
    _close(content.summary, loaded)
    assert text == json.dumps(loaded, indent=2, sort_keys=True) + "\n"  # stable: rewriting changes nothing


def test_summary_json_converts_numpy_and_rejects_bad_keys():
    text = render.render_summary_json({"a": np.float64(1 / 3), "b": np.int64(4), "c": np.bool_(True),
                                       "d": float("nan"), "e": [np.float32(2.5)]})
    assert json.loads(text) == {"a": 0.333333, "b": 4, "c": True, "d": None, "e": [2.5]}
    with pytest.raises(ReportError, match=r"summary\.policy.*key 3"):
        render.render_summary_json({"policy": {3: {"hike": 0.5}}})


# --- HTML content ----------------------------------------------------------------------------

def test_html_escapes_every_input_string(page):
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page  # scenario name
    assert "Yield above 5% &amp; equity down &lt;script&gt;" in page  # description
    assert "Macro regimes &amp; markets" in page
    assert len(re.findall(r"<script>", page)) == 1  # only the readiness check
    # an untrusted run's reasons (input text too) are shown twice, escaped both times: in the
    # verdict banner and in the diagnostics table
    untrusted = report.render_html(make_content(trusted=False))
    assert "<script>alert(1)" not in untrusted and len(re.findall(r"<script>", untrusted)) == 1
    assert untrusted.count("&lt;script&gt;alert(1)&lt;/script&gt; 3 divergences") == 2
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt; 3 divergences</td>" in _table(untrusted, "diagnostics")


def test_one_table_row_per_scenario(page, content):
    rows = _body_rows(_table(page, "scenarios"))
    assert len(rows) == len(content.summary["scenarios"])
    sc = content.summary["scenarios"]["recession_cuts"]
    assert f"{sc['mean'] * 100:.1f}%" in rows[0]


def test_images_are_embedded_pngs(page):
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == N_FIGURES == page.count("<img ")
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)


def test_no_external_resources(page, written):
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert "http" not in (written / "report.md").read_text()
    assert "default-src 'none'" in page  # the content-security policy forbids fetches


def test_sections_in_order(page):
    headings = ["Scenario probabilities", "Fed policy state by horizon", "Asset forecasts", "Regime history",
                "What the data taught the model: ai", "What the data taught the model: backlash",
                "Asset forecasts given each scenario", "Sampler diagnostics", "Data provenance",
                "How to reproduce"]
    found = re.findall(r"<h2>(.*?)</h2>", page)
    assert found == headings
    assert page.index('id="verdict"') < page.index("<h2>")


def test_policy_table_and_conditional_empty_scenario(page, content):
    policy_rows = _body_rows(_table(page, "policy"))
    assert [re.search(r"<td>(.*?)</td>", r).group(1) for r in policy_rows] == list(POLICY_STATES)
    cond = _table(page, "conditional")
    assert "too few simulated paths" in cond
    assert len(_body_rows(cond)) == 3 * len(LAST) + 1


def test_contraction_sentences(page):
    assert "The data informed the backlash factor little: median posterior contraction 0.07" in page
    assert "The data informed the ai factor strongly: median posterior contraction 0.57" in page
    # each parameter's contraction 1 - (post_sd / prior_sd)^2 in the factor's table
    assert re.findall(r"<td[^>]*>(0\.\d\d)</td>\s*</tr>", page)[:4] == ["0.64", "0.51", "0.08", "0.06"]
    # the median, not the mean: contractions 0, 0.049 and 0.99 (mean 0.35 would read "moderately")
    params = [{"name": n, "prior_mean": 0, "prior_sd": 1.0, "post_mean": 0, "post_sd": sd}
              for n, sd in (("a", 1.0), ("b", 0.975), ("c", 0.1))]
    assert report.contraction_sentence("f", params, PRIOR_DOMINATES).startswith(
        "The data informed the f factor little: median posterior contraction 0.05 over 3 parameters")


@pytest.mark.parametrize(("post_sd", "word"), [(0.97, "little"), (0.8, "moderately"), (0.3, "strongly")])
def test_contraction_thresholds(post_sd, word):
    params = [{"name": "x", "prior_mean": 0, "prior_sd": 1.0, "post_mean": 0, "post_sd": post_sd}]
    assert f"informed the f factor {word}:" in report.contraction_sentence("f", params, PRIOR_DOMINATES)
    assert report.posterior_contraction(1.0, post_sd) == pytest.approx(1 - post_sd ** 2)
    assert math.isnan(report.posterior_contraction(0.0, 1.0))


@pytest.mark.parametrize("trusted", [True, False])
def test_verdict_banner(trusted):
    page = report.render_html(make_content(trusted=trusted))
    if trusted:
        assert 'data-verdict="pass"' in page and "Verdict: pass" in page
        assert "DO NOT TRUST THIS RUN" not in page
    else:
        assert 'data-verdict="fail"' in page and "DO NOT TRUST THIS RUN" in page
        assert "<li>max R-hat 1.08 &gt; 1.01</li>" in page
        assert "<li>&lt;script&gt;alert(1)&lt;/script&gt; 3 divergences</li>" in page
        assert "Verdict: fail: DO NOT TRUST THIS RUN" in page and "Verdict: pass" not in page


def test_markdown_has_the_tables(written, content):
    md = (written / "report.md").read_text()
    assert md.startswith("# Macro regimes & markets")
    assert "**Verdict: pass.**" in md
    assert "\\<script>alert(1)\\</script> & co" in md  # inert when rendered, readable in a terminal
    assert not re.search(r"(?<!\\)<", md), "an unescaped < would be raw HTML to a Markdown renderer"
    assert "data:image" not in md
    for heading in ("Scenario probabilities", "Data provenance", "How to reproduce"):
        assert f"## {heading}" in md
    assert f"```sh\n{content.reproduce}\n```" in md


def test_rendering_leaves_matplotlib_backend_alone(content):
    import matplotlib

    before = matplotlib.get_backend()
    report.render_html(content)
    assert matplotlib.get_backend() == before


def test_malformed_content_is_refused(content):
    from dataclasses import replace

    with pytest.raises(ReportError, match="fan: quantile"):
        report.render_html(replace(content, fan=content.fan.isel(quantile=slice(1, None))))
    with pytest.raises(ReportError, match=r"summary\.diagnostics.*trusted"):
        bad = {**content.summary, "diagnostics": {k: v for k, v in content.summary["diagnostics"].items()
                                                  if k != "trusted"}}
        report.render_html(replace(content, summary=bad))


# --- atomic replacement --------------------------------------------------------------------------

def test_rewrite_replaces_the_old_report(tmp_path):
    out = tmp_path / "r"
    write_report(out, make_content(seed=1))
    (out / "diagnostics.html").write_text("written by regimecast diagnose")
    second = make_content(seed=2, trusted=False)
    assert write_report(out, second) == out
    # the report's own files are replaced; another command's file beside them is kept
    assert sorted(p.name for p in out.iterdir()) == ["diagnostics.html", "index.html", "report.md", "summary.json"]
    assert (out / "diagnostics.html").read_text() == "written by regimecast diagnose"
    assert "DO NOT TRUST THIS RUN" in (out / "index.html").read_text()
    _close(second.summary, json.loads((out / "summary.json").read_text()))
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_failure_while_rendering_keeps_the_old_report(tmp_path, monkeypatch):
    out = tmp_path / "r"
    write_report(out, make_content(seed=1))
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(forecast_figures, "_fan_figure", boom)
    with pytest.raises(RuntimeError, match="figure failed"):
        write_report(out, make_content(seed=2, trusted=False))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_failure_while_swapping_keeps_the_old_report(tmp_path, monkeypatch):
    out = tmp_path / "r"
    write_report(out, make_content(seed=1))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_rename = os.rename

    def rename(src, dst):
        if Path(src).name.startswith(".tmp-"):
            raise OSError("disk full")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OutputError, match=f"cannot write {out}: disk full.*unchanged"):   # not a raw OSError
        write_report(out, make_content(seed=2))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_refuses_to_replace_a_file(tmp_path, content):
    target = tmp_path / "r"
    target.write_text("not a report")
    with pytest.raises(OutputError, match=f"cannot write {target}: .*not a directory"):
        write_report(target, content)
    assert target.read_text() == "not a report"


# --- headless browser ----------------------------------------------------------------------------

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _chromium() -> str:
    """The first Chromium on PATH: the test runs wherever one is installed and is skipped, with
    the reason, where none is (in CI, which installs it, a missing one is a failure)."""
    for name in CHROMIUM_NAMES:
        exe = shutil.which(name)
        if exe is not None:
            return exe
    msg = f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)}; apt-get install -y chromium)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def _run_chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)


def test_renders_in_headless_chromium(written, content, tmp_path):
    exe = _chromium()
    index = (written / "index.html").resolve()
    dom = _run_chromium(exe, tmp_path / "profile", "--dump-dom", index.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body and 'data-ready="1"' in body.group(0), (body and body.group(0), dom.stderr[-2000:])
    assert len(_body_rows(_table(dom.stdout, "scenarios"))) == len(content.summary["scenarios"])
    assert dom.stdout.count('<img src="data:image/png;base64,') == N_FIGURES

    shot = tmp_path / "shot.png"
    res = _run_chromium(exe, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1400,3000",
                        index.as_uri())
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
    assert shot.stat().st_size > MIN_SCREENSHOT_BYTES
    if os.environ.get("REGIMECAST_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["REGIMECAST_KEEP_SCREENSHOT"])
