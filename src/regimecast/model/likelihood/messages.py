"""Policy transition probabilities in factored form, the scaled forward filter, and the scaled
backward messages with the gradients of the log marginal with respect to the initial
distribution, the other factors' transition and the transition logits' parts."""

from __future__ import annotations

import numba
import numpy as np

from regimecast.model.likelihood.linalg import FAST


@numba.njit(cache=True)
def transitions(switch, beta, stay, enter, cov):
    """Policy transition probabilities of :func:`regimecast.model.kernels.policy_transition` in
    factored form: ``A[t, o, p, p2] = row[t, o, p] * es[p, p2] * col[t, o, p2]`` off the
    diagonal and ``diag[t, o, p]`` on it, where ``es = exp(switch - max)`` (zero diagonal) and
    ``col = exp(enter + beta x_t - max)``. Returns ``(es (P, P), row, col, diag (T, O, P))``;
    T P + O P + P^2 exponentials and no (T, O, P, P) array."""
    T, C = cov.shape
    O, P = stay.shape
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
    eb = np.zeros(P)
    v = np.zeros(P)
    row = np.empty((T, O, P))
    col = np.empty((T, O, P))
    diag = np.empty((T, O, P))
    for t in range(T):
        bmax = -np.inf
        for p2 in range(P):
            b = 0.0
            for c in range(C):
                b += beta[p2, c] * cov[t, c]
            eb[p2] = b
            bmax = max(bmax, b)
        for p2 in range(P):
            eb[p2] = np.exp(eb[p2] - bmax)
        ebmax = np.exp(bmax)
        for o in range(O):
            g = col[t, o]
            eo = eenter[o]
            for p2 in range(P):
                g[p2] = eo[p2] * eb[p2]
            for p in range(P):
                v[p] = 0.0
            for p in range(P):
                esp = es[p]
                acc = 0.0
                for p2 in range(P):
                    acc += esp[p2] * g[p2]
                v[p] = acc
            for p in range(P):
                d = x[o, p] + bmax
                if -30.0 < d < 30.0 and -300.0 < bmax < 300.0 and -300.0 < x[o, p] < 300.0:
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
def forward(init, q, es, trow, tcol, tdiag, ll, start):
    """Scaled forward filter: ``(log marginal, filtered (T, P, O), alpha_{t-1} @ q (T, O, P),
    scale c_t (T,), exp(ll - max) (T, P, O))``."""
    T, S = ll.shape
    P, O = init.shape

    alpha = np.empty((T, P, O))
    bq = np.empty((T, O, P))          # (alpha_{t-1} @ q)[p, o2], stored [o2, p]
    cs = np.empty(T)
    em = np.empty((T, P, O))          # exp(ll - max)
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
        mx = -np.inf
        for s in range(S):
            mx = max(mx, ll[t, s])
        tot = 0.0
        for p2 in range(P):
            for o2 in range(O):
                e = np.exp(ll[t, p2 * O + o2] - mx)
                em[t, p2, o2] = e
                v = pred[o2, p2] * e
                alpha[t, p2, o2] = v
                tot += v
        cs[t] = tot
        inv = 1.0 / tot
        for p2 in range(P):
            for o2 in range(O):
                alpha[t, p2, o2] *= inv
        value += mx + np.log(tot)
    return value, alpha, bq, cs, em


@numba.njit(cache=True, fastmath=FAST)
def backward(init, q, es, trow, tcol, tdiag, cov, start, alpha, bq, cs, em):
    """Scaled backward messages: the smoothed marginals (T, S) and the gradient of the log
    marginal with respect to the initial distribution, q, and the transition logits' parts
    ``(gamma, g_init, g_q, g_switch, g_stay, g_enter, g_beta)``."""
    T, P, O = alpha.shape
    C = cov.shape[1]
    S = P * O
    # ---- backward pass: scaled messages; gradients of the transitions. With
    # A = row es col (off the diagonal), d L / d logit[p, p2] = b_p A[p, p2] (rr_p2 - h_p), so
    # the switch gradient is es * (sum a (col rr)' - sum (a h) col'), a = b row.
    g_init = np.zeros((P, O))
    g_q = np.zeros((O, O))
    g_stay = np.zeros((O, P))
    gamma = np.empty((T, S))
    beta_hat = np.ones((P, O))
    rr = np.empty((T, O, P))
    h = np.zeros((O, P))
    N = T * O                          # (t, o2) pairs, n = t * O + o2, stored states first
    a_t = np.empty((P, N))             # a = b row
    ah_t = np.empty((P, N))            # a h
    cl_t = np.empty((P, N))            # col
    cr_t = np.empty((P, N))            # col rr
    for t in range(T - 1, -1, -1):
        if t == T - 1 or start[t + 1]:
            for p in range(P):
                for o in range(O):
                    beta_hat[p, o] = 1.0
        ic = 1.0 / cs[t]
        for p in range(P):
            for o in range(O):
                gamma[t, p * O + o] = alpha[t, p, o] * beta_hat[p, o]
                rr[t, o, p] = em[t, p, o] * beta_hat[p, o] * ic
        for o2 in range(O):
            rro = rr[t, o2]
            b = bq[t, o2]
            rw, cl, dg = trow[t, o2], tcol[t, o2], tdiag[t, o2]
            ho = h[o2]
            for p in range(P):                  # h = row (es (col rr)) + diag rr
                esp = es[p]
                v = 0.0
                for p2 in range(P):
                    v += esp[p2] * cl[p2] * rro[p2]
                ho[p] = rw[p] * v + dg[p] * rro[p]
            n = t * O + o2
            for p in range(P):
                ap = b[p] * rw[p]
                a_t[p, n] = ap
                ah_t[p, n] = ap * ho[p]
                cl_t[p, n] = cl[p]
                cr_t[p, n] = cl[p] * rro[p]
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
    # the logits' gradients from the stored a, a h, col and col rr, batched over (t, o2) with
    # the long axis innermost: switch: es * (a (col rr)' - (a h) col'); enter: col (rr (es' a)
    # - es' (a h)) = (col rr) (es' a) - col (es' (a h))
    xs = np.zeros((P, P))
    ys = np.zeros((P, P))
    for p in range(P):
        ap, ahp = a_t[p], ah_t[p]
        for p2 in range(P):
            crp, clp = cr_t[p2], cl_t[p2]
            v = 0.0
            w = 0.0
            for n in range(N):
                v += ap[n] * crp[n]
                w += ahp[n] * clp[n]
            xs[p, p2] = v
            ys[p, p2] = w
    ge = np.zeros((P, N))
    u = np.zeros(N)
    for p2 in range(P):
        gep, crp, clp = ge[p2], cr_t[p2], cl_t[p2]
        _combine(es[:, p2], a_t, u)                 # (es' a)[p2] for every (t, o2)
        for n in range(N):
            gep[n] = crp[n] * u[n]
        _combine(es[:, p2], ah_t, u)                # (es' (a h))[p2]
        for n in range(N):
            gep[n] -= clp[n] * u[n]
    g_enter = np.zeros((O, P))
    g_beta = np.zeros((P, C))
    for p2 in range(P):
        gep = ge[p2]
        for t in range(T):
            v = 0.0
            for o2 in range(O):
                g_enter[o2, p2] += gep[t * O + o2]
                v += gep[t * O + o2]
            for c in range(C):
                g_beta[p2, c] += v * cov[t, c]
    g_switch = np.zeros((P, P))
    for p in range(P):
        for p2 in range(P):
            g_switch[p, p2] = es[p, p2] * (xs[p, p2] - ys[p, p2])
    return gamma, g_init, g_q, g_switch, g_stay, g_enter, g_beta


@numba.njit(cache=True, fastmath=FAST)
def _combine(w, X, out):
    """``out = w @ X``: ``w`` (P,), ``X`` (P, N), ``out`` (N,), the long axis innermost."""
    for n in range(out.shape[0]):
        out[n] = 0.0
    for p in range(w.shape[0]):
        e = w[p]
        xp = X[p]
        for n in range(out.shape[0]):
            out[n] += e * xp[n]
