"""The sampler's variables without PyMC: the static index structure and prior locations of the
non-centred blocks (:func:`structure`), the data the likelihood conditions on (:func:`inputs`),
the coordinates, and every free variable's prior kind, parameters, dims and shape
(:func:`variable_spec`, one source for the PyMC graph of :mod:`regimecast.model.graph` and for
prior draws, :mod:`regimecast.model.prior_draws`).

Joint hidden state: (policy, combination of the other factors), ``k = p * O + o``; see
:mod:`regimecast.model.kernels` for the transition and emission equations. Normal prior blocks are
non-centred: the sampler's variable is ``<block>_z ~ Normal(0, 1)`` and the natural value is
``loc + scale * z`` (:func:`regimecast.model.kernels.assemble`), which keeps the posterior scales of
series as different as fed-funds changes (0.02 pp) and equity returns (6%) comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from regimecast.config.model_file import ModelConfig
from regimecast.config.priors import PriorSet
from regimecast.model.design import Design
from regimecast.model.kernels import Inputs, Structure, other_combinations

NU_MIN = 2.0  # Student-t degrees of freedom are 2 + Gamma(...): finite variance needs nu > 2
# prior block -> sampler variable (non-centred Normal blocks)
NORMAL_BLOCKS = {"transition.switch": "switch", "transition.covariates": "covariate_effect",
                 "transition.factors": "factor_effect", "emission.mean": "mean",
                 "emission.effects": "mean_effect", "emission.scale": "log_scale", "emission.sd": "log_sd"}


def structure(config: ModelConfig, priors: PriorSet) -> Structure:
    """Static index structure and prior locations/scales of the non-centred blocks."""
    if config.covariance_factor != config.transition_factor:
        raise ValueError("the covariance factor and the transition factor must be the same factor")
    pol = config.factor(config.transition_factor)
    others = [f for f in config.factors if f.name != pol.name]
    combos = other_combinations(tuple(len(f.states) for f in others))
    pa = priors.arrays

    def indicator(key: str) -> np.ndarray:
        labels = pa[key].coords[0] if key in pa else ()
        out = np.zeros((len(combos), len(labels)))
        for j, lab in enumerate(labels):
            f, s = lab.split(".", 1)
            fi = [o.name for o in others].index(f)
            out[:, j] = combos[:, fi] == others[fi].states.index(s)
        return out

    off = ~np.eye(len(pol.states), dtype=bool)
    loc, scale = {}, {}
    for key, name in NORMAL_BLOCKS.items():
        if key in pa:
            mu, sigma = pa[key].params["mu"], pa[key].params["sigma"]
            loc[name], scale[name] = (mu[off], sigma[off]) if name == "switch" else (mu, sigma)
    return Structure(
        policy=pol.name, policy_states=pol.states, others=tuple(f.name for f in others),
        other_sizes=tuple(len(f.states) for f in others), factor_ind=indicator("transition.factors"),
        effect_ind=indicator("emission.effects"), scale_ind=indicator("emission.scale"),
        ar_index=np.array([config.observed.index(s) for s in config.ar_series], dtype=int),
        n_series=len(config.observed), family=config.emission_family, nu_min=NU_MIN,
        lkj_eta=float(pa["emission.lkj"].params["eta"][()]), loc=loc, scale=scale,
    )


def inputs(design: Design) -> Inputs:
    return Inputs(design.y, design.ar_lag, design.covariates, design.patterns, design.meas_sd)


def coords(config: ModelConfig, design: Design, priors: PriorSet) -> dict[str, list]:
    """Named coordinates of every model dimension."""
    out: dict[str, list] = {"date": list(design.dates), "series": list(design.series),
                            "ar_series": list(config.ar_series), "covariate": list(design.covariate_names),
                            "effect": ["stay", "enter"]}
    for f in config.factors:
        out[f.name] = list(f.states)
        out[f"{f.name}_from"] = list(f.states)
    pol = config.factor(config.transition_factor).states
    out["switch"] = [f"{i}->{j}" for i in pol for j in pol if i != j]
    for key, dim in (("transition.factors", "factor_state"), ("emission.effects", "effect_state"),
                     ("emission.scale", "scale_state")):
        if key in priors.arrays:
            out[dim] = list(priors.arrays[key].coords[0])
    D = len(design.series)
    out["corr_pair"] = [f"{design.series[i]}|{design.series[j]}" for i, j in zip(*np.tril_indices(D, -1))]
    return out


BLOCK_DIMS = {"switch": ("switch",), "covariate_effect": ("policy", "covariate"),
              "factor_effect": ("factor_state", "effect", "policy"), "mean": ("policy", "series"),
              "mean_effect": ("effect_state", "series"), "log_scale": ("scale_state", "series"),
              "log_sd": ("policy", "series")}


@dataclass(frozen=True)
class VarSpec:
    """One free variable of the sampler: its prior kind, parameters, dims and shape.

    kinds: ``dirichlet`` (a), ``normal01`` (standard normal, non-centred block), ``beta``
    (alpha, beta), ``gamma`` (alpha, beta), ``lkj`` (unconstrained; LKJ(eta) prior in the
    potential; params = (n_states, dim, eta)).
    """

    kind: str
    params: tuple
    dims: tuple[str, ...]
    shape: tuple[int, ...]


def variable_spec(config: ModelConfig, priors: PriorSet, st: Structure) -> dict[str, VarSpec]:
    """Every free variable of the model, in creation order (one source for the PyMC model and
    for prior draws)."""
    pa = priors.arrays
    D = st.n_series
    out: dict[str, VarSpec] = {}
    for f in config.factors:
        a = pa[f"initial.{f.name}"].params["a"]
        out[f"initial_{f.name}"] = VarSpec("dirichlet", (a,), (f.name,), a.shape)
    for f in st.others:
        a = pa[f"transition.{f}"].params["a"]
        out[f"transition_{f}"] = VarSpec("dirichlet", (a,), (f"{f}_from", f), a.shape)
    for name, loc in st.loc.items():
        out[f"{name}_z"] = VarSpec("normal01", (), tuple(st.policy if d == "policy" else d for d in BLOCK_DIMS[name]),
                                   loc.shape)
    if config.ar_series:
        ap = pa["emission.ar"].params
        out["ar_coef"] = VarSpec("beta", (ap["alpha"], ap["beta"]), ("ar_series",), ap["alpha"].shape)
    out["corr"] = VarSpec("lkj", (st.n_policy, D, st.lkj_eta), (st.policy, "corr_pair"),
                          (st.n_policy, D * (D - 1) // 2))
    if config.emission_family == "student_t":
        gp = pa["emission.nu"].params
        out["nu_excess"] = VarSpec("gamma", (float(gp["alpha"][()]), float(gp["beta"][()])), (), ())
    return out
