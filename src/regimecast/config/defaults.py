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
    "draws": 2000,
    "tune": 500,
    "mass_matrix": "low_rank",
    "init": "map",
}
"""The production NUTS settings: 4 chains x 2000 draws after 500 tuning steps, nutpie with a
diagonal plus low-rank mass matrix, every chain from the annealed MAP start."""
