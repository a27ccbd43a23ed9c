"""The policy state forecast at a backtest origin scored against the Fed's recorded history
(``[history]`` of the model file), which no market baseline forecasts.

The engine forecasts its own policy states (e.g. ``crisis``, ``hike_qt``); the record knows
fewer categories (``history_labels``). A model state counts for a recorded category when it
has its name or agrees with it (``[history] agrees``: ``crisis`` for ``cut`` and ``qe``), so
the probability of a recorded category is the summed probability of the model states that
count for it. Per horizon the record holds:

- ``prob`` {model state: probability} and ``prob_reference`` {recorded category: probability};
- ``brier``: sum over the recorded categories c of (prob_reference[c] - [c realised])^2, each
  category's one-against-the-rest Brier score summed (a model state that counts for two
  categories enters both, so it is not the multi-category Brier score of one distribution);
- ``modal`` (the most probable model state) and ``modal_right`` (it counts for the realised
  category);
- the same two scores for **persistence**, the reference forecast that the state recorded in
  the origin month continues (probability 1), which a strategist gets for free.

Target months after the data's last month are not realised (``null``): the record's months
after the data are only what the model file says, not yet what happened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from regimecast.config.model_file import ModelConfig
from regimecast.months import add_months, months_between

POLICY_HORIZONS = (3, 6, 12)
"""Months after the origin at which the policy state is scored (the issue's 3, 6, 12)."""


def state_probabilities(states: np.ndarray, names: Sequence[str], horizons: Sequence[int]) -> dict[str, dict[str, float]]:
    """``{str(h): {state: share of paths in it h months after the origin}}`` from ``states``
    (..., H) integer policy-state indices at months 1..H (any leading axes: draws, paths)."""
    s = np.asarray(states).reshape(-1, np.shape(states)[-1])
    out = {}
    for h in horizons:
        counts = np.bincount(s[:, h - 1].astype(np.int64), minlength=len(names))
        out[str(h)] = {n: float(c) / s.shape[0] for n, c in zip(names, counts)}
    return out


def reference_states(config: ModelConfig) -> list[str]:
    """The categories of the recorded history, in the transition factor's state order (then
    any recorded one that is not a model state)."""
    recorded = {ep.state for ep in config.history} | {config.history_default
                                                      or config.factor(config.transition_factor).states[0]}
    order = list(config.factor(config.transition_factor).states)
    return [s for s in order if s in recorded] + sorted(recorded - set(order))


def recorded_state(config: ModelConfig, month: str) -> str:
    """The recorded policy category of one month (YYYY-MM)."""
    return str(config.history_labels(pd.DatetimeIndex([pd.Timestamp(f"{month}-01")]))[0])


def counts_for(config: ModelConfig, model_state: str, category: str) -> bool:
    """Whether a model state agrees with a recorded category (same name, or ``[history] agrees``)."""
    return model_state == category or category in config.history_agrees.get(model_state, ())


def score_policy(config: ModelConfig, probs: Mapping[str, Mapping[str, float]], origin: str,
                 data_end: str) -> dict:
    """The record's ``policy`` block for one origin (see the module docstring): ``probs`` from
    :func:`state_probabilities`; ``data_end`` the last month of the data (later targets are not
    realised)."""
    refs = reference_states(config)
    at_origin = recorded_state(config, origin)
    cells = {}
    for h, p in probs.items():
        target = add_months(origin, int(h))
        realised = recorded_state(config, target) if months_between(target, data_end) >= 0 else None
        p_ref = {c: float(sum(v for m, v in p.items() if counts_for(config, m, c))) for c in refs}
        modal = max(p, key=p.get)                                       # ties: the first state
        cell = {"target_month": target, "prob": {m: float(v) for m, v in p.items()}, "prob_reference": p_ref,
                "realised": realised, "modal": modal, "modal_right": None, "brier": None,
                "persistence_brier": None, "persistence_right": None}
        if realised is not None:
            cell.update(modal_right=counts_for(config, modal, realised),
                        brier=brier(p_ref, realised),
                        persistence_brier=brier({c: float(c == at_origin) for c in refs}, realised),
                        persistence_right=at_origin == realised)
        cells[str(h)] = cell
    return {"states": list(next(iter(probs.values()))) if probs else [], "reference_states": refs,
            "at_origin": at_origin, "horizons": [int(h) for h in probs], "cells": cells}


def brier(prob: Mapping[str, float], realised: str) -> float:
    """Sum over categories of (probability - [category realised])^2."""
    return float(sum((v - float(c == realised)) ** 2 for c, v in prob.items()))
