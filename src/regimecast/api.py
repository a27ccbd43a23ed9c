"""The public Python API: every command of the CLI as a function (usable from a notebook).

Each takes a :class:`~regimecast.store.workspace.Workspace` (where ``models/``, ``priors/``,
``runs/``, ``reports/`` and the data cache live) and returns typed results; the CLI
(:mod:`regimecast.cli`) is a thin layer over these. The functions live in
:mod:`regimecast.workflows`, one module a command; this module only gathers them.

========================  ================================================================
command                   function
========================  ================================================================
``fit``                   :func:`fit`
``forecast``              :func:`forecast`
``report``                :func:`report`
``run``                   :func:`fit`, then :func:`forecast` and :func:`report`
``update``                :func:`update`
``compare``               :func:`compare`
``priors check`` / show   :func:`prior_check` / :func:`prior_predictive`
``diagnose``              :func:`diagnose`
``backtest``              :func:`backtest` (pieces: :mod:`regimecast.workflows.backtest`)
``ledger`` / add / score  :func:`list_forecasts` / :func:`record` / :func:`score_ledger`
========================  ================================================================
"""

from __future__ import annotations

from regimecast.checks.review import DiagnoseSettings
from regimecast.config.defaults import SAMPLER, SEED
from regimecast.fit.sampler import SamplerSettings
from regimecast.simulate.forecast import ForecastSettings
from regimecast.store.workspace import Workspace
from regimecast.workflows.backtest import backtest
from regimecast.workflows.backtest_origin import BacktestSettings
from regimecast.workflows.compare import compare
from regimecast.workflows.diagnose import DiagnoseResult, diagnose
from regimecast.workflows.engine import FitResult, RegimeModel
from regimecast.workflows.inputs import load_inputs
from regimecast.workflows.ledger import list_forecasts, record, score_ledger
from regimecast.workflows.priors import prior_check, prior_predictive
from regimecast.workflows.run import fit, forecast, report, reproduce_command
from regimecast.workflows.update import update

__all__ = ["SAMPLER", "SEED", "BacktestSettings", "DiagnoseResult", "DiagnoseSettings", "FitResult",
           "ForecastSettings", "RegimeModel", "SamplerSettings", "Workspace", "backtest", "compare", "diagnose",
           "fit", "forecast", "list_forecasts", "load_inputs", "prior_check", "prior_predictive", "record",
           "report", "reproduce_command", "score_ledger", "update"]
