"""Simulation from the model (JAX, explicit keys, ``lax.scan`` over months).

``simulate_panel`` draws a hidden state path and observations given exogenous covariates:
the generative model the likelihood conditions on, used to check parameter recovery.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from regimecast.kernels import Params, policy_transition


def draw_emission(key: jax.Array, params: Params, p: jnp.ndarray, o: jnp.ndarray, lag: jnp.ndarray,
                  family: str) -> jnp.ndarray:
    """One observation vector (D,) given policy state ``p``, other-factor combination ``o``
    and the AR lags ``lag`` (D,) (centred units)."""
    k1, k2 = jax.random.split(key)
    D = params.mean.shape[1]
    eps = params.chol[p] @ jax.random.normal(k1, (D,))
    if family == "student_t":
        eps = eps * jnp.sqrt(params.nu / (2.0 * jax.random.gamma(k2, params.nu / 2.0)))
    return params.mean[p] + params.shift[o] + params.ar_coef * lag + jnp.exp(params.log_scale[o]) * eps


def simulate_panel(key: jax.Array, params: Params, covariates: jnp.ndarray, lag0: jnp.ndarray,
                   family: str) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Simulate T months given exogenous lagged covariates (T, C) and the pre-sample AR lag
    ``lag0`` (D,). Returns ``(y (T, D), policy (T,), other (T,))``; y in centred model units."""
    P, O = params.init.shape

    def step(carry, inp):
        joint_prev, lag = carry                  # joint_prev: (P, O) one-hot of the previous state
        k, x = inp
        ks, ke = jax.random.split(k)
        ptrans = policy_transition(params, x)    # (O, P, P)
        pred = jnp.einsum("po,opq->qo", joint_prev @ params.q_other, ptrans)
        idx = jax.random.categorical(ks, jnp.log(pred.ravel()))
        p, o = idx // O, idx % O
        y = draw_emission(ke, params, p, o, lag, family)
        nxt = jnp.zeros((P, O)).at[p, o].set(1.0)
        new_lag = jnp.where(params.ar_coef != 0, y, 0.0)
        return (nxt, new_lag), (y, p, o)

    k0, key = jax.random.split(key)
    first = jax.random.categorical(k0, jnp.log(params.init.ravel()))
    start = jnp.zeros((P, O)).at[first // O, first % O].set(1.0)   # state of the pre-sample month
    keys = jax.random.split(key, covariates.shape[0])
    _, (y, p, o) = jax.lax.scan(step, (start, jnp.asarray(lag0)), (keys, covariates))
    return y, p, o


def sample_prior(key: jax.Array, spec: dict) -> dict[str, np.ndarray]:
    """One draw of the sampler's free variables from their prior; ``spec`` is
    :func:`regimecast.model.variable_spec`. Correlations are drawn from LKJ(eta) and mapped to
    the unconstrained space the sampler uses."""
    from numpyro.distributions import LKJCholesky
    from numpyro.distributions.transforms import CorrCholeskyTransform

    out = {}
    for k, (name, v) in zip(jax.random.split(key, len(spec)), spec.items()):
        if v.kind == "dirichlet":
            out[name] = jax.random.dirichlet(k, jnp.asarray(v.params[0]))
        elif v.kind == "normal01":
            out[name] = jax.random.normal(k, v.shape)
        elif v.kind == "beta":
            out[name] = jax.random.beta(k, jnp.asarray(v.params[0]), jnp.asarray(v.params[1]))
        elif v.kind == "gamma":
            out[name] = jax.random.gamma(k, v.params[0]) / v.params[1]
        else:
            n_states, dim, eta = v.params
            out[name] = CorrCholeskyTransform().inv(LKJCholesky(dim, eta).sample(k, (n_states,)))
    return {k: np.asarray(v) for k, v in out.items()}
