"""The MAP initialisation against a closed form: a bimodal density whose higher mode is known."""

from __future__ import annotations

import numpy as np
import pymc as pm

from regimecast.fit.sampler import map_start


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


def test_tempered_logp_matches_the_closed_form():
    # x ~ N(0, 1) prior, y = 2 observed with y ~ N(x, 1); tempered: log N(x|0,1) + w log N(2|x,1)
    from scipy.stats import norm

    from regimecast.fit.sampler import tempered_logp

    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0)
        pm.Normal("y", x, 1.0, observed=2.0)
    f, x0 = tempered_logp(model)
    for w in (0.0, 0.25, 1.0):
        for xv in (-1.0, 0.5, 3.0):
            v, g = f(np.array([xv]), w)
            assert abs(v - (norm.logpdf(xv) + w * norm.logpdf(2.0, xv))) < 1e-10
            assert abs(g[0] - (-xv + w * (2.0 - xv))) < 1e-10


def test_annealed_map_path_ends_at_the_full_posterior_mode():
    # conjugate: posterior mode of x is 2 / (1 + 1) = 1 whatever the path
    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0)
        pm.Normal("y", x, 1.0, observed=2.0)
    values, report = map_start(model, seed=0, restarts=3, maxiter=200, anneal=(0.1, 0.5, 1.0))
    assert abs(float(values["x"]) - 1.0) < 1e-6
    assert report["anneal"] == [0.1, 0.5, 1.0] and report["distinct_modes"] == 1 and report["best_mode_hits"] == 3


def test_map_anneal_setting_is_validated():
    import pytest

    from regimecast.fit.sampler import SamplerSettings

    assert SamplerSettings(seed=1, map_anneal=[0.1, 1]).map_anneal == (0.1, 1.0)
    for bad in ((), (0.5,), (0.3, 0.1, 1.0), (0.0, 1.0), (0.5, 0.5, 1.0)):
        with pytest.raises(ValueError, match="map_anneal"):
            SamplerSettings(seed=1, map_anneal=bad)


def test_map_start_moves_coordinates_with_zero_gradient_so_nutpie_can_start():
    # z enters nothing but its prior: from restart 0 (PyMC's initial point, z = 0) its gradient
    # is exactly 0 at the mode, which nutpie refuses as a start; map_start jitters it
    from regimecast.fit.sampler import SamplerSettings, sample

    from scipy.optimize import minimize_scalar
    from scipy.stats import norm, t

    y = np.array([0.3, 2.0, 2.5])
    with pm.Model() as model:
        x = pm.Normal("x", 0.0, 1.0)
        pm.Normal("z", 0.0, 1.0, shape=3)
        pm.StudentT("y", nu=3.0, mu=x, sigma=1.0, observed=y)
    values, report = map_start(model, seed=0, restarts=1, maxiter=200, anneal=(0.5, 1.0))
    assert report["jittered_flat_coordinates"] == 3
    assert np.all(values["z"] != 0.0) and np.all(np.abs(values["z"]) <= 1.0)
    mode = minimize_scalar(lambda v: -(norm.logpdf(v) + t.logpdf(y, 3.0, loc=v).sum())).x
    assert abs(float(values["x"]) - mode) < 1e-4
    idata, _, init = sample(model, SamplerSettings(seed=0, chains=1, draws=20, tune=20, map_restarts=1),
                            progressbar=False)
    assert idata.posterior["z"].shape == (1, 20, 3) and init["jittered_flat_coordinates"] == 3
