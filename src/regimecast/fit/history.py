"""Check the smoothed policy state against the Fed's recorded history (``[history]`` of the
model file): per reference state, the share of months whose most probable smoothed state
agrees.

A model state may agree with reference states besides its own name (``[history] agrees`` of
the model file, e.g. an emergency-easing state agreeing with "cut" and "qe")."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd

from regimecast.config.model_file import ModelConfig


def policy_agreement(config: ModelConfig, idata: az.InferenceData) -> dict[str, dict[str, float]]:
    """``{state: {"months": n, "agree": share}}`` plus ``"all"``, from the posterior-mean
    smoothed probabilities of the transition factor."""
    var = f"smoothed_{config.transition_factor}"
    probs = idata.posterior[var].mean(("chain", "draw"))
    dates = pd.DatetimeIndex(probs["date"].values)
    states = np.asarray(probs[config.transition_factor].values)
    modal = states[np.asarray(probs.argmax(config.transition_factor))]
    ref = config.history_labels(dates)
    ok = np.array([m == r or r in config.history_agrees.get(m, ()) for m, r in zip(modal, ref)], dtype=bool)
    out = {}
    for s in config.factor(config.transition_factor).states:
        sel = ref == s
        out[s] = {"months": int(sel.sum()), "agree": float(ok[sel].mean()) if sel.any() else float("nan")}
    out["all"] = {"months": len(ref), "agree": float(ok.mean())}
    return out
