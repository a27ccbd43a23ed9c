"""The kernel's inputs: the model's structure and the panels as plain arrays, and the flat
layout of the sampler's variables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from regimecast.model.kernels import Inputs, Structure

# Rows of StaticArgs.table: the sampler's blocks, each (offset in theta, size); (-1, 0) if absent.
BLOCKS = ("switch", "covariate_effect", "factor_effect", "mean", "mean_effect", "log_scale", "log_sd",
          "ar_coef", "corr", "nu_excess", "initial_policy")


class StaticArgs(NamedTuple):
    """The model's :class:`~regimecast.kernels.Structure` as the kernel's plain arrays."""

    table: np.ndarray        # (len(BLOCKS), 2) int: offset and size of each block in theta
    other_init: np.ndarray   # (F, 2) int: offset and size of initial_<factor>, per other factor
    other_trans: np.ndarray  # (F, 2) int: offset and size of transition_<factor> (row-major)
    loc: np.ndarray          # (n,) prior location of each theta entry of a non-centred block, else 0
    scale: np.ndarray        # (n,) prior scale likewise (natural value = loc + scale * z)
    factor_ind: np.ndarray   # (O, F1) float, as Structure
    effect_ind: np.ndarray   # (O, F2)
    scale_ind: np.ndarray    # (O, F3)
    combos: np.ndarray       # (O, F) int: state of each other factor in combination o
    sizes: np.ndarray        # (F,) int: states per other factor
    off_r: np.ndarray        # (P(P-1),) int: row of each switch entry
    off_c: np.ndarray        # (P(P-1),) int: column of each switch entry
    ar_index: np.ndarray     # (n_ar,) int: columns of the AR series
    lkj_coef: np.ndarray     # (D(D-1)/2,) weights of log(1 - tanh^2) in the correlation prior
    dims: np.ndarray         # (4,) int: P, O, D, C
    scalars: np.ndarray      # (3,) float: LKJ constant per state, nu_min, 1.0 if Student-t else 0.0


class PanelArgs(NamedTuple):
    """Panels (independent given the parameters) on one time axis, a restart at each panel's
    first month. T months in all, D series, C covariates, K missing-data patterns."""

    y: np.ndarray            # (T, D) centred observations, 0 where missing
    lag: np.ndarray          # (T, D) AR lags, 0 where none
    cov: np.ndarray          # (T, C) lagged standardised covariates
    start: np.ndarray        # (T,) bool: first month of a panel
    pattern: np.ndarray      # (T,) int: missing-data pattern of each month
    pcols: np.ndarray        # (K, D) int: observed columns of each pattern, padded with -1
    psize: np.ndarray        # (K,) int: number of observed columns
    meas: np.ndarray         # (D,) publication rounding sd per series
    lagcol: np.ndarray       # (D,) bool: the column has an AR lag


def offsets(spec: dict) -> dict[str, tuple[int, int]]:
    """Offset and size in the flat ``theta`` of each variable of ``spec``
    (:func:`regimecast.model.graph.variable_spec`), in its order."""
    sizes = [int(np.prod(v.shape)) for v in spec.values()]
    starts = np.cumsum([0] + sizes)
    return {n: (int(starts[i]), sizes[i]) for i, n in enumerate(spec)}


def static_args(st: Structure, spec: dict) -> StaticArgs:
    """The kernel's static arrays for the variables of ``spec``."""
    where = offsets(spec)
    n = sum(size for _, size in where.values())
    key = {b: (f"{b}_z" if b in st.loc else b) for b in BLOCKS}
    key["initial_policy"] = f"initial_{st.policy}"
    table = np.array([where.get(key[b], (-1, 0)) for b in BLOCKS], dtype=np.int64)
    loc, scale = np.zeros(n), np.zeros(n)
    for b, arr in st.loc.items():
        a, size = where[f"{b}_z"]
        loc[a:a + size] = np.ravel(arr)
        scale[a:a + size] = np.ravel(st.scale[b])
    P, O, D = st.n_policy, st.n_other, st.n_series
    C = st.loc["covariate_effect"].shape[-1] if "covariate_effect" in st.loc else 0
    combos = np.array(np.unravel_index(np.arange(O), st.other_sizes), dtype=np.int64).T.reshape(O, -1) \
        if st.others else np.zeros((1, 0), dtype=np.int64)
    off_r, off_c = np.nonzero(~np.eye(P, dtype=bool))
    lkj_coef, lkj_const = _lkj_terms(D, st.lkj_eta)
    return StaticArgs(
        table=table,
        other_init=np.array([where[f"initial_{f}"] for f in st.others], dtype=np.int64).reshape(-1, 2),
        other_trans=np.array([where[f"transition_{f}"] for f in st.others], dtype=np.int64).reshape(-1, 2),
        loc=loc, scale=scale,
        factor_ind=np.asarray(st.factor_ind, float).reshape(O, -1),
        effect_ind=np.asarray(st.effect_ind, float).reshape(O, -1),
        scale_ind=np.asarray(st.scale_ind, float).reshape(O, -1),
        combos=combos, sizes=np.asarray(st.other_sizes, dtype=np.int64).reshape(-1),
        off_r=off_r.astype(np.int64), off_c=off_c.astype(np.int64),
        ar_index=np.asarray(st.ar_index, dtype=np.int64).reshape(-1), lkj_coef=lkj_coef,
        dims=np.array([P, O, D, C], dtype=np.int64),
        scalars=np.array([lkj_const, st.nu_min, 1.0 if st.family == "student_t" else 0.0]),
    )


def _lkj_terms(D: int, eta: float) -> tuple[np.ndarray, float]:
    """The correlation prior as a weighted sum of l_ik = log(1 - tanh(w_ik)^2) over the
    strictly lower triangle (row-major, NumPyro's ``vec_to_tril_matrix`` order), plus a
    constant: log-Jacobian of ``CorrCholeskyTransform`` (weight 1 + (i - 1 - k) / 2) and
    LKJCholesky(eta) (log L_ii = sum_k l_ik / 2, weight (2 eta - 3 + D - i) / 2), and the LKJ
    normaliser of one state (NumPyro's). Returns ``(weights (D(D-1)/2,), constant)``."""
    from scipy.special import gammaln, multigammaln

    rows, cols = np.tril_indices(D, -1)
    order = 2.0 * eta - 3.0 + D - rows
    coef = 1.0 + 0.5 * (rows - 1 - cols) + 0.5 * order
    Dm1 = D - 1
    alpha = eta + 0.5 * Dm1
    norm = 0.5 * Dm1 * np.log(np.pi) + float(multigammaln(alpha - 0.5, Dm1)) - float(gammaln(alpha)) * Dm1
    return coef.astype(float), -norm


def panel_args(panels: Sequence[Inputs]) -> PanelArgs:
    """The kernel's data arrays of ``panels`` (independent given the parameters)."""
    ys, lags, covs, starts, pats = [], [], [], [], []
    keys: dict[tuple[int, ...], int] = {}
    for d in panels:
        T = d.y.shape[0]
        pat = np.full(T, -1, dtype=np.int64)
        for cols, months in d.patterns:
            pat[months] = keys.setdefault(tuple(int(c) for c in cols), len(keys))
        if (pat < 0).any():
            raise ValueError("every month must belong to a missing-data pattern")
        ys.append(np.nan_to_num(d.y))
        lags.append(np.nan_to_num(d.ar_lag))
        covs.append(np.asarray(d.covariates, float).reshape(T, -1))
        starts.append(np.arange(T) == 0)
        pats.append(pat)
    D = panels[0].y.shape[1]
    pcols = np.full((max(len(keys), 1), D), -1, dtype=np.int64)
    psize = np.zeros(max(len(keys), 1), dtype=np.int64)
    for k, i in keys.items():
        pcols[i, :len(k)] = k
        psize[i] = len(k)
    meas = np.zeros(D) if panels[0].meas_sd is None else np.asarray(panels[0].meas_sd, float)
    lag = np.ascontiguousarray(np.vstack(lags))
    return PanelArgs(y=np.ascontiguousarray(np.vstack(ys)), lag=lag, cov=np.ascontiguousarray(np.vstack(covs)),
                     start=np.concatenate(starts), pattern=np.concatenate(pats), pcols=pcols, psize=psize,
                     meas=meas, lagcol=(lag != 0).any(axis=0))


def theta_of(draw: dict, spec: dict) -> np.ndarray:
    """The flat ``theta`` (n,) of a draw (variable name -> value, constrained scale)."""
    return np.concatenate([np.ravel(np.asarray(draw[k], dtype=float)) for k in spec])
