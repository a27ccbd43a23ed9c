"""The backtest's summary, aggregated from its saved origin records (pure: dicts in, dict
out): mean CRPS and log score per method, series and horizon; CRPS skill 1 - CRPS_engine /
CRPS_baseline against each baseline over the origins both scored (with the paired mean
difference and its standard error); interval coverage; PIT values; Brier scores of the
resolved events; the origins' fit verdicts; and plain sentences saying where the engine is
worse. Rendered by :mod:`regimecast.report.backtest`."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from regimecast.scoring import scores as scoring
from regimecast.scoring.backtest import ENGINE
from regimecast.scoring.baselines import DESCRIPTIONS as BASELINE_DESCRIPTIONS
from regimecast.scoring.baselines import LABELS as BASELINE_LABELS
from regimecast.scoring.scores import INTERVALS

TITLE = "Backtest: forecast calibration against baselines"
SE_MULTIPLE = 2.0     # a paired difference beyond this many standard errors is called clear


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
