"""Cost of one value-and-gradient of the default model's log density on the real panel (CPU).

    python benchmarks/likelihood_grad.py [--n 2000]

Ours: the numba kernel of ``regimecast.model.likelihood`` (forward filter, backward messages and
every reverse pass written out), timed two ways: called from Python, and in a numba loop
(what nutpie's numba backend pays per gradient, no Python in between). Baseline in the same
run: the JAX kernels' ``jax.value_and_grad`` of ``regimecast.model.filter.potential`` (the fit's
likelihood before; XLA's transposed scan). Both are checked against each other (value to
1e-10 relative, gradient to 1e-7 of its scale) at a prior draw first. Prints milliseconds per
value-and-gradient (median of 7 repeats) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numba
import numpy as np

from regimecast.model.likelihood import potential_and_grad, sized_kernel

ROOT = Path(__file__).resolve().parents[1]


def per_call_ms(f, n: int, repeats: int = 7) -> float:
    f()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        out.append((time.perf_counter() - t0) / n * 1e3)
    return float(np.median(out))


@numba.njit
def _loop(kernel, theta, sa, pa, n):
    acc = 0.0
    for _ in range(n):
        acc += kernel(theta, sa, pa)[0]
    return acc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="calls per repeat")
    a = ap.parse_args()
    jax.config.update("jax_enable_x64", True)
    from regimecast.config.model_file import load_model_config
    from regimecast.data.panel import build_panel
    from regimecast.model.design import build_design
    from regimecast.model.filter import potential
    from regimecast.model.likelihood import panel_args, static_args, theta_of
    from regimecast.model.spec import inputs, structure, variable_spec
    from regimecast.model.prior_draws import prior_draws
    from regimecast.config.priors import load_priors

    cfg = load_model_config(ROOT / "models" / "default.toml")
    pri = load_priors(ROOT / "priors" / "baseline.toml", cfg)
    design = build_design(cfg, build_panel(cfg.series, cfg.sample, ROOT.parent / "shared" / "data" / "fred"))
    st, data = structure(cfg, pri), inputs(design)
    spec = variable_spec(cfg, pri, st)
    draw = {k: np.asarray(v[0]) for k, v in prior_draws(np.random.default_rng(0), spec, 1).items()}
    theta, sa, pa = theta_of(draw, spec), tuple(static_args(st, spec)), tuple(panel_args([data]))

    base = jax.jit(jax.value_and_grad(lambda d: potential(d, st, data)))
    jdraw = {k: jnp.asarray(v) for k, v in draw.items()}
    value, grad = potential_and_grad(theta, sa, pa)
    ref_value, ref_grad = base(jdraw)
    ref_grad = theta_of({k: np.asarray(g) for k, g in ref_grad.items()}, spec)
    assert abs(value - float(ref_value)) <= 1e-10 * abs(float(ref_value)), (value, float(ref_value))
    assert np.max(np.abs(grad - ref_grad)) <= 1e-7 * np.max(np.abs(ref_grad))

    t_base = per_call_ms(lambda: jax.block_until_ready(base(jdraw)), max(a.n // 10, 50))
    t_py = per_call_ms(lambda: potential_and_grad(theta, sa, pa), a.n)
    kernel = sized_kernel(sa[14])
    _loop(kernel, theta, sa, pa, 1)
    t_loop = per_call_ms(lambda: _loop(kernel, theta, sa, pa, a.n), 1) / a.n
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, numba "
          f"{numba.__version__}, jax {jax.__version__}; T={design.n_months}, K={st.n_policy * st.n_other}, "
          f"D={st.n_series}, {theta.size} parameters")
    print(f"value+gradient: numba {t_loop:.3f} ms in a numba loop, {t_py:.3f} ms from Python; "
          f"JAX baseline {t_base:.3f} ms; speed-up x{t_base / t_loop:.1f} (x{t_base / t_py:.1f} from Python)")


if __name__ == "__main__":
    main()
