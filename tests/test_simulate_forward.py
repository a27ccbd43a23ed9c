"""The forward simulator against the model's own equations: one-step state frequencies equal
the transition probabilities of :mod:`regimecast.model.kernels` (including the path-dependent
drawdown trigger), one-step moments equal the emission's mean and covariance, and levels
integrate the transforms exactly. Tolerances are Monte Carlo errors (z < 4.5)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from regimecast.model.kernels import Params, policy_transition
from regimecast.simulate.paths import (COV_DRAWDOWN, COV_FIXED, COV_OBSERVED, LEVEL_DIFF, LEVEL_EXP, LEVEL_IS_OBS,
                                 LEVEL_LOG_RETURN, ForwardSpec, Origin, forward_covariates, integrate,
                                 simulate_forward)

jax.config.update("jax_enable_x64", True)
P, O, D = 3, 4, 3
N = 200_000
Z = 4.5


def params(rng, nu=8.0) -> Params:
    A = rng.normal(size=(P, D, D))
    chol = np.linalg.cholesky(A @ A.transpose(0, 2, 1) + D * np.eye(D))
    return Params(init=jnp.full((P, O), 1.0 / (P * O)), q_other=jnp.asarray(rng.dirichlet(np.ones(O), size=O)),
                  switch=jnp.asarray(rng.normal(-1, 1, (P, P)) * (1 - np.eye(P))),
                  covariate_effect=jnp.asarray(rng.normal(0, 1, (P, 3))), stay=jnp.asarray(rng.normal(size=(O, P))),
                  enter=jnp.asarray(rng.normal(size=(O, P))), mean=jnp.asarray(rng.normal(size=(P, D))),
                  shift=jnp.asarray(rng.normal(size=(O, D))), ar_coef=jnp.asarray([0.0, 0.0, 0.8]),
                  chol=jnp.asarray(chol), log_scale=jnp.asarray(rng.normal(0, 0.3, (O, D))), nu=jnp.asarray(nu))


# series 0: a diff series (yield), 1: a log-return series (equity), 2: an AR log level (VIX)
SPEC = ForwardSpec(center=np.array([0.0, 0.0, 3.0]), level_rule=np.array([LEVEL_DIFF, LEVEL_LOG_RETURN, LEVEL_EXP]),
                   cov_kind=np.array([COV_DRAWDOWN, COV_OBSERVED, COV_FIXED]), cov_col=np.array([1, 2, 0]),
                   cov_window=np.array([4, 1, 1]), cov_center=np.array([0.0, 3.0, 0.0]),
                   cov_scale=np.array([0.1, 0.5, 1.0]), cov_fixed=np.array([0.0, 0.0, 0.7]),
                   meas_sd=np.array([1.0, 0.0, 0.0]))
WINDOW = np.array([[4.0, 100.0, 20.0], [4.1, 120.0, 22.0], [4.2, 110.0, 25.0], [4.3, 90.0, 30.0]])
ORIGIN = Origin(obs=np.array([0.1, -20.0, np.log(30.0)]), level=WINDOW[-1], window=WINDOW)


def test_covariates_follow_the_path():
    x = np.asarray(forward_covariates(SPEC, jnp.asarray(ORIGIN.obs)[None], jnp.asarray(WINDOW)[None]))[0]
    np.testing.assert_allclose(x, [(1 - 90.0 / 120.0) / 0.1, (np.log(30.0) - 3.0) / 0.5, 0.7], rtol=1e-12)


def test_integrate_each_transform():
    prev = jnp.array([4.0, 100.0, 20.0, 2.5])
    obs = jnp.array([0.25, 10.0, np.log(18.0), 3.1])
    rule = np.array([LEVEL_DIFF, LEVEL_LOG_RETURN, LEVEL_EXP, LEVEL_IS_OBS])
    np.testing.assert_allclose(np.asarray(integrate(prev, obs, rule)), [4.25, 100.0 * np.exp(0.1), 18.0, 3.1])


@pytest.mark.parametrize("family", ["student_t", "normal"])
def test_one_step_frequencies_and_moments_match_the_model(family):
    rng = np.random.default_rng(11)
    p = params(rng)
    p0, o0 = 1, 2
    probs0 = jnp.zeros((P, O)).at[p0, o0].set(1.0)
    levels, pol, oth = simulate_forward(jax.random.key(3), p, probs0, ORIGIN, SPEC, N, 2, family)
    pol, oth, levels = np.asarray(pol), np.asarray(oth), np.asarray(levels)

    # states: P(o1, p1) = Q[o0, o1] * Ptrans(x)[o1, p0, p1], x from the origin's path
    x = forward_covariates(SPEC, jnp.asarray(ORIGIN.obs)[None], jnp.asarray(WINDOW)[None])[0]
    expected = np.asarray(p.q_other)[o0][:, None] * np.asarray(policy_transition(p, x))[:, p0, :]   # (O, P)
    freq = np.zeros((O, P))
    np.add.at(freq, (oth[:, 0], pol[:, 0]), 1.0 / N)
    se = np.sqrt(expected * (1 - expected) / N)
    assert np.all(np.abs(freq - expected) <= Z * se + 1e-12)

    # observations in the most frequent state: mean and covariance of the emission
    o1, p1 = np.unravel_index(np.argmax(expected), expected.shape)
    sel = (oth[:, 0] == o1) & (pol[:, 0] == p1)
    obs = np.column_stack([levels[sel, 0, 0] - ORIGIN.level[0], 100 * np.log(levels[sel, 0, 1] / ORIGIN.level[1]),
                           np.log(levels[sel, 0, 2])])
    lag = np.array([0.0, 0.0, ORIGIN.obs[2] - 3.0])
    mean = np.asarray(p.mean)[p1] + np.asarray(p.shift)[o1] + np.asarray(p.ar_coef) * lag + SPEC.center
    s = np.exp(np.asarray(p.log_scale)[o1])
    cov = np.diag(s) @ np.asarray(p.chol)[p1] @ np.asarray(p.chol)[p1].T @ np.diag(s) + np.diag(SPEC.meas_sd ** 2)
    if family == "student_t":
        cov = cov * float(p.nu) / (float(p.nu) - 2)
    n = sel.sum()
    assert n > 10_000
    np.testing.assert_array_less(np.abs(obs.mean(0) - mean), Z * np.sqrt(np.diag(cov) / n))
    emp = np.cov(obs.T)
    # variance of a sample variance ~ 2 sigma^4 / n (Normal); heavier for Student-t(8): kurtosis factor 1 + 3/(nu-4)*2
    kurt = 1.0 if family == "normal" else 1.0 + 6.0 / (float(p.nu) - 4.0)
    np.testing.assert_array_less(np.abs(np.diag(emp) - np.diag(cov)), Z * np.diag(cov) * np.sqrt(2 * kurt / n))


def test_drawdown_on_the_simulated_path_moves_next_month_policy_probabilities():
    """Month 2's transition uses month 1's simulated drawdown: compare the frequency of
    entering each policy state at month 2 with the kernels' probabilities at each path's x."""
    rng = np.random.default_rng(12)
    p = params(rng)._replace(covariate_effect=jnp.asarray(np.array([[0.0, 0, 0], [0, 0, 0], [1.0, 0, 0]])),
                             switch=jnp.asarray(-2.0 * (1 - np.eye(P))), stay=jnp.zeros((O, P)),
                             enter=jnp.zeros((O, P)))
    probs0 = jnp.zeros((P, O)).at[0, 0].set(1.0)
    levels, pol, oth = (np.asarray(a) for a in simulate_forward(jax.random.key(4), p, probs0, ORIGIN, SPEC, N, 2, "normal"))
    win = np.concatenate([np.broadcast_to(WINDOW[1:], (N, 3, D)), levels[:, :1]], axis=1)
    obs1 = np.column_stack([levels[:, 0, 0] - ORIGIN.level[0], 100 * np.log(levels[:, 0, 1] / ORIGIN.level[1]),
                            np.log(levels[:, 0, 2])])
    x = np.asarray(forward_covariates(SPEC, jnp.asarray(obs1), jnp.asarray(win)))
    pt = np.asarray(jax.vmap(lambda xx: policy_transition(p, xx))(jnp.asarray(x)))          # (N, O, P, P)
    prob = pt[np.arange(N), oth[:, 1], pol[:, 0], 2]                                           # P(enter state 2)
    # within one (month-1 policy, month-2 other) cell only the drawdown moves the probability
    counts = np.zeros((P, O), int)
    np.add.at(counts, (pol[:, 0], oth[:, 1]), 1)
    p1, o2 = np.unravel_index(np.argmax(counts * (np.arange(P) != 2)[:, None]), counts.shape)
    cell = (pol[:, 0] == p1) & (oth[:, 1] == o2)
    deep = cell & (x[:, 0] > np.median(x[cell, 0]))
    hits = {}
    for name, grp in (("deep", deep), ("shallow", cell & ~deep)):
        hits[name], expect = (pol[grp, 1] == 2).mean(), prob[grp].mean()
        assert abs(hits[name] - expect) <= Z * np.sqrt(expect * (1 - expect) / grp.sum())
    # deeper simulated drawdowns -> visibly more entries into state 2 the month after
    assert hits["deep"] - hits["shallow"] > Z * np.sqrt(0.5 / cell.sum())
