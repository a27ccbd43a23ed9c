"""From a run and its forecast summary to the report's content: the machine-readable summary,
fan-chart quantiles, smoothed factor histories, prior versus posterior of the narrative
factors (AI, backlash), conditional forecasts and provenance. Pure data shaping; rendering is
:mod:`regimecast.report.forecast`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from regimecast.config.model_file import ModelConfig
from regimecast.config.thresholds import Thresholds, check_thresholds
from regimecast.data.panel import Panel
from regimecast.model.kernels import Structure
from regimecast.config.priors import PriorSet
from regimecast.report.forecast_schema import DIAGNOSTIC_KEYS, ReportContent
from regimecast.store.runs import Run
from regimecast.probability import summarise_probabilities

HISTORY_YEARS = 10          # years of monthly history shown before the fan charts
CONDITIONAL_QUANTILES = {"q05": 0.05, "q50": 0.5, "q95": 0.95}


def summary_dict(run: Run, summary: xr.Dataset, policy_factor: str) -> dict:
    """The ``summary.json`` document (schema in :class:`regimecast.report.forecast_schema.ReportContent`)."""
    scen = {}
    for name in summary["scenario"].values:
        stats = summarise_probabilities(summary["scenario_prob"].sel(scenario=name).values)
        scen[str(name)] = dict(stats, description=str(summary["description"].sel(scenario=name).values),
                               horizon_months=int(summary["scenario_horizon"].sel(scenario=name)))
    pol = summary["policy_prob"].mean("draw")
    policy = {str(int(h)): {str(s): float(pol.sel(policy_horizon=h, **{policy_factor: s}))
                            for s in pol[policy_factor].values} for h in pol["policy_horizon"].values}
    q = summary["quantiles"]
    quantiles = {str(s): {str(int(h)): {f"{float(qq):g}": float(q.sel(series=s, horizon=h, quantile=qq))
                                         for qq in q["quantile"].values} for h in q["horizon"].values}
                 for s in q["series"].values}
    diag = run.manifest["diagnostics"]
    return {"run_id": run.run_id, "data_end": run.manifest["data"]["end"],
            "horizon_months": int(summary.sizes["horizon"]), "paths_per_draw": int(summary.attrs["paths_per_draw"]),
            "posterior_draws": int(summary.sizes["draw"]), "seed": int(summary.attrs["seed"]),
            "scenarios": scen, "policy": policy, "quantiles": quantiles,
            "diagnostics": {k: diag[k] for k in DIAGNOSTIC_KEYS if k in diag}}


def factor_info(run: Run, st: Structure, priors: PriorSet, factor: str) -> dict:
    """Posterior probability of each state at the last month, and prior versus posterior mean
    and sd of every parameter that belongs to ``factor`` (its transition matrix, its mean
    and scale effects, its effect on the policy transitions)."""
    post = run.idata.posterior
    now = post[f"filtered_{factor}"].isel(date=-1).mean(("chain", "draw"))
    params = []
    a = priors.arrays[f"transition.{factor}"].params["a"]                      # (from, to) Dirichlet rows
    var = post[f"transition_{factor}"]
    states = list(var[factor].values)
    for i, fr in enumerate(states):
        a0 = a[i].sum()
        for j, to in enumerate(states):
            m = a[i, j] / a0
            sd = np.sqrt(m * (1 - m) / (a0 + 1))
            v = var.isel({f"{factor}_from": i, factor: j})
            params.append(_row(f"P({fr}->{to})", m, sd, v))
    for block, dim in (("mean_effect", "effect_state"), ("log_scale", "scale_state"), ("factor_effect", "factor_state")):
        if block not in st.loc:
            continue
        labels = list(post[dim].values)
        for r, lab in enumerate(labels):
            if not str(lab).startswith(f"{factor}."):
                continue
            loc, scale = np.broadcast_to(st.loc[block][r], st.scale[block][r].shape), st.scale[block][r]
            sub = post[block].isel({dim: r})
            rest = [d for d in sub.dims if d not in ("chain", "draw")]
            for idx in np.ndindex(*[sub.sizes[d] for d in rest]):
                label = ", ".join(str(sub[d].values[i]) for d, i in zip(rest, idx))
                params.append(_row(f"{block}[{lab}: {label}]", float(loc[idx]), float(scale[idx]),
                                   sub.isel(dict(zip(rest, idx)))))
    return {"now": {str(s): float(now.sel({factor: s})) for s in now[factor].values}, "parameters": params}


def _row(name: str, prior_mean: float, prior_sd: float, draws: xr.DataArray) -> dict:
    v = np.asarray(draws.values, float).ravel()
    return {"name": name, "prior_mean": float(prior_mean), "prior_sd": float(prior_sd),
            "post_mean": float(v.mean()), "post_sd": float(v.std(ddof=1)) if v.size > 1 else float("nan")}


def report_content(run: Run, summary: xr.Dataset, config: ModelConfig, priors: PriorSet, st: Structure,
                   panel: Panel, reproduce: str, th: Thresholds, market: dict | None = None) -> ReportContent:
    """Everything :func:`regimecast.report.forecast.write_report` needs; ``th``: the thresholds
    of ``models/diagnostics.toml`` (its ``warn.contraction`` words the factors' learning);
    ``market``: the ``market_path`` block of summary.json
    (:func:`regimecast.report.forecast_market.market_block`), no such section if None."""
    check_thresholds(th)
    assets = list(config.assets)
    end = pd.Timestamp(f"{panel.end}-01")
    lv = panel.levels.sel(series=assets)
    history = lv.sel(date=slice(end - pd.DateOffset(years=HISTORY_YEARS), end))
    history = history.drop_vars([c for c in history.coords if c not in ("date", "series")])
    fan = summary["quantiles"].sel(series=assets)
    smoothed = {f.name: run.idata.posterior[f"smoothed_{f.name}"].mean(("chain", "draw")).rename({f.name: "state"})
                for f in config.factors}
    cond = summary["conditional"]
    conditional = {}
    for name in cond["scenario"].values:
        c = cond.sel(scenario=name)
        if np.isnan(c.values).all():
            conditional[str(name)] = {}
            continue
        conditional[str(name)] = {s: {k: float(c.sel(series=s, quantile=q)) for k, q in CONDITIONAL_QUANTILES.items()}
                                  for s in assets}
    prov = {k: {"fred_id": v["fred_id"] + (f" - {v['minus']['fred_id']}" if v.get("minus") else ""),
                "file": v["file"], "sha256": v["sha256"], "first": v["first"], "last": v["last"]}
            for k, v in run.manifest["data"]["provenance"].items()}
    labels = {s.name: f"{s.label} ({s.units_raw.split('(')[0].strip()})" for s in config.series if s.name in assets}
    return ReportContent(
        summary=summary_dict(run, summary, st.policy) | ({} if market is None else {"market_path": market}),
        history=history, fan=fan, smoothed=smoothed,
        episodes=[(e.state, e.start, e.end) for e in config.history],
        factor_info={f: factor_info(run, st, priors, f) for f in st.others},
        conditional=conditional, provenance=prov, reproduce=reproduce,
        title=f"regimecast: {priors.name} priors, data to {panel.end}", policy_factor=st.policy,
        rate_series=config.rate_assets, contraction_prior_dominates=th.warn.contraction, labels=labels)

