"""The MAP initialisation against a closed form: a bimodal density whose higher mode is known."""

from __future__ import annotations

import numpy as np
import pymc as pm

from regimecast.fit import map_start


def test_map_start_finds_the_higher_mode_and_counts_modes():
    # x ~ 0.9 N(-3, 0.5) + 0.1 N(3, 0.5): modes at about -3 (higher) and +3; y > 0 (log transform)
    with pm.Model() as model:
        pm.NormalMixture("x", w=np.array([0.9, 0.1]), mu=np.array([-3.0, 3.0]), sigma=np.array([0.5, 0.5]),
                             initval=0.0)
        pm.LogNormal("y", mu=np.log(2.0), sigma=0.1)
    values, report = map_start(model, seed=3, restarts=12, maxiter=500)
    assert abs(float(values["x"]) + 3.0) < 1e-3
    # on the sampler's scale (log y, Jacobian included) LogNormal(log 2, 0.1) is Normal(log 2, 0.1): mode log 2
    assert abs(np.log(float(values["y"])) - np.log(2.0)) < 1e-4
    assert report["distinct_modes"] == 2 and len(report["logp"]) == 12
    assert report["logp"] == sorted(report["logp"], reverse=True)
    # restarts that reached the higher mode: those within MODE_TOL of the best
    assert report["best_mode_hits"] == sum(1 for lp in report["logp"] if lp > report["logp"][0] - 1.0)
    assert 1 <= report["best_mode_hits"] < 12
    # the gap between the modes is log(0.9 / 0.1)
    gap = report["logp"][0] - min(report["logp"])
    assert abs(gap - np.log(0.9 / 0.1)) < 0.011          # report rounds log densities to 0.01
