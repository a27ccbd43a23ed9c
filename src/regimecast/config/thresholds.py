"""The thresholds a fit must meet (``models/diagnostics.toml``): fail levels (the fit's
verdict, :func:`regimecast.checks.convergence.diagnostics_block`, and the review's,
:func:`regimecast.checks.review.assess`) and warn levels (the review's only), each with its
source in the file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from regimecast.errors import ConfigError
from regimecast.store import tomlfile


@dataclass(frozen=True)
class WarnLevels:
    """Levels at which ``regimecast diagnose`` warns (the fit may be used, with care).
    Shares and probabilities are in [0, 1]; see ``models/diagnostics.toml`` for the sources."""

    treedepth_share: float        # warn when more transitions than this share hit the maximum tree depth
    prior_conflict_alpha: float   # family-wise prior tail probability of a posterior mean (Bonferroni)
    pareto_k: float               # PSIS shape above which a month's LOO estimate is unreliable ...
    pareto_k_share: float         # ... warn when more months than this share exceed it
    contraction: float            # 1 - var_post / var_prior below this: the data did not inform the parameter
    uninformed_share: float       # warn when more parameters than this share are not informed
    ppc_alpha: float              # family-wise level of the posterior predictive checks (Bonferroni)
    loo_pit_p: float              # KS test of the LOO-PITs against U(0, 1): p below this warns


_WARN_KEYS = tuple(WarnLevels.__dataclass_fields__)
_UNIT_KEYS = ("max_treedepth_share", "prior_conflict_alpha", "treedepth_share", "pareto_k_share",
              "uninformed_share", "ppc_alpha", "loo_pit_p")      # must lie in [0, 1]


@dataclass(frozen=True)
class Thresholds:
    """What a fit must meet. The first four (fail levels) are the manifest's diagnostics block;
    the rest are read by ``regimecast diagnose`` and are ``None`` in files that predate it."""

    max_rhat: float
    min_ess_per_chain: float
    max_divergences: int
    min_bfmi: float
    max_treedepth_share: float | None = None     # fail above this share of saturated transitions
    prior_conflict_alpha: float | None = None    # fail below this family-wise prior tail probability
    warn: WarnLevels | None = None

    @classmethod
    def load(cls, path: str | Path) -> "Thresholds":
        path = Path(path)
        try:
            doc = tomlfile.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(path, "<file>", str(path), f"cannot read thresholds: {exc}") from exc
        names = ("max_rhat", "min_ess_per_chain", "max_divergences", "min_bfmi")
        optional = ("max_treedepth_share", "prior_conflict_alpha")
        for k in doc:
            if k not in names + optional + ("schema_version", "warn"):
                raise ConfigError(path, k, doc[k], "unknown key")
        for k in names:
            _check_number(path, k, doc.get(k))
        for k in optional:
            if k in doc:
                _check_number(path, k, doc[k])
        warn = None
        if "warn" in doc:
            table = doc["warn"]
            if not isinstance(table, dict):
                raise ConfigError(path, "warn", table, "expected a table [warn]")
            for k in table:
                if k not in _WARN_KEYS:
                    raise ConfigError(path, f"warn.{k}", table[k], "unknown key")
            for k in _WARN_KEYS:
                _check_number(path, f"warn.{k}", table.get(k))
            warn = WarnLevels(**{k: float(table[k]) for k in _WARN_KEYS})
        return cls(float(doc["max_rhat"]), float(doc["min_ess_per_chain"]), int(doc["max_divergences"]),
                   float(doc["min_bfmi"]),
                   *(float(doc[k]) if k in doc else None for k in optional), warn=warn)


def _check_number(path: Path, key: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(path, key, value, "expected a non-negative number")
    if key.split(".")[-1] in _UNIT_KEYS and value > 1:
        raise ConfigError(path, key, value, "expected a share or probability in [0, 1]")


def check_thresholds(th: Thresholds, source: object = "diagnostics.toml") -> None:
    """Raise ConfigError unless ``th`` has every level diagnose and the report need (schema_version 2 files)."""
    missing = [k for k in ("max_treedepth_share", "prior_conflict_alpha", "warn") if getattr(th, k) is None]
    if missing:
        raise ConfigError(source, missing[0], None, "needed by `regimecast diagnose` and the report (schema_version 2)")
