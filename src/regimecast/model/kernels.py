"""Pure JAX kernels of the regime-switching model: parameter assembly, transition
probabilities and emission densities. The forward filter, smoother, leave-one-out terms and
the fit's log density built on them are :mod:`regimecast.model.filter`. No state, no
randomness here.

Shapes: T months, P policy states, O combinations of the other factors' states (joint
state k = p * O + o), D observed series, C transition covariates.
Transition orientation everywhere: rows = from, columns = to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln
from numpyro.distributions import LKJCholesky
from numpyro.distributions.transforms import CorrCholeskyTransform
from numpyro.distributions.util import matrix_to_tril_vec, vec_to_tril_matrix


class Params(NamedTuple):
    """Model parameters in natural units (one posterior draw)."""

    init: jnp.ndarray            # (P, O) joint initial distribution (month before the sample)
    q_other: jnp.ndarray         # (O, O) transition of the other factors' combined state
    switch: jnp.ndarray          # (P, P) logit of moving i -> j vs staying (diagonal 0)
    covariate_effect: jnp.ndarray  # (P, C) effect of covariates on entering state j
    stay: jnp.ndarray            # (O, P) other factors' effect on the logit of staying in p
    enter: jnp.ndarray           # (O, P) other factors' effect on the logit of entering p
    mean: jnp.ndarray            # (P, D) emission mean per policy state (AR series: intercept)
    shift: jnp.ndarray           # (O, D) additive mean shift of the other factors
    ar_coef: jnp.ndarray         # (D,) AR(1) coefficient (0 for non-AR series)
    chol: jnp.ndarray            # (P, D, D) lower Cholesky factor of the scale matrix
    log_scale: jnp.ndarray       # (O, D) log sd multiplier of the other factors
    nu: jnp.ndarray              # () Student-t degrees of freedom (ignored for "normal")


@dataclass(frozen=True, eq=False)
class Structure:
    """Static (non-parameter) structure: index maps from factor states to combinations.

    ``*_ind`` are (O, F) 0/1 matrices: combination o has factor-state f (non-baseline).
    ``*_loc`` / ``*_scale`` are the Normal prior location and scale of each non-centred
    block (the sampler works on standard-normal ``*_z`` variables).
    """

    policy: str
    policy_states: tuple[str, ...]
    others: tuple[str, ...]
    other_sizes: tuple[int, ...]
    factor_ind: np.ndarray       # (O, F1) for transition factor effects
    effect_ind: np.ndarray       # (O, F2) for emission mean effects
    scale_ind: np.ndarray        # (O, F3) for emission scale factors
    ar_index: np.ndarray         # (n_ar,) columns of the AR series
    n_series: int
    family: str                  # "student_t" | "normal"
    nu_min: float
    lkj_eta: float
    loc: dict                    # block name -> prior location array
    scale: dict                  # block name -> prior scale array

    @property
    def n_policy(self) -> int:
        return len(self.policy_states)

    @property
    def n_other(self) -> int:
        return int(np.prod(self.other_sizes)) if self.other_sizes else 1


def other_combinations(sizes: tuple[int, ...]) -> np.ndarray:
    """(O, F) state index of each non-policy factor in each combination o, in the C order of
    the joint state k = p * O + o (the last factor varies fastest); (1, 0) without factors."""
    return np.array(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), dtype=int).T.reshape(-1, len(sizes))


def corr_cholesky(draw: dict) -> jnp.ndarray:
    """Cholesky factors of the correlation matrices (P, D, D) from the unconstrained
    ``corr`` variable (P, D(D-1)/2), by NumPyro's stick-breaking ``CorrCholeskyTransform``."""
    return CorrCholeskyTransform()(draw["corr"])


def corr_log_prior(draw: dict, st: Structure) -> jnp.ndarray:
    """LKJ(eta) log density of the correlation Cholesky factors plus the log-Jacobian of the
    transform from the unconstrained ``corr`` variable (so a flat variable carries the prior)."""
    w = draw["corr"]
    L = CorrCholeskyTransform()(w)
    return jnp.sum(LKJCholesky(L.shape[-1], st.lkj_eta).log_prob(L) + corr_cholesky_log_jacobian(w))


def corr_cholesky_log_jacobian(w: jnp.ndarray) -> jnp.ndarray:
    """log |J| of NumPyro's ``CorrCholeskyTransform`` at ``w`` (..., D(D-1)/2), computed from
    log(1 - tanh(w)^2) = 2 (log 2 - w - softplus(-2w)) and its row-wise cumulative sums.

    Equal to NumPyro's ``log_abs_det_jacobian`` (tested), which forms ``1 - cumsum(y^2)`` and
    loses all precision (log of 0 or a negative, NaN gradients) once the partial correlations
    approach +-1; this form stays finite for any finite ``w``.
    """
    l1m = 2.0 * (jnp.log(2.0) - w - jax.nn.softplus(-2.0 * w))            # log(1 - z^2) per CPC
    cum = jnp.cumsum(vec_to_tril_matrix(l1m, diagonal=-1), axis=-1)          # sum_{k<=j} log(1 - z_ik^2)
    return 0.5 * jnp.sum(matrix_to_tril_vec(cum, diagonal=-2), axis=-1) + jnp.sum(l1m, axis=-1)


def assemble(draw: dict, st: Structure) -> Params:
    """Natural-unit parameters from one draw of the sampler's variables (names as in
    :mod:`regimecast.model.graph`)."""
    P, O, D = st.n_policy, st.n_other, st.n_series

    def natural(block: str) -> jnp.ndarray:
        return st.loc[block] + st.scale[block] * draw[f"{block}_z"]

    init_other, q_other = jnp.ones((1,)), jnp.ones((1, 1))
    for f in st.others:
        init_other = jnp.outer(init_other, draw[f"initial_{f}"]).ravel()
        q_other = jnp.kron(q_other, draw[f"transition_{f}"])
    off = ~np.eye(P, dtype=bool)
    switch = jnp.zeros((P, P)).at[np.nonzero(off)].set(natural("switch"))
    C = st.loc["covariate_effect"].shape[-1] if "covariate_effect" in st.loc else 0
    beta = natural("covariate_effect") if C else jnp.zeros((P, 0))
    if "factor_effect" in st.loc:
        gamma = natural("factor_effect")                                   # (F1, 2, P)
        stay, enter = st.factor_ind @ gamma[:, 0], st.factor_ind @ gamma[:, 1]
    else:
        stay = enter = jnp.zeros((O, P))
    shift = st.effect_ind @ natural("mean_effect") if "mean_effect" in st.loc else jnp.zeros((O, D))
    log_scale = st.scale_ind @ natural("log_scale") if "log_scale" in st.loc else jnp.zeros((O, D))
    ar = jnp.zeros(D).at[st.ar_index].set(draw["ar_coef"]) if len(st.ar_index) else jnp.zeros(D)
    chol = jnp.exp(natural("log_sd"))[..., :, None] * corr_cholesky(draw)   # diag(sd) @ L_corr
    nu = st.nu_min + draw["nu_excess"] if st.family == "student_t" else jnp.asarray(jnp.inf)
    return Params(init=jnp.outer(draw[f"initial_{st.policy}"], init_other), q_other=q_other, switch=switch, covariate_effect=beta, stay=stay, enter=enter,
                  mean=natural("mean"), shift=shift, ar_coef=ar, chol=chol, log_scale=log_scale, nu=nu)


def policy_transition(params: Params, x: jnp.ndarray) -> jnp.ndarray:
    """Policy transition probabilities given lagged covariates ``x`` (C,) for each current
    combination of the other factors: (O, P_from, P_to), rows sum to one."""
    P = params.switch.shape[0]
    eye = jnp.eye(P)
    enter = params.covariate_effect @ x + params.enter                      # (O, P_to)
    logits = (params.switch[None] + enter[:, None, :]) * (1 - eye) + params.stay[:, :, None] * eye
    return jax.nn.softmax(logits, axis=-1)


def tril_inverse(L: jnp.ndarray) -> jnp.ndarray:
    """Inverse of lower-triangular ``L`` (..., n, n) by forward substitution, unrolled over the
    (small, static) n in plain XLA ops.

    Deliberately not ``jax.scipy.linalg.solve_triangular``: on CPU that lowers to LAPACK's
    ``trsm`` custom call, whose batched form (under ``vmap`` over posterior draws) parallelises
    on XLA's intra-op pool from inside that pool and deadlocks on a 2-core machine (seen with
    jaxlib 0.10.2). For n <= ~10 the unrolled form is also faster.
    """
    n = L.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(n, dtype=L.dtype), L.shape)
    rows = []
    for i in range(n):
        acc = eye[..., i, :]
        if i:
            acc = acc - jnp.einsum("...k,...kj->...j", L[..., i, :i], jnp.stack(rows, axis=-2))
        rows.append(acc / L[..., i, i, None])
    return jnp.stack(rows, axis=-2)


def small_cholesky(S: jnp.ndarray) -> jnp.ndarray:
    """Lower Cholesky factor of symmetric positive-definite ``S`` (..., n, n), unrolled over the
    small static n in plain XLA ops (no LAPACK custom call: see :func:`tril_inverse`)."""
    n = S.shape[-1]
    cols = []
    for j in range(n):
        prev = jnp.stack(cols, axis=-1) if cols else None             # (..., n, j)
        c = S[..., :, j]
        if prev is not None:
            c = c - jnp.einsum("...ik,...k->...i", prev, prev[..., j, :])
        d = jnp.sqrt(c[..., j])
        cols.append(jnp.where(jnp.arange(n) >= j, c / d[..., None], 0.0))
    return jnp.stack(cols, axis=-1)


def cholesky_add_diagonal(L: jnp.ndarray, j: int, v: float) -> jnp.ndarray:
    """Cholesky factor of ``L L' + v^2 e_j e_j'`` from lower-triangular ``L`` (..., n, n): the
    classic rank-one update (a sequence of rotations), which never forms ``L L'`` and so keeps
    near-singular factors (extreme correlations, tiny sds) finite with finite gradients."""
    n = L.shape[-1]
    x = jnp.zeros(L.shape[:-1], L.dtype).at[..., j].set(v)                  # (..., n)
    cols = [L[..., :, k] for k in range(n)]
    for k in range(j, n):
        lkk, xk = cols[k][..., k], x[..., k]
        r = jnp.sqrt(lkk**2 + xk**2)
        c, s = r / lkk, xk / lkk
        below = jnp.arange(n) > k
        newcol = jnp.where(below, (cols[k] + s[..., None] * x) / c[..., None], 0.0)
        newcol = newcol + jnp.where(jnp.arange(n) == k, r[..., None], 0.0)
        x = jnp.where(below, c[..., None] * x - s[..., None] * newcol, 0.0)
        cols[k] = newcol
    return jnp.stack(cols, axis=-1)


def state_cholesky(params: Params, cols: np.ndarray, meas_sd: np.ndarray | None = None) -> jnp.ndarray:
    """Cholesky factor (P, O, n, n) of the emission scale matrix of the columns ``cols`` in
    every joint state: diag(s_o) L_p L_p' diag(s_o) + diag(meas_sd^2), restricted to ``cols``
    (the marginal of the observed columns of a month with missing values). ``meas_sd`` (D,)
    is static data (the publications' rounding), added by rank-one updates."""
    n = len(cols)
    full = params.chol[:, None] * jnp.exp(params.log_scale)[None, :, :, None]     # (P, O, D, D) lower
    if np.array_equal(cols, np.arange(n)):
        L = full[..., :n, :n]
    else:
        rows = full[..., cols, :]
        L = small_cholesky(rows @ jnp.swapaxes(rows, -1, -2))
    if meas_sd is not None:
        for i, c in enumerate(cols):
            if meas_sd[c] > 0:
                L = cholesky_add_diagonal(L, i, float(meas_sd[c]))
    return L


def emission_logpdf(params: Params, y: jnp.ndarray, lag: jnp.ndarray, cols: np.ndarray, family: str,
                    meas_sd: np.ndarray | None = None) -> jnp.ndarray:
    """log p(y_t | policy p, combination o) over the observed columns ``cols``.

    ``y`` (Tg, n) observed values of those columns, ``lag`` (Tg, D) AR lags (centred);
    returns (Tg, P, O). The sub-covariance of the observed columns is used (marginalising
    the missing ones exactly).
    """
    n = len(cols)
    mean = params.mean[None, :, None, cols] + params.shift[None, None, :, cols] \
        + (params.ar_coef[cols] * lag[:, cols])[:, None, None, :]            # (Tg, P, O, n)
    L = state_cholesky(params, cols, meas_sd)                                # (P, O, n, n)
    z = jnp.einsum("poij,tpoj->tpoi", tril_inverse(L), y[:, None, None, :] - mean)
    maha = jnp.sum(z**2, axis=-1)                                            # (Tg, P, O)
    logdet = jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), -1)      # (P, O)
    if family == "normal":
        return -0.5 * n * jnp.log(2 * jnp.pi) - logdet[None] - 0.5 * maha
    nu = params.nu
    return (gammaln((nu + n) / 2) - gammaln(nu / 2) - 0.5 * n * jnp.log(nu * jnp.pi)
            - logdet[None] - 0.5 * (nu + n) * jnp.log1p(maha / nu))


class Inputs(NamedTuple):
    """Data the likelihood conditions on (NumPy, static): see :class:`regimecast.model.design.Design`."""

    y: np.ndarray            # (T, D), AR series centred, NaN missing
    ar_lag: np.ndarray       # (T, D)
    covariates: np.ndarray   # (T, C) lagged, standardised
    patterns: tuple          # ((cols, months), ...)
    meas_sd: np.ndarray | None = None   # (D,) publication rounding sd per series, model units


def loglik_matrix(params: Params, data: Inputs, family: str) -> jnp.ndarray:
    """log p(y_t | p, o) for every month: (T, P, O); months grouped by missing-data pattern."""
    T = data.y.shape[0]
    out = jnp.zeros((T, params.mean.shape[0], params.shift.shape[0]))
    lag = np.nan_to_num(data.ar_lag)
    for cols, months in data.patterns:
        if len(cols):
            out = out.at[months].set(emission_logpdf(params, data.y[np.ix_(months, cols)], lag[months], cols, family,
                                                                 data.meas_sd))
    return out
