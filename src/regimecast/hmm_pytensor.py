"""Symbolic (PyTensor) forward filter for use inside PyMC models; compiles to C, JAX and Numba.

Same conventions as :mod:`regimecast.hmm`: ``initial_probs`` (K,) = P(s_{-1}) (before the
first observation); ``transition`` (K, K) or (T, K, K), rows = from, columns = to,
``transition[t][i, j] = P(s_t = j | s_{t-1} = i)`` applied at every t including 0;
``log_likelihoods`` (T, K) = ``log p(y_t | s_t = k)``.

Recursion (one ``scan`` step per observation, scaled probabilities, no log of probabilities):

    pred_t  = alpha_{t-1} @ A_t                       (alpha_{-1} = initial_probs)
    m_t     = max_k ll_t[k]                           (gradient stopped: a pure shift;
                                                       JAX autodiff of the forward graph
                                                       sees it, but it cancels exactly)
    w_t     = pred_t * exp(ll_t - m_t)
    c_t     = sum_k w_t[k]
    alpha_t = w_t / c_t
    log p(y_t | y_<t) = m_t + log c_t

Why the gradients are finite: probabilities are never logged, so a zero/tiny predicted or
transition probability (1e-30) contributes ``0 * finite`` to backprop instead of
``d log(p)/dp = 1/p``; ``exp(ll - m)`` with ``ll = -inf`` or ``-1e4`` is 0 and its derivative
``exp(ll - m)`` is 0, never ``inf``; ``c_t >= pred_t[argmax ll_t] > 0`` stays away from zero
(``pred_t[j] >= min_i A_t[i, j]``), so ``log c_t`` and ``1 / c_t`` are finite. A naive
log-space recursion ``logsumexp(log alpha + log A)`` written as ``log(sum(exp(...)))`` over
``-inf`` entries produces ``-inf - (-inf) = nan`` or ``0 * inf`` in the backward pass.
Caveat: if the state with the largest log-likelihood at some t has predicted probability
exactly 0 (exact zeros in a transition column) and all other states underflow, ``c_t = 0``
and the log-likelihood is -inf.

Backends: one ``scan`` (-> one ``lax.scan`` in JAX, a Numba loop in NUMBA mode) with a
K x K mat-vec per step; no Python-level branching. Works with ``pytensor.function(mode="JAX")``
(inputs need static shapes for the *gradient* graph -- PyTensor's scan gradient allocates
buffers from input shapes; PyMC's jaxified graphs have them), with JAX autodiff of the
jaxified forward graph (numpyro's path), and with ``mode="NUMBA"`` (nutpie).

Identity useful for testing: ``d log_marginal / d log_likelihoods[t, k] = P(s_t = k | y_all)``.
"""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt
from pytensor.gradient import disconnected_grad

__all__ = ["forward_filter", "smoother"]


def _step_update(pred, ll_t):
    """One measurement update: pred (K,), ll_t (K,) -> (alpha_t (K,), log p(y_t | past) scalar)."""
    m = disconnected_grad(pt.max(ll_t))
    w = pred * pt.exp(ll_t - m)
    c = pt.sum(w)
    return w / c, m + pt.log(c)


def forward_filter(initial_probs, transition, log_likelihoods):
    """Symbolic forward filter.

    Parameters: initial_probs (K,), transition (K, K) or (T, K, K) (chosen by ndim at graph
    build time), log_likelihoods (T, K); tensors or array-likes (no validation is done here:
    rows must be probability vectors).

    Returns ``(log_marginal, filtered, log_predictive)``: scalar ``log p(y_0..T-1)``,
    (T, K) ``P(s_t | y_0..t)``, (T,) ``log p(y_t | y_0..t-1)``.
    """
    pi = pt.as_tensor_variable(initial_probs)
    A = pt.as_tensor_variable(transition)
    ll = pt.as_tensor_variable(log_likelihoods)
    if pi.ndim != 1 or ll.ndim != 2 or A.ndim not in (2, 3):
        raise ValueError("expected initial_probs (K,), transition (K,K) or (T,K,K), log_likelihoods (T,K)")
    dtype = pytensor.scalar.upcast(pi.dtype, A.dtype, ll.dtype, "float64")
    pi, A, ll = (pt.cast(x, dtype) for x in (pi, A, ll))

    if A.ndim == 2:

        def step(ll_t, alpha_prev, A_):
            return _step_update(pt.dot(alpha_prev, A_), ll_t)

        sequences, non_sequences = [ll], [A]
    else:

        def step(ll_t, A_t, alpha_prev):
            return _step_update(pt.dot(alpha_prev, A_t), ll_t)

        sequences, non_sequences = [ll, A], []

    filtered, log_pred = pytensor.scan(
        step,
        sequences=sequences,
        outputs_info=[pi, None],
        non_sequences=non_sequences,
        strict=True,
        return_updates=False,
    )
    return pt.sum(log_pred), filtered, log_pred


def smoother(transition, filtered):
    """Symbolic Kim smoother: transition (K, K) or (T, K, K), filtered (T, K) -> smoothed (T, K).

    Predicted probabilities are recomputed as ``filtered[t] @ transition[t+1]``; a state with
    zero predicted probability gets zero weight (0/0 := 0). Meant for values (posterior
    post-processing); its gradient is not designed for extreme inputs.
    """
    A = pt.as_tensor_variable(transition)
    f = pt.as_tensor_variable(filtered)
    A_next = A[1:] if A.ndim == 3 else pt.broadcast_to(A, (f.shape[0] - 1, *A.shape))

    def step(f_t, A_n, s_next):
        p = pt.dot(f_t, A_n)
        pos = p > 0
        ratio = pt.switch(pos, s_next / pt.switch(pos, p, 1.0), 0.0)
        s = f_t * pt.dot(A_n, ratio)
        return s / pt.sum(s)

    smoothed_rev = pytensor.scan(
        step,
        sequences=[f[:-1], A_next],
        outputs_info=[f[-1]],
        go_backwards=True,
        strict=True,
        return_updates=False,
    )
    return pt.concatenate([smoothed_rev[::-1], f[-1:]], axis=0)
