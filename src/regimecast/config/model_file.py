"""Model configuration (``models/*.toml``): observed series, latent factors, emission and
transition structure. Validated on load; every error names the file, key and value."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from regimecast.store import tomlfile
from regimecast.data.spec import SampleSpec, SeriesSpec, parse_month, parse_sample, parse_series
from regimecast.errors import ConfigError

SCHEMA_VERSION = 1
EMISSION_FAMILIES = ("student_t", "normal")
COVARIATE_FEATURES = ("level", "drawdown")
MISSING_RULES = ("ffill", "zero")


# sd of a series beyond which ``regimecast update`` calls a changed observation a revision
DEFAULT_REVISION_TOLERANCE_SD = 0.1
# ``[history] default`` when the file omits it: the transition factor's state of months in no
# episode (the Fed holding), or its first state where it has no such state.
DEFAULT_HISTORY_STATE = "hold"

@dataclass(frozen=True)
class Factor:
    """A latent discrete Markov chain; ``states`` in index order."""

    name: str
    states: tuple[str, ...]


@dataclass(frozen=True)
class Covariate:
    """A lagged covariate of the time-varying transition: ``(feature(source)_{t-1} - center) / scale``.

    ``missing``: "ffill" carries the last observed value forward, "zero" sets the
    standardised value to 0 (neutral) where the source is unavailable.
    """

    name: str
    source: str
    feature: str
    center: float
    scale: float
    window: int
    missing: str


@dataclass(frozen=True)
class Episode:
    state: str
    start: str
    end: str


@dataclass(frozen=True)
class ModelConfig:
    """A validated model file. ``text`` and ``sha256`` are the file as read (for the run manifest)."""

    file: Path
    text: str
    sha256: str
    name: str
    series: tuple[SeriesSpec, ...]
    sample: SampleSpec
    factors: tuple[Factor, ...]
    emission_family: str
    ar_series: tuple[str, ...]
    ar_center: dict[str, float]
    covariance_factor: str
    scale_factors: tuple[str, ...]
    transition_factor: str
    covariates: tuple[Covariate, ...]
    history: tuple[Episode, ...]
    # model state -> reference states it agrees with besides its own name (``[history] agrees``)
    history_agrees: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # ``regimecast update`` refuses a revision of the parent's data beyond this many sd of the series
    revision_tolerance_sd: float = DEFAULT_REVISION_TOLERANCE_SD
    # the transition factor's reference state of months in no episode (``[history] default``);
    # None: its first state
    history_default: str | None = None

    @property
    def observed(self) -> tuple[str, ...]:
        """Names of the emission series, in emission-vector order."""
        return tuple(s.name for s in self.series if s.role == "observed")

    @property
    def assets(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.series if s.role == "observed" and s.asset)

    @property
    def rate_assets(self) -> tuple[str, ...]:
        """Assets that are rates in percent (``kind = "percent_rate"``): the report shows their
        levels with two decimals whatever their size."""
        return tuple(s.name for s in self.series if s.name in self.assets and s.kind == "percent_rate")

    def factor(self, name: str) -> Factor:
        return next(f for f in self.factors if f.name == name)

    @property
    def joint_shape(self) -> tuple[int, ...]:
        """Number of states of each factor; the joint state is their product (C order)."""
        return tuple(len(f.states) for f in self.factors)

    def history_labels(self, dates: pd.DatetimeIndex) -> np.ndarray:
        """Reference state of the transition factor per month (later episodes win; months in
        no episode take ``history_default``, else the first state). Shape (len(dates),)."""
        default = self.history_default or self.factor(self.transition_factor).states[0]
        labels = np.full(len(dates), default, dtype=object)
        months = dates.to_period("M")
        for ep in self.history:
            sel = (months >= pd.Period(ep.start, "M")) & (months <= pd.Period(ep.end, "M"))
            labels[np.asarray(sel)] = ep.state
        return labels


def load_model_config(path: str | Path) -> ModelConfig:
    """Read and validate a model file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "<file>", str(path), "model file not found")
    raw = path.read_bytes()
    try:
        doc = tomlfile.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "<file>", None, f"not valid TOML: {exc}") from exc
    _known(path, "", doc, {"schema_version", "name", "description", "sample", "series",
                           "factors", "emission", "transition", "history", "update"})
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(path, "schema_version", doc.get("schema_version"),
                          f"this regimecast reads schema_version = {SCHEMA_VERSION}")
    series = parse_series(path, _req(path, doc, "series", list))
    sample = parse_sample(path, _req(path, doc, "sample", dict))
    names = {s.name for s in series}
    observed = [s.name for s in series if s.role == "observed"]
    factors = _parse_factors(path, _req(path, doc, "factors", list))
    fnames = [f.name for f in factors]

    em = _req(path, doc, "emission", dict)
    _known(path, "emission", em, {"family", "ar_series", "ar_center", "covariance_factor", "scale_factors"})
    family = _choice(path, "emission.family", em.get("family"), EMISSION_FAMILIES)
    ar_series = tuple(em.get("ar_series", []))
    for i, s in enumerate(ar_series):
        _choice(path, f"emission.ar_series[{i}]", s, observed)
    ar_center = dict(em.get("ar_center", {}))
    for s in ar_series:
        if s not in ar_center:
            raise ConfigError(path, f"emission.ar_center.{s}", None, "every AR series needs a centre")
    for s, v in ar_center.items():
        _choice(path, f"emission.ar_center.{s}", s, ar_series)
        _number(path, f"emission.ar_center.{s}", v)
    cov_factor = _choice(path, "emission.covariance_factor", em.get("covariance_factor"), fnames)
    scale_factors = tuple(em.get("scale_factors", []))
    for i, f in enumerate(scale_factors):
        _choice(path, f"emission.scale_factors[{i}]", f, [n for n in fnames if n != cov_factor])

    tr = _req(path, doc, "transition", dict)
    _known(path, "transition", tr, {"factor", "covariates"})
    tfactor = _choice(path, "transition.factor", tr.get("factor"), fnames)
    covariates = _parse_covariates(path, tr.get("covariates", {}), names)

    hist = doc.get("history", {})
    _known(path, "history", hist, {"episodes", "agrees", "default"})
    tstates = next(f for f in factors if f.name == tfactor).states
    hdefault = hist.get("default", DEFAULT_HISTORY_STATE if DEFAULT_HISTORY_STATE in tstates else tstates[0])
    _choice(path, "history.default", hdefault, tstates)
    agrees = {}
    for st, refs in hist.get("agrees", {}).items():
        _choice(path, f"history.agrees.{st}", st, tstates)
        if not isinstance(refs, list):
            raise ConfigError(path, f"history.agrees.{st}", refs, "expected a list of states")
        for i, r in enumerate(refs):
            _choice(path, f"history.agrees.{st}[{i}]", r, tstates)
        agrees[st] = tuple(refs)
    episodes = []
    for i, ep in enumerate(hist.get("episodes", [])):
        key = f"history.episodes[{i}]"
        _known(path, key, ep, {"state", "start", "end"})
        _choice(path, f"{key}.state", ep.get("state"), tstates)
        for k in ("start", "end"):
            parse_month(path, f"{key}.{k}", ep.get(k))
        episodes.append(Episode(ep["state"], ep["start"], ep["end"]))

    upd = doc.get("update", {})
    _known(path, "update", upd, {"revision_tolerance_sd"})
    tol = _number(path, "update.revision_tolerance_sd", upd.get("revision_tolerance_sd", DEFAULT_REVISION_TOLERANCE_SD))
    if tol < 0:
        raise ConfigError(path, "update.revision_tolerance_sd", tol, "must be non-negative")

    return ModelConfig(
        file=path, text=raw.decode("utf-8"), sha256=hashlib.sha256(raw).hexdigest(),
        name=str(doc.get("name", path.stem)), series=series, sample=sample, factors=factors,
        emission_family=family, ar_series=ar_series, ar_center={k: float(v) for k, v in ar_center.items()},
        covariance_factor=cov_factor, scale_factors=scale_factors, transition_factor=tfactor,
        covariates=covariates, history=tuple(episodes), history_agrees=agrees,
        revision_tolerance_sd=tol, history_default=hdefault,
    )


def _parse_factors(path: Path, items: list) -> tuple[Factor, ...]:
    out, seen = [], set()
    for i, f in enumerate(items):
        key = f"factors[{i}]"
        if not isinstance(f, dict):
            raise ConfigError(path, key, f, "each factor is a table with name and states")
        _known(path, key, f, {"name", "states"})
        name = f.get("name")
        if not isinstance(name, str) or not name.isidentifier() or name in seen:
            raise ConfigError(path, f"{key}.name", name, "factor names are unique identifiers")
        states = f.get("states")
        if (not isinstance(states, list) or len(states) < 2 or len(set(states)) != len(states)
                or not all(isinstance(s, str) and s.isidentifier() for s in states)):
            raise ConfigError(path, f"{key}.states", states, "at least two unique identifier states")
        seen.add(name)
        out.append(Factor(name, tuple(states)))
    if not out:
        raise ConfigError(path, "factors", items, "at least one latent factor is needed")
    return tuple(out)


def _parse_covariates(path: Path, table: dict, series_names: set[str]) -> tuple[Covariate, ...]:
    out = []
    for name, c in table.items():
        key = f"transition.covariates.{name}"
        if not isinstance(c, dict):
            raise ConfigError(path, key, c, "each covariate is a table")
        _known(path, key, c, {"source", "feature", "center", "scale", "window", "missing"})
        _choice(path, f"{key}.source", c.get("source"), sorted(series_names))
        feature = _choice(path, f"{key}.feature", c.get("feature"), COVARIATE_FEATURES)
        scale = _number(path, f"{key}.scale", c.get("scale"))
        if scale <= 0:
            raise ConfigError(path, f"{key}.scale", scale, "scale must be positive")
        window = c.get("window", 12 if feature == "drawdown" else 1)
        if not isinstance(window, int) or window < 1:
            raise ConfigError(path, f"{key}.window", window, "window is a positive number of months")
        missing = _choice(path, f"{key}.missing", c.get("missing", "ffill"), MISSING_RULES)
        out.append(Covariate(name, c["source"], feature, _number(path, f"{key}.center", c.get("center", 0.0)),
                             scale, window, missing))
    return tuple(out)


def _known(path: Path, prefix: str, table: dict, allowed: set[str]) -> None:
    for k in table:
        if k not in allowed:
            key = f"{prefix}.{k}" if prefix else k
            raise ConfigError(path, key, table[k], f"unknown key; allowed: {', '.join(sorted(allowed))}")


def _req(path: Path, doc: dict, key: str, typ: type) -> Any:
    if key not in doc:
        raise ConfigError(path, key, None, "required key is missing")
    if not isinstance(doc[key], typ):
        raise ConfigError(path, key, doc[key], f"expected a {typ.__name__}")
    return doc[key]


def _choice(path: Path, key: str, value: Any, allowed) -> Any:
    if value not in allowed:
        raise ConfigError(path, key, value, f"must be one of: {', '.join(map(str, allowed))}")
    return value


def _number(path: Path, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise ConfigError(path, key, value, "expected a finite number")
    return float(value)
