"""The inputs every command reads from a workspace: the model file, a prior set, the data
panel, the scenarios and the diagnostics thresholds (one loader for ``run``, ``priors``,
``update``, ``compare``, ``diagnose`` and ``backtest``)."""

from __future__ import annotations

from pathlib import Path

from regimecast.config.model_file import ModelConfig, load_model_config
from regimecast.config.priors import PriorSet, load_priors
from regimecast.config.thresholds import Thresholds
from regimecast.data.panel import Panel, build_panel
from regimecast.scenarios.sets import ScenarioSet, load_scenarios
from regimecast.store.workspace import Workspace


def model_config(ws: Workspace, model: str | None = None) -> ModelConfig:
    """The validated model file (``models/default.toml`` unless ``model`` names another)."""
    return load_model_config(ws.models / "default.toml" if model is None else ws.model_file(model))


def load_inputs(ws: Workspace, *, model: str | None = None, priors: str = "baseline",
                data_dir: str | Path | None = None, end: str | None = None
                ) -> tuple[ModelConfig, PriorSet, Panel]:
    """Validated model file, prior set and data panel."""
    config = model_config(ws, model)
    prior_set = load_priors(ws.prior_file(priors), config)
    panel = build_panel(config.series, config.sample, ws.data_dir(data_dir), end=end)
    return config, prior_set, panel


def scenario_file(ws: Workspace, scenarios: str | Path | None = None) -> Path:
    """``models/scenarios.toml`` unless ``scenarios`` names another file."""
    return ws.models / "scenarios.toml" if scenarios is None else ws.model_file(scenarios)


def scenarios_for(ws: Workspace, config: ModelConfig, scenarios: str | Path | None = None) -> ScenarioSet:
    """The scenario file, validated against the model's series and factors."""
    return load_scenarios(scenario_file(ws, scenarios), series=config.observed,
                          factors={f.name: f.states for f in config.factors})


def thresholds(ws: Workspace) -> Thresholds:
    """``models/diagnostics.toml``: the fail and warn levels of every verdict."""
    return Thresholds.load(ws.models / "diagnostics.toml")
