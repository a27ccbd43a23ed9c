"""Policy transition probabilities in factored form, the scaled forward filter, and the scaled
backward messages with the gradients of the log marginal with respect to the initial
distribution, the other factors' transition and the transition logits' parts.

The numbers of policy states P, other-factor combinations O and covariates C arrive as numba
literals (``numba.literally``): each model's sizes compile to their own machine code, whose
loops over 4 or 8 states LLVM unrolls and vectorises (a run-time trip count of 8 runs scalar).
"""

from __future__ import annotations

import numba
import numpy as np

from regimecast.model.likelihood.linalg import FAST, products
from regimecast.model.likelihood.vmath import vexp

# |log(off-diagonal / diagonal)| beyond which a row's factored form is evaluated with its own
# exponential (its shortcut product of exp(x) and exp(bmax) could overflow)
SHORTCUT_LOG = 30.0
SHORTCUT_PART = 300.0


@numba.njit(cache=True, fastmath=FAST, error_model="numpy")
def transitions(switch, beta, stay, enter, cov, P, O, C):
    """Policy transition probabilities of :func:`regimecast.model.kernels.policy_transition` in
    factored form: ``A[t, o, p, p2] = row[t, o, p] * es[p, p2] * col[t, o, p2]`` off the
    diagonal and ``diag[t, o, p]`` on it, where ``es = exp(switch - max)`` (zero diagonal) and
    ``col = exp(enter + beta x_t - max)``. Returns ``(es (P, P), row, col, diag (T, O, P))``;
    no (T, O, P, P) array, and the T (P + 1) exponentials in two vectorised passes."""
    numba.literally(P)
    numba.literally(O)
    numba.literally(C)
    T = cov.shape[0]
    es = np.zeros((P, P))
    smax = np.full(P, -np.inf)
    for p in range(P):
        for p2 in range(P):
            if p2 != p and switch[p, p2] > smax[p]:
                smax[p] = switch[p, p2]
        for p2 in range(P):
            es[p, p2] = np.exp(switch[p, p2] - smax[p]) if p2 != p else 0.0
    eenter = np.zeros((O, P))
    emax = np.full(O, -np.inf)
    for o in range(O):
        for p2 in range(P):
            emax[o] = max(emax[o], enter[o, p2])
        for p2 in range(P):
            eenter[o, p2] = np.exp(enter[o, p2] - emax[o])
    # log(off-diagonal scale / diagonal) of row (t, o, p) = x[o, p] + bmax_t: its exponential
    # as exp(x) * exp(bmax_t), one exponential per month instead of one per (t, o, p)
    x = np.zeros((O, P))
    ex = np.zeros((O, P))
    for o in range(O):
        for p in range(P):
            x[o, p] = smax[p] + emax[o] - stay[o, p]
            ex[o, p] = np.exp(x[o, p])
    # covariate effects beta x_t (T, P) less their maximum over states, and that maximum
    eb = np.empty((T, P + 1))
    for t in range(T):
        bmax = -np.inf
        for p2 in range(P):
            b = 0.0
            for c in range(C):
                b += beta[p2, c] * cov[t, c]
            eb[t, p2] = b
            bmax = max(bmax, b)
        for p2 in range(P):
            eb[t, p2] -= bmax
        eb[t, P] = bmax
    bm = eb[:, P].copy()
    flat = eb.reshape(T * (P + 1))
    vexp(flat, flat)                              # exp(beta x_t - bmax) and exp(bmax)
    row = np.empty((T, O, P))
    col = np.empty((T, O, P))
    diag = np.empty((T, O, P))
    v = np.zeros(P)
    for t in range(T):
        ebt = eb[t]
        bmax = bm[t]
        ebmax = ebt[P]
        for o in range(O):
            g = col[t, o]
            eo = eenter[o]
            for p2 in range(P):
                g[p2] = eo[p2] * ebt[p2]
            for p in range(P):
                esp = es[p]
                acc = 0.0
                for p2 in range(P):
                    acc += esp[p2] * g[p2]
                v[p] = acc
            for p in range(P):
                d = x[o, p] + bmax
                if -SHORTCUT_LOG < d < SHORTCUT_LOG and -SHORTCUT_PART < bmax < SHORTCUT_PART \
                        and -SHORTCUT_PART < x[o, p] < SHORTCUT_PART:
                    off, dg = ex[o, p] * ebmax, 1.0
                elif d > 0:
                    off, dg = 1.0, np.exp(-d)
                else:
                    off, dg = np.exp(d), 1.0
                inv = 1.0 / (dg + off * v[p])
                row[t, o, p] = off * inv
                diag[t, o, p] = dg * inv
    return es, row, col, diag


@numba.njit(cache=True, fastmath=FAST)
def forward(init, q, es, trow, tcol, tdiag, em, mx, start, P, O):
    """Scaled forward filter from the scaled emission densities ``em = exp(ll - mx)`` (T, P, O)
    and their per-month offsets ``mx`` (T,): ``(log marginal, filtered (T, P, O),
    alpha_{t-1} @ q (T, O, P), scale c_t (T,))``."""
    numba.literally(P)
    numba.literally(O)
    T = em.shape[0]
    alpha = np.empty((T, P, O))
    bq = np.empty((T, O, P))          # (alpha_{t-1} @ q)[p, o2], stored [o2, p]
    cs = np.empty(T)
    pred = np.empty((O, P))
    value = 0.0
    for t in range(T):
        prev = init if start[t] else alpha[t - 1]
        for o2 in range(O):
            for p in range(P):
                v = 0.0
                for o in range(O):
                    v += prev[p, o] * q[o, o2]
                bq[t, o2, p] = v
        for o2 in range(O):
            b = bq[t, o2]
            rw, cl, dg = trow[t, o2], tcol[t, o2], tdiag[t, o2]
            pr = pred[o2]
            for p2 in range(P):
                pr[p2] = 0.0
            for p in range(P):                  # pred = col * (es' (b row)) + b diag
                ap = b[p] * rw[p]
                for p2 in range(P):
                    pr[p2] += ap * es[p, p2]
            for p2 in range(P):
                pr[p2] = pr[p2] * cl[p2] + b[p2] * dg[p2]
        tot = 0.0
        at = alpha[t]
        et = em[t]
        for p2 in range(P):
            for o2 in range(O):
                v = pred[o2, p2] * et[p2, o2]
                at[p2, o2] = v
                tot += v
        cs[t] = tot
        inv = 1.0 / tot
        for p2 in range(P):
            for o2 in range(O):
                at[p2, o2] *= inv
        value += mx[t] + np.log(tot)
    return value, alpha, bq, cs


@numba.njit(cache=True, fastmath=FAST)
def backward(init, q, es, trow, tcol, tdiag, cov, start, alpha, bq, cs, em, P, O, C):
    """Scaled backward messages: the smoothed marginals (S, T), states first, and the gradient of the log
    marginal with respect to the initial distribution, q, and the transition logits' parts
    ``(gamma, g_init, g_q, g_switch, g_stay, g_enter, g_beta)``.

    With A = row es col off the diagonal, d L / d logit[p, p2] = b_p A[p, p2] (rr_p2 - h_p);
    per (t, o2), with a = b row: the switch gradient gathers es * (a (col rr)' - (a h) col'),
    the entry gradient col (rr (es' a) - es' (a h)). The messages' recursion stores a, a h,
    col and col rr (P, T O); the logits' gradients are then products over the long axis."""
    numba.literally(P)
    numba.literally(O)
    numba.literally(C)
    T = alpha.shape[0]
    S = P * O
    g_init = np.zeros((P, O))
    g_q = np.zeros((O, O))
    g_stay = np.zeros((O, P))
    g_enter = np.zeros((O, P))
    g_beta = np.zeros((P, C))
    gamma = np.empty((S, T))
    beta_hat = np.ones((P, O))
    rr = np.empty((O, P))
    h = np.zeros((O, P))
    cr = np.empty(P)
    N = T * O
    A = np.empty((P, N))
    AH = np.empty((P, N))
    CR = np.empty((P, N))
    CL = np.empty((P, N))
    for t in range(T - 1, -1, -1):
        if t == T - 1 or start[t + 1]:
            for p in range(P):
                for o in range(O):
                    beta_hat[p, o] = 1.0
        ic = 1.0 / cs[t]
        et = em[t]
        at = alpha[t]
        for p in range(P):
            for o in range(O):
                gamma[p * O + o, t] = at[p, o] * beta_hat[p, o]
                rr[o, p] = et[p, o] * beta_hat[p, o] * ic
        for o2 in range(O):
            rro = rr[o2]
            b = bq[t, o2]
            rw, cl, dg = trow[t, o2], tcol[t, o2], tdiag[t, o2]
            ho = h[o2]
            for p2 in range(P):
                cr[p2] = cl[p2] * rro[p2]
            for p in range(P):                  # h = row (es (col rr)) + diag rr
                esp = es[p]
                v = 0.0
                for p2 in range(P):
                    v += esp[p2] * cr[p2]
                ho[p] = rw[p] * v + dg[p] * rro[p]
            nn = t * O + o2
            for p in range(P):
                ap = b[p] * rw[p]
                A[p, nn] = ap
                AH[p, nn] = ap * ho[p]
                CR[p, nn] = cr[p]
                CL[p, nn] = cl[p]
                g_stay[o2, p] += b[p] * dg[p] * (rro[p] - ho[p])
        prev = init if start[t] else alpha[t - 1]
        for p in range(P):
            for o2 in range(O):
                hv = h[o2, p]
                for o in range(O):
                    g_q[o, o2] += prev[p, o] * hv
            for o in range(O):
                v = 0.0
                for o2 in range(O):
                    v += q[o, o2] * h[o2, p]
                if start[t]:
                    g_init[p, o] += v
                else:
                    beta_hat[p, o] = v
    x1 = np.empty((P, P))
    x2 = np.empty((P, P))
    products(A, CR, x1)
    products(AH, CL, x2)
    U = np.zeros((P, N))
    W = np.zeros((P, N))
    for p in range(P):
        ap, ahp = A[p], AH[p]
        for p2 in range(P):
            e = es[p, p2]
            up, wp = U[p2], W[p2]
            for nn in range(N):
                up[nn] += e * ap[nn]
                wp[nn] += e * ahp[nn]
    for p2 in range(P):
        up, wp, crp, clp = U[p2], W[p2], CR[p2], CL[p2]
        for nn in range(N):
            up[nn] = crp[nn] * up[nn] - clp[nn] * wp[nn]
        for t in range(T):
            v = 0.0
            for o2 in range(O):
                g = up[t * O + o2]
                g_enter[o2, p2] += g
                v += g
            for c in range(C):
                g_beta[p2, c] += v * cov[t, c]
    g_switch = np.zeros((P, P))
    for p in range(P):
        for p2 in range(P):
            g_switch[p, p2] = es[p, p2] * (x1[p, p2] - x2[p, p2])
    return gamma, g_init, g_q, g_switch, g_stay, g_enter, g_beta
