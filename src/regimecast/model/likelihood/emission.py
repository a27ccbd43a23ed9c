"""Emission densities of every month in every joint state, and their reverse pass: from the
smoothed marginals to the means, AR coefficients, Student-t degrees of freedom, and through each
state's covariance (d log t / d Sigma) to the Cholesky factors and scales."""

from __future__ import annotations

import numba
import numpy as np

from regimecast.model.likelihood.linalg import FAST, digamma, products, rank_one_add, rows_cholesky, tril_inverse
from regimecast.model.likelihood.vmath import vexp, vlog


@numba.njit(cache=True, fastmath=FAST)
def emission_factors(chol, scale, meas, pcols, psize):
    """Per missing-data pattern k and joint state s = p * O + o: the inverse Cholesky factor of
    the observed columns' scale matrix diag(s_o) L_p L_p' diag(s_o) + diag(meas^2), states
    last (K, D, D, S), and the log-determinant (K, S)."""
    P, D = chol.shape[0], chol.shape[1]
    O = scale.shape[0]
    K = pcols.shape[0]
    S = P * O
    li = np.zeros((K, D, D, S))
    logdet = np.zeros((K, S))
    full = np.zeros((D, D))
    rows = np.zeros((D, D))
    lsub = np.zeros((D, D))
    inv = np.zeros((D, D))
    for kk in range(K):
        n = psize[kk]
        if n == 0:
            continue
        cols = pcols[kk, :n]
        for p in range(P):
            for o in range(O):
                s = p * O + o
                for i in range(D):
                    for j in range(D):
                        full[i, j] = chol[p, i, j] * scale[o, i]
                if n == D:
                    for i in range(D):
                        for j in range(D):
                            lsub[i, j] = full[i, j]
                else:
                    for a in range(n):
                        for m in range(D):
                            rows[a, m] = full[cols[a], m]
                    rows_cholesky(rows, n, lsub)
                for a in range(n):
                    if meas[cols[a]] > 0:
                        rank_one_add(lsub, n, a, meas[cols[a]])
                tril_inverse(lsub, n, inv)
                ld = 0.0
                for a in range(n):
                    ld += np.log(lsub[a, a])
                    for b in range(a + 1):
                        li[kk, a, b, s] = inv[a, b]
                logdet[kk, s] = ld
    return li, logdet


@numba.njit(cache=True)
def pattern_months(pattern, K):
    """Months of each missing-data pattern: ``(idx (T,), first (K + 1,))``, the months of
    pattern k being ``idx[first[k]:first[k + 1]]`` in time order."""
    T = pattern.shape[0]
    first = np.zeros(K + 1, np.int64)
    for t in range(T):
        first[pattern[t] + 1] += 1
    for k in range(K):
        first[k + 1] += first[k]
    idx = np.empty(T, np.int64)
    fill = first[:K].copy()
    for t in range(T):
        idx[fill[pattern[t]]] = t
        fill[pattern[t]] += 1
    return idx, first


@numba.njit(cache=True, fastmath=FAST)
def _residual_rows(y, lag, ar, cols, n, months):
    """y~ = y - ar lag of the observed columns ``cols[:n]`` in ``months``, (n, Tk): time last."""
    Tk = months.shape[0]
    yt = np.empty((n, Tk))
    for a in range(n):
        ca = cols[a]
        r = ar[ca]
        ya = yt[a]
        for j in range(Tk):
            t = months[j]
            ya[j] = y[t, ca] - r * lag[t, ca]
    return yt


@numba.njit(cache=True, fastmath=FAST, error_model="numpy")
def emission_loglik(y, lag, pattern, pcols, psize, ar, ms, li, logdet, const, nu, student):
    """Log emission densities of every joint state in every month, with the Student-t weights
    (nu + n) / (nu + maha), log1p(maha / nu) and maha, each (S, T): states first, months last
    in pattern order (the months of :func:`pattern_months`' ``idx``). Per missing-data pattern
    and state the months are the inner loop (z = L^-1 y~ - L^-1 m_s as axpys over months, then
    one vectorised logarithm) and each pattern's months are contiguous, so every loop is long
    and unit-stride for LLVM to vectorise. numpy's error model: a zero divisor gives inf, not a
    test before each division."""
    T = y.shape[0]
    S = ms.shape[1]
    K = pcols.shape[0]
    idx, first = pattern_months(pattern, K)
    ll = np.zeros((S, T))
    wgt = np.zeros((S, T))
    lg = np.zeros((S, T))
    mah = np.zeros((S, T))
    lognu = np.log(nu) if student else 0.0
    for kk in range(K):
        n = psize[kk]
        months = idx[first[kk]:first[kk + 1]]
        Tk = months.shape[0]
        if n == 0 or Tk == 0:
            continue
        cols = pcols[kk]
        yt = _residual_rows(y, lag, ar, cols, n, months)
        z = np.empty(Tk)
        m2 = np.empty(Tk)
        tmp = np.empty(Tk)
        half = 0.5 * (nu + n)
        ck = const[kk]
        for s in range(S):
            for j in range(Tk):
                m2[j] = 0.0
            for a in range(n):
                ca = 0.0                                 # (L^-1 m_s)[a]
                for b in range(a + 1):
                    ca += li[kk, a, b, s] * ms[cols[b], s]
                for j in range(Tk):
                    z[j] = -ca
                for b in range(a + 1):
                    lab = li[kk, a, b, s]
                    yb = yt[b]
                    for j in range(Tk):
                        z[j] += lab * yb[j]
                for j in range(Tk):
                    m2[j] += z[j] * z[j]
            ls = ck - logdet[kk, s]
            f0 = first[kk]
            lls, ws, lgs, ms2 = ll[s, f0:f0 + Tk], wgt[s, f0:f0 + Tk], lg[s, f0:f0 + Tk], mah[s, f0:f0 + Tk]
            if student:
                for j in range(Tk):
                    tmp[j] = nu + m2[j]
                vlog(tmp, lgs)
                for j in range(Tk):
                    v = lgs[j] - lognu                   # log1p(maha / nu)
                    lgs[j] = v
                    lls[j] = ls - half * v
                    ws[j] = (nu + n) / tmp[j]
                    ms2[j] = m2[j]
            else:
                for j in range(Tk):
                    lls[j] = ls - 0.5 * m2[j]
                    ws[j] = 1.0
                    ms2[j] = m2[j]
    return ll, wgt, lg, mah


@numba.njit(cache=True, fastmath=FAST)
def scaled_densities(ll, idx):
    """From log densities ``ll`` (S, T) in pattern order (month ``idx[j]`` in column j):
    ``(exp(ll - mx) (T, S), mx (T,))`` in time order, months first for the filter, with mx the
    largest log density of each month (the filter's scaling); one vectorised exponential."""
    S, T = ll.shape
    mxs = np.full(T, -np.inf)
    for s in range(S):
        ls = ll[s]
        for j in range(T):
            v = ls[j]
            mxs[j] = v if v > mxs[j] else mxs[j]        # a select, not max(): the loop vectorises
    d = np.empty((S, T))
    for s in range(S):
        ls, ds = ll[s], d[s]
        for j in range(T):
            ds[j] = ls[j] - mxs[j]
    flat = d.reshape(S * T)
    vexp(flat, flat)
    em = np.empty((T, S))
    mx = np.empty(T)
    for j in range(T):
        t = idx[j]
        mx[t] = mxs[j]
        for s in range(S):
            em[t, s] = d[s, j]
    return em, mx


@numba.njit(cache=True, fastmath=FAST, error_model="numpy")
def emission_grad(y, lag, pattern, pcols, psize, lagcol, ar, ms, li, gamma, wgt, lg, mah, nu, student, P, O):
    """Gradient of the log marginal with respect to the emission means (P, D), shifts (O, D),
    AR coefficients (D,), scale matrices (P, O, D, D) and nu, from the smoothed marginals
    ``gamma`` (S, T) in time order and the outputs of :func:`emission_loglik` ((S, T), pattern
    order)."""
    T, D = y.shape
    K = pcols.shape[0]
    S = P * O
    idx, first = pattern_months(pattern, K)
    # ---- sums over months weighted by gw = gamma * Student-t weight, in the month's own values
    # y~ = y - ar lag (no state in them): w0 = sum gw, w1 = sum gw y~, w2 = sum gw y~ y~' (lower),
    # l0 = sum gw lag, l1 = sum gw lag y~'; per pattern, as products of gw with rows of month
    # values (months last), i.e. dot products over the pattern's months
    w0 = np.zeros((K, S))
    w1 = np.zeros((K, D, S))
    w2 = np.zeros((K, D, D, S))
    l0 = np.zeros((K, D, S))
    l1 = np.zeros((K, D, D, S))
    gam_k = np.zeros((K, S))
    g_nu = 0.0
    for kk in range(K):
        n = psize[kk]
        months = idx[first[kk]:first[kk + 1]]
        Tk = months.shape[0]
        if n == 0 or Tk == 0:
            continue
        cols = pcols[kk]
        yt = _residual_rows(y, lag, ar, cols, n, months)
        nl = 0
        for a in range(n):
            if lagcol[cols[a]]:
                nl += 1
        lt = np.empty((nl, Tk))
        lpos = np.empty(nl, np.int64)
        i = 0
        for a in range(n):
            if lagcol[cols[a]]:
                lpos[i] = a
                for j in range(Tk):
                    lt[i, j] = lag[months[j], cols[a]]
                i += 1
        yy = np.empty((n * (n + 1) // 2, Tk))       # y~_a y~_b, b <= a, row-major lower triangle
        r = 0
        for a in range(n):
            for b in range(a + 1):
                for j in range(Tk):
                    yy[r, j] = yt[a, j] * yt[b, j]
                r += 1
        ly = np.empty((nl * n, Tk))                  # lag_a y~_b
        for i in range(nl):
            for b in range(n):
                for j in range(Tk):
                    ly[i * n + b, j] = lt[i, j] * yt[b, j]
        if student:
            g_nu += Tk * (0.5 * digamma((nu + n) / 2.0) - 0.5 * digamma(nu / 2.0) - 0.5 * n / nu)
        half = 0.5 * (nu + n)
        f0 = first[kk]
        gk = np.empty(Tk)
        gw = np.empty((S, Tk))
        for s in range(S):
            gs = gamma[s]
            ws = wgt[s, f0:f0 + Tk]
            gws = gw[s]
            for j in range(Tk):
                gk[j] = gs[months[j]]
            gsum = 0.0
            wsum = 0.0
            for j in range(Tk):
                gsum += gk[j]
                gws[j] = gk[j] * ws[j]
                wsum += gws[j]
            gam_k[kk, s] = gsum
            w0[kk, s] = wsum
            if student:
                ms2, lgs = mah[s, f0:f0 + Tk], lg[s, f0:f0 + Tk]
                acc = 0.0
                for j in range(Tk):
                    m = ms2[j]
                    acc += gk[j] * (-0.5 * lgs[j] + half * m / (nu * (nu + m)))
                g_nu += acc
        # every weighted sum at once: rows (y~, y~ y~', lag, lag y~') times gw over the months
        nr = n + yy.shape[0] + nl + nl * n
        rows = np.empty((nr, Tk))
        rows[:n] = yt
        rows[n:n + yy.shape[0]] = yy
        rows[n + yy.shape[0]:n + yy.shape[0] + nl] = lt
        rows[n + yy.shape[0] + nl:] = ly
        prod = np.empty((nr, S))
        products(rows, gw, prod)
        r = 0
        for a in range(n):
            w1[kk, a] = prod[a]
            for b in range(a + 1):
                w2[kk, a, b] = prod[n + r]
                r += 1
        for i in range(nl):
            a = lpos[i]
            l0[kk, a] = prod[n + yy.shape[0] + i]
            for b in range(n):
                l1[kk, a, b] = prod[n + yy.shape[0] + nl + i * n + b]
    # in the residuals r = y~ - m_s: r1 = sum gw r, r2 = sum gw r r', r3[a, b] = sum gw lag_a r_b
    r1 = np.zeros((K, D, S))
    r2 = np.zeros((K, D, D, S))
    r3 = np.zeros((K, D, D, S))
    for kk in range(K):
        n = psize[kk]
        for a in range(n):
            ma = ms[pcols[kk, a]]
            for s in range(S):
                r1[kk, a, s] = w1[kk, a, s] - w0[kk, s] * ma[s]
            for b in range(a + 1):
                mb = ms[pcols[kk, b]]
                for s in range(S):
                    r2[kk, a, b, s] = (w2[kk, a, b, s] - w1[kk, a, s] * mb[s] - w1[kk, b, s] * ma[s]
                                       + w0[kk, s] * ma[s] * mb[s])
            if lagcol[pcols[kk, a]]:
                for b in range(n):
                    mb = ms[pcols[kk, b]]
                    for s in range(S):
                        r3[kk, a, b, s] = l1[kk, a, b, s] - l0[kk, a, s] * mb[s]
    # ---- per pattern and state: to the means, AR coefficients and covariance
    g_mean = np.zeros((P, D))
    g_shift = np.zeros((O, D))
    g_ar = np.zeros(D)
    gsig = np.zeros((P, O, D, D))
    sinv = np.zeros((D, D))
    rm = np.zeros((D, D))
    tmp = np.zeros((D, D))
    for kk in range(K):
        n = psize[kk]
        if n == 0:
            continue
        cols = pcols[kk, :n]
        for p in range(P):
            for o in range(O):
                s = p * O + o
                for a in range(n):
                    for b in range(a + 1):
                        v = 0.0
                        for m in range(a, n):
                            v += li[kk, m, a, s] * li[kk, m, b, s]
                        sinv[a, b] = v
                        sinv[b, a] = v
                        rm[a, b] = r2[kk, a, b, s]
                        rm[b, a] = r2[kk, a, b, s]
                for a in range(n):
                    ca = cols[a]
                    v = 0.0
                    for b in range(n):
                        v += sinv[a, b] * r1[kk, b, s]
                    g_mean[p, ca] += v
                    g_shift[o, ca] += v
                    if lagcol[ca]:
                        v = 0.0
                        for b in range(n):
                            v += sinv[a, b] * r3[kk, a, b, s]
                        g_ar[ca] += v
                for a in range(n):                  # tmp = sinv rm
                    for b in range(n):
                        v = 0.0
                        for m in range(n):
                            v += sinv[a, m] * rm[m, b]
                        tmp[a, b] = v
                c = -0.5 * gam_k[kk, s]
                for a in range(n):                  # gsig += tmp sinv / 2 - gamma sinv / 2
                    for b in range(n):
                        v = 0.0
                        for m in range(n):
                            v += tmp[a, m] * sinv[m, b]
                        gsig[p, o, cols[a], cols[b]] += 0.5 * v + c * sinv[a, b]
    return g_mean, g_shift, g_ar, gsig, g_nu


@numba.njit(cache=True, fastmath=FAST)
def covariance_grad(gsig, chol, scale):
    """From d L / d Sigma_po (P, O, D, D), Sigma_po = S_o L_p L_p' S_o + diag(meas^2), to the
    Cholesky factors L_p (P, D, D) and the log scales (O, D)."""
    P, O, D = gsig.shape[0], gsig.shape[1], gsig.shape[2]
    g_chol = np.zeros((P, D, D))
    g_log_scale = np.zeros((O, D))
    H = np.zeros((D, D))
    KK = np.zeros((D, D))
    for p in range(P):
        for i in range(D):
            for j in range(D):
                v = 0.0
                for m in range(min(i, j) + 1):
                    v += chol[p, i, m] * chol[p, j, m]
                KK[i, j] = v
                hv = 0.0
                for o in range(O):
                    hv += scale[o, i] * scale[o, j] * gsig[p, o, i, j]
                H[i, j] = hv
        for o in range(O):
            for i in range(D):
                v = 0.0
                for j in range(D):
                    v += gsig[p, o, i, j] * scale[o, i] * scale[o, j] * KK[i, j]
                g_log_scale[o, i] += 2.0 * v
        for i in range(D):
            for j in range(i + 1):
                v = 0.0
                for m in range(j, D):
                    v += H[i, m] * chol[p, m, j]
                g_chol[p, i, j] = 2.0 * v
    return g_chol, g_log_scale
