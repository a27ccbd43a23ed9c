"""Small numba helpers: digamma, a stable log(1 - tanh^2), for the emission scale matrices
the Cholesky factor of a subset of rows, its rank-one update and its triangular inverse, and a
blocked product of two long-axis-last matrices."""

from __future__ import annotations

import numba
import numpy as np

# Floating-point licences for the kernels: reassociation and contraction (vectorised sums,
# fused multiply-add), never the no-NaN / no-inf ones (-inf is a valid log density).
FAST = {"contract", "arcp", "reassoc", "nsz"}


@numba.njit(cache=True)
def digamma(x):
    """The digamma function for x > 0: the recurrence psi(x) = psi(x + 1) - 1 / x up to x >= 6,
    then the asymptotic series (Abramowitz and Stegun 6.3.18); relative error < 1e-12 (tested against
    SciPy). Written here because numba cannot call SciPy's without a ctypes pointer, which
    would stop numba from caching every kernel that calls it."""
    acc = 0.0
    while x < 6.0:
        acc -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    series = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (1.0 / 132 - f * (
        691.0 / 32760 - f / 12.0))))))
    return acc + np.log(x) - 0.5 / x - series


@numba.njit(cache=True)
def log1m_tanh2(w):
    """log(1 - tanh(w)^2) = 2 (log 2 - |w| - log1p(exp(-2|w|))), finite for any finite w."""
    a = abs(w)
    return 2.0 * (np.log(2.0) - a - np.log1p(np.exp(-2.0 * a)))


@numba.njit(cache=True)
def rows_cholesky(M, n, out):
    """Lower Cholesky factor of ``M M'`` from the first n rows of ``M`` (n x D, the rows of a
    full factor that a month observes) into ``out``: Givens rotations of M's columns make it
    lower triangular (M M' unchanged), never forming the product, so a near-singular
    sub-covariance (correlations near 1, tiny sds) keeps a finite, accurate factor. Destroys M."""
    D = M.shape[1]
    for a in range(n):
        for b in range(a + 1, D):
            x, z = M[a, a], M[a, b]
            if z == 0.0:
                continue
            r = np.hypot(x, z)
            c, s = x / r, z / r
            for i in range(a, n):
                u, w = M[i, a], M[i, b]
                M[i, a] = c * u + s * w
                M[i, b] = c * w - s * u
        if M[a, a] < 0.0:
            for i in range(a, n):
                M[i, a] = -M[i, a]
    for i in range(n):
        for j in range(n):
            out[i, j] = M[i, j] if j <= i else 0.0


@numba.njit(cache=True)
def rank_one_add(L, n, j, v):
    """Cholesky factor of ``L L' + v^2 e_j e_j'`` in place (rotations; as
    :func:`regimecast.model.kernels.cholesky_add_diagonal`)."""
    x = np.zeros(n)
    x[j] = v
    for k in range(j, n):
        lkk = L[k, k]
        r = np.sqrt(lkk * lkk + x[k] * x[k])
        c = r / lkk
        s = x[k] / lkk
        L[k, k] = r
        for i in range(k + 1, n):
            L[i, k] = (L[i, k] + s * x[i]) / c
            x[i] = c * x[i] - s * L[i, k]


@numba.njit(cache=True)
def tril_inverse(L, n, out):
    """Inverse of the lower-triangular leading n x n block of ``L`` into ``out``."""
    for i in range(n):
        for j in range(n):
            out[i, j] = 0.0
    for i in range(n):
        out[i, i] = 1.0 / L[i, i]
        for j in range(i):
            s = 0.0
            for k in range(j, i):
                s += L[i, k] * out[k, j]
            out[i, j] = -s / L[i, i]


@numba.njit(cache=True, fastmath=FAST)
def products(a, b, out):
    """``out = a @ b.T`` for a (R, N), b (S, N), the long axis N last in both: blocks of 2 rows
    x 4 states, each pair of loaded vectors used for several products (a plain dot product
    per entry is bound by its two loads per multiply-add)."""
    R, N = a.shape
    S = b.shape[0]
    r0 = 0
    while r0 < R:
        r1 = min(r0 + 2, R)
        s0 = 0
        while s0 < S:
            if r1 - r0 == 2 and s0 + 4 <= S:
                x0, x1 = a[r0], a[r0 + 1]
                y0, y1, y2, y3 = b[s0], b[s0 + 1], b[s0 + 2], b[s0 + 3]
                c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = 0.0
                for j in range(N):
                    u0, u1 = x0[j], x1[j]
                    v0, v1, v2, v3 = y0[j], y1[j], y2[j], y3[j]
                    c00 += u0 * v0
                    c01 += u0 * v1
                    c02 += u0 * v2
                    c03 += u0 * v3
                    c10 += u1 * v0
                    c11 += u1 * v1
                    c12 += u1 * v2
                    c13 += u1 * v3
                out[r0, s0], out[r0, s0 + 1], out[r0, s0 + 2], out[r0, s0 + 3] = c00, c01, c02, c03
                out[r0 + 1, s0], out[r0 + 1, s0 + 1], out[r0 + 1, s0 + 2], out[r0 + 1, s0 + 3] = c10, c11, c12, c13
                s0 += 4
            else:
                for r in range(r0, r1):
                    for s in range(s0, min(s0 + 4, S)):
                        acc = 0.0
                        for j in range(N):
                            acc += a[r, j] * b[s, j]
                        out[r, s] = acc
                s0 += 4
        r0 += 2
