"""Exact random-number samplers that vectorise well on CPU, for the forward simulation:
uniforms and normals from both halves of each threefry hash, and a vectorised
Marsaglia-Tsang gamma with an exact rejection loop. Each is tested against SciPy
(``tests/test_rng.py``); ``jax.random.gamma``'s per-element loop was ~55% of the
simulator's time (benchmarks/RESULTS.md)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p





def _canonical(dtype) -> np.dtype:
    """The float dtype JAX actually uses for ``dtype`` (float64 becomes float32 without x64)."""
    return jnp.zeros((), dtype).dtype


def random_bits(key: jax.Array, n: int, dtype) -> jnp.ndarray:
    """``n`` uniform random words (n,) as wide as ``dtype`` (uint32 for float32, uint64 for
    float64), a deterministic function of ``key``.

    For a threefry key and 32-bit words this keeps both 32-bit outputs of each threefry hash:
    the words are those of ``jax.random.bits(key, (ceil(n/2),), uint64)`` (the high halves
    first, then the low halves). ``jax.random.bits`` with 32-bit words under the default
    partitionable threefry hashes one counter per word and XORs the two outputs, twice the work
    for the same quality. Other key implementations and 64-bit words use ``jax.random.bits``."""
    width = _canonical(dtype).itemsize
    if width == 8:
        return jax.random.bits(key, (n,), jnp.uint64)
    if str(jax.random.key_impl(key)) != "threefry2x32":
        return jax.random.bits(key, (n,), jnp.uint32)
    k1, k2 = jax.random.key_data(key)
    m = (n + 1) // 2
    hi, lo = threefry2x32_p.bind(k1, k2, jnp.zeros(m, jnp.uint32), jax.lax.iota(jnp.uint32, m))
    return jnp.concatenate([hi, lo])[:n]


def _unit_interval(bits: jnp.ndarray, dtype) -> jnp.ndarray:
    """Uniforms on [0, 1) from random words, as ``jax.random.uniform`` makes them: the top
    mantissa-many bits of each word as the mantissa of a float in [1, 2), minus one."""
    dt = _canonical(dtype)
    nbits = bits.dtype.itemsize * 8
    fdt = np.dtype(np.float32 if nbits == 32 else np.float64)
    one = np.array(1.0, fdt).view(bits.dtype)
    shifted = jax.lax.shift_right_logical(bits, jnp.asarray(nbits - np.finfo(fdt).nmant, bits.dtype))
    return (jax.lax.bitcast_convert_type(shifted | one, fdt) - 1.0).astype(dt)


def _unit_interval_open(bits: jnp.ndarray, dtype) -> jnp.ndarray:
    """Uniforms on (0, 1] from random words: (word + 1/2) / 2^bits rounded to ``dtype``.
    Bounded away from zero by 2^-(bits+1), not by the mantissa's 2^-24: the fine grid near zero
    is what ``log u`` and ``u^(1/a)`` (rejection tests, the a < 1 boost) are sensitive to."""
    dt = _canonical(dtype)
    nbits = bits.dtype.itemsize * 8
    return (bits.astype(dt) + dt.type(0.5)) * dt.type(0.5 ** nbits)


def uniform(key: jax.Array, shape: tuple[int, ...], dtype) -> jnp.ndarray:
    """Standard uniforms on [0, 1) of ``shape`` (same construction as ``jax.random.uniform``,
    cheaper words: see :func:`random_bits`)."""
    n = int(np.prod(shape, dtype=np.int64))
    return _unit_interval(random_bits(key, n, dtype), dtype).reshape(shape)


def _normal_from_bits(bits: jnp.ndarray, dtype) -> jnp.ndarray:
    """Standard normals from random words by inversion, one word per normal: the top bit is
    the sign, the next mantissa-many bits give m = (k + 1/2) 2^-nmant in (0, 1) (midpoints
    of the float grid, so no atom at zero), and |z| = sqrt(2) erf^-1(m). This is how
    ``jax.random.normal`` makes normals (erf^-1 of a uniform on (-1, 1)), on a grid twice as
    fine: float32 tails reach 5.42 sd (``jax.random.normal``: 5.2). Box-Muller would need sin
    and cos, which XLA evaluates on CPU several times slower than this erf^-1."""
    dt = _canonical(dtype)
    nbits = bits.dtype.itemsize * 8
    fdt = np.dtype(np.float32 if nbits == 32 else np.float64)
    nmant = np.finfo(fdt).nmant
    one = np.array(1.0, fdt).view(bits.dtype)
    k = jax.lax.shift_right_logical(jax.lax.shift_left(bits, jnp.asarray(1, bits.dtype)),
                                    jnp.asarray(nbits - nmant, bits.dtype))
    m = jax.lax.bitcast_convert_type(k | one, fdt) - fdt.type(1.0 - 0.5 ** (nmant + 1))   # (k + 1/2) 2^-nmant
    mag = dt.type(np.sqrt(2.0)) * jax.lax.erf_inv(m.astype(dt))
    return jnp.where(jax.lax.shift_right_logical(bits, jnp.asarray(nbits - 1, bits.dtype)) == 0, mag, -mag)


def normal(key: jax.Array, shape: tuple[int, ...], dtype) -> jnp.ndarray:
    """Standard normals of ``shape``: :func:`_normal_from_bits` of :func:`random_bits`."""
    n = int(np.prod(shape, dtype=np.int64))
    return _normal_from_bits(random_bits(key, n, dtype), dtype).reshape(shape)


def gamma_candidates(key: jax.Array, a: jnp.ndarray, n: int, dtype) -> tuple[jnp.ndarray, jnp.ndarray]:
    """One Marsaglia-Tsang (2000) round for n elements: candidate values (n,) and whether each
    is accepted. Given acceptance a candidate is exactly Gamma(a, 1); requires a >= 1."""
    dt = _canonical(dtype)
    d = a - dt.type(1.0 / 3.0)
    c = jax.lax.rsqrt(dt.type(9.0) * d)
    bits = random_bits(key, 2 * n, dt)
    x = _normal_from_bits(bits[:n], dt)
    log_u = jnp.log(_unit_interval_open(bits[n:], dt))
    v = 1.0 + c * x
    pos = v > 0
    v3 = jnp.where(pos, v * v * v, 1.0)
    accept = pos & (log_u < 0.5 * x * x + d - d * v3 + d * jnp.log(v3))
    return d * v3, accept


def _run_once_if(pred: jnp.ndarray, fn, x):
    """``fn(x, flag)`` where ``pred`` else ``x`` (``flag`` is a uint32 that is 1 whenever the
    result is used; fold it into any key ``fn`` draws with). A one-trip ``while_loop``, not
    ``lax.cond``: under ``vmap`` a cond with a batched predicate runs both branches for every
    member, this runs ``fn`` only when some member needs it. ``fn`` must use ``flag``: XLA would
    otherwise hoist work that does not depend on the loop state out of the loop and run it
    always."""
    def body(c):
        return jnp.zeros_like(c[0]), fn(c[1], c[0].astype(jnp.uint32))
    return jax.lax.while_loop(lambda c: c[0], body, (pred, x))[1]


def _inclusive_cumsum_rows(mask: jnp.ndarray) -> jnp.ndarray:
    """Row-wise inclusive prefix counts of a boolean (R, w) array, as a product with a
    triangular 0/1 matrix (exact: small integers; far cheaper on CPU than ``jnp.cumsum``)."""
    w = mask.shape[-1]
    tri = jnp.asarray(np.triu(np.ones((w, w), np.float32)))
    return jnp.matmul(mask.astype(jnp.float32), tri, precision=jax.lax.Precision.HIGHEST).astype(jnp.int32)


_GAMMA_ROW, _GAMMA_SPARE = 64, 8       # rows of 64 elements share 8 fresh candidates per repeat round


def gamma(key: jax.Array, a, shape: tuple[int, ...], dtype) -> jnp.ndarray:
    """Exact Gamma(a, 1) draws of ``shape`` for a scalar shape parameter ``a`` > 0.

    Marsaglia-Tsang (2000) rejection sampling, vectorised over the whole array; valid for
    a >= 1 (the forward simulation's a = nu / 2 > 1 since the model has nu > 2). Every element
    gets one candidate in a bulk round. Then, only while some element is still rejected, a
    ``while_loop`` runs repeat rounds: the elements are grouped in rows of 64, each row draws 8
    fresh candidates (key folded with the round counter), and the row's accepted fresh
    candidates fill its still-rejected elements in order (the j-th rejected element takes the
    j-th accepted candidate); elements left over wait for the next round. Accepted values are
    kept. Each element thus ends with an accepted Marsaglia-Tsang proposal, and which proposal
    goes to which element depends only on the accept/reject pattern, never on the proposed
    values: given acceptance proposals are i.i.d. Gamma(a, 1), so the draws are exact and
    independent. (Rejection is under 5% for a >= 1: one repeat round nearly always suffices,
    and costs an eighth of the bulk round.)

    For a < 1 the standard boost Gamma(a) = Gamma(a + 1) * U^(1/a), U uniform and independent
    (one extra uniform per element, drawn only when a < 1). A non-finite or non-positive ``a``
    gives NaN (rather than a rejection loop that never ends).
    """
    dt = _canonical(dtype)
    a = jnp.asarray(a, dt)
    n = int(np.prod(shape, dtype=np.int64))
    w, s = _GAMMA_ROW, _GAMMA_SPARE
    rows = max(-(-n // w), 1)
    valid = jnp.isfinite(a) & (a > 0)
    boost = valid & (a < 1.0)
    a1 = jnp.where(valid, jnp.where(boost, a + 1.0, a), 1.0)
    k0, kr, kb = jax.random.split(key, 3)
    value, accept = gamma_candidates(k0, a1, rows * w, dt)
    value, accept = value.reshape(rows, w), accept.reshape(rows, w)

    def body(c):
        i, value, accept = c
        cand, ok = gamma_candidates(jax.random.fold_in(kr, i), a1, rows * s, dt)
        cand, ok = jax.lax.optimization_barrier((cand.reshape(rows, s), ok.reshape(rows, s)))
        need = ~accept
        # ranks 1, 2, ... of the row's rejected elements and of its accepted fresh candidates
        rank_need = jnp.where(need, _inclusive_cumsum_rows(need), 0)           # (rows, w), 0: not needed
        rank_ok = jnp.where(ok, _inclusive_cumsum_rows(ok), -1)                # (rows, s), -1: rejected
        for k in range(s):                                                     # unrolled: cheap selects
            hit = rank_need == rank_ok[:, k:k + 1]
            value = jnp.where(hit, cand[:, k:k + 1], value)
            accept = accept | hit
        return i + 1, value, accept

    _, value, _ = jax.lax.while_loop(lambda c: jnp.any(~c[2]), body, (jnp.zeros((), jnp.uint32), value, accept))
    value = jnp.where(valid, value.reshape(-1)[:n], jnp.nan)
    value = _run_once_if(boost, lambda v, flag: v * _unit_interval_open(
        random_bits(jax.random.fold_in(kb, flag), n, dt), dt) ** (1.0 / a), value)
    return value.reshape(shape)
