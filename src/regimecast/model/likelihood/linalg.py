"""Small numba helpers: digamma, a stable log(1 - tanh^2), and for the emission scale matrices
the Cholesky factor of a subset of rows, its rank-one update and its triangular inverse."""

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
