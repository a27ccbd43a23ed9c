"""Scenarios: named predicates over simulated paths, declared in ``models/scenarios.toml``
(loaded and validated here), and the summary of a scenario's probability across posterior
draws. The predicate language itself is :mod:`regimecast.scenarios.predicates`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from regimecast.store import tomlfile
from regimecast.errors import ConfigError
from regimecast.months import MAX_HORIZON
from regimecast.probability import summarise_probabilities
from regimecast.scenarios.parser import IDENT, parse
from regimecast.scenarios.predicates import Expr, PredicateError

SCHEMA_VERSION = 1
TOML_TYPES = {str: "a string", int: "an integer", list: "an array", dict: "a table"}


# ---- scenario files ----------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    """A named predicate; ``horizon`` (months) bounds every ``h`` in it."""

    name: str
    description: str
    horizon: int
    predicate: str
    expr: Expr


@dataclass(frozen=True)
class ScenarioSet:
    """A validated scenario file; ``policy_horizons``: months at which P(policy state) is reported."""

    scenarios: tuple[Scenario, ...]
    policy_horizons: tuple[int, ...]
    file: Path

    @property
    def max_horizon(self) -> int:
        """Months ahead the simulated paths must cover for every scenario and policy horizon."""
        return max((*self.policy_horizons, *(s.horizon for s in self.scenarios)), default=0)


def _table(path: Path, key: str, value: Any, required: dict[str, type]) -> dict:
    """Check a TOML table has exactly the ``required`` keys, of those types (a bool is no int)."""
    if not isinstance(value, dict):
        raise ConfigError(path, key, value, "expected a table")
    dotted = (lambda k: f"{key}.{k}") if key else (lambda k: k)
    for k in value:
        if k not in required:
            raise ConfigError(path, dotted(k), value[k], f"unknown key; allowed: {', '.join(required)}")
    for k, typ in required.items():
        if k not in value:
            raise ConfigError(path, dotted(k), None, "required key is missing")
        if isinstance(value[k], bool) or not isinstance(value[k], typ):
            raise ConfigError(path, dotted(k), value[k], f"expected {TOML_TYPES[typ]}")
    return value


def _scenario(path: Path, i: int, raw: Any, series, factors, seen: set[str]) -> Scenario:
    t = _table(path, f"scenario[{i}]", raw, {"name": str, "description": str, "horizon": int, "predicate": str})
    name = t["name"]
    if not IDENT.fullmatch(name) or name in seen:
        raise ConfigError(path, f"scenario[{i}].name", name, f"scenario '{name}': names are unique identifiers")
    if t["horizon"] < 1:
        raise ConfigError(path, f"scenario.{name}.horizon", t["horizon"], f"scenario '{name}': horizon must be >= 1")
    if t["horizon"] > MAX_HORIZON:      # no forecast reaches it: refused here, not after a fit
        raise ConfigError(path, f"scenario.{name}.horizon", t["horizon"],
                          f"scenario '{name}': horizon must be at most {MAX_HORIZON} months (the longest forecast)")
    try:
        expr = parse(t["predicate"], series=series, factors=factors, horizon=t["horizon"], name=name)
    except PredicateError as exc:
        raise ConfigError(path, f"scenario.{name}.predicate", t["predicate"], str(exc)) from exc
    seen.add(name)
    return Scenario(name, t["description"], t["horizon"], t["predicate"], expr)


def load_scenarios(path: str | Path, *, series: Sequence[str],
                   factors: Mapping[str, Sequence[str]]) -> ScenarioSet:
    """Read and validate a scenario file; every error is a ``ConfigError`` naming the key."""
    path = Path(path)
    try:
        doc = tomlfile.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, "<file>", str(path), f"cannot read scenario file: {exc}") from exc
    _table(path, "", doc, {"schema_version": int, "scenario": list, "policy": dict})
    if doc["schema_version"] != SCHEMA_VERSION:
        raise ConfigError(path, "schema_version", doc["schema_version"],
                          f"this regimecast reads schema_version = {SCHEMA_VERSION}")
    horizons = _table(path, "policy", doc["policy"], {"horizons": list})["horizons"]
    if not horizons or any(isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= MAX_HORIZON
                           for h in horizons):
        raise ConfigError(path, "policy.horizons", horizons,
                          f"expected a non-empty list of integers >= 1 and <= {MAX_HORIZON} (months)")
    seen: set[str] = set()
    scenarios = tuple(_scenario(path, i, raw, series, factors, seen) for i, raw in enumerate(doc["scenario"]))
    return ScenarioSet(scenarios, tuple(horizons), path)


def summarise(indicators: xr.DataArray) -> dict[str, float]:
    """Probability of a scenario from indicators with dims (draw, path), bool or 0/1: the
    per-draw probabilities p_d (mean over paths) summarised by :func:`summarise_probabilities`."""
    if set(indicators.dims) != {"draw", "path"}:
        raise ValueError(f"indicators must have dims (draw, path), got {indicators.dims}")
    return summarise_probabilities(np.asarray(indicators.astype(float).mean("path").values, dtype=float))
