"""Defaults shared by the command line and the engine, in one place. Light: importing it
loads nothing else, so the CLI can use it at start-up.

The production fit (``SAMPLER``) is the one that passes every fail check of
``models/diagnostics.toml`` on the real panel with margin (benchmarks/RESULTS.md, "The fast
fit: geometry"); the CLI's ``fit``, ``run`` and ``compare`` and :class:`regimecast.fit.sampler.SamplerSettings`
take it from here.
"""

from __future__ import annotations

SEED = 20261123
"""Default random seed of every command (same seed and inputs: identical numbers)."""

SAMPLER = {
    "backend": "nutpie",
    "chains": 4,
    "draws": 5000,
    "tune": 500,
    "mass_matrix": "low_rank",
    "init": "map",
}
"""The production NUTS settings: 4 chains x 5000 draws after 500 tuning steps, nutpie with a
diagonal plus low-rank mass matrix, every chain from the annealed MAP start."""

MIN_CHAINS = 2
"""R-hat compares chains: a fit with fewer would be refused only after sampling."""


def check_chains(chains: int) -> int:
    """``chains`` if at least :data:`MIN_CHAINS`, else a ValueError: one check for every command
    that fits (``fit``, ``run``, ``compare``, ``update``, ``backtest``), made before any work."""
    if chains < MIN_CHAINS:
        raise ValueError(f"chains = {chains}: at least {MIN_CHAINS} chains are needed (R-hat compares chains; "
                         "a single chain would be refused only after sampling)")
    return chains


MAX_SEED = 2**63 - 1
"""Largest seed: JAX keys, NumPy and nutpie all take seeds up to here."""


def check_seed(seed: object, what: str = "seed") -> int:
    """``seed`` if it is an integer from 0 to :data:`MAX_SEED`, else a ValueError naming ``what``
    (a seed beyond 2^63 was an OverflowError deep inside JAX)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{what} = {seed}: expected an integer from 0 to 2**63 - 1")
    return seed
