"""The factored forward filter / smoother of the regime-switching model (pure JAX), the
leave-one-out terms, and the fit's log density built on them.

Shared by the posterior state probabilities, the leave-one-out terms and the simulator;
:func:`potential` defines the fit's log density, which :mod:`regimecast.model.likelihood` computes
with its gradient in numba for the sampler (tested equal), and which the JAX backend of
:class:`regimecast.model.potential_op.PotentialOp` evaluates directly. No state, no randomness
here. Parameters, transitions and emissions are :mod:`regimecast.model.kernels`.

Shapes: T months, P policy states, O combinations of the other factors' states (joint
state k = p * O + o). Transition orientation everywhere: rows = from, columns = to.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from regimecast.model.kernels import (Inputs, Params, Structure, assemble, corr_log_prior, loglik_matrix,
                                      policy_transition)


def transitions(params: Params, covariates: jnp.ndarray) -> jnp.ndarray:
    """Policy transition probabilities for every month: (T, O, P, P)."""
    return jax.vmap(lambda x: policy_transition(params, x))(covariates)


def _predict(alpha, q_other, ptrans_t):
    """One-step prediction in factored form: alpha (P, O) -> (P, O).
    pred[p', o'] = sum_{p, o} alpha[p, o] Q[o, o'] Ptrans_t[o', p, p']."""
    return jnp.einsum("po,opq->qo", alpha @ q_other, ptrans_t)


class FilterOutput(NamedTuple):
    """The forward filter's output for one draw."""

    log_marginal: jnp.ndarray     # () log p(y_1:T)
    log_predictive: jnp.ndarray   # (T,) log p(y_t | y_<t)
    filtered: jnp.ndarray         # (T, P, O) P(state_t | y_<=t)
    predicted: jnp.ndarray        # (T, P, O) P(state_t | y_<t)


class LeaveOneOut(NamedTuple):
    """Each month left out, given every other month (one draw)."""

    log_density: jnp.ndarray      # (T,) log p(y_t | y_-t)
    state: jnp.ndarray            # (T, P, O) P(state_t | y_-t)


class MonthLeftOut(NamedTuple):
    """The log likelihood and :class:`LeaveOneOut` of one draw, from one forward pass."""

    log_marginal: jnp.ndarray     # () log p(y_1:T)
    log_density: jnp.ndarray      # (T,) log p(y_t | y_-t)
    state: jnp.ndarray            # (T, P, O) P(state_t | y_-t)


def forward(params: Params, ptrans: jnp.ndarray, ll: jnp.ndarray) -> FilterOutput:
    """Scaled forward filter over the factored joint state.

    ``ptrans`` (T, O, P, P), ``ll`` (T, P, O). Returns a :class:`FilterOutput`. Equal to :func:`regimecast.model.hmm.forward_filter`
    on the joint (T, K, K) transition (tested); probabilities are never logged, so gradients
    stay finite.
    """
    def step(alpha, inp):
        pt_, lt = inp
        pred = _predict(alpha, params.q_other, pt_)
        m = jax.lax.stop_gradient(jnp.max(lt))
        w = pred * jnp.exp(lt - m)
        c = jnp.sum(w)
        return w / c, (m + jnp.log(c), w / c, pred)

    _, (logp, filt, pred) = jax.lax.scan(step, params.init, (ptrans, ll), unroll=8)
    return FilterOutput(jnp.sum(logp), logp, filt, pred)


def smooth(params: Params, ptrans: jnp.ndarray, filtered: jnp.ndarray, predicted: jnp.ndarray) -> jnp.ndarray:
    """Backward (Kim) smoother in factored form: (T, P, O) = P(state_t | all data)."""
    def step(nxt, inp):
        filt_t, pred_next, pt_next = inp
        r = jnp.where(pred_next > 0, nxt / jnp.where(pred_next > 0, pred_next, 1.0), 0.0)
        back = jnp.einsum("opq,qo->po", pt_next, r) @ params.q_other.T
        cur = filt_t * back
        return cur, cur

    last = filtered[-1]
    _, sm = jax.lax.scan(step, last, (filtered[:-1], predicted[1:], ptrans[1:]), reverse=True)
    return jnp.concatenate([sm, last[None]], axis=0)


def leave_one_out(params: Params, ptrans: jnp.ndarray, ll: jnp.ndarray, predicted: jnp.ndarray) -> LeaveOneOut:
    """Each month left out, given every other month: :class:`LeaveOneOut`.

    ``log_density[t] = log p(y_t | y_{-t})`` and ``state[t] = P(state_t | y_{-t})`` for one draw,
    by the scaled backward messages ``beta_t = p(y_{t+1:T} | state_t)`` (up to a constant per
    month): ``p(y_t | y_{-t}) = sum pred_t e_t beta_t / sum pred_t beta_t``. The AR lags of later
    months are regressors (the conditional likelihood of AR models), so ``p(y | theta) =
    p(y_{-t} | theta) p(y_t | y_{-t}, theta)`` holds exactly and ``1 / p(y_t | y_{-t}, theta)``
    is the exact leave-one-out importance ratio (Buerkner, Gabry and Vehtari 2021, "Efficient
    leave-one-out cross-validation for Bayesian non-factorized normal and Student-t models",
    Comput. Stat. 36). The last month's term is its one-step-ahead predictive density.
    ``ptrans`` (T, O, P, P), ``ll`` (T, P, O), ``predicted`` (T, P, O) from :func:`forward`."""
    def step(beta_next, inp):
        lt_next, pt_next = inp
        r = beta_next * jnp.exp(lt_next - jnp.max(lt_next))
        beta = jnp.einsum("opq,qo->po", pt_next, r) @ params.q_other.T
        beta = beta / jnp.sum(beta)
        return beta, beta

    last = jnp.ones_like(predicted[-1])
    _, betas = jax.lax.scan(step, last, (ll[1:], ptrans[1:]), reverse=True)
    w = predicted * jnp.concatenate([betas, last[None]], axis=0)                   # (T, P, O)
    total = jnp.sum(w, axis=(1, 2))
    logw = jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)), -jnp.inf)
    log_density = logsumexp(logw + ll, axis=(1, 2)) - jnp.log(total)
    return LeaveOneOut(log_density, w / total[:, None, None])


def log_marginal(params: Params, data: Inputs, family: str) -> jnp.ndarray:
    """log p(y | params), the states summed out exactly (scalar)."""
    return forward(params, transitions(params, data.covariates), loglik_matrix(params, data, family)).log_marginal


def potential(draw: dict, st: Structure, data: Inputs, *panels: Inputs) -> jnp.ndarray:
    """What the PyMC model adds to its prior terms: log p(y | params) + the correlation prior;
    further ``panels`` (independent given the parameters) add their log marginal likelihoods."""
    params = assemble(draw, st)
    return sum(log_marginal(params, d, st.family) for d in (data, *panels)) + corr_log_prior(draw, st)


def month_left_out(params: Params, data: Inputs, family: str) -> MonthLeftOut:
    """:class:`MonthLeftOut` of one draw: the log likelihood and :func:`leave_one_out` of every
    month, from one forward pass."""
    ptrans = transitions(params, data.covariates)
    ll = loglik_matrix(params, data, family)
    lm, _, _, pred = forward(params, ptrans, ll)
    return MonthLeftOut(lm, *leave_one_out(params, ptrans, ll, pred))


def map_draws(fn, draws: dict, chunk: int):
    """``fn`` (one draw -> pytree of arrays) vmapped over the leading draw axis of ``draws``,
    ``chunk`` draws per compiled call (bounds memory); the outputs concatenated as NumPy."""
    f = jax.jit(jax.vmap(fn))
    S = len(next(iter(draws.values())))
    parts = [f({k: v[a:a + chunk] for k, v in draws.items()}) for a in range(0, S, chunk)]
    return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), parts[0], *parts[1:])


def loo_mixture_potential(draw: dict, st: Structure, data: Inputs) -> jnp.ndarray:
    """:func:`potential` plus ``log sum_t 1 / p(y_t | y_-t, theta)``: with the prior terms, the
    log density (up to a constant) of the mixture of every month's leave-one-out posterior,
    p(theta | y) sum_t 1 / p(y_t | y_-t, theta) (Silva and Zanella 2023, "Robust leave-one-out
    cross-validation for high-dimensional Bayesian models", JASA 119(547))."""
    lm, loo, _ = month_left_out(assemble(draw, st), data, st.family)
    return lm + logsumexp(-loo) + corr_log_prior(draw, st)


def last_filtered(params: Params, data: Inputs, family: str) -> jnp.ndarray:
    """(P, O) joint state distribution at the last month given all data (the forecast origin);
    the forward pass only."""
    return forward(params, transitions(params, data.covariates), loglik_matrix(params, data, family)).filtered[-1]


class MonthTerms(NamedTuple):
    """Per-month quantities of one draw: ``one_step`` (T,) log p(y_t | y_{<t}); ``loo`` (T,)
    log p(y_t | y_{-t}); ``filtered``, ``smoothed`` (T, P, O) state probabilities."""

    one_step: jnp.ndarray
    loo: jnp.ndarray
    filtered: jnp.ndarray
    smoothed: jnp.ndarray


def state_probabilities(params: Params, data: Inputs, family: str) -> MonthTerms:
    """The month-by-month log densities and state probabilities of one draw."""
    ptrans = transitions(params, data.covariates)
    ll = loglik_matrix(params, data, family)
    _, logp, filt, pred = forward(params, ptrans, ll)
    return MonthTerms(logp, leave_one_out(params, ptrans, ll, pred).log_density, filt, smooth(params, ptrans, filt, pred))
