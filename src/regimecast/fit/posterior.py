"""Post-sampling quantities from the posterior draws (JAX, vmapped over draws in chunks):
natural-unit parameters, each month's one-step-ahead and leave-one-out log predictive
densities, and the filtered and smoothed probabilities of every factor's states."""

from __future__ import annotations

import arviz as az
import jax.numpy as jnp
import numpy as np
import xarray as xr

from regimecast.config.model_file import ModelConfig
from regimecast.model.filter import map_draws, state_probabilities
from regimecast.model.kernels import Inputs, Structure, assemble, corr_cholesky, other_combinations

# Variables of the ``log_likelihood`` group, per month: ``y`` log p(y_t | every other month,
# theta), the term of exact PSIS-LOO (ArviZ ``loo`` reads it); ``y_one_step`` log p(y_t | the
# months before t, theta), which sums to the log likelihood (leave-future-out, updates).
LOO_VAR = "y"
ONE_STEP_VAR = "y_one_step"
CHUNK = 250  # draws per vmapped call: bounds memory at ~CHUNK x (T, P, O) floats per output


def flatten_draws(da: xr.DataArray) -> np.ndarray:
    """``da`` (chain, draw, ...) -> (chain * draw, ...) values, chain-major: the one flattening of
    posterior draws (sampler variables, review tables, forecasts' draws)."""
    da = da.transpose("chain", "draw", ...)
    return da.values.reshape((da.sizes["chain"] * da.sizes["draw"],) + da.shape[2:])


def posterior_draws(posterior: xr.Dataset, names: list[str], max_draws: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Sampler variables of at most ``max_draws`` evenly spaced draws (chain-major flattening):
    ``({name: (S, ...)}, flat draw indices (S,))``."""
    n = posterior.sizes["chain"] * posterior.sizes["draw"]
    idx = np.unique(np.linspace(0, n - 1, min(max_draws, n)).round().astype(int))
    flat = {k: flatten_draws(posterior[k])[idx] for k in names}
    return flat, idx


def _per_draw(draw: dict, st: Structure, data: Inputs, onehots: dict[str, np.ndarray]) -> dict:
    p = assemble(draw, st)
    terms = state_probabilities(p, data, st.family)
    filt, smooth = terms.filtered, terms.smoothed
    out = {"log_predictive": terms.one_step, "log_loo": terms.loo, "mean": p.mean,
           "sd": jnp.exp(st.loc["log_sd"] + st.scale["log_sd"] * draw["log_sd_z"]), "nu": p.nu, "switch_logit": p.switch}
    L = corr_cholesky(draw)
    out["correlation"] = L @ jnp.swapaxes(L, -1, -2)
    for name in ("covariate_effect", "factor_effect", "mean_effect", "log_scale"):
        if name in st.loc:
            out[name] = st.loc[name] + st.scale[name] * draw[f"{name}_z"]
    for f, (axis, oh) in onehots.items():
        for kind, arr in (("filtered", filt), ("smoothed", smooth)):
            out[f"{kind}_{f}"] = (arr.sum(axis=2) if axis == "policy" else arr.sum(axis=1) @ oh).astype(jnp.float32)
    return out


def add_posterior_quantities(idata: az.InferenceData, config: ModelConfig, st: Structure, data: Inputs,
                             dates) -> az.InferenceData:
    """Add natural-unit parameters and state probabilities to ``posterior`` and the per-month
    log densities to ``log_likelihood`` (``LOO_VAR``, ``ONE_STEP_VAR``; dims chain, draw, date)."""
    post = idata.posterior
    names = [v for v in post.data_vars]
    n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
    flat = {k: flatten_draws(post[k]) for k in names}
    combos = other_combinations(st.other_sizes)
    onehots = {st.policy: ("policy", None)}
    for i, (f, n) in enumerate(zip(st.others, st.other_sizes)):
        onehots[f] = ("other", np.eye(n)[combos[:, i]])
    res = {k: v.reshape((n_chain, n_draw) + v.shape[1:])
           for k, v in map_draws(lambda d: _per_draw(d, st, data, onehots), flat, CHUNK).items()}
    P, Pf = st.policy, f"{st.policy}_from"
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "date": dates,
              "series": list(config.observed), "series_": list(config.observed), Pf: list(st.policy_states)}
    for f in config.factors:
        coords[f.name] = list(f.states)
    for d in ("covariate", "factor_state", "effect", "effect_state", "scale_state"):
        if d in post.coords:
            coords[d] = post[d].values
    dims = {"log_predictive": ("date",), "log_loo": ("date",), "mean": (P, "series"), "sd": (P, "series"),
            "nu": (), "switch_logit": (Pf, P), "correlation": (P, "series", "series_"),
            "covariate_effect": (P, "covariate"), "factor_effect": ("factor_state", "effect", P),
            "mean_effect": ("effect_state", "series"), "log_scale": ("scale_state", "series")}
    for f in config.factors:
        dims[f"filtered_{f.name}"] = dims[f"smoothed_{f.name}"] = ("date", f.name)
    new = {k: xr.DataArray(v, dims=("chain", "draw") + dims[k],
                           coords={d: coords[d] for d in ("chain", "draw") + dims[k]}) for k, v in res.items()}
    loglik = {LOO_VAR: new.pop("log_loo"), ONE_STEP_VAR: new.pop("log_predictive")}
    idata.posterior = xr.merge([post, xr.Dataset(new)], compat="override", join="outer")
    idata.add_groups(log_likelihood=xr.Dataset(loglik))
    return idata
