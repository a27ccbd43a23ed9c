"""Scenarios: the predicate language over simulated paths and the named scenario sets of
``models/scenarios.toml``."""
