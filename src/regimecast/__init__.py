"""regimecast: a Bayesian regime-switching Monte Carlo forecasting engine for macro markets."""

__version__ = "0.1.0"
