"""The PyMC model: the free variables of :func:`regimecast.model.spec.variable_spec` with their
priors from the prior set, and the likelihood as one potential (the numba kernel of
:mod:`regimecast.model.likelihood` through :class:`regimecast.model.potential_op.PotentialOp`, or
the JAX kernels). The discrete states are marginalised exactly by the forward filter
(:func:`regimecast.model.filter.forward`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pymc as pm
import pytensor.tensor as pt
from pytensor import wrap_jax

from regimecast.config.model_file import ModelConfig
from regimecast.config.priors import PriorSet
from regimecast.model.design import Design
from regimecast.model.filter import loo_mixture_potential, potential
from regimecast.model.kernels import Inputs, Structure
from regimecast.model.likelihood import offsets, panel_args, static_args
from regimecast.model.potential_op import PotentialOp
from regimecast.model.spec import coords, inputs, structure, variable_spec

LIKELIHOODS = ("numba", "jax")


def build_model(config: ModelConfig, priors: PriorSet, design: Design, panels: Sequence[Design] = (),
                loo_mixture: bool = False, likelihood: str = "numba") -> pm.Model:
    """The PyMC model: free variables of :func:`variable_spec` (named as in
    :func:`regimecast.model.kernels.assemble`) and one potential ``hmm_loglik``: the exact log
    marginal likelihood plus the LKJ prior of the correlations.

    ``panels``: further panels, independent of ``design`` given the parameters (each its own
    hidden path from the initial distribution), whose log marginal likelihoods are added. The
    posterior-SBC recovery check fits the real panel and a panel simulated from one of its
    posterior draws this way (``benchmarks/recovery.py --truth posterior``).

    The potential is one :class:`regimecast.model.potential_op.PotentialOp` over the flat vector of
    the free variables: value and gradient from the numba kernel (nutpie's numba backend,
    PyTensor's NUMBA and C modes) or from the JAX kernels (NumPyro, ``mode="JAX"``).
    ``likelihood="jax"`` builds the potential as before that kernel existed, the JAX potential
    through ``wrap_jax`` (XLA's gradient; sampled with nutpie's JAX backend): the baseline of
    ``benchmarks/fit_time.py``.

    ``loo_mixture``: the target is instead the mixture of every month's leave-one-out
    posterior (:func:`regimecast.model.filter.loo_mixture_potential`; one panel only), sampled by
    ``regimecast diagnose`` where PSIS-LOO is unreliable (:mod:`regimecast.checks.robust_loo`), through
    ``wrap_jax`` (JAX gradient; sampled with nutpie's JAX backend).

    Side effect: turns on JAX's ``jax_enable_x64`` for the whole process (the likelihood sums
    ~300 log densities and needs float64). It is switched here, when a model is built, and not
    when the package is imported: a forecast in a fresh process never builds the model and runs
    the JAX kernels and counter-based random numbers (:mod:`regimecast.simulate.rng`) at JAX's
    default precision; switching at import would change those numbers."""
    if loo_mixture and panels:
        raise ValueError("the leave-one-out mixture target takes one panel")
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood {likelihood!r}: must be one of {', '.join(LIKELIHOODS)}")
    jax.config.update("jax_enable_x64", True)  # the likelihood needs float64 (sums of ~300 log densities)
    st = structure(config, priors)
    spec = variable_spec(config, priors, st)
    data = (inputs(design), *(inputs(d) for d in panels))
    with pm.Model(coords=coords(config, design, priors)) as model:
        draw = {}
        for name, v in spec.items():
            kw = dict(dims=v.dims, shape=v.shape)
            if v.kind == "dirichlet":
                draw[name] = pm.Dirichlet(name, a=v.params[0], **kw)
            elif v.kind == "normal01":
                draw[name] = pm.Normal(name, 0.0, 1.0, **kw)
            elif v.kind == "beta":
                draw[name] = pm.Beta(name, alpha=v.params[0], beta=v.params[1], **kw)
            elif v.kind == "gamma":
                draw[name] = pm.Gamma(name, alpha=v.params[0], beta=v.params[1], **kw)
            else:  # lkj: unconstrained; its LKJ prior and Jacobian are in the potential
                draw[name] = pm.Flat(name, **kw)
        if loo_mixture:
            pm.Potential("hmm_loglik", wrap_jax(lambda d: loo_mixture_potential(d, st, data[0]))(draw))
        elif likelihood == "jax":
            pm.Potential("hmm_loglik", wrap_jax(lambda d: potential(d, st, *data))(draw))
        else:
            theta = pt.concatenate([pt.flatten(draw[name]) for name in spec])
            pm.Potential("hmm_loglik", potential_term(theta, st, spec, data))
    return model


def potential_term(theta, st: Structure, spec: dict, data: Sequence[Inputs]):
    """The potential of ``data`` (panels) at the flat vector ``theta`` of the variables of
    ``spec``: a :class:`~regimecast.model.potential_op.PotentialOp`, carrying the JAX kernels' value
    and gradient for the JAX backend and keyed by the content of the kernel's arrays (ops of
    different models or panels never compare equal)."""
    where = offsets(spec)

    def value(flat):
        draw = {k: jnp.reshape(flat[a:a + n], spec[k].shape) for k, (a, n) in where.items()}
        return potential(draw, st, *data)

    args = (*static_args(st, spec), *panel_args(data))
    h = hashlib.sha256()
    for arr in args:
        h.update(np.ascontiguousarray(arr).tobytes() + str(arr.shape).encode())
    return PotentialOp(h.hexdigest()[:32], jax.value_and_grad(value))(theta, *args)[0]
