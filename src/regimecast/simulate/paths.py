"""Simulation from the model (JAX, explicit keys, ``lax.scan`` over months).

``simulate_panel`` draws a hidden state path and observations given exogenous covariates:
the generative model the likelihood conditions on, used to check parameter recovery.
``simulate_forward`` draws joint forward paths from the origin month of a fitted run, with the
covariates of the time-varying policy transitions recomputed on each simulated path.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from regimecast.model.kernels import Params, policy_transition
from regimecast.simulate.rng import gamma, normal, uniform


def draw_emission(key: jax.Array, params: Params, p: jnp.ndarray, o: jnp.ndarray, lag: jnp.ndarray,
                  family: str) -> jnp.ndarray:
    """One observation vector (D,) given policy state ``p``, other-factor combination ``o``
    and the AR lags ``lag`` (D,) (centred units)."""
    k1, k2 = jax.random.split(key)
    D = params.mean.shape[1]
    eps = params.chol[p] @ jax.random.normal(k1, (D,))
    if family == "student_t":
        eps = eps * jnp.sqrt(params.nu / (2.0 * jax.random.gamma(k2, params.nu / 2.0)))
    return params.mean[p] + params.shift[o] + params.ar_coef * lag + jnp.exp(params.log_scale[o]) * eps


def simulate_panel(key: jax.Array, params: Params, covariates: jnp.ndarray, lag0: jnp.ndarray,
                   family: str) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Simulate T months given exogenous lagged covariates (T, C) and the pre-sample AR lag
    ``lag0`` (D,). Returns ``(y (T, D), policy (T,), other (T,))``; y in centred model units."""
    P, O = params.init.shape

    def step(carry, inp):
        joint_prev, lag = carry                  # joint_prev: (P, O) one-hot of the previous state
        k, x = inp
        ks, ke = jax.random.split(k)
        ptrans = policy_transition(params, x)    # (O, P, P)
        pred = jnp.einsum("po,opq->qo", joint_prev @ params.q_other, ptrans)
        idx = jax.random.categorical(ks, jnp.log(pred.ravel()))
        p, o = idx // O, idx % O
        y = draw_emission(ke, params, p, o, lag, family)
        nxt = jnp.zeros((P, O)).at[p, o].set(1.0)
        new_lag = jnp.where(params.ar_coef != 0, y, 0.0)
        return (nxt, new_lag), (y, p, o)

    k0, key = jax.random.split(key)
    first = jax.random.categorical(k0, jnp.log(params.init.ravel()))
    start = jnp.zeros((P, O)).at[first // O, first % O].set(1.0)   # state of the pre-sample month
    keys = jax.random.split(key, covariates.shape[0])
    _, (y, p, o) = jax.lax.scan(step, (start, jnp.asarray(lag0)), (keys, covariates))
    return y, p, o


# ------------------------------------------------------------------------------------------
# Forward simulation from a fitted run (forecasts): path-dependent covariates, batched paths.
# ------------------------------------------------------------------------------------------

# How a series' natural level follows from its (uncentred) observation; see ``integrate``.
LEVEL_DIFF, LEVEL_LOG_RETURN, LEVEL_EXP, LEVEL_IS_OBS = 0, 1, 2, 3
TRANSFORM_LEVEL = {"diff": LEVEL_DIFF, "log_diff_pct": LEVEL_LOG_RETURN, "log": LEVEL_EXP,
                   "yoy_pct": LEVEL_IS_OBS, "level": LEVEL_IS_OBS}
# Covariate kinds of the forward simulation.
COV_DRAWDOWN, COV_OBSERVED, COV_FIXED = 0, 1, 2



class ForwardSpec(NamedTuple):
    """Static description of the forward simulation. D observed series, C covariates.

    center:     (D,) AR centre of each series (0 for non-AR): observation = centred + center
    level_rule: (D,) int, one of ``LEVEL_*``: how the natural level follows from the observation
    cov_kind:   (C,) int, one of ``COV_*``; cov_col: (C,) the series column it reads
    cov_window: (C,) int, drawdown window in months (ignored for other kinds)
    cov_center, cov_scale: (C,) standardisation; cov_fixed: (C,) standardised value of a
                covariate whose source is not simulated (held at its last value)
    meas_sd:    (D,) publication rounding sd added to each observation (None: none)
    """

    center: np.ndarray
    level_rule: np.ndarray
    cov_kind: np.ndarray
    cov_col: np.ndarray
    cov_window: np.ndarray
    cov_center: np.ndarray
    cov_scale: np.ndarray
    cov_fixed: np.ndarray
    meas_sd: np.ndarray | None = None


class Origin(NamedTuple):
    """Data at the last observed month (the forecast origin), shared by every draw.

    obs:    (D,) uncentred observations in model units (last available value per series)
    level:  (D,) natural levels (yield in %, index points, USD/oz, VIX points, ...)
    window: (W, D) natural levels of the last W months (oldest first; drawdown covariates)
    """

    obs: np.ndarray
    level: np.ndarray
    window: np.ndarray


def integrate(level_prev: jnp.ndarray, obs: jnp.ndarray, rule: np.ndarray) -> jnp.ndarray:
    """Natural level from the previous level and this month's observation (..., D)."""
    return jnp.where(rule == LEVEL_DIFF, level_prev + obs,
                     jnp.where(rule == LEVEL_LOG_RETURN, level_prev * jnp.exp(obs / 100.0),
                               jnp.where(rule == LEVEL_EXP, jnp.exp(obs), obs)))


def window_columns(spec: ForwardSpec) -> np.ndarray:
    """Series columns whose trailing levels the drawdown covariates need (sorted, unique)."""
    return np.unique(spec.cov_col[spec.cov_kind == COV_DRAWDOWN]).astype(int)


def forward_covariates(spec: ForwardSpec, obs_prev: jnp.ndarray, window: jnp.ndarray,
                       win_cols: np.ndarray | None = None) -> jnp.ndarray:
    """Standardised covariates (N, C) of the coming month from last month's observations
    ``obs_prev`` (N, D) and the trailing levels ``window`` (N, W, D') of the series columns
    ``win_cols`` (D',) (default: all D columns): :func:`_covariates_by_column` in the
    (paths, columns) layout."""
    cols = np.arange(window.shape[2]) if win_cols is None else win_cols
    return _covariates_by_column(spec, obs_prev.T, jnp.transpose(window, (1, 2, 0)), cols,
                                 jnp.result_type(obs_prev, window)).T


def _covariates_by_column(spec: ForwardSpec, obs_prev: jnp.ndarray, window: jnp.ndarray, win_cols: np.ndarray,
                          dtype) -> jnp.ndarray:
    """Standardised covariates in the (columns, paths) layout of the forward scan:
    ``obs_prev`` (D, N), ``window`` (W, D', N) of the columns ``win_cols``; returns (C, N)."""
    W = window.shape[0]
    pos = {int(c): i for i, c in enumerate(win_cols)}
    rows = []
    for c in range(len(spec.cov_kind)):
        col, kind = int(spec.cov_col[c]), int(spec.cov_kind[c])
        if kind == COV_DRAWDOWN:
            recent = window[W - int(spec.cov_window[c]):, pos[col]]
            raw = 1.0 - window[-1, pos[col]] / jnp.max(recent, axis=0)
            rows.append((raw - spec.cov_center[c]) / spec.cov_scale[c])
        elif kind == COV_OBSERVED:
            rows.append((obs_prev[col] - spec.cov_center[c]) / spec.cov_scale[c])
        else:
            rows.append(jnp.full(obs_prev.shape[1:], spec.cov_fixed[c]))
    n = obs_prev.shape[1]
    return jnp.stack(rows, axis=0).astype(dtype) if rows else jnp.zeros((0, n), dtype)


def _draw_inverse(cdf: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """Categorical draw by inversion, (columns, paths) layout: ``cdf`` (K, N) cumulative
    probabilities down the K rows, ``u`` (N,) uniforms; index = #{j < K-1 : cdf_j < u}."""
    K = cdf.shape[0]
    return jnp.sum(jnp.stack([u > cdf[j] for j in range(K - 1)] + [jnp.zeros(u.shape, bool)]), axis=0)


def _draw_softmax(logits: jnp.ndarray, u: jnp.ndarray) -> jnp.ndarray:
    """Categorical draw by inversion from unnormalised log-probabilities ``logits`` (K, N) and
    uniforms ``u`` (N,): index = #{j < K-1 : sum_{i<=j} w_i < u * sum_i w_i},
    w = exp(logits - max). The same law as inverting ``cumsum(softmax(logits))``; the prefix
    sums are unrolled over the (small, static) K rows, cheaper than ``jnp.cumsum``."""
    w = jnp.exp(logits - jnp.max(logits, axis=0))
    cum = [w[0]]
    for j in range(1, w.shape[0]):
        cum.append(cum[-1] + w[j])
    return _draw_inverse(jnp.stack(cum), u * cum[-1])


def _tril_matvec(lt: jnp.ndarray, z: jnp.ndarray, D: int) -> jnp.ndarray:
    """Path-wise L z for lower-triangular L given by its ``np.tril_indices(D)`` entries ``lt``
    (D(D+1)/2, N) and vectors ``z`` (D, N): elementwise multiply-adds, no batched matmul."""
    rows, k = [], 0
    for i in range(D):
        acc = lt[k] * z[0]
        for j in range(1, i + 1):
            acc = acc + lt[k + j] * z[j]
        rows.append(acc)
        k += i + 1
    return jnp.stack(rows, axis=0)


def simulate_forward(key: jax.Array, params: Params, probs0: jnp.ndarray, origin: Origin, spec: ForwardSpec,
                     n_paths: int, horizon: int, family: str, dtype=jnp.float32):
    """Joint forward paths for one posterior draw.

    ``probs0`` (P, O): filtered joint state distribution at the origin month. Every month the
    covariates are recomputed on the simulated path (a simulated drawdown moves the policy
    transition probabilities of the next month). For speed: all random numbers are drawn in
    bulk before the ``lax.scan`` over months by exact samplers that vectorise on CPU (uniform
    words from both halves of each threefry hash, normals by erf^-1 inversion, Student-t
    mixing variables by vectorised Marsaglia-Tsang rejection: see :func:`gamma`), the scan
    carries a batch of N paths in a (series, paths) layout, state-indexed quantities are
    gathered from tables over the states, and the arithmetic is in ``dtype`` (float32 by
    default: 24 monthly steps lose nothing that matters at 7 digits).
    Returns ``levels`` (N, H, D) in natural units, ``policy`` (N, H) and ``other`` (N, H)
    state indices (other = combination index of the non-policy factors).
    """
    P, O = probs0.shape
    D = params.mean.shape[1]
    pr = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
    k0, ku, kz, kg, km = jax.random.split(key, 5)
    floor_cols = np.flatnonzero(spec.meas_sd > 0) if spec.meas_sd is not None else np.zeros(0, int)
    floor = jnp.zeros(D, dtype).at[floor_cols].set(jnp.asarray(spec.meas_sd[floor_cols] if len(floor_cols) else [], dtype))
    zm = normal(km, (horizon, len(floor_cols), n_paths), dtype)
    first = _draw_inverse(jnp.cumsum(jnp.asarray(probs0, dtype).ravel())[:, None], uniform(k0, (n_paths,), dtype))
    u = uniform(ku, (horizon, 2, n_paths), dtype)
    z = normal(kz, (horizon, D, n_paths), dtype)
    if family == "student_t":
        mix = jnp.sqrt(pr.nu / (2.0 * gamma(kg, pr.nu / 2.0, (horizon, n_paths), dtype)))
    else:
        mix = jnp.ones((horizon, n_paths), dtype)
    # Arrays in the scan are (columns, paths): paths are the long, contiguous axis, so the
    # per-series and per-state arithmetic (unrolled over the few columns) vectorises.
    # Tables over the states, gathered once per step: transition logits by (o_new, p_from),
    # emission means (plus the AR centre) by the joint state k = p * O + o.
    eye = jnp.eye(P, dtype=dtype)
    base = (pr.switch[None] + pr.enter[:, None, :]) * (1 - eye) + pr.stay[:, :, None] * eye      # (O, P_from, P_to)
    base = base.reshape(O * P, P)                                                                # row o * P + p_from
    center = jnp.asarray(spec.center, dtype)[:, None]
    mean_k = (pr.mean[:, None, :] + pr.shift[None, :, :]).reshape(P * O, D) + center[:, 0]
    ti, tj = np.tril_indices(D)
    chol_tril = pr.chol[:, ti, tj]                                                               # (P, D(D+1)/2)
    q_cdf = jnp.cumsum(pr.q_other, axis=-1)
    ar = jnp.where(pr.ar_coef != 0, pr.ar_coef, 0.0)[:, None]
    win_cols = window_columns(spec)                     # carry only the drawdown sources' levels
    scale_o = jnp.exp(pr.log_scale)                                                              # (O, D)
    effect = pr.covariate_effect                                                                 # (P, C)
    rule = np.asarray(spec.level_rule)[:, None]

    def step(carry, inp):
        p, o, obs_prev, level_prev, window = carry        # (N,), (N,), (D, N), (D, N), (W, D', N)
        u_t, z_t, mix_t, zm_t = inp
        x = _covariates_by_column(spec, obs_prev, window, win_cols, dtype)       # (C, N)
        o_new = _draw_inverse(q_cdf[o].T, u_t[0])
        # covariate push on the switching logits (p_to != p), unrolled over the C covariates
        push = sum((effect[:, c:c + 1] * x[c] for c in range(x.shape[0])), jnp.zeros((P, 1), dtype))
        not_stay = jnp.arange(P)[:, None] != p
        logits = base[o_new * P + p].T + jnp.where(not_stay, push, 0.0)         # (P, N)
        p_new = _draw_softmax(logits, u_t[1])
        # L_p z for the path's own p: gather the lower triangle of L_p, multiply-add
        eps = _tril_matvec(chol_tril[p_new].T, z_t, D) * scale_o[o_new].T       # (D, N)
        if len(floor_cols):
            eps = eps.at[floor_cols].add(floor[floor_cols, None] * zm_t)
        eps = eps * mix_t
        obs = mean_k[p_new * O + o_new].T + ar * (obs_prev - center) + eps
        level = integrate(level_prev, obs, rule)
        window = jnp.concatenate([window[1:], level[None, win_cols]], axis=0)
        return (p_new, o_new, obs, level, window), (level, p_new, o_new)

    init = (first // O, first % O, jnp.broadcast_to(jnp.asarray(origin.obs, dtype)[:, None], (D, n_paths)),
            jnp.broadcast_to(jnp.asarray(origin.level, dtype)[:, None], (D, n_paths)),
            jnp.broadcast_to(jnp.asarray(origin.window[:, win_cols], dtype)[:, :, None],
                             (origin.window.shape[0], len(win_cols), n_paths)))
    _, (levels, pol, oth) = jax.lax.scan(step, init, (u, z, mix, zm))
    return jnp.transpose(levels, (2, 0, 1)), pol.T, oth.T
