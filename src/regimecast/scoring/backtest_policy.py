"""The backtest's policy-state forecasts against the Fed's record (pure: record dicts in, dict
out): per horizon the engine's and the persistence forecast's mean Brier score and modal hit
rate, a paired Diebold-Mariano test of their Brier scores (:mod:`regimecast.scoring.paired`),
a reliability table, and whether the goal "modal state right in >= 80% of origins at 3
months" is met. Reads each record's optional ``policy`` block (records written before it
existed have none; see :func:`regimecast.scoring.backtest.score_origin`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from regimecast.scoring import paired

RELIABILITY_BINS = 10       # equal bins [0, 0.1), ..., [0.9, 1.0] of forecast probability (1.0 in the last)
BIN_EDGE_TOL = 1e-9         # a probability summed in floats (0.1 + 0.2) lands in the bin its decimal names
GOAL_HORIZON = 3            # months ahead at which the modal-state goal is judged (the goal)
GOAL_HIT_RATE = 0.80        # share of origins whose modal state must be the recorded one
GOAL_TEXT = f"modal state right in >= {GOAL_HIT_RATE:.0%} of origins at {GOAL_HORIZON} months"


def policy_layout(records: Sequence[dict]) -> dict | None:
    """``{"reference_states": [...], "horizons": [int, ...]}`` over every record that has a
    ``policy`` block (in first-seen order); None when none has one."""
    blocks = [r["policy"] for r in records if r.get("policy")]
    if not blocks:
        return None
    return {"reference_states": list(dict.fromkeys(s for b in blocks for s in b["reference_states"])),
            "horizons": sorted({int(h) for b in blocks for h in b["horizons"]})}


def policy_summary(records: Sequence[dict], layout: dict | None, spacing: int | None) -> dict | None:
    """The policy section from ``records`` (already restricted to the scored ones, in time
    order): ``{"reference_states", "horizons", "by_horizon": {"h": cell}, "goal"}`` where a
    cell is ``{"n", "brier_engine", "brier_persistence", "hit_rate_engine",
    "hit_rate_persistence", "test" (paired test of engine - persistence Brier), "reliability"}``
    over the cells whose target month has been recorded. None when ``layout`` is None."""
    if layout is None:
        return None
    by_h = {str(h): _horizon(records, str(h), paired.overlap_lags(h, spacing)) for h in layout["horizons"]}
    g = by_h.get(str(GOAL_HORIZON))
    rate = g["hit_rate_engine"] if g else None
    goal = {"text": GOAL_TEXT, "horizon": GOAL_HORIZON, "target": GOAL_HIT_RATE, "hit_rate": rate,
            "n": g["n"] if g else 0, "met": None if rate is None else bool(rate >= GOAL_HIT_RATE)}
    return {"reference_states": layout["reference_states"], "horizons": layout["horizons"], "by_horizon": by_h,
            "goal": goal}


def _horizon(records: Sequence[dict], h: str, lags: int) -> dict:
    cells = [(r["policy"], c) for r in records if r.get("policy")
             and (c := r["policy"]["cells"].get(h)) is not None and c.get("realised") is not None]
    pairs = [(c["brier"], c["persistence_brier"]) for _, c in cells
             if c.get("brier") is not None and c.get("persistence_brier") is not None]
    probs, hits = [], []
    for block, c in cells:
        for s in block["reference_states"]:
            probs.append(float(c["prob_reference"].get(s, 0.0)))    # a category absent from the forecast: p = 0
            hits.append(c["realised"] == s)
    return {"n": len(cells),
            "brier_engine": _mean(c.get("brier") for _, c in cells),
            "brier_persistence": _mean(c.get("persistence_brier") for _, c in cells),
            "hit_rate_engine": _mean(c.get("modal_right") for _, c in cells),
            "hit_rate_persistence": _mean(c.get("persistence_right") for _, c in cells),
            "test": paired.paired_test([e - p for e, p in pairs], lags),
            "reliability": reliability(probs, hits)}


def _mean(values) -> float | None:
    v = [float(x) for x in values if x is not None]
    return float(np.mean(v)) if v else None


def reliability(probs: Sequence[float], outcomes: Sequence[bool], bins: int = RELIABILITY_BINS) -> list[dict]:
    """Reliability table of probability forecasts: per bin [k/bins, (k+1)/bins) (1.0 in the
    last) ``{"lo", "hi", "n", "mean_prob", "observed"}``, the mean forecast and the share of
    outcomes that happened (None in an empty bin)."""
    p = np.asarray(probs, float)
    y = np.asarray(outcomes, float)
    k = np.clip(np.floor(p * bins + BIN_EDGE_TOL), 0, bins - 1).astype(int)
    out = []
    for b in range(bins):
        m = k == b
        n = int(m.sum())
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "n": n,
                    "mean_prob": float(p[m].mean()) if n else None, "observed": float(y[m].mean()) if n else None})
    return out


def policy_worse(policy: dict | None) -> list[str]:
    """Sentences for every horizon where the engine's mean Brier score is worse (higher) than
    the persistence forecast's, and for a missed modal-state goal."""
    if not policy:
        return []
    out = []
    for h, c in policy["by_horizon"].items():
        e, p = c["brier_engine"], c["brier_persistence"]
        if e is not None and p is not None and e > p:
            out.append(f"Fed policy state, {h} month{'s' if h != '1' else ''} ahead: mean Brier score {e:.3g} over "
                       f"{c['n']} origins, worse than persistence of the origin's state ({p:.3g}), "
                       f"{paired.noise_phrase(c['test'])}.")
    g = policy["goal"]
    if g["met"] is False:
        out.append(f"Fed policy state: goal not met ({GOAL_TEXT}): the modal state was right in "
                   f"{g['hit_rate']:.0%} of {g['n']} origins.")
    return out

