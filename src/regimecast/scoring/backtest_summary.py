"""The backtest's summary, aggregated from its saved origin records (pure: dicts in, dict
out): mean CRPS and log score per method, series and horizon; CRPS skill 1 - CRPS_engine /
CRPS_baseline against each baseline over the origins both scored, with a paired
Diebold-Mariano test (:mod:`regimecast.scoring.paired`); interval coverage against goal bands;
PIT values; Brier scores of the resolved events; the policy-state forecasts against the Fed's
record (:mod:`regimecast.scoring.backtest_policy`); the origins' fit verdicts; and plain
sentences saying where the engine is worse. Rendered by :mod:`regimecast.report.backtest`.

Only origins whose refit passed the sampler diagnostics (``record["trusted"]``) enter any
score; the others are listed, never scored. Every aggregate is computed over all scored
origins (the top-level keys) and again over the development and the hold-out origins
(``summary["splits"]``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from regimecast.months import add_months
from regimecast.scoring import paired
from regimecast.scoring import scores as scoring
from regimecast.scoring.backtest import ENGINE
from regimecast.scoring.backtest_policy import policy_layout, policy_summary, policy_worse, reliability
from regimecast.scoring.baselines import DESCRIPTIONS as BASELINE_DESCRIPTIONS
from regimecast.scoring.baselines import LABELS as BASELINE_LABELS
from regimecast.scoring.scores import INTERVALS

TITLE = "Backtest: forecast calibration against baselines"
# Model changes for skill were chosen on origins up to this month only; later origins are the
# hold-out, used to choose nothing.
DEVELOPMENT_END = "2021-12"
HOLDOUT_START = add_months(DEVELOPMENT_END, 1)
DEVELOPMENT, HOLDOUT = "development", "holdout"
# Goal bands of the engine's central-interval coverage (issue "calibrated intervals"), by level.
COVERAGE_GOALS = {0.5: (0.40, 0.60), 0.9: (0.85, 0.95)}
AGGREGATES = ("crps", "log_score", "skill", "coverage", "pit_histogram", "brier", "event_reliability", "policy")


@dataclass(frozen=True)
class _Grid:
    """What every aggregate is laid out over, from all the records (scored or not)."""

    methods: list[str]
    base: list[str]               # the baselines (methods other than the engine)
    series: list[str]
    horizons: list[str]           # months ahead, as the records' keys
    spacing: int | None           # months between origins (None: one origin)
    events: list[str]
    policy: dict | None           # backtest_policy.policy_layout


def split_of(origin: str) -> str:
    """"development" for an origin month "YYYY-MM" up to DEVELOPMENT_END, else "holdout"."""
    return DEVELOPMENT if origin <= DEVELOPMENT_END else HOLDOUT


def build_summary(records: Mapping[str, dict], *, description: dict, config_hash: str, directory: str,
                  skipped: Mapping[str, str], unresolvable: Mapping[str, str], failed: Mapping[str, str],
                  reproduce: str) -> dict:
    """The report's content from origin records ``{origin: record}`` (see
    :func:`regimecast.scoring.backtest.score_origin`)."""
    recs = [records[o] for o in sorted(records)]
    if not recs:
        raise ValueError("no origin has a record: nothing to report")
    methods = list(dict.fromkeys(m for r in recs for m in r["methods"]))
    origins = [r["origin"] for r in recs]
    grid = _Grid(methods=methods, base=[m for m in methods if m != ENGINE], series=recs[0]["series"],
                 horizons=[str(h) for h in recs[0]["horizons"]], spacing=paired.origin_spacing(origins),
                 events=list(dict.fromkeys(n for r in recs for n in r["events"])), policy=policy_layout(recs))
    summary = {
        "title": TITLE, "config_hash": config_hash, "directory": directory,
        "settings": description.get("settings", {}), "model": description.get("model", {}),
        "priors": description.get("priors", {}),
        "origins": origins, "series": grid.series, "horizons": [int(h) for h in grid.horizons],
        "methods": methods, "baselines": {m: BASELINE_LABELS.get(m, m) for m in grid.base},
        "baseline_descriptions": {m: BASELINE_DESCRIPTIONS.get(m, m) for m in grid.base},
        "origin_spacing_months": grid.spacing, "development_end": DEVELOPMENT_END, "holdout_start": HOLDOUT_START,
        "coverage_goals": {_level(lv): list(band) for lv, band in COVERAGE_GOALS.items()},
        "origin_table": [_origin_row(r) for r in recs],
        "untrusted_origins": [r["origin"] for r in recs if not r["trusted"]],
        "skipped_origins": dict(skipped), "failed_origins": dict(failed),
        "unresolvable_events": dict(unresolvable),
        **_scored(recs, grid, keep_pit=True),
        "splits": {name: _split(recs, name, grid) for name in (DEVELOPMENT, HOLDOUT)},
        "reproduce": reproduce,
    }
    summary["engine_worse"] = worse_statements(summary)
    return summary


def _scored(recs: list[dict], grid: _Grid, keep_pit: bool = False) -> dict:
    """Every aggregate over the trusted records among ``recs`` (time order), with their origins;
    ``pit`` (the raw values) only when ``keep_pit``."""
    t = [r for r in recs if r["trusted"]]
    pit = {m: {s: _pits(t, m, s, grid.horizons) for s in grid.series} for m in grid.methods}
    out = {"scored_origins": [r["origin"] for r in t], "n_scored_origins": len(t),
           "crps": _means(t, grid, "crps"), "log_score": _means(t, grid, "log_score"), "skill": _skill(t, grid),
           "coverage": _coverage(t, grid),
           "pit_histogram": {m: {s: scoring.pit_histogram(p).tolist() for s, p in d.items()} for m, d in pit.items()},
           "brier": _brier(t, grid), "event_reliability": _event_reliability(t, grid),
           "policy": policy_summary(t, grid.policy, grid.spacing)}
    return out | ({"pit": pit} if keep_pit else {})


def _split(recs: list[dict], name: str, grid: _Grid) -> dict:
    """One split's origins and aggregates; every aggregate None when none of its origins was scored."""
    mine = [r for r in recs if split_of(r["origin"]) == name]
    out = {"origins": [r["origin"] for r in mine], "untrusted_origins": [r["origin"] for r in mine if not r["trusted"]]}
    if any(r["trusted"] for r in mine):
        return out | _scored(mine, grid)
    return out | {"scored_origins": [], "n_scored_origins": 0} | dict.fromkeys(AGGREGATES)


def _level(lv: float) -> str:
    return f"{int(lv * 100)}"


def _cell(r: dict, m: str, s: str, h: str) -> dict | None:
    return r["scores"].get(m, {}).get(s, {}).get(h)


def _values(recs, m, s, h, key) -> list[float]:
    out = []
    for r in recs:
        c = _cell(r, m, s, h)
        if c is not None and c.get(key) is not None:
            out.append(float(c[key]))
    return out


def _means(recs, grid: _Grid, key: str) -> dict:
    """``{series: {h: {method: {"mean", "n"}}}}`` of one score."""
    out: dict = {}
    for s in grid.series:
        for h in grid.horizons:
            for m in grid.methods:
                v = _values(recs, m, s, h, key)
                out.setdefault(s, {}).setdefault(h, {})[m] = {"mean": float(np.mean(v)) if v else None, "n": len(v)}
    return out


def _skill(recs, grid: _Grid) -> dict:
    """``{series: {h: {baseline: cell}}}``: CRPS skill against each baseline over the origins
    where both were scored, with the paired test of CRPS_engine - CRPS_baseline (``mean_diff``,
    HAC ``se_diff``, ``dm_stat``, ``p_value``, ``lags``, ``kernel``, ``verdict`` on the engine)."""
    out: dict = {}
    for s in grid.series:
        for h in grid.horizons:
            lags = paired.overlap_lags(int(h), grid.spacing)
            for b in grid.base:
                pairs = [(c_e["crps"], c_b["crps"]) for r in recs
                         if (c_e := _cell(r, ENGINE, s, h)) and (c_b := _cell(r, b, s, h))
                         and c_e.get("crps") is not None and c_b.get("crps") is not None]
                n = len(pairs)
                e, bb = (np.array([p[i] for p in pairs], float) for i in (0, 1))
                out.setdefault(s, {}).setdefault(h, {})[b] = {
                    "skill": scoring.skill(e.mean(), bb.mean()) if n else None,
                    "crps_engine": float(e.mean()) if n else None, "crps_baseline": float(bb.mean()) if n else None,
                    **paired.paired_test(e - bb, lags)}
    return out


def _coverage(recs, grid: _Grid) -> dict:
    """``{series: {h: {method: {"50", "90", "n", "se": {level: binomial SE}, "off_goal": {level:
    bool}}}}}``: shares of outcomes inside the central intervals; ``off_goal`` is True outside
    COVERAGE_GOALS (None without outcomes); SE = sqrt(c (1 - c) / n) of the observed share."""
    out: dict = {}
    for s in grid.series:
        for h in grid.horizons:
            for m in grid.methods:
                cell: dict = {"se": {}, "off_goal": {}}
                for lv in INTERVALS:
                    key = _level(lv)
                    v = _values(recs, m, s, h, f"covered_{key}")
                    c = float(np.mean(v)) if v else None
                    lo, hi = COVERAGE_GOALS[lv]
                    cell[key], cell["n"] = c, len(v)
                    cell["se"][key] = math.sqrt(c * (1 - c) / len(v)) if v else None
                    cell["off_goal"][key] = None if c is None else bool(c < lo or c > hi)
                out.setdefault(s, {}).setdefault(h, {})[m] = cell
    return out


def _pits(recs, m, s, horizons) -> list[float]:
    return [p for h in horizons for p in _values(recs, m, s, h, "pit")]


def _brier(recs, grid: _Grid) -> dict:
    """``{event: {"horizon", "n_resolved", "observed_rate", "methods": {m: {"brier", "mean_prob", "n"}}}}``."""
    out: dict = {}
    for name in grid.events:
        ev = [r["events"][name] for r in recs if name in r["events"] and r["events"][name]["resolved"]]
        horizon = next((r["events"][name]["horizon"] for r in recs if name in r["events"]), None)
        row = {"horizon": horizon, "n_resolved": len(ev),
               "observed_rate": float(np.mean([e["outcome"] for e in ev])) if ev else None, "methods": {}}
        for m in grid.methods:
            b = [e["brier"][m] for e in ev if e["brier"].get(m) is not None]
            p = [e["prob"][m] for e in ev if e["prob"].get(m) is not None]
            row["methods"][m] = {"brier": float(np.mean(b)) if b else None,
                                 "mean_prob": float(np.mean(p)) if p else None, "n": len(b)}
        out[name] = row
    return out


def _event_reliability(recs, grid: _Grid) -> dict:
    """``{method: reliability bins}`` over every resolved (event, origin) pair: each method's
    probabilities against the outcomes (:func:`regimecast.scoring.backtest_policy.reliability`)."""
    out = {}
    for m in grid.methods:
        pairs = [(e["prob"][m], e["outcome"]) for r in recs for e in r["events"].values()
                 if e["resolved"] and e["prob"].get(m) is not None]
        out[m] = {"n": len(pairs), "bins": reliability([p for p, _ in pairs], [y for _, y in pairs])}
    return out


def _origin_row(r: dict) -> dict:
    d = r["fit"].get("diagnostics", {})
    scored = sorted({int(h) for m in r["scores"].values() for s in m.values() for h, c in s.items()
                     if c.get("crps") is not None})
    return {"origin": r["origin"], "trusted": r["trusted"], "split": split_of(r["origin"]),
            "reasons": d.get("reasons", []),
            "max_rhat": d.get("max_rhat"), "min_ess_bulk": d.get("min_ess_bulk"),
            "divergences": d.get("divergences"), "fit_wall_time_s": r["fit"].get("wall_time_s"),
            "origin_wall_time_s": sum(v for v in r.get("timings_s", {}).values()),
            "horizons_scored": scored, "baseline_errors": r.get("errors", {})}


# =========================================================================================
# where the engine is worse
# =========================================================================================

def worse_statements(summary: Mapping) -> list[str]:
    """Plain sentences, over all scored origins and then over the hold-out: every series and
    horizon where the engine's mean CRPS (with the Diebold-Mariano verdict: "worse beyond
    noise" or "within noise") or mean log score is worse than a baseline's or its interval
    coverage is outside the goal band, every event whose Brier score is worse than a
    baseline's, and every horizon where its policy-state Brier score is worse than persistence."""
    n, k = len(summary["origins"]), summary["n_scored_origins"]
    if not k:
        return [f"None of the {n} origins' fits passed the sampler diagnostics: nothing was scored, so nothing "
                "can be said about where the engine is worse."]
    out = _worse(summary, summary) or [
        f"Over the {k} scored origins the engine is nowhere worse than the baselines by mean CRPS, mean log score, "
        "interval coverage goals, event Brier score or policy-state Brier score."]
    hold, scope = summary["splits"][HOLDOUT], f"In the hold-out (origins {HOLDOUT_START} on)"
    if not hold["origins"]:
        return out + [f"{scope}: no origins in this backtest."]
    if not hold["n_scored_origins"]:
        return out + [f"{scope}: no origin's fit passed the sampler diagnostics; nothing scored."]
    return out + ([f"{scope}: {t}" for t in _worse(hold, summary)]
                  or [f"{scope}: the engine is nowhere worse over its {hold['n_scored_origins']} scored origins."])


def _worse(agg: Mapping, summary: Mapping) -> list[str]:
    """The sentences of :func:`worse_statements` for one set of aggregates (``agg``)."""
    out = []
    names = summary["baselines"]
    for s in summary["series"]:
        for h in (str(h) for h in summary["horizons"]):
            parts = []
            crps_worse = [f"{names[b]} (skill {v['skill']:+.3f}, {paired.noise_phrase(v)})"
                          for b, v in agg["skill"][s][h].items() if v["skill"] is not None and v["skill"] < 0]
            if crps_worse:
                parts.append("CRPS worse than " + ", ".join(crps_worse))
            ls = agg["log_score"][s][h]
            e = ls[ENGINE]["mean"]
            ls_worse = [f"{names[b]} (by {e - v['mean']:.3g})" for b, v in ls.items()
                        if b != ENGINE and e is not None and v["mean"] is not None and e > v["mean"]]
            if ls_worse:
                parts.append("mean log score worse than " + ", ".join(ls_worse))
            cov = agg["coverage"][s][h][ENGINE]
            for lv in INTERVALS:
                key, (lo, hi) = _level(lv), COVERAGE_GOALS[lv]
                if cov["off_goal"][key]:
                    parts.append(f"its {key}% intervals held {cov[key]:.0%} (± {cov['se'][key]:.0%}) of {cov['n']} "
                                 f"outcomes, outside the goal {lo:.0%}-{hi:.0%} "
                                 f"({'too narrow' if cov[key] < lo else 'too wide'})")
            if parts:
                out.append(f"{s}, {h} month{'s' if h != '1' else ''} ahead: " + "; ".join(parts) + ".")
    for name, row in agg["brier"].items():
        e = row["methods"].get(ENGINE, {}).get("brier")
        worse = [f"{names[m]} ({v['brier']:.3g})" for m, v in row["methods"].items()
                 if m != ENGINE and e is not None and v["brier"] is not None and v["brier"] < e]
        if worse:
            out.append(f"Event {name} ({row['n_resolved']} resolved): Brier score {e:.3g}, worse than "
                       + ", ".join(worse) + ".")
    return out + policy_worse(agg["policy"])
