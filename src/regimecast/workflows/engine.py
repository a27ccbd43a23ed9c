"""``RegimeModel``: the model's life cycle — build, fit, save, load — over the pure modules
(config, priors, data panel, design, model graph, sampler, run store)."""

from __future__ import annotations

import platform
import tempfile
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import arviz as az
import pymc as pm
import xarray as xr

from regimecast import __version__
from regimecast.store import runs
from regimecast.config.model_file import ModelConfig, load_model_config
from regimecast.data.panel import Panel, build_panel
from regimecast.model.design import Design, build_design
from regimecast.config.thresholds import Thresholds
from regimecast.checks.convergence import diagnostics_block
from regimecast.errors import RunError
from regimecast.fit.sampler import SamplerSettings, free_names, sample
from regimecast.simulate.forecast import ForecastSettings, drawdown_window, forward_spec, origin, run_forecast
from regimecast.fit.posterior import posterior_draws
from regimecast.fit.history import policy_agreement
from regimecast.model.graph import build_model
from regimecast.model.spec import inputs, structure, variable_spec
from regimecast.fit.posterior import add_posterior_quantities
from regimecast.config.priors import PriorSet, load_priors
from regimecast.scenarios.sets import ScenarioSet
from regimecast.store.workspace import SAFE_NAME_RULE, is_safe_name


@dataclass(frozen=True)
class FitResult:
    idata: az.InferenceData
    diagnostics: dict
    history: dict
    wall_time_s: float
    settings: SamplerSettings
    init: dict


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

    def fit(self, settings: SamplerSettings, thresholds: Thresholds, *, progressbar: bool = True,
            start: dict | None = None) -> FitResult:
        """Sample the posterior; record diagnostics and the policy-history check. ``start``:
        initial values of the free variables (``settings.init == "warm"``, e.g. a parent run's)."""
        idata, wall, init = sample(self.model, settings, progressbar=progressbar, start=start)
        idata = add_posterior_quantities(idata, self.config, structure(self.config, self.priors),
                                         inputs(self.design), self.design.dates)
        idata.add_groups(observed_data=self.design_dataset())
        diag = diagnostics_block(idata, free_names(self.model), thresholds)
        return FitResult(idata, diag, policy_agreement(self.config, idata), wall, settings, init)

    def design_dataset(self):
        """The observations as the model saw them (natural units, AR series uncentred)."""
        obs = self.panel.observations.sel(series=list(self.config.observed))
        return obs.to_dataset(name="y").drop_vars([c for c in obs.coords if c not in ("date", "series")])

    def fingerprint(self, settings: SamplerSettings) -> dict:
        """What determines the posterior: model, priors, data files, seed and sampler settings."""
        return {"model": self.config.sha256, "priors": self.priors.sha256, "end": self.panel.end,
                "data": {k: p.sha256 for k, p in sorted(self.panel.provenance.items())},
                "sampler": settings.as_dict()}

    def manifest(self, fit: FitResult, data_dir: Path, extra: dict | None = None) -> dict:
        return (extra or {}) | {
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
            "init": fit.init,
            "packages": runs.package_versions(),
            "diagnostics": fit.diagnostics,
            "policy_history": fit.history,
        }

    def save(self, runs_dir: Path, fit: FitResult, data_dir: Path, extra: dict | None = None) -> Path:
        """Write the run atomically; returns its directory. ``extra``: further manifest
        blocks (e.g. an update's ``parent``)."""
        run_id = runs.make_run_id(self.priors.name, self.fingerprint(fit.settings) | (extra or {}))
        return runs.save_run(runs_dir, run_id, fit.idata, self.manifest(fit, data_dir, extra))

    @staticmethod
    def load(path: Path) -> runs.Run:
        """Load a saved run, verified against its manifest."""
        return runs.load_run(path)

    @classmethod
    def from_run(cls, run: runs.Run, data_dir: Path | None = None) -> "RegimeModel":
        """The model of a saved run: model file and prior files from the texts stored in its
        manifest (the workspace copies may have changed since), the data re-read from
        ``data_dir`` (default: the run's) and refused unless every file's SHA-256 matches."""
        m = run.manifest
        config, priors = config_from_manifest(m)
        ddir = Path(data_dir or m["data"]["dir"])
        panel = build_panel(config.series, config.sample, ddir, end=m["data"]["end"])
        for name, prov in m["data"]["provenance"].items():
            now = panel.provenance[name]
            if (now.sha256, now.minus and now.minus.sha256) != (prov["sha256"], (prov.get("minus") or {}).get("sha256")):
                raise RunError(f"run {run.run_id}: data file {now.file} (series '{name}') is not the one the run "
                               f"was fitted on (SHA-256 {str(now.sha256)[:12]} != {str(prov['sha256'])[:12]})")
        return cls(config, priors, panel)

    def forecast(self, run: runs.Run, settings: ForecastSettings, scenario_set: ScenarioSet, *, store: bool = True,
                 progress=None) -> tuple[xr.Dataset | None, xr.Dataset]:
        """Joint forward paths from the run's posterior (see :func:`regimecast.simulate.forecast.run_forecast`)."""
        st = structure(self.config, self.priors)
        names = list(variable_spec(self.config, self.priors, st))
        draws, ids = posterior_draws(run.idata.posterior, names, settings.max_draws)
        spec = forward_spec(self.config, self.design, self.panel)
        org = origin(self.config, self.design, self.panel, drawdown_window(self.config))
        return run_forecast(self.config, st, self.design, org, draws, ids, inputs(self.design), spec, settings,
                            scenario_set, store=store, progress=progress)


def config_from_manifest(m: dict) -> tuple[ModelConfig, PriorSet]:
    """The model configuration and prior set a run was fitted with, from the texts in its
    manifest (not the workspace files, which may have changed since)."""
    names = {"model.file": [Path(m["model"]["file"]).name], "priors.sources": list(m["priors"]["sources"]),
             "priors.chain": list(m["priors"]["chain"])}
    for field_name, values in names.items():
        for v in values:
            if not is_safe_name(v):
                raise RunError(f"run {m.get('run_id')}: manifest field '{field_name}' has {v!r}, not a plain file "
                               f"name ({SAFE_NAME_RULE}); refusing to write or read it")
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / names["model.file"][0]
        model_file.write_text(m["model"]["text"], encoding="utf-8")
        config = load_model_config(model_file)
        for name, text in m["priors"]["sources"].items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")
        priors = load_priors(Path(tmp) / m["priors"]["chain"][-1], config)
    return replace(config, file=Path(m["model"]["file"])), replace(priors, file=Path(m["priors"]["file"]))
