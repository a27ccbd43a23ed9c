"""Prior sets: validate a prior file against the model (``priors check``) and its prior
predictive forecast (``priors show``)."""

from __future__ import annotations

from pathlib import Path

import xarray as xr

from regimecast.simulate.forecast import ForecastSettings
from regimecast.simulate.prior_predictive import PriorCheck, check_prior_file
from regimecast.simulate.prior_predictive import prior_predictive as predictive
from regimecast.store.workspace import Workspace
from regimecast.workflows.inputs import load_inputs, model_config, scenarios_for

def prior_check(ws: Workspace, priors: str | Path, *, model: str | None = None) -> PriorCheck:
    """Validate a prior file against the model; returns a :class:`regimecast.simulate.prior_predictive.PriorCheck`
    (the prior set, its parent, the parameters it changes). Raises ``ConfigError`` (file, key, value)."""
    config = model_config(ws, model)
    return check_prior_file(ws.prior_file(priors), config)


def prior_predictive(ws: Workspace, priors: str | Path, settings: ForecastSettings, *, model: str | None = None,
                     data_dir: str | Path | None = None, end: str | None = None,
                     scenarios: str | Path | None = None, progress=None) -> xr.Dataset:
    """Forecast summary from ``settings.max_draws`` parameter draws of the prior alone, started at the
    last month of the data (see :mod:`regimecast.simulate.prior_predictive`: the data decide only where we are now)."""
    config, prior_set, panel = load_inputs(ws, model=model, priors=str(priors), data_dir=data_dir, end=end)
    scen = scenarios_for(ws, config, scenarios)
    return predictive(config, prior_set, panel, scen, settings, progress=progress)
