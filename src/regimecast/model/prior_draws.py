"""Draws of the sampler's free variables from their prior (NumPy, explicit ``Generator``).

One draw of every variable of :func:`regimecast.model.graph.variable_spec`, in the sampler's own
parameterisation, so that :func:`regimecast.model.kernels.assemble` turns a prior draw into natural
units exactly as it turns a posterior draw:

- ``dirichlet``: each row from Dirichlet(a);
- ``normal01``: standard normal (the non-centred Normal, LogNormal blocks; ``assemble`` adds
  the prior location and scale);
- ``beta``: Beta(alpha, beta); ``gamma``: Gamma(alpha, rate beta), as ``pm.Gamma``;
- ``lkj``: the unconstrained ``corr`` variable whose image under NumPyro's
  ``CorrCholeskyTransform`` (:func:`regimecast.model.kernels.corr_cholesky`) is the Cholesky factor
  of an LKJ(eta) correlation matrix; see :func:`lkj_unconstrained`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from regimecast.config.prior_range import lkj_concentrations
from regimecast.model.spec import VarSpec


def prior_draws(rng: np.random.Generator, spec: Mapping[str, VarSpec], n: int) -> dict[str, np.ndarray]:
    """``n`` independent prior draws of every variable: ``{name: (n, *shape)}`` (float64).

    Each variable draws from its own child stream (``rng.spawn``, in the order of ``spec``),
    so two prior sets that differ in one block draw the other blocks from the same random
    numbers (common random numbers: their prior predictives differ by the change, not by
    Monte Carlo noise)."""
    if n < 1:
        raise ValueError(f"number of prior draws n = {n}: must be at least 1")
    out: dict[str, np.ndarray] = {}
    for (name, v), rng in zip(spec.items(), rng.spawn(len(spec))):
        if v.kind == "dirichlet":
            a = np.asarray(v.params[0], float)
            rows = a.reshape(-1, a.shape[-1])
            out[name] = np.stack([rng.dirichlet(r, size=n) for r in rows], axis=1).reshape((n,) + a.shape)
        elif v.kind == "normal01":
            out[name] = rng.standard_normal((n,) + tuple(v.shape))
        elif v.kind == "beta":
            out[name] = rng.beta(v.params[0], v.params[1], size=(n,) + tuple(v.shape))
        elif v.kind == "gamma":
            out[name] = rng.gamma(v.params[0], 1.0 / v.params[1], size=(n,) + tuple(v.shape))
        elif v.kind == "lkj":
            n_states, dim, eta = v.params
            out[name] = lkj_unconstrained(rng, dim, eta, (n, n_states))
        else:
            raise ValueError(f"variable '{name}': unknown prior kind '{v.kind}'")
    return out


def lkj_unconstrained(rng: np.random.Generator, dim: int, eta: float, size: tuple[int, ...]) -> np.ndarray:
    """Unconstrained ``corr`` values (*size, dim(dim-1)/2) whose correlation matrices are
    LKJ(eta) distributed, by the C-vine method.

    NumPyro's ``CorrCholeskyTransform`` maps w to tanh(w), reads those as the CPCs of the
    C-vine (row-major strict lower triangle) and builds the Cholesky factor by signed stick
    breaking; so w = artanh(2b - 1) with b ~ Beta(c_j, c_j) independent. With b = g1/(g1 + g2),
    g1, g2 ~ Gamma(c_j) independent, artanh(2b - 1) = (ln g1 - ln g2) / 2, which stays finite
    and exact where 2b - 1 rounds to +-1."""
    c = lkj_concentrations(dim, eta)
    shape = tuple(size) + c.shape
    g1, g2 = rng.gamma(c, size=shape), rng.gamma(c, size=shape)
    return 0.5 * (np.log(g1) - np.log(g2))
