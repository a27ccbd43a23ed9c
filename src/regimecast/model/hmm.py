"""Exact forward filter and backward smoother for a discrete hidden Markov model (NumPy).

Conventions (shared with :mod:`regimecast.model.kernels` and :mod:`regimecast.model.likelihood`):

* ``K`` hidden states, ``T`` observations ``y_0 .. y_{T-1}``.
* ``initial_probs`` (K,) is the distribution of the state *before* the first
  observation, i.e. ``P(s_{-1})``.
* ``transition`` is (K, K) or time-varying (T, K, K); rows = from, columns = to:
  ``transition[t][i, j] = P(s_t = j | s_{t-1} = i)`` (row-stochastic). It is applied at
  EVERY t including t = 0, so ``P(s_0) = initial_probs @ transition[0]``.
  statsmodels' ``MarkovSwitching.regime_transition_matrix`` has one matrix per
  observation too but is column-oriented (``P[i, j] = P(s_t=i | s_{t-1}=j)``):
  pass ``P[:, :, t].T``.
* ``log_likelihoods`` (T, K): ``log p(y_t | s_t = k)``; ``-inf`` is allowed for some
  states as long as the observation has positive probability under the model.

Matching statsmodels (0.15) ``MarkovRegression``: its conditional log-likelihoods are
stored with an extra lag axis, so ``cy_hamilton_filter_log`` runs as an order-1 filter:
``initial_probabilities`` are ``P(s_{-2})`` and ``regime_transition[..., 0]`` is applied
twice (once to build the joint ``(s_{-1}, s_{-2})`` and once at t = 0) before the first
observation. Hence ``initial_probs = sm_initial @ P0.T`` (one push through the first
transition). With the default steady-state initialisation this is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FilterResult", "forward_filter", "backward_smoother", "check_inputs"]

_TOL = 1e-8


@dataclass(frozen=True)
class FilterResult:
    """Output of :func:`forward_filter`.

    log_marginal: float, ``log p(y_0..y_{T-1})``.
    filtered: (T, K), ``P(s_t | y_0..t)``.
    predicted: (T, K), ``P(s_t | y_0..t-1)`` (t = 0: ``initial_probs @ transition[0]``).
    log_predictive: (T,), ``log p(y_t | y_0..t-1)``; sums to ``log_marginal``.
    """

    log_marginal: float
    filtered: np.ndarray
    predicted: np.ndarray
    log_predictive: np.ndarray


def _check_prob(x: np.ndarray, name: str, axis: int = -1) -> None:
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    if np.any(x < 0):
        raise ValueError(f"{name} must be non-negative")
    dev = np.max(np.abs(x.sum(axis=axis) - 1.0))
    if dev > _TOL:
        raise ValueError(f"{name} must sum to one (max deviation {dev:.3g})")


def check_inputs(initial_probs, transition, log_likelihoods):
    """Validate and convert inputs; returns float64 arrays ``(pi (K,), A (T,K,K) or (K,K), ll (T,K))``.

    Raises ValueError on bad shapes, non-finite or negative probabilities, probability
    vectors/rows that do not sum to one (tol 1e-8), or NaN / +inf log-likelihoods.
    """
    pi = np.asarray(initial_probs, dtype=float)
    A = np.asarray(transition, dtype=float)
    ll = np.asarray(log_likelihoods, dtype=float)
    if ll.ndim != 2 or ll.shape[0] < 1 or ll.shape[1] < 1:
        raise ValueError(f"log_likelihoods must have shape (T, K) with T, K >= 1, got {ll.shape}")
    T, K = ll.shape
    if pi.shape != (K,):
        raise ValueError(f"initial_probs must have shape ({K},), got {pi.shape}")
    if A.shape not in ((K, K), (T, K, K)):
        raise ValueError(f"transition must have shape ({K}, {K}) or ({T}, {K}, {K}), got {A.shape}")
    _check_prob(pi, "initial_probs")
    _check_prob(A, "transition rows")
    if np.any(np.isnan(ll)) or np.any(ll == np.inf):
        raise ValueError("log_likelihoods must not contain NaN or +inf")
    return pi, A, ll


def forward_filter(initial_probs, transition, log_likelihoods) -> FilterResult:
    """Scaled forward (Hamilton) filter.

    initial_probs (K,) = P(s_{-1}); transition (K, K) or (T, K, K), row-stochastic, applied at
    every t including 0; log_likelihoods (T, K). The update is done in log space relative to
    the per-step maximum of ``log predicted + log_likelihood``, so states with ``-inf`` (or
    hugely negative) log-likelihood or zero predicted probability never produce NaN.
    Raises ValueError if some observation has zero probability given the past.
    """
    pi, A, ll = check_inputs(initial_probs, transition, log_likelihoods)
    T, K = ll.shape
    tv = A.ndim == 3
    filtered = np.empty((T, K))
    predicted = np.empty((T, K))
    log_pred = np.empty(T)
    alpha = pi
    with np.errstate(divide="ignore"):
        for t in range(T):
            pred = alpha @ (A[t] if tv else A)
            lw = np.log(pred) + ll[t]
            m = lw.max()
            if not np.isfinite(m):
                raise ValueError(f"observation {t} has zero probability given the past (all weights are -inf)")
            w = np.exp(lw - m)
            c = w.sum()
            alpha = w / c
            predicted[t], filtered[t] = pred, alpha
            log_pred[t] = m + np.log(c)
    return FilterResult(float(log_pred.sum()), filtered, predicted, log_pred)


def backward_smoother(transition, filter_result: FilterResult) -> np.ndarray:
    """Kim (RTS-type) backward smoother; returns smoothed (T, K) = P(s_t | y_0..T-1).

    ``smoothed[t, i] = filtered[t, i] * sum_j transition[t+1][i, j] * smoothed[t+1, j] / predicted[t+1, j]``
    with 0/0 := 0 (a state with zero predicted probability has zero smoothed probability).
    transition (K, K) or (T, K, K) as passed to :func:`forward_filter`.
    """
    filtered = np.asarray(filter_result.filtered, dtype=float)
    predicted = np.asarray(filter_result.predicted, dtype=float)
    A = np.asarray(transition, dtype=float)
    T, K = filtered.shape
    if predicted.shape != (T, K):
        raise ValueError("filter_result.filtered and .predicted must both have shape (T, K)")
    if A.shape not in ((K, K), (T, K, K)):
        raise ValueError(f"transition must have shape ({K}, {K}) or ({T}, {K}, {K}), got {A.shape}")
    tv = A.ndim == 3
    smoothed = np.empty((T, K))
    smoothed[-1] = filtered[-1]
    for t in range(T - 2, -1, -1):
        p = predicted[t + 1]
        ratio = np.divide(smoothed[t + 1], p, out=np.zeros(K), where=p > 0)
        s = filtered[t] * ((A[t + 1] if tv else A) @ ratio)
        smoothed[t] = s / s.sum()  # exact up to rounding; renormalise against drift
    return smoothed
