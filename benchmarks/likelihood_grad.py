"""Cost of one log-density gradient of the default model on the real panel (JAX, CPU).

    python benchmarks/likelihood_grad.py

Ours: the factored forward filter (policy x other-factor structure, unrolled scan) in
``regimecast.kernels``. Baseline in the same run: the straightforward version that
materialises the (T, K, K) joint transition matrix and runs a plain ``lax.scan`` over it.
Prints milliseconds per value-and-gradient and the ratio.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def timeit(f, *args, n=100) -> float:
    jax.block_until_ready(f(*args))
    t0 = time.perf_counter()
    for _ in range(n):
        jax.block_until_ready(f(*args))
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    from regimecast.config import load_model_config
    from regimecast.data.panel import build_panel
    from regimecast.design import build_design
    from regimecast.kernels import assemble, corr_log_prior, loglik_matrix, potential, transitions
    from regimecast.model import inputs, structure, variable_spec
    from regimecast.priors import load_priors
    from regimecast.prior_draws import prior_draws

    cfg = load_model_config(ROOT / "models" / "default.toml")
    pri = load_priors(ROOT / "priors" / "baseline.toml", cfg)
    design = build_design(cfg, build_panel(cfg.series, cfg.sample, ROOT.parent / "shared" / "data" / "fred"))
    st, data = structure(cfg, pri), inputs(design)
    draw = {k: jnp.asarray(v[0]) for k, v in prior_draws(np.random.default_rng(0), variable_spec(cfg, pri, st), 1).items()}

    def baseline(d):
        p = assemble(d, st)
        pt_ = transitions(p, data.covariates)                                     # (T, O, P, P)
        T, O, P = pt_.shape[0], pt_.shape[1], pt_.shape[2]
        A = (p.q_other[None, None, :, None, :] * jnp.transpose(pt_, (0, 2, 3, 1))[:, :, None]).reshape(T, P * O, P * O)
        ll = loglik_matrix(p, data, st.family).reshape(T, -1)

        def step(alpha, x):
            At, lt = x
            pred = alpha @ At
            m = jax.lax.stop_gradient(lt.max())
            w = pred * jnp.exp(lt - m)
            return w / w.sum(), m + jnp.log(w.sum())

        _, lp = jax.lax.scan(step, p.init.ravel(), (A, ll))
        return lp.sum() + corr_log_prior(d, st)

    ours = jax.jit(jax.value_and_grad(lambda d: potential(d, st, data)))
    base = jax.jit(jax.value_and_grad(baseline))
    assert np.isclose(float(ours(draw)[0]), float(base(draw)[0]), rtol=1e-10)
    t_ours, t_base = timeit(ours, draw), timeit(base, draw)
    print(f"machine: {platform.machine()}, {__import__('os').cpu_count()} cores, jax {jax.__version__} "
          f"on {jax.devices()[0].platform}; T={design.n_months}, K={st.n_policy * st.n_other}")
    print(f"value+gradient: factored {t_ours:.2f} ms, joint-matrix baseline {t_base:.2f} ms, "
          f"speed-up x{t_base / t_ours:.2f}")


if __name__ == "__main__":
    main()
