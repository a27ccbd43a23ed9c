"""Emission densities of every month in every joint state, and their reverse pass: from the
smoothed marginals to the means, AR coefficients, Student-t degrees of freedom, and through each
state's covariance (d log t / d Sigma) to the Cholesky factors and scales."""

from __future__ import annotations

import numba
import numpy as np

from regimecast.model.likelihood.linalg import FAST, digamma, rank_one_add, rows_cholesky, tril_inverse


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


@numba.njit(cache=True, fastmath=FAST)
def emission_loglik(y, lag, pattern, pcols, psize, ar, ms, li, logdet, const, nu, student):
    """Log emission densities ``ll`` (T, S) of every month in every joint state, with the
    Student-t weights (nu + n) / (nu + maha), log1p(maha / nu) and maha of each (T, S)."""
    T, D = y.shape
    S = ms.shape[1]
    K = pcols.shape[0]
    # z = L^-1 (y~ - m_s) = L^-1 y~ - c_s with c_s = L^-1 m_s per pattern and state
    c = np.zeros((K, D, S))
    for kk in range(K):
        n = psize[kk]
        for a in range(n):
            for b in range(a + 1):
                cb = pcols[kk, b]
                for s in range(S):
                    c[kk, a, s] += li[kk, a, b, s] * ms[cb, s]
    ll = np.zeros((T, S))
    wgt = np.zeros((T, S))
    lg = np.zeros((T, S))
    mah = np.zeros((T, S))
    ytil = np.zeros(D)
    z = np.zeros(S)
    for t in range(T):
        kk = pattern[t]
        n = psize[kk]
        if n == 0:
            continue
        for a in range(n):
            ca = pcols[kk, a]
            ytil[a] = y[t, ca] - ar[ca] * lag[t, ca]
        m2 = mah[t]
        for a in range(n):
            ca_ = c[kk, a]
            for s in range(S):
                z[s] = -ca_[s]
            for b in range(a + 1):
                yb = ytil[b]
                lab = li[kk, a, b]
                for s in range(S):
                    z[s] += yb * lab[s]
            for s in range(S):
                m2[s] += z[s] * z[s]
        ld = logdet[kk]
        if student:
            half = 0.5 * (nu + n)
            for s in range(S):
                v = np.log1p(m2[s] / nu)
                lg[t, s] = v
                ll[t, s] = const[kk] - ld[s] - half * v
                wgt[t, s] = (nu + n) / (nu + m2[s])
        else:
            for s in range(S):
                ll[t, s] = const[kk] - ld[s] - 0.5 * m2[s]
                wgt[t, s] = 1.0
    return ll, wgt, lg, mah


@numba.njit(cache=True, fastmath=FAST)
def emission_grad(y, lag, pattern, pcols, psize, lagcol, ar, ms, li, gamma, wgt, lg, mah, nu, student, P, O):
    """Gradient of the log marginal with respect to the emission means (P, D), shifts (O, D),
    AR coefficients (D,), scale matrices (P, O, D, D) and nu, from the smoothed marginals."""
    T, D = y.shape
    K = pcols.shape[0]
    S = P * O
    # ---- sums over months weighted by gw = gamma * Student-t weight, in the month's own values
    # y~ = y - ar lag (no state in them, so each update is a scalar times the (S,) weights):
    # w0 = sum gw, w1 = sum gw y~, w2 = sum gw y~ y~' (lower), l0 = sum gw lag, l1 = sum gw lag y~'
    w0 = np.zeros((K, S))
    w1 = np.zeros((K, D, S))
    w2 = np.zeros((K, D, D, S))
    l0 = np.zeros((K, D, S))
    l1 = np.zeros((K, D, D, S))
    gam_k = np.zeros((K, S))
    gw = np.zeros(S)
    ytil = np.zeros(D)
    g_nu = 0.0
    for t in range(T):
        kk = pattern[t]
        n = psize[kk]
        if n == 0:
            continue
        if student:
            g_nu += 0.5 * digamma((nu + n) / 2.0) - 0.5 * digamma(nu / 2.0) - 0.5 * n / nu
            half = 0.5 * (nu + n)
            acc = 0.0
            for s in range(S):
                m = mah[t, s]
                acc += gamma[t, s] * (-0.5 * lg[t, s] + half * m / (nu * (nu + m)))
            g_nu += acc
        gk, w0k = gam_k[kk], w0[kk]
        for s in range(S):
            g = gamma[t, s]
            gk[s] += g
            gw[s] = g * wgt[t, s]
            w0k[s] += gw[s]
        for a in range(n):
            ca = pcols[kk, a]
            ytil[a] = y[t, ca] - ar[ca] * lag[t, ca]
        for a in range(n):
            ya = ytil[a]
            w1a = w1[kk, a]
            for s in range(S):
                w1a[s] += ya * gw[s]
            for b in range(a + 1):
                yab = ya * ytil[b]
                w2ab = w2[kk, a, b]
                for s in range(S):
                    w2ab[s] += yab * gw[s]
            ca = pcols[kk, a]
            if lagcol[ca]:
                la = lag[t, ca]
                l0a = l0[kk, a]
                for s in range(S):
                    l0a[s] += la * gw[s]
                for b in range(n):
                    lab = la * ytil[b]
                    l1ab = l1[kk, a, b]
                    for s in range(S):
                        l1ab[s] += lab * gw[s]
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
