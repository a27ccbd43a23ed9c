"""The numba potential and its hand-written gradient (regimecast.model.likelihood) against
independent references on the real panel: SciPy's multivariate Student-t densities and
softmax through the NumPy reference filter (value), the JAX kernels' potential and its
``jax.grad`` (value and every gradient entry), and the PyTensor Op in its three backends."""

from __future__ import annotations

from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.distributions import LKJCholesky
from numpyro.distributions.transforms import CorrCholeskyTransform
from scipy import special, stats

from regimecast.model import hmm
from regimecast.model.filter import potential
from regimecast.model.kernels import assemble
from regimecast.model.likelihood import panel_args, potential_and_grad, static_args, theta_of
from regimecast.model.likelihood.linalg import digamma
from regimecast.model.likelihood.vmath import vexp, vlog
from regimecast.model.spec import inputs, structure, variable_spec
from regimecast.model.prior_draws import prior_draws

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="module")
def setup(model_bundle):
    rm = model_bundle
    st = structure(rm.config, rm.priors)
    spec = variable_spec(rm.config, rm.priors, st)
    return rm, st, spec, inputs(rm.design)


def numba_potential(st, spec, panels, draw):
    return potential_and_grad(theta_of(draw, spec), tuple(static_args(st, spec)), tuple(panel_args(panels)))


def jax_potential(st, spec, panels, draw):
    value, grad = jax.value_and_grad(lambda d: potential(d, st, *panels))({k: jnp.asarray(v) for k, v in draw.items()})
    return float(value), theta_of({k: np.asarray(g) for k, g in grad.items()}, spec)


def draws(spec, n, seed):
    d = prior_draws(np.random.default_rng(seed), spec, n)
    return [{k: np.asarray(v[i]) for k, v in d.items()} for i in range(n)]


def scipy_potential(st, data, draw) -> float:
    """Independent reference: emission densities from SciPy's multivariate t (sub-covariance of
    each month's observed columns plus the rounding variance), transition rows from SciPy's
    softmax, the NumPy filter on the explicit joint matrix, and NumPyro's LKJ density and
    transform Jacobian."""
    p = {k: np.asarray(v) for k, v in assemble({k: jnp.asarray(v) for k, v in draw.items()}, st)._asdict().items()}
    P, O = p["init"].shape
    T = data.y.shape[0]
    ll = np.zeros((T, P * O))
    meas2 = np.diag(np.asarray(data.meas_sd) ** 2)
    for cols, months in data.patterns:
        for pp in range(P):
            for o in range(O):
                L = p["chol"][pp] * np.exp(p["log_scale"][o])[:, None]
                cov = (L @ L.T + meas2)[np.ix_(cols, cols)]
                for t in months:
                    mean = p["mean"][pp] + p["shift"][o] + p["ar_coef"] * np.nan_to_num(data.ar_lag[t])
                    ll[t, pp * O + o] = stats.multivariate_t(mean[cols], cov, df=float(p["nu"])).logpdf(data.y[t, cols])
    eye = np.eye(P)
    A = np.zeros((T, P * O, P * O))
    for t in range(T):
        enter = p["covariate_effect"] @ data.covariates[t] + p["enter"]
        for o2 in range(O):
            logits = (p["switch"] + enter[o2][None, :]) * (1 - eye) + p["stay"][o2][:, None] * eye
            rows = special.softmax(logits, axis=-1)
            for o in range(O):
                A[t, o::O, o2::O] = p["q_other"][o, o2] * rows
    lm = hmm.forward_filter(p["init"].ravel(), A, ll).log_marginal
    w = jnp.asarray(draw["corr"])
    Lc = CorrCholeskyTransform()(w)
    prior = float(jnp.sum(LKJCholesky(Lc.shape[-1], st.lkj_eta).log_prob(Lc)
                          + CorrCholeskyTransform().log_abs_det_jacobian(w, Lc)))
    return lm + prior


def test_value_equals_scipy_densities_through_the_numpy_reference_filter(setup):
    rm, st, spec, data = setup
    draw = draws(spec, 1, 11)[0]
    value, _ = numba_potential(st, spec, [data], draw)
    assert value == pytest.approx(scipy_potential(st, data, draw), rel=1e-10, abs=1e-8)


@pytest.mark.parametrize("family", ["student_t", "normal"])
def test_value_and_every_gradient_entry_equal_jax(setup, family):
    """Value to rel 1e-11 and each gradient entry to 1e-7 of the gradient's scale, at prior
    draws (far from the posterior: large gradients everywhere) and at a draw moved to a near
    boundary (very persistent policy, near-singular correlations)."""
    rm, st, spec, data = setup
    st = replace(st, family=family)
    sample = draws(spec, 3, 5)
    edge = dict(sample[0], switch_z=sample[0]["switch_z"] - 3.0, corr=sample[0]["corr"] * 4.0)
    for draw in (*sample, edge):
        value, grad = numba_potential(st, spec, [data], draw)
        ref_value, ref_grad = jax_potential(st, spec, [data], draw)
        assert value == pytest.approx(ref_value, rel=1e-11)
        assert np.all(np.isfinite(grad))
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-7, atol=1e-7 * np.max(np.abs(ref_grad)))


def test_second_panel_restarts_from_the_initial_distribution(setup):
    """Two panels (the posterior-SBC fit): value and gradient of the sum of both log marginals,
    each from the initial distribution, as the JAX potential with ``*panels``."""
    rm, st, spec, data = setup
    b = data._replace(y=data.y[:90] + 0.1, ar_lag=data.ar_lag[:90], covariates=data.covariates[:90],
                      patterns=((np.arange(data.y.shape[1]), np.arange(90)),))
    draw = draws(spec, 1, 7)[0]
    value, grad = numba_potential(st, spec, [data, b], draw)
    ref_value, ref_grad = jax_potential(st, spec, [data, b], draw)
    assert value == pytest.approx(ref_value, rel=1e-11)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-7, atol=1e-7 * np.max(np.abs(ref_grad)))
    one, _ = numba_potential(st, spec, [data], draw)
    assert value - one < -100.0                         # the second panel's log marginal counts


def test_digamma_matches_scipy():
    x = np.concatenate([np.linspace(0.05, 10.0, 400), np.geomspace(10.0, 1e6, 50)])
    got = np.array([digamma(v) for v in x])
    np.testing.assert_allclose(got, special.digamma(x), rtol=1e-12, atol=1e-12)


def logp_and_grad(model, mode: str):
    return model.compile_fn([model.logp(), model.dlogp()], mode=mode)


def test_model_log_density_agrees_across_backends(setup):
    """The PyMC model's log density and gradient through the Op compiled with numba (nutpie's
    path) and with PyTensor's C backend (``perform``) equal those of the JAX backend (the JAX
    kernels); a model on other data (the first 150 months) gets its own kernel inputs, not a
    cached graph of the first."""
    from regimecast.model.graph import build_model

    rm = setup[0]
    short = replace(rm.design, y=rm.design.y[:150], ar_lag=rm.design.ar_lag[:150], dates=rm.design.dates[:150],
                    covariates=rm.design.covariates[:150],
                    patterns=tuple((c, m[m < 150]) for c, m in rm.design.patterns if (m < 150).any()))
    values = {}
    for name, model, modes in (("full", rm.model, ("JAX", "NUMBA", "FAST_RUN")),
                               ("short", build_model(rm.config, rm.priors, short), ("JAX", "NUMBA"))):
        point = model.initial_point()
        point["mean_z"] = point["mean_z"] + 0.3
        ref_lp, ref_g = logp_and_grad(model, "JAX")(point)
        for mode in modes[1:]:
            lp, g = logp_and_grad(model, mode)(point)
            assert float(lp) == pytest.approx(float(ref_lp), rel=1e-11), (name, mode)
            np.testing.assert_allclose(g, ref_g, rtol=1e-7, atol=1e-7 * np.max(np.abs(ref_g)), err_msg=f"{name} {mode}")
        values[name] = float(ref_lp)
    assert values["short"] > values["full"] + 500.0      # 133 fewer months of data


def test_vectorised_exp_and_log_match_numpy():
    """vexp / vlog against NumPy's libm over the kernel's ranges and the special values, in
    place and out of place, across chunk boundaries (2,000 + 3 elements)."""
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-708, 709, 1000), rng.uniform(-1, 1, 1000),
                        [0.0, -0.0, np.nan, np.inf, -np.inf, -708.5, -1e-300, 1e-300]])
    out = np.empty_like(x)
    vexp(x, out)
    with np.errstate(all="ignore"):
        ref = np.exp(x)
    normal = x > -708
    np.testing.assert_allclose(out[normal], ref[normal], rtol=4e-16 * 4, atol=0)
    assert out[np.isnan(x)].size == 1 and np.isnan(out[np.isnan(x)]).all()
    assert out[x == -np.inf][0] == 0.0 and out[x == -708.5][0] == 0.0      # < 3e-308: 0
    inplace = x.copy()
    vexp(inplace, inplace)
    np.testing.assert_array_equal(inplace, out)

    u = np.concatenate([np.exp(rng.uniform(-700, 700, 1000)), rng.uniform(0.5, 2.0, 1000),
                        1.0 + rng.uniform(-1e-9, 1e-9, 100), [1.0, 0.0, -1.0, np.inf, np.nan]])
    out = np.empty_like(u)
    vlog(u, out)
    with np.errstate(all="ignore"):
        ref = np.log(u)
    finite = np.isfinite(ref)
    np.testing.assert_allclose(out[finite], ref[finite], rtol=4 * 2.2e-16, atol=2.3e-16)
    np.testing.assert_array_equal(out[-5:], [0.0, -np.inf, np.nan, np.inf, np.nan])
    inplace = u.copy()
    vlog(inplace, inplace)
    np.testing.assert_array_equal(inplace, out)
