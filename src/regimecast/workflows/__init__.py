"""What each command does, as Python functions (re-exported by :mod:`regimecast.api`): run (fit,
forecast, report), update, compare, priors, diagnose, backtest and ledger;
:class:`~regimecast.workflows.engine.RegimeModel` is the fit-and-forecast life cycle they share."""
