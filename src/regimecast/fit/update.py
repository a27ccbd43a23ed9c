"""Updating a fitted run with newly published months.

The child run is a full refit on the longer sample (so its posterior is the posterior given
all the data, not an approximation), warm-started at the parent's highest-density draw and
with the parent's model file, prior set and sampler settings. Before refitting, the months
the parent saw are compared with the new data: a revision beyond the model file's tolerance
(``[update] revision_tolerance_sd``, in standard deviations of the series) is refused unless
accepted explicitly, so that a silently rewritten history cannot masquerade as news.

What moved is measured per new month: its log predictive density under the child posterior,
and the policy-state probabilities the filter predicted for it (from the month before)
against those after seeing it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.data.panel import Panel
from regimecast.errors import RunError
from regimecast.fit.posterior import posterior_draws
from regimecast.model.design import Design
from regimecast.model.filter import forward, map_draws, transitions
from regimecast.model.kernels import Inputs, Structure, assemble, loglik_matrix
from regimecast.model.spec import inputs
from regimecast.probability import summarise_probabilities

FILTER_CHUNK = 100   # posterior draws per vmapped filter call


@dataclass(frozen=True)
class Revision:
    """One observation of the parent's sample that the new data changed (model units)."""

    series: str
    month: str
    old: float
    new: float
    tolerance: float


def new_months(parent_end: str, panel: Panel) -> list[str]:
    """Months of ``panel`` after the parent's last month (YYYY-MM)."""
    dates = pd.DatetimeIndex(panel.observations["date"].values)
    return [d.strftime("%Y-%m") for d in dates if d > pd.Period(parent_end, "M").to_timestamp(how="end")]


def find_revisions(old: xr.DataArray, new: xr.DataArray, tolerance_sd: float) -> list[Revision]:
    """Observations of ``old`` (dims date, series; the parent's data in model units) that
    ``new`` changes by more than ``tolerance_sd`` standard deviations of the series (sd over
    the parent's sample), or removes. A month that was missing and is now published is new
    data, not a revision."""
    new = new.sel(series=old["series"].values).reindex(date=old["date"].values)
    sd = old.std("date", skipna=True)
    out = []
    for s in old["series"].values:
        o, n, tol = old.sel(series=s).values, new.sel(series=s).values, float(tolerance_sd * sd.sel(series=s))
        bad = (np.isfinite(o) & ~np.isfinite(n)) | (np.isfinite(o) & np.isfinite(n) & (np.abs(n - o) > tol))
        for i in np.flatnonzero(bad):
            out.append(Revision(str(s), pd.Timestamp(old["date"].values[i]).strftime("%Y-%m"), float(o[i]),
                                float(n[i]), tol))
    return out


def revision_error(revisions: list[Revision], data_dir, parent_id: str) -> RunError:
    head = "; ".join(f"{r.series} {r.month}: {r.old:.4g} -> {r.new:.4g} (tolerance {r.tolerance:.3g})"
                     for r in revisions[:5])
    more = f" and {len(revisions) - 5} more" if len(revisions) > 5 else ""
    return RunError(f"data in {data_dir} revise {len(revisions)} observation(s) that run {parent_id} was fitted on: "
                    f"{head}{more}. Pass --accept-revisions to refit on the revised history.")


def warm_start(idata, names: list[str]) -> tuple[dict[str, np.ndarray], dict]:
    """Initial values of the free variables ``names``: the parent's draw with the highest log
    density (``sample_stats.lp`` or ``logp``), else its last draw of chain 0. Returns the
    point and where it came from."""
    post, stats = idata.posterior, idata.sample_stats
    lp_name = next((n for n in ("lp", "logp") if n in stats), None)
    if lp_name is None:
        c, d = 0, post.sizes["draw"] - 1
    else:
        lp = stats[lp_name].values
        c, d = np.unravel_index(int(np.nanargmax(lp)), lp.shape)
    point = {n: np.asarray(post[n].values[c, d]) for n in names}
    return point, {"chain": int(c), "draw": int(d), "by": lp_name or "last draw"}


def filter_steps(draws: dict[str, np.ndarray], st: Structure, data: Inputs) -> dict[str, np.ndarray]:
    """Per posterior draw: the one-step log predictive density (S, T) and the policy-state
    probabilities predicted for each month from the month before (S, T, P) and filtered after
    seeing it (S, T, P)."""
    def one(draw):
        p = assemble(draw, st)
        _, logp, filt, pred = forward(p, transitions(p, data.covariates), loglik_matrix(p, data, st.family))
        return logp, pred.sum(axis=2), filt.sum(axis=2)

    lpd, pred, filt = map_draws(one, draws, FILTER_CHUNK)
    return {"log_predictive": lpd, "predicted": pred, "filtered": filt}


def month_contributions(steps: dict[str, np.ndarray], dates: pd.DatetimeIndex, months: list[str],
                        states: tuple[str, ...], observed: xr.DataArray) -> list[dict]:
    """One row per new month: its observations, its log predictive density (posterior mean
    and the percentile of that value among all earlier months' densities, so a surprise is
    visible), and the policy probabilities predicted for it and filtered after it."""
    lpd = steps["log_predictive"].mean(axis=0)
    pred, filt = steps["predicted"].mean(axis=0), steps["filtered"].mean(axis=0)
    idx = {d.strftime("%Y-%m"): i for i, d in enumerate(dates)}
    first_new = idx[months[0]]
    rows = []
    for m in months:
        i = idx[m]
        move = filt[i] - pred[i]
        rows.append({
            "month": m,
            "observed": {str(s): _num(observed.sel(series=s).values[i]) for s in observed["series"].values},
            "log_predictive": float(lpd[i]),
            "lpd_percentile": float((lpd[:first_new] < lpd[i]).mean()),
            "predicted": dict(zip(states, map(float, pred[i]))),
            "filtered": dict(zip(states, map(float, filt[i]))),
            "largest_move": {"state": states[int(np.argmax(np.abs(move)))], "change": float(move[np.argmax(np.abs(move))])},
        })
    return rows


def state_summary(filtered: xr.DataArray, month: str, factor: str, q: float = 0.05) -> dict[str, dict[str, float]]:
    """Filtered probability of each state of ``factor`` at ``month``: posterior mean and the
    central ``1 - 2q`` interval over draws. ``filtered`` dims (chain, draw, date, factor)."""
    at = filtered.sel(date=pd.Period(month, "M").to_timestamp())
    lo, hi = at.quantile([q, 1 - q], dim=("chain", "draw")).values
    mean = at.mean(("chain", "draw")).values
    return {str(s): {"mean": float(m), "lo": float(a), "hi": float(b)}
            for s, m, a, b in zip(at[factor].values, mean, lo, hi)}


def _num(x) -> float | None:
    return float(x) if np.isfinite(x) else None


def revisions_json(revisions: list[Revision]) -> list[dict]:
    return [asdict(r) for r in revisions]


def update_content(parent, child, design: Design, y: xr.DataArray, st: Structure, names: list[str], max_draws: int,
                   months: list[str], source: str, revisions: list[Revision], before: xr.DataArray,
                   after: xr.DataArray) -> dict:
    """The update report's content: the ``parent`` and ``child`` runs
    (:class:`regimecast.store.runs.Run`), the new ``months``, the warm start's ``source``, the
    ``revisions``, each scenario's probability ``before`` and ``after`` (``scenario_prob``,
    dims (draw, scenario)), the transition factor's state at the parent's end and the child's,
    and what each new month did (over the child's first ``max_draws`` evenly thinned draws of
    ``names``, those its forecast used; ``y`` the design's observations)."""
    m = parent.manifest
    draws, _ = posterior_draws(child.idata.posterior, names, max_draws)     # the forecast's draws
    steps = filter_steps(draws, st, inputs(design))
    pol = st.policy
    p_now = state_summary(parent.idata.posterior[f"filtered_{pol}"], m["data"]["end"], pol)
    c_then = state_summary(child.idata.posterior[f"filtered_{pol}"], m["data"]["end"], pol)
    c_now = state_summary(child.idata.posterior[f"filtered_{pol}"], child.manifest["data"]["end"], pol)
    return {
        "parent": {"run_id": parent.run_id, "data_end": m["data"]["end"]},
        "child": {"run_id": child.run_id, "data_end": child.manifest["data"]["end"],
                  "diagnostics": child.manifest["diagnostics"]},
        "new_months": months, "warm_start": source, "revisions": revisions_json(revisions),
        "scenarios": {str(s): {"before": summarise_probabilities(before.sel(scenario=s).values),
                               "after": summarise_probabilities(after.sel(scenario=s).values)}
                      for s in after["scenario"].values},
        "policy": {s: {"parent": p_now[s], "child_at_parent_end": c_then[s], "child": c_now[s]} for s in c_now},
        "months": month_contributions(steps, design.dates, months, tuple(st.policy_states), y),
    }
