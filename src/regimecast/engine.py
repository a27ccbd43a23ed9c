"""``RegimeModel``: the model's life cycle — build, fit, save, load — over the pure modules
(config, priors, data panel, design, model graph, sampler, run store)."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import arviz as az
import pymc as pm

from regimecast import __version__, runs
from regimecast.config import ModelConfig
from regimecast.data.panel import Panel
from regimecast.design import Design, build_design
from regimecast.diagnostics import Thresholds, diagnostics_block
from regimecast.fit import SamplerSettings, free_names, sample
from regimecast.history import policy_agreement
from regimecast.model import build_model, inputs, structure
from regimecast.posterior import add_posterior_quantities
from regimecast.priors import PriorSet


@dataclass(frozen=True)
class FitResult:
    idata: az.InferenceData
    diagnostics: dict
    history: dict
    wall_time_s: float
    settings: SamplerSettings


class RegimeModel:
    """One model configuration, one prior set, one data panel."""

    def __init__(self, config: ModelConfig, priors: PriorSet, panel: Panel):
        self.config, self.priors, self.panel = config, priors, panel

    @cached_property
    def design(self) -> Design:
        return build_design(self.config, self.panel)

    @cached_property
    def model(self) -> pm.Model:
        """The PyMC model (built once)."""
        return build_model(self.config, self.priors, self.design)

    def fit(self, settings: SamplerSettings, thresholds: Thresholds, *, progressbar: bool = True) -> FitResult:
        """Sample the posterior; record diagnostics and the policy-history check."""
        idata, wall = sample(self.model, settings, progressbar=progressbar)
        idata = add_posterior_quantities(idata, self.config, structure(self.config, self.priors),
                                         inputs(self.design), self.design.dates)
        idata.add_groups(observed_data=self.design_dataset())
        diag = diagnostics_block(idata, free_names(self.model), thresholds)
        return FitResult(idata, diag, policy_agreement(self.config, idata), wall, settings)

    def design_dataset(self):
        """The observations as the model saw them (natural units, AR series uncentred)."""
        obs = self.panel.observations.sel(series=list(self.config.observed))
        return obs.to_dataset(name="y").drop_vars([c for c in obs.coords if c not in ("date", "series")])

    def fingerprint(self, settings: SamplerSettings) -> dict:
        """What determines the posterior: model, priors, data files, seed and sampler settings."""
        return {"model": self.config.sha256, "priors": self.priors.sha256, "end": self.panel.end,
                "data": {k: p.sha256 for k, p in sorted(self.panel.provenance.items())},
                "sampler": settings.as_dict()}

    def manifest(self, fit: FitResult, data_dir: Path) -> dict:
        return {
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "regimecast_version": __version__,
            "machine": {"platform": platform.platform(), "processor": platform.machine()},
            "model": {"file": str(self.config.file), "sha256": self.config.sha256, "text": self.config.text},
            "priors": {"file": str(self.priors.file), "name": self.priors.name, "chain": list(self.priors.chain),
                       "sha256": self.priors.sha256, "sources": self.priors.sources},
            "data": {"dir": str(data_dir), "start": self.panel.start, "end": self.panel.end,
                     "months": int(self.panel.observations.sizes["date"]),
                     "provenance": {k: asdict(v) for k, v in self.panel.provenance.items()}},
            "seed": fit.settings.seed,
            "sampler": fit.settings.as_dict(),
            "wall_time_s": round(fit.wall_time_s, 2),
            "packages": runs.package_versions(),
            "diagnostics": fit.diagnostics,
            "policy_history": fit.history,
        }

    def save(self, runs_dir: Path, fit: FitResult, data_dir: Path) -> Path:
        """Write the run atomically; returns its directory."""
        run_id = runs.make_run_id(self.priors.name, self.fingerprint(fit.settings))
        return runs.save_run(runs_dir, run_id, fit.idata, self.manifest(fit, data_dir))

    @staticmethod
    def load(path: Path) -> runs.Run:
        """Load a saved run, verified against its manifest."""
        return runs.load_run(path)
