"""Scores: CRPS, log score, PIT and Brier; univariate baselines; scoring a backtest origin and the
forecast ledger."""
