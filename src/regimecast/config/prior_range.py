"""Is a prior usable? Its central draws must be finite, spread out and inside the support.

A prior file can hold parameters that pass every type and sign check and still give draws
that are all infinite (``Gamma(1e300, 1e-300)``), all the same number in double precision
(``Normal(0, 1e-300)``, ``Gamma(1e300, 1e300)``) or exactly on the boundary of the support
(a Dirichlet concentration of 1e-300 draws probabilities of exactly 0 and 1). The model and
``priors show`` would run on such draws and print nonsense. :func:`problems` looks at the
central 99.8% of each element's draws (its 0.1% and 99.9% quantiles, from SciPy) and says
what is wrong with the elements where any of that holds.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

TAIL = 1e-3
# Parameters are in model units (percentage points, log points, logits, shares); a central
# range narrower than this times max(1, |median|) is a point mass, not a prior.
SPREAD_FLOOR = 1e-9


def lkj_concentrations(dim: int, eta: float) -> np.ndarray:
    """Beta concentration of each canonical partial correlation (CPC) of the C-vine, in the
    order of ``np.tril_indices(dim, -1)`` (the order of the ``corr`` vector): the CPC in
    column j is 2 Beta(c_j, c_j) - 1 with c_j = eta + (dim - 2 - j) / 2 (Lewandowski, Kurowicka
    and Joe 2009, J. Multivariate Anal. 100, section 2.4). Column 0 holds the correlations
    themselves, whose LKJ marginal is 2 Beta(eta - 1 + dim/2, ...) - 1."""
    cols = np.tril_indices(dim, -1)[1]
    return eta + 0.5 * (dim - 2 - cols)


def problems(family: str, params: dict[str, np.ndarray], lkj_dim: int = 2) -> dict[tuple[int, ...], str]:
    """``{index: problem}`` for every element of a prior block (``params`` of one family, as in
    :class:`regimecast.config.prior_blocks.PriorArray`) whose draws are unusable. ``lkj_dim``: the size of
    the correlation matrices of an LKJ block."""
    shape = np.shape(next(iter(params.values())))
    lo, mid, hi, support = _central(family, {k: np.asarray(v, float) for k, v in params.items()}, lkj_dim)
    out = {}
    for idx in np.ndindex(*shape):
        problem = _judge(*(np.atleast_1d(x[idx]) for x in (lo, mid, hi)), support)
        if problem:
            out[idx] = problem
    return out


def _central(family: str, p: dict[str, np.ndarray], lkj_dim: int):
    """0.1%, 50% and 99.9% quantiles of each element and the support's open bounds. LKJ (one
    eta): of each canonical partial correlation's Beta, on a trailing axis; Dirichlet: of each
    component's Beta marginal."""
    if family == "Normal":
        dist, support = stats.norm(p["mu"], p["sigma"]), (-np.inf, np.inf)
    elif family == "HalfNormal":
        dist, support = stats.halfnorm(scale=p["sigma"]), (0.0, np.inf)
    elif family == "LogNormal":
        with np.errstate(over="ignore"):
            dist, support = stats.lognorm(s=p["sigma"], scale=np.exp(p["mu"])), (0.0, np.inf)
    elif family == "Gamma":
        with np.errstate(divide="ignore"):
            dist, support = stats.gamma(p["alpha"], scale=1.0 / p["beta"]), (0.0, np.inf)
    elif family == "Beta":
        dist, support = stats.beta(p["alpha"], p["beta"]), (0.0, 1.0)
    elif family == "Dirichlet":
        a = p["a"]
        dist, support = stats.beta(a, a.sum(axis=-1, keepdims=True) - a), (0.0, 1.0)
    elif family == "LKJ":
        c = lkj_concentrations(lkj_dim, float(p["eta"]))
        dist, support = stats.beta(c, c), (0.0, 1.0)
    else:
        raise ValueError(f"unknown prior family {family!r}")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, mid, hi = (dist.ppf(q) for q in (TAIL, 0.5, 1.0 - TAIL))
    return lo, mid, hi, support


def _judge(lo: np.ndarray, mid: np.ndarray, hi: np.ndarray, support: tuple[float, float]) -> str | None:
    rng = f"central 99.8% of draws [{lo.min():.3g}, {hi.max():.3g}]"
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(np.isfinite(mid))):
        return f"its draws are not finite numbers ({rng}); the parameters are out of range"
    if np.any(hi - lo <= SPREAD_FLOOR * np.maximum(1.0, np.abs(mid))):
        return f"its draws are all the same number in double precision ({rng}): a point mass, not a prior"
    if np.any(lo <= support[0]) or np.any(hi >= support[1]):
        return (f"more than 0.1% of its draws are exactly {support[0]:g} or {support[1]:g} in double precision "
                f"({rng}), the bound of its support")
    return None
