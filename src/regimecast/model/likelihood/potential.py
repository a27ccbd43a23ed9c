"""The potential at ``theta`` and its gradient: parameter assembly, the likelihood's passes,
and the reverse pass back to the sampler's variables through the assembly, the correlation
transform and the LKJ prior."""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

from regimecast.model.likelihood.emission import (covariance_grad, emission_factors, emission_grad, emission_loglik,
                                                   pattern_months, scaled_densities)
from regimecast.model.likelihood.linalg import log1m_tanh2
from regimecast.model.likelihood.messages import backward, forward, transitions


@numba.njit(cache=True)
def _per_combination(theta, loc, scale, a0, ind, D):
    """``ind @ (loc + scale * z)`` (O, D): a per-factor-state block of ``theta`` at offset ``a0``
    ((F, D), row-major; absent if a0 < 0: zeros) summed over the factor states of each
    combination (``ind`` (O, F) 0/1), as the mean shifts and log scales of
    :func:`regimecast.model.kernels.assemble`."""
    O = ind.shape[0]
    out = np.zeros((O, D))
    if a0 < 0:
        return out
    for f in range(ind.shape[1]):
        for d in range(D):
            i = a0 + f * D + d
            g = loc[i] + scale[i] * theta[i]
            for o in range(O):
                out[o, d] += ind[o, f] * g
    return out


@numba.njit(cache=True)
def _per_combination_grad(g_out, scale, a0, ind, grad):
    """Reverse pass of :func:`_per_combination`: ``scale * ind' g_out`` into ``grad`` at ``a0``."""
    if a0 < 0:
        return
    O, D = g_out.shape
    for f in range(ind.shape[1]):
        for d in range(D):
            v = 0.0
            for o in range(O):
                v += ind[o, f] * g_out[o, d]
            grad[a0 + f * D + d] = scale[a0 + f * D + d] * v


@numba.njit(cache=True)
def assemble(theta, sa):
    """Natural parameters of :func:`regimecast.model.kernels.assemble` from ``theta``:
    ``(init (P, O), init_other (O,), q (O, O), switch (P, P), beta (P, C), stay (O, P),
    enter (O, P), mean (P, D), shift (O, D), ar (D,), sd (P, D), corr_chol (P, D, D),
    tanh(w) (P, D(D-1)/2), log_scale (O, D), nu)``."""
    (table, oi, ot, loc, scale, factor_ind, effect_ind, scale_ind, combos, sizes, off_r, off_c, ar_index,
     lkj_coef, dims, scalars) = sa
    P, O, D, C = dims[0], dims[1], dims[2], dims[3]
    F = combos.shape[1]
    # initial distribution and the other factors' transition (Kronecker product)
    init_other = np.ones(O)
    q = np.ones((O, O))
    for o in range(O):
        for f in range(F):
            init_other[o] *= theta[oi[f, 0] + combos[o, f]]
            for o2 in range(O):
                q[o, o2] *= theta[ot[f, 0] + combos[o, f] * sizes[f] + combos[o2, f]]
    init = np.empty((P, O))
    a0 = table[10, 0]
    for p in range(P):
        for o in range(O):
            init[p, o] = theta[a0 + p] * init_other[o]
    switch = np.zeros((P, P))
    a0 = table[0, 0]
    for k in range(off_r.shape[0]):
        switch[off_r[k], off_c[k]] = loc[a0 + k] + scale[a0 + k] * theta[a0 + k]
    beta = np.zeros((P, C))
    a0 = table[1, 0]
    if a0 >= 0:
        for p in range(P):
            for c in range(C):
                i = a0 + p * C + c
                beta[p, c] = loc[i] + scale[i] * theta[i]
    stay = np.zeros((O, P))
    enter = np.zeros((O, P))
    a0 = table[2, 0]
    if a0 >= 0:
        for f in range(factor_ind.shape[1]):
            for p in range(P):
                i0, i1 = a0 + (f * 2) * P + p, a0 + (f * 2 + 1) * P + p
                g0, g1 = loc[i0] + scale[i0] * theta[i0], loc[i1] + scale[i1] * theta[i1]
                for o in range(O):
                    stay[o, p] += factor_ind[o, f] * g0
                    enter[o, p] += factor_ind[o, f] * g1
    mean = np.empty((P, D))
    a0 = table[3, 0]
    for p in range(P):
        for d in range(D):
            i = a0 + p * D + d
            mean[p, d] = loc[i] + scale[i] * theta[i]
    shift = _per_combination(theta, loc, scale, table[4, 0], effect_ind, D)
    log_scale = _per_combination(theta, loc, scale, table[5, 0], scale_ind, D)
    sd = np.empty((P, D))
    a0 = table[6, 0]
    for p in range(P):
        for d in range(D):
            i = a0 + p * D + d
            sd[p, d] = np.exp(loc[i] + scale[i] * theta[i])
    ar = np.zeros(D)
    a0 = table[7, 0]
    for a in range(ar_index.shape[0]):
        ar[ar_index[a]] = theta[a0 + a]
    # correlation Cholesky factors: NumPyro's signed stick-breaking of t = tanh(w), clipped
    M = D * (D - 1) // 2
    a0 = table[8, 0]
    eps = 2.220446049250313e-16
    lc = np.zeros((P, D, D))
    tz = np.zeros((P, M))
    for p in range(P):
        lc[p, 0, 0] = 1.0
        k = 0
        for i in range(1, D):
            rem = 1.0
            for j in range(i):
                t = min(max(np.tanh(theta[a0 + p * M + k]), -1.0 + eps), 1.0 - eps)
                tz[p, k] = t
                lc[p, i, j] = t * rem
                rem *= np.sqrt(1.0 - t * t)
                k += 1
            lc[p, i, i] = rem
    nu = scalars[1] + theta[table[9, 0]] if scalars[2] > 0 else np.inf
    return init, init_other, q, switch, beta, stay, enter, mean, shift, ar, sd, lc, tz, log_scale, nu


@numba.njit(cache=True)
def loglik_grad(init, q, switch, beta, stay, enter, mean, shift, ar, chol, log_scale, nu, student, pa, P, O, D, C):
    """log p(y | natural parameters) of every panel and its gradient with respect to each
    natural parameter: ``(value, g_init, g_q, g_switch, g_beta, g_stay, g_enter, g_mean,
    g_shift, g_ar, g_chol, g_log_scale, g_nu)``. P, O, D, C are numba literals."""
    numba.literally(P)
    numba.literally(O)
    numba.literally(D)
    numba.literally(C)
    y, lag, cov, start, pattern, pcols, psize, meas, lagcol = pa
    K = pcols.shape[0]
    S = P * O
    scale = np.exp(log_scale)
    li, logdet = emission_factors(chol, scale, meas, pcols, psize)
    ms = np.zeros((D, S))                           # mean + shift per state
    for p in range(P):
        for o in range(O):
            for d in range(D):
                ms[d, p * O + o] = mean[p, d] + shift[o, d]
    const = np.zeros(K)
    for kk in range(K):
        n = psize[kk]
        if student:
            const[kk] = math.lgamma((nu + n) / 2.0) - math.lgamma(nu / 2.0) - 0.5 * n * np.log(nu * np.pi)
        else:
            const[kk] = -0.5 * n * np.log(2.0 * np.pi)
    ll, wgt, lg, mah = emission_loglik(y, lag, pattern, pcols, psize, ar, ms, li, logdet, const, nu, student)
    em, mx = scaled_densities(ll, pattern_months(pattern, K)[0])
    em = em.reshape(ll.shape[1], P, O)
    es, trow, tcol, tdiag = transitions(switch, beta, stay, enter, cov, P, O, C)
    value, alpha, bq, cs = forward(init, q, es, trow, tcol, tdiag, em, mx, start, P, O)
    gamma, g_init, g_q, g_switch, g_stay, g_enter, g_beta = backward(init, q, es, trow, tcol, tdiag, cov, start,
                                                                      alpha, bq, cs, em, P, O, C)
    g_mean, g_shift, g_ar, gsig, g_nu = emission_grad(y, lag, pattern, pcols, psize, lagcol, ar, ms, li, gamma,
                                                       wgt, lg, mah, nu, student, P, O)
    g_chol, g_log_scale = covariance_grad(gsig, chol, scale)
    return value, g_init, g_q, g_switch, g_beta, g_stay, g_enter, g_mean, g_shift, g_ar, g_chol, g_log_scale, g_nu


@numba.njit(cache=True)
def potential_sized(theta, sa, pa, P, O, D, C):
    """:func:`regimecast.model.filter.potential` at ``theta`` (n,) and its gradient (n,); ``sa``
    and ``pa`` the fields of :class:`StaticArgs` and :class:`PanelArgs` as plain tuples, P, O,
    D, C the model's sizes (``StaticArgs.dims``) as numba literals: a caller in numba passes
    them as compile-time constants, Python calls :func:`potential_and_grad`."""
    numba.literally(P)
    numba.literally(O)
    numba.literally(D)
    numba.literally(C)
    (table, oi, ot, loc, scale, factor_ind, effect_ind, scale_ind, combos, sizes, off_r, off_c, ar_index,
     lkj_coef, dims, scalars) = sa
    if dims[0] != P or dims[1] != O or dims[2] != D or dims[3] != C:
        raise ValueError("potential_sized: sizes differ from the static arrays' dims")
    student = scalars[2] > 0
    init, init_other, q, switch, beta, stay, enter, mean, shift, ar, sd, lc, tz, log_scale, nu = \
        assemble(theta, sa)
    chol = np.empty((P, D, D))
    for p in range(P):
        for i in range(D):
            for j in range(D):
                chol[p, i, j] = sd[p, i] * lc[p, i, j]
    (value, g_init, g_q, g_switch, g_beta, g_stay, g_enter, g_mean, g_shift, g_ar, g_chol, g_log_scale,
     g_nu) = loglik_grad(init, q, switch, beta, stay, enter, mean, shift, ar, chol, log_scale, nu, student, pa,
                         P, O, D, C)
    grad = np.zeros(theta.shape[0])
    F = combos.shape[1]
    # initial distribution and Kronecker transition
    a0 = table[10, 0]
    for p in range(P):
        v = 0.0
        for o in range(O):
            v += g_init[p, o] * init_other[o]
        grad[a0 + p] = v
    for f in range(F):
        for o in range(O):
            rest = 1.0
            for f2 in range(F):
                if f2 != f:
                    rest *= theta[oi[f2, 0] + combos[o, f2]]
            v = 0.0
            for p in range(P):
                v += g_init[p, o] * theta[a0 + p]
            grad[oi[f, 0] + combos[o, f]] += v * rest
            for o2 in range(O):
                rest = 1.0
                for f2 in range(F):
                    if f2 != f:
                        rest *= theta[ot[f2, 0] + combos[o, f2] * sizes[f2] + combos[o2, f2]]
                grad[ot[f, 0] + combos[o, f] * sizes[f] + combos[o2, f]] += g_q[o, o2] * rest
    a0 = table[0, 0]
    for k in range(off_r.shape[0]):
        grad[a0 + k] = scale[a0 + k] * g_switch[off_r[k], off_c[k]]
    a0 = table[1, 0]
    if a0 >= 0:
        for p in range(P):
            for c in range(C):
                grad[a0 + p * C + c] = scale[a0 + p * C + c] * g_beta[p, c]
    a0 = table[2, 0]
    if a0 >= 0:
        for f in range(factor_ind.shape[1]):
            for p in range(P):
                v0 = 0.0
                v1 = 0.0
                for o in range(O):
                    v0 += factor_ind[o, f] * g_stay[o, p]
                    v1 += factor_ind[o, f] * g_enter[o, p]
                grad[a0 + (f * 2) * P + p] = scale[a0 + (f * 2) * P + p] * v0
                grad[a0 + (f * 2 + 1) * P + p] = scale[a0 + (f * 2 + 1) * P + p] * v1
    a0 = table[3, 0]
    for p in range(P):
        for d in range(D):
            grad[a0 + p * D + d] = scale[a0 + p * D + d] * g_mean[p, d]
    _per_combination_grad(g_shift, scale, table[4, 0], effect_ind, grad)
    _per_combination_grad(g_log_scale, scale, table[5, 0], scale_ind, grad)
    a0 = table[7, 0]
    for a in range(ar_index.shape[0]):
        grad[a0 + a] = g_ar[ar_index[a]]
    if student:
        grad[table[9, 0]] = g_nu
    # chol = diag(sd) Lc: to log_sd; through the stick-breaking to w (Lc[i, m] = t_m c_m for
    # m < i, Lc[i, i] = c_i, c_m = prod_{k<m} sqrt(1 - t_k^2)); plus the correlation prior
    M = D * (D - 1) // 2
    a1 = table[6, 0]
    a2 = table[8, 0]
    for p in range(P):
        for i in range(D):
            v = 0.0
            for j in range(i + 1):
                v += g_chol[p, i, j] * chol[p, i, j]
            grad[a1 + p * D + i] = scale[a1 + p * D + i] * v
        for i in range(1, D):
            k0 = i * (i - 1) // 2
            c = 1.0
            for m in range(i):
                tm = tz[p, k0 + m]
                tail = 0.0
                for j in range(m + 1, i + 1):
                    tail += g_chol[p, i, j] * sd[p, i] * lc[p, i, j]
                gw = g_chol[p, i, m] * sd[p, i] * c * (1.0 - tm * tm) - tm * tail
                grad[a2 + p * M + k0 + m] = gw - 2.0 * lkj_coef[k0 + m] * tm
                c *= np.sqrt(1.0 - tm * tm)
    prior = P * scalars[0]
    for p in range(P):
        for k in range(M):
            prior += lkj_coef[k] * log1m_tanh2(theta[a2 + p * M + k])
    return value + prior, grad


DIMS = 14                       # position of ``dims`` in StaticArgs (checked in the package's __init__)
_SIZED: dict[tuple[int, int, int, int], Callable] = {}


def sized_kernel(dims) -> Callable:
    """The compiled ``(theta, sa, pa) -> (value, gradient)`` for sizes ``dims`` = (P, O, D, C):
    :func:`potential_sized` with them as constants. One function per sizes and process; numba's
    disk cache keys a closure by the values of its cells too, so each sizes has its own entry."""
    key = tuple(int(v) for v in dims)
    if key not in _SIZED:
        P, O, D, C = key

        @numba.njit(cache=True)
        def kernel(theta, sa, pa):
            return potential_sized(theta, sa, pa, P, O, D, C)

        _SIZED[key] = kernel
    return _SIZED[key]


def potential_and_grad(theta, sa, pa):
    """:func:`potential_sized` from Python, at the sizes of ``sa``'s dims."""
    return sized_kernel(sa[DIMS])(theta, sa, pa)
