"""Sections and table rows of the backtest report (:mod:`regimecast.report.backtest`) that are
drawn for each set of aggregates (all scored origins, the development and the hold-out
origins): CRPS skill and interval coverage rows, the development / hold-out section and the
policy-state section. HTML strings out; every text escaped."""

from __future__ import annotations

import html
from collections.abc import Mapping

from regimecast.report.backtest_figures import reliability_figure
from regimecast.report.format import MISSING, pct, short, signed
from regimecast.report.render import figure_html, html_table
from regimecast.scoring.backtest import ENGINE
from regimecast.scoring.backtest_policy import GOAL_TEXT
from regimecast.scoring.backtest_summary import DEVELOPMENT, DEVELOPMENT_END, HOLDOUT, HOLDOUT_START
from regimecast.scoring.paired import BETTER, WORSE, noise_phrase
from regimecast.scoring.scores import INTERVALS

GOAL_MARK = "†"          # marks an interval coverage outside its goal band
SPLIT_NAMES = {DEVELOPMENT: "development", HOLDOUT: "hold-out"}
SPLIT_TITLES = {DEVELOPMENT: f"Development origins (up to {DEVELOPMENT_END})",
                HOLDOUT: f"Hold-out origins ({HOLDOUT_START} on)"}
SPLIT_SENTENCE = (f"Model changes for skill were chosen on the development origins (up to {DEVELOPMENT_END}) only; "
                  f"the hold-out origins ({HOLDOUT_START} on) were not used to choose anything.")
POLICY_HEADER = ("Horizon", "n", "Brier engine", "Brier persistence", "Engine vs persistence",
                 "Modal state right", "Persistence right")


# ---- skill and coverage rows ----------------------------------------------------------------

def skill_header(summary, names) -> tuple:
    return ("Series", "Horizon", "n", "Engine CRPS", *(f"skill vs {names[b]}" for b in summary["baselines"]))


def skill_rows(summary, agg) -> list[tuple]:
    """Rows of the skill table of one set of aggregates (the whole summary or a split)."""
    rows = []
    for s in summary["series"]:
        for h in (str(h) for h in summary["horizons"]):
            eng = agg["crps"][s][h][ENGINE]
            rows.append((s, f"{h} m", str(eng["n"]), short(eng["mean"]),
                         *(_skill_cell(agg["skill"][s][h][b]) for b in summary["baselines"])))
    return rows


def _skill_cell(v: Mapping) -> str:
    """``+0.123* (p 0.012)``: skill, * when the paired test is beyond noise, the DM p-value."""
    if v["skill"] is None:
        return MISSING
    if v.get("p_value") is None:
        return signed(v["skill"])
    star = "*" if v["verdict"] in (BETTER, WORSE) else ""
    return f"{signed(v['skill'])}{star} (p {v['p_value']:.2g})"


def coverage_header(summary, names) -> tuple:
    return ("Series", "Horizon", "n", *(names[m] for m in summary["methods"]))


def coverage_note(summary) -> str:
    goals = ", ".join(f"{k}%: {lo:.0%}-{hi:.0%}" for k, (lo, hi) in summary["coverage_goals"].items())
    return ("Share of outcomes inside the central 50% / 90% intervals of each forecast, ± one binomial standard "
            f"error in percentage points; {GOAL_MARK} marks a share outside the goal band ({goals}).")


def coverage_rows(summary, agg) -> list[tuple]:
    """Rows of the coverage table of one set of aggregates (the whole summary or a split)."""
    rows = []
    for s in summary["series"]:
        for h in (str(h) for h in summary["horizons"]):
            c = agg["coverage"][s][h]
            rows.append((s, f"{h} m", str(c[ENGINE]["n"]),
                         *(" / ".join(_coverage_cell(c[m], f"{int(lv * 100)}") for lv in INTERVALS)
                           for m in summary["methods"])))
    return rows


def _coverage_cell(c: Mapping, key: str) -> str:
    """``48% ±11†``: the share, its binomial SE in percentage points, the off-goal mark."""
    if c[key] is None:
        return MISSING
    mark = GOAL_MARK if c["off_goal"][key] else ""
    return f"{pct(c[key], 0)} ±{c['se'][key] * 100:.0f}{mark}"


# ---- development and hold-out ---------------------------------------------------------------

def split_section(summary, names) -> list[str]:
    """Skill, coverage (and policy) tables of the development and of the hold-out origins."""
    out = ['<h2 id="splits">Development and hold-out origins</h2>', f"<p>{html.escape(SPLIT_SENTENCE)}</p>"]
    for name in (DEVELOPMENT, HOLDOUT):
        sp = summary["splits"][name]
        head = (f"<h3>{html.escape(SPLIT_TITLES[name])}: {sp['n_scored_origins']} scored of "
                f"{len(sp['origins'])} origins</h3>")
        if not sp["origins"]:
            out += [head, f'<p id="{name}-empty">No origins.</p>']
        elif sp["skill"] is None:
            out += [head, f'<p id="{name}-empty">No scored origins: every fit in this set failed the sampler '
                          "diagnostics.</p>"]
        else:
            out += [head, "<h4>CRPS skill</h4>", html_table(skill_header(summary, names), skill_rows(summary, sp),
                                                            f"skill-{name}"),
                    "<h4>Interval coverage</h4>", html_table(coverage_header(summary, names),
                                                             coverage_rows(summary, sp), f"coverage-{name}")]
            if sp["policy"]:
                out += ["<h4>Policy state</h4>", html_table(POLICY_HEADER, policy_rows(sp["policy"]),
                                                            f"policy-{name}")]
    return out


# ---- policy state ---------------------------------------------------------------------------

def policy_section(summary) -> list[str]:
    """The engine's policy-state forecasts against the Fed's record and against persistence."""
    out = ['<h2 id="policy-section">Policy state against the Fed\'s record</h2>']
    pol = summary["policy"]
    if pol is None:
        return out + ['<p id="policy-absent">Policy-state forecasts are not in these records.</p>']
    note = ("Each scored origin's forecast probability of each category of the Fed's record ("
            + ", ".join(pol["reference_states"]) + ") h months ahead, over the origins whose target month is "
            "recorded. Brier score: the sum over categories of (p − [category recorded])² (lower is better). "
            "Persistence: the category recorded in the origin month continues, with probability 1. Modal state "
            "right: the most probable model state counts for the recorded category. Engine vs persistence: the "
            "Diebold-Mariano test of the paired Brier difference.")
    g = pol["goal"]
    if g["met"] is None:
        goal = f"Goal ({GOAL_TEXT}): not assessed, no scored origin with a recorded state {g['horizon']} months on."
    else:
        goal = (f"Goal ({GOAL_TEXT}): {'met' if g['met'] else 'not met'}: the modal state was right in "
                f"{pct(g['hit_rate'], 0)} of {g['n']} origins.")
    rel = [(f"{h} m", f"{b['lo']:.1f}-{b['hi']:.1f}", str(b["n"]), short(b["mean_prob"]), short(b["observed"]))
           for h, c in pol["by_horizon"].items() for b in c["reliability"] if b["n"]]
    return out + [f'<p class="note">{html.escape(note)}</p>', html_table(POLICY_HEADER, policy_rows(pol), "policy"),
                  f'<p id="policy-goal"><strong>{html.escape(goal)}</strong></p>',
                  figure_html(reliability_figure(pol), "Reliability of the policy-state probabilities"),
                  html_table(("Horizon", "Forecast bin", "n", "Mean forecast", "Observed frequency"), rel,
                             "policy-reliability")]


def policy_rows(pol: Mapping) -> list[tuple]:
    """One row per horizon of a policy summary (the whole summary's or a split's)."""
    return [(f"{h} m", str(c["n"]), short(c["brier_engine"]), short(c["brier_persistence"]),
             noise_phrase(c["test"]) if c["n"] else MISSING, pct(c["hit_rate_engine"], 0),
             pct(c["hit_rate_persistence"], 0)) for h, c in pol["by_horizon"].items()]
