"""JAX kernels against independent references: the NumPy filter/smoother on the explicit
joint transition, SciPy's multivariate densities, and finite gradients of the model's
potential at extreme parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from regimecast.model import hmm
from regimecast.model.filter import forward, smooth, transitions
from regimecast.model.kernels import Params, emission_logpdf, policy_transition

jax.config.update("jax_enable_x64", True)
P, O, D, C, T = 3, 4, 3, 2, 9


def random_params(rng, nu=6.0) -> Params:
    A = rng.normal(size=(P, D, D))
    chol = np.linalg.cholesky(A @ A.transpose(0, 2, 1) + D * np.eye(D))
    init = rng.dirichlet(np.ones(P * O)).reshape(P, O)
    q = rng.dirichlet(np.ones(O), size=O)
    return Params(init=jnp.asarray(init), q_other=jnp.asarray(q), switch=jnp.asarray(rng.normal(-2, 1, (P, P))),
                  covariate_effect=jnp.asarray(rng.normal(size=(P, C))), stay=jnp.asarray(rng.normal(size=(O, P))),
                  enter=jnp.asarray(rng.normal(size=(O, P))), mean=jnp.asarray(rng.normal(size=(P, D))),
                  shift=jnp.asarray(rng.normal(size=(O, D))), ar_coef=jnp.asarray([0.0, 0.7, 0.0]),
                  chol=jnp.asarray(chol), log_scale=jnp.asarray(rng.normal(0, 0.3, (O, D))), nu=jnp.asarray(nu))


MEAS_SD = np.array([0.0, 0.2, 0.05])


def joint_transition(p: Params, ptrans: np.ndarray) -> np.ndarray:
    """Explicit (T, K, K) joint matrix, k = policy * O + other: Q[o, o'] * Ptrans[o', p, p']."""
    A = np.zeros((ptrans.shape[0], P * O, P * O))
    q = np.asarray(p.q_other)
    for t in range(ptrans.shape[0]):
        for pp in range(P):
            for o in range(O):
                for pq in range(P):
                    for oq in range(O):
                        A[t, pp * O + o, pq * O + oq] = q[o, oq] * ptrans[t, oq, pp, pq]
    return A


def test_policy_transition_rows_are_probabilities_and_stay_is_reference():
    p = random_params(np.random.default_rng(0))
    x = np.array([0.3, -1.0])
    probs = np.asarray(policy_transition(p, x))
    assert probs.shape == (O, P, P)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-12)
    # closed form for one entry: softmax of [stay, switch + beta.x + enter]
    o, i = 1, 0
    logits = np.array([np.asarray(p.switch)[i, j] + np.asarray(p.covariate_effect)[j] @ x + np.asarray(p.enter)[o, j]
                       for j in range(P)])
    logits[i] = np.asarray(p.stay)[o, i]
    np.testing.assert_allclose(probs[o, i], np.exp(logits) / np.exp(logits).sum(), rtol=1e-12)


def test_factored_filter_and_smoother_equal_reference_on_joint_matrix():
    rng = np.random.default_rng(1)
    p = random_params(rng)
    ptrans = np.asarray(transitions(p, jnp.asarray(rng.normal(size=(T, C)))))
    ll = rng.normal(0, 3, size=(T, P, O))
    ll[3, 1, 2] = -np.inf                                       # an impossible state is fine
    lm, logp, filt, pred = forward(p, jnp.asarray(ptrans), jnp.asarray(ll))
    ref = hmm.forward_filter(np.asarray(p.init).ravel(), joint_transition(p, ptrans), ll.reshape(T, P * O))
    # our init is the distribution before the first month, like hmm's initial_probs
    np.testing.assert_allclose(float(lm), ref.log_marginal, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(logp), ref.log_predictive, atol=1e-10)
    np.testing.assert_allclose(np.asarray(filt).reshape(T, -1), ref.filtered, atol=1e-12)
    sm = smooth(p, jnp.asarray(ptrans), filt, pred)
    np.testing.assert_allclose(np.asarray(sm).reshape(T, -1),
                               hmm.backward_smoother(joint_transition(p, ptrans), ref), atol=1e-10)


@pytest.mark.parametrize("family", ["student_t", "normal"])
def test_emission_matches_scipy_including_missing_columns(family):
    rng = np.random.default_rng(2)
    p = random_params(rng, nu=5.0)
    y = rng.normal(size=(4, D))
    lag = rng.normal(size=(4, D))
    for cols in (np.arange(D), np.array([0, 2])):
        got = np.asarray(emission_logpdf(p, jnp.asarray(y[:, cols]), jnp.asarray(lag), cols, family, MEAS_SD))
        for t in range(4):
            for pp in range(P):
                for o in range(O):
                    s = np.exp(np.asarray(p.log_scale)[o])
                    mean = np.asarray(p.mean)[pp] + np.asarray(p.shift)[o] + np.asarray(p.ar_coef) * lag[t]
                    L = np.diag(s) @ np.asarray(p.chol)[pp]
                    cov = (L @ L.T + np.diag(MEAS_SD ** 2))[np.ix_(cols, cols)]
                    dist = stats.multivariate_t(mean[cols], cov, df=5.0) if family == "student_t" \
                        else stats.multivariate_normal(mean[cols], cov)
                    assert got[t, pp, o] == pytest.approx(dist.logpdf(y[t, cols]), rel=1e-10)


@pytest.mark.parametrize("mode", ["JAX", "NUMBA"])
def test_model_potential_gradients_are_finite_at_extremes(model_bundle, mode):
    """The PyMC model's logp gradient is finite at the initial point and far out in the
    tails (very negative switch logits, tiny sds, near-degenerate correlations), through the
    JAX kernels and through the numba kernel the sampler uses."""
    model = model_bundle.model
    f = model.compile_fn([model.logp(), model.dlogp()], mode=mode)
    point = model.initial_point()
    lp, g = f(point)
    assert np.isfinite(lp) and np.all(np.isfinite(g))
    extreme = dict(point)
    extreme["switch_z"] = np.full_like(point["switch_z"], -8.0)
    extreme["log_sd_z"] = np.full_like(point["log_sd_z"], -5.0)
    extreme["corr"] = np.full_like(point["corr"], 6.0)
    for k in extreme:
        if k.endswith("_simplex__"):
            extreme[k] = np.full_like(point[k], -15.0)
    assert np.all(np.isfinite(f(extreme)[1]))


def test_model_with_a_second_panel_adds_its_exact_log_marginal(model_bundle):
    """``build_model(..., panels=(B,))`` (the posterior-SBC fit of benchmarks/recovery.py) has
    log density logp_A(x) + log p(B | x): checked against the one-panel model and the kernel's
    log marginal of B (the first 120 months) at a point away from the initial one."""
    from dataclasses import replace

    from regimecast.model.filter import log_marginal
    from regimecast.model.kernels import assemble
    from regimecast.model.graph import build_model
    from regimecast.model.spec import inputs, structure

    rm = model_bundle
    a = rm.design
    b = replace(a, y=a.y[:120], ar_lag=a.ar_lag[:120], covariates=a.covariates[:120], dates=a.dates[:120],
                patterns=tuple((c, m[m < 120]) for c, m in a.patterns if (m < 120).any()))
    one = rm.model
    two = build_model(rm.config, rm.priors, a, panels=(b,))
    point = one.initial_point()
    point["mean_z"] = point["mean_z"] + 0.3
    point["switch_z"] = point["switch_z"] - 0.5
    st = structure(rm.config, rm.priors)
    natural = one.unobserved_value_vars
    values = one.compile_fn(natural, inputs=one.value_vars, on_unused_input="ignore")(point)
    draw = {v.name: jnp.asarray(x) for v, x in zip(natural, values) if v.name in {rv.name for rv in one.free_RVs}}
    lm_b = float(log_marginal(assemble(draw, st), inputs(b), st.family))
    assert np.isfinite(lm_b) and lm_b < 0
    assert float(two.compile_logp()(point)) == pytest.approx(float(one.compile_logp()(point)) + lm_b, rel=1e-12)
    potentials = [float(m.compile_logp(vars=m.potentials)(point)) for m in (one, two)]
    assert potentials[1] == pytest.approx(potentials[0] + lm_b, rel=1e-12)


def test_corr_cholesky_jacobian_matches_numpyro_and_stays_finite():
    from numpyro.distributions.transforms import CorrCholeskyTransform

    from regimecast.model.kernels import corr_cholesky_log_jacobian

    t = CorrCholeskyTransform()
    w = jnp.asarray(np.random.default_rng(3).normal(0, 1.0, size=(5, 21)))
    np.testing.assert_allclose(np.asarray(corr_cholesky_log_jacobian(w)),
                               np.asarray(t.log_abs_det_jacobian(w, t(w))), rtol=1e-10)
    extreme = jnp.full((21,), 8.0)
    g = jax.grad(lambda x: corr_cholesky_log_jacobian(x))(extreme)
    assert np.all(np.isfinite(np.asarray(g)))
    assert not np.all(np.isfinite(np.asarray(jax.grad(lambda x: t.log_abs_det_jacobian(x, t(x)))(extreme))))


def test_gradient_of_log_marginal_is_the_smoothed_probability():
    """Closed-form identity: d log p(y) / d ll[t, k] = P(s_t = k | y_all)."""
    rng = np.random.default_rng(4)
    p = random_params(rng)
    ptrans = transitions(p, jnp.asarray(rng.normal(size=(T, C))))
    ll = jnp.asarray(rng.normal(0, 2, size=(T, P, O)))
    grad = jax.grad(lambda x: forward(p, ptrans, x)[0])(ll)
    _, _, filt, pred = forward(p, ptrans, ll)
    np.testing.assert_allclose(np.asarray(grad), np.asarray(smooth(p, ptrans, filt, pred)), atol=1e-10)


def test_naive_log_space_scan_has_nan_gradients_where_ours_is_finite():
    """The 'obvious' log-space recursion logsumexp(log alpha + log A) written with log(sum(exp))
    gives NaN gradients once a transition probability is 0 and a state is impossible; the
    scaled recursion never takes a log of a probability."""
    rng = np.random.default_rng(5)
    p = random_params(rng)
    ptrans = np.array(transitions(p, jnp.asarray(rng.normal(size=(T, C)))))
    ptrans[:, :, 0, 1] = 0.0
    ptrans /= ptrans.sum(-1, keepdims=True)
    ll = rng.normal(0, 2, size=(T, P, O))
    ll[2, 1, :] = -np.inf
    A = jnp.asarray(np.stack([joint_transition(p, ptrans[t:t + 1])[0] for t in range(T)]))

    llv = jnp.asarray(ll).reshape(T, -1)

    def naive(Am):
        def step(la, x):
            At, lt = x
            return jnp.log(jnp.sum(jnp.exp(la[:, None] + jnp.log(At)), axis=0)) + lt, None
        la, _ = jax.lax.scan(step, jnp.log(p.init.ravel()), (Am, llv))
        return jnp.log(jnp.sum(jnp.exp(la)))

    g_naive = jax.grad(naive)(A)
    g_ours = jax.grad(lambda pt_: forward(p, pt_, jnp.asarray(ll))[0])(jnp.asarray(ptrans))
    assert np.isnan(np.asarray(g_naive)).any()
    assert np.all(np.isfinite(np.asarray(g_ours)))
    assert float(naive(A)) == pytest.approx(float(forward(p, jnp.asarray(ptrans), jnp.asarray(ll))[0]), rel=1e-10)


def test_small_linear_algebra_matches_numpy():
    from regimecast.model.kernels import small_cholesky, state_cholesky, tril_inverse

    rng = np.random.default_rng(6)
    A = rng.normal(size=(4, 7, 7))
    S = A @ A.transpose(0, 2, 1) + 7 * np.eye(7)
    L = np.linalg.cholesky(S)
    np.testing.assert_allclose(np.asarray(small_cholesky(jnp.asarray(S))), L, atol=1e-12)
    np.testing.assert_allclose(np.asarray(tril_inverse(jnp.asarray(L))), np.linalg.inv(L), atol=1e-12)
    p = random_params(rng)
    m = np.array([0.0, 0.3, 0.1])
    for cols in (np.array([0, 1, 2]), np.array([0, 2]), np.array([1, 2])):
        got = np.asarray(state_cholesky(p, cols, m))                                            # (P, O, n, n)
        for pp in range(P):
            for o in range(O):
                s = np.exp(np.asarray(p.log_scale)[o])
                cov = np.diag(s) @ np.asarray(p.chol)[pp] @ np.asarray(p.chol)[pp].T @ np.diag(s) + np.diag(m**2)
                np.testing.assert_allclose(got[pp, o], np.linalg.cholesky(cov[np.ix_(cols, cols)]), atol=1e-12)


def test_no_lapack_custom_calls_in_batched_posterior_kernels(model_bundle):
    """Regression: LAPACK custom calls (trsm, geqrf, potrf) vmapped over posterior draws
    deadlocked XLA's intra-op pool on a 2-core CPU (jaxlib 0.10.2; the CI run hung). The
    potential, its gradient and the batched state probabilities must lower to plain XLA ops."""
    from regimecast.model.filter import potential, state_probabilities
    from regimecast.model.kernels import assemble
    from regimecast.model.spec import inputs, structure, variable_spec
    from regimecast.model.prior_draws import prior_draws

    rm = model_bundle
    st, data = structure(rm.config, rm.priors), inputs(rm.design)
    draw = {k: jnp.asarray(v[0]) for k, v in prior_draws(np.random.default_rng(0), variable_spec(rm.config, rm.priors, st), 1).items()}
    batch = {k: jnp.stack([v] * 3) for k, v in draw.items()}
    texts = [
        jax.jit(jax.value_and_grad(lambda d: potential(d, st, data))).lower(draw).as_text(),
        jax.jit(jax.vmap(lambda d: state_probabilities(assemble(d, st), data, st.family))).lower(batch).as_text(),
    ]
    for text in texts:
        assert "custom_call" not in text


def test_leave_one_out_is_the_ratio_of_marginals_with_and_without_the_month():
    """p(y_t | y_-t) = p(y) / p(y_-t), the month's emission dropped from the NumPy filter on the
    joint matrix; its state distribution is that filter's smoothed one at t."""
    from regimecast.model.filter import leave_one_out

    rng = np.random.default_rng(4)
    p = random_params(rng)
    ptrans = np.asarray(transitions(p, jnp.asarray(rng.normal(size=(T, C)))))
    ll = rng.normal(0, 3, size=(T, P, O))
    ll[5] -= 700.0                                              # an outlier month: far below every state
    ll[3, 1, 2] = -np.inf
    _, logp, _, pred = forward(p, jnp.asarray(ptrans), jnp.asarray(ll))
    loo, state = leave_one_out(p, jnp.asarray(ptrans), jnp.asarray(ll), pred)
    A, init = joint_transition(p, ptrans), np.asarray(p.init).ravel()
    full = hmm.forward_filter(init, A, ll.reshape(T, P * O))
    for t in range(T):
        dropped = ll.reshape(T, P * O).copy()
        dropped[t] = 0.0
        ref = hmm.forward_filter(init, A, dropped)
        np.testing.assert_allclose(float(loo[t]), full.log_marginal - ref.log_marginal, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(np.asarray(state[t]).ravel(), hmm.backward_smoother(A, ref)[t], atol=1e-10)
    assert float(loo[-1]) == pytest.approx(float(logp[-1]), abs=1e-12)    # nothing after the last month
    assert float(loo[5]) < -650.0
