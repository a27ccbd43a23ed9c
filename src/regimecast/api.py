"""The Python API behind every CLI command (usable from notebooks)."""

from __future__ import annotations

from pathlib import Path

from regimecast.config import ModelConfig, load_model_config
from regimecast.data.panel import Panel, build_panel
from regimecast.diagnostics import Thresholds
from regimecast.engine import FitResult, RegimeModel
from regimecast.fit import SamplerSettings
from regimecast.priors import PriorSet, load_priors
from regimecast.workspace import Workspace


def load_inputs(ws: Workspace, *, model: str | None = None, priors: str = "baseline",
                data_dir: str | Path | None = None, end: str | None = None
                ) -> tuple[ModelConfig, PriorSet, Panel]:
    """Validated model file, prior set and data panel."""
    config = load_model_config(ws.models / "default.toml" if model is None else ws.model_file(model))
    prior_set = load_priors(ws.prior_file(priors), config)
    panel = build_panel(config.series, config.sample, ws.data_dir(data_dir), end=end)
    return config, prior_set, panel


def fit(ws: Workspace, settings: SamplerSettings, *, model: str | None = None, priors: str = "baseline",
        data_dir: str | Path | None = None, end: str | None = None, progressbar: bool = True
        ) -> tuple[Path, FitResult]:
    """Fit the model and write ``runs/<run_id>/``; returns the run directory and the fit."""
    config, prior_set, panel = load_inputs(ws, model=model, priors=priors, data_dir=data_dir, end=end)
    rm = RegimeModel(config, prior_set, panel)
    result = rm.fit(settings, Thresholds.load(ws.models / "diagnostics.toml"), progressbar=progressbar)
    return rm.save(ws.runs, result, ws.data_dir(data_dir)), result
