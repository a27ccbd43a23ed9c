"""Simulation: counter-based random numbers, forward paths, the forecast of a fitted run, its
streaming summaries, and the prior predictive."""
