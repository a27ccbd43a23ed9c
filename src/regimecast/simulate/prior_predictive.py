"""Prior sets as narratives: what a prior file changes relative to the file it extends, and
what it implies for the forecast before any fit (the prior predictive).

The prior predictive forecasts exactly as a posterior forecast does
(:func:`regimecast.simulate.forecast.run_forecast`, the same simulator and summaries), with prior
draws (:func:`regimecast.model.prior_draws.prior_draws`) in place of posterior draws. The data enter
only through *where we are now*, never through the parameters:

- the origin is the last month of the data panel; the starting levels, the AR lags and the
  transition covariates (drawdown window, VIX, inflation, SOFR - IORB) are the observed ones;
- the joint state at the origin is the forward filter's distribution at that month under each
  prior draw (:func:`regimecast.model.filter.last_filtered`), as for a posterior draw. A prior draw
  whose state means do not match the recent data puts the origin where its own states match
  best, which is part of what that prior implies.

So the probabilities answer: "starting from today's observed markets, what does this prior set
alone say about the policy path and the scenarios?"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from regimecast.config.model_file import ModelConfig
from regimecast.data.panel import Panel
from regimecast.model.design import build_design
from regimecast.simulate.forecast import ForecastSettings, drawdown_window, forward_spec, origin, run_forecast
from regimecast.model.spec import inputs, structure, variable_spec
from regimecast.model.prior_draws import prior_draws
from regimecast.config.prior_blocks import PriorArray
from regimecast.config.priors import PriorSet, load_priors
from regimecast.scenarios.sets import ScenarioSet
from regimecast.probability import summarise_probabilities

ORIGIN_NOTE = ("prior predictive: parameters drawn from the prior only; the data enter only through the "
               "starting point: observed levels and covariates at {origin}, and the joint state at {origin} "
               "filtered from the data under each prior draw")


@dataclass(frozen=True)
class PriorChange:
    """One parameter a prior set sets differently from its parent. ``label`` is the block's
    key: ``"qe.drawdown"``, ``"cut->cut_qt"`` (switch logits and Dirichlet transition rows),
    ``"crisis"`` (initial states)."""

    block: str
    label: str
    param: str
    parent: float
    value: float
    index: tuple[int, ...]       # position in the block's array (``PriorSet.arrays[block]``)


@dataclass(frozen=True)
class PriorCheck:
    """A validated prior file, the file it extends (None for a root file) and what differs."""

    priors: PriorSet
    parent: PriorSet | None
    changes: tuple[PriorChange, ...]

    @property
    def changed_labels(self) -> set[tuple[str, str]]:
        """``{(block, label)}`` of every changed parameter."""
        return {(c.block, c.label) for c in self.changes}


def check_prior_file(path: str | Path, config: ModelConfig) -> PriorCheck:
    """Validate ``path`` (and its ``extends`` chain) against the model; list what it changes
    relative to its parent. Raises :class:`regimecast.errors.ConfigError` naming file, key, value."""
    ps = load_priors(path, config)
    if len(ps.chain) < 2:
        return PriorCheck(ps, None, ())
    parent = load_priors(Path(path).parent / ps.chain[-2], config)
    return PriorCheck(ps, parent, tuple(prior_changes(parent, ps)))


def prior_changes(parent: PriorSet, child: PriorSet) -> list[PriorChange]:
    """Every (block, label, parameter) whose resolved value differs, in block order."""
    out = []
    for block, arr in child.arrays.items():
        base = parent.arrays[block]
        for param, value in arr.params.items():
            for idx in map(tuple, np.argwhere(value != base.params[param])):
                out.append(PriorChange(block, _label(arr, idx), param, float(base.params[param][idx]),
                                       float(value[idx]), tuple(int(i) for i in idx)))
    return out


def _label(arr: PriorArray, idx: tuple[int, ...]) -> str:
    names = [c[i] for c, i in zip(arr.coords, idx)]
    if arr.dims[:2] == ("from", "to"):
        return "->".join(names)
    return ".".join(names)


def prior_predictive(config: ModelConfig, priors: PriorSet, panel: Panel, scenario_set: ScenarioSet,
                     settings: ForecastSettings, *, progress=None) -> xr.Dataset:
    """Forecast summary (see :class:`regimecast.simulate.summaries.SummaryAccumulator`) from
    ``settings.max_draws`` prior draws x ``settings.paths`` paths x ``settings.horizon`` months
    from the last month of ``panel`` (see the module docstring for what the data decide).

    Randomness: ``settings.seed`` is split (``numpy.random.SeedSequence.spawn``) into the seed of
    the parameter draws and the seed of the simulation; both are stored in ``attrs``. The same
    seed gives the same numbers, and two prior sets share their random numbers block by block.
    """
    param_seq, sim_seq = np.random.SeedSequence(settings.seed).spawn(2)
    sim_seed = int(sim_seq.generate_state(1)[0])
    st = structure(config, priors)
    draws = prior_draws(np.random.default_rng(param_seq), variable_spec(config, priors, st), settings.max_draws)
    design = build_design(config, panel)
    spec = forward_spec(config, design, panel)
    org = origin(config, design, panel, drawdown_window(config))
    sim = ForecastSettings(seed=sim_seed, horizon=settings.horizon, paths=settings.paths,
                           max_draws=settings.max_draws, chunk=settings.chunk, path_chunk=settings.path_chunk)
    # float64 for the forward filter over the whole sample, as in the likelihood (model.build_model);
    # the simulator itself runs in float32 whatever the setting.
    with jax.enable_x64(True):
        _, summary = run_forecast(config, st, design, org, draws, np.arange(settings.max_draws), inputs(design),
                                  spec, sim, scenario_set, store=False, progress=progress)
    summary.attrs.update({"kind": "prior_predictive", "policy_factor": st.policy, "prior_set": priors.name,
                          "prior_chain": " -> ".join(priors.chain), "prior_sha256": priors.sha256,
                          "seed": settings.seed, "simulation_seed": sim_seed,
                          "note": ORIGIN_NOTE.format(origin=summary.attrs["origin_date"])})
    return summary


@dataclass(frozen=True)
class PredictiveTables:
    """What ``regimecast priors show`` prints: ``policy`` {horizon: {state: P}} (mean over
    draws) and ``scenarios`` {name: (horizon, summary)} with summary keys mean, lo, hi, mcse
    (:func:`regimecast.scenarios.sets.summarise_probabilities`)."""

    policy: dict[int, dict[str, float]]
    scenarios: dict[str, tuple[int, dict[str, float]]]


def predictive_tables(summary: xr.Dataset, policy_factor: str) -> PredictiveTables:
    pol = summary["policy_prob"].mean("draw")
    states = [str(s) for s in summary[policy_factor].values]
    policy = {int(h): {s: float(pol.sel(policy_horizon=h).values[i]) for i, s in enumerate(states)}
              for h in summary["policy_horizon"].values}
    scen = {str(n): (int(h), summarise_probabilities(summary["scenario_prob"].sel(scenario=n).values))
            for n, h in zip(summary["scenario"].values, summary["scenario_horizon"].values)}
    return PredictiveTables(policy, scen)
