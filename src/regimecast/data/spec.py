"""Series and sample specifications: the ``[[series]]`` and ``[sample]`` tables of a model file.

``parse_series`` and ``parse_sample`` validate the raw TOML tables and raise
:class:`~regimecast.errors.ConfigError` naming the file, the dotted key (``series[2].transform``,
0-based index into the ``[[series]]`` array) and the offending value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from regimecast.errors import ConfigError
from regimecast.months import is_month

ROLES = ("observed", "covariate")
AGGREGATIONS = ("mean", "last")
TRANSFORMS = ("diff", "log_diff_pct", "log", "yoy_pct", "level")
KINDS = ("percent_rate", "price", "index", "amount")
SOURCES = ("fred", "file")
LOG_TRANSFORMS = ("log_diff_pct", "log")

_ID_RE = re.compile(r"^[A-Za-z0-9_]+$")  # a FRED id is also a file name: no '/', '.', spaces
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_series_id(value: object) -> bool:
    """True for a FRED id: letters, digits and ``_`` only (it becomes a file name)."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


@dataclass(frozen=True)
class SeriesSpec:
    """One modelled series: which file it comes from, how it becomes a monthly number.

    ``minus`` is a second FRED id subtracted after monthly aggregation, before the transform.
    """

    name: str
    fred_id: str
    label: str
    role: str
    aggregation: str
    transform: str
    kind: str
    source: str
    units_raw: str
    units: str
    asset: bool
    minus: str | None = None
    optional: bool = False
    measurement_sd: float = 0.0   # sd of the publication's rounding error, in model units

    @property
    def takes_log(self) -> bool:
        """True when the transform takes a logarithm of the level."""
        return self.transform in LOG_TRANSFORMS


@dataclass(frozen=True)
class SampleSpec:
    """The fit sample: first month ``start`` ("YYYY-MM"), minimum length, allowed staleness."""

    start: str
    min_months: int
    max_lag_months: int


_STR_KEYS = ("name", "fred_id", "label", "role", "aggregation", "transform", "kind", "source",
             "units_raw", "units")
_ENUMS = {"role": ROLES, "aggregation": AGGREGATIONS, "transform": TRANSFORMS, "kind": KINDS,
          "source": SOURCES}
_SERIES_KEYS = frozenset((*_STR_KEYS, "asset", "minus", "optional", "measurement_sd"))
_SAMPLE_KEYS = frozenset(("start", "min_months", "max_lag_months"))


def parse_month(file: object, key: str, value: Any) -> str:
    """Validate a "YYYY-MM" month string; return it unchanged."""
    if not is_month(value):
        raise ConfigError(file, key, value, 'expected a month "YYYY-MM"')
    return value


def _check_keys(file: object, prefix: str, table: Any, allowed: frozenset[str],
                required: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        raise ConfigError(file, prefix, table, "expected a table")
    for key in table:
        if key not in allowed:
            raise ConfigError(file, f"{prefix}.{key}", table[key],
                              f"unknown key (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in table:
            raise ConfigError(file, f"{prefix}.{key}", None, "required key is missing")
    return table


def _parse_one(file: object, i: int, table: Any) -> SeriesSpec:
    p = f"series[{i}]"
    t = _check_keys(file, p, table, _SERIES_KEYS, (*_STR_KEYS, "asset"))
    for key in _STR_KEYS:
        if not isinstance(t[key], str) or not t[key].strip():
            raise ConfigError(file, f"{p}.{key}", t[key], "expected a non-empty string")
    for key, allowed in _ENUMS.items():
        if t[key] not in allowed:
            raise ConfigError(file, f"{p}.{key}", t[key], f"expected one of {', '.join(allowed)}")
    if not _NAME_RE.match(t["name"]):
        raise ConfigError(file, f"{p}.name", t["name"], "expected an identifier (letters, digits, _)")
    if not is_series_id(t["fred_id"]):
        raise ConfigError(file, f"{p}.fred_id", t["fred_id"], "expected letters, digits or _")
    for key in ("asset", "optional"):
        if key in t and not isinstance(t[key], bool):
            raise ConfigError(file, f"{p}.{key}", t[key], "expected true or false")
    msd = t.get("measurement_sd", 0.0)
    if isinstance(msd, bool) or not isinstance(msd, (int, float)) or not msd >= 0 or msd == float("inf"):
        raise ConfigError(file, f"{p}.measurement_sd", msd, "expected a finite number >= 0 (model units)")
    minus = t.get("minus")
    if minus is not None and (not is_series_id(minus)
                              or minus == t["fred_id"]):
        raise ConfigError(file, f"{p}.minus", minus,
                          "expected a FRED id (letters, digits or _) other than fred_id")
    return SeriesSpec(name=t["name"], fred_id=t["fred_id"], label=t["label"], role=t["role"],
                      aggregation=t["aggregation"], transform=t["transform"], kind=t["kind"],
                      source=t["source"], units_raw=t["units_raw"], units=t["units"],
                      asset=t["asset"], minus=minus, optional=t.get("optional", False),
                      measurement_sd=float(msd))


def parse_series(file: object, tables: Any) -> tuple[SeriesSpec, ...]:
    """Validate the ``[[series]]`` array of tables; return the specs in file order."""
    if not isinstance(tables, Sequence) or isinstance(tables, (str, bytes)) or not tables:
        raise ConfigError(file, "series", tables, "expected a non-empty array of [[series]] tables")
    specs: list[SeriesSpec] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(tables):
        spec = _parse_one(file, i, table)
        if spec.name in seen:
            raise ConfigError(file, f"series[{i}].name", spec.name,
                              f"duplicate series name (also series[{seen[spec.name]}])")
        seen[spec.name] = i
        specs.append(spec)
    return tuple(specs)


def parse_sample(file: object, table: Any) -> SampleSpec:
    """Validate the ``[sample]`` table."""
    t = _check_keys(file, "sample", table, _SAMPLE_KEYS, tuple(sorted(_SAMPLE_KEYS)))
    parse_month(file, "sample.start", t["start"])
    for key, low in (("min_months", 1), ("max_lag_months", 0)):
        v = t[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ConfigError(file, f"sample.{key}", v, f"expected an integer >= {low}")
    return SampleSpec(start=t["start"], min_months=t["min_months"],
                      max_lag_months=t["max_lag_months"])
