"""Exactness tests for the NumPy HMM reference (regimecast.model.hmm): brute force and statsmodels.

References: brute-force enumeration of all K^T paths, statsmodels' MarkovRegression on the
real monthly federal funds rate, and the identity d log p(y) / d ll[t, k] = P(s_t = k | y).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression   # a test dependency: import, never skip

from regimecast.model import hmm

# ----------------------------------------------------------------------------- brute force


def _brute_logjoint(pi, A, ll):
    """log p(s_0..T-1 = path, y) for every path; returns (paths (K^T, T), logp (K^T,))."""
    ll = np.asarray(ll, float)
    T, K = ll.shape
    At = np.broadcast_to(A, (T, K, K))
    paths = np.array(list(itertools.product(range(K), repeat=T)), dtype=int).reshape(-1, T)
    with np.errstate(divide="ignore"):
        logA = np.log(At)
        logp = np.log(pi @ At[0])[paths[:, 0]]
    for t in range(T):
        if t > 0:
            logp = logp + logA[t][paths[:, t - 1], paths[:, t]]
        logp = logp + ll[t, paths[:, t]]
    return paths, logp


def _brute_marginals(pi, A, ll):
    """(log p(y), P(s_t | y_all) (T, K)) by enumeration."""
    paths, logp = _brute_logjoint(pi, A, ll)
    T, K = np.shape(ll)
    logz = logsumexp(logp)
    post = np.exp(logp - logz)
    marg = np.stack([np.bincount(paths[:, t], weights=post, minlength=K) for t in range(T)])
    return logz, marg


def brute_force(pi, A, ll):
    """Slow reference: dict with log_marginal, filtered, predicted, log_predictive, smoothed."""
    ll = np.asarray(ll, float)
    T, K = ll.shape
    At = np.broadcast_to(A, (T, K, K))
    filtered, predicted, logz = np.empty((T, K)), np.empty((T, K)), np.empty(T + 1)
    logz[0] = 0.0
    for t in range(T):
        logz[t + 1], filt = _brute_marginals(pi, At[: t + 1], ll[: t + 1])
        filtered[t] = filt[t]
        prefix = ll[: t + 1].copy()
        prefix[t] = 0.0  # no information about y_t: marginal of s_t given y_<t
        predicted[t] = _brute_marginals(pi, At[: t + 1], prefix)[1][t]
    smoothed = _brute_marginals(pi, At, ll)[1]
    return dict(log_marginal=logz[-1], filtered=filtered, predicted=predicted,
                log_predictive=np.diff(logz), smoothed=smoothed)


def _random_problem(rng, K, T, time_varying):
    pi = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=(T, K) if time_varying else K)
    ll = rng.normal(scale=3.0, size=(T, K)) - 2.0
    return pi, A, ll


def _assert_matches(fr, sm, ref, atol=1e-10):
    assert np.isfinite(fr.log_marginal)
    np.testing.assert_allclose(fr.log_marginal, ref["log_marginal"], rtol=1e-10, atol=0)
    for name in ("filtered", "predicted", "log_predictive"):
        np.testing.assert_allclose(getattr(fr, name), ref[name], rtol=0, atol=atol, err_msg=name)
    np.testing.assert_allclose(sm, ref["smoothed"], rtol=0, atol=atol, err_msg="smoothed")
    np.testing.assert_allclose(fr.log_predictive.sum(), fr.log_marginal, rtol=1e-12)


# ----------------------------------------------------------------------------- NumPy core


@pytest.mark.parametrize("time_varying", [False, True])
@pytest.mark.parametrize("T", [1, 2, 5, 6])
@pytest.mark.parametrize("K", [2, 3])
def test_numpy_matches_brute_force(K, T, time_varying):
    rng = np.random.default_rng(1000 * K + 10 * T + time_varying)
    pi, A, ll = _random_problem(rng, K, T, time_varying)
    fr = hmm.forward_filter(pi, A, ll)
    sm = hmm.backward_smoother(A, fr)
    _assert_matches(fr, sm, brute_force(pi, A, ll))


@pytest.mark.parametrize("time_varying", [False, True])
def test_numpy_minus_inf_and_underflow(time_varying):
    """-inf and -1e5 log-likelihoods (exp underflows to 0): finite, no NaN, no warnings."""
    rng = np.random.default_rng(7)
    K, T = 3, 6
    pi, A, ll = _random_problem(rng, K, T, time_varying)
    ll[0] = [-np.inf, -1e5, -1e5 - 2.0]  # only underflowing states are possible
    ll[1] = [-1e5, -np.inf, -1e5 + 1.0]
    ll[2, 1] = -np.inf
    ll[3] = [-np.inf, -np.inf, -3.0]
    ll[4, 0] = -1e5
    pi = np.array([0.0, 0.3, 0.7])  # zero initial mass is fine too
    with warnings.catch_warnings(), np.errstate(invalid="raise", over="raise"):
        warnings.simplefilter("error")
        fr = hmm.forward_filter(pi, A, ll)
        sm = hmm.backward_smoother(A, fr)
    assert np.all(np.isfinite(fr.filtered)) and np.all(np.isfinite(sm))
    assert fr.log_marginal < -2e5
    _assert_matches(fr, sm, brute_force(pi, A, ll))
    assert fr.filtered[3, 2] == 1.0 and sm[3, 2] == 1.0


def test_numpy_zero_transitions_match_brute_force():
    rng = np.random.default_rng(3)
    A = np.array([[0.9, 0.1, 0.0], [0.0, 0.8, 0.2], [0.3, 0.0, 0.7]])
    pi = np.array([1.0, 0.0, 0.0])
    ll = rng.normal(size=(5, 3))
    fr = hmm.forward_filter(pi, A, ll)
    _assert_matches(fr, hmm.backward_smoother(A, fr), brute_force(pi, A, ll))


def test_numpy_validation_errors():
    pi, A, ll = np.array([0.5, 0.5]), np.eye(2), np.zeros((3, 2))
    with pytest.raises(ValueError, match="initial_probs must have shape"):
        hmm.forward_filter(np.ones(3) / 3, A, ll)
    with pytest.raises(ValueError, match="transition must have shape"):
        hmm.forward_filter(pi, np.ones((2, 2, 2)) / 2, ll)
    with pytest.raises(ValueError, match="log_likelihoods must have shape"):
        hmm.forward_filter(pi, A, np.zeros(3))
    with pytest.raises(ValueError, match="initial_probs must sum to one"):
        hmm.forward_filter(np.array([0.5, 0.6]), A, ll)
    with pytest.raises(ValueError, match="transition rows must sum to one"):
        hmm.forward_filter(pi, np.array([[0.5, 0.6], [0.5, 0.5]]), ll)
    with pytest.raises(ValueError, match="non-negative"):
        hmm.forward_filter(np.array([1.5, -0.5]), A, ll)
    with pytest.raises(ValueError, match="NaN"):
        hmm.forward_filter(pi, A, np.full((3, 2), np.nan))
    # the only possible state has zero predicted probability: observation impossible
    with pytest.raises(ValueError, match="zero probability"):
        hmm.forward_filter(np.array([1.0, 0.0]), np.eye(2), np.array([[-np.inf, 0.0]]))


# ----------------------------------------------------------------------------- statsmodels


def _fedfunds(fred_dir, start="1990-01", end="2019-12"):
    df = pd.read_csv(fred_dir / "FEDFUNDS.csv", parse_dates=["observation_date"], index_col="observation_date")
    return df["FEDFUNDS"].astype(float).loc[start:end]


def _gaussian_ll(y, means, variances):
    """(T, K) Gaussian log densities log N(y_t; means[k], variances[k])."""
    r = y[:, None] - means[None, :]
    return -0.5 * r**2 / variances[None, :] - 0.5 * np.log(2 * np.pi * variances[None, :])


def _mr_parts(mod, params):
    """(means (K,), variances (K,), column-oriented transition (K, K, T or 1)) of a MarkovRegression."""
    names = mod.param_names
    K = mod.k_regimes
    means = np.array([params[names.index(f"const[{k}]")] for k in range(K)])
    variances = np.array([params[names.index(f"sigma2[{k}]")] for k in range(K)])
    return means, variances, mod.regime_transition_matrix(params)


@pytest.fixture(scope="module")
def sm_fedfunds(fred_dir):
    y = _fedfunds(fred_dir).diff().dropna().to_numpy()
    mod = MarkovRegression(y, k_regimes=3, switching_variance=True)
    # MLE of ``mod.fit()`` (llf 421.35), rounded; hard-coded because fitting costs ~2 s and
    # exactness is checked at whatever parameters are given.
    params = np.array([9.0975e-01, 5.6081e-02, 7.5484e-02, 4.1746e-02, 9.3181e-01, 5.6547e-02,
                       2.2406e-04, 7.4139e-02, -2.6228e-01, 2.2373e-04, 1.4091e-02, 4.4235e-02])
    res = mod.smooth(params)
    assert abs(res.llf - 421.3528) < 1e-2
    return y, mod, res


def test_statsmodels_markov_regression_steady_state(sm_fedfunds):
    y, mod, res = sm_fedfunds
    means, variances, P = _mr_parts(mod, res.params)
    assert len(y) == 359 and P.shape == (3, 3, 1)
    A = P[:, :, 0].T  # statsmodels is column-oriented: P[i, j] = P(s_t=i | s_{t-1}=j)
    ll = _gaussian_ll(y, means, variances)
    np.testing.assert_allclose(ll, mod._conditional_loglikelihoods(res.params)[:, 0, :].T, atol=1e-12)
    pi = mod.initial_probabilities(res.params)  # steady state: invariant, so P(s_-2) = P(s_-1)
    np.testing.assert_allclose(pi @ A, pi, atol=1e-12)
    fr = hmm.forward_filter(pi, A, ll)
    sm = hmm.backward_smoother(A, fr)
    np.testing.assert_allclose(fr.log_marginal, res.llf, rtol=1e-10)
    np.testing.assert_allclose(fr.log_predictive, res.llf_obs, atol=1e-8)
    np.testing.assert_allclose(fr.filtered, res.filtered_marginal_probabilities, atol=1e-8)
    np.testing.assert_allclose(sm, res.smoothed_marginal_probabilities, atol=1e-8)


def test_statsmodels_known_initial_probabilities_convention(sm_fedfunds):
    """statsmodels' known ``initial_probabilities`` are P(s_{-2}) for MarkovRegression (its
    likelihoods carry a lag axis, so the order-1 filter applies the first transition twice);
    ours are P(s_{-1}), hence ``initial_probs = p_sm @ A``."""
    y, mod, res = sm_fedfunds
    p_sm = np.array([0.7, 0.2, 0.1])
    mod2 = MarkovRegression(y, k_regimes=3, switching_variance=True)
    mod2.initialize_known(p_sm)
    r2 = mod2.smooth(res.params)
    means, variances, P = _mr_parts(mod2, res.params)
    A, ll = P[:, :, 0].T, _gaussian_ll(y, means, variances)
    fr = hmm.forward_filter(p_sm @ A, A, ll)
    np.testing.assert_allclose(fr.log_marginal, r2.llf, rtol=1e-10)
    np.testing.assert_allclose(fr.filtered, r2.filtered_marginal_probabilities, atol=1e-8)
    np.testing.assert_allclose(hmm.backward_smoother(A, fr), r2.smoothed_marginal_probabilities, atol=1e-8)
    # passing statsmodels' vector unchanged is a different (wrong) model
    assert abs(hmm.forward_filter(p_sm, A, ll).log_marginal - r2.llf) > 1e-3


def test_statsmodels_time_varying_transition(fred_dir):
    """MarkovRegression with exog_tvtp (logistic transitions on the lagged rate level)."""
    lev = _fedfunds(fred_dir, "1989-12", "2019-12")
    y = lev.diff().dropna().to_numpy()
    z = lev.to_numpy()[:-1]
    X = np.column_stack([np.ones_like(y), (z - z.mean()) / z.std()])
    mod = MarkovRegression(y, k_regimes=2, switching_variance=True, exog_tvtp=X)
    p_sm = np.array([0.6, 0.4])
    mod.initialize_known(p_sm)
    # p[0->0].tvtp0, p[1->0].tvtp0, p[0->0].tvtp1, p[1->0].tvtp1, const[0], const[1], sigma2[0], sigma2[1]
    params = np.array([2.5, -2.0, 0.8, -1.2, 0.0, -0.05, 0.01, 0.12])
    r = mod.smooth(params)
    means, variances, P = _mr_parts(mod, params)
    A = np.transpose(P, (2, 1, 0))  # (T, K, K), row-stochastic
    assert A.shape == (len(y), 2, 2) and np.ptp(A[:, 0, 0]) > 0.1
    ll = _gaussian_ll(y, means, variances)
    fr = hmm.forward_filter(p_sm @ A[0], A, ll)
    np.testing.assert_allclose(fr.log_marginal, r.llf, rtol=1e-10)
    np.testing.assert_allclose(fr.filtered, r.filtered_marginal_probabilities, atol=1e-8)
    np.testing.assert_allclose(hmm.backward_smoother(A, fr), r.smoothed_marginal_probabilities, atol=1e-8)

