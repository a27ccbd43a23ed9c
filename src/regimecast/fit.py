"""Sampling: NUTS through a JAX backend (NumPyro, default) or nutpie (JAX backend)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import arviz as az
import pymc as pm

BACKENDS = ("numpyro", "nutpie")


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings; ``seed`` is required (no hidden randomness)."""

    seed: int
    backend: str = "nutpie"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.85

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
    """Posterior draws of the model's free variables (``posterior`` and ``sample_stats``)
    and the sampling wall time in seconds (compilation included)."""
    t0 = time.perf_counter()
    if settings.backend == "numpyro":
        idata = pm.sample(
            draws=settings.draws, tune=settings.tune, chains=settings.chains, model=model,
            nuts_sampler="numpyro", random_seed=settings.seed, target_accept=settings.target_accept,
            progressbar=progressbar, compute_convergence_checks=False,
            nuts_sampler_kwargs={"chain_method": "parallel"}, idata_kwargs={"log_likelihood": False},
        )
    else:
        import nutpie

        compiled = nutpie.compile_pymc_model(model, backend="jax", gradient_backend="jax")
        idata = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune, chains=settings.chains,
                              seed=settings.seed, target_accept=settings.target_accept,
                              progress_bar=progressbar, save_warmup=False)
    return idata, time.perf_counter() - t0
