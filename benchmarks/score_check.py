"""Simulator against likelihood: the score test at the true parameters.

If ``simulate.simulate_panel`` draws data from exactly the distribution whose density
``kernels.log_marginal`` computes, the score (gradient of the log likelihood) at the true
parameters has expectation zero. Over ``--sims`` independent simulated panels with the same
true parameters, each parameter's mean score divided by its standard error is then ~ t(sims-1).
A parameter block whose t-statistics are far from that points at a mismatch between the two.

    python benchmarks/score_check.py --sims 60 --seed 7

Parameters are drawn once from the baseline prior; covariates are the real lagged series of the
panel (held exogenous); the simplex variables (initial and homogeneous transition
probabilities) are left out (their gradient on the simplex has no zero-mean property).
Run twice: with the model's measurement floor in the likelihood (as fitted) and without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--end", default=None)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "fred"))
    a = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np
    from scipy import stats

    from regimecast.config.model_file import load_model_config
    from regimecast.data.panel import build_panel
    from regimecast.model.design import build_design, with_simulated
    from regimecast.model.filter import forward, log_marginal, transitions
    from regimecast.model.kernels import assemble, emission_logpdf
    from regimecast.model.spec import inputs, structure, variable_spec
    from regimecast.model.prior_draws import prior_draws
    from regimecast.config.priors import load_priors
    from regimecast.simulate.paths import simulate_panel

    jax.config.update("jax_enable_x64", True)
    cfg = load_model_config(ROOT / "models" / "default.toml")
    pri = load_priors(ROOT / "priors" / "baseline.toml", cfg)
    design = build_design(cfg, build_panel(cfg.series, cfg.sample, Path(a.data_dir), end=a.end))
    st = structure(cfg, pri)
    specs = variable_spec(cfg, pri, st)
    truth = {k: jnp.asarray(v[0]) for k, v in prior_draws(np.random.default_rng(a.seed), specs, 1).items()}
    free = [k for k, v in specs.items() if v.kind != "dirichlet"]
    params = assemble(truth, st)

    is_ar = jnp.asarray(design.is_ar)
    cols = np.arange(design.y.shape[1])
    covs = jnp.asarray(design.covariates)
    lag0 = jnp.asarray(np.nan_to_num(design.ar_lag[:1]))       # (1, D) pre-sample AR lag
    sim = jax.jit(lambda k: simulate_panel(k, params, covs, lag0[0], st.family)[0])
    keys = jax.random.split(jax.random.key(a.seed), a.sims)
    for floor in (True, False):
        meas_sd = design.meas_sd if floor else None

        def loglik(sub: dict, y: jnp.ndarray, meas_sd=meas_sd) -> jnp.ndarray:
            """log p(y | params): ``kernels.log_marginal`` with every month fully observed, written
            out so that y (and the AR lags built from it) can be traced."""
            lag = jnp.where(is_ar, jnp.vstack([lag0, y[:-1]]), 0.0)
            par = assemble({**truth, **sub}, st)
            ll = emission_logpdf(par, y, lag, cols, st.family, meas_sd)
            return forward(par, transitions(par, covs), ll)[0]

        grad = jax.jit(jax.grad(loglik))
        y0 = np.asarray(sim(keys[0]))                      # the rewrite above equals log_marginal
        ref = float(log_marginal(params, inputs(with_simulated(design, y0))._replace(meas_sd=meas_sd), st.family))
        assert abs(float(loglik({}, jnp.asarray(y0))) - ref) < 1e-8 * abs(ref), "loglik rewrite differs"
        scores = []
        for k in keys:
            y = sim(k)
            g = grad({n: truth[n] for n in free}, y)
            scores.append(np.concatenate([np.ravel(np.asarray(g[n])) for n in free]))
        s = np.array(scores)                                          # (sims, n_params)
        names = [f"{n}[{i}]" for n in free for i in range(int(np.prod(specs[n].shape)) or 1)]
        se = s.std(axis=0, ddof=1) / np.sqrt(a.sims)
        t = np.where(se > 0, s.mean(axis=0) / np.where(se > 0, se, 1.0), 0.0)
        p = 2 * stats.t.sf(np.abs(t), a.sims - 1)
        print(f"measurement floor in the likelihood: {floor}; {a.sims} simulations x {y.shape[0]} months; "
              f"{len(t)} parameters")
        print(f"  |t| > 3: {int((np.abs(t) > 3).sum())} (expected {len(t) * 2 * stats.t.sf(3, a.sims - 1):.1f}); "
              f"KS of the p-values against U(0,1): p = {stats.kstest(p, 'uniform').pvalue:.3g}")
        for n in free:
            idx = [i for i, nm in enumerate(names) if nm.startswith(n + "[")]
            print(f"  {n:<20} max |t| {np.abs(t[idx]).max():6.2f}   mean t {t[idx].mean():+.2f}   n {len(idx)}")
        worst = np.argsort(-np.abs(t))[:5]
        print("  worst:", ", ".join(f"{names[i]} t={t[i]:+.1f}" for i in worst))


if __name__ == "__main__":
    main()
