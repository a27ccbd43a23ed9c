"""One verdict on a fit, in one vocabulary: the levels ``pass`` / ``warn`` / ``fail``, their
exit codes and words, and the sampler's fail checks that both verdicts share.

The fit's own verdict (:func:`regimecast.checks.convergence.diagnostics_block`, the manifest's
``trusted`` / ``reasons``, behind ``run`` / ``fit`` / ``update`` and the forecast report) applies
the sampler's fail checks of :func:`sampler_failures`; the review
(:func:`regimecast.checks.review.assess`, behind ``diagnose``) applies the same function and adds
its own fail and warn checks. Both read their levels from one
:class:`regimecast.config.thresholds.Thresholds` (``models/diagnostics.toml``), and every command
and report words a verdict with :data:`HEADLINES` and its reasons with :attr:`Finding.reason`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from regimecast.config.thresholds import Thresholds

if TYPE_CHECKING:   # annotations only: the CLI imports this module and need not load pandas
    import pandas as pd

EXIT_CODES = {"pass": 0, "warn": 1, "fail": 2}
HEADLINES = {"pass": "pass", "warn": "warn (usable with care)", "fail": "fail: DO NOT TRUST THIS RUN"}
NAMED_IN_REASON = 3   # parameters, months or statistics named in one reason


@dataclass(frozen=True)
class Finding:
    level: str      # "fail" | "warn"
    check: str
    message: str

    @property
    def reason(self) -> str:
        return f"{self.level.upper()} {self.check}: {self.message}"


@dataclass(frozen=True)
class Verdict:
    level: str                       # "pass" | "warn" | "fail"
    findings: tuple[Finding, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.level]

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.findings]

    @property
    def headline(self) -> str:
        return HEADLINES[self.level]


def verdict_of(findings: Sequence[Finding]) -> Verdict:
    """``fail`` if any finding fails, else ``warn`` if any, else ``pass``; fails listed first."""
    level = "fail" if any(f.level == "fail" for f in findings) else "warn" if findings else "pass"
    return Verdict(level, tuple(sorted(findings, key=lambda f: f.level != "fail")))


def fit_level(diagnostics: Mapping) -> str:
    """The level of a manifest's diagnostics block: ``pass`` when trusted, else ``fail``."""
    return "pass" if diagnostics["trusted"] else "fail"


def fit_headline(diagnostics: Mapping) -> str:
    return HEADLINES[fit_level(diagnostics)]


def list_names(index, n: int = NAMED_IN_REASON) -> str:
    items = [str(i) for i in index]
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def sampler_failures(table: pd.DataFrame, divergences: np.ndarray, bfmi: np.ndarray, n_draws: int,
                     th: Thresholds, along: Sequence[str] | None = None) -> list[Finding]:
    """The fail checks of the sampler's exploration, shared by the fit's verdict and the review's.
    ``table``: one row per scalar parameter with ``r_hat``, ``ess_bulk``, ``ess_tail`` (unrounded);
    ``divergences`` and ``bfmi``: per chain, shape (chain,); ``along``: the parameters along which
    the divergences concentrate, most first (named in the reason when given). A NaN diagnostic
    fails its check."""
    out = []
    n_chains = len(divergences)
    bad = table[~(table["r_hat"] <= th.max_rhat)].sort_values("r_hat", ascending=False)
    if len(bad):
        out.append(Finding("fail", "R-hat", f"{len(bad)} of {len(table)} parameters above {th.max_rhat} "
                                            f"(max {table['r_hat'].max():.3f}: {list_names(bad.index)})"))
    need = th.min_ess_per_chain * n_chains
    for col, what in (("ess_bulk", "bulk ESS"), ("ess_tail", "tail ESS")):
        bad = table[~(table[col] >= need)].sort_values(col)
        if len(bad):
            out.append(Finding("fail", what, f"{len(bad)} parameters below {need:.0f} "
                                             f"(min {table[col].min():.0f}: {list_names(bad.index)})"))
    n_div = int(np.sum(divergences))
    if n_div > th.max_divergences:
        where = f"; they concentrate along {list_names(along)}" if along is not None else ""
        out.append(Finding("fail", "divergences",
                           f"{n_div} divergent transitions ({n_div / (n_chains * n_draws):.1%}){where}"))
    low = np.flatnonzero(~(np.asarray(bfmi) >= th.min_bfmi))
    if len(low):
        out.append(Finding("fail", "E-BFMI", f"chain(s) {', '.join(map(str, low))} below {th.min_bfmi} "
                                             f"(min {np.nanmin(bfmi):.2f})"))
    return out
