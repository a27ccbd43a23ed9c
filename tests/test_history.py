"""The policy-history check: per reference state, the share of months whose most probable
smoothed state agrees, counted by hand on a small synthetic posterior."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from regimecast.config.model_file import load_model_config
from regimecast.fit.history import policy_agreement


def _idata(states, modal, dates, margin=0.2):
    """Two draws whose mean puts the most mass on ``modal[t]`` each month."""
    K = len(states)
    p = np.full((1, 2, len(dates), K), (1.0 - (1.0 / K + margin)) / (K - 1))
    for t, s in enumerate(modal):
        p[:, :, t, states.index(s)] = 1.0 / K + margin
    post = xr.Dataset({"smoothed_policy": (("chain", "draw", "date", "policy"), p)},
                      coords={"date": dates, "policy": list(states)})
    return az.InferenceData(posterior=post)


def test_policy_agreement_counts_equivalent_states(repo_root):
    cfg = load_model_config(repo_root / "models" / "default.toml")
    states = list(cfg.factor("policy").states)
    dates = pd.date_range("2008-08-01", "2009-01-01", freq="MS")
    ref = list(cfg.history_labels(dates))
    assert ref == ["cut", "cut", "cut", "qe", "qe", "qe"]
    modal = ["hold", "crisis", "cut", "crisis", "qe", "qt"]
    out = policy_agreement(cfg, _idata(states, modal, dates))
    # cut: hold (no), crisis (agrees with cut), cut (yes) -> 2/3; qe: crisis (yes), qe (yes), qt (no) -> 2/3
    assert out["cut"] == {"months": 3, "agree": pytest.approx(2 / 3)}
    assert out["qe"] == {"months": 3, "agree": pytest.approx(2 / 3)}
    assert out["all"] == {"months": 6, "agree": pytest.approx(4 / 6)}
    assert out["hike"]["months"] == 0 and np.isnan(out["hike"]["agree"])
