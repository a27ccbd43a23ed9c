"""Exactness tests for the HMM core (regimecast.hmm, regimecast.hmm_pytensor).

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

from regimecast import hmm

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


def _markov_regression():
    return pytest.importorskip("statsmodels.tsa.regime_switching.markov_regression").MarkovRegression


@pytest.fixture(scope="module")
def sm_fedfunds(fred_dir):
    MarkovRegression = _markov_regression()
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
    MarkovRegression = _markov_regression()
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
    MarkovRegression = _markov_regression()
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


# ----------------------------------------------------------------------------- PyTensor
# Compiling scan graphs (and their gradients) costs seconds, so each backend compiles ONE
# function holding every graph the tests need (homogeneous and time-varying filter with
# gradients; the naive recursion in default mode; the smoother in JAX mode).

pytensor = pytest.importorskip("pytensor")
pt = pytest.importorskip("pytensor.tensor")
from regimecast import hmm_pytensor as hp  # noqa: E402

K_PT, T_PT = 4, 12


def _naive_log_space(pi, A, ll):
    """The 'obvious' log-space forward recursion; returns (log_marginal, grads w.r.t. pi, A, ll)."""

    def step(ll_t, la_prev, logA):
        return pt.log(pt.sum(pt.exp(la_prev[:, None] + logA), axis=0)) + ll_t

    la = pytensor.scan(step, sequences=[ll], outputs_info=[pt.log(pi)], non_sequences=[pt.log(A)],
                       return_updates=False)
    lm = pt.log(pt.sum(pt.exp(la[-1])))
    return [lm, *pytensor.grad(lm, [pi, A, ll])]


def _compile(mode, static):
    """Returns {name: callable}: name in {False, True} (time-varying?) maps to
    f(pi, A, ll) -> [log_marginal, filtered, log_predictive, dpi, dA, dll]; plus "naive"
    (default mode) or "smoother" (JAX mode)."""
    shp = (lambda *s: s) if static else (lambda *s: (None,) * len(s))
    pi = pt.tensor("pi", shape=shp(K_PT), dtype="float64")
    A2 = pt.tensor("A2", shape=shp(K_PT, K_PT), dtype="float64")
    A3 = pt.tensor("A3", shape=shp(T_PT, K_PT, K_PT), dtype="float64")
    ll = pt.tensor("ll", shape=shp(T_PT, K_PT), dtype="float64")
    outs = []
    for A in (A2, A3):
        lm, filt, lp = hp.forward_filter(pi, A, ll)
        outs += [lm, filt, lp, *pytensor.grad(lm, [pi, A, ll])]
    extra = "smoother" if mode == "JAX" else "naive"
    outs += [hp.smoother(A3, outs[7])] if extra == "smoother" else _naive_log_space(pi, A2, ll)
    f = pytensor.function([pi, A2, A3, ll], outs, mode=mode)
    dummy2, dummy3 = np.eye(K_PT), np.broadcast_to(np.eye(K_PT), (T_PT, K_PT, K_PT))

    def call(sl, tv):
        def g(pi_, A_, ll_):
            with np.errstate(all="ignore"):
                out = f(pi_, dummy2 if tv else A_, A_ if tv else dummy3, ll_)
            return [np.asarray(o) for o in out[sl]]
        return g

    return {False: call(slice(0, 6), False), True: call(slice(6, 12), True), extra: call(slice(12, None), extra == "smoother")}


def _extreme_problem(K, T, time_varying, rng):
    pi, A, ll = _random_problem(rng, K, T, time_varying)
    A = np.where(rng.random(A.shape) < 0.3, 1e-30, A)  # tiny transition probabilities
    A /= A.sum(-1, keepdims=True)
    pi = np.array([0.0, *rng.dirichlet(np.ones(K - 1))])
    ll[::2, 0] = -1e4  # exp underflows
    ll[1::3, 1] = -np.inf
    ll[2, :] = [-1e4 - 1.0, -1e4, -np.inf, *([-2e4] * (K - 3))][:K]  # all states hugely negative
    return pi, A, ll


@pytest.fixture(scope="module")
def pt_default():
    return _compile(None, static=False)


@pytest.fixture(scope="module")
def pt_jax():
    pytest.importorskip("jax")
    return _compile("JAX", static=True)  # JAX needs static shapes (as PyMC's jaxified graphs have)


def _check_against_numpy(f, pi, A, ll, atol=1e-10):
    lm, filt, lp, dpi, dA, dll = out = f(pi, A, ll)
    fr = hmm.forward_filter(pi, A, ll)
    sm = hmm.backward_smoother(A, fr)
    np.testing.assert_allclose(lm, fr.log_marginal, rtol=1e-12)
    np.testing.assert_allclose(filt, fr.filtered, atol=atol)
    np.testing.assert_allclose(lp, fr.log_predictive, rtol=1e-12, atol=1e-10)
    # identity: d log p(y) / d ll[t, k] = P(s_t = k | y_all)
    np.testing.assert_allclose(dll, sm, atol=1e-8)
    for g in (dpi, dA, dll):
        assert np.all(np.isfinite(g))
    return out


@pytest.mark.parametrize("time_varying", [False, True])
@pytest.mark.parametrize("backend", ["default", "jax"])
def test_pytensor_equals_numpy_and_grad_is_smoothed(backend, time_varying, request):
    f = request.getfixturevalue(f"pt_{backend}")[time_varying]
    rng = np.random.default_rng(11 + time_varying)
    pi, A, ll = _random_problem(rng, K_PT, T_PT, time_varying)
    _, _, _, dpi, dA, _ = _check_against_numpy(f, pi, A, ll)
    # gradients w.r.t. probabilities against central finite differences (unnormalised
    # perturbations are fine for the symbolic graph)
    eps = 1e-6
    for which, grad, idx in ((0, dpi, (1,)), (1, dA, (1, 2, 3)[: A.ndim])):
        up, dn = [pi, A, ll], [pi, A, ll]
        up[which], dn[which] = up[which].copy(), dn[which].copy()
        up[which][idx] += eps
        dn[which][idx] -= eps
        fd = (float(f(*up)[0]) - float(f(*dn)[0])) / (2 * eps)
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-6)


@pytest.mark.parametrize("time_varying", [False, True])
@pytest.mark.parametrize("backend", ["default", "jax"])
def test_pytensor_extreme_inputs_finite_gradients(backend, time_varying, request):
    """-1e4 / -inf log-likelihoods, 1e-30 transitions, zero initial mass: finite values and
    gradients, equal to NumPy, and gradient w.r.t. ll still equal to the smoothed marginals."""
    f = request.getfixturevalue(f"pt_{backend}")[time_varying]
    pi, A, ll = _extreme_problem(K_PT, T_PT, time_varying, np.random.default_rng(5))
    out = _check_against_numpy(f, pi, A, ll)
    assert out[0] < -1e4
    # the NumPy reference itself on the extreme prefix, against enumeration
    A6 = A[:6] if time_varying else A
    fr = hmm.forward_filter(pi, A6, ll[:6])
    _assert_matches(fr, hmm.backward_smoother(A6, fr), brute_force(pi, A6, ll[:6]))


@pytest.mark.parametrize("time_varying", [False, True])
def test_jax_autodiff_of_jaxified_forward_graph(time_varying, pt_jax):
    """numpyro differentiates the jaxified *forward* graph with JAX autodiff (not PyTensor's
    gradient graph): the result must be finite at extreme inputs and equal PyTensor's gradient."""
    jax = pytest.importorskip("jax")
    from pytensor.compile.mode import JAX
    from pytensor.graph.fg import FunctionGraph
    from pytensor.link.jax.dispatch import jax_funcify

    rng = np.random.default_rng(17)
    pi_n, A_n, ll_n = _random_problem(rng, K_PT, T_PT, time_varying)
    pi = pt.tensor("pi", shape=(K_PT,), dtype="float64")
    A = pt.tensor("A", shape=A_n.shape, dtype="float64")
    ll = pt.tensor("ll", shape=(T_PT, K_PT), dtype="float64")
    fg = FunctionGraph([pi, A, ll], [hp.forward_filter(pi, A, ll)[0]], clone=True)
    JAX.optimizer.rewrite(fg)  # what pymc.sampling.jax.get_jaxified_graph does
    fwd = jax_funcify(fg)
    vg = jax.jit(jax.value_and_grad(lambda *a: fwd(*a)[0], argnums=(0, 1, 2)))
    for args in ((pi_n, A_n, ll_n), _extreme_problem(K_PT, T_PT, time_varying, np.random.default_rng(5))):
        value, grads = vg(*args)
        lm, _, _, *pt_grads = pt_jax[time_varying](*args)
        np.testing.assert_allclose(float(value), lm, rtol=1e-12)
        for g_jax, g_pt in zip(grads, pt_grads):
            assert np.all(np.isfinite(np.asarray(g_jax)))
            np.testing.assert_allclose(np.asarray(g_jax), g_pt, rtol=1e-8, atol=1e-8)


def test_pytensor_smoother_jax(pt_jax):
    rng = np.random.default_rng(8)
    pi, A, ll = _random_problem(rng, K_PT, T_PT, True)
    fr = hmm.forward_filter(pi, A, ll)
    (smoothed,) = pt_jax["smoother"](pi, A, ll)
    np.testing.assert_allclose(smoothed, hmm.backward_smoother(A, fr), atol=1e-12)


def test_naive_log_space_scan_gives_nan_gradients(pt_default):
    """The obvious log-space recursion ``log(sum(exp(log_alpha[:, None] + log A), 0)) + ll_t``
    fails on -inf entries: with zero transition/initial probabilities a column of
    ``log_alpha[:, None] + log A`` is all -inf, and the backward pass meets
    ``-inf - (-inf)`` (PyTensor's logsumexp stabilisation subtracts the max) or ``0 * inf``
    (d log(x)/dx at x = 0), so the gradient is NaN although log p(y) is finite. Ours never
    takes the log of a probability and its per-step shift is max(ll_t) (finite), so no NaN."""
    pi = np.array([0.0, 0.4, 0.3, 0.3])
    A = np.array([[0.9, 0.1, 0.0, 0.0], [0.0, 0.8, 0.2, 0.0], [0.3, 0.0, 0.7, 0.0], [0.0, 0.0, 0.5, 0.5]])
    ll = np.random.default_rng(0).normal(size=(T_PT, K_PT))
    ll[1, 1] = -np.inf
    exact = hmm.forward_filter(pi, A, ll).log_marginal
    naive, *naive_grads = pt_default["naive"](pi, A, ll)
    ours, _, _, *our_grads = pt_default[False](pi, A, ll)
    np.testing.assert_allclose(ours, exact, rtol=1e-12)
    assert any(np.isnan(g).any() for g in naive_grads)
    assert all(np.isfinite(g).all() for g in our_grads)


def test_pytensor_numba_values():
    pytest.importorskip("numba")
    rng = np.random.default_rng(21)
    pi, A, ll = _random_problem(rng, K_PT, T_PT, True)
    piv, Av, llv = pt.dvector("pi"), pt.tensor3("A", dtype="float64"), pt.dmatrix("ll")
    f = pytensor.function([piv, Av, llv], list(hp.forward_filter(piv, Av, llv)), mode="NUMBA")
    fr = hmm.forward_filter(pi, A, ll)
    lm, filt, lp = f(pi, A, ll)
    np.testing.assert_allclose(lm, fr.log_marginal, rtol=1e-12)
    np.testing.assert_allclose(filt, fr.filtered, atol=1e-12)
    np.testing.assert_allclose(lp, fr.log_predictive, atol=1e-12)
