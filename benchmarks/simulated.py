"""Shared by the benchmarks that need a known truth (recovery.py, map_start.py): parameters
drawn from the prior and a panel simulated from them. Call after enabling JAX's x64 mode."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from regimecast.model.design import Design, with_simulated
from regimecast.model.kernels import Structure, assemble
from regimecast.model.spec import variable_spec
from regimecast.model.prior_draws import prior_draws
from regimecast.simulate.paths import simulate_panel


def prior_truth_panel(cfg, pri, st: Structure, design: Design, seed: int) -> tuple[Design, dict, np.ndarray]:
    """``design`` with observations simulated from one prior draw (NumPy generator and JAX key
    both from ``seed``; the real lagged covariates held exogenous), the draw itself (sampler
    variables keyed by name) and the simulated policy path, shape (T,)."""
    truth = {k: v[0] for k, v in prior_draws(np.random.default_rng(seed), variable_spec(cfg, pri, st), 1).items()}
    return simulated_panel(st, design, truth, seed)


def posterior_truth(posterior, names: list[str], seed: int) -> dict:
    """One draw of a fitted run's ``posterior`` (xarray Dataset, dims chain, draw), picked
    uniformly at random with ``seed``: the sampler variables ``names``, keyed by name."""
    rng = np.random.default_rng(seed)
    c, d = rng.integers(posterior.sizes["chain"]), rng.integers(posterior.sizes["draw"])
    return {k: np.asarray(posterior[k].values[c, d]) for k in names}


def simulated_panel(st: Structure, design: Design, truth: dict, seed: int) -> tuple[Design, dict, np.ndarray]:
    """``design`` with observations simulated from the parameters ``truth`` (sampler variables
    keyed by name; JAX key from ``seed``), ``truth`` itself and the simulated policy path (T,)."""
    params = assemble({k: jnp.asarray(v) for k, v in truth.items()}, st)
    y, policy, _ = simulate_panel(jax.random.key(seed), params, jnp.asarray(design.covariates),
                                  jnp.asarray(np.nan_to_num(design.ar_lag[0])), st.family)
    return with_simulated(design, np.asarray(y)), truth, np.asarray(policy)


def truth_point(model, truth: dict, seed: int) -> dict:
    """``truth`` on the sampler's (transformed) scale, keyed by value-variable name."""
    from pymc.initial_point import make_initial_point_fn

    return make_initial_point_fn(model=model, overrides=truth, jitter_rvs=set(), return_transformed=True)(seed)
