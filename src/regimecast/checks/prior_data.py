"""What the data did to the priors, per scalar parameter: the priors' moments in closed form,
posterior contraction 1 - var_post / var_prior, and the posterior mean's distance into its
prior (prior-data conflict, with its Bonferroni cutoff). Used by the review
(:mod:`regimecast.checks.review`) and its page."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from regimecast.config.prior_range import lkj_concentrations
from regimecast.model.spec import VarSpec


def prior_moments(spec: dict[str, VarSpec]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Prior mean and variance of every element of each free variable (shape ``spec.shape``),
    in closed form: Dirichlet, standard normal, Beta, Gamma (rate), and the LKJ correlations on
    the sampler's unconstrained scale (the scale ``corr`` is stored on), where each element is
    artanh(2b - 1) = (ln g1 - ln g2) / 2 with b ~ Beta(c, c), g1, g2 ~ Gamma(c) independent and
    c its C-vine concentration (:func:`regimecast.config.prior_range.lkj_concentrations`): mean 0,
    variance trigamma(c) / 2."""
    out = {}
    for name, v in spec.items():
        if v.kind == "dirichlet":
            a = np.asarray(v.params[0], float)
            a0 = a.sum(-1, keepdims=True)
            out[name] = (a / a0, a * (a0 - a) / (a0**2 * (a0 + 1)))
        elif v.kind == "normal01":
            out[name] = (np.zeros(v.shape), np.ones(v.shape))
        elif v.kind == "beta":
            a, b = (np.asarray(p, float) for p in v.params)
            out[name] = (a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1)))
        elif v.kind == "gamma":
            a, b = v.params
            out[name] = (np.full(v.shape, a / b), np.full(v.shape, a / b**2))
        elif v.kind == "lkj":
            n_states, dim, eta = v.params
            var = special.polygamma(1, lkj_concentrations(dim, eta)) / 2.0
            out[name] = (np.zeros(v.shape), np.broadcast_to(var, v.shape).copy())
        else:
            raise ValueError(f"variable '{name}': unknown prior kind '{v.kind}'")
    return out


def contraction_columns(table: pd.DataFrame, names: list[str], moments: dict) -> pd.DataFrame:
    """``table`` plus ``prior_mean``, ``prior_sd``, ``contraction`` = 1 - var_post / var_prior
    and ``prior_z`` = (posterior mean - prior mean) / prior sd, per scalar."""
    mean = np.concatenate([np.asarray(moments[n][0], float).reshape(-1) for n in names])
    var = np.concatenate([np.asarray(moments[n][1], float).reshape(-1) for n in names])
    if len(mean) != len(table):
        raise ValueError(f"prior moments of {len(mean)} scalars for {len(table)} posterior scalars")
    return table.assign(prior_mean=mean, prior_sd=np.sqrt(var), contraction=1.0 - table["sd"] ** 2 / var,
                        prior_z=(table["mean"] - mean) / np.sqrt(var))


def conflict_z(alpha: float, n_params: int) -> float:
    """|z| beyond which a posterior mean sits in its prior's two-sided normal tail of
    probability alpha / n_params (Bonferroni at family-wise level alpha)."""
    return float(stats.norm.isf(alpha / (2 * max(n_params, 1))))
