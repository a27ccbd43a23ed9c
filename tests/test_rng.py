"""The forward simulator's random-number generators against their target laws: the vectorised
Marsaglia-Tsang gamma sampler and the inversion normals against scipy (Kolmogorov-Smirnov,
means and variances within 5 standard errors), the uniform words against JAX's own threefry
stream, determinism in the key, and the column-layout helpers of the scan against the
reference functions they replace."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from regimecast.simulate import rng
from regimecast.simulate.rng import gamma_candidates, random_bits, uniform
from regimecast.simulate.paths import (COV_DRAWDOWN, COV_FIXED, COV_OBSERVED, ForwardSpec, _covariates_by_column,
                                 _draw_softmax, forward_covariates)

N = 200_000
P_MIN = 1e-3
Z = 5.0


@partial(jax.jit, static_argnums=(2, 3))
def gamma(key, a, shape=(N,), dtype=jnp.float32):
    return rng.gamma(key, a, shape, dtype)


@partial(jax.jit, static_argnums=(1, 2))
def normal(key, shape=(N,), dtype=jnp.float32):
    return rng.normal(key, shape, dtype)


def moments_ok(x: np.ndarray, mean: float, var: float, mu4: float) -> None:
    """Sample mean and variance within Z standard errors (``mu4``: fourth central moment)."""
    x = x.astype(np.float64)
    n = len(x)
    assert abs(x.mean() - mean) < Z * np.sqrt(var / n), (x.mean(), mean)
    assert abs(x.var() - var) < Z * np.sqrt((mu4 - var ** 2) / n), (x.var(), var)


@pytest.mark.parametrize("a", [1.0, 1.7, 4.0, 12.5, 0.6])
def test_gamma_matches_scipy(a):
    g = np.asarray(gamma(jax.random.key(int(a * 10)), a))
    assert g.dtype == np.float32 and np.all(np.isfinite(g)) and np.all(g > 0)
    assert stats.kstest(g, stats.gamma(a).cdf).pvalue > P_MIN
    moments_ok(g, a, a, 3 * a * a + 6 * a)


def test_gamma_repeat_rounds_odd_shapes_and_vmap():
    """a = 1 rejects ~5% in the bulk round, so the repeat rounds fill many elements; a shape
    that is not a multiple of the 64-element rows; a shape parameter batched under vmap."""
    a = 1.0
    _, ok = gamma_candidates(jax.random.key(0), jnp.float32(a), 10_000, jnp.float32)
    assert 0.02 < 1 - float(np.mean(ok)) < 0.08
    g = np.asarray(gamma(jax.random.key(1), a, (3, 33_333)))
    assert g.shape == (3, 33_333)
    assert stats.kstest(g.ravel(), stats.gamma(a).cdf).pvalue > P_MIN
    shapes = jnp.array([1.2, 3.0, 9.0])
    gv = np.asarray(jax.jit(jax.vmap(lambda k, s: gamma(k, s, (N // 4,), jnp.float32)))(
        jax.random.split(jax.random.key(2), 3), shapes))
    for row, s in zip(gv, np.asarray(shapes)):
        assert stats.kstest(row, stats.gamma(s).cdf).pvalue > P_MIN


def test_gamma_elements_are_independent():
    """Rejected elements are refilled in order within rows: neighbours must stay uncorrelated."""
    g = np.asarray(gamma(jax.random.key(3), 1.0)).astype(np.float64)
    for lag in (1, 2, 64):
        r = np.corrcoef(g[:-lag], g[lag:])[0, 1]
        assert abs(r) < Z / np.sqrt(N), (lag, r)


def test_gamma_invalid_shape_gives_nan():
    for a in (0.0, -1.0, np.nan, np.inf):
        assert np.all(np.isnan(np.asarray(gamma(jax.random.key(0), a))))


def test_normal_matches_scipy():
    z = np.asarray(normal(jax.random.key(4)))
    assert z.dtype == np.float32 and np.all(np.isfinite(z))
    assert stats.kstest(z, stats.norm.cdf).pvalue > P_MIN
    moments_ok(z, 0.0, 1.0, 3.0)
    assert abs(np.mean(np.abs(z)) - np.sqrt(2 / np.pi)) < Z * np.sqrt((1 - 2 / np.pi) / N)
    assert np.count_nonzero(z == 0) == 0              # midpoint grid: no atom at zero


def test_normal_halves_of_each_hash_are_uncorrelated():
    """Each threefry hash gives two words: the first half of a draw holds the high words, the
    second half the low words of the same hashes. They must be independent."""
    z = np.asarray(normal(jax.random.key(5))).astype(np.float64)
    hi, lo = z[: N // 2], z[N // 2:]
    for a, b in ((hi, lo), (hi ** 2, lo ** 2), (np.abs(hi), np.abs(lo))):
        assert abs(np.corrcoef(a, b)[0, 1]) < Z / np.sqrt(N // 2)
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < Z / np.sqrt(N)


def test_uniform_matches_scipy():
    u = np.asarray(uniform(jax.random.key(6), (N,), jnp.float32))
    assert np.all((u >= 0) & (u < 1))
    assert stats.kstest(u, stats.uniform.cdf).pvalue > P_MIN


def test_words_are_jax_threefry_64_bit_words():
    """The 32-bit words are both halves of ``jax.random.bits(key, uint64)``: JAX's own stream."""
    if not jax.config.jax_threefry_partitionable:
        pytest.skip("the word layout matches the partitionable threefry only")
    key = jax.random.key(7)
    with jax.enable_x64(True):
        b64 = np.asarray(jax.random.bits(key, (1000,), jnp.uint64))
    w = np.asarray(random_bits(key, 2000, jnp.float32))
    assert w.dtype == np.uint32
    np.testing.assert_array_equal(w[:1000], (b64 >> np.uint64(32)).astype(np.uint32))
    np.testing.assert_array_equal(w[1000:], (b64 & np.uint64(0xFFFFFFFF)).astype(np.uint32))


def test_float64_and_other_key_kinds():
    with jax.enable_x64(True):
        z = np.asarray(jax.jit(lambda k: normal(k, (N,), jnp.float64))(jax.random.key(8)))
        g = np.asarray(jax.jit(lambda k: gamma(k, 2.5, (N,), jnp.float64))(jax.random.key(9)))
    assert z.dtype == np.float64 and g.dtype == np.float64
    assert stats.kstest(z, stats.norm.cdf).pvalue > P_MIN
    assert stats.kstest(g, stats.gamma(2.5).cdf).pvalue > P_MIN
    for key in (jax.random.PRNGKey(10), jax.random.key(10, impl="rbg")):
        assert stats.kstest(np.asarray(normal(key)), stats.norm.cdf).pvalue > P_MIN


def test_same_key_same_draws():
    k, other = jax.random.key(11), jax.random.key(12)
    for f in (partial(gamma, a=2.0), normal, jax.jit(lambda k: uniform(k, (N,), jnp.float32))):
        first = np.asarray(f(k))
        np.testing.assert_array_equal(first, np.asarray(f(k)))
        assert not np.array_equal(first, np.asarray(f(other)))


def test_draw_softmax_frequencies():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 1)) * 2
    probs = np.exp(logits[:, 0] - logits.max()) / np.exp(logits[:, 0] - logits.max()).sum()
    u = uniform(jax.random.key(13), (N,), jnp.float32)
    idx = np.asarray(_draw_softmax(jnp.broadcast_to(jnp.asarray(logits, jnp.float32), (5, N)), u))
    freq = np.bincount(idx, minlength=5) / N
    assert np.all(np.abs(freq - probs) < Z * np.sqrt(probs * (1 - probs) / N))


def test_covariates_by_column_match_forward_covariates():
    spec = ForwardSpec(center=np.zeros(3), level_rule=np.zeros(3, int),
                       cov_kind=np.array([COV_DRAWDOWN, COV_OBSERVED, COV_FIXED, COV_DRAWDOWN]),
                       cov_col=np.array([1, 2, 0, 2]), cov_window=np.array([4, 1, 1, 2]),
                       cov_center=np.array([0.1, 3.0, 0.0, 0.0]), cov_scale=np.array([0.1, 0.5, 1.0, 2.0]),
                       cov_fixed=np.array([0.0, 0.0, 0.7, 0.0]))
    rng = np.random.default_rng(1)
    win_cols = np.array([1, 2])
    obs = jnp.asarray(rng.normal(size=(50, 3)), jnp.float32)
    window = jnp.asarray(rng.uniform(1, 2, size=(50, 4, 2)), jnp.float32)
    ref = np.asarray(forward_covariates(spec, obs, window, win_cols).astype(jnp.float32))
    got = np.asarray(_covariates_by_column(spec, obs.T, jnp.transpose(window, (1, 2, 0)), win_cols, jnp.float32))
    np.testing.assert_allclose(got.T, ref, rtol=1e-6, atol=1e-6)
