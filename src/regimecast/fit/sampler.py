"""Sampling: NUTS through nutpie (default; the model's log density compiled with numba) or
NumPyro (JAX)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import arviz as az
import numpy as np
import pymc as pm

from regimecast.config.defaults import SAMPLER, check_seed

BACKENDS = ("numpyro", "nutpie")
INITS = ("map", "jitter", "warm")
MASS_MATRICES = ("diag", "low_rank")


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings; ``seed`` is required (no hidden randomness)."""

    seed: int
    backend: str = SAMPLER["backend"]
    chains: int = SAMPLER["chains"]
    draws: int = SAMPLER["draws"]
    tune: int = SAMPLER["tune"]
    target_accept: float = 0.85
    init: str = SAMPLER["init"]  # "map": every chain starts at the best of map_restarts local modes
                                 # "jitter": PyMC's initial point with a U(-1, 1) jitter per chain
                                 # "warm": every chain starts at a given point (a parent run's)
    map_restarts: int = 16       # with 4, simulated panels started chains at a mode 29 nats below
                                 # the truth's and the 90% intervals covered 0.74
                                 # (benchmarks/RESULTS.md, "Parameter recovery")
    map_maxiter: int = 3000
    map_anneal: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
                                 # likelihood weights of each restart's path: L-BFGS on prior +
                                 # weight * likelihood, each stage from the last one's optimum. From
                                 # the prior's mode the path follows the labelling the priors set;
                                 # plain restarts (1.0,) landed 29 nats below a simulated truth's mode
                                 # (benchmarks/RESULTS.md, "Annealed MAP start")
    mass_matrix: str = SAMPLER["mass_matrix"]  # nutpie: "low_rank" adapts diagonal + low-rank (nutpie's
                                   # low_rank_modified_mass_matrix), "diag" a diagonal only

    def __post_init__(self) -> None:
        check_seed(self.seed)           # 0..2^63-1: refused here, not as an OverflowError after sampling
        if self.backend not in BACKENDS:
            raise ValueError(f"sampler backend {self.backend!r}: must be one of {', '.join(BACKENDS)}")
        if self.mass_matrix not in MASS_MATRICES:
            raise ValueError(f"mass_matrix {self.mass_matrix!r}: must be one of {', '.join(MASS_MATRICES)}")
        if self.init not in INITS:
            raise ValueError(f"sampler init {self.init!r}: must be one of {', '.join(INITS)}")
        for k in ("chains", "draws", "tune", "map_restarts", "map_maxiter"):
            if getattr(self, k) < 1:
                raise ValueError(f"sampler setting {k} = {getattr(self, k)}: must be at least 1")
        a = tuple(float(x) for x in self.map_anneal)    # a manifest's JSON list back to a tuple
        object.__setattr__(self, "map_anneal", a)
        if not a or a[-1] != 1.0 or any(not 0 < x <= 1 for x in a) or list(a) != sorted(set(a)):
            raise ValueError(f"map_anneal {a}: must be increasing weights in (0, 1] ending at 1.0")
        if not 0 < self.target_accept < 1:
            raise ValueError(f"target_accept = {self.target_accept}: must be in (0, 1)")

    def as_dict(self) -> dict:
        """JSON-native (the manifest's form: tuples as lists)."""
        return asdict(self) | {"map_anneal": list(self.map_anneal)}


def free_names(model: pm.Model) -> list[str]:
    return [rv.name for rv in model.free_RVs]


def sample(model: pm.Model, settings: SamplerSettings, *, progressbar: bool = True, start: dict | None = None
           ) -> tuple[az.InferenceData, float, dict]:
    """Posterior draws of the model's free variables (``posterior`` and ``sample_stats``),
    the wall time in seconds (initialisation and compilation included) and a report of the
    initialisation (see :func:`map_start`). ``start`` (required with ``init="warm"``, refused
    otherwise): initial values of the free variables, keyed by name, constrained scale."""
    t0 = time.perf_counter()
    init_report: dict = {"method": settings.init}
    if (settings.init == "warm") != (start is not None):
        raise ValueError(f"sampler init {settings.init!r}: a start point is needed with 'warm' and only with it")
    if settings.init == "map":
        start, init_report = map_start(model, settings.seed, settings.map_restarts, settings.map_maxiter,
                                       settings.map_anneal)
    if settings.backend == "numpyro":
        idata = pm.sample(
            draws=settings.draws, tune=settings.tune, chains=settings.chains, model=model,
            nuts_sampler="numpyro", random_seed=settings.seed, target_accept=settings.target_accept,
            progressbar=progressbar, compute_convergence_checks=False, initvals=start,
            nuts_sampler_kwargs={"chain_method": "parallel"}, idata_kwargs={"log_likelihood": False},
        )
    else:
        import nutpie

        kw = {} if start is None else {"initial_points": start, "jitter_rvs": set()}
        if nutpie_backend(model) == "jax":
            kw |= {"backend": "jax", "gradient_backend": "jax"}
        else:
            kw |= {"backend": "numba"}
        compiled = nutpie.compile_pymc_model(model, **kw)
        idata = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune, chains=settings.chains,
                              seed=settings.seed, target_accept=settings.target_accept,
                              progress_bar=progressbar, save_warmup=False,
                              low_rank_modified_mass_matrix=settings.mass_matrix == "low_rank")
    return idata, time.perf_counter() - t0, init_report


def nutpie_backend(model: pm.Model) -> str:
    """"jax" where the log density holds a ``wrap_jax`` term (the leave-one-out mixture
    target), else "numba": the likelihood's :class:`regimecast.model.potential_op.PotentialOp` and
    PyMC's priors compile to one numba function, with no Python or XLA in the sampler's loop."""
    from pytensor.graph.traversal import ancestors
    from pytensor.link.jax.ops import JAXOp

    return "jax" if any(v.owner is not None and isinstance(v.owner.op, JAXOp) for v in ancestors(model.potentials)) \
        else "numba"


def tempered_logp(model: pm.Model):
    """``f(x, weight) -> (log density, gradient)`` on the sampler's flat unconstrained vector
    ``x`` (PyMC's raveling of the value variables, Jacobian included), with the likelihood
    terms (observed variables and potentials) multiplied by ``weight``, and PyMC's initial
    point raveled (``RaveledVars``: ``.data``, shape (n_free,), and its layout). Compiled once
    (numba, or JAX for a ``wrap_jax`` target); ``weight`` is a shared variable, so changing it
    does not recompile."""
    import pytensor
    import pytensor.tensor as pt
    from pymc.blocking import DictToArrayBijection
    from pymc.pytensorf import join_nonshared_inputs

    ip = model.initial_point()
    weight = pytensor.shared(np.float64(1.0), name="likelihood_weight")
    lik_terms = model.observed_RVs + model.potentials
    total = model.logp(vars=model.free_RVs)
    if lik_terms:
        total = total + weight * model.logp(vars=lik_terms)
    grad = pt.concatenate([pt.flatten(g) for g in pytensor.grad(total, model.value_vars)])
    [total_x, grad_x], flat = join_nonshared_inputs(ip, [total, grad], model.value_vars)
    compiled = pytensor.function([flat], [total_x, grad_x], mode="JAX" if nutpie_backend(model) == "jax" else "NUMBA")
    x0 = DictToArrayBijection.map(ip)

    def f(x: np.ndarray, w: float) -> tuple[float, np.ndarray]:
        weight.set_value(np.float64(w))
        v, g = compiled(x)
        return float(v), np.asarray(g)

    return f, x0


def map_start(model: pm.Model, seed: int, restarts: int, maxiter: int, anneal: tuple[float, ...] = (1.0,)
              ) -> tuple[dict[str, np.ndarray], dict]:
    """The highest of ``restarts`` local modes of the log density on the sampler's
    (unconstrained) scale, by L-BFGS (SciPy) on the JAX-compiled log density and gradient.
    Restart 0 starts at PyMC's initial point, the others at it plus a U(-1, 1) jitter of every
    coordinate (the jitter PyMC and nutpie use). Each restart follows ``anneal``: it maximises
    prior + w * likelihood for each weight w in turn (the last is 1), each from the previous
    optimum, so that a path from the prior's mode keeps the priors' labelling of the states
    (deterministic annealing; Ueda and Nakano 1998, Neural Networks 11(2)). Returns the mode as
    initial values of the free random variables (constrained scale, keyed by name) and a
    report: every restart's log density, iterations and convergence flag, and how many
    distinct modes were found (log densities more than ``MODE_TOL`` apart) and how many
    restarts reached the best one (``best_mode_hits``: 1 means another seed may well start
    elsewhere), so a multimodal posterior is seen, not hidden; and how many coordinates the
    likelihood does not reach were jittered off their prior mode (``jittered_flat_coordinates``)."""
    from pymc.blocking import DictToArrayBijection, RaveledVars
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    f, x0 = tempered_logp(model)

    def neg(x, w):
        v, g = f(x, w)
        return (-v, -g) if np.isfinite(v) and np.isfinite(g).all() else (1e300, np.zeros_like(x))

    runs = []
    for r in range(restarts):
        x = x0.data + (0.0 if r == 0 else rng.uniform(-1.0, 1.0, x0.data.shape))
        nit, ok = 0, True
        for w in anneal:
            res = minimize(neg, x, args=(w,), jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
            x, nit, ok = res.x, nit + int(res.nit), bool(res.success)
        runs.append((-float(res.fun), x, nit, ok))
    runs.sort(key=lambda r: -r[0])
    # A coordinate the likelihood does not reach (e.g. the effect of a covariate that is 0 over
    # the whole sample: its likelihood gradient is exactly 0) sits exactly at its prior mode
    # from restart 0, where its gradient is exactly 0 too. nutpie refuses such a start ("bad
    # initial gradient"), so those coordinates get the U(-1, 1) jitter PyMC would have given.
    best = runs[0][1].copy()
    g_full, g_prior = f(best, 1.0)[1], f(best, 0.0)[1]
    still = (g_full == 0) & (g_full == g_prior)
    best[still] += rng.uniform(-1.0, 1.0, int(still.sum()))
    point = DictToArrayBijection.rmap(RaveledVars(best, x0.point_map_info))
    outs = model.unobserved_value_vars                       # untransformed values from the value variables
    values = dict(zip([o.name for o in outs], model.compile_fn(outs, inputs=model.value_vars,
                                                               on_unused_input="ignore")(point)))
    lps = [r[0] for r in runs]
    report = {"method": "map", "restarts": restarts, "anneal": list(anneal), "logp": [round(v, 2) for v in lps],
              "iterations": [r[2] for r in runs], "converged": [r[3] for r in runs],
              "distinct_modes": _count_modes(lps),
              "best_mode_hits": sum(1 for lp in lps if lps[0] - lp <= MODE_TOL),
              "jittered_flat_coordinates": int(still.sum())}
    return {rv.name: np.asarray(values[rv.name]) for rv in model.free_RVs}, report


MODE_TOL = 1.0   # log-density units: optima closer than this count as the same mode


def _count_modes(lps: list[float]) -> int:
    modes: list[float] = []
    for lp in sorted(lps, reverse=True):
        if np.isfinite(lp) and all(abs(lp - m) > MODE_TOL for m in modes):
            modes.append(lp)
    return len(modes)
