"""The review of a fitted run behind ``regimecast diagnose``: convergence per parameter, the
sampler's own signals, prior-to-posterior contraction and prior-data conflict, posterior
predictive checks (:mod:`regimecast.checks.ppc`) and LOO-PIT (:mod:`regimecast.checks.loo_pit`), and the
verdict ``pass`` / ``warn`` / ``fail`` against ``models/diagnostics.toml`` (in the words of
:mod:`regimecast.checks.verdict`; contraction and prior-data conflict:
:mod:`regimecast.checks.prior_data`).

Computation only: figures and HTML are :mod:`regimecast.report.diagnostics`. The review reads
saved results (the run's InferenceData, the model rebuilt from its manifest) and never samples
the fit's posterior again; the one sampling it may do is :func:`robust_loo_review`'s, of a
different target (the mixture of leave-one-out posteriors, :func:`regimecast.checks.robust_loo.
sample_mixture`) where some month's Pareto k is above the warn level.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import arviz as az
import jax
import numpy as np
import pandas as pd

from regimecast.config.thresholds import Thresholds, check_thresholds
from regimecast.fit.sampler import SamplerSettings
from regimecast.fit.posterior import flatten_draws, posterior_draws
from regimecast.checks.loo_pit import LooPit, loo_pit, pit_draws
from regimecast.model.spec import inputs, structure, variable_spec
from regimecast.checks.ppc import PPC, posterior_predictive
from regimecast.checks.prior_data import conflict_z, contraction_columns, prior_moments
from regimecast.checks.robust_loo import sample_mixture, with_mixture
from regimecast.checks.verdict import Finding, Verdict, list_names, sampler_failures, verdict_of

# Sample-stats names of tree-depth saturation: nutpie, PyMC/NumPyro-converted; otherwise the
# depth is compared with NumPyro's default maximum (NUTS(max_tree_depth=10)).
SATURATION_STATS = ("maxdepth_reached", "reached_max_treedepth")
NUMPYRO_MAX_TREE_DEPTH = 10


@dataclass(frozen=True)
class DiagnoseSettings:
    """``seed`` (required): the replicated samples and the mixture fit. ``ppc_draws`` posterior
    draws (evenly thinned) x ``ppc_paths`` replicated samples each; ``pit_draws`` draws for
    LOO-PIT; ``worst`` parameters in the trace and rank plots. ``mixture``: where some month's
    Pareto k exceeds the warn level, sample the leave-one-out mixture
    (:mod:`regimecast.checks.robust_loo`), ``mixture_chains`` x ``mixture_draws`` after
    ``mixture_tune`` tuning steps, warm-started."""

    seed: int
    ppc_draws: int = 500
    ppc_paths: int = 10
    pit_draws: int = 1000
    worst: int = 4
    mixture: bool = True
    mixture_chains: int = 2
    mixture_draws: int = 1000
    mixture_tune: int = 500

    def __post_init__(self) -> None:
        for k in ("ppc_draws", "ppc_paths", "pit_draws", "worst", "mixture_chains", "mixture_draws", "mixture_tune"):
            if getattr(self, k) < 1:
                raise ValueError(f"diagnose setting {k} = {getattr(self, k)}: must be at least 1")


@dataclass(frozen=True)
class SamplerSummary:
    """Sampler signals: divergences per chain, share of transitions at the maximum tree depth
    (NaN if the sampler did not record it), E-BFMI per chain (NaN without energy)."""

    n_chains: int
    n_draws: int
    divergences: np.ndarray
    treedepth_share: float
    bfmi: np.ndarray


@dataclass(frozen=True)
class Review:
    """``parameters``: one row per scalar parameter (label ``name[coord, ...]`` as ArviZ's):
    ``var``, ``mean``, ``sd``, ``mcse_mean``, ``mcse_sd``, ``ess_bulk``, ``ess_tail``,
    ``r_hat``, and when the prior is known ``prior_mean``, ``prior_sd``, ``contraction``,
    ``prior_z``; with divergences ``divergence_shift``. ``ppc`` and ``loo`` may be absent."""

    run_id: str
    parameters: pd.DataFrame
    sampler: SamplerSummary
    ppc: PPC | None = None
    loo: LooPit | None = None


# --- per-parameter tables -----------------------------------------------------------------

def _labels(post, names: list[str]) -> list[str]:
    out = []
    for n in names:
        da = post[n]
        dims = da.dims[2:]
        if not dims:
            out.append(n)
            continue
        for idx in np.ndindex(*da.shape[2:]):
            out.append(f"{n}[{', '.join(str(da[d].values[i]) for d, i in zip(dims, idx))}]")
    return out


def flat_draws(post, names: list[str]) -> np.ndarray:
    """(chain, draw, K) every scalar of ``names``, in the order of :func:`parameter_table`."""
    C, D = post.sizes["chain"], post.sizes["draw"]
    return np.concatenate([flatten_draws(post[n]).reshape(C, D, -1) for n in names], axis=-1)


def parameter_table(idata: az.InferenceData, names: list[str]) -> pd.DataFrame:
    """Posterior mean and sd, MCSE of mean and sd, bulk and tail ESS and rank-normalised
    R-hat (``az.summary``, unrounded) of every scalar of the variables ``names``."""
    post = idata.posterior[names].transpose("chain", "draw", ...)
    diag = az.summary(post, kind="diagnostics", round_to="none")
    labels = _labels(post, names)
    if list(diag.index) != labels:
        raise ValueError("az.summary's parameter order differs from the flattened posterior's")
    x = flat_draws(post, names)
    x = x.reshape(-1, x.shape[-1])
    var = np.concatenate([[n] * int(np.prod(post[n].shape[2:])) for n in names])
    front = pd.DataFrame({"var": var, "mean": x.mean(0), "sd": x.std(0, ddof=1)}, index=diag.index)
    return pd.concat([front, diag[["mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"]]], axis=1) \
        .rename_axis("parameter")


def sampler_summary(idata: az.InferenceData) -> SamplerSummary:
    ss = idata.sample_stats
    C, D = ss.sizes["chain"], ss.sizes["draw"]
    div = ss["diverging"].values.astype(bool).sum(-1) if "diverging" in ss else np.zeros(C, int)
    sat = next((ss[k].values.astype(bool) for k in SATURATION_STATS if k in ss), None)
    if sat is None and "tree_depth" in ss:
        sat = ss["tree_depth"].values >= NUMPYRO_MAX_TREE_DEPTH
    bfmi = np.asarray(az.bfmi(idata)) if "energy" in ss else np.full(C, np.nan)
    return SamplerSummary(C, D, div, float(sat.mean()) if sat is not None else float("nan"), bfmi)


def divergence_shift(idata: az.InferenceData, names: list[str]) -> np.ndarray | None:
    """Where divergences sit: per scalar, (mean over divergent draws - mean over the others) /
    posterior sd. Large |shift|: the divergences concentrate in that direction (a funnel's
    neck, a boundary). None without both divergent and non-divergent draws."""
    if "diverging" not in idata.sample_stats:
        return None
    div = idata.sample_stats["diverging"].transpose("chain", "draw").values.astype(bool).ravel()
    if div.all() or not div.any():
        return None
    x = flat_draws(idata.posterior, names)
    x = x.reshape(-1, x.shape[-1])
    sd = x.std(0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x[div].mean(0) - x[~div].mean(0)) / sd


# --- verdict ------------------------------------------------------------------------------

def ppc_cutoff(alpha: float, m: int) -> float:
    """Per-statistic two-sided cutoff of ``m`` posterior predictive p-values at family-wise
    level ``alpha`` (Bonferroni): a statistic is extreme when p < cutoff or p > 1 - cutoff."""
    return alpha / (2 * m) if m else 0.0


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def assess(review: Review, th: Thresholds) -> Verdict:
    """The verdict: ``fail`` if a fail level is violated (R-hat, bulk or tail ESS, divergences,
    BFMI, tree-depth saturation, prior-data conflict), else ``warn`` if a warn level is
    (saturation, prior-data conflict, Pareto k, uninformed parameters, extreme posterior
    predictive p-values, LOO-PIT calibration), else ``pass``. A NaN diagnostic fails its check."""
    check_thresholds(th)
    w, p, s = th.warn, review.parameters, review.sampler
    out: list[Finding] = []

    def add(level, check, message):
        out.append(Finding(level, check, message))

    along = None
    if "divergence_shift" in p:
        along = p["divergence_shift"].abs().sort_values(ascending=False).index
    out += sampler_failures(p, s.divergences, s.bfmi, s.n_draws, th, along)
    sat = s.treedepth_share
    if np.isfinite(sat) and sat > th.max_treedepth_share:
        add("fail", "tree depth",
            f"{sat:.1%} of transitions hit the maximum tree depth (> {th.max_treedepth_share:.0%})")
    elif np.isfinite(sat) and sat > w.treedepth_share:
        add("warn", "tree depth", f"{sat:.1%} of transitions hit the maximum tree depth")
    if "prior_z" in p:
        z = p["prior_z"].abs()
        z = z[np.isfinite(z)].sort_values(ascending=False)
        for level, alpha in (("fail", th.prior_conflict_alpha), ("warn", w.prior_conflict_alpha)):
            lim = conflict_z(alpha, len(z))
            if (z > lim).any():
                add(level, "prior-data conflict",
                    f"{_count(int((z > lim).sum()), 'posterior mean lies', 'posterior means lie')} beyond "
                    f"{lim:.1f} prior sd from the prior mean "
                    f"(max {z.iloc[0]:.1f}: {list_names(z.index[z > lim])}); the prior contradicts the data")
                break
        c = p["contraction"]
        un = c[c < w.contraction]
        if len(un) > w.uninformed_share * c.notna().sum():
            add("warn", "uninformed parameters", f"{len(un)} of {c.notna().sum()} parameters have posterior "
                                                 f"contraction below {w.contraction} (the prior dominates)")
    if review.loo is not None:
        k = review.loo.pareto_k
        exact = review.loo.exact if review.loo.exact is not None else pd.Series(False, index=k.index)
        hi = k[(k > w.pareto_k) & ~exact]
        if len(hi) > w.pareto_k_share * len(k):
            fixed = f"; {int(exact.sum())} more estimated by mixture sampling" if exact.any() else ""
            add("warn", "Pareto k", f"{len(hi)} of {len(k)} months have k > {w.pareto_k} and no reliable "
                                    f"mixture estimate (LOO unreliable there: "
                                    f"{list_names([f'{d:%Y-%m}' for d in hi.sort_values(ascending=False).index])}"
                                    f"{fixed})")
        ks = review.loo.ks_pvalue
        bad = ks[ks < w.loo_pit_p]
        if len(bad):
            add("warn", "LOO-PIT", f"leave-one-out predictive distributions miscalibrated for {list_names(bad.index, 10)} "
                                   f"(KS p < {w.loo_pit_p})")
    if review.ppc is not None:
        t = review.ppc.table
        m = int(t["p_value"].notna().sum())
        cut = ppc_cutoff(w.ppc_alpha, m)
        ext = t[(t["p_value"] < cut) | (t["p_value"] > 1 - cut)]
        if len(ext):
            labels = [f"{r.statistic} {r.subject} (p={r.p_value:.4f})" for r in ext.itertuples()]
            add("warn", "posterior predictive", f"{len(ext)} of {m} statistics extreme (p outside [{cut:.2g}, "
                                                f"1 - {cut:.2g}], family-wise {w.ppc_alpha}): {list_names(labels)}")
    return verdict_of(out)


# --- the whole review ---------------------------------------------------------------------

def review_run(run, rm, settings: DiagnoseSettings, progress=None) -> Review:
    """Review the saved ``run`` (:class:`regimecast.store.runs.Run`) of the model ``rm``
    (:class:`regimecast.workflows.engine.RegimeModel`, rebuilt from the run's manifest)."""
    say = progress or (lambda _msg: None)
    st = structure(rm.config, rm.priors)
    spec = variable_spec(rm.config, rm.priors, st)
    names = list(spec)
    idata = run.idata
    say("convergence per parameter")
    table = parameter_table(idata, names)
    table = contraction_columns(table, names, prior_moments(spec))
    shift = divergence_shift(idata, names)
    if shift is not None:
        table = table.assign(divergence_shift=shift)
    sampler = sampler_summary(idata)
    data = inputs(rm.design)
    say("posterior predictive replications")
    draws, _ = posterior_draws(idata.posterior, names, settings.ppc_draws)
    smoothed = idata.posterior[f"smoothed_{st.policy}"].mean(("chain", "draw"))
    modal = smoothed.transpose("date", st.policy).values.argmax(-1)
    ppc = posterior_predictive(jax.random.key(settings.seed), draws, st, rm.config, rm.design, rm.panel, modal,
                               settings.ppc_paths)
    loo = None
    if "log_likelihood" in idata.groups():
        say("LOO-PIT")
        draws, idx = posterior_draws(idata.posterior, names, settings.pit_draws)
        loo = loo_pit(idata, pit_draws(draws, st, data), idx, list(rm.config.observed))
    return Review(run.run_id, table, sampler, ppc, loo)


def robust_loo_review(review: Review, run, rm, settings: DiagnoseSettings, th: Thresholds,
                      progress=None) -> Review:
    """``review`` with the leave-one-out mixture sampled (:mod:`regimecast.checks.robust_loo`) when
    some month's Pareto k exceeds ``th``'s warn level: the run's sampler settings but
    ``mixture_chains`` x ``mixture_draws`` after ``mixture_tune``, warm-started, seed
    ``settings.seed``."""
    n_high = 0 if review.loo is None or th.warn is None else int((review.loo.pareto_k > th.warn.pareto_k).sum())
    if not (settings.mixture and n_high):
        return review
    if progress:
        progress(f"leave-one-out mixture sampling (months with Pareto k > {th.warn.pareto_k}: {n_high})")
    sampler = SamplerSettings(**(run.manifest["sampler"] | {
        "seed": settings.seed, "chains": settings.mixture_chains, "draws": settings.mixture_draws,
        "tune": settings.mixture_tune, "init": "warm"}))
    mix = sample_mixture(rm, run.idata, sampler)
    loo = with_mixture(review.loo, mix, th.warn.pareto_k, th.max_rhat, th.min_ess_per_chain * settings.mixture_chains)
    return replace(review, loo=loo)
