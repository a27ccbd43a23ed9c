"""``exp`` and ``log`` over whole arrays in loops that LLVM vectorises.

numba calls libm's scalar ``exp`` / ``log`` once per element (the pip llvmlite has no SVML), and
a call in a loop stops vectorisation: ~4.5 ns an element, ~40 us for the 9,000 emission terms of
one gradient. These are written with the exponent taken apart by bit operations and a
polynomial for the rest, branch-free and with numpy's error model (Python's inserts a zero
test before each division), so each loop runs 8 doubles at a time (~1 ns an element here). Relative error <= 4 ulp on the ranges the kernel uses (``tests/test_likelihood.py``
checks against NumPy). Only "contract" (fused multiply-add) is licensed: reassociation would
undo the split of ln 2 into a high and a low part.
"""

from __future__ import annotations

import numba
import numpy as np

LN2_HI = 6.93147180369123816490e-01     # ln 2, high part: its last 32 bits are zero, so k * LN2_HI is exact
LN2_LO = 1.90821492927058770002e-10     # ln 2 - LN2_HI
INV_LN2 = 1.44269504088896338700e+00
SQRT2 = 1.4142135623730951
EXP_MIN = -708.0                        # below it exp gives 0 (a subnormal result in libm: < 3e-308)
EXP_MAX = 709.0                         # above it exp overflows
MANTISSA = 0x000FFFFFFFFFFFFF
ONE_BITS = 0x3FF0000000000000           # exponent bits of 1.0
VMATH = {"contract"}
CHUNK = 512                             # elements per pass (scratch of 8 KiB)


@numba.njit(cache=True, fastmath=VMATH, error_model="numpy")
def vexp(x, out):
    """``out = exp(x)`` elementwise (1-D, contiguous; ``out`` may be ``x``): exp(x) = 2^k exp(r),
    k = round(x / ln 2), |r| <= ln 2 / 2, exp(r) by its Taylor polynomial of degree 13
    (truncation < 1e-17). Results below 3e-308 are 0, above 8.2e307 (x > 709) inf; NaN stays
    NaN. In chunks: the first pass reads x, the second writes out from scratch only, so an
    in-place call keeps both loops vectorised (a loop reading and writing possibly aliased
    arrays runs scalar)."""
    n = x.shape[0]
    m = min(n, CHUNK)
    scale = np.empty(m, np.int64)
    poly = np.empty(m)
    two_k = scale.view(np.float64)
    for c0 in range(0, n, CHUNK):
        c1 = min(c0 + CHUNK, n)
        for i in range(c0, c1):
            xr = x[i]
            xi = min(max(xr, EXP_MIN), EXP_MAX)
            k = np.floor(xi * INV_LN2 + 0.5)
            r = (xi - k * LN2_HI) - k * LN2_LO
            p = 1.0 / 6227020800.0
            p = p * r + 1.0 / 479001600.0
            p = p * r + 1.0 / 39916800.0
            p = p * r + 1.0 / 3628800.0
            p = p * r + 1.0 / 362880.0
            p = p * r + 1.0 / 40320.0
            p = p * r + 1.0 / 5040.0
            p = p * r + 1.0 / 720.0
            p = p * r + 1.0 / 120.0
            p = p * r + 1.0 / 24.0
            p = p * r + 1.0 / 6.0
            p = p * r + 0.5
            p = p * r + 1.0
            p = p * r + 1.0
            p = p if xr > EXP_MIN else 0.0
            p = np.inf if xr > EXP_MAX else p
            poly[i - c0] = p if xr == xr else xr
            scale[i - c0] = (np.int64(k) + 1023) << 52
        for i in range(c0, c1):
            out[i] = two_k[i - c0] * poly[i - c0]


@numba.njit(cache=True, fastmath=VMATH, error_model="numpy")
def vlog(x, out):
    """``out = log(x)`` elementwise (1-D, contiguous; ``out`` may be ``x``) for normal positive
    x: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s) = 2 s sum s^2j / (2j + 1),
    s = (m - 1) / (m + 1), |s| <= 0.172 (ten terms, truncation < 1e-18). 0 gives -inf, inf
    stays inf, negative numbers and NaN give NaN (through e); subnormal x (< 2.2e-308) is not
    supported. In chunks, as :func:`vexp`."""
    n = x.shape[0]
    m = min(n, CHUNK)
    mant = np.empty(m, np.int64)
    expo = np.empty(m)
    m1 = mant.view(np.float64)
    for c0 in range(0, n, CHUNK):
        c1 = min(c0 + CHUNK, n)
        bits = x[c0:c1].view(np.int64)
        for i in range(c0, c1):
            b = bits[i - c0]
            xi = x[i]
            mant[i - c0] = (b & MANTISSA) | ONE_BITS
            e = np.float64((b >> 52) - 1023)
            e = e if xi < np.inf else np.inf
            e = e if xi > 0.0 else -np.inf
            expo[i - c0] = e if xi >= 0.0 else np.nan
        for i in range(c0, c1):
            mi = m1[i - c0]
            e = expo[i - c0]
            big = np.float64(mi > SQRT2)         # arithmetic, not a branch: the loop stays vectorised
            mi = mi * (1.0 - 0.5 * big)
            e = e + big
            s = (mi - 1.0) / (mi + 1.0)
            z = s * s
            p = 1.0 / 21.0
            p = p * z + 1.0 / 19.0
            p = p * z + 1.0 / 17.0
            p = p * z + 1.0 / 15.0
            p = p * z + 1.0 / 13.0
            p = p * z + 1.0 / 11.0
            p = p * z + 1.0 / 9.0
            p = p * z + 1.0 / 7.0
            p = p * z + 1.0 / 5.0
            p = p * z + 1.0 / 3.0
            p = p * z + 1.0
            out[i] = e * LN2_HI + (2.0 * s * p + e * LN2_LO)
