"""Sampling: NUTS through a JAX backend (NumPyro, default) or nutpie, then the model's
deterministics (log predictive density, filtered and smoothed factor probabilities)."""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

BACKENDS = ("numpyro", "nutpie")


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings; ``seed`` is required (no hidden randomness)."""

    seed: int
    backend: str = "numpyro"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.9

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"sampler backend {self.backend!r}: must be one of {', '.join(BACKENDS)}")
        for k in ("chains", "draws", "tune"):
            if getattr(self, k) < 1:
                raise ValueError(f"sampler setting {k} = {getattr(self, k)}: must be at least 1")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"target_accept = {self.target_accept}: must be in (0, 1)")

    def as_dict(self) -> dict:
        return asdict(self)


def free_names(model: pm.Model) -> list[str]:
    return [rv.name for rv in model.free_RVs]


def sample(model: pm.Model, settings: SamplerSettings, *, progressbar: bool = True) -> tuple[az.InferenceData, float]:
    """Sample the free variables, then add deterministics and the ``log_likelihood`` group.

    Returns the InferenceData and the sampling wall time in seconds.
    """
    names = free_names(model)
    t0 = time.perf_counter()
    if settings.backend == "numpyro":
        idata = pm.sample(
            draws=settings.draws, tune=settings.tune, chains=settings.chains, model=model,
            nuts_sampler="numpyro", random_seed=settings.seed, target_accept=settings.target_accept,
            var_names=names, progressbar=progressbar, compute_convergence_checks=False,
            nuts_sampler_kwargs={"chain_method": "parallel"},
            idata_kwargs={"log_likelihood": False},
        )
    else:
        import nutpie

        compiled = nutpie.compile_pymc_model(model, backend="numba", var_names=names)
        idata = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune, chains=settings.chains,
                              seed=settings.seed, target_accept=settings.target_accept,
                              progress_bar=progressbar, save_warmup=False)
    wall = time.perf_counter() - t0
    return add_deterministics(idata, model), wall


def add_deterministics(idata: az.InferenceData, model: pm.Model) -> az.InferenceData:
    """Compute every deterministic from the posterior draws (one compiled call per draw), put
    them in ``posterior`` and the one-step-ahead log predictive density of each month in
    ``log_likelihood`` (variable ``y``, dims chain, draw, date)."""
    det_names = [d.name for d in model.deterministics]
    post = idata.posterior[free_names(model)]
    with contextlib.redirect_stdout(io.StringIO()):
        dets = pm.compute_deterministics(post, var_names=det_names, model=model, progressbar=False,
                                         merge_dataset=False)
    for name in det_names:
        if name.startswith(("filtered_", "smoothed_")):
            dets[name] = dets[name].astype(np.float32)
    idata.posterior = xr.merge([post, dets.drop_vars("log_predictive")], compat="override")
    idata.add_groups(log_likelihood=xr.Dataset({"y": dets["log_predictive"]}))
    return idata
