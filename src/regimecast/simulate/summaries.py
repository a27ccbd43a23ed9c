"""Forecast statistics accumulated chunk by chunk (summary mode): scenario probabilities per
posterior draw, policy-state probabilities by horizon, and quantiles of every series at every
horizon (and at each scenario's horizon given the scenario) from fixed-bin histograms, so that
memory does not grow with the number of paths.

Histogram bins are set from the first chunk (its range widened by ``RANGE_PAD`` times its span
on each side; values beyond are counted in the edge bins) with ``N_BINS`` bins: a quantile's
resolution is about 3 x span / N_BINS of the first chunk's range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from regimecast.scenarios.predicates import evaluate
from regimecast.scenarios.sets import ScenarioSet

N_BINS = 4096
RANGE_PAD = 1.0
QUANTILES = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975)
MIN_CONDITIONAL_PATHS = 200   # fewer paths in a scenario: no conditional quantiles (NaN)


def histogram_quantiles(counts: np.ndarray, edges: np.ndarray, qs) -> np.ndarray:
    """Quantiles from histogram ``counts`` (..., B) over ``edges`` (..., B+1), linear within a
    bin: (..., len(qs)); NaN where a histogram is empty."""
    total = counts.sum(-1, keepdims=True)
    cdf = np.concatenate([np.zeros_like(total, float), np.cumsum(counts, -1)], -1) / np.where(total > 0, total, 1)
    out = np.empty(counts.shape[:-1] + (len(qs),))
    for idx in np.ndindex(counts.shape[:-1]):
        c, e = cdf[idx], edges[idx]
        out[idx] = np.interp(qs, c, e) if total[idx][0] > 0 else np.nan
    return out


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index (clipped to the edge bins) of ``values`` (..., n) for per-row ``edges`` (B+1,)."""
    lo, hi = edges[0], edges[-1]
    b = np.floor((values - lo) / (hi - lo) * (len(edges) - 1)).astype(np.int64)
    return np.clip(b, 0, len(edges) - 2)


@dataclass
class SummaryAccumulator:
    """Consumes chunks of simulated paths; ``result()`` gives the summary Dataset.

    ``series`` (D names), ``factors`` {name: states} in the order of the states' last axis,
    ``origin`` (D,) levels at the last observed month, ``n_draws`` posterior draws in all.
    """

    scenarios: ScenarioSet
    series: tuple[str, ...]
    factors: dict[str, list[str]]
    origin: np.ndarray
    n_draws: int
    horizon: int
    policy_factor: str
    hits: np.ndarray = field(init=False)
    policy: np.ndarray = field(init=False)
    edges: np.ndarray | None = field(init=False, default=None)
    hist: np.ndarray = field(init=False)
    cond_hist: np.ndarray = field(init=False)
    n_paths: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        S, D, H = self.n_draws, len(self.series), self.horizon
        n_scen = len(self.scenarios.scenarios)
        P = len(self.factors[self.policy_factor])
        self.hits = np.zeros((S, n_scen))
        self.policy = np.zeros((S, len(self.scenarios.policy_horizons), P))
        self.hist = np.zeros((D, H, N_BINS))
        self.cond_hist = np.zeros((n_scen, D, N_BINS))
        self.n_paths = np.zeros(S)
        too_long = [s.name for s in self.scenarios.scenarios if s.horizon > H] + \
                   [f"policy horizon {h}" for h in self.scenarios.policy_horizons if h > H]
        if too_long:
            raise ValueError(f"forecast horizon {H} is shorter than {', '.join(too_long)} needs")

    def add(self, draws: slice, levels: np.ndarray, states: np.ndarray) -> None:
        """One chunk: ``levels`` (S, N, H, D) natural units, ``states`` (S, N, H, F) indices."""
        S, N, H, D = levels.shape
        if self.edges is None:
            lo, hi = levels.min(axis=(0, 1)), levels.max(axis=(0, 1))                # (H, D)
            pad = RANGE_PAD * np.maximum(hi - lo, 1e-9 * np.maximum(np.abs(hi), 1.0))
            self.edges = np.linspace(lo - pad, hi + pad, N_BINS + 1, axis=-1).transpose(1, 0, 2)   # (D, H, B+1)
        self.n_paths[draws] += N
        flat = levels.reshape(S * N, H, D)
        for d in range(D):
            for h in range(H):
                self.hist[d, h] += np.bincount(_bin(flat[:, h, d], self.edges[d, h]), minlength=N_BINS)
        series_paths = {s: np.concatenate([np.broadcast_to(self.origin[j], (S, N, 1)), levels[..., j]], axis=-1)
                        for j, s in enumerate(self.series)}
        state_paths = {f: states[..., i] for i, f in enumerate(self.factors)}
        for k, sc in enumerate(self.scenarios.scenarios):
            ind = np.asarray(evaluate(sc.expr, series_paths, state_paths, name=sc.name))    # (S, N)
            self.hits[draws, k] += ind.sum(axis=1)
            sel = ind.reshape(-1)
            for d in range(D):
                x = flat[sel, sc.horizon - 1, d]
                self.cond_hist[k, d] += np.bincount(_bin(x, self.edges[d, sc.horizon - 1]), minlength=N_BINS)
        pol = states[..., list(self.factors).index(self.policy_factor)]
        P = self.policy.shape[-1]
        for j, h in enumerate(self.scenarios.policy_horizons):
            self.policy[draws, j] += np.stack([(pol[:, :, h - 1] == p).sum(axis=1) for p in range(P)], axis=-1)

    def result(self, draw_ids: np.ndarray, dates) -> xr.Dataset:
        """Per-draw scenario and policy probabilities, unconditional and conditional quantiles."""
        names = [s.name for s in self.scenarios.scenarios]
        n = self.n_paths[:, None]
        q = histogram_quantiles(self.hist, self.edges, QUANTILES)                            # (D, H, Q)
        cond_edges = np.stack([self.edges[:, s.horizon - 1] for s in self.scenarios.scenarios])
        cq = histogram_quantiles(self.cond_hist, cond_edges, QUANTILES)                      # (K, D, Q)
        n_cond = self.cond_hist[:, 0].sum(-1)
        cq[n_cond < MIN_CONDITIONAL_PATHS] = np.nan
        return xr.Dataset(
            {"scenario_prob": (("draw", "scenario"), self.hits / n),
             "policy_prob": (("draw", "policy_horizon", self.policy_factor), self.policy / n[:, :, None]),
             "quantiles": (("series", "horizon", "quantile"), q),
             "conditional": (("scenario", "series", "quantile"), cq),
             "scenario_paths": (("scenario",), n_cond.astype(np.int64)),
             "origin": (("series",), np.asarray(self.origin, float))},
            coords={"draw": draw_ids, "scenario": names, "series": list(self.series),
                    "horizon": np.arange(1, self.horizon + 1), "date": ("horizon", dates), "quantile": list(QUANTILES),
                    "policy_horizon": list(self.scenarios.policy_horizons),
                    self.policy_factor: self.factors[self.policy_factor],
                    "scenario_horizon": ("scenario", [s.horizon for s in self.scenarios.scenarios]),
                    "description": ("scenario", [s.description for s in self.scenarios.scenarios])},
            attrs={"histogram_bins": N_BINS},
        )
